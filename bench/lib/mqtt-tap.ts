/**
 * A TCP relay between the gateway and the broker that reads the MQTT packets going through it: every PUBLISH the
 * gateway sends (topic, packet id, payload) and the time the broker's PUBACK for it passed back toward the gateway.
 * What an alarm benchmark needs to time "to the PUBACK" from outside the gateway's process, on the same clock. MQTT
 * 3.1.1 and 5 (of a v5 PUBLISH's properties only the topic alias is read).
 */
import net from 'node:net';

export interface TappedPublish {
  topic: string;
  payload: Buffer;
  qos: number;
  /** Date.now() when the PUBLISH reached the relay. */
  sentAt: number;
  /** Date.now() when its PUBACK from the broker reached the relay (QoS 1). */
  pubackAt?: number;
}

export interface MqttTap {
  readonly url: string;
  /** Every PUBLISH whose topic passes `keep`, in the order the gateway sent them. */
  readonly publishes: TappedPublish[];
  /** PUBLISH packets seen per topic suffix (e.g. telemetry), kept or not. */
  counts: Map<string, number>;
  close(): Promise<void>;
}

/** Splits a byte stream into MQTT packets: calls `packet(type, flags, body)` for each complete one. */
function framer(packet: (type: number, flags: number, body: Buffer) => void): (chunk: Buffer) => void {
  let buf: Buffer<ArrayBufferLike> = Buffer.alloc(0);
  return (chunk) => {
    buf = buf.length > 0 ? Buffer.concat([buf, chunk]) : chunk;
    for (;;) {
      if (buf.length < 2) return;
      let len = 0;
      let mul = 1;
      let i = 1;
      for (; i < 5; i++) {
        if (i >= buf.length) return;
        const b = buf[i]!;
        len += (b & 0x7f) * mul;
        mul *= 128;
        if ((b & 0x80) === 0) break;
      }
      const start = i + 1;
      if (buf.length < start + len) return;
      packet(buf[0]! >> 4, buf[0]! & 0x0f, buf.subarray(start, start + len));
      buf = buf.subarray(start + len);
    }
  };
}

function varint(b: Buffer, at: number): [value: number, next: number] {
  let v = 0;
  let mul = 1;
  for (let i = at; i < at + 4; i++) {
    v += (b[i]! & 0x7f) * mul;
    mul *= 128;
    if ((b[i]! & 0x80) === 0) return [v, i + 1];
  }
  return [v, at + 4];
}

/** The Topic Alias property (0x23) among a PUBLISH's properties in [at, end), if any. */
function topicAlias(b: Buffer, at: number, end: number): number | undefined {
  while (at < end) {
    const id = b[at++]!;
    if (id === 0x23) return b.readUInt16BE(at);
    if (id === 0x01) at += 1;
    else if (id === 0x02) at += 4;
    else if (id === 0x03 || id === 0x08 || id === 0x09) at += 2 + b.readUInt16BE(at);
    else if (id === 0x0b) at = varint(b, at)[1];
    else if (id === 0x26) {
      at += 2 + b.readUInt16BE(at);
      at += 2 + b.readUInt16BE(at);
    } else return undefined;
  }
  return undefined;
}

export async function startTap(brokerPort: number, protocolVersion: 4 | 5, keep: (topic: string) => boolean): Promise<MqttTap> {
  const publishes: TappedPublish[] = [];
  const counts = new Map<string, number>();
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect({ host: '127.0.0.1', port: brokerPort });
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    sockets.add(client).add(upstream);
    const waiting = new Map<number, TappedPublish>();
    const aliases = new Map<number, string>();
    const fromClient = framer((type, flags, body) => {
      if (type !== 3) return;
      const qos = (flags >> 1) & 3;
      const tlen = body.readUInt16BE(0);
      let topic = body.toString('utf8', 2, 2 + tlen);
      let at = 2 + tlen;
      const id = qos > 0 ? body.readUInt16BE(at) : -1;
      if (qos > 0) at += 2;
      if (protocolVersion === 5) {
        const [plen, next] = varint(body, at);
        // A topic alias (MQTT 5): the first PUBLISH names topic and alias, later ones only the alias.
        const alias = topicAlias(body, next, next + plen);
        if (alias !== undefined) {
          if (topic) aliases.set(alias, topic);
          else topic = aliases.get(alias) ?? '';
        }
        at = next + plen;
      }
      const suffix = topic.slice(topic.lastIndexOf('/') + 1);
      counts.set(suffix, (counts.get(suffix) ?? 0) + 1);
      if (!keep(topic)) return;
      const p: TappedPublish = { topic, payload: Buffer.from(body.subarray(at)), qos, sentAt: Date.now() };
      publishes.push(p);
      if (qos > 0) waiting.set(id, p);
    });
    const fromBroker = framer((type, _flags, body) => {
      if (type !== 4) return;
      const p = waiting.get(body.readUInt16BE(0));
      if (!p) return;
      p.pubackAt = Date.now();
      waiting.delete(body.readUInt16BE(0));
    });
    client.on('data', (d: Buffer) => {
      fromClient(d);
      upstream.write(d);
    });
    upstream.on('data', (d: Buffer) => {
      fromBroker(d);
      client.write(d);
    });
    const end = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  const port = await new Promise<number>((ok) => server.listen(0, '127.0.0.1', () => ok((server.address() as net.AddressInfo).port)));
  return {
    url: `mqtt://127.0.0.1:${port}`,
    publishes,
    counts,
    close: () =>
      new Promise((done) => {
        for (const s of sockets) s.destroy();
        server.close(() => done());
      }),
  };
}
