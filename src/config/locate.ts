/**
 * Where a configuration problem is: key paths and offsets of the parsed YAML document turned into 1-based line
 * and column. Every lookup is bounded by the path's length (a mapping's keys are indexed once), so placing
 * tens of thousands of errors stays linear instead of scanning a mapping per error.
 */
import { isAlias, isMap, isScalar, isSeq, type Document, type LineCounter, type Node, type Pair } from 'yaml';
import type { IssuePath } from './issues.js';

export interface ConfigIssue {
  file: string;
  /** 1-based position of the offending node, or of the enclosing mapping when a key is missing. */
  line: number;
  col: number;
  /** Like `devices[0].points[2].address`; `(root)` for the file as a whole. */
  path: string;
  message: string;
}

/** A message quoting the file (a YAML error, a value) could otherwise make one issue a megabyte long. */
const MAX_MESSAGE_CHARS = 300;
/** A longer path is shown by its first and last segments: enough to find the place, short enough to read. */
const PATH_HEAD = 6;
const PATH_TAIL = 2;

export function formatIssue(issue: ConfigIssue): string {
  return `${issue.file}:${issue.line}:${issue.col} ${issue.path}: ${issue.message}`;
}

export function formatPath(path: readonly PropertyKey[]): string {
  if (path.length > PATH_HEAD + PATH_TAIL + 1) {
    const tail = formatSegments(path.slice(-PATH_TAIL), true);
    return `${formatSegments(path.slice(0, PATH_HEAD), false)}...${tail.startsWith('.') ? tail.slice(1) : tail}`;
  }
  return formatSegments(path, false) || '(root)';
}

function formatSegments(path: readonly PropertyKey[], continued: boolean): string {
  let out = '';
  for (const segment of path) {
    const key = String(segment);
    if (typeof segment === 'number') out += `[${segment}]`;
    // A key that is not a plain word (a typo with a space, a quoted key) stays readable on one line.
    else if (key.length > 40 || !/^[\w-]+$/.test(key)) out += `[${JSON.stringify(key.length > 40 ? `${key.slice(0, 37)}...` : key)}]`;
    else out += out || continued ? `.${key}` : key;
  }
  return out;
}

/** Maps key paths and offsets in the parsed document to 1-based line and column. */
export class Locator {
  /** Each mapping's keys, indexed on first use: the last of duplicate keys wins, as it does in the values. */
  private readonly keyIndex = new WeakMap<object, Map<string, Pair>>();

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
    let text = message.replace(/\r?\n/g, '\\n');
    if (text.length > MAX_MESSAGE_CHARS) text = `${text.slice(0, MAX_MESSAGE_CHARS - 3)}...`;
    return { file: this.file, line, col, path: formatPath(path), message: text };
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
        const pair = this.pairOf(node, String(segment));
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

  private pairOf(map: { items: Pair[] }, key: string): Pair | undefined {
    let index = this.keyIndex.get(map);
    if (!index) {
      index = new Map();
      for (const pair of map.items) if (isScalar(pair.key)) index.set(String(pair.key.value), pair);
      this.keyIndex.set(map, index);
    }
    return index.get(key);
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
