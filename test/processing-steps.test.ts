import { describe, expect, it } from 'vitest';
import { compileRange, namurCheck, parseDeadband, Processor, windowStart, NO_GOOD_SAMPLE } from '../src/processing/index.js';
import type { FlaggedSample, ProcessingPoint } from '../src/processing/index.js';
import type { Quality, SampleValue } from '../src/sample.js';

const S = 1000;
const T0 = 1_700_000_000_000 - (1_700_000_000_000 % 3_600_000); // on the hour: windows line up with the test's seconds

function rig(point: Omit<ProcessingPoint, 'id'>, pollIntervalMs = 1000) {
  let mono = 0;
  const p = new Processor([{ id: 'd', pollIntervalMs, points: [{ id: 'p', ...point }] }], { monotonic: () => mono });
  return {
    p,
    /** Feeds one sample at T0 + sec seconds; the monotonic clock follows. */
    feed(sec: number, value: SampleValue, quality: Quality = 'good', reason?: string) {
      mono = sec * S;
      const s: FlaggedSample = { device: 'd', point: 'p', ts: T0 + sec * S, value, quality };
      if (reason !== undefined) s.reason = reason;
      return p.process([s]);
    },
    tick(sec: number) {
      mono = sec * S;
      return p.tick(T0 + sec * S);
    },
  };
}

/** [seconds, value] with values rounded to 1e-9, so decimal expectations read naturally. */
const at = (samples: FlaggedSample[]) =>
  samples.map((s) => [(s.ts - T0) / S, typeof s.value === 'number' && Number.isFinite(s.value) ? Math.round(s.value * 1e9) / 1e9 : s.value]);

describe('range', () => {
  it('maps raw to eng linearly and does not clamp', () => {
    const f = compileRange({ raw: [4, 20], eng: [0, 10] });
    expect([4, 12, 20, 2, 22].map(f)).toEqual([0, 5, 10, -1.25, 11.25]);
    const reversed = compileRange({ raw: [4, 20], eng: [10, 0] });
    expect([4, 20, 8].map(reversed)).toEqual([10, 0, 7.5]);
  });
});

describe('sensorFault namur', () => {
  it('classifies the loop current by NAMUR NE43', () => {
    const q = (mA: number) => namurCheck(mA)?.quality ?? 'good';
    expect([0, 2.1, 3.59].map(q)).toEqual(['bad', 'bad', 'bad']);
    expect([3.6, 3.7, 3.79].map(q)).toEqual(['uncertain', 'uncertain', 'uncertain']);
    expect([3.8, 4, 12, 20, 20.5].map(q)).toEqual(['good', 'good', 'good', 'good', 'good']);
    expect([20.51, 21].map(q)).toEqual(['uncertain', 'uncertain']);
    expect([21.01, 24, NaN].map(q)).toEqual(['bad', 'bad', 'bad']);
    expect(namurCheck(2.1)?.reason).toBe('sensor fault: 2.1 mA (NAMUR NE43: below 3.6 mA, open loop or broken sensor)');
    expect(namurCheck(22)?.reason).toBe('sensor fault: 22 mA (NAMUR NE43: above 21.0 mA, short circuit or transmitter failure)');
    expect(namurCheck(3.7)?.reason).toBe('uncertain: 3.7 mA (NAMUR NE43: below 3.8 mA, under range)');
    expect(namurCheck(20.7)?.reason).toBe('uncertain: 20.7 mA (NAMUR NE43: above 20.5 mA, over range)');
  });

  it('runs on the raw current before range: a fault is bad with a null value, uncertain keeps the eng value', () => {
    const r = rig({ sensorFault: 'namur', range: { raw: [4, 20], eng: [0, 10] } });
    expect(r.feed(0, 12).samples).toEqual([{ device: 'd', point: 'p', ts: T0, value: 5, quality: 'good' }]);
    const [fault] = r.feed(1, 2.1).samples;
    expect(fault).toMatchObject({ value: null, quality: 'bad', reason: expect.stringContaining('2.1 mA') });
    expect(r.feed(2, 3.7).samples[0]).toMatchObject({ value: expect.closeTo(-0.1875, 9), quality: 'uncertain', reason: expect.stringContaining('under range') });
  });

  it('leaves upstream-bad, non-numeric and already-uncertain samples as they are', () => {
    const r = rig({ sensorFault: 'namur' });
    expect(r.feed(0, null, 'bad', 'timeout after 500 ms').samples[0]).toMatchObject({ value: null, quality: 'bad', reason: 'timeout after 500 ms' });
    expect(r.feed(1, true).samples[0]).toMatchObject({ value: true, quality: 'good' });
    expect(r.feed(2, 12, 'uncertain', 'clock').samples[0]).toMatchObject({ value: 12, quality: 'uncertain', reason: 'clock' });
    expect(r.feed(3, 1, 'uncertain', 'clock').samples[0]).toMatchObject({ value: null, quality: 'bad', reason: expect.stringContaining('sensor fault') });
  });

  it('never lets an alarm fire on a faulted value, and keeps an active alarm active through the fault', () => {
    const r = rig({ sensorFault: 'namur', range: { raw: [4, 20], eng: [0, 10] }, alarms: [{ type: 'low', limit: 1 }, { type: 'high', limit: 8 }] });
    expect(r.feed(0, 2.1).alarms).toEqual([]); // -1.19 bar would be a low alarm
    expect(r.feed(1, 23).alarms).toEqual([]); // 11.9 bar would be a high alarm
    expect(r.feed(2, 18).alarms.map((a) => [a.alarm, a.state])).toEqual([['high', 'raised']]);
    expect(r.feed(3, 0).alarms).toEqual([]); // the loop breaks: not a clear
    expect(r.feed(4, 12).alarms.map((a) => [a.alarm, a.state])).toEqual([['high', 'cleared']]);
  });
});

