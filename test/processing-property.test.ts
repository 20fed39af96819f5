import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Processor, type AlarmConfig, type AggregateFn, type FlaggedSample, type ProcessingPoint } from '../src/processing/index.js';
import type { Quality, SampleValue } from '../src/sample.js';

const T0 = 1_700_000_000_000;
const QUALITIES: Quality[] = ['good', 'good', 'good', 'uncertain', 'bad'];

/** Strictly increasing timestamps from positive steps, so a sample is identified by its ts. */
const timeline = (steps: number[]) => {
  let t = T0;
  return steps.map((d) => (t += d));
};

function run(point: Omit<ProcessingPoint, 'id'>, samples: FlaggedSample[], tickEvery = 0) {
  let mono = 0;
  const p = new Processor([{ id: 'd', points: [{ id: 'p', ...point }] }], { monotonic: () => mono });
  const out: FlaggedSample[] = [];
  const alarms: ReturnType<Processor['process']>['alarms'] = [];
  let lastTick = samples[0]?.ts ?? T0;
  for (const s of samples) {
    if (tickEvery > 0) {
      // Ticks never run ahead of the next sample: both are on one clock.
      for (let now = lastTick + tickEvery; now <= s.ts; now += tickEvery) {
        mono = now - T0;
        const r = p.tick(now);
        out.push(...r.samples);
        alarms.push(...r.alarms);
        lastTick = now;
      }
    }
    mono = s.ts - T0;
    const r = p.process([s]);
    out.push(...r.samples);
    alarms.push(...r.alarms);
  }
  return { p, out, alarms };
}

const sample = (ts: number, value: SampleValue, quality: Quality): FlaggedSample => ({ device: 'd', point: 'p', ts, value, quality });

