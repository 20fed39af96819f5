/**
 * Register and bit decoding, compiled at start: compileDecoder picks a converter for the point's type, order,
 * bit and scale (one per kind of point, shared), so the poll loop calls one closure and never switches on type.
 *
 * Value conventions:
 * - int64/uint64 are computed exactly and rounded once to the nearest double (the same result as
 *   Number(BigInt)); above 2^53 that loses precision (uint64 max reads as 18446744073709551616).
 * - NaN and Infinity read from a float register are returned as-is, without scale/offset: the caller decides
 *   the sample's quality.
 * - Strings end at the first NUL (devices often leave junk after the terminator); trailing spaces are cut;
 *   any byte outside printable ASCII (0x20-0x7E) becomes U+FFFD, so a stray control byte cannot corrupt the
 *   JSON published downstream, yet stays visible as "something was there".
 */
import { isBitFc, type Order, type PointType, type ReadFc } from './types.js';

export interface ValueSpec {
  fc: ReadFc;
  type: PointType;
  order: Order;
  /** A single bit (0 = least significant) of the order-adjusted 16-bit word, read as a bool. */
  bit?: number;
  /** String length in registers. */
  length?: number;
  scale: number;
  offset: number;
}

export type DecodedValue = number | boolean | string;
export type Decoder = (words: ArrayLike<number> | ArrayLike<boolean>, at: number) => DecodedValue;
/** Values encodeValue accepts; bigint (or a decimal integer string) writes int64/uint64 exactly. */
export type WriteValue = number | boolean | string | bigint;

const CANONICAL: Record<Order, 'ABCD' | 'CDAB' | 'BADC' | 'DCBA'> = {
  ABCD: 'ABCD', CDAB: 'CDAB', BADC: 'BADC', DCBA: 'DCBA',
  ABCDEFGH: 'ABCD', GHEFCDAB: 'CDAB', BADCFEHG: 'BADC', HGFEDCBA: 'DCBA',
};

/** wordSwap: registers arrive least significant first; byteSwap: each register has its low byte first. */
function layout(order: Order): { wordSwap: boolean; byteSwap: boolean } {
  const c = CANONICAL[order];
  if (c === undefined) throw new RangeError(`unknown byte order ${String(order)}`);
  return { wordSwap: c === 'CDAB' || c === 'DCBA', byteSwap: c === 'BADC' || c === 'DCBA' };
}

/** One scratch buffer for float conversion: decoding is synchronous, so nothing else can hold it meanwhile. */
const scratch = new DataView(new ArrayBuffer(8));

const swap16 = (w: number): number => ((w & 0xff) << 8) | ((w >>> 8) & 0xff);

/** Printable ASCII maps to itself, everything else to U+FFFD. */
const CHARS: string[] = Array.from({ length: 256 }, (_, b) => (b >= 0x20 && b <= 0x7e ? String.fromCharCode(b) : '\uFFFD'));

const TWO32 = 4294967296;

/**
 * Decimal places a scale or offset carries (0.1 -> 1, 0.025 -> 3), so a scaled reading is rounded back to what
 * it means: 3 x 0.1 reads 0.3, not 0.30000000000000004, which would also cost bytes on a metered link.
 */
function decimals(x: number): number {
  const s = String(Math.abs(x));
  if (s.includes('e')) return 12;
  const dot = s.indexOf('.');
  return dot < 0 ? 0 : s.length - dot - 1;
}

function roundTo(v: number, places: number): number {
  if (places <= 0 || places > 12) return v;
  const k = 10 ** places;
  const scaled = v * k;
  return Math.abs(scaled) < Number.MAX_SAFE_INTEGER ? Math.round(scaled) / k : v;
}

/** The shortest decimal that reads back as the same float32: 123.456, not 123.45600128173828. */
export function shortestFloat32(v: number): number {
  if (!Number.isFinite(v) || v === 0) return v;
  const f = Math.fround(v);
  for (let p = 6; p < 9; p++) {
    const candidate = Number(v.toPrecision(p));
    if (Math.fround(candidate) === f) return candidate;
  }
  return Number(v.toPrecision(9));
}

/**
 * Decoders depend only on their spec and keep no state, so points with the same one share it: a site has a few
 * kinds of register and thousands of points, and a closure per point was ~0.5 KiB of heap each (10,000 points:
 * 4-5 MiB). Bounded: a configuration with more distinct specs than this compiles the rest unshared.
 */
const shared = new Map<string, Decoder>();
const SHARED_MAX = 4096;

