/**
 * The samples of the last commits, kept as the reads would return them, so the uplink's live path does not
 * read back from SQLite what it just wrote (at saturation that read costs as much as the insert). It only ever
 * answers a read it can answer completely: `floor` is a seq below which it knows nothing, and above which it
 * holds every sample the database holds. Acked rows leave it as they leave the database; retention drops and
 * changes to stored rows in place (retime) empty it. Bounded; the oldest go first.
 */
import type { StoredSample } from './types.js';

export const RECENT_MAX = 32_768;

export class RecentSamples {
  private rows: StoredSample[] = [];
  private head = 0;
  /** Every stored sample with seq > floor is in `rows`. */
  private floor: number;

  constructor(lastSeq: number) {
    this.floor = lastSeq;
  }

  get size(): number {
    return this.rows.length - this.head;
  }

  /** Samples just committed, ascending and above everything held. */
  add(fresh: StoredSample[]): void {
    if (fresh.length === 0) return;
    for (const s of fresh) this.rows.push(s);
    const excess = this.size - RECENT_MAX;
    if (excess > 0) this.dropFront(excess);
  }

  /** What OutboxReader.read returns for the same arguments, or undefined when not all of it is held here. */
  read(afterSeq: number, limit: number, beforeSeq: number): StoredSample[] | undefined {
    if (afterSeq < this.floor) return undefined;
    const start = this.firstAbove(afterSeq);
    const out: StoredSample[] = [];
    for (let i = start; i < this.rows.length && out.length < limit; i++) {
      const s = this.rows[i]!;
      if (s.seq >= beforeSeq) break;
      out.push(s);
    }
    return out;
  }

  /** Acked ranges (inclusive), as deleted from the database. */
  remove(ranges: ReadonlyArray<readonly [number, number]>): void {
    if (this.size === 0) return;
    const live = this.rows[this.rows.length - 1]!.seq;
    const first = this.rows[this.head]!.seq;
    const hit = ranges.filter(([from, to]) => to >= first && from <= live);
    if (hit.length === 0) return;
    // Acks come oldest first: most of the time only the front moves.
    while (this.size > 0 && hit.some(([from, to]) => this.rows[this.head]!.seq >= from && this.rows[this.head]!.seq <= to)) this.head++;
    if (hit.some(([from, to]) => to >= (this.rows[this.head]?.seq ?? Infinity))) {
      this.rows = this.rows.slice(this.head).filter((s) => !hit.some(([from, to]) => s.seq >= from && s.seq <= to));
      this.head = 0;
    }
    this.compact();
  }

  /**
   * Forgets everything: always safe, since reads below the new floor go to SQLite. For stored rows changed in
   * place (retime) or deleted by retention; `lastSeq` is the highest seq assigned so far.
   */
  clear(lastSeq: number): void {
    this.rows = [];
    this.head = 0;
    this.floor = lastSeq;
  }

  private dropFront(n: number): void {
    this.head += n;
    this.floor = this.rows[this.head - 1]!.seq;
    this.compact();
  }

  private compact(): void {
    if (this.head === this.rows.length) {
      this.rows = [];
      this.head = 0;
    } else if (this.head > 4096 && this.head * 2 > this.rows.length) {
      this.rows = this.rows.slice(this.head);
      this.head = 0;
    }
  }

  private firstAbove(seq: number): number {
    let lo = this.head;
    let hi = this.rows.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.rows[mid]!.seq <= seq) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
