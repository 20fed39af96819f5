/**
 * Reads the YAML configuration and reports every problem at once, each as `FILE:LINE:COL key.path: message`,
 * so one edit-and-validate round fixes them all. Order of checks: the file itself (a regular file, at most
 * 4 MiB, UTF-8), YAML syntax and nesting (nothing else is trustworthy until the file parses), duplicate keys,
 * the schema with the cross-field rules on what it accepts. No message shows a secret's value.
 */
import { isMap, isScalar, isSeq, LineCounter } from 'yaml';
import { UserError } from '../errors.js';
import { parseBounded } from './parse-yaml.js';
import { formatIssue, formatPath, Locator, type ConfigIssue } from './locate.js';
import { closest, describe, schemaMessage, shown } from './messages.js';
import { readConfigText } from './read.js';
import { configSchema, type Config } from './schema.js';
import { urlCredentialIssues } from './secrets.js';
import type { IssuePath } from './issues.js';
import { partialIssues, validateConfig } from './validate.js';
import { foreignKeyIssues, requiredByTransport } from './raw-rules.js';
import { deviceKinds, isRaw, KIND_KEYS, listOf, type SourceKind } from './kinds.js';

export { formatIssue, formatPath, type ConfigIssue } from './locate.js';

/** Errors listed in full; the rest are counted. A file of 40,000 unknown keys is fixed from its first few. */
export const MAX_LISTED_ISSUES = 100;

/** Parses and checks configuration text; `config` is set only when there are no issues. */
export function parseConfig(text: string, file: string): { config?: Config; issues: ConfigIssue[] } {
  const lineCounter = new LineCounter();
  const { doc, refusal } = parseBounded(text, lineCounter);
  const where = new Locator(doc, lineCounter, file);
  if (refusal) return { issues: [where.issueAtOffset(refusal.offset, refusal.message, refusal.path)] };

  // Only the errors that will be listed get a key path (a walk down the document); the rest a position.
  const errors = [...doc.errors].sort((a, b) => a.pos[0] - b.pos[0]);
  const syntax = errors.map((err, i) => where.issueAtOffset(err.pos[0], yamlMessage(err.code, err.message), i < MAX_LISTED_ISSUES ? undefined : []));
  if (syntax.length) return { issues: sortIssues(syntax) };

  const issues: ConfigIssue[] = [];
  findDuplicateKeys(doc.contents, [], where, issues);

  let data: unknown;
  try {
    data = doc.contents === null ? {} : doc.toJS({ maxAliasCount: 1000 });
  } catch (err) {
    // Unresolved or runaway aliases surface only when the document is turned into values.
    issues.push(where.issueAtOffset(0, `cannot read the YAML: ${(err as Error).message}`));
    return { issues: sortIssues(issues) };
  }

  const knownKeys = new Map<string, string[]>();
  const result = configSchema.safeParse(data, {
    reportInput: true,
    error: (issue) => {
      if (issue.code === 'unrecognized_keys') {
        const shape = (issue.inst as { shape?: object } | undefined)?.shape;
        knownKeys.set(formatPath(issue.path ?? []), Object.keys(shape ?? {}));
      }
      return schemaMessage(issue);
    },
  });

  // Rules on the raw document first: a key refused by kind is reported once, not also for its value.
  const foreign = foreignKeyIssues(data);
  const refused = new Set(foreign.map((rule) => formatPath(rule.path)));
  const underRefused = (path: readonly PropertyKey[]) => path.some((_, i) => refused.has(formatPath(path.slice(0, i + 1))));
  for (const rule of [...requiredByTransport(data), ...foreign, ...urlCredentialIssues(data)]) issues.push(where.issueAt(rule.path, rule.message));
  if (!result.success) {
    const devices = listOf(isRaw(data) ? data.devices : undefined);
    const kindOf = deviceKinds(data);
    for (const issue of result.error.issues) {
      if (underRefused(issue.path)) continue;
      if (issue.code !== 'unrecognized_keys') {
        issues.push(where.issueAt(issue.path, withInput(issue.message, issue.path, issue.input)));
        continue;
      }
      const known = ownKeys(issue.path, knownKeys.get(formatPath(issue.path)) ?? [], devices, kindOf);
      for (const key of issue.keys) issues.push(where.issueAt([...issue.path, key], unknownKey(key, known), true));
    }
  }
  // The cross-field rules too, in the same pass: on the whole config once the schema accepts it, else on
  // the parts it accepts (a device naming a missing bus is listed with an unknown key elsewhere).
  const rules = result.success ? validateConfig(result.data) : partialIssues(data);
  for (const rule of rules) issues.push(where.issueAt(rule.path, rule.message));
  if (issues.length) return { issues: sortIssues(issues) };
  return { config: result.data, issues: [] };
}

