/**
 * Everything that only reads: shared by the daemon's writable outbox and by a read-only view the CLI opens
 * while the daemon runs (WAL readers never block the writer). Reads walk the seq (rowid) b-tree by range
 * with statements prepared once and raw rows, so draining is bound by SQLite, not by object churn.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type Database from 'better-sqlite3';
import { decodeFlags, decodeQuality, decodeValue } from './codec.js';
import { Dictionaries } from './dictionary.js';
import { OutboxError, isCorruption } from './errors.js';
import { NEEDS_CHECK_FILE } from './open.js';
import { readCounters, readMeta, type Meta } from './schema.js';
import { decodeEvent } from '../events.js';
import type { DropReason, DroppedRange, OutboxStats, SeriesEntry, StoredEvent, StoredSample } from './types.js';

/** Larger than any seq: seqs are assigned one by one and stay far below 2^53. */
const NO_UPPER = Number.MAX_SAFE_INTEGER;
const EXPORT_PAGE = 1000;

/** `key` = meta + sid x 2^31 and `v` = num or txt: fewer columns per row is what makes better-sqlite3 rows cheap. */
type SampleRow = [seq: number, ts: number, key: number, rid: number | null, v: number | string | null];
const SID_UNIT = 2 ** 31;
type EventRow = [seq: number, ts: number, kind: string, payload: string];
type DroppedRow = [number, string, string, number | null, number | null, number | null, number, number, number, number, number];

export class OutboxReader {
  protected readonly meta: Meta;
  protected readonly dict: Dictionaries;
  protected readonly pageSize: number;
  private readonly q: ReturnType<typeof prepareReads>;

  constructor(
    protected readonly db: Database.Database,
    protected readonly dir: string,
    writable: boolean,
  ) {
    this.meta = readMeta(db);
    this.dict = new Dictionaries(db, writable);
    this.pageSize = db.pragma('page_size', { simple: true }) as number;
    this.q = prepareReads(db);
  }

  get epoch(): string {
    return this.meta.epoch;
  }

  /** Samples with afterSeq < seq < beforeSeq, ascending, at most `limit`. */
  read(afterSeq: number, limit: number, beforeSeq: number = NO_UPPER): StoredSample[] {
    const rows = this.guard(() => this.q.samples.all(afterSeq, beforeSeq, limit) as SampleRow[]);
    const out: StoredSample[] = new Array(rows.length);
    const { device, point, reason } = this.dict;
    for (let i = 0; i < rows.length; i++) {
      const [seq, ts, key, rid, v] = rows[i];
      const meta = key % SID_UNIT;
      const sid = (key - meta) / SID_UNIT;
      if (device[sid] === undefined || (rid !== null && reason[rid] === undefined)) this.dict.ensure(sid, rid);
      const s: StoredSample = {
        device: device[sid],
        point: point[sid],
        ts,
        value: decodeValue(meta, v),
        quality: decodeQuality(meta),
        seq,
        flags: decodeFlags(meta),
        series: sid,
      };
      if (rid !== null) s.reason = reason[rid];
      out[i] = s;
    }
    return out;
  }

  /** Events with afterSeq < seq < beforeSeq, ascending. The uplink sends these before any sample. */
  readEvents(afterSeq: number, limit: number, beforeSeq: number = NO_UPPER): StoredEvent[] {
    const rows = this.guard(() => this.q.events.all(afterSeq, beforeSeq, limit) as EventRow[]);
    return rows.map(([seq, ts, kind, payload]) => ({ seq, ts, event: decodeEvent(kind, payload) }));
  }

  /** The series dictionary (device/point pairs by index), including pairs created by another process. */
  series(): SeriesEntry[] {
    this.guard(() => this.dict.reload());
    const { device, point } = this.dict;
    const out: SeriesEntry[] = [];
    device.forEach((d, id) => out.push({ id, device: d, point: point[id] }));
    return out;
  }

  /** Lowest stored seq over samples and events, null when empty. */
  minSeq(): number | null {
    const [s, e] = this.guard(() => this.q.minSeq.get() as [number | null, number | null]);
    return s === null ? e : e === null ? s : Math.min(s, e);
  }

  /** Highest stored seq over samples and events, null when empty. */
  maxSeq(): number | null {
    const [s, e] = this.guard(() => this.q.maxSeq.get() as [number | null, number | null]);
    return s === null ? e : e === null ? s : Math.max(s, e);
  }

