/**
 * Reads the YAML configuration and reports every problem at once, each as `FILE:LINE:COL key.path: message`,
 * so one edit-and-validate round fixes them all. Order of checks: YAML syntax (nothing else is trustworthy
 * until the file parses), duplicate keys, the schema, then cross-field rules once the shape is right.
 */
import { readFileSync } from 'node:fs';
import { isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node } from 'yaml';
import { UserError } from '../errors.js';
import { closest, describe, schemaMessage } from './messages.js';
import { configSchema, type Config } from './schema.js';
import { validateConfig, type IssuePath } from './validate.js';
import { requiredByTransport } from './validate-line.js';

export interface ConfigIssue {
  file: string;
  /** 1-based position of the offending node, or of the enclosing mapping when a key is missing. */
  line: number;
  col: number;
  /** Like `devices[0].points[2].address`; `(root)` for the file as a whole. */
  path: string;
  message: string;
}

export function formatIssue(issue: ConfigIssue): string {
  return `${issue.file}:${issue.line}:${issue.col} ${issue.path}: ${issue.message}`;
}

export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const segment of path) {
    const key = String(segment);
    if (typeof segment === 'number') out += `[${segment}]`;
    // A key that is not a plain word (a typo with a space, a quoted key) stays readable on one line.
    else if (!/^[\w-]+$/.test(key)) out += `[${JSON.stringify(key.length > 40 ? `${key.slice(0, 37)}...` : key)}]`;
    else out += out ? `.${key}` : key;
  }
  return out || '(root)';
}

/** Parses and checks configuration text; `config` is set only when there are no issues. */
export function parseConfig(text: string, file: string): { config?: Config; issues: ConfigIssue[] } {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, uniqueKeys: false, prettyErrors: false });
  const where = new Locator(doc, lineCounter, file);

  const syntax = doc.errors.map((err) => where.issueAtOffset(err.pos[0], yamlMessage(err.code, err.message)));
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

  for (const rule of requiredByTransport(data)) issues.push(where.issueAt(rule.path, rule.message));
  if (!result.success) {
    for (const issue of result.error.issues) {
      if (issue.code !== 'unrecognized_keys') {
        issues.push(where.issueAt(issue.path, withInput(issue.message, issue.input)));
        continue;
      }
      const known = knownKeys.get(formatPath(issue.path)) ?? [];
      for (const key of issue.keys) issues.push(where.issueAt([...issue.path, key], unknownKey(key, known), true));
    }
    return { issues: sortIssues(issues) };
  }

  if (issues.length) return { issues: sortIssues(issues) };
  for (const rule of validateConfig(result.data)) issues.push(where.issueAt(rule.path, rule.message));
  if (issues.length) return { issues: sortIssues(issues) };
  return { config: result.data, issues: [] };
}

/** Reads and checks a configuration file; throws a UserError (exit code 2) listing every problem. */
export function loadConfig(file: string): Config {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new UserError(`cannot read ${file}: ${readFailure(err as NodeJS.ErrnoException)}`, 2);
  }
  const { config, issues } = parseConfig(text, file);
  if (!config) {
    const count = `${issues.length} ${issues.length === 1 ? 'error' : 'errors'}`;
    throw new UserError(`${file}: invalid configuration, ${count}`, 2, issues.map(formatIssue));
  }
  return config;
}

function readFailure(err: NodeJS.ErrnoException): string {
  switch (err.code) {
    case 'ENOENT':
      return 'no such file';
    case 'EISDIR':
      return 'it is a directory, not a file';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    default:
      return err.message;
  }
}

/** Messages worded in the schema itself (`unit must be 1-247`) do not say what was found; add it. */
function withInput(message: string, input: unknown): string {
  const shown = typeof input === 'number' || (typeof input === 'string' && input !== '');
  return shown && !message.includes(', got ') ? `${message}, got ${describe(input)}` : message;
}

function unknownKey(key: string, known: string[]): string {
  const near = closest(key, known);
  const name = JSON.stringify(key);
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

/** Maps key paths and offsets in the parsed document to 1-based line and column. */
class Locator {
  constructor(
    private readonly doc: Document,
    private readonly lines: LineCounter,
    private readonly file: string,
  ) {}

  position(offset: number): { line: number; col: number } {
    return this.lines.linePos(offset);
  }

  issueAtOffset(offset: number, message: string, path: IssuePath = this.pathAt(offset)): ConfigIssue {
    const { line, col } = this.position(offset);
    // One issue, one line: values quoted from the file may hold line breaks.
    return { file: this.file, line, col, path: formatPath(path), message: message.replace(/\r?\n/g, '\\n') };
  }

  /** At the node the path names (its key when `atKey`), or at the deepest ancestor that exists. */
  issueAt(path: readonly PropertyKey[], message: string, atKey = false): ConfigIssue {
    return this.issueAtOffset(this.offsetOf(path, atKey), message, path as IssuePath);
  }

  private offsetOf(path: readonly PropertyKey[], atKey: boolean): number {
    let node = this.resolve(this.doc.contents);
    let offset = node?.range?.[0] ?? 0;
    for (let i = 0; i < path.length && node; i++) {
      const segment = path[i];
      let next: unknown;
      if (isMap(node)) {
        const pair = lastPair(node.items, String(segment));
        if (!pair) break;
        const keyOffset = (pair.key as Node).range?.[0] ?? offset;
        // A key with an empty value has no value node to point at; its key is the nearest thing.
        if ((atKey && i === path.length - 1) || !pair.value) return keyOffset;
        next = pair.value;
      } else if (isSeq(node) && typeof segment === 'number') {
        next = node.items[segment];
      }
      const resolved = this.resolve(next);
      if (!resolved?.range) break;
      node = resolved;
      offset = resolved.range[0];
    }
    return offset;
  }

  /** The key path around an offset, for YAML errors that come with a position only. */
  private pathAt(offset: number): IssuePath {
    const path: IssuePath = [];
    let node = this.resolve(this.doc.contents);
    while (node) {
      let next: unknown;
      if (isMap(node)) {
        const i = lastIndexAround(node.items, offset, (p) => [(p.key as Node | null)?.range, (p.value as Node | null)?.range]);
        const key = node.items[i]?.key;
        if (i < 0 || !isScalar(key)) break;
        path.push(String(key.value));
        next = node.items[i].value;
      } else if (isSeq(node)) {
        const i = lastIndexAround(node.items, offset, (item) => [(item as Node | null)?.range]);
        if (i < 0) break;
        path.push(i);
        next = node.items[i];
      } else break;
      node = this.resolve(next);
    }
    return path;
  }

  private resolve(node: unknown): Node | undefined {
    if (isAlias(node)) return node.resolve(this.doc) as Node | undefined;
    return (node as Node | null | undefined) ?? undefined;
  }
}

type Range = Node['range'];

/** The last item spanning the offset: the end of one item touches the start of the next. */
function lastIndexAround<T>(items: T[], offset: number, ranges: (item: T) => (Range | null | undefined)[]): number {
  for (let i = items.length - 1; i >= 0; i--) {
    const found = ranges(items[i]).filter((r): r is NonNullable<Range> => r != null);
    if (found.length && found[0][0] <= offset && offset <= found[found.length - 1][2]) return i;
  }
  return -1;
}

function lastPair<P extends { key: unknown }>(items: P[], key: string): P | undefined {
  for (let i = items.length - 1; i >= 0; i--) {
    const k = items[i].key;
    if (isScalar(k) && String(k.value) === key) return items[i];
  }
  return undefined;
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
