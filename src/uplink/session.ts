/**
 * One MQTT session to the broker, kept up by a single-flight reconnect loop (one dial at a time, through the
 * shared capped exponential backoff with jitter). mqtt.js's own reconnect and offline queue are off: the outbox
 * is the buffer, and anything in flight when the link drops is failed back to the caller, who still has it in
 * SQLite.
 */
import { EventEmitter } from 'node:events';
import mqtt, { type IClientOptions, type IDisconnectPacket, type MqttClient } from 'mqtt';
import { Backoff } from '../backoff.js';
import { withoutUserinfo } from '../config/secrets.js';
import type { Logger } from '../log.js';
import { describeConnectError, describeDisconnect } from './diagnose.js';
import { connect as tcpConnect, type Socket } from 'node:net';
import { BrokerChoice, brokerAddress, probeBroker } from './failover.js';
import { DataMeter, PUBACK_BYTES, causeOfTopic, publishBytes, type ByCause } from './budget.js';
import type { PublishExtra } from './types.js';
import { packVarIntCache } from './varint-cache.js';

export { describeConnectError, describeDisconnect } from './diagnose.js';

export interface SessionOptions {
  /** The broker; with `urls`, the brokers in order of preference (the first is the primary) and `url` is ignored. */
  url: string;
  urls?: readonly string[];
  /** Failed dials on one broker before the next of `urls` is tried. Default 3. */
  failoverAttempts?: number;
  /** While on another broker than the primary, the primary's port is checked this often. Default 60 s. */
  primaryCheckMs?: number;
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
  /**
   * A connection must last this long before the backoff starts again from reconnectMinMs, so a broker that
   * accepts and drops at once is still redialled ever more slowly. Default: keepaliveS, at most 10 s.
   */
  stableMs?: number;
  /** The last will; a function is asked again at every dial (a profile's will may change between sessions). */
  will: SessionWill | (() => SessionWill);
  /** For the backoff's jitter (tests). */
  random?: () => number;
  /**
   * MQTT 5 only: keep the session and delay the will this many seconds after a lost connection (session expiry
   * = will delay), so a reconnect within them finds the session (CONNACK sessionPresent) and the will unsent:
   * the retained birth is still ours (`resumed`). 0 or absent: a clean start every time, the will at once.
   */
  willDelayS?: number;
  /**
   * MQTT 5: topic aliases as far as the broker's CONNACK allows (Topic Alias Maximum): the first PUBLISH of a
   * topic on a connection names it and an alias, the next ones only the alias. Default true.
   */
  topicAliases?: boolean;
}

export type SessionState = 'connecting' | 'connected' | 'disconnected' | 'closed';

export interface SessionWill {
  topic: string;
  payload: string | Buffer;
  qos?: 0 | 1;
  retain?: boolean;
}

export class MqttSession extends EventEmitter {
  private client: MqttClient | undefined;
  private state: SessionState = 'disconnected';
  private readonly backoff: Backoff;
  private readonly brokers: BrokerChoice;
  private timer: NodeJS.Timeout | undefined;
  private probeTimer: NodeJS.Timeout | undefined;
  /** The session is being closed on purpose to go back to the primary: the next dial is at once. */
  private returning = false;
  private closed = false;
  /** Counts connections; a callback from an older connection is ignored by the caller. */
  generation = 0;
  connectedSince: number | undefined;
  reconnects = 0;
  /**
   * This connection found the session of the last one on the same broker (MQTT 5 sessionPresent with a will
   * delay): the broker has not published the will, so what the last connection left retained is unchanged.
   */
  resumed = false;
  /** Bytes of this session's packets by cause and of its sockets (budget.ts). */
  readonly meter = new DataMeter();
  /** The socket under MQTT (under TLS with mqtts://) and how much of its counters the meter has. */
  private raw: { socket: Socket; written: number; read: number } | undefined;
  /** The TLS session of the last connection, offered at the next dial so the broker can resume it (no full handshake). */
  private tlsSession: Buffer | undefined;
  /** Whether the TLS handshake of the current connection resumed the last one's session (no full handshake). */
  tlsResumed: boolean | undefined;
  /** Topic aliases of this connection as mqtt.js assigns them (least recently used first), to count PUBLISH sizes; max 0: none. */
  private aliases: { max: number; topics: Map<string, true> } = { max: 0, topics: new Map() };
  /** Topic filters kept across reconnects: subscribed on every connect before the session counts as up. */
  private readonly subscriptions = new Map<string, 0 | 1>();

