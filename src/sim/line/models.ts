/**
 * Line-protocol instruments of a tunnel face, as closed-form functions of time (an injected clock can jump
 * ahead and read the same values as if it had ticked through), and the lines they send.
 *
 * Gas detector (NMEA-style, checksum `*HH` = XOR of the characters between `$` and `*`):
 *   every interval, and in reply to `#01` (its address, two digits):
 *   `$GAS,CH4=0.04,CO=3,H2S=0.3,O2=20.9*23`  (CH4 %vol, CO ppm, H2S ppm, O2 %vol)
 *   A gas excursion ('gas') raises methane through 0.5 %vol (~20 s) and 1.0 %vol (~60 s), peaks near 1.2
 *   at 90 s and falls back by itself (or at once with 'clear').
 *
 * Laser distance meter across the lining, for convergence (commands end with CR or CR LF, any case):
 *   `D`  -> `D,4823.4,mm`                 distance
 *   `DT` -> `4823.4,21.5`                 distance (mm) and housing temperature (°C), CSV
 *   `J`  -> `{"distance":{"value":4823.4,"unit":"mm"},"temperature":21.5}`
 *   anything else -> `E,unknown command`
 *   With a checksum option, `,` and the checksum (two hex digits sum8, four CRC-16/MODBUS) follow every
 *   reply, computed over all characters before them including that comma; after a JSON reply the checksum
 *   follows the closing brace directly, so what is left once it is stripped is the JSON object.
 *   The lining converges slowly (about 1.4 mm the first day, slowing logarithmically); 'creep' adds a
 *   squeezing section's 0.2 mm a minute until cleared.
 */
import { withChecksum } from '../../sources/line/checksum.js';
import { Ramp, hourOfDay, noise } from '../physics.js';

export type LineDeviceKind = 'gas' | 'laser';
export type LineSimEvent = 'gas' | 'creep' | 'clear';
export type LaserChecksum = 'none' | 'sum8' | 'crc16-modbus';

export interface LineDeviceModel {
  readonly kind: LineDeviceKind;
  readonly eventActive: boolean;
  /** The line sent unprompted every interval (without the delimiter). */
  periodic(now: number): string;
  /** The reply to a query (trimmed, without CR/LF), or undefined when the query is not for this device. */
  answer(query: string, now: number): string | undefined;
  trigger(event: LineSimEvent, now: number): void;
}

/** Methane background and the height of an excursion, %vol (the Modbus tunnel scenario uses the same). */
const CH4_BACKGROUND = 0.04;
const CH4_EXCURSION = 1.26;
/** How long an excursion keeps rising before it dies away by itself. */
const EXCURSION_HOLD_MS = 90_000;

export interface GasOptions {
  seed?: number;
  /** Bus address answered in `#NN` (1-99). */
  address?: number;
}

export function gasDetector(opts: GasOptions = {}): LineDeviceModel {
  const seed = opts.seed ?? 7;
  const address = `#${String(opts.address ?? 1).padStart(2, '0')}`;
  const ramp = new Ramp(40_000, 40_000);
  let endsAt = Infinity;
  /** Ends a held excursion at its due time, even when first read long after. */
  const settle = (now: number) => {
    if (ramp.active && now >= endsAt) {
      ramp.set(false, endsAt);
      endsAt = Infinity;
    }
  };
  const ch4Clean = (now: number) => {
    settle(now);
    return CH4_BACKGROUND + CH4_EXCURSION * ramp.level(now);
  };
  const sentence = (now: number) => {
    const clean = ch4Clean(now);
    const ch4 = Math.max(0, clean + 0.01 * noise(seed, 1, now, 500));
    const co = Math.max(0, 3 + 0.6 * noise(seed, 2, now, 500));
    const h2s = Math.max(0, 0.3 + 0.1 * noise(seed, 3, now, 500));
    // Methane displaces air.
    const o2 = 20.9 * (1 - clean / 100) + 0.05 * noise(seed, 4, now, 500);
    return withChecksum('nmea', `GAS,CH4=${ch4.toFixed(2)},CO=${co.toFixed(0)},H2S=${h2s.toFixed(1)},O2=${o2.toFixed(1)}`);
  };
  return {
    kind: 'gas',
    get eventActive() {
      return ramp.active;
    },
    periodic: sentence,
    answer: (query, now) => (query.toUpperCase() === address ? sentence(now) : undefined),
    trigger(event, now) {
      if (event === 'creep') throw new Error('the gas detector has a "gas" event (and "clear"), not "creep"');
      settle(now);
      ramp.set(event === 'gas', now);
      endsAt = event === 'gas' ? now + EXCURSION_HOLD_MS : Infinity;
    },
  };
}

export interface LaserOptions {
  seed?: number;
  /** Distance at start, mm. */
  distanceMm?: number;
  checksum?: LaserChecksum;
}

/** Log-shaped convergence: CONVERGENCE_MM x ln(1 + t / 1 day) → ~1.4 mm the first day, ~2.2 by the third. */
const CONVERGENCE_MM = 2;
const DAY_MS = 86_400_000;
const SQUEEZE_MM_PER_MS = 0.2 / 60_000;

export function laserMeter(start: number, opts: LaserOptions = {}): LineDeviceModel {
  const seed = opts.seed ?? 11;
  const d0 = opts.distanceMm ?? 4823.4;
  const checksum = opts.checksum ?? 'none';
  let squeezed = 0;
  let squeezingSince: number | undefined;
  const squeeze = (now: number) => squeezed + (squeezingSince === undefined ? 0 : Math.max(0, now - squeezingSince) * SQUEEZE_MM_PER_MS);
  const distance = (now: number) => {
    const t = Math.max(0, now - start);
    return d0 - CONVERGENCE_MM * Math.log1p(t / DAY_MS) - squeeze(now) + 0.05 * noise(seed, 1, now, 200);
  };
  const temperature = (now: number) => 17 + 1.2 * Math.sin((2 * Math.PI * (hourOfDay(now) - 9)) / 24) + 0.1 * noise(seed, 2, now, 1000);
  const sealed = (text: string) => (checksum === 'none' ? text : withChecksum(checksum, text.startsWith('{') ? text : `${text},`));
  const reply = (cmd: string, now: number): string => {
    const d = distance(now).toFixed(1);
    const t = temperature(now).toFixed(1);
    switch (cmd) {
      case 'D':
        return `D,${d},mm`;
      case 'DT':
        return `${d},${t}`;
      case 'J':
        return JSON.stringify({ distance: { value: Number(d), unit: 'mm' }, temperature: Number(t) });
      default:
        return 'E,unknown command';
    }
  };
  return {
    kind: 'laser',
    get eventActive() {
      return squeezingSince !== undefined;
    },
    periodic: (now) => sealed(reply('D', now)),
    answer: (query, now) => sealed(reply(query.toUpperCase(), now)),
    trigger(event, now) {
      if (event === 'gas') throw new Error('the laser meter has a "creep" event (and "clear"), not "gas"');
      if (event === 'creep' && squeezingSince === undefined) squeezingSince = now;
      if (event === 'clear' && squeezingSince !== undefined) {
        squeezed = squeeze(now);
        squeezingSince = undefined;
      }
    },
  };
}

export function createLineModel(kind: LineDeviceKind, start: number, opts: GasOptions & LaserOptions = {}): LineDeviceModel {
  return kind === 'gas' ? gasDetector(opts) : laserMeter(start, opts);
}
