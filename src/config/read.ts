/**
 * Reads a configuration file's text with bounds: only a regular file, at most MAX_CONFIG_BYTES, and only
 * UTF-8. A pipe, /dev/zero or a 50 MB file would otherwise hold the daemon (and a SIGHUP reload) for
 * seconds to minutes and gigabytes, and a Latin-1 or UTF-16 file would be read as replacement characters.
 */
import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from 'node:fs';
import { UserError } from '../errors.js';

/**
 * Far above a real site (1,000 points written as usual take 113 KiB), far below what hurts a gateway run
 * under MemoryMax=256M. The YAML token bound (parse-yaml.ts) is the tighter one for dense text; this one
 * bounds long values.
 */
export const MAX_CONFIG_BYTES = 1024 * 1024;

/** The file's text, without a UTF-8 byte-order mark; throws a UserError (exit 2) naming the problem. */
export function readConfigText(file: string): string {
  return decodeConfigText(readBounded(file), file);
}

function readBounded(file: string): Buffer {
  let fd: number;
  try {
    // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer before fstat can refuse it.
    fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    throw new UserError(`cannot read ${file}: ${openFailure(err as NodeJS.ErrnoException)}`, 2);
  }
  try {
    const stats = fstatSync(fd);
    if (!stats.isFile()) throw new UserError(`cannot read ${file}: ${notRegular(stats)}`, 2);
    if (stats.size > MAX_CONFIG_BYTES) throw tooLarge(file, stats.size);
    // The file may grow between fstat and read (being written): the read is bounded too.
    const chunks: Buffer[] = [];
    const chunk = Buffer.allocUnsafe(64 * 1024);
    let total = 0;
    for (;;) {
      const n = readSync(fd, chunk, 0, chunk.length, null);
      if (n === 0) break;
      total += n;
      if (total > MAX_CONFIG_BYTES) throw tooLarge(file);
      chunks.push(Buffer.from(chunk.subarray(0, n)));
    }
    return Buffer.concat(chunks, total);
  } catch (err) {
    if (err instanceof UserError) throw err;
    throw new UserError(`cannot read ${file}: ${openFailure(err as NodeJS.ErrnoException)}`, 2);
  } finally {
    closeSync(fd);
  }
}

/** `size` undefined: the file grew past the cap while being read. */
function tooLarge(file: string, size?: number): UserError {
  const mib = (n: number) => `${Number((n / 1024 / 1024).toFixed(1))} MiB`;
  const what = size === undefined ? 'it grew past the limit while being read' : `it is ${mib(size)}`;
  return new UserError(`cannot read ${file}: ${what}; a configuration file may be at most ${mib(MAX_CONFIG_BYTES)}`, 2);
}

function notRegular(stats: Stats): string {
  if (stats.isDirectory()) return 'it is a directory, not a file';
  if (stats.isFIFO()) return 'it is a pipe (FIFO), not a regular file; write the configuration to a file';
  if (stats.isCharacterDevice() || stats.isBlockDevice()) return 'it is a device, not a regular file';
  if (stats.isSocket()) return 'it is a socket, not a regular file';
  return 'it is not a regular file';
}

function openFailure(err: NodeJS.ErrnoException): string {
  switch (err.code) {
    case 'ENOENT':
      return 'no such file';
    case 'ENOTDIR':
      return 'a part of the path is not a directory';
    case 'EISDIR':
      return 'it is a directory, not a file';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'ENXIO':
      return 'it is a socket or a device with nothing behind it, not a regular file';
    case 'ELOOP':
      return 'too many symbolic links';
    default:
      return err.message;
  }
}

/** UTF-8 only: a UTF-8 byte-order mark is dropped; UTF-16/32 and invalid bytes are refused with their place. */
export function decodeConfigText(bytes: Uint8Array, file: string): string {
  const wide = wideEncoding(bytes);
  if (wide) throw new UserError(`${file}: ${wide} encoded; save the file as UTF-8`, 2);
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    const at = firstInvalidUtf8(bytes);
    const { line, col } = placeOfByte(bytes, at);
    const hex = bytes[at].toString(16).toUpperCase().padStart(2, '0');
    throw new UserError(`${file}:${line}:${col}: not valid UTF-8 (byte 0x${hex}); save the file as UTF-8`, 2);
  }
}

/** UTF-16 or UTF-32 by its byte-order mark, or by NUL bytes among the first characters (no YAML has them). */
function wideEncoding(b: Uint8Array): string | undefined {
  if ((b[0] === 0 && b[1] === 0 && b[2] === 0xfe && b[3] === 0xff) || (b[0] === 0xff && b[1] === 0xfe && b[2] === 0 && b[3] === 0)) return 'UTF-32';
  if ((b[0] === 0xfe && b[1] === 0xff) || (b[0] === 0xff && b[1] === 0xfe)) return 'UTF-16';
  if (b.length >= 4 && ((b[1] === 0 && b[2] === 0 && b[3] === 0) || (b[0] === 0 && b[1] === 0 && b[2] === 0))) return 'UTF-32';
  if (b.length >= 2 && (b[0] === 0 || b[1] === 0)) return 'UTF-16';
  return undefined;
}

/** Offset of the first byte that starts no valid UTF-8 sequence (the lead byte of a broken one). */
export function firstInvalidUtf8(b: Uint8Array): number {
  let i = 0;
  while (i < b.length) {
    const c = b[i];
    if (c < 0x80) {
      i++;
      continue;
    }
    // Lead byte: how many continuation bytes follow, and the allowed range of the first (no overlongs or surrogates).
    let n: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) n = 1;
    else if (c >= 0xe0 && c <= 0xef) {
      n = 2;
      if (c === 0xe0) lo = 0xa0;
      if (c === 0xed) hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      n = 3;
      if (c === 0xf0) lo = 0x90;
      if (c === 0xf4) hi = 0x8f;
    } else return i;
    for (let k = 1; k <= n; k++) {
      const d = b[i + k];
      if (d === undefined || d < (k === 1 ? lo : 0x80) || d > (k === 1 ? hi : 0xbf)) return i;
    }
    i += n + 1;
  }
  return b.length;
}

/** 1-based line and column (in characters, as the YAML positions count them) of a byte offset. */
function placeOfByte(b: Uint8Array, offset: number): { line: number; col: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset; i++) {
    if (b[i] === 0x0a) {
      line++;
      lineStart = i + 1;
    }
  }
  // Everything before the first bad byte is valid UTF-8; a BOM is not a character the editor shows.
  const before = new TextDecoder('utf-8').decode(b.subarray(lineStart, offset));
  return { line, col: before.length + 1 };
}
