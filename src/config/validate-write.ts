/**
 * The rules of `write` on a Modbus point: which points may be written at all, and whether the limits fit the
 * point. Nothing is writable without `write`; with it, only coils (fc 1) and holding registers (fc 3) whole.
 * Limits are in engineering units (after scale and offset), so each is checked against what the registers can
 * hold once scale and offset are undone. Line points refuse the key by kind (raw-rules.ts).
 */
import type { IssuePath, RuleIssue } from './issues.js';
import type { PointType } from './modbus-model.js';
import { resolvedType, resolvedWidth } from './points.js';
import type { PointConfig, PointWrite } from './schema.js';

/** Most registers one fc 16 request writes (Modbus application protocol 6.12). */
export const MAX_REGISTERS_PER_WRITE = 123;

const NUMERIC: ReadonlySet<PointType> = new Set(['int16', 'uint16', 'int32', 'uint32', 'int64', 'uint64', 'float32', 'float64']);
const INTEGER: ReadonlySet<PointType> = new Set(['int16', 'uint16', 'int32', 'uint32', 'int64', 'uint64']);

/** What the registers of each numeric type hold, before scale and offset. */
const RAW_RANGE: Record<string, readonly [number, number]> = {
  int16: [-32768, 32767],
  uint16: [0, 65535],
  int32: [-2147483648, 2147483647],
  uint32: [0, 4294967295],
  int64: [-(2 ** 63), 2 ** 63 - 1],
  uint64: [0, 2 ** 64 - 1],
  float32: [-3.4028234663852886e38, 3.4028234663852886e38],
  float64: [-Number.MAX_VALUE, Number.MAX_VALUE],
};

const READ_ONLY: Record<number, string> = { 2: 'discrete inputs', 4: 'input registers' };

/** Every problem of one point's `write`, with `at` the point's path. */
export function checkWrite(point: PointConfig, at: IssuePath, issues: RuleIssue[]): void {
  const spec = point.write;
  if (!spec) return;
  const here = [...at, 'write'];
  if (READ_ONLY[point.fc]) {
    issues.push({ path: here, message: `fc ${point.fc} points are ${READ_ONLY[point.fc]}, read-only in Modbus; only coils (fc 1) and holding registers (fc 3) can be written` });
    return;
  }
  if (point.bit !== undefined) {
    // Modbus writes whole registers: one bit means read, change, write back, and a bit the device changed in
    // between would be overwritten without anyone knowing.
    issues.push({
      path: here,
      message: 'a bit of a register cannot be written on its own: it would rewrite the whole register and could undo a bit the device changed meanwhile; write the register as uint16 (with values) or use a coil (fc 1)',
    });
    return;
  }
  const type = resolvedType(point);
  if (type === 'string' && resolvedWidth(point) > MAX_REGISTERS_PER_WRITE) {
    issues.push({ path: here, message: `a string of ${resolvedWidth(point)} registers cannot be written: one write (fc 16) carries at most ${MAX_REGISTERS_PER_WRITE}` });
  }
  const numeric = NUMERIC.has(type);
  for (const key of ['min', 'max', 'step'] as const) {
    if (spec[key] === undefined || numeric) continue;
    const use = type === 'bool' ? 'it is written true or false (values: [true] allows only one)' : 'list the texts allowed in values';
    issues.push({ path: [...here, key], message: `${key} applies to numeric points, not ${type}: ${use}` });
  }
  if (numeric) checkLimits(point, type, spec, here, issues);
  spec.values?.forEach((value, i) => {
    const problem = valueProblem(point, type, spec, value);
    if (problem) issues.push({ path: [...here, 'values', i], message: problem });
  });
}

function checkLimits(point: PointConfig, type: PointType, spec: PointWrite, here: IssuePath, issues: RuleIssue[]): void {
  const { min, max, step } = spec;
  if (min !== undefined && max !== undefined && min > max) issues.push({ path: [...here, 'min'], message: `min (${min}) must not exceed max (${max})` });
  for (const key of ['min', 'max'] as const) {
    const v = spec[key];
    const problem = v === undefined ? undefined : fitProblem(point, type, v);
    if (problem) issues.push({ path: [...here, key], message: `${key} ${problem}` });
  }
  if (step !== undefined && INTEGER.has(type)) {
    const counts = step / point.scale;
    if (Math.abs(counts - Math.round(counts)) > 1e-9 * Math.max(1, Math.abs(counts)) || Math.round(counts) === 0) {
      issues.push({ path: [...here, 'step'], message: `step ${step} is not a whole number of register counts (scale ${point.scale}): use a multiple of ${Math.abs(point.scale)}` });
    }
  }
}

/** Why a number cannot be written to the point's registers, or undefined. */
function fitProblem(point: PointConfig, type: PointType, v: number): string | undefined {
  const raw = (v - point.offset) / point.scale;
  const counted = INTEGER.has(type) ? Math.round(raw) : raw;
  const [lo, hi] = RAW_RANGE[type]!;
  if (Number.isFinite(counted) && counted >= lo && counted <= hi) return undefined;
  const by = [point.scale !== 1 ? `scale ${point.scale}` : '', point.offset !== 0 ? `offset ${point.offset}` : ''].filter(Boolean).join(' and ');
  const through = by ? ` with ${by} (raw ${counted})` : '';
  return `${v} does not fit ${type}${through}; ${type} holds ${lo}..${hi}`;
}

/** Why an entry of `values` can never be written to the point, or undefined. */
function valueProblem(point: PointConfig, type: PointType, spec: PointWrite, value: number | boolean | string): string | undefined {
  if (type === 'bool') return typeof value === 'boolean' ? undefined : `must be true or false (the point is bool), got ${JSON.stringify(value)}`;
  if (type === 'string') {
    if (typeof value !== 'string') return `must be text (the point is a string), got ${JSON.stringify(value)}`;
    const room = resolvedWidth(point) * 2;
    if (value.length > room) return `"${value}" has ${value.length} characters; the point holds ${room}`;
    if (!/^[\x20-\x7e]*$/.test(value)) return `"${value}" has a character outside printable ASCII`;
    return undefined;
  }
  if (typeof value !== 'number') return `must be a number (the point is ${type}), got ${JSON.stringify(value)}`;
  if (spec.min !== undefined && value < spec.min) return `${value} is below min (${spec.min}): it could never be written`;
  if (spec.max !== undefined && value > spec.max) return `${value} is above max (${spec.max}): it could never be written`;
  if (spec.step !== undefined && !onStep(value, spec.step, spec.min ?? 0)) {
    return `${value} is not on the step grid (${spec.min ?? 0} + k x ${spec.step}): it could never be written`;
  }
  return fitProblem(point, type, value);
}

/**
 * Whether `value` is `from + k * step` for a whole k, within rounding of decimal fractions (0.3 is on the grid
 * of 0.1); exported so that whoever checks a command's value applies the rule the configuration was checked by.
 */
export function onStep(value: number, step: number, from = 0): boolean {
  const k = (value - from) / step;
  return Math.abs(k - Math.round(k)) <= 1e-9 * Math.max(1, Math.abs(k));
}
