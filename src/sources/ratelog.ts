/**
 * Rate-limited warnings for noisy lines: at most one line per kind per scope (a device, or the bus for lines
 * no device claims) per period, naming how many were suppressed since the last one. State is one entry per
 * scope and kind, so a flood of noise costs neither log volume nor memory.
 */
import type { Logger } from '../log.js';

export const RATE_LOG_PERIOD_MS = 60_000;

interface Entry {
  lastAt: number;
  suppressed: number;
}

export class RateLimitedLog {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly log: Logger,
    private readonly now: () => number,
    private readonly periodMs = RATE_LOG_PERIOD_MS,
  ) {}

  /** True when the line was written, false when it was counted as suppressed. */
  warn(scope: string, kind: string, fields: Record<string, unknown>, message: string): boolean {
    const key = `${scope}\u0000${kind}`;
    const now = this.now();
    const e = this.entries.get(key);
    if (e && now - e.lastAt < this.periodMs) {
      e.suppressed++;
      return false;
    }
    const suppressed = e?.suppressed ?? 0;
    const more = suppressed > 0 ? ` (${suppressed} more ${kind} error${suppressed === 1 ? '' : 's'} since the last report)` : '';
    this.log.warn({ ...fields, kind, ...(suppressed > 0 ? { suppressed } : {}) }, `${message}${more}`);
    this.entries.set(key, { lastAt: now, suppressed: 0 });
    return true;
  }
}
