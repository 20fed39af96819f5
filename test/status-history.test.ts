/** The plots' memory stays within a fixed budget whatever the point count; widening keeps the plots right. */
import { describe, expect, it } from 'vitest';
import { bucketMsFor, HISTORY_BUDGET_BYTES, HistorySlab } from '../src/status/history.js';
import { PointHistory } from './helpers/point-history.js';
import { StatusState } from '../src/status/state.js';

const T0 = Date.UTC(2025, 5, 1, 10, 0, 0);
const HOUR = 3_600_000;

/** A state on a still clock with `n` points that each had one reading. */
function stateWith(n: number) {
  const st = new StatusState({ now: () => T0, processMetrics: false });
  st.observe(Array.from({ length: n }, (_, i) => ({ device: `d${i % 100}`, point: `p${i}`, ts: T0, value: i, quality: 'good' as const })));
  return st;
}

/** An hour at 1 Hz: a ramp, an uncertain stretch, a bad stretch with no value, then a silence. */
function feed(add: (ts: number, v: number | undefined, q: 'good' | 'uncertain' | 'bad') => void) {
  for (let s = 0; s < 3600; s++) {
    if (s >= 3000 && s < 3200) continue; // silence: a gap
    const q = s >= 1000 && s < 1100 ? 'uncertain' : s >= 2000 && s < 2400 ? 'bad' : 'good';
    add(T0 + s * 1000, q === 'bad' ? undefined : s % 100, q);
  }
}

describe('status history memory', () => {
  it('keeps 20 s buckets at 1,000 points and widens to 80 s at 10,000, an hour either way', () => {
    expect(bucketMsFor(1_000, 20_000, HOUR)).toBe(20_000);
    expect(bucketMsFor(10_000, 20_000, HOUR)).toBe(80_000);
    expect(bucketMsFor(20_000, 20_000, HOUR)).toBe(160_000);
    expect(stateWith(1_000).history('d0', 'p0')!.bucketMs).toBe(20_000);
    expect(stateWith(10_000).history('d0', 'p0')!.bucketMs).toBe(80_000);
  });

  it('stays within the budget at 10,000 and at 20,000 points (the old rings took 5,760 bytes a point)', () => {
    for (const n of [1_000, 10_000, 20_000]) {
      const st = stateWith(n);
      expect(st.historyBytes()).toBeLessThanOrEqual(HISTORY_BUDGET_BYTES);
      expect(st.allHistory().points).toHaveLength(n);
    }
    expect(stateWith(10_000).historyBytes()).toBe(10_000 * 45 * 18);
  });

  it('keeps the rings of 10,000 points in a few shared buffers, not a typed array per point', () => {
    const st = stateWith(10_000);
    expect(st.historyBuffers()).toBeGreaterThan(0);
    expect(st.historyBuffers()).toBeLessThanOrEqual(Math.ceil(10_000 / 1024));
  });
});

describe('a slab of rings', () => {
  it('widens every ring in place as each would have widened alone, and reuses a released ring empty', () => {
    const slab = new HistorySlab(20_000, HOUR, 1);
    const alone = [new PointHistory(20_000, HOUR), new PointHistory(20_000, HOUR), new PointHistory(20_000, HOUR)];
    const rings = alone.map(() => slab.alloc());
    expect(rings).toEqual([0, 1, 2]);
    expect(slab.buffers).toBe(2); // two rings a buffer here
    feed((ts, v, q) => {
      rings.forEach((r, i) => slab.add(r, ts + i * 7_000, v === undefined ? v : v * (i + 1), q));
      alone.forEach((h, i) => h.add(ts + i * 7_000, v === undefined ? v : v * (i + 1), q));
    });
    slab.widen();
    slab.widen();
    expect(slab.bucketMs).toBe(80_000);
    expect(slab.bytes).toBe(3 * 45 * 18);
    rings.forEach((r, i) => expect(slab.chart(r, T0 - 1)).toEqual(alone[i]!.widened().widened().chart(T0 - 1)));
    expect(slab.current(2)).toEqual(alone[2]!.widened().widened().current());
    slab.release(1);
    expect(slab.rings).toBe(2);
    expect(slab.alloc()).toBe(1);
    expect(slab.chart(1, 0).t).toEqual([]);
    slab.add(1, T0 + HOUR, 5);
    expect(slab.series(1, 0)).toMatchObject({ t: [Math.floor((T0 + HOUR) / 80_000) * 80_000], last: [5] });
    expect(slab.chart(0, T0 - 1)).toEqual(alone[0]!.widened().widened().chart(T0 - 1));
  });
});

describe('a widened plot', () => {
  it('has the min, max, mean, qualities and gaps the coarser ring would have had from the start', () => {
    const direct = new PointHistory(80_000, HOUR);
    const fine = new PointHistory(20_000, HOUR);
    feed((ts, v, q) => {
      direct.add(ts, v, q);
      fine.add(ts, v, q);
    });
    const want = direct.chart(T0 - 1);
    const got = fine.widened().widened().chart(T0 - 1);
    expect(got.bucketMs).toBe(80_000);
    expect({ ...got, mean: [], stats: null }).toEqual({ ...want, mean: [], stats: null });
    got.mean.forEach((m, i) => expect(m).toBeCloseTo(want.mean[i]!, 3));
    expect(got.stats).toMatchObject({ min: 0, max: 99, readings: want.stats!.readings });
    // The ramp's extremes in every full bucket, uncertain shading, bad-only bands and the silence left out.
    expect(got.min[0]).toBe(0);
    expect(got.max[0]).toBe(79);
    expect(got.quality.filter((q) => q === 1).length).toBeGreaterThan(0);
    expect(got.bad.length).toBeGreaterThan(0);
    expect(got.t.some((t) => t >= T0 + 3_040_000 && t < T0 + 3_120_000)).toBe(false);
  });

  it('keeps the first points right when more points widen every ring', () => {
    const st = new StatusState({ now: () => T0 + HOUR, processMetrics: false });
    feed((ts, v, quality) => st.observe([{ device: 'd', point: 'p', ts, value: v ?? null, quality }]));
    const before = st.chart({ devices: [] } as never, 'd', 'p')!;
    st.observe(Array.from({ length: 9_999 }, (_, i) => ({ device: 'e', point: `p${i}`, ts: T0 + HOUR, value: 1, quality: 'good' as const })));
    const after = st.chart({ devices: [] } as never, 'd', 'p')!;
    expect([before.bucketMs, after.bucketMs]).toEqual([20_000, 80_000]);
    expect(after.stats).toMatchObject({ min: before.stats!.min, max: before.stats!.max });
    // The window starts at a bucket edge: the coarser oldest bucket may fall out, no more.
    expect(after.stats!.readings).toBeGreaterThan(before.stats!.readings - 80);
    expect(after.stats!.readings).toBeLessThanOrEqual(before.stats!.readings);
    expect(after.t.length).toBeGreaterThan(35);
    expect(after.t.every((t) => t % 80_000 === 0)).toBe(true);
  });
});
