/**
 * Parsing of one text line into fields, and of a field into a point's value. Both are compiled once per
 * device and point; the compiled functions are pure and never throw, whatever the line holds: they return
 * the fields or a reason, a value or a reason.
 *
 * Modes (exactly one per device):
 * - regex: the named groups of the first match; a group that took no part in the match is missing.
 * - kv: the line split at `pairSeparator`, each piece at its first `assign`; keys and values trimmed; pieces
 *   without `assign` are skipped (a sentence name like `$GAS`); the first of a repeated key wins.
 * - csv: the line split at `separator`, cells trimmed, named by position after `columns`; extra cells are
 *   ignored, missing ones are missing fields.
 * - json: one JSON object a line; a field is a dotted path into it (`gas.ch4`, `readings.0.value`).
 */
import type { DeviceConfig, PointConfig } from '../../config/schema.js';

export type ParseConfig = NonNullable<DeviceConfig['parse']>;
/** A field as found in the line: text (regex, kv, csv) or any JSON value. */
export type RawField = string | number | boolean | null | object;
export type Fields = Record<string, RawField>;
export type ParseResult = { ok: true; fields: Fields } | { ok: false; reason: string };
export type LineParser = (line: string) => ParseResult;

export type PointValue = number | boolean | string;
export type ConvertResult = { ok: true; value: PointValue } | { ok: false; reason: string };
export type PointConverter = (fields: Fields) => ConvertResult;

/** A value quoted in a reason: short and printable, so a noisy line cannot bloat the outbox. */
export function quote(value: string, max = 24): string {
  const clean = value.replace(/[^\x20-\x7e]/g, '?');
  return `'${clean.length > max ? `${clean.slice(0, max)}…` : clean}'`;
}

function regexParser(pattern: string): LineParser {
  const re = new RegExp(pattern);
  return (line) => {
    const m = re.exec(line);
    if (!m) return { ok: false, reason: `line does not match the parse regex: ${quote(line, 40)}` };
    const fields: Fields = Object.create(null);
    for (const [k, v] of Object.entries(m.groups ?? {})) if (v !== undefined) fields[k] = v;
    return { ok: true, fields };
  };
}

function kvParser(pairSeparator: string, assign: string): LineParser {
  return (line) => {
    const fields: Fields = Object.create(null);
    let pairs = 0;
    for (const piece of line.split(pairSeparator)) {
      const at = piece.indexOf(assign);
      if (at < 0) continue;
      const key = piece.slice(0, at).trim();
      if (key === '' || key in fields) continue;
      fields[key] = piece.slice(at + assign.length).trim();
      pairs++;
    }
    if (pairs === 0) return { ok: false, reason: `no key${assign}value pairs in line: ${quote(line, 40)}` };
    return { ok: true, fields };
  };
}

function csvParser(columns: readonly string[], separator: string): LineParser {
  return (line) => {
    const cells = line.split(separator);
    const fields: Fields = Object.create(null);
    columns.forEach((name, i) => {
      if (i < cells.length && !(name in fields)) fields[name] = cells[i]!.trim();
    });
    return { ok: true, fields };
  };
}

/** Follows a dotted path through objects and arrays, own properties only. */
function lookup(root: unknown, path: readonly string[]): RawField | undefined {
  let at: unknown = root;
  for (const key of path) {
    if (typeof at !== 'object' || at === null || !Object.hasOwn(at, key)) return undefined;
    at = (at as Record<string, unknown>)[key];
  }
  return at as RawField;
}

function jsonParser(paths: readonly string[]): LineParser {
  const split = paths.map((p) => [p, p.split('.')] as const);
  return (line) => {
    let doc: unknown;
    try {
      doc = JSON.parse(line);
    } catch (err) {
      return { ok: false, reason: `not JSON: ${(err as Error).message.slice(0, 80)}` };
    }
    if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
      return { ok: false, reason: `not a JSON object: ${quote(line, 40)}` };
    }
    const fields: Fields = Object.create(null);
    for (const [path, keys] of split) {
      const v = lookup(doc, keys);
      if (v !== undefined) fields[path] = v;
    }
    return { ok: true, fields };
  };
}

/**
 * The parser of a device, given the fields its points read (JSON only extracts those). Throws only on a
 * configuration the validator refuses (no mode, a regex that does not compile).
 */
