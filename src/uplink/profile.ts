/**
 * An uplink profile is a wire format: it owns the topics, the birth and the will, and the encoding of every
 * sample batch, stored event and dropped range. The pump (uplink.ts) only moves outbox rows through the
 * session and acknowledges them; it never builds a payload. fieldgate's own v1 format is
 * profiles/fieldgate/; another standard (Sparkplug B) is another folder beside it.
 */
import type { Command, CommandResult } from '../commands/types.js';
import type { DroppedRange, StoredEvent, StoredSample } from '../outbox/types.js';
import type { Sample } from '../sample.js';
import type { DictionaryEntry } from './payload.js';
import type { BudgetState } from './budget.js';

/** One MQTT message as a profile asks for it. */
export interface Outgoing {
  topic: string;
  payload: string | Buffer;
  qos: 0 | 1;
  retain: boolean;
  /** MQTT 5 CONTENT_TYPE (compressed telemetry); not sent on 3.1.1, where the payload's marker byte says it. */
  contentType?: string;
}

/** What a birth is made of: read fresh at every connect and after a reload. */
export interface BirthContext {
  epoch: string;
  version: string;
  configHash: string;
  points: DictionaryEntry[];
  /** The latest value of a point (the last-value cache), for births that carry current values (Sparkplug). */
  latest?: (device: string, point: string) => { value: unknown; quality: Sample['quality']; ts: number } | undefined;
  /** Keys `device/point/alarm` of the alarms active now. */
  activeAlarms?: ReadonlySet<string>;
  /** The outbox's write state now ('ok', 'disk-full', 'error'). */
  outboxState?: string;
}

/** A live condition published at once, not queued behind the backlog (the outbox stopped taking writes). */
export interface OutboxCondition {
  state: string;
  was: string;
  pending: number;
  ts: number;
}

export type StoredRow = StoredSample & { series: number };

/** A topic filter the profile listens on; subscribed before every birth. */
export interface Subscription {
  filter: string;
  qos: 0 | 1;
}

/** What an inbound message means, as the profile parsed it; the gateway routes each kind. */
export type Inbound =
  /** A command for the guard (src/commands): parsed, not yet judged. */
  | { kind: 'command'; command: Command }
  /** A message on a command topic that could not be parsed; answered when it carried an id. */
  | { kind: 'invalid'; reason: string; id?: string }
  /** The host asks for every birth again (Sparkplug NCMD Node Control/Rebirth). */
  | { kind: 'rebirth' }
  /** The primary host application's state (Sparkplug STATE). */
  | { kind: 'host-state'; online: boolean; ts: number }
  /** A pushed configuration (fieldgate config/desired), judged by the supervisor's remote configuration. */
  | { kind: 'config-desired'; payload: Buffer };

export interface UplinkProfile {
  readonly name: string;
  /** The will of the next dial; asked at every connect, since a profile's may change between sessions. */
  will(): Outgoing;
  /** Published after connecting and before any data, and again when the point list grows. */
  birth(ctx: BirthContext): Outgoing[];
  /**
   * The birth is one retained message that stays valid while its context is unchanged: the uplink does not send
   * it again on a resumed session (the will unsent) when its context is the one last acknowledged on that broker.
   */
  readonly retainedBirth?: boolean;
  /** The last message of a clean stop. */
  offline(): Outgoing;
  /** Samples rows[start, end), whose seqs are consecutive; `backlog` tells rows stored while the link was down. */
  samples(epoch: string, rows: readonly StoredRow[], start: number, end: number, backlog: boolean): Outgoing | Outgoing[];
  /** A stored event (an alarm raise or clear, a recreated outbox), with its place in the seq space; null: not carried. */
  event(epoch: string, event: StoredEvent): Outgoing | null;
  /** Samples the outbox had to drop, so a consumer knows the gap is final; null: not carried. */
  dropped(epoch: string, ranges: readonly DroppedRange[]): Outgoing | null;
  outboxCondition(condition: OutboxCondition): Outgoing | null;
  /** The month's projection went over uplink.budget.monthlyBytes (stretch > 1) or back within it (1); null or absent: not carried. */
  budget?(state: BudgetState, ts: number): Outgoing | null;
  /**
   * A profile that waits for a host (Sparkplug's primary host) says whether data may flow now; the uplink
   * publishes neither births nor data while it says false, and buffers.
   */
  ready?(): boolean;
  /** The host's state changed: 'online' starts births and data, 'offline' stops them; 'ignore' (a stale message). */
  hostState?(online: boolean, ts: number): 'online' | 'offline' | 'ignore';
  /** A device stopped or started answering: its death, or its birth again (Sparkplug DDEATH / DBIRTH). */
  deviceState?(device: string, alive: boolean, ctx: BirthContext): Outgoing[];
  /** Topic filters to subscribe (commands, host state); empty when the profile takes nothing in. */
  subscriptions(): Subscription[];
  /** Parses one inbound message; null when the topic is none of this profile's. Never throws. */
  /**
   * `expiryS`: what is left of the message's MQTT 5 Message Expiry Interval (the broker counts it down while
   * the message waits in a queue): a command never outlives it.
   */
  inbound(topic: string, payload: Buffer, meta?: { expiryS?: number }): Inbound | readonly Inbound[] | null;
  /**
   * The answer to a command, published at once (its audit event goes through the outbox); null when the
   * profile has no result message (Sparkplug answers a DCMD with the new value in DDATA).
   */
  commandResult(result: CommandResult): Outgoing | null;
}