  constructor(
    private readonly opts: SessionOptions,
    private readonly log: Logger,
  ) {
    super();
    this.backoff = new Backoff({ minMs: opts.reconnectMinMs, maxMs: opts.reconnectMaxMs }, opts.random);
    this.brokers = new BrokerChoice(opts.urls && opts.urls.length > 0 ? opts.urls : [opts.url], opts.failoverAttempts ?? 3);
  }

  /** The broker URL of the current (or next) dial as logged: never with a user or password in it. */
  private get url(): string {
    return withoutUserinfo(this.brokers.url);
  }

  /** The broker in use (or dialled next): its URL without credentials, its place in `urls` (0: the primary), the moves between brokers. */
  get broker(): { url: string; index: number; switches: number } {
    return { url: this.url, index: this.brokers.index, switches: this.brokers.switches };
  }

  get connected(): boolean {
    return this.state === 'connected';
  }

  get currentState(): SessionState {
    return this.state;
  }

  start(): void {
    // Before the first packet: mqtt-packet's cache of lengths, packed, cannot pin the Buffer pool (varint-cache.ts).
    packVarIntCache();
    const plain = this.brokers.urls.find((u) => /^(mqtt|ws):/i.test(u));
    if (plain !== undefined && this.opts.password !== undefined) {
      const key = this.brokers.urls.length > 1 ? 'uplink.urls' : 'uplink.url';
      this.log.warn({ url: withoutUserinfo(plain) }, `MQTT password sent in clear over ${plain.split(':')[0]}:// (${key}): anyone on the path can read it; use mqtts:// or wss:// unless the broker runs on this machine`);
    }
    this.dial();
  }

  private setState(state: SessionState, reason?: string): void {
    if (this.state === state) return;
    this.state = state;
    this.emit('state', state, reason);
  }

  private clientOptions(): IClientOptions {
    const o = this.opts;
    const url = this.brokers.url;
    // Over TLS, a TCP socket of our own under it: its counters are the bytes on the wire, TLS records and all.
    let socket: Socket | undefined;
    if (/^mqtts:/i.test(url)) {
      const { host, port } = brokerAddress(url);
      socket = tcpConnect({ host, port });
      socket.on('error', () => {});
      this.raw = { socket, written: 0, read: 0 };
    } else this.raw = undefined;
    const delayS = this.willDelayS;
    return {
      ...(socket ? { socket, ...(this.tlsSession ? { session: this.tlsSession } : {}) } : {}),
      clientId: o.clientId,
      username: o.username,
      password: o.password,
      protocolVersion: o.protocolVersion,
      // With a will delay the session outlives a lost connection as long as the delay (MQTT 5 3.1.3.2.2): the
      // will goes at the earlier of the two, so a session still present at the next CONNECT proves it did not.
      clean: delayS === 0,
      // Aliases live and die with one network connection (MQTT 5 3.3.2.3.4); every dial is a new client, so
      // what goes again after a reconnect names its topic in full first.
      ...(o.protocolVersion === 5 && o.topicAliases !== false ? { autoAssignTopicAlias: true } : {}),
      ...(delayS > 0 ? { properties: { sessionExpiryInterval: delayS } } : {}),
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
      will: willOf(o.will, delayS),
    };
  }

  /** The will delay and session expiry in use: only on MQTT 5. */
  private get willDelayS(): number {
    return this.opts.protocolVersion === 5 ? Math.max(0, Math.floor(this.opts.willDelayS ?? 0)) : 0;
  }

