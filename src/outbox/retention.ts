/**
 * Keeping the outbox bounded: by used bytes (checked before every commit, against the size the commit will
 * add) and by age (checked at most every few minutes). Always the oldest rows by seq go first, in chunks of
 * one transaction each so a big drop never stalls acquisition; every chunk is counted and recorded as a
 * seq range so the consumer can tell "dropped here" from "lost in transit".
 */
import type Database from 'better-sqlite3';
import type { Logger } from '../log.js';
import { META_TS_UNTRUSTED } from './codec.js';
import type { DropReason } from './types.js';

/** Rows per drop transaction: ~1.5 MB of pages, tens of ms on an SD card. */
const CHUNK = 50_000;
/** Start dropping above HIGH x maxBytes, stop below LOW x maxBytes: drops come in batches, not per commit. */
const HIGH = 0.95;
const LOW = 0.9;
/** Bookkeeping rows kept: reported ones only for context, unreported ones until the uplink reports them. */
const KEEP_REPORTED = 1000;
const KEEP_TOTAL = 10_000;
const REASON_PRUNE_ABOVE = 10_000;
const DAY_MS = 86_400_000;
/** Drops for maxBytes are logged at most this often, with the count since the last line. */
const DROP_LOG_EVERY_MS = 60_000;

type Stream = 'sample' | 'event';
type EdgeRow = [seq: number, ts: number];

export interface RetentionDeps {
  db: Database.Database;
  pageSize: number;
  /** The database's share of the cap (limits.ts). */
  maxBytes: number;
  /** buffer.maxBytes as configured, for the log. */
  capBytes?: number;
  maxAgeMs: number;
  log: Logger;
  clock: () => number;
  /** Called after unused reasons were deleted, so cached ids are dropped. */
  onReasonsPruned: () => void;
  /** Called when rows of a stream are deleted, inside the deleting transaction (which may yet roll back). */
  onDropped?: (stream: 'sample' | 'event') => void;
}

export class Retention {
  private readonly s;
  /**
   * Seq ranges published and not yet deleted (in flight, or PUBACKed and waiting for the grouped delete). The
   * size limit skips them: they may already have arrived, and a drop would report them lost.
   */
  inFlight: (() => ReadonlyArray<readonly [number, number]>) | undefined;
  private lastReasonPrune = -Infinity;
  private lastDropLog = -Infinity;
  private droppedUnlogged = 0;

  constructor(private readonly d: RetentionDeps) {
    const db = d.db;
    const per = (table: string) => ({
      window: db.prepare(`SELECT seq, ts, ${table === 'sample' ? 'meta' : '0'} FROM ${table} ORDER BY seq LIMIT ?`).raw(),
      nth: db.prepare(`SELECT seq, ts FROM ${table} ORDER BY seq LIMIT 1 OFFSET ?`).raw(),
      last: db.prepare(`SELECT seq, ts FROM ${table} ORDER BY seq DESC LIMIT 1`).raw(),
      deleteThrough: db.prepare(`DELETE FROM ${table} WHERE seq <= ?`),
      deleteBetween: db.prepare(`DELETE FROM ${table} WHERE seq >= ? AND seq <= ?`),
    });
    this.s = {
      sample: per('sample'),
      event: per('event'),
      counts: db.prepare('SELECT samples, events FROM counters WHERE id = 1').raw(),
      pageCount: db.prepare('PRAGMA page_count').pluck(),
      freelist: db.prepare('PRAGMA freelist_count').pluck(),
      insertDropped: db.prepare(
        'INSERT INTO dropped (reason, stream, from_seq, to_seq, before_seq, count, from_ts, to_ts, at) VALUES (?, ?, ?, ?, NULL, ?, ?, ?, ?)',
      ),
      counters: db.prepare(
        'UPDATE counters SET samples = samples - ?, events = events - ?, dropped_max_bytes = dropped_max_bytes + ?, dropped_max_age = dropped_max_age + ? WHERE id = 1',
      ),
      pruneReported: db.prepare(
        `DELETE FROM dropped WHERE reported = 1 AND id < (SELECT id FROM dropped WHERE reported = 1 ORDER BY id DESC LIMIT 1 OFFSET ${KEEP_REPORTED - 1})`,
      ),
      pruneTotal: db.prepare(`DELETE FROM dropped WHERE id <= (SELECT max(id) FROM dropped) - ${KEEP_TOTAL}`),
      reasonCount: db.prepare('SELECT count(*) FROM reason').pluck(),
      pruneReasons: db.prepare('DELETE FROM reason WHERE id NOT IN (SELECT rid FROM sample WHERE rid IS NOT NULL)'),
    };
  }