export function compileDecoder(spec: ValueSpec): Decoder {
  const key = `${spec.fc}|${spec.type}|${spec.order}|${spec.bit ?? ''}|${spec.length ?? ''}|${spec.scale}|${spec.offset}`;
  let decoder = shared.get(key);
  if (decoder) return decoder;
  decoder = compileUnshared(spec);
  if (shared.size < SHARED_MAX) shared.set(key, decoder);
  return decoder;
}

function compileUnshared(spec: ValueSpec): Decoder {
  const base = compileBase(spec);
  const { type, scale, offset, bit } = spec;
  if (isBitFc(spec.fc) || bit !== undefined) return base;
  const identity = scale === 1 && offset === 0;
  if (type === 'float32') {
    const d = Math.max(decimals(scale), decimals(offset));
    return (words, at) => {
      const raw = base(words, at) as number;
      if (!Number.isFinite(raw)) return raw;
      if (identity) return shortestFloat32(raw);
      // Undo the scale, shorten as float32, scale again and round to the digits that remain meaningful.
      const r = shortestFloat32((raw - offset) / scale);
      return roundTo(r * scale + offset, Math.max(decimals(r) + decimals(scale), d));
    };
  }
  if (identity || !['int16', 'uint16', 'int32', 'uint32'].includes(type)) return base;
  const places = Math.max(decimals(scale), decimals(offset));
  return places === 0 ? base : (words, at) => roundTo(base(words, at) as number, places);
}

function compileBase(spec: ValueSpec): Decoder {
  const { fc, type, bit, scale, offset } = spec;
  if (isBitFc(fc)) return (words, at) => Boolean(words[at]);

  const { wordSwap, byteSwap } = layout(spec.order);
  if (bit !== undefined) {
    if (!Number.isInteger(bit) || bit < 0 || bit > 15) throw new RangeError(`bit ${bit} is not 0-15`);
    // Bit N of the byte-swapped word is bit N^8 of the word as received.
    const mask = 1 << (byteSwap ? bit ^ 8 : bit);
    return (words, at) => ((words[at] as number) & mask) !== 0;
  }

  // Word indices within the value, most significant first.
  const i0 = wordSwap ? 1 : 0;
  const i1 = wordSwap ? 0 : 1;
  const k0 = wordSwap ? 3 : 0;
  const k1 = wordSwap ? 2 : 1;
  const k2 = wordSwap ? 1 : 2;
  const k3 = wordSwap ? 0 : 3;

  switch (type) {
    case 'bool':
      return (words, at) => (words[at] as number) !== 0;
    case 'uint16':
      return byteSwap
        ? (words, at) => swap16(words[at] as number) * scale + offset
        : (words, at) => (words[at] as number) * scale + offset;
    case 'int16':
      return byteSwap
        ? (words, at) => ((swap16(words[at] as number) << 16) >> 16) * scale + offset
        : (words, at) => (((words[at] as number) << 16) >> 16) * scale + offset;
    case 'uint32':
      return (words, at) => {
        const w = words as ArrayLike<number>;
        const hi = byteSwap ? swap16(w[at + i0]) : w[at + i0];
        const lo = byteSwap ? swap16(w[at + i1]) : w[at + i1];
        return (hi * 65536 + lo) * scale + offset;
      };
    case 'int32':
      return (words, at) => {
        const w = words as ArrayLike<number>;
        const hi = byteSwap ? swap16(w[at + i0]) : w[at + i0];
        const lo = byteSwap ? swap16(w[at + i1]) : w[at + i1];
        return ((hi << 16) | lo) * scale + offset;
      };
    case 'float32':
      return (words, at) => {
        const w = words as ArrayLike<number>;
        // setUint16 with littleEndian = true stores the register's bytes swapped.
        scratch.setUint16(0, w[at + i0], byteSwap);
        scratch.setUint16(2, w[at + i1], byteSwap);
        const v = scratch.getFloat32(0);
        return Number.isFinite(v) ? v * scale + offset : v;
      };
    case 'float64':
      return (words, at) => {
        const w = words as ArrayLike<number>;
        scratch.setUint16(0, w[at + k0], byteSwap);
        scratch.setUint16(2, w[at + k1], byteSwap);
        scratch.setUint16(4, w[at + k2], byteSwap);
        scratch.setUint16(6, w[at + k3], byteSwap);
        const v = scratch.getFloat64(0);
        return Number.isFinite(v) ? v * scale + offset : v;
      };
    case 'int64':
    case 'uint64': {
      const signed = type === 'int64';
      // hi * 2^32 is exact (a 32-bit integer times a power of two) and lo < 2^32 is exact, so the one addition
      // rounds the exact 64-bit value once: the same double as Number(BigInt), without allocating a BigInt.
      return (words, at) => {
        const w = words as ArrayLike<number>;
        const a = byteSwap ? swap16(w[at + k0]) : w[at + k0];
        const b = byteSwap ? swap16(w[at + k1]) : w[at + k1];
        const c = byteSwap ? swap16(w[at + k2]) : w[at + k2];
        const d = byteSwap ? swap16(w[at + k3]) : w[at + k3];
        const hi = signed ? (a << 16) | b : a * 65536 + b;
        return (hi * TWO32 + (c * 65536 + d)) * scale + offset;
      };
    }
    case 'string': {
      const n = spec.length ?? 1;
      // Strings have no word order: only BADC/DCBA swap the two characters of each register.
      return (words, at) => {
        const w = words as ArrayLike<number>;
        let s = '';
        let keep = 0;
        for (let i = 0; i < n; i++) {
          const r = w[at + i];
          const first = byteSwap ? r & 0xff : r >>> 8;
          if (first === 0) break;
          s += CHARS[first];
          if (first !== 0x20) keep = s.length;
          const second = byteSwap ? r >>> 8 : r & 0xff;
          if (second === 0) break;
          s += CHARS[second];
          if (second !== 0x20) keep = s.length;
        }
        return keep === s.length ? s : s.slice(0, keep);
      };
    }
  }
  throw new RangeError(`unknown point type ${String(type)}`);
}

