/** Public types of the outbox: the durable store-and-forward buffer between acquisition and the uplink. */
import type { Logger } from '../log.js';
import type { Sample } from '../sample.js';
import type { Timers } from '../timers.js';

/** Bit 0 of `flags`: the timestamp came from an unsynchronised clock. Bits 1..25 are free for later use. */
export const FLAG_TS_UNTRUSTED = 1;
/** Flags are stored packed with the value kind and quality; 26 bits keep the packed integer below 2^31. */
export const MAX_FLAGS = 2 ** 26 - 1;

/** What `append` accepts: a sample plus optional flags. */
export type SampleInput = Sample & { flags?: number };

/**
 * A committed sample as the uplink reads it. `(epoch, seq)` identifies it for the consumer; `series` is the
 * dictionary index of its (device, point), stable for the life of the epoch (payloads may send it instead).
 */
export type StoredSample = Sample & { seq: number; flags: number; series: number };

/** One entry of the series dictionary. */
export interface SeriesEntry {
  id: number;
  device: string;
  point: string;
}

/** A committed event: events share the seq space with samples and are read before them (src/events.ts). */
export type { StoredEvent } from '../events.js';

export type DropReason = 'maxBytes' | 'maxAge' | 'memoryQueueFull';
export const DROP_REASONS: readonly DropReason[] = ['maxBytes', 'maxAge', 'memoryQueueFull'];

/**
 * A run of readings that left the outbox without being acknowledged. For `maxBytes`/`maxAge` every still-stored
 * row of `stream` with seq in [fromSeq, toSeq] was dropped (rows in between may have been delivered before).
 * `memoryQueueFull` readings never got a seq: fromSeq/toSeq are null and `beforeSeq` is the first seq assigned
 * after them, so the consumer knows where the gap sits.
 */
export interface DroppedRange {
  id: number;
  reason: DropReason;
  stream: 'sample' | 'event';
  fromSeq: number | null;
  toSeq: number | null;
  beforeSeq: number | null;
  count: number;
  /** Timestamps of the first and last dropped reading (by seq, or by arrival for memoryQueueFull). */
  fromTs: number;
  toTs: number;
  /** Gateway clock when the drop happened. */
  at: number;
  reported: boolean;
}

/** `disk-full`: storage refuses writes (SQLITE_FULL/IOERR/READONLY); `error`: any other commit failure. */
export type OutboxState = 'ok' | 'disk-full' | 'error';

export interface OutboxStats {
  epoch: string;
  /** When this database (and epoch) was created, ms. */
  createdAt: number;
  mode: 'writer' | 'reader';
  state: OutboxState;
  samples: number;
  events: number;
  /** Used bytes: (page_count - freelist_count) x page_size. */
  bytes: number;
  maxBytes: number | null;
  /** ts of the stored samples with the lowest and highest seq (null when empty). */
  oldestTs: number | null;
  newestTs: number | null;
  /** Lowest and highest stored seq over samples and events (null when empty). */
  minSeq: number | null;
  maxSeq: number | null;
  /** Highest seq ever assigned (0 before the first commit); survives deletes and restarts. */
  lastSeq: number;
  dropped: Record<DropReason, number>;
  /** Samples and events waiting in memory for the next commit. */
  pending: number;
  /** Writer only: insert transactions since open, each one fsync (commit-schedule.ts decides when). */
  commits?: number;
}

/** Why the database found at start was replaced by a new one (`deleted`: removed while the gateway ran). */
export type RecreateReason = 'corrupt' | 'notOutbox' | 'schemaNewer' | 'deleted';

export interface StartupReport {
  /** True when a new database (with a new epoch) was created at this open. */
  created: boolean;
  /** Set when an unusable file was moved aside (the data in it is set apart, not lost), or was deleted (movedTo null). */
  recreated: { reason: RecreateReason; error: string; movedTo: string | null } | null;
  epoch: string;
  lastSeq: number;
  samples: number;
  events: number;
}

export interface OutboxOptions {
  /** Directory holding `outbox.db`; created when missing. */
  dir: string;
  /** Upper bound of the outbox's files (database, WAL, shared memory); the oldest samples are dropped to stay below. Default 512 MiB. */
  maxBytes?: number;
  /** Samples older than this (by their ts) are dropped. Default 720 (30 days). */
  maxAgeHours?: number;
  /** The longest a queued sample waits for its commit, and the shortest gap between two grouped commits. Default 250. */
  commitIntervalMs?: number;
  /** Bound of the in-memory queue while storage refuses writes. Default 100_000. */
  maxPendingSamples?: number;
  logger: Logger;
  /** Milliseconds since the epoch; injectable for retention and drop spans. Default Date.now. */
  clock?: () => number;
  /** The commit schedule's clock and timers (a manual clock in tests). Default: real timers that do not hold the process open. */
  timers?: Timers;
  /** Test seam: runs inside each commit transaction before any insert; throw to simulate a storage error. */
  faultInjector?: () => void;
}
