import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, openSync, readdirSync, rmSync, statSync, truncateSync, writeFileSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { Outbox, type SampleInput } from '../src/outbox/index.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const dirs: string[] = [];
const open: Array<{ close(): void }> = [];
afterEach(() => {
  for (const o of open.splice(0)) o.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'outbox-dur-'));
  dirs.push(d);
  return d;
}

function capture() {
  const lines: Array<Record<string, unknown>> = [];
  const logger = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s)) });
  return { logger, lines };
}

function openOutbox(dir: string, logger = pino({ level: 'silent' })): Outbox {
  const ob = Outbox.open({ dir, logger, commitIntervalMs: 10_000 });
  open.push(ob);
  return ob;
}

function samples(n: number, start = 0): SampleInput[] {
  return Array.from({ length: n }, (_, i) => ({ device: 'd', point: `p${i % 10}`, ts: start + i, value: start + i, quality: 'good' as const }));
}

function filled(dir: string, n: number): string {
  const ob = Outbox.open({ dir, logger: pino({ level: 'silent' }) });
  ob.append(samples(n));
  const epoch = ob.epoch;
  ob.close();
  return epoch;
}

describe('outbox durability', () => {
  it('keeps every seq a SIGKILLed writer reported as committed, and opens cleanly after', async () => {
    const dir = tempDir();
    const child = join(dir, 'writer.mts');
    writeFileSync(
      child,
      `
      const { Outbox } = await import(${JSON.stringify(new URL('../src/outbox/index.ts', import.meta.url).href)});
      const { createLogger } = await import(${JSON.stringify(new URL('../src/log.ts', import.meta.url).href)});
      const ob = Outbox.open({ dir: ${JSON.stringify(join(dir, 'db'))}, logger: createLogger('silent', false), commitIntervalMs: 5 });
      ob.onCommit((last) => process.stdout.write(last + '\\n'));
      let n = 0;
      setInterval(() => {
        const batch = [];
        for (let i = 0; i < 50; i++, n++) batch.push({ device: 'd', point: 'p' + (n % 10), ts: n, value: n, quality: 'good' });
        ob.append(batch);
      }, 1);
      setInterval(() => {}, 1000);
      `,
    );
    const proc = spawn(process.execPath, ['--import', 'tsx', child], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    let reported = 0;
    let commits = 0;
    let buf = '';
    const exited = new Promise<NodeJS.Signals | null>((resolve) => proc.on('exit', (_code, signal) => resolve(signal)));
    proc.stdout.on('data', (chunk: Buffer) => {
      buf += chunk.toString();
      const lines = buf.split('\n');
      buf = lines.pop() ?? '';
      for (const l of lines) {
        reported = Math.max(reported, Number(l));
        if (++commits === 40) proc.kill('SIGKILL');
      }
    });
    expect(await exited).toBe('SIGKILL');
    expect(reported).toBeGreaterThan(0);

    const db = new Database(join(dir, 'db', 'outbox.db'));
    expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
    db.close();
    const ob = openOutbox(join(dir, 'db'));
    expect(ob.startupReport.recreated).toBeNull();
    const stored = [...ob.export()];
    expect(stored.length).toBeGreaterThanOrEqual(reported);
    // Nothing lost, nothing reordered: seq k holds the k-th appended reading.
    stored.forEach((s, i) => {
      expect(s.seq).toBe(i + 1);
      expect(s.value).toBe(i);
    });
  });

  it('moves a garbage file aside and starts a new database', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'outbox.db'), Buffer.alloc(65536, 0x5a));
    writeFileSync(join(dir, 'outbox.db-wal'), 'junk');
    const { logger, lines } = capture();
    const ob = openOutbox(dir, logger);
    const r = ob.startupReport;
    expect(r.created).toBe(true);
    expect(r.recreated).toMatchObject({ reason: 'corrupt' });
    expect(r.recreated!.movedTo).toMatch(/outbox\.db\.corrupt-\d{8}T\d{6}\.\d{3}Z$/);
    expect(existsSync(r.recreated!.movedTo!)).toBe(true);
    expect(existsSync(`${r.recreated!.movedTo}-wal`)).toBe(true);
    expect(lines.some((l) => l.level === 50 && String(l.msg).includes('moved aside'))).toBe(true);
    ob.append(samples(3));
    ob.commit();
    expect(ob.read(0, 10).length).toBe(3);
  });

  it('detects a truncated database, replaces it with a new epoch, and does not do it again', () => {
    const dir = tempDir();
    const oldEpoch = filled(dir, 20_000);
    const file = join(dir, 'outbox.db');
    truncateSync(file, Math.floor(statSync(file).size / 2));
    let ob = openOutbox(dir);
    expect(ob.startupReport.recreated?.reason).toBe('corrupt');
    expect(ob.startupReport.recreated?.error).toMatch(/truncated/);
    expect(ob.epoch).not.toBe(oldEpoch);
    const epoch = ob.epoch;
    ob.close();
    ob = openOutbox(dir);
    expect(ob.startupReport).toMatchObject({ created: false, recreated: null, epoch });
  });

  it('catches corruption met while running, and replaces the file at the next open', () => {
    const dir = tempDir();
    filled(dir, 50_000);
    // Scribble over a leaf in the middle of the samples: the cheap open-time probe does not read it.
    const look = new Database(join(dir, 'outbox.db'), { readonly: true });
    const leaves = look.prepare("SELECT pageno FROM dbstat WHERE name = 'sample' AND pagetype = 'leaf' ORDER BY path").pluck().all() as number[];
    look.close();
    const page = leaves[Math.floor(leaves.length / 2)];
    const fd = openSync(join(dir, 'outbox.db'), 'r+');
    writeSync(fd, Buffer.alloc(4096, 0xff), 0, 4096, 4096 * (page - 1));
    closeSync(fd);
    let ob = openOutbox(dir);
    expect(ob.startupReport.recreated).toBeNull();
    expect(() => [...ob.export()]).toThrow(expect.objectContaining({ code: 'OUTBOX_CORRUPT' }));
    expect(existsSync(join(dir, 'outbox.db.needs-check'))).toBe(true);
    ob.close();
    ob = openOutbox(dir);
    expect(ob.startupReport.recreated?.reason).toBe('corrupt');
    expect(existsSync(join(dir, 'outbox.db.needs-check'))).toBe(false);
  });

  it('sets aside a SQLite file that is not an outbox', () => {
    const dir = tempDir();
    const foreign = new Database(join(dir, 'outbox.db'));
    foreign.exec('CREATE TABLE other (x)');
    foreign.close();
    const ob = openOutbox(dir);
    expect(ob.startupReport.recreated).toMatchObject({ reason: 'notOutbox' });
  });

  it('keeps only the two newest moved-aside copies', () => {
    const dir = tempDir();
    for (let i = 0; i < 4; i++) {
      writeFileSync(join(dir, 'outbox.db'), Buffer.alloc(8192, i + 1));
      Outbox.open({ dir, logger: pino({ level: 'silent' }), clock: () => 1_700_000_000_000 + i * 1000 }).close();
    }
    const aside = readdirSync(dir).filter((f) => f.includes('.corrupt-'));
    expect(aside.sort()).toEqual(['outbox.db.corrupt-20231114T221322.000Z', 'outbox.db.corrupt-20231114T221323.000Z']);
  });

  it('gives a deleted database a new epoch', () => {
    const dir = tempDir();
    const first = filled(dir, 1);
    rmSync(join(dir, 'outbox.db'));
    const ob = openOutbox(dir);
    expect(ob.startupReport.created).toBe(true);
    expect(ob.epoch).not.toBe(first);
    expect(ob.epoch).toMatch(/^[0-9a-f]{16}$/);
  });
});
