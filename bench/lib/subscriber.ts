/**
 * The consumer end of the end-to-end benchmarks: a QoS 1 subscriber with a persistent session that counts what
 * arrives. For fieldgate it decodes every telemetry payload with decodeTelemetry and the dictionary of the
 * retained birth; for Node-RED it reads one value per message. Either way it marks every seq (lost and duplicate
 * counts), keeps a latency histogram (receive time - sample ts) and the bytes of each message.
 */
import mqtt, { type IPublishPacket, type MqttClient } from 'mqtt';
import { decodeTelemetry, type DictionaryEntry } from '../../src/uplink/payload.js';

export type Flavor = 'fieldgate' | 'nodered';

/** Latency in whole milliseconds up to a minute; later arrivals land in the last bucket. */
export class Histogram {
  private readonly buckets = new Uint32Array(60_001);
  count = 0;

  add(ms: number): void {
    this.buckets[Math.min(60_000, Math.max(0, Math.round(ms)))]!++;
    this.count++;
  }

  percentile(p: number): number {
    if (this.count === 0) return NaN;
    const rank = Math.ceil((p / 100) * this.count);
    let seen = 0;
    for (let i = 0; i < this.buckets.length; i++) {
      seen += this.buckets[i]!;
      if (seen >= rank) return i;
    }
    return 60_000;
  }

  reset(): void {
    this.buckets.fill(0);
    this.count = 0;
  }
}

/** A bitmap of seqs that grows as needed. */
class SeqSet {
  private bits = new Uint8Array(1 << 20);

  /** True when the seq was new. */
  add(seq: number): boolean {
    while (seq >= this.bits.length) {
      const next = new Uint8Array(this.bits.length * 2);
      next.set(this.bits);
      this.bits = next;
    }
    if (this.bits[seq]) return false;
    this.bits[seq] = 1;
    return true;
  }

  has(seq: number): boolean {
    return seq < this.bits.length && this.bits[seq] === 1;
  }
}

const SLOT_MS = 100;

const varintLength = (n: number) => (n < 128 ? 1 : n < 16_384 ? 2 : n < 2_097_152 ? 3 : 4);

/**
 * Bytes of an MQTT 5 QoS 1 PUBLISH carrying this topic and payload and no properties: fixed header (1 byte +
 * remaining length), topic (2 + n), packet id (2), properties length (1), payload. The measuring properties the
 * Node-RED flow adds (ts, seq) are left out, so both sides are counted as they would be sent in production.
 */
export function publishBytes(topicBytes: number, payloadBytes: number): number {
  const remaining = 2 + topicBytes + 2 + 1 + payloadBytes;
  return 1 + varintLength(remaining) + remaining;
}

export interface Counts {
  values: number;
  messages: number;
  payloadBytes: number;
  topicBytes: number;
  mqttBytes: number;
}

export class Subscriber {
  readonly latency = new Histogram();
  readonly counts: Counts = { values: 0, messages: 0, payloadBytes: 0, topicBytes: 0, mqttBytes: 0 };
  duplicates = 0;
  undecoded = 0;
  unknownPoints = 0;
  eventSeqs = 0;
  minSeq = Infinity;
  maxSeq = 0;
  lastArrival = 0;
  /** Values by the 100 ms slot of their sample ts, to count what was acquired in a window. */
  readonly bySlot = new Map<number, number>();
  private readonly seqs = new SeqSet();
  private readonly dictionary = new Map<number, DictionaryEntry>();
  birthSeen = false;
  /** Payload bytes of the last birth (the point dictionary), sent once per connection. */
  birthBytes = 0;

  private constructor(
    readonly flavor: Flavor,
    private readonly client: MqttClient,
  ) {}

  static async connect(url: string, flavor: Flavor, topics: string[]): Promise<Subscriber> {
    const client = mqtt.connect(url, {
      clientId: `bench-sub-${flavor}-${process.pid}-${Date.now()}`,
      protocolVersion: 5,
      clean: false,
      properties: { sessionExpiryInterval: 3600 },
      reconnectPeriod: 500,
    });
    const sub = new Subscriber(flavor, client);
    client.on('message', (t, payload, packet) => sub.onMessage(t, payload, packet));
    client.on('error', () => {}); // a broker outage is part of the benchmark; mqtt.js reconnects
    await new Promise<void>((resolve, reject) => client.once('connect', () => resolve()).once('error', reject));
    await client.subscribeAsync(topics, { qos: 1 });
    return sub;
  }

  /** Distinct values not received between the lowest and highest seq seen (events fill their own seqs). */
  lost(): number {
    return this.maxSeq >= this.minSeq ? this.maxSeq - this.minSeq + 1 - this.counts.values - this.eventSeqs : 0;
  }

  /** Values whose sample ts falls in [fromMs, toMs), to the 100 ms. */
  acquiredBetween(fromMs: number, toMs: number): number {
    let n = 0;
    for (const [slot, c] of this.bySlot) if (slot * SLOT_MS >= fromMs && slot * SLOT_MS < toMs) n += c;
    return n;
  }

  /** Resolves once nothing has arrived for quietMs (or after timeoutMs). */
  async settle(quietMs: number, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline && Date.now() - this.lastArrival < quietMs) await new Promise((r) => setTimeout(r, 100));
  }

  async close(): Promise<void> {
    await this.client.endAsync(true);
  }

  private onMessage(topic: string, payload: Buffer, packet: IPublishPacket): void {
    const now = Date.now();
    this.lastArrival = now;
    if (this.flavor === 'nodered') {
      const props = packet.properties?.userProperties as Record<string, string> | undefined;
      this.count(topic, payload);
      this.value(Number(props?.seq), Number(props?.ts), now);
      return;
    }
    const text = payload.toString();
    if (topic.endsWith('/status')) {
      const msg = JSON.parse(text) as { state: string; points?: [number, string, string, string | null, string | null][] };
      if (msg.state === 'online' && msg.points) {
        for (const [index, device, point] of msg.points) this.dictionary.set(index, { index, device, point });
        this.birthSeen = true;
        this.birthBytes = payload.length;
      }
    } else if (topic.endsWith('/telemetry')) {
      let samples;
      try {
        samples = decodeTelemetry(text, (i) => this.dictionary.get(i));
      } catch {
        this.undecoded++;
        return;
      }
      this.count(topic, payload);
      for (const s of samples) {
        if (s.device === '?') this.unknownPoints++;
        this.value(s.seq, s.ts, now);
      }
    } else {
      // Events share the samples' seq space: their seqs are not lost samples.
      const seq = (JSON.parse(text) as { seq?: number }).seq;
      if (typeof seq === 'number' && this.seqs.add(seq)) {
        this.eventSeqs++;
        this.span(seq);
      }
    }
  }

  private count(topic: string, payload: Buffer): void {
    const t = Buffer.byteLength(topic);
    this.counts.messages++;
    this.counts.topicBytes += t;
    this.counts.payloadBytes += payload.length;
    this.counts.mqttBytes += publishBytes(t, payload.length);
  }

  private value(seq: number, ts: number, now: number): void {
    if (!Number.isSafeInteger(seq) || !this.seqs.add(seq)) {
      this.duplicates++;
      return;
    }
    this.counts.values++;
    this.span(seq);
    this.latency.add(now - ts);
    const slot = Math.floor(ts / SLOT_MS);
    this.bySlot.set(slot, (this.bySlot.get(slot) ?? 0) + 1);
  }

  private span(seq: number): void {
    if (seq < this.minSeq) this.minSeq = seq;
    if (seq > this.maxSeq) this.maxSeq = seq;
  }
}
