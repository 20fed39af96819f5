/**
 * On-disk layout, version 1. One sample row is (seq, ts, sid, meta, num, rid, txt):
 * - seq: rowid, so reads and deletes by seq range walk the table b-tree directly (no secondary index at all);
 * - ts: ms as INTEGER (6 bytes for current dates);
 * - sid: series id, a (device, point) pair from the `series` dictionary (1-2 bytes);
 * - meta: kind | quality << 3 | flags << 5 packed in one integer; a good number without flags is 1, which
 *   SQLite stores in the record header alone (0 bytes of body);
 * - num REAL: numbers (REAL affinity stores integral values as small integers on disk), NULL otherwise;
 * - rid: reason id from the `reason` dictionary, NULL when no reason; txt: string values only.
 * Typically ~30 bytes a sample including the b-tree cell overhead.
 * Seqs come from counters.next_seq, shared by samples and events, so a seq is never reused even when the
 * newest rows are deleted. Dictionary ids use AUTOINCREMENT so a pruned id is never reused either: a reader
 * process caching id -> name can never map an id to the wrong name.
 */
import { randomBytes } from 'node:crypto';
import type Database from 'better-sqlite3';
import { STATE_DDL } from './state.js';

/** 'FGOB': marks the file as a fieldgate outbox, so a foreign SQLite file is never taken for one. */
export const APPLICATION_ID = 0x46474f42;
export const SCHEMA_VERSION = 1;

const DDL = `
CREATE TABLE meta (key TEXT PRIMARY KEY, value) WITHOUT ROWID; -- no type: no affinity, a hex epoch of digits stays text
CREATE TABLE counters (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  next_seq INTEGER NOT NULL,
  samples INTEGER NOT NULL,
  events INTEGER NOT NULL,
  dropped_max_bytes INTEGER NOT NULL,
  dropped_max_age INTEGER NOT NULL,
  dropped_memory INTEGER NOT NULL
);
CREATE TABLE series (id INTEGER PRIMARY KEY AUTOINCREMENT, device TEXT NOT NULL, point TEXT NOT NULL, UNIQUE (device, point));
CREATE TABLE reason (id INTEGER PRIMARY KEY AUTOINCREMENT, text TEXT NOT NULL UNIQUE);
CREATE TABLE sample (seq INTEGER PRIMARY KEY, ts INTEGER NOT NULL, sid INTEGER NOT NULL, meta INTEGER NOT NULL, num REAL, rid INTEGER, txt TEXT);
CREATE TABLE event (seq INTEGER PRIMARY KEY, ts INTEGER NOT NULL, kind TEXT NOT NULL, payload TEXT NOT NULL);
CREATE TABLE dropped (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  reason TEXT NOT NULL,
  stream TEXT NOT NULL,
  from_seq INTEGER,
  to_seq INTEGER,
  before_seq INTEGER,
  count INTEGER NOT NULL,
  from_ts INTEGER NOT NULL,
  to_ts INTEGER NOT NULL,
  at INTEGER NOT NULL,
  reported INTEGER NOT NULL DEFAULT 0
);
INSERT INTO counters VALUES (1, 1, 0, 0, 0, 0, 0);
`;

/** Why an existing file cannot be used as this version's outbox. */
export class UnusableDatabase extends Error {
  constructor(
    readonly reason: 'notOutbox' | 'schemaNewer',
    message: string,
  ) {
    super(message);
  }
}

export interface Meta {
  epoch: string;
  createdAt: number;
}

/** Creates the schema in an empty database, or checks that an existing one is ours. Returns true if created. */
export function ensureSchema(db: Database.Database, now: number): boolean {
  const appId = db.pragma('application_id', { simple: true }) as number;
  const version = db.pragma('user_version', { simple: true }) as number;
  if (appId === 0 && version === 0) {
    const objects = db.prepare('SELECT count(*) FROM sqlite_schema').pluck().get() as number;
    if (objects > 0) throw new UnusableDatabase('notOutbox', 'file is a SQLite database but not an outbox');
    db.transaction(() => {
      db.exec(DDL);
      db.exec(STATE_DDL);
      const insert = db.prepare('INSERT INTO meta (key, value) VALUES (?, ?)');
      // 64 random bits: two databases ever created by the fleet will not share an epoch in practice.
      insert.run('epoch', randomBytes(8).toString('hex'));
      insert.run('created_at', now);
      db.pragma(`application_id = ${APPLICATION_ID}`);
      db.pragma(`user_version = ${SCHEMA_VERSION}`);
    })();
    return true;
  }
  if (appId !== APPLICATION_ID) throw new UnusableDatabase('notOutbox', `application_id is ${appId}, not an outbox`);
  if (version > SCHEMA_VERSION) {
    throw new UnusableDatabase('schemaNewer', `schema version ${version} is newer than this build's ${SCHEMA_VERSION}`);
  }
  // Additive, so the version stays 1: an older build opens the file and ignores the table.
  db.exec(STATE_DDL);
  return false;
}

export function readMeta(db: Database.Database): Meta {
  const rows = db.prepare('SELECT key, value FROM meta').all() as Array<{ key: string; value: unknown }>;
  const map = new Map(rows.map((r) => [r.key, r.value]));
  const epoch = map.get('epoch');
  const createdAt = map.get('created_at');
  if (typeof epoch !== 'string' || typeof createdAt !== 'number') {
    throw Object.assign(new Error('outbox meta table lacks epoch or created_at'), { code: 'SQLITE_CORRUPT' });
  }
  return { epoch, createdAt };
}

export interface Counters {
  next_seq: number;
  samples: number;
  events: number;
  dropped_max_bytes: number;
  dropped_max_age: number;
  dropped_memory: number;
}

export function readCounters(db: Database.Database): Counters {
  const row = db.prepare('SELECT * FROM counters WHERE id = 1').get() as Counters | undefined;
  if (!row) throw Object.assign(new Error('outbox counters row missing'), { code: 'SQLITE_CORRUPT' });
  return row;
}