describe('processing properties', () => {
  it('(a) hysteresis and delay bound chatter: noise below the hysteresis gives at most one raise and one clear', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('high' as const, 'low' as const),
        fc.double({ min: -100, max: 100, noNaN: true }),
        fc.double({ min: 0.01, max: 10, noNaN: true }),
        fc.double({ min: 0, max: 0.999, noNaN: true }),
        fc.integer({ min: 0, max: 5 }),
        fc.array(fc.tuple(fc.double({ min: -1, max: 1, noNaN: true }), fc.integer({ min: 1, max: 3000 }), fc.constantFrom(...QUALITIES)), { minLength: 1, maxLength: 120 }),
        fc.nat(120),
        (type, limit, hysteresis, share, delayS, noise, split) => {
          const a = hysteresis * share; // amplitude strictly below the hysteresis
          const sign = type === 'high' ? -1 : 1;
          const ts = timeline(noise.map((n) => n[1]));
          // First around the limit, then around the clear threshold: each place can flip the alarm at most once.
          const samples = noise.map(([n, , q], i) => sample(ts[i], (i < split ? limit : limit + sign * hysteresis) + n * a, q));
          const { alarms } = run({ alarms: [{ type, limit, hysteresis, delayS }] }, samples);
          const states = alarms.map((e) => e.state);
          expect(states.filter((s) => s === 'raised').length).toBeLessThanOrEqual(1);
          expect(states.filter((s) => s === 'cleared').length).toBeLessThanOrEqual(1);
          if (states.length > 0) expect(states[0]).toBe('raised');
        },
      ),
      { numRuns: 300 },
    );
  });

  const alarmArb: fc.Arbitrary<AlarmConfig> = fc.oneof(
    fc.record({
      type: fc.constantFrom('high' as const, 'low' as const),
      limit: fc.integer({ min: -5, max: 5 }),
      hysteresis: fc.constantFrom(0, 0.5, 2),
      delayS: fc.constantFrom(0, 1, 5),
    }),
    fc.record({ type: fc.constant('rateOfChange' as const), limit: fc.constantFrom(-2, -0.5, 0.5, 2), perS: fc.constantFrom(1, 5, 30), delayS: fc.constantFrom(0, 2) }),
    fc.record({ type: fc.constant('stale' as const), afterS: fc.constantFrom(1, 3, 10) }),
  );

  const streamArb = fc.array(
    fc.tuple(
      fc.oneof(fc.double({ min: -10, max: 10, noNaN: true }), fc.integer({ min: -10, max: 10 }), fc.constant(null)),
      fc.integer({ min: 1, max: 4000 }),
      fc.constantFrom(...QUALITIES),
    ),
    { maxLength: 150 },
  );

  it('(b) report-by-exception never hides an alarm transition or a quality change', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.double({ min: 0, max: 20, noNaN: true }), fc.constantFrom('5%', '50%', '300%')),
        fc.option(fc.integer({ min: 1, max: 60 }), { nil: undefined }),
        fc.array(alarmArb, { maxLength: 4 }).map((as) => as.map((a, i) => ({ ...a, id: `a${i}` }))),
        fc.boolean(),
        fc.boolean(),
        streamArb,
        (deadband, maxIntervalS, alarms, raw, ranged, stream) => {
          const ts = timeline(stream.map((x) => x[1]));
          const samples = stream.map(([v, , q], i) => sample(ts[i], v, q));
          const point: Omit<ProcessingPoint, 'id'> = { deadband, maxIntervalS, alarms };
          if (!raw) point.aggregate = { windowS: 60, functions: ['avg'], raw: false };
          if (ranged) point.range = { raw: [0, 10], eng: [0, 100] };
          const { out, alarms: events } = run(point, samples, 1000);
          const reported = new Set(out.filter((s) => s.point === 'p').map((s) => s.ts));
          // Transitions found on a sample carry its ts; a stale raise on tick carries the tick's now instead.
          for (const e of events) if (ts.includes(e.ts)) expect(reported.has(e.ts)).toBe(true);
          let prev: Quality = 'good';
          for (const s of samples) {
            if (s.quality !== prev) expect(reported.has(s.ts)).toBe(true);
            prev = s.quality;
          }
          if (raw) expect(out.filter((s) => s.point === 'p').map((s) => s.ts)).toEqual([...reported].sort((x, y) => x - y));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('(c) with a deadband of 0 every sample passes, unchanged', () => {
    fc.assert(
      fc.property(fc.constantFrom(0, '0%'), fc.option(fc.integer({ min: 1, max: 60 }), { nil: undefined }), streamArb, (deadband, maxIntervalS, stream) => {
        const ts = timeline(stream.map((x) => x[1]));
        const samples = stream.map(([v, , q], i) => sample(ts[i], v, q));
        const { out } = run({ deadband, maxIntervalS, alarms: [{ type: 'high', limit: 0 }] }, samples, 700);
        expect(out).toEqual(samples);
        for (let i = 0; i < out.length; i++) expect(out[i]).toBe(samples[i]);
      }),
      { numRuns: 200 },
    );
  });

  it('(d) aggregates equal a naive recomputation per wall-clock window', () => {
    const FNS: AggregateFn[] = ['min', 'max', 'avg', 'count', 'first', 'last', 'sum'];
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 120 }),
        fc.shuffledSubarray(FNS, { minLength: 1 }),
        fc.array(
          fc.tuple(
            fc.oneof(fc.double({ min: -1e6, max: 1e6, noNaN: true }), fc.boolean(), fc.constant(null), fc.constant(Infinity)),
            // Mostly dense (many samples a window), sometimes a jump over several windows.
            fc.oneof({ arbitrary: fc.integer({ min: 1, max: 3000 }), weight: 9 }, { arbitrary: fc.integer({ min: 1, max: 400_000 }), weight: 1 }),
            fc.constantFrom(...QUALITIES),
          ),
          { maxLength: 300 },
        ),
        fc.constantFrom(0, 500, 10_000),
        (windowS, functions, stream, tickEvery) => {
          const ts = timeline(stream.map((x) => x[1]));
          const samples = stream.map(([v, , q], i) => sample(ts[i], v, q));
          const { p, out } = run({ aggregate: { windowS, functions } }, samples, tickEvery);
          out.push(...p.tick((ts.at(-1) ?? T0) + windowS * 1000 + 1000).samples);
          const got = out.filter((s) => s.point !== 'p');

          const ms = windowS * 1000;
          const windows = new Map<number, number[]>();
          for (const s of samples) {
            const w = Math.floor(s.ts / ms) * ms;
            const list = windows.get(w) ?? [];
            windows.set(w, list);
            const v = typeof s.value === 'boolean' ? Number(s.value) : s.value;
            if (s.quality === 'good' && typeof v === 'number' && Number.isFinite(v)) list.push(v);
          }
          const want: FlaggedSample[] = [];
          for (const [w, vs] of windows) {
            for (const fn of functions) {
              let sum = 0;
              for (const v of vs) sum += v;
              const value = fn === 'count' ? vs.length : vs.length === 0 ? null : { min: Math.min(...vs), max: Math.max(...vs), avg: sum / vs.length, first: vs[0], last: vs.at(-1)!, sum }[fn];
              want.push(
                value === null
                  ? { device: 'd', point: `p.${fn}`, ts: w, value: null, quality: 'bad', reason: 'no good sample in the window' }
                  : { device: 'd', point: `p.${fn}`, ts: w, value, quality: 'good' },
              );
            }
          }
          expect(got).toEqual(want);
        },
      ),
      { numRuns: 300 },
    );
  });
});
