/**
 * A Session that records what the uplink publishes instead of sending it: the fake of src/uplink/types.ts's
 * Session, held to the same contract as MqttSession (test/session-contract.test.ts). PUBACKs come at once,
 * or are held until release() when `holdAcks` is set; drop() fails whatever is in flight, as a lost link does.
 */
import { EventEmitter } from 'node:events';
import type { Session, SessionState } from '../../src/uplink/types.js';

export interface Recorded {
  topic: string;
  payload: string;
  /** The payload as sent (a Sparkplug payload is binary). */
  bytes: Buffer;
  qos: 0 | 1;
  retain: boolean;
}

export class RecordingSession extends EventEmitter implements Session {
  connected = false;
  generation = 0;
  holdAcks = false;
  readonly published: Recorded[] = [];
  /** Subscribes and publishes in order, to check what came first at a connect. */
  readonly calls: string[] = [];
  private readonly subscriptions = new Map<string, 0 | 1>();
  private held: Array<{ resolve: () => void; reject: (err: Error) => void }> = [];
  private closed = false;

  /** Connects at once, as a broker on loopback would. */
  start(): void {
    this.connect();
  }

  connect(): void {
    if (this.closed || this.connected) return;
    for (const f of this.subscriptions.keys()) this.calls.push(`subscribe ${f}`);
    this.connected = true;
    this.generation++;
    this.emit('state', 'connected' satisfies SessionState);
  }

  /** The link goes away: in-flight publishes fail, the caller keeps its rows. */
  drop(reason = 'connection lost'): void {
    if (!this.connected) return;
    this.connected = false;
    for (const h of this.held.splice(0)) h.reject(new Error(reason));
    this.emit('state', 'disconnected' satisfies SessionState, reason);
  }

  publish(topic: string, payload: string | Buffer, qos: 0 | 1, retain = false): Promise<void> {
    if (!this.connected) return Promise.reject(new Error('MQTT not connected'));
    this.published.push({ topic, payload: payload.toString(), bytes: Buffer.from(payload), qos, retain });
    this.calls.push(`publish ${topic}`);
    if (!this.holdAcks || qos === 0) return Promise.resolve();
    return new Promise((resolve, reject) => this.held.push({ resolve, reject }));
  }

  /** Answers like a held PUBACK: in order behind the publishes before it, failed by drop(). */
  fence(): Promise<void> {
    if (!this.connected) return Promise.reject(new Error('MQTT not connected'));
    this.calls.push('fence');
    if (!this.holdAcks) return Promise.resolve();
    return new Promise((resolve, reject) => this.held.push({ resolve, reject }));
  }

  subscribe(filter: string, qos: 0 | 1): Promise<void> {
    this.subscriptions.set(filter, qos);
    if (this.connected) this.calls.push(`subscribe ${filter}`);
    return Promise.resolve();
  }

  /** A message from the broker on a subscribed filter (exact topics or a trailing #). */
  deliver(topic: string, payload: string | Buffer, retained = false): boolean {
    const match = [...this.subscriptions.keys()].some((f) => f === topic || (f.endsWith('#') && topic.startsWith(f.slice(0, -1))));
    if (!this.connected || !match) return false;
    this.emit('message', topic, Buffer.from(payload), retained);
    return true;
  }

  /** PUBACKs for the oldest n held publishes (all by default). */
  release(n = Infinity): void {
    for (const h of this.held.splice(0, n)) h.resolve();
  }

  get inflight(): number {
    return this.held.length;
  }

  async close(last?: { topic: string; payload: string | Buffer; qos?: 0 | 1; retain?: boolean }): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (last && this.connected) this.published.push({ topic: last.topic, payload: last.payload.toString(), bytes: Buffer.from(last.payload), qos: last.qos ?? 1, retain: last.retain ?? true });
    this.release();
    this.connected = false;
    this.emit('state', 'closed' satisfies SessionState);
  }
}
