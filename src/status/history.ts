/**
 * The last hour of one point for its plot, downsampled into fixed time buckets (min, max, mean and last value
 * of each, and which qualities it saw), so memory is one fixed ring per point whatever the sample rate: 18 bytes
 * a bucket over one buffer. All rings together stay within HISTORY_BUDGET_BYTES whatever the point count: the
 * bucket width doubles (20 s, 40 s, 80 s...) while points × buckets would not fit (bucketMsFor).
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

/** Quality flags kept per bucket, above its reading count. */
const UNCERTAIN = 0x4000;
const BAD = 0x8000;
const COUNT = 0x3fff;
/** Bytes a bucket costs: min, max, last and mean (Float32: plenty for a plot), its count and flags (Uint16). */
export const BYTES_PER_BUCKET = 18;
/** What the plots of all points may cost together: 1,000 points keep 20 s buckets, 10,000 get 80 s. */
export const HISTORY_BUDGET_BYTES = 8 * 1024 * 1024;

/** Bytes of one point's ring at this bucket width. */
export const ringBytes = (bucketMs: number, spanMs: number): number => Math.max(1, Math.ceil(spanMs / bucketMs)) * BYTES_PER_BUCKET;

/** The bucket width for this many plotted points: the base, doubled until every ring fits in the budget. */
export function bucketMsFor(points: number, baseMs: number, spanMs: number, budget = HISTORY_BUDGET_BYTES): number {
  let width = baseMs;
  // Doubling keeps the old buckets' edges, so a ring widens by merging pairs (PointHistory.widened).
  while (points * ringBytes(width, spanMs) > budget && width < spanMs) width *= 2;
  return width;
}

export class PointHistory {
  private readonly slots: number;
  /** Per slot: min, max, last and mean at 4·slot to 4·slot + 3. */
  private readonly values: Float32Array;
  /** Per slot: numeric readings (saturating at 16383: the mean is then of the first ones) and quality flags; 0 empty. */
  private readonly marks: Uint16Array;
  /** Highest bucket number (ts / bucketMs) written so far; -1 before the first reading. */
  private head = -1;

  constructor(
    readonly bucketMs: number,
    readonly spanMs: number,
  ) {
    const slots = (this.slots = Math.max(1, Math.ceil(spanMs / bucketMs)));
    const ring = new ArrayBuffer(slots * BYTES_PER_BUCKET);
    this.values = new Float32Array(ring, 0, slots * 4);
    this.marks = new Uint16Array(ring, slots * 16, slots);
  }

  /** What the ring costs, for the budget. */
  get bytes(): number {
    return this.values.buffer.byteLength;
  }

  /** A reading; `value` undefined for a bad one (nothing to draw, but its bucket is marked). */
  add(ts: number, value: number | undefined, quality: 'good' | 'uncertain' | 'bad' = 'good'): void {
    if (!Number.isFinite(ts)) return;
    if (value !== undefined && !Number.isFinite(value)) return;
    const b = Math.floor(ts / this.bucketMs);
    if (b < 0) return;
    const flags = quality === 'bad' ? BAD : quality === 'uncertain' ? UNCERTAIN : 0;
    if (value === undefined) this.merge(b, 0, 0, 0, 0, 0, flags);
    else this.merge(b, value, value, value, value, 1, flags);
  }

  /** The same hour at twice the bucket width in half the memory: what a growing point count trades for. */
  widened(): PointHistory {
    const next = new PointHistory(this.bucketMs * 2, this.spanMs);
    const v = this.values;
    for (let b = Math.max(0, this.head - this.slots + 1); b <= this.head; b++) {
      const slot = b % this.slots;
      const m = this.marks[slot]!;
      if (m !== 0) next.merge(Math.floor(b / 2), v[slot * 4]!, v[slot * 4 + 1]!, v[slot * 4 + 2]!, v[slot * 4 + 3]!, m & COUNT, m & ~COUNT);
    }
    return next;
  }

  /** The newest bucket with a value, or undefined before the first value. */
  current(): Bucket | undefined {
    if (this.head < 0) return undefined;
    const slot = this.head % this.slots;
    if ((this.marks[slot]! & COUNT) === 0) return undefined;
    const i = slot * 4;
    return [this.head * this.bucketMs, round(this.values[i]!), round(this.values[i + 1]!), round(this.values[i + 2]!)];
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
    const first = Math.max(0, this.head - this.slots + 1, Math.floor(since / this.bucketMs) + 1);
    const v = this.values;
    let lo = Infinity;
    let hi = -Infinity;
    let sum = 0;
    let n = 0;
    for (let b = first; b <= this.head; b++) {
      const slot = b % this.slots;
      const m = this.marks[slot]!;
      const c = m & COUNT;
      const i = slot * 4;
      if (c === 0) {
        if (m & BAD) out.bad.push(b * this.bucketMs);
        continue;
      }
      out.t.push(b * this.bucketMs);
      out.min.push(round(v[i]!));
      out.max.push(round(v[i + 1]!));
      out.last.push(round(v[i + 2]!));
      out.mean.push(round(v[i + 3]!));
      out.quality.push(m & BAD ? 2 : m & UNCERTAIN ? 1 : 0);
      lo = Math.min(lo, v[i]!);
      hi = Math.max(hi, v[i + 1]!);
      sum += v[i + 3]! * c;
      n += c;
    }
    if (n > 0) out.stats = { min: round(lo), max: round(hi), mean: round(sum / n), readings: n };
    return out;
  }

  /** Folds readings into bucket `b`: one (n = 1), none (n = 0, flags only), or a whole bucket of a finer ring. */
  private merge(b: number, lo: number, hi: number, last: number, mean: number, n: number, flags: number): void {
    if (!this.advance(b)) return;
    const slot = b % this.slots;
    const i = slot * 4;
    const v = this.values;
    const m = this.marks[slot]!;
    const c = m & COUNT;
    const take = Math.min(n, COUNT - c);
    if (n > 0) {
      if (c === 0) {
        v[i] = lo;
        v[i + 1] = hi;
        v[i + 3] = mean;
      } else {
        if (lo < v[i]!) v[i] = lo;
        if (hi > v[i + 1]!) v[i + 1] = hi;
        if (take > 0) v[i + 3] = v[i + 3]! + ((mean - v[i + 3]!) * take) / (c + take);
      }
      v[i + 2] = last;
    }
    this.marks[slot] = (m & ~COUNT) | flags | (c + take);
  }

  /** Moves the head up to bucket `b`, emptying the slots it passes; false for a bucket older than the span. */
  private advance(b: number): boolean {
    if (this.head >= 0 && b <= this.head - this.slots) {
      // Far behind: the wall clock stepped back; start over rather than ignore the readings for hours.
      if (b > this.head - 2 * this.slots) return false; // merely older than the span
      this.head = -1;
    }
    if (b <= this.head) return true;
    if (this.head < 0 || b - this.head >= this.slots) this.marks.fill(0);
    else for (let k = this.head + 1; k <= b; k++) this.marks[k % this.slots] = 0;
    this.head = b;
    return true;
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
