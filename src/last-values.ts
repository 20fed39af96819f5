/**
 * The latest value and quality of every point, as processing hands samples to the outbox: what a birth
 * that carries current values (Sparkplug DBIRTH) and the status page read. One entry per point, replaced
 * in place: its size is the point count, whatever the sample rate.
 */
import type { Quality, Sample } from './sample.js';

export interface LastValue {
  value: unknown;
  quality: Quality;
  ts: number;
}

export class LastValues {
  private readonly byPoint = new Map<string, Map<string, LastValue>>();

  update(samples: readonly Sample[]): void {
    for (const s of samples) {
      let points = this.byPoint.get(s.device);
      if (!points) this.byPoint.set(s.device, (points = new Map()));
      const last = points.get(s.point);
      // Out-of-order samples (a backfilled line sensor) must not replace a newer value.
      if (last && last.ts > s.ts) continue;
      if (last) {
        last.value = s.value;
        last.quality = s.quality;
        last.ts = s.ts;
      } else points.set(s.point, { value: s.value, quality: s.quality, ts: s.ts });
    }
  }

  get(device: string, point: string): LastValue | undefined {
    return this.byPoint.get(device)?.get(point);
  }

  /** Forgets points no longer configured (after a reload). */
  retain(keep: (device: string, point: string) => boolean): void {
    for (const [device, points] of this.byPoint) {
      for (const point of points.keys()) if (!keep(device, point)) points.delete(point);
      if (points.size === 0) this.byPoint.delete(device);
    }
  }
}
