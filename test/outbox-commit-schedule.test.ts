/**
 * When the outbox commits, on a manual clock: at once when a poll cycle's samples are in and the writer is idle,
 * grouped with buses still polling, at most one grouped commit per commitIntervalMs, and never a sample waiting
 * longer than commitIntervalMs. Each commit is one fsync; `stats().commits` counts them.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { Outbox, type SampleInput } from '../src/outbox/index.js';
import { ManualTimers } from './helpers/manual-timers.js';

const INTERVAL = 250;
const dirs: string[] = [];
const open: Outbox[] = [];
afterEach(() => {
  for (const o of open.splice(0)) o.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function setup() {
  const dir = mkdtempSync(join(tmpdir(), 'outbox-schedule-'));
  dirs.push(dir);
  const timers = new ManualTimers();
  const ob = Outbox.open({ dir, logger: pino({ level: 'silent' }), commitIntervalMs: INTERVAL, timers, clock: () => timers.now() });
  open.push(ob);
  const committedAt: number[] = [];
  ob.onCommit(() => committedAt.push(timers.now()));
  return { ob, timers, committedAt };
}

let n = 0;
const batch = (device: string, count = 3): SampleInput[] =>
  Array.from({ length: count }, (_, i) => ({ device, point: `p${i}`, ts: 1_700_000_000_000 + n++, value: n, quality: 'good' as const }));

describe('commit schedule', () => {
  it('without commitSoon, samples wait one interval, as under the fixed tick', async () => {
    const { ob, timers, committedAt } = setup();
    ob.append(batch('a'));
    await timers.advance(INTERVAL - 1);
    expect(committedAt).toEqual([]);
    expect(ob.stats().pending).toBe(3);
    await timers.advance(1);
    expect(committedAt).toHaveLength(1);
    expect(ob.stats().pending).toBe(0);
  });

  it('commits at once when a cycle is in and the writer is idle', async () => {
    const { ob, timers, committedAt } = setup();
    const t0 = timers.now();
    ob.append(batch('a'));
    ob.commitSoon();
    await timers.advance(0);
    expect(committedAt).toEqual([t0]);
    expect(ob.stats().commits).toBe(1);
  });

  it('samples of the same turn share one commit', async () => {
    const { ob, timers, committedAt } = setup();
    for (const d of ['a', 'b', 'c']) {
      ob.append(batch(d));
      ob.commitSoon();
    }
    await timers.advance(0);
    expect(committedAt).toHaveLength(1);
    expect(ob.stats().pending).toBe(0);
  });

  it('waits for buses still in their poll cycle, so buses polling in step share one commit', async () => {
    const { ob, timers, committedAt } = setup();
    for (const bus of ['a', 'b', 'c']) ob.sourceBusy(bus, true);
    ob.sourceBusy('a', false);
    ob.append(batch('a'));
    ob.commitSoon();
    await timers.advance(5);
    expect(committedAt).toEqual([]);
    ob.append(batch('b'));
    ob.commitSoon();
    ob.sourceBusy('b', false);
    await timers.advance(5);
    expect(committedAt).toEqual([]);
    const end = timers.now();
    ob.append(batch('c'));
    ob.commitSoon();
    ob.sourceBusy('c', false);
    await timers.advance(0);
    expect(committedAt).toEqual([end]);
    expect(ob.stats().commits).toBe(1);
  });

  it('a bus that stays busy delays the others by one interval at most', async () => {
    const { ob, timers, committedAt } = setup();
    const t0 = timers.now();
    ob.sourceBusy('slow', true);
    ob.append(batch('a'));
    ob.commitSoon();
    await timers.advance(INTERVAL * 3);
    expect(committedAt).toEqual([t0 + INTERVAL]);
  });

  it('groups under load: at most one grouped commit per interval, the rest shares the next', async () => {
    const { ob, timers, committedAt } = setup();
    const t0 = timers.now();
    // A cycle every 10 ms for a second: a commit per cycle would be 100 fsyncs; the tick made 4.
    for (let i = 0; i < 100; i++) {
      ob.append(batch('a'));
      ob.commitSoon();
      await timers.advance(10);
    }
    await timers.advance(INTERVAL);
    expect(committedAt[0]).toBe(t0);
    for (let i = 1; i < committedAt.length; i++) expect(committedAt[i]! - committedAt[i - 1]!).toBeGreaterThanOrEqual(INTERVAL);
    expect(committedAt.length).toBeLessThanOrEqual(5);
    expect(ob.stats().pending).toBe(0);
  });

  it('a cycle soon after a commit waits for the interval to end, never longer', async () => {
    const { ob, timers, committedAt } = setup();
    const t0 = timers.now();
    ob.append(batch('a'));
    ob.commitSoon();
    await timers.advance(100);
    ob.append(batch('b'));
    ob.commitSoon();
    await timers.advance(INTERVAL);
    expect(committedAt).toEqual([t0, t0 + INTERVAL]);
  });

  it('an alarm commit is not held: commit() writes at once whatever the schedule', async () => {
    const { ob, timers, committedAt } = setup();
    ob.append(batch('a'));
    ob.commitSoon();
    await timers.advance(0);
    ob.appendEvent({ kind: 'outbox-recreated', reason: 'deleted', error: 'x', movedTo: null });
    ob.commit();
    expect(committedAt).toHaveLength(2);
    expect(committedAt[1]).toBe(committedAt[0]);
  });

  it('a commit refused by storage is retried an interval later', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'outbox-schedule-'));
    dirs.push(dir);
    const timers = new ManualTimers();
    let fail = true;
    const ob = Outbox.open({
      dir,
      logger: pino({ level: 'silent' }),
      commitIntervalMs: INTERVAL,
      timers,
      faultInjector: () => {
        if (fail) throw Object.assign(new Error('disk I/O error'), { code: 'SQLITE_IOERR' });
      },
    });
    open.push(ob);
    ob.append(batch('a'));
    ob.commitSoon();
    await timers.advance(0);
    expect(ob.stats().pending).toBe(3);
    fail = false;
    await timers.advance(INTERVAL - 1);
    expect(ob.stats().pending).toBe(3);
    await timers.advance(1);
    expect(ob.stats().pending).toBe(0);
  });
});
