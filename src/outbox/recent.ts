/**
 * The samples of the last commits, kept as the reads would return them, so the uplink's live path does not
 * read back from SQLite what it just wrote (at saturation that read costs as much as the insert). It only ever
 * answers a read it can answer completely: `floor` is a seq below which it knows nothing, and above which it
 * holds every sample the database holds. Acked rows leave it as they leave the database; retention drops and
 * changes to stored rows in place (retime) empty it. Bounded; the oldest go first.
 */
import { PendingQueue } from './pending.js';
import type { StoredSample } from './types.js';

export const RECENT_MAX = 65_536;

export class RecentSamples {
  private rows = new PendingQueue<StoredSample>();
  /** Every stored sample with seq > floor is in `rows`. */
  private floor: number;

  constructor(lastSeq: number) {
    this.floor = lastSeq;
  }

  get size(): number {
    return this.rows.length;
  }

  /** Samples just committed, ascending and above everything held. */
  add(fresh: StoredSample[]): void {
    for (const s of fresh) this.rows.push(s);
    const excess = this.rows.length - RECENT_MAX;
    if (excess > 0) {
      this.floor = this.rows.at(excess - 1).seq;
      this.rows.shift(excess);
    }
  }

  /** What OutboxReader.read returns for the same arguments, or undefined when not all of it is held here. */
  read(afterSeq: number, limit: number, beforeSeq: number): StoredSample[] | undefined {
    if (afterSeq < this.floor) return undefined;
    const out: StoredSample[] = [];
    for (let i = this.firstAbove(afterSeq); i < this.rows.length && out.length < limit; i++) {
      const s = this.rows.at(i);
      if (s.seq >= beforeSeq) break;
      out.push(s);
    }
    return out;
  }

  /** Acked ranges (inclusive), as deleted from the database. */
  remove(ranges: ReadonlyArray<readonly [number, number]>): void {
    if (this.rows.length === 0) return;
    const first = this.rows.at(0).seq;
    const last = this.rows.at(this.rows.length - 1).seq;
    const hit = ranges.filter(([from, to]) => to >= first && from <= last);
    const acked = (seq: number) => hit.some(([from, to]) => seq >= from && seq <= to);
    // Acks come oldest first: most of the time only the front moves.
    let n = 0;
    while (n < this.rows.length && acked(this.rows.at(n).seq)) n++;
    this.rows.shift(n);
    if (this.rows.length === 0 || !hit.some(([, to]) => to >= this.rows.at(0).seq)) return;
    const kept = new PendingQueue<StoredSample>();
    for (let i = 0; i < this.rows.length; i++) if (!acked(this.rows.at(i).seq)) kept.push(this.rows.at(i));
    this.rows = kept;
  }

  /**
   * Forgets everything: always safe, since reads below the new floor go to SQLite. For stored rows changed in
   * place (retime) or deleted by retention; `lastSeq` is the highest seq assigned so far.
   */
  clear(lastSeq: number): void {
    this.rows = new PendingQueue<StoredSample>();
    this.floor = lastSeq;
  }

  private firstAbove(seq: number): number {
    let lo = 0;
    let hi = this.rows.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.rows.at(mid).seq <= seq) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