  usedBytes(): number {
    return ((this.s.pageCount.get() as number) - (this.s.freelist.get() as number)) * this.d.pageSize;
  }

  /**
   * Drops the oldest rows until `incoming` more samples (plus `incomingBytes` of events) fit under the
   * high-water mark, aiming for the low one. When the hard page cap was hit anyway (the estimate was wrong),
   * `minShare` makes it drop at least that share of the rows. Returns the number of rows dropped.
   */
  makeRoom(incoming: number, incomingBytes = 0, minShare = 0): number {
    const high = this.d.maxBytes * HIGH;
    const low = this.d.maxBytes * LOW;
    let dropped = 0;
    for (let round = 0; round < 4; round++) {
      const [samples, events] = this.s.counts.get() as [number, number];
      const rows = samples + events;
      if (rows === 0) break;
      const used = this.usedBytes();
      // Bytes per row measured on this file (dictionaries and b-tree overhead included); a guess while tiny.
      const perRow = rows >= 1000 ? Math.min(4096, Math.max(16, used / rows)) : 64;
      const projected = used + incoming * perRow + incomingBytes;
      const mustDrop = minShare > 0 && round === 0;
      if (!mustDrop && projected <= high) break;
      let excess = Math.ceil((projected - low) / perRow);
      if (mustDrop) excess = Math.max(excess, Math.ceil(rows * minShare));
      if (excess <= 0) break;
      let samplesLeft = samples;
      while (excess > 0) {
        // Events (alarms) go only when no sample is left to drop.
        const stream = samplesLeft > 0 ? 'sample' : 'event';
        const n = this.dropOldest(stream, 'maxBytes', Math.min(excess, CHUNK));
        if (n === 0) break;
        if (stream === 'sample') samplesLeft -= n;
        excess -= n;
        dropped += n;
      }
    }
    if (dropped > 0) this.logDrop(dropped);
    return dropped;
  }

  /** A full outbox drops at every few commits: one line a minute says so without flooding the journal. */
  private logDrop(dropped: number): void {
    this.droppedUnlogged += dropped;
    const now = this.d.clock();
    if (now - this.lastDropLog < DROP_LOG_EVERY_MS) return;
    this.lastDropLog = now;
    const ctx = { dropped: this.droppedUnlogged, maxBytes: this.d.capBytes ?? this.d.maxBytes };
    this.droppedUnlogged = 0;
    this.d.log.warn(ctx, 'outbox full: dropped the oldest samples to stay under buffer.maxBytes');
  }

  /**
   * Drops rows whose ts is older than maxAge. Rows flagged "timestamp untrusted" are judged by the trusted
   * rows around them: they go when a later trusted row is old, never alone (a 1970 ts from a clock that
   * was not synced says nothing about the row's age). Stops at the first trusted young row, so the drop
   * stays a prefix by seq even if the clock once stepped backwards.
   */
  dropByAge(now: number): number {
    const cutoff = now - this.d.maxAgeMs;
    let dropped = 0;
    for (const stream of ['sample', 'event'] as const) {
      for (;;) {
        const rows = this.s[stream].window.all(CHUNK) as Array<[number, number, number]>;
        let cut = -1;
        for (let i = 0; i < rows.length; i++) {
          const [, ts, meta] = rows[i];
          if ((meta & META_TS_UNTRUSTED) !== 0) continue;
          if (ts < cutoff) cut = i;
          else break;
        }
        if (cut < 0) break;
        const first = rows[0];
        const last = rows[cut];
        dropped += this.d.db.transaction(() =>
          this.dropThrough(stream, 'maxAge', [first[0], first[1]], [last[0], last[1]], now),
        )();
        if (cut < rows.length - 1 || rows.length < CHUNK) break;
      }
    }
    return dropped;
  }

