/** The outbox's retime: the storage half of the clock correction. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { retimeStored } from '../src/clock/correct.js';
import { FLAG_TS_UNTRUSTED, Outbox, OutboxError, type SampleInput } from '../src/outbox/index.js';

const dirs: string[] = [];
const open: Outbox[] = [];
afterEach(() => {
  for (const o of open.splice(0)) o.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function openOutbox(dir = mkdtempSync(join(tmpdir(), 'clock-retime-'))): Outbox {
  if (!dirs.includes(dir)) dirs.push(dir);
  const ob = Outbox.open({ dir, logger: pino({ level: 'silent' }), commitIntervalMs: 10_000 });
  open.push(ob);
  return ob;
}

/** Even seqs untrusted, odd trusted; a reason, a string and an extra flag bit so "untouched" means something. */
function mixed(n: number): SampleInput[] {
  return Array.from({ length: n }, (_, i) => ({
    device: 'd',
    point: `p${i % 3}`,
    ts: 1000 * (i + 1),
    value: i % 5 === 0 ? `s${i}` : i * 0.5,
    quality: i % 4 === 0 ? ('uncertain' as const) : ('good' as const),
    ...(i % 4 === 0 ? { reason: 'warming up' } : {}),
    flags: (i % 2 === 1 ? FLAG_TS_UNTRUSTED : 0) | (i % 3 === 0 ? 4 : 0),
  }));
}

describe('Outbox.retime', () => {
  it('shifts only the untrusted rows in the range, clears their flag and leaves everything else as it was', () => {
    const ob = openOutbox();
    const input = mixed(20);
    ob.append(input);
    ob.commit();
    const before = ob.read(0, 100);
    expect(ob.retime(5, 14, 3_600_000)).toBe(5); // seqs 6, 8, 10, 12, 14 hold i = 5, 7, 9, 11, 13
    const after = ob.read(0, 100);
    for (const [k, s] of after.entries()) {
      const was = before[k];
      const hit = s.seq >= 5 && s.seq <= 14 && (was.flags & FLAG_TS_UNTRUSTED) !== 0;
      expect(s).toEqual(hit ? { ...was, ts: was.ts + 3_600_000, flags: was.flags & ~FLAG_TS_UNTRUSTED } : was);
    }
    // Applying it again changes nothing: a row is never shifted twice.
    expect(ob.retime(1, 20, 3_600_000)).toBe(5);
    expect(ob.retime(1, 20, 3_600_000)).toBe(0);
    expect(ob.read(0, 100).every((s) => (s.flags & FLAG_TS_UNTRUSTED) === 0)).toBe(true);
  });

  it('takes queued samples too: it commits first', () => {
    const ob = openOutbox();
    ob.append([{ device: 'd', point: 'p', ts: 5, value: 1, quality: 'good', flags: FLAG_TS_UNTRUSTED }]);
    expect(ob.retime(1, Number.MAX_SAFE_INTEGER, -5)).toBe(1);
    expect(ob.read(0, 10)).toMatchObject([{ seq: 1, ts: 0, flags: 0 }]);
  });

  it('is durable: the corrected rows survive a reopen', () => {
    const ob = openOutbox();
    const dir = dirs[0];
    ob.append(mixed(6));
    ob.retime(1, 6, 1_750_000_000_000);
    const expected = ob.read(0, 100);
    ob.close();
    const again = openOutbox(dir);
    expect(again.read(0, 100)).toEqual(expected);
    expect(again.stats()).toMatchObject({ samples: 6, newestTs: 6000 + 1_750_000_000_000 });
  });

  it('rejects bad arguments and a closed outbox', () => {
    const ob = openOutbox();
    expect(() => ob.retime(5, 4, 0)).toThrow(RangeError);
    expect(() => ob.retime(1.5, 4, 0)).toThrow(RangeError);
    expect(() => ob.retime(1, 4, 0.5)).toThrow(RangeError);
    expect(() => ob.retime(1, 4, NaN)).toThrow(RangeError);
    ob.close();
    expect(() => ob.retime(1, 4, 0)).toThrow(OutboxError);
  });

  it('retimeStored walks the outbox in windows from a seq on, and stops when aborted', async () => {
    const ob = openOutbox();
    const untrusted = (ts: number): SampleInput => ({ device: 'd', point: 'p', ts, value: ts, quality: 'good', flags: FLAG_TS_UNTRUSTED });
    ob.append(Array.from({ length: 10 }, (_, i) => untrusted(i))); // "an earlier run": seqs 1-10
    ob.commit();
    ob.append(Array.from({ length: 95 }, (_, i) => untrusted(100 + i))); // this run: seqs 11-105, still queued
    let calls = 0;
    const counting = { retime: (a: number, b: number, d: number) => (calls++, ob.retime(a, b, d)), maxSeq: () => ob.maxSeq() };
    expect(await retimeStored(counting, 11, 1000, undefined, 10)).toEqual({ rows: 95, complete: true });
    expect(calls).toBe(10);
    const rows = ob.read(0, 200);
    expect(rows.slice(0, 10).every((s) => s.flags === FLAG_TS_UNTRUSTED && s.ts === s.value)).toBe(true);
    expect(rows.slice(10).every((s) => s.flags === 0 && s.ts === (s.value as number) + 1000)).toBe(true);

    const abort = new AbortController();
    const stopping = { retime: (a: number, b: number, d: number) => (abort.abort(), ob.retime(a, b, d)), maxSeq: () => ob.maxSeq() };
    expect(await retimeStored(stopping, 1, 1, abort.signal, 4)).toEqual({ rows: 4, complete: false });
    expect(ob.read(0, 200).filter((s) => s.flags !== 0)).toHaveLength(6);
  });
});
