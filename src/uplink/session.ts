/**
 * One MQTT session to the broker, kept up by a single-flight reconnect loop (one dial at a time, capped
 * exponential backoff with jitter). mqtt.js's own reconnect and offline queue are off: the outbox is the
 * buffer, and anything in flight when the link drops is failed back to the caller, who still has it in SQLite.
 */
import { EventEmitter } from 'node:events';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import type { Logger } from '../log.js';

export interface SessionOptions {
  url: string;
  clientId: string;
  username?: string;
  password?: string;
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  insecure: boolean;
  protocolVersion: 4 | 5;
  keepaliveS: number;
  connectTimeoutMs: number;
  reconnectMinMs: number;
  reconnectMaxMs: number;
  will: { topic: string; payload: string };
}

export type SessionState = 'connecting' | 'connected' | 'disconnected' | 'closed';

/** Why a connection attempt failed, in words a technician can act on. Never includes secrets. */
export function describeConnectError(err: unknown): string {
  const e = err as { message?: string; code?: string | number };
  const msg = e?.message ?? String(err);
  const code = e?.code;
  if (code === 4 || code === 5 || code === 134 || code === 135 || /not authori[sz]ed|bad user name or password/i.test(msg)) {
    return 'the broker refused the credentials (check uplink.username and the password)';
  }
  if (/self[- ]signed|unable to verify|unable to get local issuer|certificate/i.test(msg) || /^(DEPTH_ZERO|SELF_SIGNED|UNABLE_TO|CERT_|ERR_TLS)/.test(String(code))) {
    return `TLS: the broker's certificate is not trusted (${msg}); check uplink.ca`;
  }
  if (/unacceptable protocol version/i.test(msg) || code === 1 || code === 132) {
    return 'the broker does not speak this MQTT version (try uplink.protocolVersion: 4)';
  }
  if (/ECONNREFUSED/.test(msg) || code === 'ECONNREFUSED') return 'connection refused (is the broker running, right host and port?)';
  if (/ENOTFOUND|EAI_AGAIN/.test(msg)) return `cannot resolve the broker's host name (${msg})`;
  return msg;
}

export class MqttSession extends EventEmitter {
  private client: MqttClient | undefined;
  private state: SessionState = 'disconnected';
  private delay: number;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  /** Counts connections; a callback from an older connection is ignored by the caller. */
  generation = 0;
  connectedSince: number | undefined;
  reconnects = 0;

  constructor(
    private readonly opts: SessionOptions,
    private readonly log: Logger,
  ) {
    super();
    this.delay = opts.reconnectMinMs;
  }

  get connected(): boolean {
    return this.state === 'connected';
  }

  get currentState(): SessionState {
    return this.state;
  }

  start(): void {
    this.dial();
  }

  private setState(state: SessionState, reason?: string): void {
    if (this.state === state) return;
    this.state = state;
    this.emit('state', state, reason);
  }

  private clientOptions(): IClientOptions {
    const o = this.opts;
    return {
      clientId: o.clientId,
      username: o.username,
      password: o.password,
      protocolVersion: o.protocolVersion,
      clean: true,
      keepalive: o.keepaliveS,
      connectTimeout: o.connectTimeoutMs,
      reconnectPeriod: 0,
      queueQoSZero: false,
      // mqtt-packet otherwise builds a table of 65,536 two-byte Buffers (about 6 MiB of heap) for packet ids.
      writeCache: false,
      ca: o.ca,
      cert: o.cert,
      key: o.key,
      rejectUnauthorized: !o.insecure,
      will: { topic: o.will.topic, payload: Buffer.from(o.will.payload), qos: 1, retain: true },
    };
  }

  private dial(): void {
    if (this.closed || this.client) return;
    this.setState('connecting');
    const client = mqtt.connect(this.opts.url, this.clientOptions());
    this.client = client;
    let up = false;
    let lastError: unknown;
    client.on('connect', () => {
      up = true;
      // Nagle would hold the short tail of a PUBLISH until the broker ACKs the segments before it, and a
      // delayed ACK then stalls the in-flight window for tens of milliseconds.
      (client.stream as { setNoDelay?: (on: boolean) => void } | undefined)?.setNoDelay?.(true);
      this.generation++;
      this.delay = this.opts.reconnectMinMs;
      this.connectedSince = Date.now();
      this.log.info({ url: this.opts.url, clientId: this.opts.clientId }, 'MQTT connected');
      this.setState('connected');
    });
    client.on('error', (err) => {
      lastError = err;
    });
    client.on('close', () => {
      if (this.client !== client) return;
      this.client = undefined;
      client.removeAllListeners('connect');
      client.end(true);
      client.on('error', () => {});
      if (this.closed) return;
      if (up) {
        this.reconnects++;
        this.log.warn({ url: this.opts.url }, `MQTT connection lost${lastError ? `: ${describeConnectError(lastError)}` : ''}; reconnecting`);
      } else {
        this.log.warn({ url: this.opts.url, retryInMs: Math.round(this.delay) }, `MQTT connect failed: ${lastError ? describeConnectError(lastError) : 'connection closed'}`);
      }
      this.connectedSince = undefined;
      this.setState('disconnected', lastError ? describeConnectError(lastError) : 'closed');
      const wait = up ? this.opts.reconnectMinMs * (0.5 + Math.random()) : this.delay * (0.8 + Math.random() * 0.4);
      if (!up) this.delay = Math.min(this.delay * 2, this.opts.reconnectMaxMs);
      this.timer = setTimeout(() => this.dial(), wait);
    });
  }

  /** Resolves when the broker acknowledged (QoS 1) or the packet was written (QoS 0). */
  publish(topic: string, payload: string | Buffer, qos: 0 | 1, retain = false): Promise<void> {
    const client = this.client;
    if (!client || this.state !== 'connected') return Promise.reject(new Error('MQTT not connected'));
    return new Promise((resolve, reject) => {
      client.publish(topic, payload, { qos, retain }, (err) => (err ? reject(err) : resolve()));
    });
  }

  /** Publishes a last message (the offline status) if connected, then disconnects cleanly. */
  async close(last?: { topic: string; payload: string }, timeoutMs = 2000): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.timer);
    const client = this.client;
    this.client = undefined;
    if (client) {
      if (last && this.state === 'connected') {
        await Promise.race([
          new Promise<void>((resolve) => client.publish(last.topic, last.payload, { qos: 1, retain: true }, () => resolve())),
          new Promise<void>((resolve) => setTimeout(resolve, timeoutMs).unref()),
        ]);
      }
      await new Promise<void>((resolve) => {
        client.end(false, {}, () => resolve());
        setTimeout(() => client.end(true, {}, () => resolve()), timeoutMs).unref();
      });
    }
    this.setState('closed');
  }
}
