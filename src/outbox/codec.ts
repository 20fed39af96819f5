/**
 * Packs a sample's value kind, quality and flags into the one `meta` integer and back. The kind keeps the
 * value's JS type recoverable where SQLite would blur it: booleans need no stored value at all, NaN would be
 * stored as NULL and -0 as 0, so both get their own kind.
 */
import type { Quality, SampleValue } from '../sample.js';
import { OutboxError } from './errors.js';
import { MAX_FLAGS, type SampleInput } from './types.js';

const KIND_NULL = 0;
const KIND_NUMBER = 1;
const KIND_FALSE = 2;
const KIND_TRUE = 3;
const KIND_STRING = 4;
const KIND_NAN = 5;
const KIND_NEG_ZERO = 6;

const QUALITY_CODE: Record<Quality, number> = { good: 0, uncertain: 1, bad: 2 };
const QUALITY_NAME: readonly Quality[] = ['good', 'uncertain', 'bad'];

/** Flags start at bit 5; multiplication instead of shifts keeps the arithmetic exact past 31 bits. */
const FLAGS_UNIT = 32;

/** The `meta` bit that marks an untrusted timestamp (FLAG_TS_UNTRUSTED << 5), for SQL filters. */
export const META_TS_UNTRUSTED = FLAGS_UNIT;

export interface Encoded {
  meta: number;
  num: number | null;
  txt: string | null;
}

/** Reused by the insert loop so encoding allocates nothing per sample. */
export const scratch: Encoded = { meta: 0, num: null, txt: null };

export function encodeInto(out: Encoded, value: SampleValue, quality: Quality, flags: number): void {
  let kind: number;
  out.num = null;
  out.txt = null;
  if (typeof value === 'number') {
    if (Number.isNaN(value)) kind = KIND_NAN;
    else if (value === 0 && 1 / value < 0) kind = KIND_NEG_ZERO;
    else {
      kind = KIND_NUMBER;
      out.num = value;
    }
  } else if (typeof value === 'boolean') kind = value ? KIND_TRUE : KIND_FALSE;
  else if (typeof value === 'string') {
    kind = KIND_STRING;
    out.txt = value;
  } else kind = KIND_NULL;
  out.meta = kind + QUALITY_CODE[quality] * 8 + flags * FLAGS_UNIT;
}

/** `v` is the stored num or txt, whichever is set. */
export function decodeValue(meta: number, v: number | string | null): SampleValue {
  switch (meta & 7) {
    case KIND_NUMBER:
    case KIND_STRING:
      return v;
    case KIND_FALSE:
      return false;
    case KIND_TRUE:
      return true;
    case KIND_NAN:
      return NaN;
    case KIND_NEG_ZERO:
      return -0;
    default:
      return null;
  }
}

export function decodeQuality(meta: number): Quality {
  return QUALITY_NAME[(meta >> 3) & 3] ?? 'bad';
}

export function decodeFlags(meta: number): number {
  return Math.floor(meta / FLAGS_UNIT);
}

/** Rejects what cannot be stored faithfully, before anything is queued: one bad sample must not poison a batch. */
export function validateSample(s: SampleInput): void {
  const fail = (why: string): never => {
    throw new OutboxError('OUTBOX_BAD_SAMPLE', `sample ${String(s?.device)}/${String(s?.point)}: ${why}`);
  };
  if (typeof s !== 'object' || s === null) fail('not an object');
  if (typeof s.device !== 'string' || typeof s.point !== 'string') fail('device and point must be strings');
  if (typeof s.ts !== 'number' || !Number.isFinite(s.ts)) fail(`ts ${String(s.ts)} is not a finite number`);
  if (!(s.quality in QUALITY_CODE)) fail(`quality ${String(s.quality)} is not good|bad|uncertain`);
  const t = typeof s.value;
  if (s.value !== null && t !== 'number' && t !== 'boolean' && t !== 'string') fail(`value of type ${t}`);
  if (s.reason !== undefined && s.reason !== null && typeof s.reason !== 'string') fail('reason must be a string');
  const f = s.flags;
  if (f !== undefined && (!Number.isInteger(f) || f < 0 || f > MAX_FLAGS)) fail(`flags ${String(f)} out of range`);
}
