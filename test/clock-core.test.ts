import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decide, estimate, initialState, parseDate, step, type ClockPolicy, type ClockState, type Reading, type SyncStatus, type TrustMode } from '../src/clock/core.js';

const MIN_VALID = Date.UTC(2025, 0, 1);
const NOW = Date.UTC(2025, 5, 1, 12); // a plausible true time
const EPOCH_BOOT = 0; // a Pi without RTC or fake-hwclock boots at 1970

const policy = (trust: TrustMode = 'auto', jumpThresholdMs = 2000): ClockPolicy => ({ trust, jumpThresholdMs, minValidMs: MIN_VALID });

/** Runs readings through the core, collecting the events. */
function run(p: ClockPolicy, readings: Reading[]) {
  let state = initialState(p, readings[0]);
  const initial = state;
  const events = [];
  for (const r of readings.slice(1)) {
    const s = step(p, state, r);
    state = s.state;
    events.push(...s.events);
  }
  return { initial, state, events };
}

describe('decide: every mode x OS status x date', () => {
  const statuses: SyncStatus[] = ['synced', 'unsynced', 'unknown', 'pending'];
  const expected: Record<TrustMode, Record<SyncStatus, [before: boolean, after: boolean]>> = {
    always: { synced: [true, true], unsynced: [true, true], unknown: [true, true], pending: [true, true] },
    'sync-required': { synced: [true, true], unsynced: [false, false], unknown: [false, false], pending: [false, false] },
    // auto: the OS decides when it can; the date rule only when nothing reports sync.
    auto: { synced: [true, true], unsynced: [false, false], unknown: [false, true], pending: [false, false] },
  };
  for (const mode of ['always', 'sync-required', 'auto'] as const) {
    for (const sync of statuses) {
      it(`${mode}, OS ${sync}`, () => {
        const [before, after] = expected[mode][sync];
        expect(decide(policy(mode), MIN_VALID - 1, sync).trusted).toBe(before);
        expect(decide(policy(mode), MIN_VALID, sync).trusted).toBe(after);
      });
    }
  }

  it('names the reason', () => {
    expect(decide(policy('always'), 0, 'unsynced').reason).toBe('always');
    expect(decide(policy('auto'), 0, 'synced').reason).toBe('os-sync');
    expect(decide(policy('auto'), NOW, 'unknown').reason).toBe('min-valid-date');
    expect(decide(policy('auto'), 0, 'unknown').reason).toBe('before-min-valid-date');
    expect(decide(policy('auto'), NOW, 'unsynced').reason).toBe('not-synced');
    expect(decide(policy('auto'), NOW, 'pending').reason).toBe('probing');
    expect(decide(policy('sync-required'), NOW, 'unknown').reason).toBe('not-synced');
  });
});

describe('jumps', () => {
  it('a forward and a backward step beyond the threshold are jumps with their size, trusted or not', () => {
    const { events } = run(policy('always'), [
      { wall: NOW, mono: 0, sync: 'unknown' },
      { wall: NOW + 1000, mono: 1000, sync: 'unknown' },
      { wall: NOW + 2000 + 3_600_000, mono: 2000, sync: 'unknown' },
      { wall: NOW + 3000 + 3_600_000 - 5000, mono: 3000, sync: 'unknown' },
    ]);
    expect(events).toEqual([
      { type: 'jump', jumpMs: 3_600_000, trusted: true },
      { type: 'jump', jumpMs: -5000, trusted: true },
    ]);
  });

  it('drift, slewing and a late tick are not jumps; the threshold is exclusive', () => {
    const { events } = run(policy('always', 2000), [
      { wall: NOW, mono: 0, sync: 'unknown' },
      { wall: NOW + 1000.5, mono: 1000, sync: 'unknown' }, // 500 ppm slew
      { wall: NOW + 31_000.5, mono: 31_000, sync: 'unknown' }, // event loop blocked for 30 s: both clocks moved
      { wall: NOW + 34_000.5, mono: 32_000, sync: 'unknown' }, // exactly 2000 ms
    ]);
    expect(events).toEqual([]);
  });

  it('a jump while untrusted leaves the untrusted timeline alone', () => {
    const p = policy('sync-required');
    const first = initialState(p, { wall: EPOCH_BOOT, mono: 100, sync: 'unsynced' });
    const { state, events } = step(p, first, { wall: NOW, mono: 1100, sync: 'unsynced' });
    expect(events).toEqual([{ type: 'jump', jumpMs: NOW - 1000, trusted: false }]);
    expect(state.trusted).toBe(false);
    expect(estimate(state, 1100)).toBe(EPOCH_BOOT + 1000);
  });
});

