/**
 * Correcting timestamps once the clock is trusted: samples stored with FLAG_TS_UNTRUSTED get their ts shifted
 * by the clock's correction and lose the flag. Only flagged rows change, so a range may safely include trusted
 * samples, and a row can never be shifted twice. One statement: atomic, and it walks the seq b-tree by range.
 * Rows already delivered and acknowledged are gone from the outbox; the consumer keeps them flagged.
 */
import type Database from 'better-sqlite3';
import { META_TS_UNTRUSTED } from './codec.js';

/** Shifts flagged samples with fromSeq <= seq <= toSeq by deltaMs and clears the flag; returns the rows changed. */
export type Retime = (fromSeq: number, toSeq: number, deltaMs: number) => number;

export function prepareRetime(db: Database.Database): Retime {
  const update = db.prepare(
    `UPDATE sample SET ts = ts + ?, meta = meta - ${META_TS_UNTRUSTED} WHERE seq BETWEEN ? AND ? AND (meta & ${META_TS_UNTRUSTED}) != 0`,
  );
  return (fromSeq, toSeq, deltaMs) => {
    if (!Number.isSafeInteger(fromSeq) || !Number.isSafeInteger(toSeq) || fromSeq > toSeq) {
      throw new RangeError(`retime range [${fromSeq}, ${toSeq}] is not an ascending pair of integers`);
    }
    if (!Number.isSafeInteger(deltaMs)) throw new RangeError(`retime delta ${deltaMs} is not a whole number of ms`);
    return update.run(deltaMs, fromSeq, toSeq).changes;
  };
}
