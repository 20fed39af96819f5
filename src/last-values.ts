/**
 * The latest state of every point, as processing hands samples to the outbox: value, quality, why it is not
 * good, and the last good reading. What a birth that carries current values (Sparkplug DBIRTH) and the status
 * page read. One entry per point, replaced in place: its size is the point count, whatever the sample rate.
 * The daemon keeps one for the life of the process (the Supervisor hands it to every gateway it starts), so a
 * restart inside the process neither empties the page nor births without values.
 */
import type { Quality, Sample, SampleValue } from './sample.js';

export interface LastValue {
  value: SampleValue;
  quality: Quality;
  ts: number;
  /** Why the quality is not good, as the source said; absent on a good reading. */
  reason?: string;
  /** The newest good reading, kept while the point is bad or uncertain (the page shows it beside). */
  goodValue?: SampleValue;
  goodTs?: number;
}

/** Bounded even if a misbehaving source invented point names; the status page keeps its own entries to it too. */
export const MAX_POINTS = 20_000;

export class LastValues {
  private readonly byPoint = new Map<string, Map<string, LastValue>>();
  private count = 0;

  update(samples: readonly Sample[]): void {
    for (const s of samples) {
      let points = this.byPoint.get(s.device);
      if (!points) this.byPoint.set(s.device, (points = new Map()));
      let last = points.get(s.point);
      // Out-of-order samples (a backfilled line sensor) must not replace a newer value.
      if (last && last.ts > s.ts) continue;
      if (!last) {
        if (this.count >= MAX_POINTS) continue;
        // Every field from the start, so all entries share one shape.
        points.set(s.point, (last = { value: s.value, quality: s.quality, ts: s.ts, reason: undefined, goodValue: undefined, goodTs: undefined }));
        this.count++;
      }
      last.value = s.value;
      last.quality = s.quality;
      last.ts = s.ts;
      last.reason = s.reason;
      if (s.quality === 'good') {
        last.goodValue = s.value;
        last.goodTs = s.ts;
      }
    }
  }

  get(device: string, point: string): LastValue | undefined {
    return this.byPoint.get(device)?.get(point);
  }

  /** The points of a device that have a value, in the order they first arrived. */
  points(device: string): Iterable<string> {
    return this.byPoint.get(device)?.keys() ?? [];
  }

  /** Forgets points no longer configured (after a reload). */
  retain(keep: (device: string, point: string) => boolean): void {
    for (const [device, points] of this.byPoint) {
      for (const point of points.keys()) {
        if (keep(device, point)) continue;
        points.delete(point);
        this.count--;
      }
      if (points.size === 0) this.byPoint.delete(device);
    }
  }
}
