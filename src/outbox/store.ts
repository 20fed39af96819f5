/**
 * The writable outbox. Samples wait in memory for at most one commit interval, then go to disk in one
 * fsync'd transaction, which is when they get their seq. Acks and drops are separate transactions without
 * their own fsync: losing one in a power cut only means re-sending (the consumer dedups by epoch + seq),
 * and the next grouped commit's fsync makes them durable anyway because the WAL is synced in order.
 */
import type Database from 'better-sqlite3';
import { encodeEvent, type GatewayEvent } from '../events.js';
import type { Logger } from '../log.js';
import { backgroundTimers } from '../timers.js';
import { validateSample } from './codec.js';
import { CommitSchedule } from './commit-schedule.js';
import { OutboxError, isCorruption, isStorageFailure, sqliteCode } from './errors.js';
import { Limits, ProbeDone } from './limits.js';
import { openReader, openWritable } from './open.js';
import { Pending } from './pending.js';
import { OutboxReader } from './reader.js';
import { Retention } from './retention.js';
import { prepareRetime } from './retime.js';
import { readCounters } from './schema.js';
import { PendingState, prepareState, readStateRows, type StateEntry } from './state.js';
import { RecentSamples } from './recent.js';
import type { OutboxOptions, OutboxState, OutboxStats, SampleInput, SeriesEntry, StartupReport, StoredSample } from './types.js';
import { insertRows, prepareWrites, type Writes } from './writes.js';
import { FileWatch } from './watch.js';

const MIB = 1024 * 1024;
const DEFAULTS = { maxBytes: 512 * MIB, maxAgeHours: 720, commitIntervalMs: 250, maxPendingSamples: 100_000 };
/** Rows per insert transaction when a long backlog is flushed after an outage: bounds a commit's latency. */
const MAX_ROWS_PER_COMMIT = 50_000;
/** Rows per attempt while storage refuses writes. */
const RETRY_ROWS = 1000;
/** Events are rare (alarms); this bound only matters if storage is down for a very long time. */
const MAX_PENDING_EVENTS = 10_000;
/** Share of stored rows dropped before each retry when the page cap stops a commit: escalates, never stalls. */
const CAP_RETRY_SHARES = [0.05, 0.25, 1];

export class Outbox extends OutboxReader {
  /** What happened at open: created, or an unusable file moved aside and replaced. */
  readonly startupReport: StartupReport;
  private readonly log: Logger;
  private readonly clock: () => number;
  private readonly opts: Required<Omit<OutboxOptions, 'logger' | 'clock' | 'faultInjector' | 'dir' | 'timers'>>;
  private readonly faultInjector?: () => void;
  private readonly retention: Retention;
  private readonly limits: Limits;
  private readonly watch: FileWatch;
  private readonly w: Writes;
  private readonly insertTxn: (nSamples: number) => number;
  private readonly probeTxn: (nSamples: number) => void;
  private readonly pending: Pending;
  /** Ack ranges that could not be applied (storage refused); retried with the next commit. */
  private failedAcks: Array<[number, number]> = [];
  private nextSeq: number;
  private state: OutboxState = 'ok';
  private readonly schedule: CommitSchedule;
  /** Insert transactions (each one fsync) since open: what an SD card's wear budget counts. */
  private commits = 0;
  private nextHousekeeping = -Infinity;
  private readonly housekeepingEveryMs: number;
  private readonly listeners = new Set<(lastSeq: number) => void>();
  private readonly retimeRows = prepareRetime(this.db);
  private readonly stateRows = prepareState(this.db);
  private readonly pendingState = new PendingState();
  /** The samples of the last commits, served to reads that ask for nothing older (the uplink's live path). */
  private recent!: RecentSamples;
  /** Where the commit being written puts its samples for `recent`; unset outside insertOnce (the probe). */
  private fresh: StoredSample[] | undefined;
  private closed = false;
  /** Series created without an fsync since the last synced write (seriesId). */
  private seriesUnsynced = false;

