/** Outbox errors carry a code the caller can switch on, and the SQLite error as cause. */

export type OutboxErrorCode =
  /** `openReadOnly` found no database in the directory. */
  | 'OUTBOX_NOT_FOUND'
  /** The database could not be opened or created even after moving a bad file aside. */
  | 'OUTBOX_OPEN_FAILED'
  /** SQLite reported corruption while running; the next writable open checks and replaces the file. */
  | 'OUTBOX_CORRUPT'
  /** The database file was deleted while running (its directory removed); reopening recreates it. */
  | 'OUTBOX_DELETED'
  /** A sample handed to `append` cannot be stored (a caller bug, never a storage problem). */
  | 'OUTBOX_BAD_SAMPLE'
  /** The outbox was used after `close()`. */
  | 'OUTBOX_CLOSED';

export class OutboxError extends Error {
  constructor(
    readonly code: OutboxErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'OutboxError';
  }
}

/** The SQLite extended result code of an error, or '' when it is not a SQLite error. */
export function sqliteCode(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('SQLITE_') ? code : '';
}

export function isCorruption(err: unknown): boolean {
  const code = sqliteCode(err);
  return code.startsWith('SQLITE_CORRUPT') || code === 'SQLITE_NOTADB';
}

/** Errors that mean "the medium refuses writes right now" and may heal by themselves (space freed, remount). */
export function isStorageFailure(err: unknown): boolean {
  const code = sqliteCode(err);
  return (
    code === 'SQLITE_FULL' ||
    code.startsWith('SQLITE_IOERR') ||
    code.startsWith('SQLITE_READONLY') ||
    code.startsWith('SQLITE_CANTOPEN')
  );
}
