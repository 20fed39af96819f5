/**
 * Checksums of ASCII line protocols, on the line's bytes (the delimiter already removed). Each verifier says
 * what it accepts, returns the line without its checksum for parsing, or a reason naming both values.
 *
 * - `none`: every line, unchanged.
 * - `nmea`: `$BODY*HH`, HH two hex digits (either case) at the very end, the XOR of the bytes of BODY (between
 *   the `$` and the `*`). The sentence starts at the last `$` before the `*`, so bytes in front of it (a noise
 *   burst or a cut-off sentence without its delimiter) are dropped; the line handed on is `$BODY`.
 * - `sum8`: the last two characters are hex digits (either case) giving the sum of the byte values of every
 *   character before them, modulo 256. A separator before the checksum (`...,mm,5C`) is part of the sum and
 *   stays in the line handed on.
 * - `crc16-modbus`: the last four characters are hex digits (either case) giving the CRC-16/MODBUS
 *   (polynomial 0xA001 reflected, initial 0xFFFF) of every byte before them, as a number written most
 *   significant digit first: the CRC of "123456789" is 0x4B37, written "4B37".
 */

export const CHECKSUM_KINDS = ['none', 'nmea', 'sum8', 'crc16-modbus'] as const;
export type ChecksumKind = (typeof CHECKSUM_KINDS)[number];

export type ChecksumResult = { ok: true; body: Buffer } | { ok: false; reason: string };
export type ChecksumVerifier = (line: Buffer) => ChecksumResult;

const DOLLAR = 0x24;
const STAR = 0x2a;

export function xor8(bytes: Uint8Array, from = 0, to = bytes.length): number {
  let x = 0;
  for (let i = from; i < to; i++) x ^= bytes[i]!;
  return x;
}

export function sum8(bytes: Uint8Array, from = 0, to = bytes.length): number {
  let s = 0;
  for (let i = from; i < to; i++) s = (s + bytes[i]!) & 0xff;
  return s;
}

export function crc16Modbus(bytes: Uint8Array, from = 0, to = bytes.length): number {
  let crc = 0xffff;
  for (let i = from; i < to; i++) {
    crc ^= bytes[i]!;
    for (let b = 0; b < 8; b++) crc = crc & 1 ? (crc >>> 1) ^ 0xa001 : crc >>> 1;
  }
  return crc;
}

const hex = (n: number, digits: number) => n.toString(16).toUpperCase().padStart(digits, '0');

function isHex(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
}

/** The hex number in the last `digits` bytes, or undefined when any of them is not a hex digit. */
function trailingHex(line: Buffer, digits: number): number | undefined {
  if (line.length < digits) return undefined;
  for (let i = line.length - digits; i < line.length; i++) if (!isHex(line[i]!)) return undefined;
  return Number.parseInt(line.toString('latin1', line.length - digits), 16);
}

/** Printable form of a few bytes for a reason: control and non-ASCII bytes become '?'. */
function shown(bytes: Buffer): string {
  return bytes.toString('latin1').replace(/[^\x20-\x7e]/g, '?');
}

function verifyNmea(line: Buffer): ChecksumResult {
  const star = line.length - 3;
  if (star < 1 || line[star] !== STAR || !isHex(line[star + 1]!) || !isHex(line[star + 2]!)) {
    return { ok: false, reason: 'no NMEA checksum (expected $...*HH at the end of the line)' };
  }
  const dollar = line.lastIndexOf(DOLLAR, star);
  if (dollar < 0) return { ok: false, reason: 'no NMEA sentence start ($) before the checksum' };
  const got = Number.parseInt(line.toString('latin1', star + 1), 16);
  const computed = xor8(line, dollar + 1, star);
  if (got !== computed) return { ok: false, reason: `checksum mismatch (got ${hex(got, 2)}, computed ${hex(computed, 2)})` };
  return { ok: true, body: line.subarray(dollar, star) };
}

function trailing(digits: number, name: string, compute: (b: Uint8Array, from: number, to: number) => number): ChecksumVerifier {
  return (line) => {
    const got = trailingHex(line, digits);
    if (got === undefined || line.length <= digits) {
      const tail = line.subarray(Math.max(0, line.length - digits));
      return { ok: false, reason: `no ${name} checksum (the last ${digits} characters '${shown(tail)}' are not ${digits} hex digits after the data)` };
    }
    const end = line.length - digits;
    const computed = compute(line, 0, end);
    if (got !== computed) return { ok: false, reason: `checksum mismatch (got ${hex(got, digits)}, computed ${hex(computed, digits)})` };
    return { ok: true, body: line.subarray(0, end) };
  };
}

const VERIFIERS: Record<ChecksumKind, ChecksumVerifier> = {
  none: (line) => ({ ok: true, body: line }),
  nmea: verifyNmea,
  sum8: trailing(2, 'sum8', sum8),
  'crc16-modbus': trailing(4, 'CRC-16/MODBUS', crc16Modbus),
};

/** The verifier for a device's checksum kind, picked once at start. */
export function compileChecksum(kind: ChecksumKind = 'none'): ChecksumVerifier {
  return VERIFIERS[kind];
}

/**
 * A line with its checksum appended, as a device sends it: for nmea `text` is the sentence without `$` and
 * `*HH` (`GAS,CH4=0.12`); for sum8 and crc16-modbus the checksum goes right after `text`.
 */
export function withChecksum(kind: ChecksumKind, text: string): string {
  const bytes = Buffer.from(text, 'utf8');
  switch (kind) {
    case 'none':
      return text;
    case 'nmea':
      return `$${text}*${hex(xor8(bytes), 2)}`;
    case 'sum8':
      return `${text}${hex(sum8(bytes), 2)}`;
    case 'crc16-modbus':
      return `${text}${hex(crc16Modbus(bytes), 4)}`;
  }
}
