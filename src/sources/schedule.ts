/**
 * The per-device schedule every bus shares (Modbus and line sensors): which device is due next, and what one
 * poll's outcome does to the device's state and its next due time (on the grid of its interval). Pure but for
 * the monotonic clock's default; each bus logs the transitions in its own words.
 */
import type { DeviceHealth } from './types.js';

/** Schedules run on the monotonic clock: an NTP step or a wrong boot clock must not stall or rush polling. */
export const monotonic = (): number => performance.now();

export interface ScheduledRun {
  /** Monotonic ms when the device is next polled; 0 before its first poll. */
  dueAt: number;
  health: DeviceHealth;
}

export interface UnitBackoffPolicy {
  unitBackoffMinMs: number;
  unitBackoffMaxMs: number;
}

/** A valid reply; none at all or none valid (silent or garbled); or the link went away under the poll. */
export type PollVerdict = 'answered' | 'failed' | 'lost';

/** What changed, for the bus to log: the device started failing, or answers again after failing. */
export type Transition = 'failing' | 'recovered' | undefined;

export function nextDue<R extends ScheduledRun>(runs: readonly R[]): R | undefined {
  let best: R | undefined;
  for (const r of runs) if (!best || r.dueAt < best.dueAt) best = r;
  return best;
}

/**
 * One step of a bus while its link is open: polls the device that is due, or sleeps until one is (or for
 * idleMs when there is none). The sleep is the link loop's, so a stop interrupts it.
 */
export async function stepDue<R extends ScheduledRun>(runs: readonly R[], sleep: (ms: number) => Promise<void>, poll: (run: R) => Promise<void>, idleMs: number, now = monotonic): Promise<void> {
  const run = nextDue(runs);
  if (!run) return sleep(idleMs);
  const wait = run.dueAt - now();
  if (wait > 0) return sleep(wait);
  return poll(run);
}

/** A bus counts as busy from this long before its next poll, so a commit waits for a bus about to poll. */
export const CYCLE_LEAD_MS = 50;

/**
 * The sleep of stepDue for a bus that reports its poll cycles: idle while the next poll is further than
 * CYCLE_LEAD_MS away, busy from then on. Buses a few ms out of step then share one commit instead of two.
 */
export function cycleSleep(sleep: (ms: number) => Promise<void>, cycle?: (busy: boolean) => void): (ms: number) => Promise<void> {
  if (!cycle) return sleep;
  return (ms) => {
    cycle(ms <= CYCLE_LEAD_MS);
    return sleep(ms > CYCLE_LEAD_MS ? ms - CYCLE_LEAD_MS : ms);
  };
}

/**
 * Applies a poll's verdict. A device that gave no valid reply is backed off (doubling from min to max, never
 * polled faster than its interval); a lost link fails the device without a device backoff (the link's own
 * backoff paces the redial); a valid reply makes it ok. The cadence is kept; after an overrun it starts again
 * from now instead of firing a burst of late polls.
 */
export function reschedule(run: ScheduledRun, pollIntervalMs: number, verdict: PollVerdict, policy: UnitBackoffPolicy, now = monotonic()): Transition {
  const health = run.health;
  if (verdict === 'failed') {
    health.backoffMs = health.backoffMs === 0 ? policy.unitBackoffMinMs : Math.min(health.backoffMs * 2, policy.unitBackoffMaxMs);
    const started = health.state !== 'failing';
    health.state = 'failing';
    run.dueAt = now + Math.max(health.backoffMs, pollIntervalMs);
    return started ? 'failing' : undefined;
  }
  let transition: Transition;
  if (verdict === 'lost') health.state = 'failing';
  else if (health.state !== 'ok') {
    if (health.state === 'failing') transition = 'recovered';
    health.state = 'ok';
    health.backoffMs = 0;
  }
  run.dueAt = run.dueAt === 0 || run.dueAt % pollIntervalMs !== 0 ? onGrid(now, pollIntervalMs) : Math.max(run.dueAt + pollIntervalMs, now);
  return transition;
}

/**
 * The first due time on the grid of the interval (multiples of it on the monotonic clock) at least half an
 * interval from now. Devices of one interval then poll in step whatever bus they are on and whenever their link
 * opened, so one grouped commit takes a cycle's samples soon after they were read, not after the last of
 * several drifting polls. A device off the grid (first poll, back from a backoff, after an overrun) joins it.
 */
function onGrid(now: number, intervalMs: number): number {
  return Math.ceil((now + intervalMs / 2) / intervalMs) * intervalMs;
}
