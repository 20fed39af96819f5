import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Outbox, type SampleInput } from '../src/outbox/index.js';

const T0 = 1_700_000_000_000;
const dirs: string[] = [];
const open: Outbox[] = [];
afterEach(() => {
  for (const o of open.splice(0)) o.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'outbox-full-'));
  dirs.push(d);
  return d;
}

function capture() {
  const lines: Array<{ level: number; msg: string } & Record<string, unknown>> = [];
  const logger = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s)) });
  return { logger, lines };
}

function samples(n: number, ts: number): SampleInput[] {
  return Array.from({ length: n }, (_, i) => ({ device: 'tunnel', point: `p${i % 5}`, ts: ts + i, value: ts + i, quality: 'good' as const }));
}

async function until(cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

const diskFull = () => Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' });

describe('outbox when storage refuses writes', () => {
  it('keeps readings in memory (bounded), logs once, and recovers by itself', async () => {
    let full = false;
    const { logger, lines } = capture();
    const ob = Outbox.open({
      dir: tempDir(),
      logger,
      commitIntervalMs: 20,
      maxPendingSamples: 1000,
      faultInjector: () => {
        if (full) throw diskFull();
      },
    });
    open.push(ob);
    ob.append(samples(10, T0));
    expect(ob.commit()).toBe(10);

    full = true;
    ob.append(samples(600, T0 + 1000));
    expect(ob.commit()).toBe(0);
    expect(ob.stats()).toMatchObject({ state: 'disk-full', pending: 600, samples: 10 });
    ob.append(samples(600, T0 + 2000)); // 200 over the bound: the oldest queued go
    expect(ob.commit()).toBe(0);
    expect(ob.stats()).toMatchObject({ pending: 1000, dropped: { memoryQueueFull: 200 } });
    expect(ob.read(0, 100).length).toBe(10); // committed rows stay readable meanwhile
    await new Promise((r) => setTimeout(r, 100)); // a few timer retries, still failing
    expect(lines.filter((l) => l.msg.includes('refuses writes')).length).toBe(1);
    expect(lines.filter((l) => l.msg.includes('memory queue full')).length).toBe(1);

    full = false;
    await until(() => ob.stats().state === 'ok');
    const st = ob.stats();
    expect(st).toMatchObject({ pending: 0, samples: 1010, lastSeq: 1010, dropped: { memoryQueueFull: 200 } });
    expect(lines.filter((l) => l.msg.includes('writable again')).length).toBe(1);
    const stored = ob.read(10, 2000);
    expect(stored[0]).toMatchObject({ seq: 11, ts: T0 + 1200 });
    expect(stored[stored.length - 1]).toMatchObject({ seq: 1010, ts: T0 + 2599 });
    expect(ob.droppedRanges()).toMatchObject([
      { reason: 'memoryQueueFull', stream: 'sample', fromSeq: null, toSeq: null, beforeSeq: 11, count: 200, fromTs: T0 + 1000, toTs: T0 + 1199 },
    ]);
  });

  it('writes a burst bigger than the queue bound instead of dropping it while storage works', () => {
    const ob = Outbox.open({ dir: tempDir(), logger: pino({ level: 'silent' }), maxPendingSamples: 100, commitIntervalMs: 10_000 });
    open.push(ob);
    ob.append(samples(250, T0));
    expect(ob.stats()).toMatchObject({ pending: 0, samples: 250, dropped: { memoryQueueFull: 0 } });
  });
});

describe('outbox on a real full filesystem (2 MiB tmpfs)', () => {
  let mnt = '';
  let mounted = false;
  let why = '';
  beforeAll(() => {
    mnt = mkdtempSync(join(tmpdir(), 'outbox-tmpfs-'));
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', mnt], { stdio: 'pipe' });
      mounted = true;
    } catch (err) {
      why = `cannot mount a tmpfs here (${String((err as Error).message).split('\n')[0]})`;
    }
  });
  afterAll(() => {
    for (const o of open.splice(0)) o.close();
    if (mounted) execFileSync('umount', [mnt]);
    rmSync(mnt, { recursive: true, force: true });
  });

  it('falls back to memory when the disk is full and catches up when space returns', async (ctx) => {
    if (!mounted) return ctx.skip(why);
    const filler = join(mnt, 'filler');
    writeFileSync(filler, Buffer.alloc(1024 * 1024));
    const ob = Outbox.open({ dir: join(mnt, 'ob'), logger: pino({ level: 'silent' }), commitIntervalMs: 20, maxPendingSamples: 50_000 });
    open.push(ob);
    let ts = T0;
    for (let i = 0; i < 200 && ob.stats().state === 'ok'; i++) {
      ob.append(samples(2000, ts));
      ts += 2000;
      ob.commit();
    }
    const before = ob.stats();
    expect(before.state).toBe('disk-full');
    expect(before.pending).toBeGreaterThan(0);
    expect(ob.read(0, 10).length).toBe(10);
    // An ack on a full disk may not be writable either; it is kept and applied once space returns.
    ob.ack([[1, 100]]);

    rmSync(filler);
    await until(() => ob.stats().state === 'ok');
    const after = ob.stats();
    expect(after.pending).toBe(0);
    expect(after.lastSeq).toBe(before.lastSeq + before.pending);
    expect(after.dropped).toEqual({ maxBytes: 0, maxAge: 0, memoryQueueFull: 0 });
    expect(ob.read(0, 100, 101)).toEqual([]);
    expect(ob.minSeq()).toBe(101);
    const last = ob.read(after.lastSeq - 1, 1)[0];
    expect(last.ts).toBe(ts - 1);
    ob.close();
    open.splice(0);
    const again = Outbox.open({ dir: join(mnt, 'ob'), logger: pino({ level: 'silent' }) });
    expect(again.startupReport).toMatchObject({ recreated: null, lastSeq: after.lastSeq });
    again.close();
  });
});
