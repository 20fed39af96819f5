/**
 * range: the linear map from the raw reading (after scale/offset) to engineering units. Not clamped: a
 * reading outside `raw` maps outside `eng` (a 2 mA reading on 4-20 -> 0-10 bar is -1.25 bar), because the
 * overshoot is information; sensorFault, not range, decides when a reading is not to be trusted.
 */
export type RangeFn = (raw: number) => number;

export interface RangeConfig {
  raw: readonly [number, number];
  eng: readonly [number, number];
}

export function compileRange(range: RangeConfig): RangeFn {
  const [r0, r1] = range.raw;
  const [e0, e1] = range.eng;
  const k = (e1 - e0) / (r1 - r0);
  return (raw) => e0 + (raw - r0) * k;
}