  static open(options: OutboxOptions): Outbox {
    const clock = options.clock ?? Date.now;
    const opened = openWritable(options.dir, clock(), options.logger);
    try {
      return new Outbox(opened.db, options, opened.created, opened.recreated);
    } catch (err) {
      opened.db.close();
      throw new OutboxError('OUTBOX_OPEN_FAILED', `cannot open the outbox in ${options.dir}: ${(err as Error).message}`, { cause: err });
    }
  }

  /** A read-only view for the CLI; safe while the daemon writes (WAL). */
  static openReadOnly(dir: string): OutboxReader {
    const db = openReader(dir);
    try {
      return new OutboxReader(db, dir, false);
    } catch (err) {
      db.close();
      throw err;
    }
  }

  private constructor(db: Database.Database, options: OutboxOptions, created: boolean, recreated: StartupReport['recreated']) {
    super(db, options.dir, true);
    this.log = options.logger;
    this.clock = options.clock ?? Date.now;
    this.faultInjector = options.faultInjector;
    this.opts = {
      maxBytes: options.maxBytes ?? DEFAULTS.maxBytes,
      maxAgeHours: options.maxAgeHours ?? DEFAULTS.maxAgeHours,
      commitIntervalMs: options.commitIntervalMs ?? DEFAULTS.commitIntervalMs,
      maxPendingSamples: options.maxPendingSamples ?? DEFAULTS.maxPendingSamples,
    };
    this.watch = new FileWatch(options.dir, this.log);
    this.limits = new Limits(db, this.watch.path, this.opts.maxBytes, this.pageSize, MAX_ROWS_PER_COMMIT);
    const maxAgeMs = this.opts.maxAgeHours * 3_600_000;
    // Age is checked at most hourly (or 1/100 of maxAge): a late drop costs ~0.1 % of the budget, a check costs a scan.
    this.housekeepingEveryMs = Math.min(3_600_000, maxAgeMs / 100);
    this.retention = new Retention({
      db,
      pageSize: this.pageSize,
      maxBytes: this.limits.budget.dbBytes,
      capBytes: this.opts.maxBytes,
      maxAgeMs,
      log: this.log,
      clock: this.clock,
      onReasonsPruned: () => this.dict.resetReasons(),
      // Clearing is safe at any moment (reads then go to SQLite), also if the drop's transaction rolls back.
      onDropped: (stream) => {
        if (stream === 'sample') this.recent?.clear(this.nextSeq - 1);
      },
    });
    this.w = prepareWrites(db);
    this.schedule = new CommitSchedule(options.timers ?? backgroundTimers, this.opts.commitIntervalMs, () => this.commit());
    this.pending = new Pending(this.opts.maxPendingSamples, MAX_PENDING_EVENTS);
    const insert = (n: number) => {
      this.faultInjector?.();
      this.pendingState.write(this.stateRows);
      return insertRows(this.w, this.dict, this.pending, n, this.nextSeq, this.clock(), this.fresh);
    };
    this.insertTxn = db.transaction(insert);
    this.probeTxn = db.transaction((n: number) => {
      insert(n);
      throw new ProbeDone(db.pragma('page_count', { simple: true }) as number);
    });
    const counters = readCounters(db);
    this.nextSeq = counters.next_seq;
    // Belt and braces: never hand out a seq at or below one already stored.
    const stored = this.maxSeq();
    if (stored !== null && stored >= this.nextSeq) this.nextSeq = stored + 1;
    this.recent = new RecentSamples(this.nextSeq - 1);
    try {
      this.relaxed(() => this.limits.fit(this.retention));
    } catch (err) {
      // Never fail the open over this (e.g. a full disk at boot): commits enforce the limits again.
      this.log.warn({ err }, 'outbox could not apply its size limits at open');
    }
    this.startupReport = {
      created,
      recreated,
      epoch: this.meta.epoch,
      lastSeq: this.nextSeq - 1,
      samples: counters.samples,
      events: counters.events,
    };
    this.log.info({ dir: options.dir, ...this.startupReport }, created ? 'outbox created' : 'outbox opened');
  }