describe('low and high alarms', () => {
  it('raise at the limit and clear only past limit -/+ hysteresis', () => {
    const r = rig({ alarms: [{ type: 'high', limit: 5, hysteresis: 1, severity: 'critical', message: 'gas' }] });
    const events = [4, 5, 5.5, 4.5, 4, 3.9, 4.5, 5].map((v, i) => r.feed(i, v).alarms);
    expect(events.map((e) => e.map((a) => a.state))).toEqual([[], ['raised'], [], [], [], ['cleared'], [], ['raised']]);
    expect(events[1][0]).toEqual({
      state: 'raised', device: 'd', point: 'p', alarm: 'high', type: 'high', severity: 'critical', value: 5, limit: 5, ts: T0 + 1 * S, message: 'gas',
    });
    const low = rig({ alarms: [{ id: 'dry', type: 'low', limit: 1, hysteresis: 0.5 }] });
    const lows = [2, 1, 0.5, 1.5, 1.51].map((v, i) => low.feed(i, v).alarms.map((a) => `${a.alarm}:${a.state}:${a.severity}`));
    expect(lows).toEqual([[], ['dry:raised:major'], [], [], ['dry:cleared:major']]);
  });

  it('raise after the condition held delayS, clear after it was gone delayS; any good sample outside resets', () => {
    const r = rig({ alarms: [{ type: 'high', limit: 5, delayS: 10 }] });
    const seq: Array<[number, number]> = [[0, 6], [5, 4], [6, 6], [15, 6], [15.999, 6], [16, 6], [20, 4], [25, 6], [26, 4], [35.999, 4], [36, 4]];
    const got = seq.flatMap(([t, v]) => r.feed(t, v).alarms.map((a) => [t, a.state]));
    expect(got).toEqual([[16, 'raised'], [36, 'cleared']]);
  });

  it('do not see bad or uncertain samples: a delay neither resets nor completes on them', () => {
    const r = rig({ alarms: [{ type: 'high', limit: 5, delayS: 10 }] });
    expect(r.feed(0, 6).alarms).toEqual([]);
    expect(r.feed(5, null, 'bad').alarms).toEqual([]);
    expect(r.feed(9, 1, 'uncertain').alarms).toEqual([]);
    expect(r.feed(10, 6).alarms.map((a) => a.state)).toEqual(['raised']);
    expect(r.feed(30, 0, 'uncertain').alarms).toEqual([]);
  });

  it('read booleans as 0 and 1', () => {
    const r = rig({ alarms: [{ id: 'door', type: 'high', limit: 1 }] });
    expect([false, true, true, false].map((v, i) => r.feed(i, v).alarms.map((a) => a.state))).toEqual([[], ['raised'], [], ['cleared']]);
  });
});

