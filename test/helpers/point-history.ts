import { HistorySlab, type Bucket, type ChartSeries, type HistorySeries } from '../../src/status/history.js';

/** One point's ring on its own, a slab of one: what the tests look at a ring through (StatusState keeps ring numbers in one slab). */
export class PointHistory {
  private readonly slab: HistorySlab;
  private readonly ring: number;

  constructor(bucketMs: number, spanMs: number) {
    this.slab = new HistorySlab(bucketMs, spanMs, 0);
    this.ring = this.slab.alloc();
  }

  get bucketMs(): number {
    return this.slab.bucketMs;
  }

  /** What the ring costs, for the budget. */
  get bytes(): number {
    return this.slab.bytes;
  }

  add(ts: number, value: number | undefined, quality: 'good' | 'uncertain' | 'bad' = 'good'): void {
    this.slab.add(this.ring, ts, value, quality);
  }

  /** The same hour at twice the bucket width in half the memory; this one is left as it was. */
  widened(): PointHistory {
    const next = new PointHistory(this.bucketMs * 2, this.slab.spanMs);
    next.slab.fold(next.ring, this.slab, this.ring);
    return next;
  }

  current(): Bucket | undefined {
    return this.slab.current(this.ring);
  }

  series(since: number): HistorySeries {
    return this.slab.series(this.ring, since);
  }

  chart(since: number): ChartSeries {
    return this.slab.chart(this.ring, since);
  }
}