// ---------------------------------------------------------------------------------------------------------
// Encoding: the registers (fc 6/16) or bits (fc 5/15) that make compileDecoder return `value`.

const INT_RANGES = {
  int16: [-32768, 32767],
  uint16: [0, 65535],
  int32: [-2147483648, 2147483647],
  uint32: [0, 4294967295],
} as const;

const BIG_RANGES = {
  int64: [-(2n ** 63n), 2n ** 63n - 1n],
  uint64: [0n, 2n ** 64n - 1n],
} as const;

function toBool(value: WriteValue, what: string): boolean {
  if (typeof value === 'boolean') return value;
  if (typeof value === 'number' || typeof value === 'bigint') {
    if (value === 0 || value === 1 || value === 0n || value === 1n) return value === 1 || value === 1n;
  } else {
    if (/^(1|true|on)$/i.test(value.trim())) return true;
    if (/^(0|false|off)$/i.test(value.trim())) return false;
  }
  throw new TypeError(`${JSON.stringify(String(value))} is not a bool (${what}): use true/false, 1/0 or on/off`);
}

function toNumber(value: WriteValue, type: PointType): number {
  let n: number;
  if (typeof value === 'number') n = value;
  else if (typeof value === 'boolean') n = value ? 1 : 0;
  else if (typeof value === 'bigint') n = Number(value);
  else {
    n = value.trim() === '' ? NaN : Number(value);
    if (Number.isNaN(n)) throw new TypeError(`${JSON.stringify(value)} is not a number (${type})`);
  }
  if (!Number.isFinite(n)) throw new RangeError(`${n} cannot be written to ${type}: only finite values`);
  return n;
}

/** Big-endian register list laid out in the requested order. */
function arrange(words: number[], wordSwap: boolean, byteSwap: boolean): number[] {
  if (byteSwap) for (let i = 0; i < words.length; i++) words[i] = swap16(words[i]);
  if (wordSwap) words.reverse();
  return words;
}

function scratchWords(count: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < count; i++) out.push(scratch.getUint16(i * 2));
  return out;
}

function doesNotFit(value: WriteValue, raw: number | bigint, type: string, range: readonly [number | bigint, number | bigint]): RangeError {
  const shown = String(value) === String(raw) ? String(value) : `${String(value)} (raw ${String(raw)})`;
  return new RangeError(`${shown} does not fit ${type} (${String(range[0])}..${String(range[1])})`);
}

/**
 * The registers or bits to write so that compileDecoder(spec) reads `value` back. Scale and offset are
 * reversed ((value - offset) / scale, rounded to the nearest integer for integer types, halves away from zero). A bit point returns
 * the whole register: pass the register's `current` contents to keep its other bits (otherwise they are 0).
 * Strings are padded with NULs; trailing spaces do not survive a read back (the decoder cuts them).
 * Throws RangeError when the value does not fit the type, TypeError when it is not of a writable kind.
 */