describe('rateOfChange alarm', () => {
  it('raises on a burst (-0.5 bar in 60 s) at the first sample after the drop and clears when the rate is back', () => {
    const r = rig({ alarms: [{ id: 'burst', type: 'rateOfChange', limit: -0.5, perS: 60 }] });
    for (let t = 0; t <= 60; t += 10) expect(r.feed(t, 3.0).alarms).toEqual([]);
    const [raise] = r.feed(70, 2.4).alarms;
    expect(raise).toMatchObject({ state: 'raised', alarm: 'burst', type: 'rateOfChange', limit: -0.5, ts: T0 + 70 * S });
    expect(raise.value).toBeCloseTo(-0.6);
    for (let t = 80; t < 130; t += 10) expect(r.feed(t, 2.4).alarms).toEqual([]);
    expect(r.feed(130, 2.4).alarms.map((a) => a.state)).toEqual(['cleared']);
  });

  it('is unknown until the samples span perS, then spans at least perS (no extrapolated jitter)', () => {
    const r = rig({ alarms: [{ type: 'rateOfChange', limit: -0.5, perS: 60 }] });
    expect(r.feed(0, 3).alarms).toEqual([]);
    expect(r.feed(20, 2).alarms).toEqual([]); // -1 in 20 s, but nothing is 60 s old yet
    expect(r.feed(59, 2).alarms).toEqual([]);
    expect(r.feed(60, 2).alarms.map((a) => a.state)).toEqual(['raised']); // 3 -> 2 over 60 s
    const jitter = rig({ alarms: [{ type: 'rateOfChange', limit: -0.5, perS: 60 }] });
    for (let t = 0; t <= 300; t++) expect(jitter.feed(t, 3 + (t % 2 ? 0.2 : -0.2)).alarms).toEqual([]);
  });

  it('rises with a positive limit, scales sparse samples, honours delayS and forgets its window when time goes back', () => {
    const rise = rig({ alarms: [{ type: 'rateOfChange', limit: 2, perS: 60 }] });
    rise.feed(0, 0);
    const [e] = rise.feed(90, 4).alarms; // 4 in 90 s = 2.67 per 60 s
    expect(e.value).toBeCloseTo(8 / 3);
    const delayed = rig({ alarms: [{ type: 'rateOfChange', limit: 1, perS: 10, delayS: 5 }] });
    const got = [0, 10, 12, 14, 15, 16].flatMap((t) => delayed.feed(t, t).alarms.map((a) => [t, a.state]));
    expect(got).toEqual([[15, 'raised']]);
    const back = rig({ alarms: [{ type: 'rateOfChange', limit: -1, perS: 10 }] });
    back.feed(100, 10);
    expect(back.feed(50, 0).alarms).toEqual([]); // a clock step back is not a fall
    expect(back.feed(60, 0).alarms).toEqual([]);
  });
});

