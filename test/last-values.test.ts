import { describe, expect, it } from 'vitest';
import { configSchema } from '../src/config/schema.js';
import { LastValues, MAX_POINTS } from '../src/last-values.js';
import { StatusState } from '../src/status/state.js';
import type { OutboxStats } from '../src/outbox/types.js';
import type { StatusGateway } from '../src/status/types.js';

const s = (device: string, point: string, ts: number, value: number, quality: 'good' | 'bad' = 'good', reason?: string) => ({ device, point, ts, value, quality, reason });

describe('last-value cache', () => {
  it('keeps the newest value and quality of each point, never an older one arriving late', () => {
    const lv = new LastValues();
    lv.update([s('d', 'p', 10, 1), s('d', 'q', 10, 5)]);
    lv.update([s('d', 'p', 20, 2, 'bad')]);
    lv.update([s('d', 'p', 15, 9)]);
    expect(lv.get('d', 'p')).toMatchObject({ value: 2, quality: 'bad', ts: 20, goodValue: 1, goodTs: 10 });
    expect(lv.get('d', 'q')).toMatchObject({ value: 5, quality: 'good', ts: 10 });
    expect(lv.get('d', 'x')).toBeUndefined();
    expect(lv.get('other', 'p')).toBeUndefined();
  });

  it('forgets the points a reload removed', () => {
    const lv = new LastValues();
    lv.update([s('a', 'p', 1, 1), s('a', 'q', 1, 1), s('b', 'p', 1, 1)]);
    lv.retain((device, point) => device === 'a' && point === 'p');
    expect([lv.get('a', 'p')?.value, lv.get('a', 'q'), lv.get('b', 'p')]).toEqual([1, undefined, undefined]);
  });

  it('keeps why a point is not good until a reading without a reason, and the last good reading behind it', () => {
    const lv = new LastValues();
    lv.update([s('d', 'p', 10, 1), s('d', 'p', 20, 0, 'bad', 'timeout')]);
    expect(lv.get('d', 'p')).toMatchObject({ quality: 'bad', reason: 'timeout', goodValue: 1, goodTs: 10 });
    lv.update([s('d', 'p', 30, 3)]);
    expect(lv.get('d', 'p')).toMatchObject({ quality: 'good', reason: undefined, goodValue: 3, goodTs: 30 });
  });

  it('stays bounded when a source invents point names, and counts the points a reload removed as free again', () => {
    const lv = new LastValues();
    lv.update(Array.from({ length: MAX_POINTS + 5 }, (_, i) => s('d', `p${i}`, 1, i)));
    expect([...lv.points('d')]).toHaveLength(MAX_POINTS);
    lv.retain((_, point) => point !== 'p0');
    lv.update([s('d', 'new', 1, 1)]);
    expect(lv.get('d', 'new')?.value).toBe(1);
  });
});

describe('the status page on the core cache', () => {
  const config = configSchema.parse({
    gateway: { id: 'gw' },
    buses: [{ id: 'b', transport: 'tcp', host: '127.0.0.1', port: 1502 }],
    devices: [{ id: 'd', bus: 'b', unit: 1, points: [{ id: 'p', fc: 3, address: 0 }] }],
  });
  const stats: OutboxStats = {
    epoch: 'e1', createdAt: 0, mode: 'writer', state: 'ok', samples: 0, events: 0, bytes: 0, maxBytes: 1, oldestTs: null, newestTs: null,
    minSeq: null, maxSeq: null, lastSeq: 0, dropped: { maxBytes: 0, maxAge: 0, memoryQueueFull: 0 }, pending: 0,
  };
  const gateway: StatusGateway = { config, buses: [], outbox: { stats: () => stats } };
  const point = (st: StatusState) => st.snapshot(gateway).buses[0]!.devices[0]!.points[0]!;

  it('shows what the gateway put in the cache and keeps only its plot and counts, never writing the cache', () => {
    const values = new LastValues();
    const st = new StatusState({ values, now: () => 40, processMetrics: false });
    const batch = [s('d', 'p', 10, 1), s('d', 'p', 30, 0, 'bad', 'timeout')];
    values.update(batch); // the gateway, before it calls onSamples
    st.observe(batch);
    expect(point(st)).toMatchObject({ value: 0, quality: 'bad', ts: 30, reason: 'timeout', lastGood: { value: 1, ts: 10 } });
    st.observe([s('d', 'p', 35, 7)]); // not through the gateway: the page does not invent a latest value
    expect(point(st)).toMatchObject({ value: 0, ts: 30 });
    expect(st.history('d', 'p')!.last).toEqual([7]);
  });

  it('keeps a newer reading when an older one arrives late', () => {
    const st = new StatusState({ now: () => 40, processMetrics: false });
    st.observe([s('d', 'p', 30, 2)]);
    st.observe([s('d', 'p', 20, 1)]);
    expect(point(st)).toMatchObject({ value: 2, ts: 30 });
  });
});
