import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { FLAG_TS_UNTRUSTED, Outbox, type OutboxOptions, type SampleInput } from '../src/outbox/index.js';

const MIB = 1024 * 1024;
const HOUR = 3_600_000;
const T0 = 1_700_000_000_000;
const dirs: string[] = [];
const open: Outbox[] = [];
afterEach(() => {
  for (const o of open.splice(0)) o.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'outbox-ret-'));
  dirs.push(d);
  return d;
}

function openOutbox(dir: string, extra: Partial<OutboxOptions> = {}): Outbox {
  const ob = Outbox.open({ dir, logger: pino({ level: 'silent' }), commitIntervalMs: 10_000, ...extra });
  open.push(ob);
  return ob;
}

function samples(n: number, ts: number, flags = 0): SampleInput[] {
  return Array.from({ length: n }, (_, i) => ({
    device: 'pump',
    point: `p${i % 20}`,
    ts: ts + i,
    value: Math.round(Math.random() * 1e5) / 100,
    quality: 'good' as const,
    flags,
  }));
}

const fileSize = (dir: string) => statSync(join(dir, 'outbox.db')).size;

describe('outbox retention', () => {
  it('stays under maxBytes by dropping the oldest, and records every dropped run', () => {
    const dir = tempDir();
    const ob = openOutbox(dir, { maxBytes: MIB });
    const total = 200_000;
    for (let i = 0; i < total / 5000; i++) {
      ob.append(samples(5000, T0 + i * 5000));
      expect(ob.commit()).toBe(5000);
      expect(ob.stats().bytes).toBeLessThanOrEqual(MIB);
      expect(fileSize(dir)).toBeLessThanOrEqual(MIB);
    }
    const st = ob.stats();
    expect(st.state).toBe('ok');
    expect(st.samples).toBeGreaterThan(20_000);
    expect(st.samples + st.dropped.maxBytes).toBe(total);
    const ranges = ob.droppedRanges();
    expect(ranges.length).toBeGreaterThan(0);
    expect(ranges.every((r) => r.reason === 'maxBytes' && r.stream === 'sample' && !r.reported)).toBe(true);
    expect(ranges.reduce((n, r) => n + r.count, 0)).toBe(st.dropped.maxBytes);
    // Runs are consecutive from seq 1, and what is left is exactly everything after the last run.
    let next = 1;
    for (const r of ranges) {
      expect(r.fromSeq).toBe(next);
      expect(r.count).toBe(r.toSeq! - r.fromSeq! + 1);
      next = r.toSeq! + 1;
    }
    expect(st.minSeq).toBe(next);
    expect(st.maxSeq).toBe(total);
    expect(st.samples).toBe(total - next + 1);
  });

  it('reports dropped runs until they are marked reported', () => {
    const ob = openOutbox(tempDir(), { maxBytes: MIB });
    for (let i = 0; i < 20; i++) {
      ob.append(samples(5000, T0));
      ob.commit();
    }
    const ranges = ob.droppedRanges();
    expect(ranges.length).toBeGreaterThan(1);
    ob.markDroppedReported(ranges[0].id);
    expect(ob.droppedRanges().map((r) => r.id)).toEqual(ranges.slice(1).map((r) => r.id));
    ob.markDroppedReported(ranges[ranges.length - 1].id);
    expect(ob.droppedRanges()).toEqual([]);
    const all = ob.droppedRanges(0);
    expect(all.map((r) => r.id)).toEqual(ranges.map((r) => r.id));
    expect(all.every((r) => r.reported)).toBe(true);
    expect(ob.droppedRanges(ranges[0].id).length).toBe(ranges.length - 1);
  });

  it('drops by age, judging untrusted timestamps by the trusted rows after them', () => {
    let now = T0;
    const ob = openOutbox(tempDir(), { maxAgeHours: 1, clock: () => now });
    ob.append(samples(100, T0)); // seq 1..100
    ob.append(samples(10, 0, FLAG_TS_UNTRUSTED)); // seq 101..110: clock not synced yet
    ob.append(samples(100, T0 + HOUR / 2)); // seq 111..210
    ob.commit();

    now = T0 + HOUR + 10 * 60_000;
    ob.append(samples(1, now));
    ob.commit();
    expect(ob.minSeq()).toBe(101);
    expect(ob.droppedRanges()).toMatchObject([{ reason: 'maxAge', fromSeq: 1, toSeq: 100, count: 100, fromTs: T0, toTs: T0 + 99 }]);

    now = T0 + 2 * HOUR;
    ob.append(samples(1, now));
    ob.commit();
    expect(ob.minSeq()).toBe(211);
    expect(ob.droppedRanges()[1]).toMatchObject({ reason: 'maxAge', fromSeq: 101, toSeq: 210, count: 110 });
    expect(ob.stats().dropped).toEqual({ maxBytes: 0, maxAge: 210, memoryQueueFull: 0 });
  });

  it('never drops untrusted rows by age on their own', () => {
    let now = T0;
    const ob = openOutbox(tempDir(), { maxAgeHours: 1, clock: () => now });
    ob.append(samples(50, 0, FLAG_TS_UNTRUSTED));
    ob.commit();
    now += 10 * HOUR;
    ob.append(samples(1, 0, FLAG_TS_UNTRUSTED));
    ob.commit();
    expect(ob.stats().samples).toBe(51);
  });

  it('applies a lowered maxBytes at open and gives the pages back to the filesystem', () => {
    const dir = tempDir();
    let ob = openOutbox(dir, { maxBytes: 4 * MIB });
    for (let i = 0; i < 30; i++) ob.append(samples(5000, T0 + i * 5000));
    ob.close();
    expect(fileSize(dir)).toBeGreaterThan(3 * MIB);
    ob = openOutbox(dir, { maxBytes: MIB });
    expect(ob.stats().bytes).toBeLessThanOrEqual(MIB);
    expect(ob.droppedRanges().length).toBeGreaterThan(0);
    ob.close();
    expect(fileSize(dir)).toBeLessThanOrEqual(MIB);
  });

  it('makes room for rows much larger than the average', () => {
    const ob = openOutbox(tempDir(), { maxBytes: MIB });
    ob.append(samples(30_000, T0));
    ob.commit();
    const wide = samples(1500, T0).map((s, i) => ({ ...s, value: `${i}`.padEnd(500, '#') }));
    ob.append(wide);
    expect(ob.commit()).toBe(1500);
    const st = ob.stats();
    expect(st).toMatchObject({ state: 'ok', pending: 0 });
    expect(st.bytes).toBeLessThanOrEqual(MIB);
    expect(ob.read(st.maxSeq! - 1, 1)[0].value).toBe('1499'.padEnd(500, '#'));
  });

  it('recovers when the hard page cap stops a commit the estimate let through', () => {
    const ob = openOutbox(tempDir(), { maxBytes: MIB });
    ob.append(samples(30_000, T0));
    ob.commit();
    // Unique long reasons land in the reason dictionary (and its index), which the size estimate does not foresee.
    const odd = samples(600, T0).map((s, i) => ({ ...s, quality: 'bad' as const, reason: `${i}`.padEnd(500, '?') }));
    ob.append(odd);
    expect(ob.commit()).toBe(600);
    const st = ob.stats();
    expect(st).toMatchObject({ state: 'ok', pending: 0 });
    expect(st.dropped.maxBytes).toBeGreaterThan(0);
    expect(st.bytes).toBeLessThanOrEqual(MIB);
  });

  /** An alarm carrying a long message: about 2 KB stored. */
  const paddedAlarm = (message: string, i: number) =>
    ({ kind: 'alarm', alarm: { state: 'raised', device: 'd', point: 'p', alarm: 'a', type: 'high', severity: 'major', value: i, limit: 1, ts: i, message } }) as const;

  it('drops events only when no sample is left to drop', () => {
    const ob = openOutbox(tempDir(), { maxBytes: MIB });
    // About 2 KB a row; one commit of 300 stays well under half the cap, so the WAL fits beside the file.
    const big = 'x'.repeat(1850);
    for (let i = 0; i < 200; i++) ob.appendEvent(paddedAlarm(big, i));
    ob.append(samples(1000, T0));
    ob.commit();
    for (let i = 0; i < 300; i++) ob.appendEvent(paddedAlarm(big, i));
    ob.commit();
    const st = ob.stats();
    expect(st.state).toBe('ok');
    expect(st.pending).toBe(0);
    expect(st.bytes).toBeLessThanOrEqual(MIB);
    expect(st.samples).toBe(0);
    const streams = new Set(ob.droppedRanges().map((r) => r.stream));
    expect(streams).toEqual(new Set(['sample', 'event']));
  });
});