  /** Queues samples, committed within commitIntervalMs (sooner after commitSoon). Do not mutate them afterwards. */
  append(samples: readonly SampleInput[]): void {
    this.assertOpen();
    if (samples.length === 0) return;
    for (const s of samples) validateSample(s);
    for (const s of samples) this.pending.samples.push(s);
    // A burst larger than the queue while storage works: write now instead of dropping.
    if (this.state === 'ok' && this.pending.samples.length > this.opts.maxPendingSamples) this.commit();
    this.trim();
    this.schedule.queued();
  }

  /** Queues an event (alarm), read before samples; `state` commits in the same transaction (state.ts). */
  appendEvent(event: GatewayEvent, state?: StateEntry): void {
    this.assertOpen();
    const row = encodeEvent(event);
    if (state) this.pendingState.set(state);
    this.pending.events.push({ ts: this.clock(), kind: row.kind, payload: row.payload });
    this.trim();
    this.schedule.queued();
  }

  /**
   * What was queued completes a poll cycle or a burst of readings: it is committed as soon as no source is
   * mid-cycle (sourceBusy) and the last grouped commit is one commitIntervalMs old (commit-schedule.ts).
   */
  commitSoon(): void {
    if (!this.closed) this.schedule.soon();
  }

  /** A source started a poll cycle (true) or has nothing due any more (false): a commit waits for busy sources. */
  sourceBusy(id: string, busy: boolean): void {
    this.schedule.source(id, busy);
  }

  /** Writes state rows now, in their own fsync'd commit (Sparkplug's bdSeq must be durable before a CONNECT). */
  saveState(state: StateEntry | readonly StateEntry[]): void {
    this.assertOpen();
    for (const s of Array.isArray(state) ? state : [state as StateEntry]) this.pendingState.set(s);
    this.commit();
  }

  /** Writes everything queued now. Returns the number of rows committed (0 while storage refuses). */
  commit(): number {
    if (this.closed) return 0;
    this.schedule.cancel();
    this.watch.check();
    this.maintain();
    let committed = 0;
    try {
      while (this.pending.count > 0 || this.pending.drop !== null || this.pendingState.size > 0) {
        committed += this.commitChunk();
        if (this.state !== 'ok') this.log.info({ state: 'ok', was: this.state }, 'outbox storage writable again');
        this.state = 'ok';
      }
      if (committed > 0) {
        this.limits.boundWal();
        this.seriesUnsynced = false;
      }
    } catch (err) {
      this.onFailure(err);
    }
    this.schedule.committed(committed > 0, this.pending.count > 0 || this.failedAcks.length > 0);
    if (committed > 0) this.notify();
    return committed;
  }

  /**
   * Removes acknowledged rows (samples and events) by inclusive seq ranges, in any order; acking a range
   * twice or a range with gaps is harmless. Returns the rows removed.
   */
  ack(ranges: ReadonlyArray<readonly [number, number]>): number {
    this.assertOpen();
    for (const [from, to] of ranges) {
      if (!Number.isSafeInteger(from) || !Number.isSafeInteger(to) || from > to) {
        throw new RangeError(`ack range [${from}, ${to}] is not an ascending pair of integers`);
      }
    }
    try {
      const removed = this.relaxed(() => this.w.ack(ranges));
      this.recent.remove(ranges);
      return removed;
    } catch (err) {
      if (!isStorageFailure(err)) return this.guard(() => { throw err; });
      // Keep them: the rows stay readable meanwhile, which at worst means a duplicate the consumer drops.
      this.failedAcks.push(...ranges.map(([a, b]): [number, number] => [a, b]));
      this.onFailure(err);
      this.schedule.queued();
      return 0;
    }
  }

