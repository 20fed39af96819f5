/**
 * sensorFault: namur. NAMUR NE43 on the loop current in mA, checked before range maps it:
 * - below 3.6 or above 21.0: a sensor or wiring fault (bad);
 * - 3.6 up to 3.8 and above 20.5 up to 21.0: outside the measuring range but not a fault (uncertain);
 * - 3.8 to 20.5 inclusive: good.
 */
import type { Quality } from '../sample.js';

export const NAMUR = { faultLow: 3.6, low: 3.8, high: 20.5, faultHigh: 21.0 } as const;

export interface NamurVerdict {
  quality: Exclude<Quality, 'good'>;
  reason: string;
}

/** Two decimals at most ("2.1", "3.65"): keeps the reason dictionary small and the text short. */
const mA = (v: number) => `${Number.isFinite(v) ? Number(v.toFixed(2)) : String(v)} mA`;

/** The verdict on a current, or null when it is in the measuring range. */
export function namurCheck(current: number): NamurVerdict | null {
  if (current >= NAMUR.low && current <= NAMUR.high) return null;
  if (current >= NAMUR.faultLow && current < NAMUR.low) {
    return { quality: 'uncertain', reason: `uncertain: ${mA(current)} (NAMUR NE43: below 3.8 mA, under range)` };
  }
  if (current > NAMUR.high && current <= NAMUR.faultHigh) {
    return { quality: 'uncertain', reason: `uncertain: ${mA(current)} (NAMUR NE43: above 20.5 mA, over range)` };
  }
  if (current < NAMUR.faultLow) {
    return { quality: 'bad', reason: `sensor fault: ${mA(current)} (NAMUR NE43: below 3.6 mA, open loop or broken sensor)` };
  }
  if (current > NAMUR.faultHigh) {
    return { quality: 'bad', reason: `sensor fault: ${mA(current)} (NAMUR NE43: above 21.0 mA, short circuit or transmitter failure)` };
  }
  return { quality: 'bad', reason: `sensor fault: ${mA(current)} (NAMUR NE43: not a current)` };
}
