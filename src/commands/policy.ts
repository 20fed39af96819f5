/**
 * The command guard's judgement, pure: is this write allowed, now, with this value? Deny by default: an unknown
 * device or point, a point without `write`, a value of the wrong type, out of range, off-step, not among the
 * allowed values or not representable in the point's registers, a command past its expiry or with an expiry
 * too far ahead, or one over the point's rate limit is refused with a reason, and nothing reaches the device.
 */
import type { PointType } from '../config/modbus-model.js';
import type { WriteCommand } from './types.js';

/** How a point may be written, as the configuration says (engineering units). */
export interface WriteRules {
  min?: number;
  max?: number;
  step?: number;
  values?: readonly (number | boolean | string)[];
  maxPerMinute: number;
}

/** What the guard knows of a configured point. */
export interface PointFacts {
  type: PointType;
  scale: number;
  offset: number;
  /** String length in registers. */
  length?: number;
  unit?: string;
  /** Absent: the point is not writable. */
  write?: WriteRules;
}

export interface WritePolicyContext {
  /** Gateway clock, ms. */
  now: number;
  /** The longest a command may be valid for: bounds how long its id must be remembered. */
  maxTtlMs: number;
  /** The points of a device, or undefined for a device the configuration does not have. */
  points(device: string): ReadonlyMap<string, PointFacts> | undefined;
  /** Gateway-clock times of the writes of this point the guard let through (any age; only the last 60 s count). */
  recentWrites(device: string, point: string): readonly number[];
}

export type Verdict =
  | { ok: true; value: number | boolean | string; facts: PointFacts }
  | { ok: false; status: 'rejected' | 'expired'; reason: string };

/** Raw register ranges of the integer types, for "does the value fit the register". */
const INT_RANGE: Partial<Record<PointType, [number, number]>> = {
  int16: [-32768, 32767],
  uint16: [0, 65535],
  int32: [-2147483648, 2147483647],
  uint32: [0, 4294967295],
  int64: [-Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  uint64: [0, Number.MAX_SAFE_INTEGER],
};

const FLOAT32_MAX = 3.4028234663852886e38;
export const RATE_WINDOW_MS = 60_000;

/** Whether x is a whole number, allowing for the binary fraction error of decimal scales (0.01 * 234 = 2.34). */
function isWhole(x: number): boolean {
  return Math.abs(x - Math.round(x)) <= 1e-9 * Math.max(1, Math.abs(x));
}

const describe = (v: unknown) => (typeof v === 'string' ? JSON.stringify(v) : typeof v === 'object' ? (v === null ? 'null' : Array.isArray(v) ? 'a list' : 'an object') : String(v));
const unitOf = (f: PointFacts) => (f.unit ? ` ${f.unit}` : '');

/** Whether a value is of the point's type and fits its registers; the reason when not. */
export function checkType(f: PointFacts, value: unknown): string | undefined {
  if (f.type === 'bool') return typeof value === 'boolean' ? undefined : `a bool point takes true or false, got ${describe(value)}`;
  if (f.type === 'string') {
    if (typeof value !== 'string') return `a string point takes a string, got ${describe(value)}`;
    const max = (f.length ?? 1) * 2;
    if (value.length > max) return `the string has ${value.length} characters; the point holds ${max}`;
    if (!/^[\x20-\x7e]*$/.test(value)) return 'the string has characters outside printable ASCII';
    return undefined;
  }
  if (typeof value !== 'number' || !Number.isFinite(value)) return `a ${f.type} point takes a finite number, got ${describe(value)}`;
  const raw = (value - f.offset) / f.scale;
  if (f.type === 'float32') return Math.abs(raw) > FLOAT32_MAX ? `${value} does not fit a float32 register` : undefined;
  if (f.type === 'float64') return Number.isFinite(raw) ? undefined : `${value} does not fit a float64 register`;
  if (!isWhole(raw)) return `${value} is off-step: the point's resolution is ${f.scale}${f.offset ? ` from ${f.offset}` : ''}`;
  const [lo, hi] = INT_RANGE[f.type]!;
  const r = Math.round(raw);
  if (r < lo || r > hi) return `${value} does not fit a ${f.type} register (raw ${r}, range ${lo}..${hi})`;
  return undefined;
}

/** The configured limits: min/max, step and the allowed values. */
export function checkLimits(f: PointFacts, rules: WriteRules, value: number | boolean | string): string | undefined {
  if (rules.values && !rules.values.some((v) => v === value)) return `${describe(value)} is not one of the allowed values ${rules.values.map(describe).join(', ')}`;
  if (typeof value !== 'number') return undefined;
  if (rules.min !== undefined && value < rules.min) return `${value}${unitOf(f)} is below the minimum ${rules.min}${unitOf(f)}`;
  if (rules.max !== undefined && value > rules.max) return `${value}${unitOf(f)} is above the maximum ${rules.max}${unitOf(f)}`;
  if (rules.step !== undefined && !isWhole((value - (rules.min ?? 0)) / rules.step)) {
    return `${value} is off-step: allowed are ${rules.min ?? 0} + k x ${rules.step}`;
  }
  return undefined;
}

export function judgeWrite(c: WriteCommand, ctx: WritePolicyContext): Verdict {
  const rejected = (reason: string): Verdict => ({ ok: false, status: 'rejected', reason });
  if (!Number.isFinite(c.expiresAt)) return rejected('the command has no expiry (expiresAt or ttlS)');
  if (c.expiresAt <= ctx.now) return { ok: false, status: 'expired', reason: `expired ${Math.round((ctx.now - c.expiresAt) / 1000)} s ago` };
  if (c.expiresAt - ctx.now > ctx.maxTtlMs) return rejected(`the expiry is ${Math.round((c.expiresAt - ctx.now) / 1000)} s ahead; at most ${ctx.maxTtlMs / 1000} s is taken`);
  const points = ctx.points(c.device);
  if (!points) return rejected(`no device "${c.device}"`);
  const f = points.get(c.point);
  if (!f) return rejected(`device "${c.device}" has no point "${c.point}"`);
  if (!f.write) return rejected(`point ${c.device}/${c.point} is not writable (no write: in its configuration)`);
  const typeError = checkType(f, c.value);
  if (typeError) return rejected(typeError);
  const value = c.value as number | boolean | string;
  const limitError = checkLimits(f, f.write, value);
  if (limitError) return rejected(limitError);
  const since = ctx.now - RATE_WINDOW_MS;
  const recent = ctx.recentWrites(c.device, c.point).filter((t) => t > since).length;
  if (recent >= f.write.maxPerMinute) return rejected(`over the rate limit: ${recent} writes of this point in the last minute (maxPerMinute ${f.write.maxPerMinute})`);
  return { ok: true, value, facts: f };
}