  /**
   * The dictionary index of (device, point), created now if new: lets a birth message list every configured
   * point before its first sample. Written without its own fsync (a start registering 10,000 points made 10,000
   * of them, minutes on an SD card): a consumer learns an index only from a birth, which reads series() and so
   * syncs first, or from samples, whose commit syncs the WAL and everything written before it.
   */
  seriesId(device: string, point: string): number {
    this.assertOpen();
    const before = this.dict.size;
    const id = this.guard(() => {
      try {
        return this.relaxed(() => this.w.txn(() => this.dict.seriesId(device, point)));
      } catch (err) {
        this.dict.forget();
        throw err;
      }
    });
    this.dict.keep();
    if (this.dict.size !== before) this.seriesUnsynced = true;
    return id;
  }

  /** Every series, made durable first if some were created since the last sync (they are about to be published). */
  override series(): SeriesEntry[] {
    if (this.seriesUnsynced && !this.closed) {
      this.guard(() => this.w.txn(() => this.w.touch.run()));
      this.seriesUnsynced = false;
    }
    return super.series();
  }

  /** Samples with afterSeq < seq < beforeSeq, ascending, at most `limit`: from memory when the last commits hold them all. */
  override read(afterSeq: number, limit: number, beforeSeq?: number): StoredSample[] {
    return this.recent.read(afterSeq, limit, beforeSeq ?? Number.MAX_SAFE_INTEGER) ?? super.read(afterSeq, limit, beforeSeq);
  }

  /** Shifts untrusted samples in [fromSeq, toSeq] by deltaMs and clears their flag (retime.ts). Returns the rows changed. */
  retime(fromSeq: number, toSeq: number, deltaMs: number): number {
    this.assertOpen();
    this.commit(); // queued samples first, so they are corrected too
    this.recent.clear(this.nextSeq - 1);
    return this.guard(() => this.retimeRows(fromSeq, toSeq, deltaMs));
  }

  /** Marks dropped runs up to and including `upToId` as reported upstream. */
  markDroppedReported(upToId: number): void {
    this.assertOpen();
    this.guard(() => this.relaxed(() => this.w.markReported.run(upToId)));
  }

  /** Committed state rows whose key starts with `prefix` (e.g. the active alarms at start). */
  readState(prefix: string): Map<string, string> {
    this.assertOpen();
    return this.guard(() => readStateRows(this.stateRows, prefix));
  }

  /**
   * Called once when the outbox can no longer be used as it is: OUTBOX_CORRUPT (the process should end so the
   * next start checks and replaces the file) or OUTBOX_DELETED (its file was removed; reopen to recreate it).
   * Called on a later tick, never inside a commit. Without a listener the outbox only logs and keeps going.
   */
  onUnusable(listener: (err: OutboxError) => void): () => void {
    return this.watch.on(listener);
  }

  /** Seq ranges the uplink has published and not yet acked: the size limit never drops them (retention.ts). */
  holdInFlight(ranges: () => ReadonlyArray<readonly [number, number]>): void {
    this.retention.inFlight = ranges;
  }

