/**
 * The last hour of one point for its plot, downsampled into fixed time buckets (min, max, mean and last value
 * of each, and which qualities it saw), so memory is one fixed ring per point whatever the sample rate: 18 bytes
 * a bucket, the rings of all points sharing a few buffers (HistorySlab). All rings together stay within
 * HISTORY_BUDGET_BYTES whatever the point count: the bucket width doubles (20 s, 40 s, 80 s...) while
 * points × buckets would not fit (bucketMsFor).
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
export const ringBytes = (bucketMs: number, spanMs: number): number => slotsFor(bucketMs, spanMs) * BYTES_PER_BUCKET;

/** The bucket width for this many plotted points: the base, doubled until every ring fits in the budget. */
export function bucketMsFor(points: number, baseMs: number, spanMs: number, budget = HISTORY_BUDGET_BYTES): number {
  let width = baseMs;
  // Doubling keeps the old buckets' edges, so a ring widens by merging pairs (HistorySlab.widen).
  while (points * ringBytes(width, spanMs) > budget && width < spanMs) width *= 2;
  return width;
}

/** Rings per chunk of a slab: one ArrayBuffer per 1,024 points (0.8 MiB at 80 s buckets), not one per point. */
const CHUNK_SHIFT = 10;

/** One buffer of rings: per ring its head, then per bucket min, max, last and mean, then count and flags. */
interface Chunk {
  /** Highest bucket number (ts / bucketMs) written so far per ring; -1 before the first reading. */
  heads: Float64Array;
  /** Per bucket (ring·slots + slot): min, max, last and mean at 4·bucket to 4·bucket + 3. */
  values: Float32Array;
  /** Per bucket: numeric readings (saturating at 16383: the mean is then of the first ones) and quality flags; 0 empty. */
  marks: Uint16Array;
}

/**
 * The rings of many points in a few shared buffers, a ring being a number: a typed array and its ArrayBuffer per
 * point cost more in object headers and malloc than their buckets at 10,000 points. All rings have one width.
 */
export class HistorySlab {
  /** Buckets per ring. */
  private slots: number;
  private chunks: Chunk[] = [];
  /** Rings handed out so far, freed ones included (they are reused first). */
  private size = 0;
  private readonly free: number[] = [];
  private readonly mask: number;

  constructor(
    public bucketMs: number,
    readonly spanMs: number,
    /** log2 of the rings per buffer: 0 for a lone ring. */
    private readonly shift = CHUNK_SHIFT,
  ) {
    this.slots = slotsFor(bucketMs, spanMs);
    this.mask = (1 << shift) - 1;
  }

  /** Rings in use. */
  get rings(): number {
    return this.size - this.free.length;
  }

  /** ArrayBuffers holding the rings: one per chunk, however many points. */
  get buffers(): number {
    return this.chunks.length;
  }

  /** What the rings in use cost, for the budget. */
  get bytes(): number {
    return this.rings * this.slots * BYTES_PER_BUCKET;
  }

  /** A new, empty ring. */
  alloc(): number {
    const ring = this.free.pop() ?? this.size++;
    if (ring >> this.shift === this.chunks.length) this.chunks.push(chunk(1 << this.shift, this.slots));
    this.chunks[ring >> this.shift]!.heads[ring & this.mask] = -1;
    return ring;
  }

  /** Gives a ring back (its point is gone); the next alloc() reuses it. */
  release(ring: number): void {
    this.free.push(ring);
  }

  /** A reading; `value` undefined for a bad one (nothing to draw, but its bucket is marked). */
  add(ring: number, ts: number, value: number | undefined, quality: 'good' | 'uncertain' | 'bad' = 'good'): void {
    if (!Number.isFinite(ts)) return;
    if (value !== undefined && !Number.isFinite(value)) return;
    const b = Math.floor(ts / this.bucketMs);
    if (b < 0) return;
    const flags = quality === 'bad' ? BAD : quality === 'uncertain' ? UNCERTAIN : 0;
    if (value === undefined) this.merge(ring, b, 0, 0, 0, 0, 0, flags);
    else this.merge(ring, b, value, value, value, value, 1, flags);
  }

  /** Every ring at twice the bucket width in half the memory: what a growing point count trades for. */
  widen(): void {
    const next = new HistorySlab(this.bucketMs * 2, this.spanMs, this.shift);
    for (let ring = 0; ring < this.size; ring++) next.fold(next.alloc(), this, ring);
    this.bucketMs = next.bucketMs;
    this.slots = next.slots;
    this.chunks = next.chunks;
  }

