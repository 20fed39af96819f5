/**
 * What waits in memory for the next commit: samples, events, and the count of readings dropped because the
 * queue was full while storage refused writes. Bounded: beyond the bound the oldest go first, since on a
 * long outage the newest readings are the ones an operator looks at.
 */
import type { SampleInput } from './types.js';

/** A FIFO with a moving head: committing or dropping the oldest n is O(n), not O(queue) (100k while disk-full). */
export class PendingQueue<T> {
  private items: T[] = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  push(item: T): void {
    this.items.push(item);
  }

  /** The i-th oldest entry. */
  at(i: number): T {
    return this.items[this.head + i];
  }

  /** Removes the n oldest entries (committed or dropped). */
  shift(n: number): void {
    this.head += Math.min(n, this.length);
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
    } else if (this.head > 4096 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
  }
}

export interface PendingEvent {
  ts: number;
  kind: string;
  payload: string;
}

/** Readings dropped from memory (no seq yet) since the last successful commit; written with that commit. */
export interface MemoryDrop {
  samples: number;
  events: number;
  fromTs: number;
  toTs: number;
  /** The first seq assigned after the dropped readings: where the gap sits in the sequence. */
  beforeSeq: number;
}

export class Pending {
  readonly samples = new PendingQueue<SampleInput>();
  events: PendingEvent[] = [];
  drop: MemoryDrop | null = null;

  constructor(
    private readonly maxSamples: number,
    private readonly maxEvents: number,
  ) {}

  get count(): number {
    return this.samples.length + this.events.length;
  }

  get dropped(): number {
    return this.drop ? this.drop.samples + this.drop.events : 0;
  }

  /**
   * Drops the oldest entries beyond the bounds. `nextSeq` locates the gap for the record. Returns true when
   * this starts a drop run (the caller logs it once).
   */
  trim(nextSeq: number): boolean {
    const samples = Math.max(0, this.samples.length - this.maxSamples);
    const events = Math.max(0, this.events.length - this.maxEvents);
    if (samples === 0 && events === 0) return false;
    let fromTs = Infinity;
    let toTs = -Infinity;
    for (let i = 0; i < samples; i++) {
      const ts = this.samples.at(i).ts;
      if (ts < fromTs) fromTs = ts;
      if (ts > toTs) toTs = ts;
    }
    for (const e of this.events.splice(0, events)) {
      if (e.ts < fromTs) fromTs = e.ts;
      if (e.ts > toTs) toTs = e.ts;
    }
    this.samples.shift(samples);
    const started = this.drop === null;
    const d = (this.drop ??= { samples: 0, events: 0, fromTs, toTs, beforeSeq: nextSeq });
    d.samples += samples;
    d.events += events;
    d.fromTs = Math.min(d.fromTs, fromTs);
    d.toTs = Math.max(d.toTs, toTs);
    return started;
  }

  /** Size the per-row average does not cover, for the first n samples and all events: payloads and strings. */
  extraBytes(n: number): number {
    let bytes = 0;
    for (const e of this.events) bytes += e.payload.length + e.kind.length + 24;
    for (let i = 0; i < n; i++) {
      const v = this.samples.at(i).value;
      if (typeof v === 'string') bytes += v.length;
    }
    return bytes;
  }

  /** The first n samples, every event and the drop record are on disk now. */
  committed(n: number): void {
    this.samples.shift(n);
    this.events = [];
    this.drop = null;
  }
}