  /** Age limit, bookkeeping bounds and the reason dictionary: the slow-moving limits. */
  housekeeping(now: number): void {
    const dropped = this.dropByAge(now);
    if (dropped > 0) this.d.log.warn({ dropped, maxAgeHours: this.d.maxAgeMs / 3_600_000 }, 'outbox dropped samples older than maxAge');
    this.s.pruneReported.run();
    this.s.pruneTotal.run();
    if (now - this.lastReasonPrune >= DAY_MS && (this.s.reasonCount.get() as number) > REASON_PRUNE_ABOVE) {
      // A full scan of the samples; rare: only a source writing a new reason text every time gets here.
      this.lastReasonPrune = now;
      const pruned = this.s.pruneReasons.run().changes;
      this.d.onReasonsPruned();
      this.d.log.info({ pruned }, 'outbox pruned unused reason texts');
    }
  }

  private dropOldest(stream: Stream, reason: DropReason, n: number): number {
    const st = this.s[stream];
    const held = this.inFlight?.() ?? [];
    if (held.length > 0) return this.d.db.transaction(() => this.dropOldestNotHeld(stream, reason, n, held))();
    return this.d.db.transaction(() => {
      const first = st.nth.get(0) as EdgeRow | undefined;
      if (!first) return 0;
      const last = (st.nth.get(n - 1) ?? st.last.get()) as EdgeRow;
      return this.dropThrough(stream, reason, first, last, this.d.clock());
    })();
  }

  /**
   * Runs inside a transaction: the oldest `n` rows that are not in flight, as one recorded run per stretch
   * between in-flight ranges, so every recorded run is a true loss. Returns 0 when all are in flight: the
   * commit then waits in memory until their PUBACKs free the rows (or a lost link releases them).
   */
  private dropOldestNotHeld(stream: Stream, reason: DropReason, n: number, held: ReadonlyArray<readonly [number, number]>): number {
    const ranges = [...held].sort((a, b) => a[0] - b[0]);
    const heldRows = ranges.reduce((sum, [a, b]) => sum + b - a + 1, 0);
    const rows = this.s[stream].window.all(n + heldRows) as Array<[number, number, number]>;
    const now = this.d.clock();
    let dropped = 0;
    let runLength = 0;
    let first: EdgeRow | undefined;
    let last: EdgeRow | undefined;
    const flush = () => {
      if (first && last) dropped += this.dropThrough(stream, reason, first, last, now, true);
      first = last = undefined;
      runLength = 0;
    };
    let j = 0;
    for (const [seq, ts] of rows) {
      if (dropped + runLength >= n) break;
      while (j < ranges.length && ranges[j]![1] < seq) j++;
      if (j < ranges.length && ranges[j]![0] <= seq) {
        flush();
        continue;
      }
      first ??= [seq, ts];
      last = [seq, ts];
      runLength++;
    }
    flush();
    return dropped;
  }

  /** Runs inside a transaction: deletes the rows of `stream` up to last.seq (from first.seq with `between`) and records the run. */
  private dropThrough(stream: Stream, reason: DropReason, first: EdgeRow, last: EdgeRow, now: number, between = false): number {
    const st = this.s[stream];
    const count = (between ? st.deleteBetween.run(first[0], last[0]) : st.deleteThrough.run(last[0])).changes;
    if (count === 0) return 0;
    this.d.onDropped?.(stream);
    this.s.insertDropped.run(reason, stream, first[0], last[0], count, first[1], last[1], now);
    this.s.counters.run(
      stream === 'sample' ? count : 0,
      stream === 'event' ? count : 0,
      reason === 'maxBytes' ? count : 0,
      reason === 'maxAge' ? count : 0,
    );
    return count;
  }
}
