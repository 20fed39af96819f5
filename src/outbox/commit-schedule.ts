/**
 * When the outbox commits. A fixed tick made every sample wait for it (a quarter of a second at the default):
 * durability never needed the wait, only the fsync budget of an SD card did. So a commit goes as soon as the
 * samples of a poll cycle are in (the caller says so with `soon()`) while no source is in the middle of its own
 * cycle, unless the writer committed less than one interval ago: then it waits for that interval to pass, and
 * everything that arrives meanwhile shares the commit. Whatever happens, nothing waits longer than one interval.
 *
 * The ceiling is the old one, one grouped commit per interval (alarm commits aside, which the caller makes at
 * once); polls that run in step (every device due on the same second) share one commit, as under the tick.
 */
import type { TimerHandle, Timers } from '../timers.js';

export class CommitSchedule {
  private timer: TimerHandle | undefined;
  private timerAt = Infinity;
  /** When the oldest uncommitted entry was queued; undefined when nothing waits. */
  private waitingSince: number | undefined;
  private ready = false;
  private lastCommitAt = -Infinity;
  private readonly busy = new Set<string>();

  constructor(
    private readonly timers: Timers,
    private readonly intervalMs: number,
    private readonly commit: () => void,
  ) {}

  /** Something was queued: it is committed within one interval at the latest. */
  queued(): void {
    this.waitingSince ??= this.timers.now();
    this.plan();
  }

  /** What was queued completes a poll cycle or a burst of readings: commit as soon as the writer is idle. */
  soon(): void {
    this.ready = true;
    this.plan();
  }

  /** A source started a poll cycle (busy) or has nothing due any more (its samples are all in). */
  source(id: string, busy: boolean): void {
    if (busy) {
      this.busy.add(id);
      return;
    }
    if (this.busy.delete(id)) this.plan();
  }

  /** A commit ran (wrote `wrote` rows); `left` when entries still wait (storage refused): retried an interval later. */
  committed(wrote: boolean, left: boolean): void {
    const now = this.timers.now();
    if (wrote) this.lastCommitAt = now;
    this.ready = false;
    this.waitingSince = left ? now : undefined;
    this.cancel();
    if (left) this.plan();
  }

  cancel(): void {
    this.timers.clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = Infinity;
  }

  private plan(): void {
    if (this.waitingSince === undefined) return;
    let at = this.waitingSince + this.intervalMs;
    if (this.ready && this.busy.size === 0) at = Math.min(at, Math.max(this.timers.now(), this.lastCommitAt + this.intervalMs));
    if (this.timer && this.timerAt <= at) return;
    this.cancel();
    this.timerAt = at;
    // A zero wait still goes through the timer: what else arrives in this turn of the event loop joins the commit.
    this.timer = this.timers.setTimeout(() => {
      this.timer = undefined;
      this.timerAt = Infinity;
      this.commit();
    }, at - this.timers.now());
  }
}
