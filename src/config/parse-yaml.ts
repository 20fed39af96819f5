/**
 * YAML parsing with bounds on nesting and on size in tokens. The parser slows down with depth (a million `[`
 * in 2 MB took 18 s) and its composer overflows the call stack at a few hundred levels, which surfaced as
 * "Maximum call stack size exceeded" with a path of kilobytes; no configuration nests deeper than about 8
 * levels. Its memory follows the number of tokens, 200-350 bytes each: a 1 MiB flow list `[1,1,...]` took
 * 4.6 s and 540 MB, past the service's MemoryMax. 1,000 points in the usual block style are 50,000 tokens.
 */
import { Composer, isAlias, isMap, isPair, isSeq, Lexer, Parser, YAMLParseError, type Document, type LineCounter, type Node, type ParsedNode } from 'yaml';
import type { IssuePath } from './issues.js';

export const MAX_DEPTH = 32;
/**
 * The parser's stack holds the document and each open collection, plus a few tokens being built; stopping
 * well past MAX_DEPTH keeps the refusal certain, and the exact count is taken on the composed document.
 */
const MAX_PARSER_STACK = 2 * MAX_DEPTH + 8;

/** Keys, values, indentation and punctuation, each one token. */
export const MAX_YAML_TOKENS = 300_000;

/** Where parsing was refused, and why. */
export interface Refusal {
  offset: number;
  message: string;
  /** Known when the document was composed; else the caller derives it from the offset. */
  path?: IssuePath;
}

const tooDeep = `nested too deeply (more than ${MAX_DEPTH} levels)`;

/** Like yaml's parseDocument, but parsing stops where the nesting goes far past MAX_DEPTH or the tokens run out. */
export function parseBounded(text: string, lineCounter: LineCounter): { doc: Document.Parsed<ParsedNode>; refusal?: Refusal } {
  const parser = new Parser(lineCounter.addNewLine);
  lineCounter.addNewLine(0);
  let refusal: Refusal | undefined;
  // A generator, as parseDocument streams them: the composer takes each token as the parser completes it.
  function* tokens() {
    let count = 0;
    for (const lexeme of new Lexer().lex(text)) {
      yield* parser.next(lexeme);
      if (parser.stack.length > MAX_PARSER_STACK) {
        refusal = { offset: parser.offset, message: tooDeep };
        break;
      }
      if (++count > MAX_YAML_TOKENS) {
        const message = `too large: more than ${MAX_YAML_TOKENS.toLocaleString('en-US')} YAML tokens (keys, values, indentation and punctuation); 1,000 points written as usual take about 50,000`;
        refusal = { offset: parser.offset, message };
        break;
      }
    }
    yield* parser.end();
  }
  let doc: Document.Parsed<ParsedNode> | undefined;
  // As parseDocument does: the first document, and an error at the start of a second one.
  for (const next of new Composer({ uniqueKeys: false }).compose(tokens(), true, text.length)) {
    if (!doc) doc = next;
    else {
      doc.errors.push(new YAMLParseError([next.range[0], next.range[1]], 'MULTIPLE_DOCS', 'Source contains multiple documents'));
      break;
    }
  }
  // compose(..., forceDoc = true) yields a document even for empty text.
  if (refusal) return { doc: doc!, refusal };
  const deep = deeperThan(doc!, MAX_DEPTH);
  return { doc: doc!, refusal: deep && { ...deep, message: tooDeep } };
}

/** The first collection nested more than `limit` deep (the top mapping is level 1), found without recursion. */
export function deeperThan(doc: Document, limit: number): { offset: number; path: IssuePath } | undefined {
  type Entry = { node: unknown; depth: number; parent?: Entry; segment?: string | number };
  const stack: Entry[] = [{ node: doc.contents, depth: 0 }];
  while (stack.length) {
    const entry = stack.pop()!;
    const { node } = entry;
    if (!isMap(node) && !isSeq(node)) continue;
    const depth = entry.depth + 1;
    if (depth > limit) return { offset: (node as Node).range?.[0] ?? 0, path: pathOf(entry) };
    node.items.forEach((item, i) => {
      if (isPair(item)) {
        const key = item.key as { value?: unknown } | null;
        stack.push({ node: item.value, depth, parent: entry, segment: String(key?.value ?? '') });
        // A mapping used as a key counts too: it nests like any other value.
        if (!isAlias(item.key)) stack.push({ node: item.key, depth, parent: entry, segment: '(key)' });
      } else stack.push({ node: item, depth, parent: entry, segment: i });
    });
  }
  return undefined;

  function pathOf(entry: Entry): IssuePath {
    const path: IssuePath = [];
    for (let e: Entry | undefined = entry; e?.segment !== undefined; e = e.parent) path.push(e.segment);
    return path.reverse();
  }
}
