/**
 * Opening the database file. A writable open never fails because of the file's content: a corrupt, foreign or
 * too-new file is moved aside (with its -wal and -shm) and a fresh database with a new epoch takes its place,
 * so a bad SD card sector cannot turn the gateway into a crash loop. The moved file is kept for a technician.
 */
import { accessSync, chmodSync, closeSync, constants, existsSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, renameSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { Logger } from '../log.js';
import { OutboxError, isCorruption } from './errors.js';
import { ensureSchema, readCounters, readMeta, UnusableDatabase, APPLICATION_ID } from './schema.js';
import type { RecreateReason, StartupReport } from './types.js';

export const DB_FILE = 'outbox.db';
/** Written when SQLite reports corruption at run time; the next writable open then runs a full quick_check. */
export const NEEDS_CHECK_FILE = 'outbox.db.needs-check';
/** Written when the outbox file was found deleted while running; the next open reports a recreation. */
export const DELETED_FILE = 'outbox.db.deleted';
/** Readings are the site's data: owner read-write, the service group read (the unit's UMask=0027 agrees). */
export const DATA_FILE_MODE = 0o640;
/** Moved-aside copies kept; older ones are deleted so repeated corruption cannot fill the card. */
const KEEP_ASIDE = 2;
const BUSY_TIMEOUT_MS = 5000;

export interface OpenedDb {
  db: Database.Database;
  created: boolean;
  recreated: StartupReport['recreated'];
}

export function openWritable(dir: string, now: number, log: Logger): OpenedDb {
  try {
    mkdirSync(dir, { recursive: true });
  } catch (err) {
    throw openFailed(dir, dir, err);
  }
  const path = join(dir, DB_FILE);
  const marker = join(dir, NEEDS_CHECK_FILE);
  const fullCheck = existsSync(marker);
  let recreated: StartupReport['recreated'] = deletedReport(dir);
  let opened: { db: Database.Database; created: boolean };
  try {
    opened = tryOpen(path, now, fullCheck);
  } catch (err) {
    const reason: RecreateReason | null = err instanceof UnusableDatabase ? err.reason : isCorruption(err) ? 'corrupt' : null;
    if (reason === null) throw openFailed(dir, path, err);
    const movedTo = moveAside(dir, reason, now);
    recreated = { reason, error: (err as Error).message, movedTo };
    log.error({ path, reason, error: recreated.error, movedTo }, 'outbox database unusable; moved aside, starting a new one');
    try {
      opened = tryOpen(path, now, false);
    } catch (again) {
      throw openFailed(dir, path, again);
    }
  }
  if (fullCheck) rmSync(marker, { force: true });
  rmSync(join(dir, DELETED_FILE), { force: true });
  return { ...opened, recreated };
}

/** The marker a running outbox leaves when its file was deleted under it: the new file's epoch is explained. */
function deletedReport(dir: string): StartupReport['recreated'] {
  const file = join(dir, DELETED_FILE);
  if (!existsSync(file)) return null;
  let error = 'the outbox file was deleted while the gateway ran';
  try {
    error = readFileSync(file, 'utf8').trim() || error;
  } catch {
    // Unreadable marker: the default text says enough.
  }
  return { reason: 'deleted', error, movedTo: null };
}

/** One line naming the path and the cause in plain words, e.g. `cannot open the outbox /x/outbox.db: permission denied`. */
export function openFailed(dir: string, path: string, err: unknown): OutboxError {
  return new OutboxError('OUTBOX_OPEN_FAILED', `cannot open the outbox ${path}: ${openCause(dir, path, err)}`, { cause: err });
}

const ERRNO_WORDS: Record<string, string> = {
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EROFS: 'read-only file system',
  ENOTDIR: 'a part of the path is a file, not a directory',
  EEXIST: 'it exists and is not a directory',
  ENOSPC: 'no space left on device',
  EDQUOT: 'disk quota exceeded',
  ENOENT: 'no such file or directory',
  EISDIR: 'it is a directory, not a file',
};

function openCause(dir: string, path: string, err: unknown): string {
  const code = (err as NodeJS.ErrnoException | null)?.code ?? '';
  if (ERRNO_WORDS[code]) return ERRNO_WORDS[code];
  // SQLite says only "unable to open database file" or "readonly database": ask the filesystem why.
  for (const [target, mode] of [
    [dir, constants.W_OK | constants.X_OK],
    [path, constants.R_OK | constants.W_OK],
  ] as const) {
    if (target === path && !existsSync(path)) continue;
    try {
      accessSync(target, mode);
    } catch (denied) {
      const word = ERRNO_WORDS[(denied as NodeJS.ErrnoException).code ?? ''];
      if (word) return target === dir && path !== dir ? `${word} (directory ${dir})` : word;
    }
  }
  if (existsSync(path) && !statSync(path).isFile()) return 'not a regular file';
  return (err as Error).message;
}

/** Creates the file 0640 before SQLite does (SQLite gives -wal and -shm the database's mode), tightens an older 0644 one. */
function restrictMode(path: string): void {
  if (!existsSync(path)) closeSync(openSync(path, 'a', DATA_FILE_MODE));
  for (const suffix of ['', '-wal', '-shm']) {
    const file = path + suffix;
    try {
      if (existsSync(file) && (statSync(file).mode & 0o777) !== DATA_FILE_MODE) chmodSync(file, DATA_FILE_MODE);
    } catch {
      // Owned by someone else: SQLite's open then says whether it can be used at all.
    }
  }
}

function tryOpen(path: string, now: number, fullCheck: boolean): { db: Database.Database; created: boolean } {
  checkHeader(path);
  restrictMode(path);
  const db = new Database(path, { timeout: BUSY_TIMEOUT_MS });
  try {
    // Only takes effect on an empty file: lets a lowered maxBytes hand pages back to the filesystem later.
    db.pragma('auto_vacuum = INCREMENTAL');
    const mode = db.pragma('journal_mode = WAL', { simple: true });
    if (mode !== 'wal') throw new Error(`journal_mode is ${String(mode)}, WAL needed`);
    // FULL: a commit returns only after the WAL is fsync'd, so a power cut loses at most the uncommitted window.
    db.pragma('synchronous = FULL');
    db.pragma('temp_store = MEMORY');
    // 2 MiB: writes append at the end of the table and the uplink reads and deletes at its start, so few pages are
    // hot; 8 MiB drained a 1M backlog no faster (557-595k against 568-646k samples/s) and filled up as RSS.
    db.pragma('cache_size = -2048');
    // After a checkpoint, shrink a WAL that grew past this (a long export held it open) instead of keeping it.
    db.pragma('journal_size_limit = 8388608');
    const created = ensureSchema(db, now);
    probe(db);
    if (fullCheck) {
      const result = db.pragma('quick_check(1)', { simple: true });
      if (result !== 'ok') throw Object.assign(new Error(`quick_check: ${String(result)}`), { code: 'SQLITE_CORRUPT' });
    }
    return { db, created };
  } catch (err) {
    db.close();
    throw err;
  }
}

export function openReader(dir: string): Database.Database {
  const path = join(dir, DB_FILE);
  if (!existsSync(path)) throw new OutboxError('OUTBOX_NOT_FOUND', `no outbox database at ${path}`);
  let db: Database.Database | undefined;
  try {
    checkHeader(path);
    db = new Database(path, { readonly: true, fileMustExist: true, timeout: BUSY_TIMEOUT_MS });
    const appId = db.pragma('application_id', { simple: true });
    if (appId !== APPLICATION_ID) throw new Error(`${path} is not an outbox database (application_id ${String(appId)})`);
    probe(db);
    return db;
  } catch (err) {
    db?.close();
    if (isCorruption(err)) throw new OutboxError('OUTBOX_CORRUPT', `${path} is corrupt: ${(err as Error).message}`, { cause: err });
    throw new OutboxError('OUTBOX_OPEN_FAILED', `cannot open ${path}: ${(err as Error).message}`, { cause: err });
  }
}

/** Touches meta, counters and both ends of every table: cheap (a few page reads) and catches truncation. */
function probe(db: Database.Database): void {
  readMeta(db);
  readCounters(db);
  // One aggregate per query: SQLite answers a lone min() or max() from the b-tree edge, both at once by a full scan.
  for (const [table, key] of [['sample', 'seq'], ['event', 'seq'], ['series', 'id'], ['reason', 'id'], ['dropped', 'id']]) {
    db.prepare(`SELECT min(${key}) FROM ${table}`).get();
    db.prepare(`SELECT max(${key}) FROM ${table}`).get();
  }
}

const corrupt = (message: string) => Object.assign(new Error(message), { code: 'SQLITE_CORRUPT' });

/**
 * SQLite reads pages lazily and may not notice a truncated file until a query reaches the missing pages; the
 * header says how long the file must be. Skipped when a WAL with frames exists: during a checkpoint the header
 * may legitimately run ahead of the file, and the WAL then still holds the pages.
 */
function checkHeader(path: string): void {
  if (!existsSync(path)) return;
  const size = statSync(path).size;
  if (size === 0) return;
  const header = Buffer.alloc(100);
  const fd = openSync(path, 'r');
  let n: number;
  try {
    n = readSync(fd, header, 0, 100, 0);
  } finally {
    closeSync(fd);
  }
  if (n < 100 || header.toString('latin1', 0, 16) !== 'SQLite format 3\0') {
    throw Object.assign(new Error('file is not a database (bad header)'), { code: 'SQLITE_NOTADB' });
  }
  const wal = `${path}-wal`;
  if (existsSync(wal) && statSync(wal).size > 32) return;
  const raw = header.readUInt16BE(16);
  const pageSize = raw === 1 ? 65536 : raw;
  const pages = header.readUInt32BE(28);
  const headerValid = header.readUInt32BE(24) === header.readUInt32BE(92);
  if (headerValid && pages > 0 && size < pages * pageSize) {
    throw corrupt(`file is ${size} bytes, its header says ${pages * pageSize} (truncated)`);
  }
}

/** Basic ISO 8601 (no colons: valid on every filesystem a technician may copy the file to). */
function isoStamp(now: number): string {
  return new Date(now).toISOString().replace(/[-:]/g, '');
}

function moveAside(dir: string, reason: RecreateReason, now: number): string {
  let at = now;
  // An injected clock may repeat a value; never overwrite an earlier copy.
  while (existsSync(join(dir, `${DB_FILE}.${reason}-${isoStamp(at)}`))) at += 1;
  const base = `${DB_FILE}.${reason}-${isoStamp(at)}`;
  for (const suffix of ['', '-wal', '-shm']) {
    const from = join(dir, DB_FILE + suffix);
    if (existsSync(from)) renameSync(from, join(dir, base + suffix));
  }
  pruneAside(dir);
  return join(dir, base);
}

function pruneAside(dir: string): void {
  const asides = readdirSync(dir)
    .filter((f) => /^outbox\.db\.[A-Za-z]+-\d{8}T\d{6}\.\d{3}Z$/.test(f))
    .sort();
  for (const old of asides.slice(0, Math.max(0, asides.length - KEEP_ASIDE))) {
    for (const suffix of ['', '-wal', '-shm']) rmSync(join(dir, old + suffix), { force: true });
  }
}
