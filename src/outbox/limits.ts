/**
 * How `buffer.maxBytes` is shared between the outbox's files. The cap covers the whole data directory's share
 * of the outbox: the database, its WAL and the WAL index (-shm). The WAL is bounded by checkpointing early
 * (wal_autocheckpoint), by writing it in commits small enough to fit, and by truncating it when it grew past
 * its share anyway (a reader held a snapshot); the database gets the rest, as soft limit and hard page cap.
 */
import { statSync } from 'node:fs';
import type Database from 'better-sqlite3';
import { sqliteCode } from './errors.js';
import type { Retention } from './retention.js';

const KIB = 1024;
/** The smallest cap that leaves room for the schema, the dictionaries, a bounded WAL and some samples. */
export const MIN_MAX_BYTES = 256 * KIB;
/** The WAL index: 32 KiB for up to about 4,000 WAL frames, which the WAL share never reaches. */
const SHM_BYTES = 32 * KIB;
/** The WAL's share: an eighth of the cap, at least 64 KiB, at most 8 MiB (about SQLite's default checkpoint). */
const WAL_MIN = 64 * KIB;
const WAL_MAX = 8 * KIB * KIB;
/** WAL bytes a stored sample costs in one commit, with margin (a row is about 30 bytes, a frame has a header). */
const WAL_BYTES_PER_ROW = 48;
const UNCAPPED_PAGES = 2 ** 31 - 2;

export interface Budget {
  /** Soft limit and hard page cap of the database file. */
  dbBytes: number;
  /** What the WAL may reach before it is truncated. */
  walBytes: number;
  /** Rows per insert transaction, so one commit's frames fit in half the WAL's share. */
  rowsPerCommit: number;
}

export function budgetFor(maxBytes: number, pageSize: number, maxRowsPerCommit: number): Budget {
  const walBytes = Math.min(WAL_MAX, Math.max(WAL_MIN, Math.floor(maxBytes / 8)));
  const dbBytes = Math.max(maxBytes - walBytes - SHM_BYTES, 8 * pageSize);
  // Half the WAL for one commit's new pages, less the few pages every commit rewrites (counters, b-tree spine).
  const rows = Math.floor((walBytes / 2 - 6 * (pageSize + 24)) / WAL_BYTES_PER_ROW);
  return { dbBytes, walBytes, rowsPerCommit: Math.max(100, Math.min(maxRowsPerCommit, rows)) };
}

/** Thrown to roll back the probe transaction once its inserts went through; carries the size they needed. */
export class ProbeDone {
  constructor(readonly pages: number) {}
}

export class Limits {
  readonly budget: Budget;
  private readonly walPath: string;

  constructor(
    private readonly db: Database.Database,
    dbPath: string,
    maxBytes: number,
    private readonly pageSize: number,
    maxRowsPerCommit: number,
  ) {
    this.budget = budgetFor(maxBytes, pageSize, maxRowsPerCommit);
    this.walPath = `${dbPath}-wal`;
    // Checkpoint at half the WAL's share; a reset WAL is cut back to the share instead of keeping its high mark.
    db.pragma(`wal_autocheckpoint = ${Math.max(2, Math.floor(this.budget.walBytes / 2 / (pageSize + 24)))}`);
    db.pragma(`journal_size_limit = ${this.budget.walBytes}`);
  }

  /** At open: apply a lowered maxBytes (drop, hand pages back) and set the hard page cap. */
  fit(retention: Retention): void {
    retention.makeRoom(0);
    const capPages = Math.floor(this.budget.dbBytes / this.pageSize);
    const pages = this.db.pragma('page_count', { simple: true }) as number;
    if (pages > capPages) this.db.pragma(`incremental_vacuum(${pages - capPages})`);
    // Hard backstop under the soft limit: SQLite refuses to grow the file past this (it cannot go below the
    // current size; the soft limit then brings usage down).
    this.db.pragma(`max_page_count = ${capPages}`);
    this.boundWal();
  }

  /** After a commit: a WAL past its share (a checkpoint was held off) is checkpointed and truncated now. */
  boundWal(): void {
    const size = statSync(this.walPath, { throwIfNoEntry: false })?.size ?? 0;
    if (size > this.budget.walBytes) this.db.pragma('wal_checkpoint(TRUNCATE)');
  }

  /**
   * SQLITE_FULL means either a full filesystem or our own max_page_count. Dropping data is the cure only for
   * the second, so prove it: replay the same inserts without the cap in a transaction that is always rolled
   * back (`probe` throws ProbeDone), and see whether they needed more pages than the cap allows. (Success
   * alone proves nothing: on a full disk a retry may fit where the first try did not.) Rare: the soft limit
   * normally acts first.
   */
  atPageCap(err: unknown, probe: () => void): boolean {
    if (sqliteCode(err) !== 'SQLITE_FULL') return false;
    const cap = this.db.pragma('max_page_count', { simple: true }) as number;
    this.db.pragma(`max_page_count = ${UNCAPPED_PAGES}`);
    try {
      probe();
    } catch (done) {
      return done instanceof ProbeDone && done.pages > cap;
    } finally {
      this.db.pragma(`max_page_count = ${cap}`);
    }
    return false;
  }
}
