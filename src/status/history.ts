/**
 * The last hour of one point for its plot, downsampled into fixed time buckets (min, max and last value of
 * each), so memory is one fixed ring per point whatever the sample rate. Typed views over one buffer keep it at
 * 16 bytes a bucket: 180 buckets of 20 s are under 3 KiB a point.
 */

export interface HistorySeries {
  /** Bucket length, ms. */
  bucketMs: number;
  /** Start of each bucket, ms since the epoch, ascending; buckets without a numeric sample are left out. */
  t: number[];
  min: number[];
  max: number[];
  last: number[];
}

/** The bucket a numeric value falls into, as the page's live update needs it: [start ms, min, max, last]. */
export type Bucket = [number, number, number, number];

export class PointHistory {
  private readonly slots: number;
  /** Bucket number (ts / bucketMs) held by each slot; -1 when empty. */
  private readonly index: Int32Array;
  private readonly mins: Float32Array;
  private readonly maxs: Float32Array;
  private readonly lasts: Float32Array;
  /** Highest bucket number written so far; -1 before the first value. */
  private head = -1;

  constructor(
    readonly bucketMs: number,
    spanMs: number,
  ) {
    const slots = (this.slots = Math.max(1, Math.ceil(spanMs / bucketMs)));
    const ring = new ArrayBuffer(slots * 16);
    this.index = new Int32Array(ring, 0, slots).fill(-1);
    this.mins = new Float32Array(ring, slots * 4, slots);
    this.maxs = new Float32Array(ring, slots * 8, slots);
    this.lasts = new Float32Array(ring, slots * 12, slots);
  }

  add(ts: number, value: number): void {
    if (!Number.isFinite(value) || !Number.isFinite(ts)) return;
    const b = Math.floor(ts / this.bucketMs);
    if (b < 0) return;
    if (this.head >= 0 && b <= this.head - this.slots) {
      // Far behind: the wall clock stepped back; start over rather than ignore the readings for hours.
      if (b <= this.head - 2 * this.slots) this.clear();
      else return; // merely older than the span
    }
    const slot = b % this.slots;
    if (this.index[slot] !== b) {
      // Late samples (older than the slot's current bucket) are not worth reordering for a plot.
      if (this.index[slot] > b) return;
      this.index[slot] = b;
      this.mins[slot] = value;
      this.maxs[slot] = value;
    } else {
      if (value < this.mins[slot]) this.mins[slot] = value;
      if (value > this.maxs[slot]) this.maxs[slot] = value;
    }
    this.lasts[slot] = value;
    if (b > this.head) this.head = b;
  }

  /** The newest bucket, or undefined before the first value. */
  current(): Bucket | undefined {
    if (this.head < 0) return undefined;
    const slot = this.head % this.slots;
    return [this.head * this.bucketMs, round(this.mins[slot]), round(this.maxs[slot]), round(this.lasts[slot])];
  }

  /** The buckets that start after `since`, oldest first. */
  series(since: number): HistorySeries {
    const out: HistorySeries = { bucketMs: this.bucketMs, t: [], min: [], max: [], last: [] };
    if (this.head < 0) return out;
    const first = Math.max(this.head - this.slots + 1, Math.floor(since / this.bucketMs) + 1);
    for (let b = first; b <= this.head; b++) {
      const slot = b % this.slots;
      if (this.index[slot] !== b) continue;
      out.t.push(b * this.bucketMs);
      out.min.push(round(this.mins[slot]));
      out.max.push(round(this.maxs[slot]));
      out.last.push(round(this.lasts[slot]));
    }
    return out;
  }

  private clear(): void {
    this.index.fill(-1);
    this.head = -1;
  }
}

/** Float32 holds about 7 significant digits: say no more than that (4.2, not 4.199999809265137). */
const round = (v: number): number => Number(v.toPrecision(7));

/** What a plot can draw of a sample value: numbers as they are, booleans as 0/1, anything else nothing. */
export function plottable(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined;
  if (typeof value === 'boolean') return value ? 1 : 0;
  return undefined;
}
