/**
 * Building blocks for simulated processes. Everything is a closed-form function of time, so an injected
 * clock can jump hours ahead and the values are the same as if it had ticked through.
 */

/**
 * A first-order lag towards 1 (event active) or 0 (cleared): how a burst or a gas inflow develops and dies
 * away. Exact at any time, whatever the step between reads.
 */
export class Ramp {
  private from = 0;
  private target = 0;
  private since = 0;

  constructor(
    /** Time constant while rising, ms: about 4 of them to settle. */
    private readonly tauUpMs: number,
    /** Time constant while falling back, ms. */
    private readonly tauDownMs = tauUpMs,
    initiallyActive = false,
  ) {
    this.from = this.target = initiallyActive ? 1 : 0;
  }

  get active(): boolean {
    return this.target === 1;
  }

  level(now: number): number {
    const dt = now - this.since;
    if (dt <= 0) return this.from;
    const tau = this.target === 1 ? this.tauUpMs : this.tauDownMs;
    return this.target + (this.from - this.target) * Math.exp(-dt / tau);
  }

  set(active: boolean, now: number): void {
    if (active === this.active) return;
    this.from = this.level(now);
    this.target = active ? 1 : 0;
    this.since = now;
  }
}

/** 32-bit integer hash (a variant of the "lowbias32" mixer), deterministic across runs. */
function hash32(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x7feb352d);
  x = Math.imul(x ^ (x >>> 15), 0x846ca68b);
  return (x ^ (x >>> 16)) >>> 0;
}

/**
 * Sensor noise in [-1, 1], roughly bell-shaped, constant within each `periodMs` (a module's conversion
 * cycle): two reads in the same cycle agree, like a real module's register image.
 */
export function noise(seed: number, channel: number, now: number, periodMs = 100): number {
  const step = Math.floor(now / periodMs);
  const base = hash32(Math.imul(seed, 0x9e3779b1) ^ Math.imul(channel + 1, 0x85ebca6b)) ^ hash32(step | 0) ^ hash32(Math.floor(step / 0x100000000));
  const a = hash32(base) / 0xffffffff;
  const b = hash32(base ^ 0x5bd1e995) / 0xffffffff;
  return a + b - 1;
}

/** Local hour of day as a fraction (0 ≤ h < 24): the gateway's sites keep local time. */
export function hourOfDay(now: number): number {
  const d = new Date(now);
  return d.getHours() + d.getMinutes() / 60 + d.getSeconds() / 3600;
}

/** A daily peak centred on `centre` hours, `width` hours wide (one sigma), wrapping around midnight. */
export function bump(hour: number, centre: number, width: number): number {
  let d = Math.abs(hour - centre) % 24;
  if (d > 12) d = 24 - d;
  return Math.exp(-0.5 * (d / width) ** 2);
}

/** Smooth step from 0 to 1 around `at` hours, `width` hours wide. */
export function rise(hour: number, at: number, width: number): number {
  return 1 / (1 + Math.exp(-(hour - at) / width));
}

/** 4-20 mA transmitter as seen by a module reporting µA: range low = 4000, range high = 20000. */
export function loopMicroAmps(value: number, low: number, high: number): number {
  const ua = 4000 + (16000 * (value - low)) / (high - low);
  // The module saturates a little over 20 mA (NAMUR NE43 allows up to 20.5 mA of over-range).
  return Math.min(22000, Math.max(0, ua));
}