export function compileParser(parse: ParseConfig, fields: readonly string[]): LineParser {
  if (parse.regex !== undefined) return regexParser(parse.regex);
  if (parse.kv) return kvParser(parse.kv.pairSeparator, parse.kv.assign);
  if (parse.csv) return csvParser(parse.csv.columns, parse.csv.separator);
  if (parse.json) return jsonParser(fields);
  throw new Error('parse needs one of regex, kv, csv or json');
}

// ---------------------------------------------------------------- values

/** Decimal numbers as instruments print them: `12`, `-0.5`, `+004823.4`, `.5`, `1e-3`. */
const NUMBER = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;
const TRUE = new Set(['true', '1', 'on', 'yes']);
const FALSE = new Set(['false', '0', 'off', 'no']);
const INTEGER_TYPES = new Set(['int16', 'uint16', 'int32', 'uint32', 'int64', 'uint64']);

/** Digits after the decimal point that a number written as text carries ("0.12" 2, "1e-3" 3, "12" 0). */
function decimals(text: string): number {
  const m = /^[+-]?\d*(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/.exec(text);
  if (!m) return 0;
  return Math.max(0, (m[1]?.length ?? 0) - Number(m[2] ?? 0));
}

/**
 * Rounds a scaled reading to the digits it carries: "0.12" x 0.1 reads 0.012, not 0.012000000000000002,
 * which would also cost bytes on a metered link.
 */
function roundTo(v: number, places: number): number {
  if (places <= 0 || places > 12) return v;
  const k = 10 ** places;
  const scaled = v * k;
  return Math.abs(scaled) < Number.MAX_SAFE_INTEGER ? Math.round(scaled) / k : v;
}

function describe(raw: RawField): string {
  if (raw === null) return 'null';
  if (Array.isArray(raw)) return 'an array';
  return typeof raw === 'object' ? 'an object' : quote(String(raw));
}

type Shape = Pick<PointConfig, 'id' | 'field' | 'type' | 'scale' | 'offset'>;

/**
 * The converter of one point: its field to a string, a bool (true/false, 1/0, on/off, yes/no in any case,
 * JSON booleans and 0/1) or, for every other type, a number scaled as value x scale + offset. Integer types
 * (int16...) also require a whole number before scaling.
 */
export function compileConverter(point: Shape): PointConverter {
  const field = point.field ?? point.id;
  const type = point.type;
  const missing: ConvertResult = { ok: false, reason: `field ${field} missing` };
  if (type === 'string') {
    return (fields) => {
      const raw = fields[field];
      if (raw === undefined) return missing;
      if (raw === null || typeof raw === 'object') return { ok: false, reason: `field ${field} is ${describe(raw)}, not text` };
      return { ok: true, value: String(raw) };
    };
  }
  if (type === 'bool') {
    return (fields) => {
      const raw = fields[field];
      if (raw === undefined) return missing;
      if (typeof raw === 'boolean') return { ok: true, value: raw };
      if (raw === 0 || raw === 1) return { ok: true, value: raw === 1 };
      if (typeof raw === 'string') {
        const t = raw.trim().toLowerCase();
        if (TRUE.has(t)) return { ok: true, value: true };
        if (FALSE.has(t)) return { ok: true, value: false };
      }
      return { ok: false, reason: `not a bool: ${describe(raw)}` };
    };
  }
  const { scale, offset } = point;
  const integer = type !== undefined && INTEGER_TYPES.has(type);
  const scalePlaces = Math.max(decimals(String(scale)), decimals(String(offset)));
  const identity = scale === 1 && offset === 0;
  return (fields) => {
    const raw = fields[field];
    if (raw === undefined) return missing;
    let n: number;
    let places: number;
    if (typeof raw === 'number') {
      n = raw;
      places = decimals(String(raw));
    } else if (typeof raw === 'string') {
      const t = raw.trim();
      if (t === '') return { ok: false, reason: `field ${field} is empty` };
      if (!NUMBER.test(t)) return { ok: false, reason: `not a number: ${quote(t)}` };
      n = Number(t);
      places = decimals(t);
    } else {
      return { ok: false, reason: `not a number: ${describe(raw)}` };
    }
    if (!Number.isFinite(n)) return { ok: false, reason: `not a finite number: ${describe(raw)}` };
    if (integer && !Number.isInteger(n)) return { ok: false, reason: `not an integer (${type}): ${describe(raw)}` };
    if (identity) return { ok: true, value: n };
    const v = roundTo(n * scale + offset, places + scalePlaces);
    return Number.isFinite(v) ? { ok: true, value: v } : { ok: false, reason: `out of range after scaling: ${describe(raw)}` };
  };
}
