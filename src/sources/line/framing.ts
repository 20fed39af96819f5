/**
 * A bounded line splitter. @serialport/parser-readline keeps everything up to the next delimiter, so a talker
 * that never sends one (binary noise, a wrong baud rate, a stuck device) grows memory without end; this one
 * holds at most `maxLineBytes` and drops, and counts, any line that does not fit.
 *
 * `maxLineBytes` bounds a line together with its delimiter: with the default 512 and "\r\n", lines of up to
 * 510 characters come through. A longer line is counted once when it overflows and skipped up to and
 * including its delimiter; the line after it comes through whole.
 */
import { Transform, type TransformCallback } from 'node:stream';

const CR = 0x0d;
const LF = 0x0a;

/** The line without CR and LF at either end: a device ending lines in "\r\n" on a bus set to "\n" still parses. */
export function trimEol(line: Buffer): Buffer {
  let start = 0;
  let end = line.length;
  while (start < end && (line[start] === CR || line[start] === LF)) start++;
  while (end > start && (line[end - 1] === CR || line[end - 1] === LF)) end--;
  return start === 0 && end === line.length ? line : line.subarray(start, end);
}

export interface FramerEvents {
  line(line: Buffer): void;
  /** A line grew past maxLineBytes and is being skipped. */
  overlong(): void;
}

export class LineFramer {
  private readonly delimiter: Buffer;
  private readonly buf: Buffer;
  private len = 0;
  /** Inside a line that overflowed: bytes are dropped up to its delimiter. */
  private skipping = false;
  lines = 0;
  overlong = 0;

  constructor(
    delimiter: string | Buffer,
    readonly maxLineBytes: number,
  ) {
    this.delimiter = Buffer.from(delimiter);
    if (this.delimiter.length === 0) throw new RangeError('the line delimiter is empty');
    if (maxLineBytes <= this.delimiter.length) throw new RangeError(`maxLineBytes ${maxLineBytes} leaves no room for a line`);
    this.buf = Buffer.alloc(maxLineBytes);
  }

  /** Bytes of an unfinished line held now (never more than maxLineBytes). */
  get buffered(): number {
    return this.len;
  }

  /** Whether an unfinished line (or an overflowing one) is in progress. */
  get midLine(): boolean {
    return this.len > 0 || this.skipping;
  }

  /** Forgets the unfinished line, e.g. when the port closes; returns whether there was one. */
  reset(): boolean {
    const had = this.midLine;
    this.len = 0;
    this.skipping = false;
    return had;
  }

  push(chunk: Buffer, on: FramerEvents): void {
    const d = this.delimiter;
    let at = 0;
    while (at < chunk.length) {
      const n = Math.min(this.buf.length - this.len, chunk.length - at);
      chunk.copy(this.buf, this.len, at, at + n);
      // A delimiter may straddle the previous chunk and this one.
      let searchFrom = Math.max(0, this.len - d.length + 1);
      this.len += n;
      at += n;
      let lineStart = 0;
      const held = this.buf.subarray(0, this.len);
      for (let i = held.indexOf(d, searchFrom); i >= 0; i = held.indexOf(d, searchFrom)) {
        if (this.skipping) {
          this.skipping = false;
        } else {
          this.lines++;
          on.line(Buffer.from(held.subarray(lineStart, i)));
        }
        lineStart = searchFrom = i + d.length;
      }
      if (lineStart > 0) {
        this.buf.copy(this.buf, 0, lineStart, this.len);
        this.len -= lineStart;
      }
      if (this.len === this.buf.length) {
        // Full without a delimiter: keep only what could be the start of one.
        const keep = d.length - 1;
        this.buf.copy(this.buf, 0, this.len - keep, this.len);
        this.len = keep;
        if (!this.skipping) {
          this.skipping = true;
          this.overlong++;
          on.overlong();
        }
      }
    }
  }
}

/**
 * The framer as a stream: bytes in, one Buffer per line out (object mode). Over-long lines are dropped and
 * reported as 'overlong' events.
 */
export class BoundedLineParser extends Transform {
  readonly framer: LineFramer;

  constructor(opts: { delimiter: string | Buffer; maxLineBytes: number }) {
    super({ readableObjectMode: true });
    this.framer = new LineFramer(opts.delimiter, opts.maxLineBytes);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.framer.push(chunk, { line: (l) => this.push(l), overlong: () => this.emit('overlong') });
    cb();
  }

  override _flush(cb: TransformCallback): void {
    this.framer.reset();
    cb();
  }
}
