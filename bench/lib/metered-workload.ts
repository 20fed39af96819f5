/**
 * The metered-link workload: 100 points read at 1 Hz, as the gateway stores them (rows with their seq and
 * dictionary index), with values made the way a real site makes them: 4-20 mA loops in µA through scale and
 * range (pressures, levels), float32 registers (flows, shortened as the decoder does), counters and contacts.
 * Deterministic (a seeded random walk), so byte counts repeat from run to run.
 */
import { compileRange } from '../../src/processing/range.js';
import { shortestFloat32 } from '../../src/sources/modbus/decode.js';
import type { StoredRow } from '../../src/uplink/profile.js';

export const METERED_POINTS = 100;

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

type Kind = 'loop' | 'float32' | 'counter' | 'contact';
const KINDS: Kind[] = [...Array<Kind>(50).fill('loop'), ...Array<Kind>(20).fill('float32'), ...Array<Kind>(15).fill('counter'), ...Array<Kind>(15).fill('contact')];

/** Rows of `seconds` seconds of the workload from `t0`, seqs from `firstSeq`: 100 a second, in point order. */
export function meteredRows(seconds: number, t0 = Date.UTC(2026, 11, 1), firstSeq = 1, seed = 7): StoredRow[] {
  const random = rng(seed);
  const toBar = compileRange({ raw: [4, 20], eng: [0, 10] });
  const state = KINDS.map((k, i) => (k === 'loop' ? 8000 + i * 150 : k === 'float32' ? 20 + i : k === 'counter' ? 1000 * i : 0));
  const f32 = new Float32Array(1);
  const rows: StoredRow[] = [];
  let seq = firstSeq;
  for (let t = 0; t < seconds; t++) {
    for (let i = 0; i < METERED_POINTS; i++) {
      const kind = KINDS[i]!;
      let value: number | boolean;
      if (kind === 'loop') {
        state[i] = Math.max(4000, Math.min(20000, state[i]! + Math.round((random() - 0.5) * 12)));
        value = toBar(Math.round(state[i]!) / 1000);
      } else if (kind === 'float32') {
        state[i] = state[i]! + (random() - 0.5) * 0.2;
        f32[0] = state[i]!;
        value = shortestFloat32(f32[0]!);
      } else if (kind === 'counter') {
        if (random() < 0.3) state[i] = state[i]! + 1;
        value = state[i]!;
      } else {
        if (random() < 0.01) state[i] = 1 - state[i]!;
        value = state[i] === 1;
      }
      // Reads of one poll land within a few ms of each other.
      rows.push({ seq: seq++, series: i + 1, device: `d${Math.floor(i / 10)}`, point: `p${i}`, ts: t0 + t * 1000 + Math.floor(i / 10) * 3, value, quality: 'good', flags: 0 });
    }
  }
  return rows;
}
