import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { marker } from './helpers/events.js';
import { Outbox, OutboxError, FLAG_TS_UNTRUSTED, type SampleInput, type StoredSample } from '../src/outbox/index.js';

const dirs: string[] = [];
const open: Array<{ close(): void }> = [];
afterEach(() => {
  for (const o of open.splice(0)) o.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'outbox-test-'));
  dirs.push(d);
  return d;
}

function openOutbox(dir: string, extra: Partial<Parameters<typeof Outbox.open>[0]> = {}): Outbox {
  const ob = Outbox.open({ dir, logger: pino({ level: 'silent' }), commitIntervalMs: 10_000, ...extra });
  open.push(ob);
  return ob;
}

function samples(n: number, start = 0): SampleInput[] {
  return Array.from({ length: n }, (_, i) => ({
    device: `dev${(start + i) % 3}`,
    point: `p${(start + i) % 7}`,
    ts: 1_700_000_000_000 + (start + i) * 1000,
    value: (start + i) * 1.5,
    quality: 'good' as const,
  }));
}

const strip = ({ seq: _seq, flags: _flags, series: _series, ...s }: StoredSample) => s;

describe('outbox basics', () => {
  it('registers series without a commit of their own and lists them, durable, before they are published', () => {
    const dir = tempDir();
    const ob = openOutbox(dir);
    const ids = ['a', 'b', 'c'].map((p) => ob.seriesId('dev', p));
    expect(ob.seriesId('dev', 'b')).toBe(ids[1]);
    expect(ob.stats().commits).toBe(0);
    expect(ob.series().map((s) => [s.id, s.point])).toEqual(ids.map((id, i) => [id, ['a', 'b', 'c'][i]]));
    // Another connection (the CLI) sees them too, and a reopen keeps the ids.
    const reader = Outbox.openReadOnly(dir);
    expect(reader.series().map((s) => s.point)).toEqual(['a', 'b', 'c']);
    reader.close();
    ob.close();
    expect(openOutbox(dir).seriesId('dev', 'c')).toBe(ids[2]);
  });

  it('stores every value kind, quality, reason and flags faithfully', () => {
    const ob = openOutbox(tempDir());
    const input: SampleInput[] = [
      { device: 'a', point: 'num', ts: 1, value: 21.37, quality: 'good' },
      { device: 'a', point: 'int', ts: 2, value: 42, quality: 'good' },
      { device: 'a', point: 'big', ts: 3, value: 2 ** 60, quality: 'good' },
      { device: 'a', point: 'neg0', ts: 4, value: -0, quality: 'good' },
      { device: 'a', point: 'nan', ts: 5, value: NaN, quality: 'uncertain', reason: 'overrange' },
      { device: 'a', point: 'inf', ts: 6, value: -Infinity, quality: 'good' },
      { device: 'b', point: 'on', ts: 7, value: true, quality: 'good' },
      { device: 'b', point: 'off', ts: 8, value: false, quality: 'good' },
      { device: 'b', point: 'str', ts: 9, value: '123', quality: 'good' },
      { device: 'b', point: 'empty', ts: 10, value: '', quality: 'good' },
      { device: 'b', point: 'null', ts: 11, value: null, quality: 'bad', reason: 'timeout after 500 ms' },
      { device: 'b', point: 'flag', ts: 12.5, value: 1, quality: 'good', flags: FLAG_TS_UNTRUSTED | 4 },
    ];
    ob.append(input);
    expect(ob.commit()).toBe(input.length);
    const got = ob.read(0, 100);
    expect(got.map((s) => s.seq)).toEqual(input.map((_, i) => i + 1));
    for (const [i, s] of got.entries()) {
      const { flags, ...want } = input[i];
      expect(strip(s)).toEqual(want);
      expect(Object.is(s.value, want.value)).toBe(true);
      expect(s.flags).toBe(flags ?? 0);
    }
  });

  it('keeps seq strictly increasing across deletes and restarts, and never reuses one', () => {
    const dir = tempDir();
    let ob = openOutbox(dir);
    ob.append(samples(10));
    ob.commit();
    // Delete the newest rows too: a rowid table alone would hand their seqs out again.
    expect(ob.ack([[1, 10]])).toBe(10);
    ob.close();
    ob = openOutbox(dir);
    expect(ob.stats().lastSeq).toBe(10);
    ob.append(samples(5));
    ob.commit();
    expect(ob.read(0, 100).map((s) => s.seq)).toEqual([11, 12, 13, 14, 15]);
    ob.ack([[15, 15]]);
    ob.close();
    ob = openOutbox(dir);
    ob.append(samples(1));
    ob.commit();
    expect(ob.maxSeq()).toBe(16);
  });

  it('loses nothing committed or queued across close and reopen', () => {
    const dir = tempDir();
    let ob = openOutbox(dir);
    const epoch = ob.epoch;
    ob.append(samples(500));
    ob.commit();
    ob.append(samples(250, 500)); // still queued: close() commits it
    ob.close();
    ob.close();
    ob = openOutbox(dir);
    expect(ob.epoch).toBe(epoch);
    expect(ob.startupReport).toMatchObject({ created: false, recreated: null, samples: 750, lastSeq: 750 });
    expect(ob.read(0, 1000).map(strip)).toEqual(samples(750));
  });

  it('commits on its timer in one go and tells listeners', async () => {
    const ob = openOutbox(tempDir(), { commitIntervalMs: 20 });
    const seen: number[] = [];
    ob.onCommit((last) => seen.push(last));
    ob.append(samples(3));
    ob.append(samples(2, 3));
    expect(ob.stats().pending).toBe(5);
    await new Promise((r) => setTimeout(r, 80));
    expect(ob.stats()).toMatchObject({ pending: 0, samples: 5 });
    expect(seen).toEqual([5]);
  });

  it('accepts acks out of order, twice, and across gaps; only acked rows leave', () => {
    const ob = openOutbox(tempDir());
    ob.append(samples(100));
    ob.commit();
    expect(ob.ack([[51, 60]])).toBe(10);
    expect(ob.ack([[91, 100], [1, 10]])).toBe(20);
    expect(ob.ack([[51, 60]])).toBe(0);
    expect(ob.ack([[5, 55]])).toBe(40);
    const left = ob.read(0, 1000).map((s) => s.seq);
    expect(left).toEqual(Array.from({ length: 30 }, (_, i) => 61 + i));
    expect(ob.stats()).toMatchObject({ samples: 30, minSeq: 61, maxSeq: 90 });
    expect(() => ob.ack([[3, 2]])).toThrow(RangeError);
  });

  it('reads windows by seq range', () => {
    const ob = openOutbox(tempDir());
    ob.append(samples(50));
    ob.commit();
    expect(ob.read(10, 5).map((s) => s.seq)).toEqual([11, 12, 13, 14, 15]);
    expect(ob.read(40, 100, 44).map((s) => s.seq)).toEqual([41, 42, 43]);
    expect(ob.read(50, 10)).toEqual([]);
  });

  it('stores events in the same seq space and reads them separately', () => {
    const ob = openOutbox(tempDir());
    ob.append(samples(2));
    ob.appendEvent(marker('p1'));
    ob.commit();
    ob.append(samples(1));
    ob.commit();
    const events = ob.readEvents(0, 10);
    expect(events).toEqual([{ seq: 1, ts: expect.any(Number), event: { kind: 'outbox-recreated', reason: 'p1' } }]);
    expect(ob.read(0, 10).map((s) => s.seq)).toEqual([2, 3, 4]);
    expect(ob.stats()).toMatchObject({ events: 1, samples: 3, minSeq: 1, maxSeq: 4 });
    ob.ack([[1, 1]]);
    expect(ob.readEvents(0, 10)).toEqual([]);
    expect(ob.stats().events).toBe(0);
  });

  it('exports a seq range lazily, page by page', () => {
    const ob = openOutbox(tempDir());
    ob.append(samples(2500));
    ob.commit();
    const it = ob.export({ from: 100, to: 2200 });
    expect(Array.isArray(it)).toBe(false);
    const seqs = [...it].map((s) => s.seq);
    expect(seqs.length).toBe(2101);
    expect(seqs[0]).toBe(100);
    expect(seqs[seqs.length - 1]).toBe(2200);
    expect([...ob.export()].length).toBe(2500);
  });

  it('serves a read-only view while the writer keeps writing', () => {
    const dir = tempDir();
    const ob = openOutbox(dir);
    ob.append(samples(100));
    ob.commit();
    const ro = Outbox.openReadOnly(dir);
    open.push(ro);
    expect(ro.stats()).toMatchObject({ mode: 'reader', samples: 100, epoch: ob.epoch, lastSeq: 100 });
    // A series created after the reader opened is resolved by reloading the dictionary.
    ob.append([{ device: 'late', point: 'new', ts: 5, value: 1, quality: 'good' }]);
    ob.commit();
    expect(ro.read(100, 10)).toEqual([{ device: 'late', point: 'new', ts: 5, value: 1, quality: 'good', seq: 101, flags: 0, series: expect.any(Number) }]);
    expect(ro.stats().samples).toBe(101);
    expect(ob.stats()).toMatchObject({ mode: 'writer', state: 'ok', samples: 101 });
    expect(() => Outbox.openReadOnly(tempDir())).toThrow(expect.objectContaining({ code: 'OUTBOX_NOT_FOUND' }));
  });

  it('hands out series indexes before the first sample, stable across restarts', () => {
    const dir = tempDir();
    let ob = openOutbox(dir);
    const level = ob.seriesId('pump1', 'level');
    const flow = ob.seriesId('pump1', 'flow');
    expect(ob.seriesId('pump1', 'level')).toBe(level);
    expect(flow).not.toBe(level);
    ob.append([{ device: 'pump1', point: 'flow', ts: 1, value: 2, quality: 'good' }, { device: 'pump2', point: 'level', ts: 1, value: 3, quality: 'good' }]);
    ob.commit();
    const [a, b] = ob.read(0, 10);
    expect(a.series).toBe(flow);
    ob.close();
    ob = openOutbox(dir);
    expect(ob.series()).toEqual([
      { id: level, device: 'pump1', point: 'level' },
      { id: flow, device: 'pump1', point: 'flow' },
      { id: b.series, device: 'pump2', point: 'level' },
    ]);
    expect(ob.seriesId('pump2', 'level')).toBe(b.series);
    const ro = Outbox.openReadOnly(dir);
    open.push(ro);
    expect(ro.series().length).toBe(3);
  });

  it('rejects a bad sample without queuing any of its batch', () => {
    const ob = openOutbox(tempDir());
    const bad = [...samples(3), { device: 'x', point: 'y', ts: NaN, value: 1, quality: 'good' } as SampleInput];
    expect(() => ob.append(bad)).toThrow(OutboxError);
    expect(() => ob.append([{ ...samples(1)[0], value: {} as never }])).toThrow(/value of type object/);
    expect(() => ob.append([{ ...samples(1)[0], flags: -1 }])).toThrow(/flags/);
    expect(ob.stats().pending).toBe(0);
  });

  it('refuses use after close', () => {
    const ob = openOutbox(tempDir());
    ob.close();
    expect(() => ob.append(samples(1))).toThrow(expect.objectContaining({ code: 'OUTBOX_CLOSED' }));
    expect(ob.commit()).toBe(0);
  });
});
