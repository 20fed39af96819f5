/** The writer's statements, prepared once, and the body of the grouped-commit transaction. */
import type Database from 'better-sqlite3';
import { decodeFlags, decodeQuality, decodeValue, encodeInto, scratch } from './codec.js';
import type { Dictionaries } from './dictionary.js';
import type { Pending } from './pending.js';
import type { SampleInput, StoredSample } from './types.js';

export type Writes = ReturnType<typeof prepareWrites>;

/**
 * Samples per multi-row INSERT. One statement call per row is mostly the cost of crossing from JavaScript into
 * SQLite and binding; 64 rows a call (448 parameters, far below SQLite's limit) cuts that to a sliver.
 */
export const INSERT_ROWS_PER_CALL = 64;
const SAMPLE_COLUMNS = 7;

export function prepareWrites(db: Database.Database) {
  const deleteSamples = db.prepare('DELETE FROM sample WHERE seq BETWEEN ? AND ?');
  const deleteEvents = db.prepare('DELETE FROM event WHERE seq BETWEEN ? AND ?');
  const ackCounters = db.prepare('UPDATE counters SET samples = samples - ?, events = events - ? WHERE id = 1');
  return {
    insertSample: db.prepare('INSERT INTO sample (seq, ts, sid, meta, num, rid, txt) VALUES (?, ?, ?, ?, ?, ?, ?)'),
    insertSamples: db.prepare(
      `INSERT INTO sample (seq, ts, sid, meta, num, rid, txt) VALUES ${new Array(INSERT_ROWS_PER_CALL).fill('(?, ?, ?, ?, ?, ?, ?)').join(', ')}`,
    ),
    /** The parameters of one insertSamples call, reused. */
    bulk: new Array<number | string | null>(INSERT_ROWS_PER_CALL * SAMPLE_COLUMNS),
    insertEvent: db.prepare('INSERT INTO event (seq, ts, kind, payload) VALUES (?, ?, ?, ?)'),
    insertMemDrop: db.prepare(
      "INSERT INTO dropped (reason, stream, from_seq, to_seq, before_seq, count, from_ts, to_ts, at) VALUES ('memoryQueueFull', ?, NULL, NULL, ?, ?, ?, ?, ?)",
    ),
    afterInsert: db.prepare(
      'UPDATE counters SET next_seq = ?, samples = samples + ?, events = events + ?, dropped_memory = dropped_memory + ? WHERE id = 1',
    ),
    markReported: db.prepare('UPDATE dropped SET reported = 1 WHERE id <= ? AND reported = 0'),
    /** A write that changes nothing, so a transaction under synchronous=FULL syncs what was written relaxed before it. */
    touch: db.prepare('UPDATE counters SET next_seq = next_seq WHERE id = 1'),
    /** Deletes acked seq ranges from both streams; returns the rows removed. */
    ack: db.transaction((ranges: ReadonlyArray<readonly [number, number]>): number => {
      let samples = 0;
      let events = 0;
      for (const [from, to] of ranges) {
        samples += deleteSamples.run(from, to).changes;
        events += deleteEvents.run(from, to).changes;
      }
      if (samples + events > 0) ackCounters.run(samples, events);
      return samples + events;
    }),
    /** Runs fn in a transaction. */
    txn: <T>(fn: () => T): T => db.transaction(fn)(),
    syncNormal: db.prepare('PRAGMA synchronous = NORMAL'),
    syncFull: db.prepare('PRAGMA synchronous = FULL'),
  };
}

/** The sample as a read of its row returns it: the value through the same encoding, so both are identical. */
function stored(s: SampleInput, seq: number, series: number, reason: string | null): StoredSample {
  const meta = scratch.meta;
  const out: StoredSample = {
    device: s.device,
    point: s.point,
    ts: s.ts,
    value: decodeValue(meta, scratch.num ?? scratch.txt),
    quality: decodeQuality(meta),
    seq,
    flags: decodeFlags(meta),
    series,
  };
  if (reason !== null) out.reason = reason;
  return out;
}

/**
 * Runs inside the commit transaction: every queued event, the memory-drop record, the first n samples, and
 * the counters, with seqs from `seq` on. Events first: they are the urgent ones. Returns the next free seq.
 * With `fresh`, the samples are also pushed there as reads would return them (RecentSamples).
 */
export function insertRows(w: Writes, dict: Dictionaries, pending: Pending, n: number, seq: number, now: number, fresh?: StoredSample[]): number {
  for (const e of pending.events) w.insertEvent.run(seq++, e.ts, e.kind, e.payload);
  const d = pending.drop;
  if (d) {
    if (d.samples > 0) w.insertMemDrop.run('sample', d.beforeSeq, d.samples, d.fromTs, d.toTs, now);
    if (d.events > 0) w.insertMemDrop.run('event', d.beforeSeq, d.events, d.fromTs, d.toTs, now);
  }
  const queue = pending.samples;
  const bulk = w.bulk;
  let i = 0;
  for (; i + INSERT_ROWS_PER_CALL <= n; i += INSERT_ROWS_PER_CALL) {
    for (let k = 0, j = 0; k < INSERT_ROWS_PER_CALL; k++) {
      const s = queue.at(i + k);
      encodeInto(scratch, s.value, s.quality, s.flags ?? 0);
      const sid = dict.seriesId(s.device, s.point);
      const reason = s.reason === undefined || s.reason === null ? null : s.reason;
      fresh?.push(stored(s, seq, sid, reason));
      bulk[j++] = seq++;
      bulk[j++] = s.ts;
      bulk[j++] = sid;
      bulk[j++] = scratch.meta;
      bulk[j++] = scratch.num;
      bulk[j++] = reason === null ? null : dict.reasonId(reason);
      bulk[j++] = scratch.txt;
    }
    w.insertSamples.run(bulk);
  }
  for (; i < n; i++) {
    const s = queue.at(i);
    const sid = dict.seriesId(s.device, s.point);
    const rid = s.reason === undefined || s.reason === null ? null : dict.reasonId(s.reason);
    encodeInto(scratch, s.value, s.quality, s.flags ?? 0);
    fresh?.push(stored(s, seq, sid, rid === null ? null : s.reason!));
    w.insertSample.run(seq++, s.ts, sid, scratch.meta, scratch.num, rid, scratch.txt);
  }
  w.afterInsert.run(seq, n, pending.events.length, pending.dropped);
  return seq;
}
