/**
 * A small key-value table for state that must agree with the events already queued, such as the active
 * alarms: an alarm's raise or clear event and its state row are written in the same commit transaction, so
 * after a crash either both are on disk or neither is. Updates wait in memory, latest value per key, and are
 * not subject to the event queue's bound: if a raise event is dropped from a full memory queue, the state
 * still says the alarm is active and the drop is announced as a dropped range.
 */
import type Database from 'better-sqlite3';

/** Created at every writable open: an outbox made before this table existed gains it, nothing else changes. */
export const STATE_DDL = 'CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID';

/** One state change queued with an event: `value: null` deletes the key. */
export interface StateEntry {
  key: string;
  value: string | null;
}

export class PendingState {
  private readonly changes = new Map<string, string | null>();

  get size(): number {
    return this.changes.size;
  }

  set(entry: StateEntry): void {
    if (typeof entry.key !== 'string' || entry.key.length === 0) throw new TypeError('state key must be a non-empty string');
    if (entry.value !== null && typeof entry.value !== 'string') throw new TypeError(`state value of ${entry.key} must be a string or null`);
    this.changes.set(entry.key, entry.value);
  }

  /** Runs inside the commit transaction. */
  write(w: StateWrites): void {
    for (const [key, value] of this.changes) {
      if (value === null) w.remove.run(key);
      else w.upsert.run(key, value);
    }
  }

  /** The transaction that wrote them committed. */
  committed(): void {
    this.changes.clear();
  }
}

export type StateWrites = ReturnType<typeof prepareState>;

export function prepareState(db: Database.Database) {
  return {
    upsert: db.prepare('INSERT INTO state (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value'),
    remove: db.prepare('DELETE FROM state WHERE key = ?'),
    // substr compares bytes of the prefix only: no LIKE escaping, and the table holds a handful of rows.
    byPrefix: db.prepare('SELECT key, value FROM state WHERE substr(key, 1, length(@prefix)) = @prefix ORDER BY key').raw(),
  };
}

/** Committed state rows whose key starts with `prefix`. */
export function readStateRows(w: StateWrites, prefix: string): Map<string, string> {
  const rows = w.byPrefix.all({ prefix }) as Array<[string, string]>;
  return new Map(rows);
}
