/**
 * An uplink profile is a wire format: it owns the topics, the birth and the will, and the encoding of every
 * sample batch, stored event and dropped range. The pump (uplink.ts) only moves outbox rows through the
 * session and acknowledges them; it never builds a payload. fieldgate's own v1 format is
 * profiles/fieldgate/; another standard (Sparkplug B) is another folder beside it.
 */
import type { DroppedRange, StoredEvent, StoredSample } from '../outbox/types.js';
import type { DictionaryEntry } from './payload.js';

/** One MQTT message as a profile asks for it. */
export interface Outgoing {
  topic: string;
  payload: string | Buffer;
  qos: 0 | 1;
  retain: boolean;
}

/** What a birth is made of: read fresh at every connect and after a reload. */
export interface BirthContext {
  epoch: string;
  version: string;
  configHash: string;
  points: DictionaryEntry[];
}

/** A live condition published at once, not queued behind the backlog (the outbox stopped taking writes). */
export interface OutboxCondition {
  state: string;
  was: string;
  pending: number;
  ts: number;
}

export type StoredRow = StoredSample & { series: number };

export interface UplinkProfile {
  readonly name: string;
  /** The will of the next dial; asked at every connect, since a profile's may change between sessions. */
  will(): Outgoing;
  /** Published after connecting and before any data, and again when the point list grows. */
  birth(ctx: BirthContext): Outgoing[];
  /** The last message of a clean stop. */
  offline(): Outgoing;
  /** Samples rows[start, end), whose seqs are consecutive; `backlog` tells rows stored while the link was down. */
  samples(epoch: string, rows: readonly StoredRow[], start: number, end: number, backlog: boolean): Outgoing;
  /** A stored event (an alarm raise or clear, a recreated outbox), with its place in the seq space. */
  event(epoch: string, event: StoredEvent): Outgoing;
  /** Samples the outbox had to drop, so a consumer knows the gap is final. */
  dropped(epoch: string, ranges: readonly DroppedRange[]): Outgoing;
  outboxCondition(condition: OutboxCondition): Outgoing;
}