describe('stale alarm', () => {
  it('fires on tick without samples and clears at the next good sample with the silence as value', () => {
    const r = rig({ alarms: [{ type: 'stale', afterS: 30, severity: 'minor' }] });
    r.feed(0, 1);
    expect(r.tick(29.9).alarms).toEqual([]);
    const [raise] = r.tick(30).alarms;
    expect(raise).toMatchObject({ state: 'raised', alarm: 'stale', type: 'stale', severity: 'minor', value: 30, limit: 30, ts: T0 + 30 * S });
    expect(r.tick(40).alarms).toEqual([]);
    expect(r.feed(45, 1).alarms).toMatchObject([{ state: 'cleared', value: 45, ts: T0 + 45 * S }]);
  });

  it('counts from start, ignores bad samples as proof of life and raises on one once silent long enough', () => {
    const r = rig({ alarms: [{ type: 'stale', afterS: 10 }] });
    expect(r.feed(5, null, 'bad').alarms).toEqual([]);
    expect(r.feed(10, null, 'bad').alarms).toMatchObject([{ state: 'raised', ts: T0 + 10 * S }]);
    expect(r.feed(11, 2, 'uncertain').alarms).toEqual([]);
    expect(r.feed(12, 2).alarms).toMatchObject([{ state: 'cleared' }]);
  });

  it('measures silence on the monotonic clock, so a wall-clock step does not raise it', () => {
    let mono = 0;
    const p = new Processor([{ id: 'd', points: [{ id: 'p', alarms: [{ type: 'stale', afterS: 30 }] }] }], { monotonic: () => mono });
    p.process([{ device: 'd', point: 'p', ts: T0, value: 1, quality: 'good' }]);
    mono = 1000;
    expect(p.tick(T0 + 86_400_000).alarms).toEqual([]); // NTP stepped the wall clock a day ahead
  });
});

describe('report-by-exception', () => {
  const feedAll = (r: ReturnType<typeof rig>, seq: Array<[number, SampleValue, Quality?]>) =>
    seq.flatMap(([t, v, q]) => at(r.feed(t, v, q ?? 'good').samples));

  it('reports a change larger than an absolute deadband, the first sample, and at least every maxIntervalS', () => {
    const r = rig({ deadband: 0.5, maxIntervalS: 10 });
    const steady = Array.from({ length: 10 }, (_, i): [number, number] => [6 + i, 10.09]);
    expect(feedAll(r, [[0, 10], [1, 10.3], [2, 10.6], [3, 10.5], [4, 10.1], [5, 10.09], ...steady])).toEqual([
      [0, 10], [2, 10.6], [5, 10.09], [15, 10.09],
    ]);
  });

  it('takes a percentage of the range span, or of the last reported value without a range', () => {
    expect(parseDeadband('2%')).toEqual({ fraction: 0.02 });
    expect(parseDeadband(' 0 % ')).toBeNull();
    expect(parseDeadband(0)).toBeNull();
    const span = rig({ deadband: '2%', range: { raw: [0, 100], eng: [0, 10] } });
    expect(feedAll(span, [[0, 50], [1, 51], [2, 52.1], [3, 52.2]])).toEqual([[0, 5], [2, 5.21]]);
    const rel = rig({ deadband: '10%' });
    expect(feedAll(rel, [[0, 100], [1, 109], [2, 111], [3, 121], [4, 123]])).toEqual([[0, 100], [2, 111], [4, 123]]);
  });

  it('reports every quality change, emitting the last suppressed good sample first', () => {
    const r = rig({ deadband: 1 });
    const out = feedAll(r, [[0, 10], [1, 10.1], [2, 10.2], [3, null, 'bad'], [4, null, 'bad'], [5, 10.2], [6, 10.3, 'uncertain'], [7, 10.3, 'uncertain'], [8, 10.3]]);
    expect(out).toEqual([[0, 10], [2, 10.2], [3, null], [5, 10.2], [6, 10.3], [8, 10.3]]);
  });

  it('emits the last value before a gap, on the first sample after it or on tick', () => {
    const r = rig({ deadband: 1 });
    expect(feedAll(r, [[0, 10], [1, 10.1], [2, 10.2], [20, 10.3], [21, 10.3]])).toEqual([[0, 10], [2, 10.2]]);
    expect(at(r.tick(23).samples)).toEqual([]);
    expect(at(r.tick(24.1).samples)).toEqual([[21, 10.3]]); // 3 intervals of 1 s without a sample
    expect(at(r.tick(30).samples)).toEqual([]);
    const slow = rig({ deadband: 1 }, 10_000);
    expect(feedAll(slow, [[0, 10], [10, 10.1], [35, 10.2]])).toEqual([[0, 10]]); // 25 s is no gap at a 10 s poll
  });

  it('reports the sample of an alarm transition inside the deadband', () => {
    const r = rig({ deadband: 5, alarms: [{ type: 'high', limit: 12 }] });
    expect(feedAll(r, [[0, 10], [1, 12], [2, 12.5], [3, 11.99], [4, 11]])).toEqual([[0, 10], [1, 12], [3, 11.99]]);
  });

  it('reports strings and booleans on change and counts NaN as a change', () => {
    const r = rig({ deadband: 1 });
    expect(feedAll(r, [[0, true], [1, true], [2, false], [3, 'a'], [4, 'a'], [5, NaN], [6, NaN], [7, 3]])).toEqual([
      [0, true], [2, false], [3, 'a'], [5, NaN], [7, 3],
    ]);
  });

  it('with aggregate raw: false sends only transitions and quality changes', () => {
    const r = rig({ aggregate: { windowS: 3600, functions: ['avg'], raw: false }, alarms: [{ type: 'high', limit: 5 }] });
    expect(feedAll(r, [[0, 1], [1, 2], [2, 6], [3, 7], [4, null, 'bad'], [5, 3], [6, 4]])).toEqual([[2, 6], [4, null], [5, 3]]);
  });
});