describe('trust arriving', () => {
  it('OS sync: the correction is trusted wall minus the monotonic estimate', () => {
    const { initial, state, events } = run(policy('auto'), [
      { wall: EPOCH_BOOT, mono: 5000, sync: 'pending' },
      { wall: EPOCH_BOOT + 1000, mono: 6000, sync: 'unsynced' },
      { wall: NOW, mono: 65_000, sync: 'synced' }, // NTP stepped and synced in the same second
      { wall: NOW + 1000, mono: 66_000, sync: 'unsynced' }, // latched: a later "unsynced" changes nothing
    ]);
    expect(initial).toMatchObject({ trusted: false, reason: 'probing' });
    expect(events).toEqual([
      { type: 'jump', jumpMs: NOW - EPOCH_BOOT - 1000 - 59_000, trusted: false },
      { type: 'trusted', reason: 'os-sync', correctionMs: NOW - 60_000, untrustedMs: 60_000 },
    ]);
    expect(state).toMatchObject({ trusted: true, reason: 'os-sync' });
    // A sample stamped at mono 6000 (ts 1000 then) lands 59 s before the sync once corrected.
    expect(estimate(initial, 6000) + (NOW - 60_000)).toBe(NOW - 59_000);
  });

  it('sync reported a tick after the step: the correction still counts the step once', () => {
    const { events } = run(policy('auto'), [
      { wall: EPOCH_BOOT, mono: 0, sync: 'unsynced' },
      { wall: NOW, mono: 1000, sync: 'unsynced' },
      { wall: NOW + 1000, mono: 2000, sync: 'synced' },
    ]);
    expect(events.at(-1)).toEqual({ type: 'trusted', reason: 'os-sync', correctionMs: NOW - 1000, untrustedMs: 2000 });
  });

  it('auto without sync information: trusted once the wall clock passes minValidDate', () => {
    const { events, state } = run(policy('auto'), [
      { wall: EPOCH_BOOT, mono: 0, sync: 'unknown' },
      { wall: EPOCH_BOOT + 1000, mono: 1000, sync: 'unknown' },
      { wall: NOW + 2000, mono: 2000, sync: 'unknown' },
    ]);
    expect(events.map((e) => e.type)).toEqual(['jump', 'trusted']);
    expect(events[1]).toMatchObject({ reason: 'min-valid-date', correctionMs: NOW });
    expect(state.trusted).toBe(true);
  });

  it('auto without sync information and a plausible date: trusted from the first reading', () => {
    expect(initialState(policy('auto'), { wall: NOW, mono: 0, sync: 'unknown' })).toMatchObject({ trusted: true, reason: 'min-valid-date' });
  });

  it('auto waits for the first probe answer even with a plausible date (fake-hwclock)', () => {
    const { events } = run(policy('auto'), [
      { wall: NOW - 86_400_000, mono: 0, sync: 'pending' },
      { wall: NOW - 86_399_000, mono: 1000, sync: 'unsynced' },
      { wall: NOW, mono: 2000, sync: 'synced' },
    ]);
    expect(events.at(-1)).toMatchObject({ type: 'trusted', correctionMs: 86_398_000 });
  });

  it('always: trusted from the start, never a trust event', () => {
    const { initial, events } = run(policy('always'), [
      { wall: EPOCH_BOOT, mono: 0, sync: 'unsynced' },
      { wall: EPOCH_BOOT + 1000, mono: 1000, sync: 'synced' },
    ]);
    expect(initial).toMatchObject({ trusted: true, reason: 'always' });
    expect(events).toEqual([]);
  });

  it('sync-required: a good date is not enough, only the OS', () => {
    const { state, events } = run(policy('sync-required'), [
      { wall: NOW, mono: 0, sync: 'unknown' },
      { wall: NOW + 1000, mono: 1000, sync: 'unknown' },
      { wall: NOW + 2000, mono: 2000, sync: 'unsynced' },
    ]);
    expect(state).toMatchObject({ trusted: false, reason: 'not-synced' });
    expect(events).toEqual([]);
    const s = step(policy('sync-required'), state, { wall: NOW + 3000, mono: 3000, sync: 'synced' });
    expect(s.events).toEqual([{ type: 'trusted', reason: 'os-sync', correctionMs: 0, untrustedMs: 3000 }]);
  });
});

describe('correction, as a property', () => {
  it('whatever the wall clock did before sync, estimate + correction is the true time of every sample', () => {
    const steps = fc.array(fc.record({ dtMs: fc.integer({ min: 1, max: 600_000 }), errorMs: fc.integer({ min: -1e12, max: 1e12 }) }), { minLength: 1, maxLength: 30 });
    fc.assert(
      fc.property(steps, fc.integer({ min: 0, max: 1e6 }), (ticks, mono0) => {
        const p = policy('sync-required');
        const trueAt = (mono: number) => NOW + mono;
        let mono = mono0;
        let state: ClockState = initialState(p, { wall: trueAt(mono) + ticks[0].errorMs, mono, sync: 'unsynced' });
        const stamped: Array<{ mono: number; ts: number }> = [];
        for (const t of ticks) {
          stamped.push({ mono: mono + 1, ts: estimate(state, mono + 1) });
          mono += t.dtMs;
          state = step(p, state, { wall: trueAt(mono) + t.errorMs, mono, sync: 'unsynced' }).state;
        }
        mono += 1000;
        const { events } = step(p, state, { wall: trueAt(mono), mono, sync: 'synced' });
        const trusted = events.find((e) => e.type === 'trusted');
        if (trusted?.type !== 'trusted') return false;
        return stamped.every((s) => Math.abs(s.ts + trusted.correctionMs - trueAt(s.mono)) <= 1);
      }),
    );
  });
});

describe('parseDate', () => {
  it('accepts calendar dates only', () => {
    expect(parseDate('2025-01-01')).toBe(MIN_VALID);
    expect(parseDate('2024-02-29')).toBe(Date.UTC(2024, 1, 29));
    for (const bad of ['2025-02-30', '2025-13-01', '2025-1-1', '2025-01-01T00:00:00Z', 'yesterday', '']) expect(parseDate(bad)).toBeNaN();
  });
});
