/**
 * The seam between the uplink and MQTT: what the pump needs of a session. MqttSession (session.ts) is the real
 * one; test/helpers/recording-session.ts records instead of sending. Both pass test/session-contract.test.ts.
 */
import type { SessionState } from './session.js';
import type { ByCause, Cause } from './budget.js';

export type { SessionState };

/** What a publish may carry besides topic, payload, QoS and retain. */
export interface PublishExtra {
  /** MQTT 5 CONTENT_TYPE; ignored on MQTT 3.1.1. */
  contentType?: string;
  /** What the bytes count as in the data budget; by default the topic says (budget.ts causeOfTopic). */
  cause?: Cause;
}

export interface Session {
  /** True while a connection is up and publishes can be acknowledged. */
  readonly connected: boolean;
  /** Counts connections: a callback from an older connection is ignored by the caller. */
  readonly generation: number;
  /** The broker in use or dialled next (uplink.urls): its URL without credentials, its index (0: the primary), moves between brokers. */
  readonly broker?: { url: string; index: number; switches: number };
  /** This connection found the last one's session on the same broker and its will unsent (MQTT 5 will delay): its retained messages stand. */
  readonly resumed?: boolean;
  start(): void;
  /** The bytes sent and received since the last call, by cause (the data budget); absent: not counted. */
  takeBytes?(): { sent: ByCause; received: ByCause };
  /** Resolves when the broker acknowledged (QoS 1) or the packet was written (QoS 0); rejects when not connected. */
  publish(topic: string, payload: string | Buffer, qos: 0 | 1, retain?: boolean, extra?: PublishExtra): Promise<void>;
  /** Subscribes now and again at every connect, before the session counts as connected. */
  subscribe(filter: string, qos: 0 | 1): Promise<void>;
  /** Resolves once the broker handled every packet sent before it (the proof of receipt for QoS 0 data). */
  fence(): Promise<void>;
  /** Publishes a last message (the offline status) if connected, then disconnects cleanly. Idempotent. */
  close(last?: { topic: string; payload: string | Buffer; qos?: 0 | 1; retain?: boolean }): Promise<void>;
  on(event: 'state', listener: (state: SessionState, reason?: string) => void): this;
  /** `retained`: the broker delivered a retained message (at subscribe), not one published now. */
  /** `expiryS`: the MQTT 5 Message Expiry Interval left when it arrived, when the publisher set one. */
  on(event: 'message', listener: (topic: string, payload: Buffer, retained: boolean, expiryS?: number) => void): this;
}