describe('aggregate', () => {
  it('summarises a wall-clock window at its end, stamped with its start', () => {
    const r = rig({ aggregate: { windowS: 60, functions: ['min', 'max', 'avg', 'count', 'first', 'last', 'sum'] } });
    const raw = [[10, 4], [20, 1], [30, null, 'bad'], [59, 7]] as Array<[number, number | null, Quality?]>;
    for (const [t, v, q] of raw) expect(r.feed(t, v, q ?? 'good').samples).toHaveLength(1);
    const { samples } = r.feed(60, 5);
    expect(samples.map((s) => [s.point, s.ts - T0, s.value, s.quality])).toEqual([
      ['p.min', 0, 1, 'good'], ['p.max', 0, 7, 'good'], ['p.avg', 0, 4, 'good'], ['p.count', 0, 3, 'good'],
      ['p.first', 0, 4, 'good'], ['p.last', 0, 7, 'good'], ['p.sum', 0, 12, 'good'], ['p', 60_000, 5, 'good'],
    ]);
    expect(windowStart(T0 + 61_500, 60_000)).toBe(T0 + 60_000);
  });

  it('closes on tick after the grace, leaves late samples out, and marks a window without good samples', () => {
    const r = rig({ aggregate: { windowS: 60, functions: ['count', 'avg'] } });
    r.feed(0, 2);
    r.feed(30, null, 'bad');
    expect(r.tick(60.999).samples).toEqual([]);
    expect(r.tick(61).samples.map((s) => [s.point, s.value])).toEqual([['p.count', 2 / 2], ['p.avg', 2]]);
    expect(r.feed(59.5, 100).samples.map((s) => s.point)).toEqual(['p']); // acquired before the end, too late
    r.feed(70, null, 'bad');
    expect(r.tick(121).samples).toEqual([
      { device: 'd', point: 'p.count', ts: T0 + 60_000, value: 0, quality: 'good' },
      { device: 'd', point: 'p.avg', ts: T0 + 60_000, value: null, quality: 'bad', reason: NO_GOOD_SAMPLE },
    ]);
    expect(r.tick(500).samples).toEqual([]); // no sample, no window
  });

  it('averages booleans as 0/1 and carries the flags of its samples', () => {
    let mono = 0;
    const p = new Processor([{ id: 'd', points: [{ id: 'p', aggregate: { windowS: 10, functions: ['avg'] } }] }], { monotonic: () => mono++ });
    p.process([
      { device: 'd', point: 'p', ts: T0, value: true, quality: 'good', flags: 1 },
      { device: 'd', point: 'p', ts: T0 + 1, value: false, quality: 'good' },
    ]);
    expect(p.tick(T0 + 11_000).samples).toEqual([{ device: 'd', point: 'p.avg', ts: T0, value: 0.5, quality: 'good', flags: 1 }]);
  });
});