  /** Samples with from <= seq <= to, paged so neither memory nor a read snapshot is held for the whole run. */
  *export(range: { from?: number; to?: number } = {}): Iterable<StoredSample> {
    let after = (range.from ?? 1) - 1;
    const before = range.to === undefined ? NO_UPPER : range.to + 1;
    for (;;) {
      const page = this.read(after, EXPORT_PAGE, before);
      yield* page;
      if (page.length < EXPORT_PAGE) return;
      after = page[page.length - 1].seq;
    }
  }

  /** Dropped runs with id > sinceId; without sinceId, the ones not yet marked reported. Ascending by id. */
  droppedRanges(sinceId?: number): DroppedRange[] {
    const rows = this.guard(
      () => (sinceId === undefined ? this.q.droppedUnreported.all() : this.q.droppedSince.all(sinceId)) as DroppedRow[],
    );
    return rows.map(([id, reason, stream, fromSeq, toSeq, beforeSeq, count, fromTs, toTs, at, reported]) => ({
      id,
      reason: reason as DropReason,
      stream: stream as 'sample' | 'event',
      fromSeq,
      toSeq,
      beforeSeq,
      count,
      fromTs,
      toTs,
      at,
      reported: reported === 1,
    }));
  }

  /** Used bytes: pages holding data. Free pages are reused before the file grows, so this is what counts. */
  usedBytes(): number {
    return this.guard(() => ((this.q.pageCount.get() as number) - (this.q.freelist.get() as number)) * this.pageSize);
  }

  stats(): OutboxStats {
    return this.guard(() => {
      const c = readCounters(this.db);
      return {
        epoch: this.meta.epoch,
        createdAt: this.meta.createdAt,
        mode: 'reader',
        state: 'ok',
        samples: c.samples,
        events: c.events,
        bytes: this.usedBytes(),
        maxBytes: null,
        oldestTs: (this.q.oldestTs.get() as number | undefined) ?? null,
        newestTs: (this.q.newestTs.get() as number | undefined) ?? null,
        minSeq: this.minSeq(),
        maxSeq: this.maxSeq(),
        lastSeq: c.next_seq - 1,
        dropped: { maxBytes: c.dropped_max_bytes, maxAge: c.dropped_max_age, memoryQueueFull: c.dropped_memory },
        pending: 0,
      };
    });
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  /**
   * Corruption found while running: leave a marker so the next writable open runs a full check and replaces
   * the file, and throw a coded error the caller can act on (exit and let the service manager restart).
   */
  protected guard<T>(fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      if (!this.db.open) throw new OutboxError('OUTBOX_CLOSED', 'outbox is closed', { cause: err });
      if (!isCorruption(err)) throw err;
      this.markNeedsCheck(err);
      throw new OutboxError('OUTBOX_CORRUPT', `outbox database is corrupt: ${(err as Error).message}`, { cause: err });
    }
  }

  protected markNeedsCheck(err: unknown): void {
    try {
      writeFileSync(join(this.dir, NEEDS_CHECK_FILE), `${new Date().toISOString()} ${(err as Error).message}\n`);
    } catch {
      // Read-only medium: the caller still gets the error.
    }
  }
}

function prepareReads(db: Database.Database) {
  const dropped = 'SELECT id, reason, stream, from_seq, to_seq, before_seq, count, from_ts, to_ts, at, reported FROM dropped';
  return {
    // Series ids stay far below 2^22 (one per device/point pair ever seen), so the packed key is exact.
    samples: db
      .prepare('SELECT seq, ts, meta + sid * 2147483648, rid, ifnull(num, txt) FROM sample WHERE seq > ? AND seq < ? ORDER BY seq LIMIT ?')
      .raw(),
    events: db.prepare('SELECT seq, ts, kind, payload FROM event WHERE seq > ? AND seq < ? ORDER BY seq LIMIT ?').raw(),
    minSeq: db.prepare('SELECT (SELECT min(seq) FROM sample), (SELECT min(seq) FROM event)').raw(),
    maxSeq: db.prepare('SELECT (SELECT max(seq) FROM sample), (SELECT max(seq) FROM event)').raw(),
    oldestTs: db.prepare('SELECT ts FROM sample ORDER BY seq LIMIT 1').pluck(),
    newestTs: db.prepare('SELECT ts FROM sample ORDER BY seq DESC LIMIT 1').pluck(),
    droppedUnreported: db.prepare(`${dropped} WHERE reported = 0 ORDER BY id`).raw(),
    droppedSince: db.prepare(`${dropped} WHERE id > ? ORDER BY id`).raw(),
    pageCount: db.prepare('PRAGMA page_count').pluck(),
    freelist: db.prepare('PRAGMA freelist_count').pluck(),
  };
}
