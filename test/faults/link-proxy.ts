/**
 * A TCP proxy between gateway and broker that cuts (RST) or black-holes the link, and reads the MQTT packets
 * passing through to record which seqs the broker PUBACKed: what the broker, not the gateway, answers for.
 */
import net from 'node:net';
import { SeqSet } from '../../src/uplink/seqset.js';

// ---------------------------------------------------------------- MQTT tap

/** Reads MQTT packets off one direction of a byte stream (fixed header, variable-length remaining length). */
class Framer {
  private buf: Buffer = Buffer.alloc(0);
  constructor(private readonly onPacket: (type: number, flags: number, body: Buffer) => void) {}

  push(chunk: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    for (;;) {
      let len = 0;
      let i = 1;
      for (let mul = 1; ; i++, mul *= 128) {
        if (i >= this.buf.length) return;
        len += (this.buf[i]! & 127) * mul;
        if ((this.buf[i]! & 128) === 0) break;
      }
      const end = i + 1 + len;
      if (this.buf.length < end) return;
      this.onPacket(this.buf[0]! >> 4, this.buf[0]! & 15, this.buf.subarray(i + 1, end));
      this.buf = this.buf.subarray(end);
    }
  }
}

function varint(buf: Buffer, at: number): [value: number, bytes: number] {
  let value = 0;
  let n = 0;
  for (let mul = 1; ; mul *= 128) {
    const b = buf[at + n++]!;
    value += (b & 127) * mul;
    if ((b & 128) === 0) return [value, n];
  }
}

/** The (epoch, seq range) a gateway publish carries: compact or json telemetry, or a stored event. */
export function seqRange(payload: Buffer): { ep: string; from: number; to: number } | undefined {
  let msg: Record<string, unknown>;
  try {
    msg = JSON.parse(payload.toString('utf8')) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  if (typeof msg?.ep !== 'string') return undefined;
  if (Number.isSafeInteger(msg.s) && Array.isArray(msg.d)) return { ep: msg.ep, from: msg.s as number, to: (msg.s as number) + msg.d.length - 1 };
  if (Array.isArray(msg.samples) && msg.samples.length > 0) {
    const seqs = (msg.samples as Array<{ seq: number }>).map((s) => s.seq);
    return { ep: msg.ep, from: Math.min(...seqs), to: Math.max(...seqs) };
  }
  if (Number.isSafeInteger(msg.seq)) return { ep: msg.ep, from: msg.seq as number, to: msg.seq as number };
  return undefined;
}

/** Watches one proxied connection: QoS 1 PUBLISH packet ids gateway -> broker, PUBACKs back. */
function tap(acked: Map<string, SeqSet>, onError: (err: unknown) => void) {
  let level = 4;
  const inflight = new Map<number, { ep: string; from: number; to: number }>();
  const safe = (f: (type: number, flags: number, body: Buffer) => void) => (type: number, flags: number, body: Buffer) => {
    try {
      f(type, flags, body);
    } catch (err) {
      onError(err);
    }
  };
  const up = new Framer(safe((type, flags, body) => {
    if (type === 1) level = body[2 + body.readUInt16BE(0)]!;
    if (type !== 3 || ((flags >> 1) & 3) !== 1) return;
    let at = 2 + body.readUInt16BE(0);
    const id = body.readUInt16BE(at);
    at += 2;
    if (level === 5) {
      const [props, n] = varint(body, at);
      at += n + props;
    }
    const range = seqRange(body.subarray(at));
    if (range) inflight.set(id, range);
  }));
  const down = new Framer(safe((type, _flags, body) => {
    if (type !== 4) return;
    const id = body.readUInt16BE(0);
    const reason = level === 5 && body.length > 2 ? body[2]! : 0;
    const range = inflight.get(id);
    inflight.delete(id);
    if (!range || reason >= 0x80) return;
    const set = acked.get(range.ep) ?? new SeqSet();
    acked.set(range.ep, set);
    for (let s = range.from; s <= range.to; s++) set.add(s);
  }));
  return { up: (c: Buffer) => up.push(c), down: (c: Buffer) => down.push(c) };
}

// ---------------------------------------------------------------- link proxy

/** pass: forward; refuse: new connections are reset at once; blackhole: nothing is forwarded, nothing is closed. */
export type ProxyMode = 'pass' | 'refuse' | 'blackhole';

export interface LinkProxy {
  readonly port: number;
  readonly url: string;
  /** Seqs the broker PUBACKed, per epoch: what the broker took responsibility for. */
  readonly acked: Map<string, SeqSet>;
  readonly accepted: number;
  readonly tapErrors: unknown[];
  setMode(mode: ProxyMode): void;
  /** Resets (RST) every open connection, both sides; returns how many there were. */
  cut(): number;
  close(): Promise<void>;
}

interface Conn {
  d: net.Socket;
  u: net.Socket;
  /** Black-holed for good: a half-open link never comes back, the gateway must dial again. */
  holed: boolean;
}

export async function startProxy(targetPort: number): Promise<LinkProxy> {
  const conns = new Set<Conn>();
  const acked = new Map<string, SeqSet>();
  const tapErrors: unknown[] = [];
  let mode: ProxyMode = 'pass';
  let accepted = 0;
  const server = net.createServer((d) => {
    accepted++;
    d.on('error', () => {});
    if (mode === 'refuse') return void d.resetAndDestroy();
    const u = net.connect(targetPort, '127.0.0.1');
    u.on('error', () => {});
    const c: Conn = { d, u, holed: mode === 'blackhole' };
    conns.add(c);
    const t = tap(acked, (err) => tapErrors.push(err));
    d.on('data', (chunk: Buffer) => {
      if (c.holed || u.destroyed) return;
      t.up(chunk);
      u.write(chunk);
    });
    // The broker's answers are tapped even when black-holed: it has accepted what it PUBACKs.
    u.on('data', (chunk: Buffer) => {
      t.down(chunk);
      if (!c.holed && !d.destroyed) d.write(chunk);
    });
    // In a black hole no FIN gets through either way: each side must find out by its own keepalive.
    d.on('close', () => {
      if (!c.holed) u.destroy();
      if (u.destroyed) conns.delete(c);
    });
    u.on('close', () => {
      if (!c.holed) d.destroy();
      if (d.destroyed) conns.delete(c);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    url: `mqtt://127.0.0.1:${port}`,
    acked,
    tapErrors,
    get accepted() {
      return accepted;
    },
    setMode(next) {
      mode = next;
      if (next === 'blackhole') for (const c of conns) c.holed = true;
    },
    cut() {
      const n = conns.size;
      for (const c of conns) {
        c.d.resetAndDestroy();
        c.u.resetAndDestroy();
      }
      conns.clear();
      return n;
    },
    close: async () => {
      for (const c of conns) {
        c.d.destroy();
        c.u.destroy();
      }
      conns.clear();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