  private dial(): void {
    if (this.closed || this.client) return;
    this.setState('connecting');
    const client = mqtt.connect(this.brokers.url, this.clientOptions());
    this.client = client;
    const stream = client.stream as (Socket & { on(event: 'session', l: (s: Buffer) => void): Socket }) | undefined;
    stream?.on('session', (session: Buffer) => {
      this.tlsSession = session;
    });
    if (!this.raw && stream && typeof stream.bytesWritten === 'number') this.raw = { socket: stream, written: 0, read: 0 };
    let up = false;
    let lastError: unknown;
    let disconnect: IDisconnectPacket | undefined;
    client.on('connect', (connack) => {
      const tlsStream = client.stream as { isSessionReused?: () => boolean } | undefined;
      this.tlsResumed = typeof tlsStream?.isSessionReused === 'function' ? tlsStream.isSessionReused() : undefined;
      up = true;
      const resumed = this.willDelayS > 0 && connack.sessionPresent === true;
      const aliasMax = this.opts.protocolVersion === 5 && this.opts.topicAliases !== false ? (connack.properties?.topicAliasMaximum ?? 0) : 0;
      this.aliases = { max: aliasMax, topics: new Map() };
      // Nagle would hold the short tail of a PUBLISH until the broker ACKs the segments before it, and a
      // delayed ACK then stalls the in-flight window for tens of milliseconds.
      (client.stream as { setNoDelay?: (on: boolean) => void } | undefined)?.setNoDelay?.(true);
      // A clean session has no subscriptions: make them before anyone publishes a birth (Sparkplug needs
      // NCMD/DCMD subscribed before NBIRTH, and commands must not be missed in between).
      void this.resubscribe(client).then((ok) => {
        if (!ok || this.client !== client) return;
        this.generation++;
        this.resumed = resumed;
        this.connectedSince = Date.now();
        this.brokers.connected();
        this.log.info({ url: this.url, clientId: this.opts.clientId, ...(this.brokers.urls.length > 1 ? { broker: this.brokers.index } : {}) }, 'MQTT connected');
        this.setState('connected');
        if (this.brokers.onSecondary) this.watchPrimary(client);
      });
    });
    client.on('message', (topic, payload, packet) => {
      const cause = causeOfTopic(topic);
      this.meter.receive(cause, publishBytes(topic, payload.length, packet.qos === 0 ? 0 : 1, this.opts.protocolVersion === 5, 0));
      if (packet.qos > 0) this.meter.publish(cause, PUBACK_BYTES);
      // A message published retained (replayed at every subscribe; with rap also when forwarded): the guard refuses those.
      if (this.client === client) this.emit('message', topic, payload, packet.retain === true, packet.properties?.messageExpiryInterval);
    });
    client.on('error', (err) => {
      lastError = err;
    });
    // An MQTT 5 broker says why it drops a session (e.g. 142: another client took the same clientId).
    client.on('disconnect', (packet) => {
      disconnect = packet;
    });
    client.on('close', () => {
      if (this.client !== client) return;
      this.sampleWire();
      this.raw = undefined;
      this.client = undefined;
      client.removeAllListeners('connect');
      client.end(true);
      client.on('error', () => {});
      clearInterval(this.probeTimer);
      this.probeTimer = undefined;
      if (this.closed) return;
      const stableMs = this.opts.stableMs ?? Math.min(this.opts.keepaliveS * 1000, 10_000);
      if (up && this.connectedSince !== undefined && Date.now() - this.connectedSince >= stableMs) this.backoff.reset();
      const leaving = this.url;
      // A broker that failed its attempts hands over to the next one, dialled as soon as a first reconnect would be.
      const moved = !up && this.brokers.failed();
      if (moved || this.returning) this.backoff.reset();
      const wait = this.returning ? 0 : this.backoff.next();
      if (this.returning) {
        this.returning = false;
        this.connectedSince = undefined;
        this.timer = setTimeout(() => this.dial(), wait);
        return;
      }
      const context = { clientCert: this.opts.cert !== undefined, clientId: this.opts.clientId };
      const reason = disconnect
        ? describeDisconnect(disconnect, context)
        : lastError
          ? describeConnectError(lastError, context)
          : undefined;
      if (up) {
        this.reconnects++;
        const what = disconnect ? 'MQTT disconnected by the broker' : 'MQTT connection lost';
        this.log.warn({ url: this.url, retryInMs: wait }, `${what}${reason ? `: ${reason}` : ''}; reconnecting`);
      } else {
        this.log.warn({ url: leaving, retryInMs: wait }, `MQTT connect failed: ${reason ?? 'connection closed'}`);
      }
      if (moved) this.log.warn({ from: leaving, to: this.url, afterAttempts: this.opts.failoverAttempts ?? 3 }, `MQTT broker ${leaving} unreachable: failing over to ${this.url}`);
      this.connectedSince = undefined;
      this.setState('disconnected', reason ?? 'closed');
      this.timer = setTimeout(() => this.dial(), wait);
    });
  }