  /** Merges ring `from` of `src` (half this width) into this slab's `ring`, bucket pairs into one. */
  fold(ring: number, src: HistorySlab, from: number): void {
    const { values: v, marks, heads } = src.chunks[from >> src.shift]!;
    const r = from & src.mask;
    const head = heads[r]!;
    for (let b = Math.max(0, head - src.slots + 1); b <= head; b++) {
      const k = r * src.slots + (b % src.slots);
      const m = marks[k]!;
      if (m !== 0) this.merge(ring, Math.floor(b / 2), v[k * 4]!, v[k * 4 + 1]!, v[k * 4 + 2]!, v[k * 4 + 3]!, m & COUNT, m & ~COUNT);
    }
  }

  /** The newest bucket with a value, or undefined before the first value. */
  current(ring: number): Bucket | undefined {
    const { values, marks, heads } = this.chunks[ring >> this.shift]!;
    const head = heads[ring & this.mask]!;
    if (head < 0) return undefined;
    const k = (ring & this.mask) * this.slots + (head % this.slots);
    if ((marks[k]! & COUNT) === 0) return undefined;
    const i = k * 4;
    return [head * this.bucketMs, round(values[i]!), round(values[i + 1]!), round(values[i + 2]!)];
  }

  /** The buckets that start after `since`, oldest first. */
  series(ring: number, since: number): HistorySeries {
    const { bucketMs, t, min, max, last } = this.chart(ring, since);
    return { bucketMs, t, min, max, last };
  }

  /** The same buckets with their means, qualities, the bad-only buckets and the window's figures. */
  chart(ring: number, since: number): ChartSeries {
    const out = emptyChart(this.bucketMs);
    const { values: v, marks, heads } = this.chunks[ring >> this.shift]!;
    const r = ring & this.mask;
    const head = heads[r]!;
    if (head < 0) return out;
    const first = Math.max(0, head - this.slots + 1, Math.floor(since / this.bucketMs) + 1);
    let lo = Infinity;
    let hi = -Infinity;
    let sum = 0;
    let n = 0;
    for (let b = first; b <= head; b++) {
      const k = r * this.slots + (b % this.slots);
      const m = marks[k]!;
      const c = m & COUNT;
      const i = k * 4;
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
  private merge(ring: number, b: number, lo: number, hi: number, last: number, mean: number, n: number, flags: number): void {
    const ch = this.chunks[ring >> this.shift]!;
    const r = ring & this.mask;
    if (!this.advance(ch, r, b)) return;
    const k = r * this.slots + (b % this.slots);
    const i = k * 4;
    const v = ch.values;
    const m = ch.marks[k]!;
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
    ch.marks[k] = (m & ~COUNT) | flags | (c + take);
  }

  /** Moves ring `r`'s head up to bucket `b`, emptying the slots it passes; false for a bucket older than the span. */
  private advance(ch: Chunk, r: number, b: number): boolean {
    const slots = this.slots;
    let head = ch.heads[r]!;
    if (head >= 0 && b <= head - slots) {
      // Far behind: the wall clock stepped back; start over rather than ignore the readings for hours.
      if (b > head - 2 * slots) return false; // merely older than the span
      head = -1;
    }
    if (b <= head) return true;
    const base = r * slots;
    if (head < 0 || b - head >= slots) ch.marks.fill(0, base, base + slots);
    else for (let k = head + 1; k <= b; k++) ch.marks[base + (k % slots)] = 0;
    ch.heads[r] = b;
    return true;
  }
}

/** A chart without a bucket: a point that has no plot (yet). */
export const emptyChart = (bucketMs: number): ChartSeries => ({ bucketMs, t: [], min: [], max: [], last: [], mean: [], quality: [], bad: [], stats: null });

const slotsFor = (bucketMs: number, spanMs: number): number => Math.max(1, Math.ceil(spanMs / bucketMs));

/** `rings` rings of `slots` buckets in one ArrayBuffer: heads first, so every view is aligned. */
function chunk(rings: number, slots: number): Chunk {
  const buffer = new ArrayBuffer(rings * (8 + slots * BYTES_PER_BUCKET));
  const heads = new Float64Array(buffer, 0, rings).fill(-1);
  const values = new Float32Array(buffer, rings * 8, rings * slots * 4);
  const marks = new Uint16Array(buffer, rings * (8 + slots * 16), rings * slots);
  return { heads, values, marks };
}

/** Float32 holds about 7 significant digits: say no more than that (4.2, not 4.199999809265137). */
const round = (v: number): number => Number(v.toPrecision(7));

/** What a plot can draw of a sample value: numbers as they are, booleans as 0/1, anything else nothing. */
export function plottable(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined;
  if (typeof value === 'boolean') return value ? 1 : 0;
  return undefined;
}