/** Reads and checks a configuration file; throws a UserError (exit code 2) listing the first problems. */
export function loadConfig(file: string): Config {
  const { config, issues } = parseConfig(readConfigText(file), file);
  if (!config) {
    const count = `${issues.length} ${issues.length === 1 ? 'error' : 'errors'}`;
    const listed = issues.slice(0, MAX_LISTED_ISSUES).map(formatIssue);
    if (issues.length > MAX_LISTED_ISSUES) listed.push(`... and ${issues.length - MAX_LISTED_ISSUES} more`);
    throw new UserError(`${file}: invalid configuration, ${count}`, 2, listed);
  }
  return config;
}

/** Messages worded in the schema itself (`unit must be 1-247`) do not say what was found; add it. */
function withInput(message: string, path: readonly PropertyKey[], input: unknown): string {
  const show = typeof input === 'number' || (typeof input === 'string' && input !== '');
  return show && !message.includes(', got ') ? `${message}, got ${shown(path, input)}` : message;
}

/**
 * The keys a device or point of a known kind takes: the schema is one object over both kinds, and a typo on a
 * line point must not be told "did you mean address?", a key it would then refuse.
 */
function ownKeys(path: readonly PropertyKey[], known: string[], devices: unknown[], kindOf: (device: unknown) => SourceKind | undefined): string[] {
  const atDevice = path.length === 2;
  const atPoint = path.length === 4 && path[2] === 'points';
  if (path[0] !== 'devices' || typeof path[1] !== 'number' || !(atDevice || atPoint)) return known;
  const kind = kindOf(devices[path[1]]);
  if (kind === undefined) return known;
  const foreign = KIND_KEYS[kind === 'line' ? 'modbus' : 'line'][atDevice ? 'device' : 'point'];
  return known.filter((key) => !foreign.includes(key));
}

function unknownKey(key: string, known: string[]): string {
  const near = closest(key, known);
  const name = describe(key);
  if (near) return `unknown key ${name} (did you mean "${near}"?)`;
  return known.length ? `unknown key ${name} (known keys: ${known.join(', ')})` : `unknown key ${name}`;
}

function yamlMessage(code: string, message: string): string {
  if (code === 'MULTIPLE_DOCS') return 'only one YAML document is allowed; remove the second "---" and what follows';
  return `YAML syntax: ${message}`;
}

function sortIssues(issues: ConfigIssue[]): ConfigIssue[] {
  return issues.sort((a, b) => a.line - b.line || a.col - b.col);
}

/** Duplicate keys are legal to the YAML parser in lenient mode, but the earlier value would be silently lost. */
function findDuplicateKeys(node: unknown, path: IssuePath, where: Locator, issues: ConfigIssue[]): void {
  if (isMap(node)) {
    const seen = new Map<string, number>();
    for (const pair of node.items) {
      if (!isScalar(pair.key)) continue;
      const key = String(pair.key.value);
      const offset = pair.key.range?.[0] ?? 0;
      const first = seen.get(key);
      if (first !== undefined) {
        const { line } = where.position(first);
        issues.push(where.issueAtOffset(offset, `duplicate key ${JSON.stringify(key)} (first at line ${line})`, [...path, key]));
      } else seen.set(key, offset);
      findDuplicateKeys(pair.value, [...path, key], where, issues);
    }
  } else if (isSeq(node)) {
    node.items.forEach((item, i) => findDuplicateKeys(item, [...path, i], where, issues));
  }
}