  /**
   * On a broker other than the primary, checks the primary's port every primaryCheckMs; when it answers, the
   * session ends cleanly (what is in flight is acknowledged first, so nothing goes to both) and dials the primary.
   */
  private watchPrimary(client: MqttClient): void {
    const every = this.opts.primaryCheckMs ?? 60_000;
    this.probeTimer = setInterval(() => {
      void probeBroker(this.brokers.urls[0]!, this.opts.connectTimeoutMs).then((ok) => {
        if (!ok || this.closed || this.client !== client || this.returning || !this.brokers.onSecondary) return;
        const leaving = this.url;
        this.brokers.backToPrimary();
        this.returning = true;
        clearInterval(this.probeTimer);
        this.probeTimer = undefined;
        this.log.info({ from: leaving, to: this.url }, `MQTT primary broker ${this.url} answers again: moving back from ${leaving}`);
        // Nothing new is published from here; the in-flight publishes get their PUBACKs before the DISCONNECT.
        this.setState('connecting', 'returning to the primary broker');
        client.end(false);
        setTimeout(() => client.end(true), this.opts.connectTimeoutMs).unref();
      });
    }, every);
    this.probeTimer.unref();
  }

  /** Adds what the socket wrote and read since the last look to the meter. */
  private sampleWire(): void {
    const raw = this.raw;
    if (!raw) return;
    const written = raw.socket.bytesWritten ?? 0;
    const read = raw.socket.bytesRead ?? 0;
    this.meter.wire(written - raw.written, read - raw.read);
    raw.written = written;
    raw.read = read;
  }

  /** The bytes counted since the last call, by cause; `control` is what the socket carried beyond the counted packets. */
  takeBytes(): { sent: ByCause; received: ByCause } {
    this.sampleWire();
    return this.meter.take();
  }

  /** Subscribes now if connected, and at every later connect; resolves on SUBACK (or at once when not connected). */
  subscribe(filter: string, qos: 0 | 1): Promise<void> {
    this.subscriptions.set(filter, qos);
    const client = this.client;
    if (!client || this.state !== 'connected') return Promise.resolve();
    return new Promise((resolve, reject) => client.subscribe(filter, this.subscribeOptions(qos), (err) => (err ? reject(err) : resolve())));
  }

  /** MQTT 5 only: 3.1.1 has no subscription options beyond the QoS. */
  private subscribeOptions(qos: 0 | 1): { qos: 0 | 1; rap?: boolean } {
    return this.opts.protocolVersion === 5 ? { qos, rap: true } : { qos };
  }

  private resubscribe(client: MqttClient): Promise<boolean> {
    if (this.subscriptions.size === 0) return Promise.resolve(true);
    // Retain As Published (MQTT 5): a message published retained keeps its flag also when forwarded live or
    // queued for a kept session, so the command guard refuses a retained command however it arrives.
    const filters = Object.fromEntries([...this.subscriptions].map(([f, qos]) => [f, this.subscribeOptions(qos)]));
    return new Promise((resolve) =>
      client.subscribe(filters, (err, granted) => {
        const refused = (granted ?? []).filter((g) => g.qos === 128).map((g) => g.topic);
        if (err || refused.length > 0) {
          // Without its subscriptions the session would miss commands: drop it and dial again through the backoff.
          this.log.warn({ url: this.url, refused }, `MQTT subscribe failed: ${err ? err.message : `refused for ${refused.join(', ')}`}`);
          client.end(true);
          resolve(false);
        } else resolve(true);
      }),
    );
  }

