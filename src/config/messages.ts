/**
 * Schema problems in the user's words: what is wrong with the value and what the key accepts. zod's own
 * messages name JavaScript types ("expected int, received number"); these name YAML ones.
 */
import type { z } from 'zod';
import { isSecretPath, withoutUserinfo } from './secrets.js';

type RawIssue = z.core.$ZodRawIssue;

/** zod error map: a message for every issue the schema does not already word itself. */
export function schemaMessage(issue: RawIssue): string | undefined {
  const path = issue.path ?? [];
  const got = issue.input === undefined ? '' : `, got ${shown(path, issue.input)}`;
  switch (issue.code) {
    case 'invalid_type':
      if (issue.input === undefined) return 'is required';
      return `must be ${expected(issue.expected)}${got}`;
    case 'too_small':
    case 'too_big':
      return sizeMessage(issue, got);
    case 'invalid_value':
      return `must be ${oneOf(issue.values)}${got}${suggestValue(issue.input, issue.values)}`;
    case 'invalid_union': {
      const values = unionValues(issue);
      if (!values) return `is not valid${got}`;
      // A discriminator that matched no branch reports the whole mapping as its input.
      const key = (issue as { discriminator?: string }).discriminator;
      const input = key !== undefined && isRecord(issue.input) ? issue.input[key] : issue.input;
      if (input === undefined) return `is required (${oneOf(values)})`;
      return `must be ${oneOf(values)}, got ${shown(key !== undefined ? [...path, key] : path, input)}${suggestValue(input, values)}`;
    }
    case 'invalid_format':
      return `is not in the expected format${got}`;
    case 'unrecognized_keys':
      return `unknown key ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
    default:
      return undefined;
  }
}

function expected(type: string): string {
  switch (type) {
    case 'int':
      return 'a whole number';
    case 'number':
      return 'a number';
    case 'string':
      return 'text';
    case 'boolean':
      return 'true or false';
    case 'object':
      return 'a mapping (key: value lines)';
    case 'array':
      return 'a list ("- " items)';
    default:
      return `of type ${type}`;
  }
}

function sizeMessage(issue: Extract<RawIssue, { code: 'too_small' | 'too_big' }>, got: string): string {
  const bound = Number(issue.code === 'too_small' ? issue.minimum : issue.maximum);
  switch (issue.origin) {
    case 'string':
      if (issue.code === 'too_big') return `must be at most ${bound} characters`;
      return bound === 1 ? 'must not be empty' : `must be at least ${bound} characters`;
    case 'array':
      return issue.code === 'too_small'
        ? `needs at least ${bound} ${bound === 1 ? 'entry' : 'entries'}`
        : `allows at most ${bound} entries`;
    case 'number': {
      // The number schema carries both bounds; naming the whole range saves a second round of edits.
      const schema = (issue as { schema?: { minValue?: number | null; maxValue?: number | null } }).schema;
      const min = schema?.minValue;
      const max = schema?.maxValue;
      if (isBound(min) && isBound(max)) return `must be ${min}-${max}${got}`;
      return `must be ${issue.code === 'too_small' ? 'at least' : 'at most'} ${bound}${got}`;
    }
    default:
      return `is out of range${got}`;
  }
}

function isBound(n: number | null | undefined): n is number {
  return typeof n === 'number' && Math.abs(n) < Number.MAX_SAFE_INTEGER;
}

/** A union of literals (`7 | 8`) or a discriminator that matched no branch: the values it accepts. */
function unionValues(issue: Extract<RawIssue, { code: 'invalid_union' }>): unknown[] | undefined {
  const options = (issue as { options?: unknown[] }).options;
  if (options?.length) return options;
  const values: unknown[] = [];
  for (const branch of issue.errors) {
    if (branch.length !== 1 || branch[0].code !== 'invalid_value') return undefined;
    values.push(...branch[0].values);
  }
  return values.length ? values : undefined;
}

function oneOf(values: readonly unknown[]): string {
  const shown = values.map((v) => (typeof v === 'string' ? `"${v}"` : String(v)));
  if (shown.length === 1) return shown[0];
  if (shown.length === 2) return `${shown[0]} or ${shown[1]}`;
  return `one of ${shown.join(', ')}`;
}

function suggestValue(input: unknown, values: readonly unknown[]): string {
  if (typeof input !== 'string') return '';
  const near = closest(input, values.filter((v): v is string => typeof v === 'string'));
  return near ? ` (did you mean "${near}"?)` : '';
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * A value as a message may show it: a secret (status.token, a password, uplink.username) by its kind and
 * length only, a URL without its user and password.
 */
export function shown(path: readonly PropertyKey[], value: unknown): string {
  if (isSecretPath(path)) {
    if (typeof value === 'string') return `${value.length} ${value.length === 1 ? 'character' : 'characters'} (not shown)`;
    if (typeof value === 'number' || typeof value === 'boolean') return `a ${typeof value} (not shown)`;
    return describe(value);
  }
  return describe(typeof value === 'string' ? withoutUserinfo(value) : value);
}

/** A short picture of a YAML value for a message. */
export function describe(value: unknown): string {
  if (value === null) return 'an empty value';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'string') {
    const text = value.length > 40 ? `${value.slice(0, 37)}...` : value;
    return JSON.stringify(text);
  }
  return String(value);
}

/** The candidate a typo most likely meant: same letters in another case, or a small edit away. */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  const lower = word.toLowerCase();
  const exact = candidates.find((c) => c.toLowerCase() === lower);
  if (exact) return exact;
  const limit = Math.min(3, Math.max(1, Math.floor(word.length / 3)));
  let best: string | undefined;
  let bestDistance = limit + 1;
  for (const candidate of candidates) {
    const d = editDistance(lower, candidate.toLowerCase());
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 3) return 99;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = row;
  }
  return prev[b.length];
}
