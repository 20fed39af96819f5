/**
 * The clock's trust, as a pure state machine fed with readings of the wall clock, the monotonic clock and the
 * OS's NTP status. While the wall clock is not trusted, timestamps follow one timeline: the wall clock at start
 * carried forward by the monotonic clock (mono + offsetMs). A single correction (trusted wall - estimate, taken
 * when trust arrives) then puts every sample of that timeline right, however often the wall clock stepped
 * meanwhile. No I/O here: the guard (guard.ts) supplies readings and acts on the events.
 */

export type TrustMode = 'auto' | 'always' | 'sync-required';

/** What the OS says about NTP: `pending` while the first probe runs, `unknown` when nothing reports it. */
export type SyncStatus = 'synced' | 'unsynced' | 'unknown' | 'pending';

export interface ClockPolicy {
  trust: TrustMode;
  /** A wall-vs-monotonic difference above this between two readings is a step of the wall clock. */
  jumpThresholdMs: number;
  /** auto without sync information: a wall clock before this (ms since the epoch) is not trusted. */
  minValidMs: number;
}

export interface Reading {
  /** Wall clock, ms since the epoch. */
  wall: number;
  /** Monotonic clock, ms from any origin; never steps. */
  mono: number;
  sync: SyncStatus;
}

export type TrustReason = 'always' | 'os-sync' | 'min-valid-date';
export type DistrustReason = 'probing' | 'not-synced' | 'before-min-valid-date';

export interface ClockState {
  trusted: boolean;
  reason: TrustReason | DistrustReason;
  /** While untrusted: the estimated wall time is mono + offsetMs. Fixed from the first reading on. */
  offsetMs: number;
  /** Monotonic time of the first reading. */
  startMono: number;
  lastWall: number;
  lastMono: number;
}

export type ClockEvent =
  /** Trust arrived: samples stamped before it are `correctionMs` off (add it to their ts). */
  | { type: 'trusted'; reason: TrustReason; correctionMs: number; untrustedMs: number }
  /** The wall clock stepped by `jumpMs` (positive: forward) relative to the monotonic clock. */
  | { type: 'jump'; jumpMs: number; trusted: boolean };

export interface Step {
  state: ClockState;
  events: ClockEvent[];
}

/** Whether one reading justifies trust under the policy, and why (not). */
export function decide(policy: ClockPolicy, wall: number, sync: SyncStatus): { trusted: boolean; reason: TrustReason | DistrustReason } {
  if (policy.trust === 'always') return { trusted: true, reason: 'always' };
  if (sync === 'synced') return { trusted: true, reason: 'os-sync' };
  if (policy.trust === 'sync-required') return { trusted: false, reason: sync === 'pending' ? 'probing' : 'not-synced' };
  // auto: the OS's word wins when it has one; only silence falls back to the date rule. While the first probe
  // runs, wait: a Pi's clock restored by fake-hwclock is after any minValidDate and still wrong.
  if (sync === 'unsynced') return { trusted: false, reason: 'not-synced' };
  if (sync === 'pending') return { trusted: false, reason: 'probing' };
  return wall >= policy.minValidMs ? { trusted: true, reason: 'min-valid-date' } : { trusted: false, reason: 'before-min-valid-date' };
}

export function initialState(policy: ClockPolicy, r: Reading): ClockState {
  const d = decide(policy, r.wall, r.sync);
  return { trusted: d.trusted, reason: d.reason, offsetMs: r.wall - r.mono, startMono: r.mono, lastWall: r.wall, lastMono: r.mono };
}

/**
 * One tick. Trust is latched: once trusted, a later "unsynced" (the kernel drops its sync flag after hours
 * without an NTP answer, while the clock is still good to seconds) or a step does not take it back; a step
 * while trusted only yields a `jump` event.
 */
export function step(policy: ClockPolicy, state: ClockState, r: Reading): Step {
  const events: ClockEvent[] = [];
  // Slewing (at most 500 ppm) never comes near the threshold; a step shows at once.
  const skew = r.wall - state.lastWall - (r.mono - state.lastMono);
  if (Math.abs(skew) > policy.jumpThresholdMs) events.push({ type: 'jump', jumpMs: Math.round(skew), trusted: state.trusted });
  const next: ClockState = { ...state, lastWall: r.wall, lastMono: r.mono };
  if (!state.trusted) {
    const d = decide(policy, r.wall, r.sync);
    next.reason = d.reason;
    if (d.trusted) {
      next.trusted = true;
      events.push({
        type: 'trusted',
        reason: d.reason as TrustReason,
        correctionMs: Math.round(r.wall - estimate(state, r.mono)),
        untrustedMs: Math.round(r.mono - state.startMono),
      });
    }
  }
  return { state: next, events };
}

/** The untrusted timeline's wall time at monotonic time `mono`. */
export function estimate(state: ClockState, mono: number): number {
  return mono + state.offsetMs;
}

// Defined with the configuration, whose schema checks minValidDate with it; kept importable from here.
export { parseDate } from '../config/dates.js';
