/**
 * An outbox that cannot be opened ends `fieldgate run` with one line and exit 1 (no stack, no "kept running");
 * its files are created 0640; a data directory deleted while running is noticed and the outbox recreated.
 */
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { Outbox } from '../src/outbox/index.js';
import { startSimulator, type RunningSimulator } from '../src/sim/server.js';
import { cliEntry } from './helpers/cli-bundle.js';
import { runGateway } from './helpers/gw-process.js';
import { tempDir } from './helpers/peers.js';
import { pino } from 'pino';

const ROOT = new URL('..', import.meta.url).pathname;
const silent = pino({ level: 'silent' });

function config(dir: string, dataDir: string, port = 1): string {
  const file = join(dir, 'gw.yaml');
  writeFileSync(
    file,
    stringify({
      gateway: { id: 'open-gw', dataDir, clock: { trust: 'always' } },
      buses: [{ id: 'sim', transport: 'tcp', host: '127.0.0.1', port }],
      devices: [{ id: 'pump', bus: 'sim', unit: 1, pollIntervalMs: 50, points: [{ id: 'p', fc: 4, address: 0 }] }],
      buffer: { commitIntervalMs: 50 },
    }),
  );
  chmodSync(file, 0o644);
  return file;
}

/** `fieldgate run` to its exit, optionally as another user (root ignores permission bits). */
function run(file: string, uid?: number): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cliEntry(), 'run', '-c', file], { cwd: ROOT, ...(uid === undefined ? {} : { uid, gid: uid }) });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

describe('an outbox that cannot be opened', () => {
  it('dataDir being a file: one line naming it, exit 1', async () => {
    const dir = tempDir('open-file');
    const data = join(dir, 'data');
    writeFileSync(data, 'not a directory');
    const r = await run(config(dir, data));
    expect(r.code).toBe(1);
    expect(r.out.trim()).toBe(`fieldgate: cannot open the outbox ${data}: it exists and is not a directory`);
  });

  it('a missing parent under a file: one line, exit 1', async () => {
    const dir = tempDir('open-parent');
    writeFileSync(join(dir, 'plain'), '');
    const data = join(dir, 'plain', 'sub', 'data');
    const r = await run(config(dir, data));
    expect(r.code).toBe(1);
    expect(r.out.trim()).toBe(`fieldgate: cannot open the outbox ${data}: a part of the path is a file, not a directory`);
  });

  it.skipIf(process.getuid?.() !== 0)('permission denied (as nobody, on a root-only directory): one line, exit 1', async () => {
    const dir = tempDir('open-denied');
    chmodSync(dir, 0o755);
    const locked = join(dir, 'locked');
    mkdirSync(locked, { mode: 0o700 });
    const data = join(locked, 'data');
    const r = await run(config(dir, data), 65534);
    expect(r.code).toBe(1);
    expect(r.out.trim()).toBe(`fieldgate: cannot open the outbox ${data}: permission denied`);
  });

  it('an existing data directory nobody may write: the database path and the reason', async () => {
    const dir = tempDir('open-ro');
    chmodSync(dir, 0o755);
    const data = join(dir, 'data');
    mkdirSync(data, { mode: 0o555 });
    const r = await run(config(dir, data), process.getuid?.() === 0 ? 65534 : undefined);
    expect(r.code).toBe(1);
    expect(r.out.trim()).toBe(`fieldgate: cannot open the outbox ${join(data, 'outbox.db')}: permission denied`);
  });
});

describe('a read-only outbox file', () => {
  it.skipIf(process.getuid?.() !== 0)('that the daemon may not write (root-owned, 0644, run as nobody): one line, exit 1', async () => {
    const dir = tempDir('open-rofile');
    chmodSync(dir, 0o755);
    const data = join(dir, 'data');
    mkdirSync(data, { mode: 0o777 });
    chmodSync(data, 0o777);
    Outbox.open({ dir: data, logger: silent }).close();
    chmodSync(join(data, 'outbox.db'), 0o644);
    const r = await run(config(dir, data), 65534);
    expect(r.code).toBe(1);
    expect(r.out.trim()).toBe(`fieldgate: cannot open the outbox ${join(data, 'outbox.db')}: permission denied`);
  });
});

describe('the data files', () => {
  it('are created 0640, also under a permissive umask, and an older 0644 file is tightened', () => {
    const dir = tempDir('mode');
    const old = process.umask(0o022);
    try {
      const ob = Outbox.open({ dir, logger: silent, commitIntervalMs: 10 });
      ob.append([{ device: 'd', point: 'p', ts: Date.now(), value: 1, quality: 'good' }]);
      ob.commit();
      for (const f of ['outbox.db', 'outbox.db-wal', 'outbox.db-shm']) expect((statSync(join(dir, f)).mode & 0o777).toString(8), f).toBe('640');
      ob.close();
      chmodSync(join(dir, 'outbox.db'), 0o644);
      Outbox.open({ dir, logger: silent }).close();
      expect((statSync(join(dir, 'outbox.db')).mode & 0o777).toString(8)).toBe('640');
    } finally {
      process.umask(old);
    }
  });
});