  /** Called with the highest committed seq after every successful commit (the uplink's "new data" cue). */
  onCommit(listener: (lastSeq: number) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  override stats(): OutboxStats {
    const base = super.stats();
    return {
      ...base,
      mode: 'writer',
      state: this.state,
      maxBytes: this.opts.maxBytes,
      pending: this.pending.count,
      commits: this.commits,
      dropped: { ...base.dropped, memoryQueueFull: base.dropped.memoryQueueFull + this.pending.dropped },
    };
  }

  /** Commits what is queued, checkpoints the WAL into the database file and closes. Idempotent. */
  override close(): void {
    if (this.closed) return;
    this.commit();
    this.closed = true;
    this.schedule.cancel();
    const lost = this.pending.count;
    if (lost > 0) this.log.error({ lost, state: this.state }, 'outbox closed with uncommitted readings; they are lost');
    try {
      this.db.pragma('wal_checkpoint(TRUNCATE)');
    } catch (err) {
      this.log.warn({ err }, 'outbox checkpoint at close failed; the WAL is replayed at next open');
    }
    super.close();
  }

  /** Retried acks and the slow-moving limits; a failure here must not keep the samples from being written. */
  private maintain(): void {
    try {
      this.relaxed(() => {
        if (this.failedAcks.length > 0) {
          this.w.ack(this.failedAcks);
          this.failedAcks = [];
        }
        const now = this.clock();
        if (now >= this.nextHousekeeping) {
          this.retention.housekeeping(now);
          this.nextHousekeeping = now + this.housekeepingEveryMs;
        }
      });
    } catch (err) {
      this.onFailure(err);
    }
  }

  private commitChunk(): number {
    // While failing, retry with a small chunk: a doomed 50k-row transaction every interval would burn the CPU.
    const n = Math.min(this.pending.samples.length, this.state === 'ok' ? this.limits.budget.rowsPerCommit : RETRY_ROWS);
    if (this.state === 'ok') this.relaxed(() => this.retention.makeRoom(n, this.pending.extraBytes(n)));
    for (let attempt = 0; ; attempt++) {
      try {
        return this.insertOnce(n);
      } catch (err) {
        if (attempt === CAP_RETRY_SHARES.length) throw err;
        if (!(attempt === 0 ? this.atPageCap(err, n) : sqliteCode(err) === 'SQLITE_FULL')) throw err;
        // The hard cap was reached before the soft limit: the size estimate was off. Drop harder, retry.
        this.relaxed(() => this.retention.makeRoom(n, this.pending.extraBytes(n), CAP_RETRY_SHARES[attempt]));
      }
    }
  }

  private insertOnce(n: number): number {
    const rows = n + this.pending.events.length;
    const fresh: StoredSample[] = [];
    this.fresh = fresh;
    try {
      this.nextSeq = this.insertTxn(n);
    } catch (err) {
      this.dict.forget();
      throw err;
    } finally {
      this.fresh = undefined;
    }
    this.commits++;
    this.recent.add(fresh);
    this.dict.keep();
    this.pending.committed(n);
    this.pendingState.committed();
    return rows;
  }

  private trim(): void {
    if (this.pending.trim(this.nextSeq)) {
      const ctx = { state: this.state, maxPendingSamples: this.opts.maxPendingSamples };
      this.log.warn(ctx, 'outbox memory queue full; dropping the oldest readings');
    }
  }

  private onFailure(err: unknown): void {
    const next: OutboxState = isStorageFailure(err) ? 'disk-full' : 'error';
    // Keep running on memory; the next open checks the file and replaces it if needed.
    if (isCorruption(err)) this.markNeedsCheck(err);
    if (next === this.state) return;
    this.state = next;
    const ctx = { state: next, code: sqliteCode(err), error: (err as Error).message, pending: this.pending.count };
    if (next === 'disk-full') this.log.warn(ctx, 'outbox storage refuses writes; keeping readings in memory and retrying');
    else this.log.error(ctx, 'outbox commit failed; keeping readings in memory and retrying');
  }

  /** Whether a SQLITE_FULL came from our own page cap, not the filesystem (limits.ts). */
  private atPageCap(err: unknown, n: number): boolean {
    try {
      return this.limits.atPageCap(err, () => this.probeTxn(n));
    } finally {
      this.dict.forget();
    }
  }

  protected override markNeedsCheck(err: unknown): void {
    super.markNeedsCheck(err);
    this.watch.corrupt(err);
  }

  /** Runs fn with synchronous=NORMAL: for writes whose loss in a power cut is harmless (see the file header). */
  private relaxed<T>(fn: () => T): T {
    this.w.syncNormal.run();
    try {
      return fn();
    } finally {
      this.w.syncFull.run();
    }
  }

  private notify(): void {
    const last = this.nextSeq - 1;
    for (const listener of this.listeners) {
      try {
        listener(last);
      } catch (err) {
        this.log.error({ err }, 'outbox onCommit listener threw');
      }
    }
  }

  private assertOpen(): void {
    if (this.closed) throw new OutboxError('OUTBOX_CLOSED', 'outbox is closed');
  }
}
