/** The bounded line splitter: lines across chunks, over-long lines dropped and counted, memory held bounded. */
import fc from 'fast-check';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { BoundedLineParser, LineFramer, trimEol } from '../src/sources/line/framing.js';

function split(framer: LineFramer, chunks: (string | Buffer)[]): { lines: string[]; overlong: number } {
  const lines: string[] = [];
  let overlong = 0;
  for (const c of chunks) {
    framer.push(Buffer.isBuffer(c) ? c : Buffer.from(c, 'latin1'), { line: (l) => lines.push(l.toString('latin1')), overlong: () => overlong++ });
  }
  return { lines, overlong };
}

describe('LineFramer', () => {
  it('splits lines across chunks, with a delimiter split between chunks too', () => {
    const f = new LineFramer('\r\n', 64);
    expect(split(f, ['$GAS,1\r', '\n$GAS', ',2\r\n\r\nx'])).toEqual({ lines: ['$GAS,1', '$GAS,2', ''], overlong: 0 });
    expect(f.buffered).toBe(1);
    expect(f.reset()).toBe(true);
    expect(f.reset()).toBe(false);
    expect(f.lines).toBe(3);
  });

  it('takes a line of exactly maxLineBytes with its delimiter, and drops one byte more', () => {
    const f = new LineFramer('\r\n', 16);
    const fits = 'a'.repeat(14);
    const over = 'b'.repeat(15);
    expect(split(f, [`${fits}\r\n${over}\r\nnext\r\n`])).toEqual({ lines: [fits, 'next'], overlong: 1 });
    expect(f.overlong).toBe(1);
  });

  it('counts a long line once however many chunks it spans, and the next line comes through whole', () => {
    const f = new LineFramer('\n', 32);
    const chunks = Array.from({ length: 50 }, () => 'x'.repeat(7));
    expect(split(f, [...chunks, '\nafter\n'])).toEqual({ lines: ['after'], overlong: 1 });
  });

  it('holds at most maxLineBytes of a 10 MB line without a delimiter, and counts it', () => {
    const f = new LineFramer('\r\n', 512);
    const noise = Buffer.alloc(10 * 1024 * 1024, 0x41);
    let peak = 0;
    let overlong = 0;
    const lines: Buffer[] = [];
    for (let at = 0; at < noise.length; at += 65_536) {
      f.push(noise.subarray(at, at + 65_536), { line: (l) => lines.push(l), overlong: () => overlong++ });
      peak = Math.max(peak, f.buffered);
    }
    expect(peak).toBeLessThanOrEqual(512);
    expect(overlong).toBe(1);
    expect(lines).toEqual([]);
    // In one single chunk too.
    f.reset();
    f.push(noise, { line: (l) => lines.push(l), overlong: () => overlong++ });
    expect(f.buffered).toBeLessThanOrEqual(512);
    expect(overlong).toBe(2);
    f.push(Buffer.from('\r\nok\r\n'), { line: (l) => lines.push(l), overlong: () => overlong++ });
    expect(lines.map(String)).toEqual(['ok']);
  });

  it('finds a multi-byte delimiter fed one byte at a time', () => {
    const f = new LineFramer('<END>', 64);
    const text = 'one<END>two<EN<END>three<END>';
    expect(split(f, [...text])).toEqual({ lines: ['one', 'two<EN', 'three'], overlong: 0 });
  });

  it('refuses a bound that leaves no room for a line', () => {
    expect(() => new LineFramer('\r\n', 2)).toThrow(/no room/);
    expect(() => new LineFramer('', 20)).toThrow(/empty/);
  });

  it('splits like a plain split on any chunking, when lines fit (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.string({ unit: fc.constantFrom('a', 'b', '\r', '\n', 'x'), maxLength: 30 }), { maxLength: 20 }),
        fc.array(fc.integer({ min: 1, max: 17 }), { minLength: 1, maxLength: 10 }),
        (parts, cuts) => {
          const text = parts.join('');
          const expected = text.split('\r\n');
          expected.pop(); // the unfinished tail stays held
          const fits = expected.every((l) => l.length + 2 <= 40);
          fc.pre(fits);
          const chunks: string[] = [];
          let at = 0;
          for (let i = 0; at < text.length; i++) {
            const n = cuts[i % cuts.length]!;
            chunks.push(text.slice(at, at + n));
            at += n;
          }
          const f = new LineFramer('\r\n', 40);
          const got = split(f, chunks);
          expect(got.lines).toEqual(expected);
          expect(f.buffered).toBeLessThanOrEqual(40);
        },
      ),
      { numRuns: 1000 },
    );
  });
});

describe('trimEol', () => {
  it('drops CR and LF at either end only', () => {
    expect(String(trimEol(Buffer.from('\n$GAS,1\r')))).toBe('$GAS,1');
    expect(String(trimEol(Buffer.from('a\rb')))).toBe('a\rb');
    expect(trimEol(Buffer.from('\r\n')).length).toBe(0);
  });
});

describe('BoundedLineParser', () => {
  it('streams lines and reports over-long ones', async () => {
    const parser = new BoundedLineParser({ delimiter: '\n', maxLineBytes: 16 });
    let overlong = 0;
    parser.on('overlong', () => overlong++);
    Readable.from([Buffer.from('a\nbb\n'), Buffer.from(`${'z'.repeat(40)}\nc\n`)]).pipe(parser);
    const lines: string[] = [];
    for await (const l of parser) lines.push(String(l));
    expect(lines).toEqual(['a', 'bb', 'c']);
    expect(overlong).toBe(1);
  });
});