describe('a corrupt outbox found while running', () => {
  it('is reported once to the owner as OUTBOX_CORRUPT (so the daemon ends and is restarted)', async () => {
    const dir = tempDir('corrupt-run');
    let fail = false;
    const ob = Outbox.open({
      dir,
      logger: silent,
      faultInjector: () => {
        if (fail) throw Object.assign(new Error('database disk image is malformed'), { code: 'SQLITE_CORRUPT' });
      },
    });
    const seen: string[] = [];
    ob.onUnusable((err) => seen.push(err.code));
    fail = true;
    ob.append([{ device: 'd', point: 'p', ts: Date.now(), value: 1, quality: 'good' }]);
    ob.commit();
    ob.commit();
    await new Promise((r) => setImmediate(r));
    expect(seen).toEqual(['OUTBOX_CORRUPT']);
    fail = false;
    ob.close();
  });
});

describe('a data directory deleted while running', () => {
  let sim: RunningSimulator;
  beforeAll(async () => {
    sim = await startSimulator({ scenario: 'village-water', tcp: { host: '127.0.0.1', port: 0 }, seed: 3 });
  });
  afterAll(async () => {
    await sim?.close();
  });

  it('is noticed, reported, and the outbox recreated with a new epoch and an outbox-recreated event', async () => {
    const dir = tempDir('deleted');
    const data = join(dir, 'data');
    const file = config(dir, data, sim.tcpPort);
    const gw = runGateway(file);
    try {
      await gw.running();
      const before = Outbox.openReadOnly(data);
      const oldEpoch = before.epoch;
      before.close();
      rmSync(data, { recursive: true, force: true });
      const deadline = Date.now() + 10_000;
      while (!/opened|created/.test(gw.log().split('was deleted while running')[1] ?? '') && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(gw.log()).toContain(`the outbox file ${join(data, 'outbox.db')} was deleted while running`);
      // Samples keep going into the new file.
      await new Promise((r) => setTimeout(r, 500));
      expect(await gw.stop()).toBe(0);
      expect(existsSync(join(data, 'outbox.db.deleted'))).toBe(false);
      const after = Outbox.openReadOnly(data);
      try {
        expect(after.epoch).not.toBe(oldEpoch);
        const events = after.readEvents(0, 10).map((e) => e.event);
        expect(events[0]).toMatchObject({ kind: 'outbox-recreated', reason: 'deleted', movedTo: null });
        expect(after.stats().samples).toBeGreaterThan(0);
      } finally {
        after.close();
      }
    } finally {
      await gw.stop();
    }
  });
});

describe('corruption met by the running daemon', () => {
  let sim: RunningSimulator;
  beforeAll(async () => {
    sim = await startSimulator({ scenario: 'village-water', tcp: { host: '127.0.0.1', port: 0 }, seed: 5 });
  });
  afterAll(async () => {
    await sim?.close();
  });

  it('ends `fieldgate run` with one fatal line and exit 1, and the next start replaces the file', async () => {
    const dir = tempDir('corrupt-daemon');
    const data = join(dir, 'data');
    const file = config(dir, data, sim.tcpPort);
    const gw = runGateway(file);
    try {
      await gw.running();
      await new Promise((r) => setTimeout(r, 300));
      // Another writer points the sample table at a page past the end of the file: the next read of it is corrupt.
      const py = [
        'import sqlite3, sys',
        'c = sqlite3.connect(sys.argv[1], isolation_level=None)',
        'v = c.execute("PRAGMA schema_version").fetchone()[0]',
        'c.execute("PRAGMA writable_schema=ON")',
        'c.execute("UPDATE sqlite_schema SET rootpage=999999 WHERE name=\'sample\'")',
        'c.execute("PRAGMA schema_version=%d" % (v + 1))',
      ].join('\n');
      await new Promise<void>((resolve, reject) =>
        spawn('/usr/bin/python3', ['-c', py, join(data, 'outbox.db')], { stdio: 'inherit' }).on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`python ${code}`)))),
      );
      const code = await Promise.race([gw.exited, new Promise((r) => setTimeout(() => r('still running'), 15_000))]);
      expect(code).toBe(1);
      const fatal = gw.log().split('\n').filter((l) => l.includes('"level":60'));
      expect(fatal).toHaveLength(1);
      expect(fatal[0]).toContain(`the outbox ${join(data, 'outbox.db')} is corrupt`);
      expect(gw.log()).not.toContain('kept running');
      expect(existsSync(join(data, 'outbox.db.needs-check'))).toBe(true);
      const next = Outbox.open({ dir: data, logger: silent });
      expect(next.startupReport.recreated).toMatchObject({ reason: 'corrupt' });
      next.close();
    } finally {
      await gw.stop();
    }
  });
});
