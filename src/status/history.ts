/**
 * The last hour of one point for its plot, downsampled into fixed time buckets (min, max, mean and last value
 * of each, and which qualities it saw), so memory is one fixed ring per point whatever the sample rate. Typed
 * arrays over one buffer keep it at 27 bytes a bucket: 180 buckets of 20 s are under 5 KiB a point.
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

/** The chart's view of the same ring: the plot's series plus what shades it. */
export interface ChartSeries extends HistorySeries {
  /** Mean of each bucket's readings. */
  mean: number[];
  /** Worst quality each bucket saw among its readings: 0 good only, 1 some uncertain, 2 some bad. */
  quality: number[];
  /** Starts of buckets that had only bad readings (no value to draw): drawn as red bands, the line breaks. */
  bad: number[];
  /** Lowest, highest and mean over the window (the mean weighted by readings); null without a value. */
  stats: { min: number; max: number; mean: number; readings: number } | null;
}

/** The bucket a numeric value falls into, as the page's live update needs it: [start ms, min, max, last]. */
export type Bucket = [number, number, number, number];

/** Quality flags kept per bucket. */
const UNCERTAIN = 1;
const BAD = 2;
/** Bytes a bucket costs: index, min, max, last (4 each), sum (8), count (2), flags (1). */
export const BYTES_PER_BUCKET = 27;

export class PointHistory {
  private readonly slots: number;
  /** Bucket number (ts / bucketMs) held by each slot; -1 when empty. */
  private readonly index: Int32Array;
  private readonly mins: Float32Array;
  private readonly maxs: Float32Array;
  private readonly lasts: Float32Array;
  private readonly sums: Float64Array;
  /** Numeric readings in the bucket (saturates at 65535: the mean is then of the first 65535). */
  private readonly counts: Uint16Array;
  private readonly flags: Uint8Array;
  /** Highest bucket number written so far; -1 before the first value. */
  private head = -1;

  constructor(
    readonly bucketMs: number,
    spanMs: number,
  ) {
    const slots = (this.slots = Math.max(1, Math.ceil(spanMs / bucketMs)));
    // Float64 first for its alignment; then the 4-byte arrays, the counts and the flags.
    const ring = new ArrayBuffer(slots * 32);
    this.sums = new Float64Array(ring, 0, slots);
    this.index = new Int32Array(ring, slots * 8, slots).fill(-1);
    this.mins = new Float32Array(ring, slots * 12, slots);
    this.maxs = new Float32Array(ring, slots * 16, slots);
    this.lasts = new Float32Array(ring, slots * 20, slots);
    this.counts = new Uint16Array(ring, slots * 24, slots);
    this.flags = new Uint8Array(ring, slots * 26, slots);
  }

  /** A reading; `value` undefined for a bad one (nothing to draw, but its bucket is marked). */
  add(ts: number, value: number | undefined, quality: 'good' | 'uncertain' | 'bad' = 'good'): void {
    if (!Number.isFinite(ts)) return;
    if (value !== undefined && !Number.isFinite(value)) return;
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
      this.counts[slot] = 0;
      this.sums[slot] = 0;
      this.flags[slot] = 0;
    }
    if (quality === 'bad') this.flags[slot] |= BAD;
    else if (quality === 'uncertain') this.flags[slot] |= UNCERTAIN;
    if (b > this.head) this.head = b;
    if (value === undefined) return;
    if (this.counts[slot] === 0) {
      this.mins[slot] = value;
      this.maxs[slot] = value;
    } else {
      if (value < this.mins[slot]) this.mins[slot] = value;
      if (value > this.maxs[slot]) this.maxs[slot] = value;
    }
    if (this.counts[slot] < 0xffff) {
      this.counts[slot]++;
      this.sums[slot] += value;
    }
    this.lasts[slot] = value;
  }

  /** The newest bucket with a value, or undefined before the first value. */
  current(): Bucket | undefined {
    if (this.head < 0) return undefined;
    const slot = this.head % this.slots;
    if (this.counts[slot] === 0) return undefined;
    return [this.head * this.bucketMs, round(this.mins[slot]), round(this.maxs[slot]), round(this.lasts[slot])];
  }

  /** The buckets that start after `since`, oldest first. */
  series(since: number): HistorySeries {
    const { bucketMs, t, min, max, last } = this.chart(since);
    return { bucketMs, t, min, max, last };
  }

  /** The same buckets with their means, qualities, the bad-only buckets and the window's figures. */
  chart(since: number): ChartSeries {
    const out: ChartSeries = { bucketMs: this.bucketMs, t: [], min: [], max: [], last: [], mean: [], quality: [], bad: [], stats: null };
    if (this.head < 0) return out;
    const first = Math.max(this.head - this.slots + 1, Math.floor(since / this.bucketMs) + 1);
    let lo = Infinity;
    let hi = -Infinity;
    let sum = 0;
    let n = 0;
    for (let b = first; b <= this.head; b++) {
      const slot = b % this.slots;
      if (this.index[slot] !== b) continue;
      const flags = this.flags[slot]!;
      const c = this.counts[slot]!;
      if (c === 0) {
        if (flags & BAD) out.bad.push(b * this.bucketMs);
        continue;
      }
      out.t.push(b * this.bucketMs);
      out.min.push(round(this.mins[slot]!));
      out.max.push(round(this.maxs[slot]!));
      out.last.push(round(this.lasts[slot]!));
      out.mean.push(round(this.sums[slot]! / c));
      out.quality.push(flags & BAD ? 2 : flags & UNCERTAIN ? 1 : 0);
      lo = Math.min(lo, this.mins[slot]!);
      hi = Math.max(hi, this.maxs[slot]!);
      sum += this.sums[slot]!;
      n += c;
    }
    if (n > 0) out.stats = { min: round(lo), max: round(hi), mean: round(sum / n), readings: n };
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