export function encodeValue(spec: ValueSpec, value: WriteValue, current?: ArrayLike<number>): number[] | boolean[] {
  const { type, scale, offset } = spec;
  if (isBitFc(spec.fc)) return [toBool(value, 'coil')];
  const { wordSwap, byteSwap } = layout(spec.order);

  if (spec.bit !== undefined) {
    const mask = 1 << (byteSwap ? spec.bit ^ 8 : spec.bit);
    const base = current?.[0] ?? 0;
    return [toBool(value, `bit ${spec.bit}`) ? (base | mask) & 0xffff : base & ~mask & 0xffff];
  }
  if (type === 'bool') return [toBool(value, 'bool register') ? 1 : 0];
  if (type === 'string') return encodeString(value, spec.length ?? 1, byteSwap);

  const identity = scale === 1 && offset === 0;
  if ((type === 'int64' || type === 'uint64') && identity) {
    const exact = typeof value === 'bigint' ? value : typeof value === 'string' && /^\s*[+-]?\d+\s*$/.test(value) ? BigInt(value.trim()) : undefined;
    if (exact !== undefined) return encodeBig(value, exact, type, wordSwap, byteSwap);
  }
  if (scale === 0) throw new RangeError('cannot write through scale 0: every value reads back as the offset');
  const n = toNumber(value, type);
  const unscaled = identity ? n : (n - offset) / scale;
  if (!Number.isFinite(unscaled)) throw new RangeError(`${n} with scale ${scale} and offset ${offset} gives ${unscaled}, which does not fit ${type}`);

  switch (type) {
    case 'int16':
    case 'uint16':
    case 'int32':
    case 'uint32': {
      const raw = toCount(unscaled);
      const range = INT_RANGES[type];
      if (!(raw >= range[0] && raw <= range[1])) throw doesNotFit(value, raw, type, range);
      const u = raw < 0 ? raw + (type === 'int16' ? 65536 : TWO32) : raw;
      const words = type === 'int16' || type === 'uint16' ? [u] : [Math.floor(u / 65536), u % 65536];
      return arrange(words, wordSwap, byteSwap);
    }
    case 'int64':
    case 'uint64':
      return encodeBig(value, BigInt(toCount(unscaled)), type, wordSwap, byteSwap);
    case 'float32': {
      const f = Math.fround(unscaled);
      if (!Number.isFinite(f)) throw doesNotFit(value, unscaled, type, [-3.4028234663852886e38, 3.4028234663852886e38]);
      scratch.setFloat32(0, f);
      return arrange(scratchWords(2), wordSwap, byteSwap);
    }
    case 'float64':
      if (!Number.isFinite(unscaled)) throw doesNotFit(value, unscaled, type, [-Number.MAX_VALUE, Number.MAX_VALUE]);
      scratch.setFloat64(0, unscaled);
      return arrange(scratchWords(4), wordSwap, byteSwap);
  }
  throw new RangeError(`unknown point type ${String(type)}`);
}

/**
 * The nearest raw count of an unscaled value. The division's float noise is removed first (2.345 / 0.01 gives
 * 234.49999999999997, which means 234.5), then halves round away from zero, so 2.5 and -2.5 round alike (3, -3)
 * rather than both upwards as Math.round does.
 */
function toCount(unscaled: number): number {
  const x = Math.abs(unscaled) < TWO32 ? Math.round(unscaled * 1e6) / 1e6 : unscaled;
  return Math.sign(x) * Math.round(Math.abs(x)) + 0; // + 0 turns -0 into 0
}

function encodeBig(value: WriteValue, raw: bigint, type: 'int64' | 'uint64', wordSwap: boolean, byteSwap: boolean): number[] {
  const range = BIG_RANGES[type];
  if (raw < range[0] || raw > range[1]) throw doesNotFit(value, raw, type, range);
  scratch.setBigUint64(0, BigInt.asUintN(64, raw));
  return arrange(scratchWords(4), wordSwap, byteSwap);
}

function encodeString(value: WriteValue, length: number, byteSwap: boolean): number[] {
  if (typeof value !== 'string') throw new TypeError(`${String(value)} is not a string`);
  if (value.length > length * 2) {
    throw new RangeError(`"${value}" has ${value.length} characters; the point holds ${length * 2} (${length} registers)`);
  }
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c < 0x20 || c > 0x7e) throw new RangeError(`${JSON.stringify(value)} has a character outside printable ASCII (code ${c})`);
  }
  // Padded with NULs: the decoder stops at the first one.
  const words: number[] = [];
  for (let i = 0; i < length; i++) {
    const a = i * 2 < value.length ? value.charCodeAt(i * 2) : 0;
    const b = i * 2 + 1 < value.length ? value.charCodeAt(i * 2 + 1) : 0;
    words.push(byteSwap ? (b << 8) | a : (a << 8) | b);
  }
  return words;
}

/** Registers as 4-digit uppercase hex, space-separated ("42F6 E979"), for CLI output and error messages. */
export function registersToHex(words: ArrayLike<number>): string {
  let s = '';
  for (let i = 0; i < words.length; i++) s += (i === 0 ? '' : ' ') + (words[i] & 0xffff).toString(16).toUpperCase().padStart(4, '0');
  return s;
}