  /** Resolves when the broker acknowledged (QoS 1) or the packet was written (QoS 0). */
  publish(topic: string, payload: string | Buffer, qos: 0 | 1, retain = false, extra?: PublishExtra): Promise<void> {
    const client = this.client;
    if (!client || this.state !== 'connected') return Promise.reject(new Error('MQTT not connected'));
    const v5 = this.opts.protocolVersion === 5;
    const properties = extra?.contentType !== undefined && v5 ? { contentType: extra.contentType } : undefined;
    const cause = extra?.cause ?? causeOfTopic(topic);
    const size = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length;
    const aliased = this.alias(topic);
    const props = (properties ? 3 + Buffer.byteLength(properties.contentType) : 0) + (aliased === undefined ? 0 : 3);
    this.meter.publish(cause, publishBytes(aliased === 'known' ? '' : topic, size, qos, v5, props));
    return new Promise((resolve, reject) => {
      client.publish(topic, payload, properties ? { qos, retain, properties } : { qos, retain }, (err) => {
        if (err) return reject(err);
        if (qos === 1) this.meter.receive(cause, PUBACK_BYTES);
        resolve();
      });
    });
  }

  /** What mqtt.js's autoAssignTopicAlias does with the topic: undefined (no alias), 'new' (topic and alias), 'known' (alias only). */
  private alias(topic: string): 'new' | 'known' | undefined {
    const a = this.aliases;
    if (a.max <= 0) return undefined;
    if (a.topics.has(topic)) {
      a.topics.delete(topic);
      a.topics.set(topic, true);
      return 'known';
    }
    if (a.topics.size >= a.max) a.topics.delete(a.topics.keys().next().value!);
    a.topics.set(topic, true);
    return 'new';
  }

  /**
   * Resolves once the broker has handled every packet this connection sent before it. A broker reads one
   * connection's packets in order and answers an UNSUBSCRIBE only after it (MQTT 3.1.1 3.10.4, 5.0 3.10.4),
   * so the UNSUBACK of a filter nobody subscribed proves that the QoS 0 publishes before it arrived: this is
   * how a profile whose data is QoS 0 (Sparkplug) still learns the broker took it. Costs about 20 bytes a
   * round trip and needs no ACL entry; rejects when the connection is lost first.
   */
  fence(): Promise<void> {
    const client = this.client;
    if (!client || this.state !== 'connected') return Promise.reject(new Error('MQTT not connected'));
    return new Promise((resolve, reject) => client.unsubscribe(FENCE_FILTER, (err) => (err && !isNoSubscription(err) ? reject(err) : resolve())));
  }

  /** Publishes a last message (the offline status) if connected, then disconnects cleanly. */
  async close(last?: { topic: string; payload: string | Buffer; qos?: 0 | 1; retain?: boolean }, timeoutMs = 2000): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.timer);
    clearInterval(this.probeTimer);
    const client = this.client;
    this.client = undefined;
    if (client) {
      if (last && this.state === 'connected') {
        await Promise.race([
          new Promise<void>((resolve) => client.publish(last.topic, last.payload, { qos: last.qos ?? 1, retain: last.retain ?? true }, () => resolve())),
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

/** A filter no one subscribes to: its UNSUBSCRIBE only fences the packets before it. */
const FENCE_FILTER = 'fieldgate/fence';

/** MQTT 5 answers an UNSUBSCRIBE of an unknown filter with reason 0x11, which MQTT.js reports as an error. */
function isNoSubscription(err: Error): boolean {
  return /no subscription/i.test(err.message) || (err as { code?: number }).code === 17;
}

function willOf(will: SessionOptions['will'], delayS: number): IClientOptions['will'] {
  const w = typeof will === 'function' ? will() : will;
  return {
    topic: w.topic, payload: typeof w.payload === 'string' ? Buffer.from(w.payload) : w.payload, qos: w.qos ?? 1, retain: w.retain ?? true,
    ...(delayS > 0 ? { properties: { willDelayInterval: delayS } } : {}),
  };
}
