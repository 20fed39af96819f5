/**
 * aggregate: per window of windowS aligned to the epoch (UTC: 60 s windows start on the minute, 3600 s on
 * the hour, 86400 s at midnight UTC), summaries of the window's good samples. A window is emitted once, when
 * a sample of a later window arrives or when tick() passes its end plus a grace, as samples `{point}.{fn}`
 * stamped with the window's start. Rules in docs/processing.md.
 */
import { AGGREGATES } from '../config/processing-schema.js';
import type { FlaggedSample } from './types.js';

export type AggregateFn = (typeof AGGREGATES)[number];

export const NO_GOOD_SAMPLE = 'no good sample in the window';

/** Numbers, and booleans as 0/1, of good samples: what alarms and aggregates read. Null for anything else. */
export function numeric(s: FlaggedSample): number | null {
  if (s.quality !== 'good') return null;
  const v = s.value;
  if (typeof v === 'number') return Number.isFinite(v) ? v : null;
  if (typeof v === 'boolean') return v ? 1 : 0;
  return null;
}

/** The window start (ms) of a timestamp. */
export function windowStart(ts: number, windowMs: number): number {
  return Math.floor(ts / windowMs) * windowMs;
}

export class Aggregator {
  private readonly windowMs: number;
  private readonly points: string[];
  private open = false;
  private start = NaN;
  private lastClosed = NaN;
  private count = 0;
  private sum = 0;
  private min = Infinity;
  private max = -Infinity;
  private first = 0;
  private last = 0;
  private flags = 0;

  constructor(
    private readonly device: string,
    point: string,
    windowS: number,
    private readonly fns: readonly AggregateFn[],
  ) {
    this.windowMs = windowS * 1000;
    this.points = fns.map((fn) => `${point}.${fn}`);
  }

  /** Output point ids, in the order of `functions`. */
  get outputPoints(): readonly string[] {
    return this.points;
  }

  /** Adds a sample; the window it closes, if any, goes to `out` first. */
  add(s: FlaggedSample, out: FlaggedSample[]): void {
    const w = windowStart(s.ts, this.windowMs);
    if (!this.open || w !== this.start) {
      // Late for a window already emitted (acquired before its end, processed after): left out, not re-emitted.
      if (w === this.lastClosed) return;
      if (this.open) this.close(out);
      this.begin(w);
    }
    if (s.flags) this.flags |= s.flags;
    const v = numeric(s);
    if (v === null) return;
    if (this.count === 0) this.first = v;
    this.count++;
    this.sum += v;
    if (v < this.min) this.min = v;
    if (v > this.max) this.max = v;
    this.last = v;
  }

  /** Emits the open window once `now` is past its end by `graceMs`. */
  tick(now: number, graceMs: number, out: FlaggedSample[]): void {
    if (this.open && now >= this.start + this.windowMs + graceMs) this.close(out);
  }

  private begin(w: number): void {
    this.open = true;
    this.start = w;
    this.count = 0;
    this.sum = 0;
    this.min = Infinity;
    this.max = -Infinity;
    this.flags = 0;
  }

  private close(out: FlaggedSample[]): void {
    this.open = false;
    this.lastClosed = this.start;
    for (let i = 0; i < this.fns.length; i++) {
      const value = this.count === 0 ? (this.fns[i] === 'count' ? 0 : null) : this.value(this.fns[i]);
      const s: FlaggedSample =
        value === null
          ? { device: this.device, point: this.points[i], ts: this.start, value: null, quality: 'bad', reason: NO_GOOD_SAMPLE }
          : { device: this.device, point: this.points[i], ts: this.start, value, quality: 'good' };
      if (this.flags) s.flags = this.flags;
      out.push(s);
    }
  }

  private value(fn: AggregateFn): number {
    switch (fn) {
      case 'min':
        return this.min;
      case 'max':
        return this.max;
      case 'avg':
        return this.sum / this.count;
      case 'count':
        return this.count;
      case 'first':
        return this.first;
      case 'last':
        return this.last;
      case 'sum':
        return this.sum;
    }
  }
}
