/**
 * A Modbus TCP peer whose every byte the test chooses, on a random 127.0.0.1 port: good replies, replies with
 * the wrong unit, function code or length, a reply cut off as the peer closes, a peer that closes at once, and
 * one that floods zeros and one that trickles a byte every 50 ms, both ignoring our FIN. It counts connections,
 * the ones the gateway let go, and the ones still open (a socket the gateway only half-closed stays open here).
 */
import net, { type AddressInfo } from 'node:net';

export type PeerMode = 'good' | 'wrong-unit' | 'wrong-fc' | 'short' | 'mid-reply' | 'close-at-once' | 'flood' | 'trickle';

export interface ScriptedModbusPeer {
  port: number;
  mode: PeerMode;
  /** Connections accepted. */
  connections: number;
  /** Connections that ended from the gateway's side (its FIN or RST) while this peer still held them. */
  closedByGateway: number;
  /** Connections not yet closed on both sides. */
  open: number;
  /** Read requests received. */
  requests: number;
  /** Bytes the flood handed to the kernel. */
  floodBytes: number;
  close(): Promise<void>;
}

const ZEROS = Buffer.alloc(64 * 1024);

/** The reply to a read of `count` registers or bits; every register holds 0x0102 + its index. */
function reply(txn: number, unit: number, fc: number, count: number): Buffer {
  const data = fc <= 2 ? Buffer.alloc(Math.ceil(count / 8), 0x55) : Buffer.alloc(count * 2);
  if (fc > 2) for (let i = 0; i < count; i++) data.writeUInt16BE(0x0102 + i, i * 2);
  const pdu = Buffer.concat([Buffer.from([unit, fc, data.length]), data]);
  const head = Buffer.alloc(6);
  head.writeUInt16BE(txn, 0);
  head.writeUInt16BE(0, 2);
  head.writeUInt16BE(pdu.length, 4);
  return Buffer.concat([head, pdu]);
}

export async function startScriptedModbusPeer(mode: PeerMode, port = 0): Promise<ScriptedModbusPeer> {
  const live = new Set<net.Socket>();
  // Half-open allowed: a flooding peer that ignores our FIN keeps the connection alive until we destroy it.
  const server = net.createServer({ allowHalfOpen: true }, (s) => serve(s));
  const peer: ScriptedModbusPeer = {
    port: 0,
    mode,
    connections: 0,
    closedByGateway: 0,
    requests: 0,
    floodBytes: 0,
    get open() {
      return live.size;
    },
    close: async () => {
      for (const s of live) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };

  function serve(s: net.Socket): void {
    peer.connections++;
    live.add(s);
    let ended = false;
    const gone = () => {
      if (ended) return;
      ended = true;
      peer.closedByGateway++;
    };
    s.on('error', gone);
    s.on('end', gone);
    s.on('close', () => {
      gone();
      live.delete(s);
    });
    const hangUp = () => {
      ended = true;
      s.destroy();
    };
    if (peer.mode === 'close-at-once') return hangUp();
    if (peer.mode === 'flood') {
      const pump = () => {
        while (!s.destroyed && s.writable) {
          peer.floodBytes += ZEROS.length;
          if (!s.write(ZEROS)) return void s.once('drain', pump);
        }
      };
      pump();
      return;
    }
    if (peer.mode === 'trickle') {
      // Writes on after our FIN: only a destroyed socket makes them fail (RST), and so this one close.
      const timer = setInterval(() => s.write(Buffer.from([0])), 50);
      s.on('close', () => clearInterval(timer));
      return;
    }
    let held = Buffer.alloc(0);
    s.on('data', (chunk) => {
      held = Buffer.concat([held, chunk]);
      while (held.length >= 12) {
        const req = held.subarray(0, 12);
        held = held.subarray(12);
        peer.requests++;
        const txn = req.readUInt16BE(0);
        const unit = req[6]!;
        const fc = req[7]!;
        const count = req.readUInt16BE(10);
        switch (peer.mode) {
          case 'good':
            s.write(reply(txn, unit, fc, count));
            break;
          case 'wrong-unit':
            s.write(reply(txn, (unit % 247) + 1, fc, count));
            break;
          case 'wrong-fc':
            s.write(reply(txn, unit, fc === 4 ? 3 : 4, count));
            break;
          case 'short': {
            // One byte short of what the byte count announces, with an MBAP length that matches what is sent.
            const r = reply(txn, unit, fc, count);
            const cut = Buffer.from(r.subarray(0, r.length - 1));
            cut.writeUInt16BE(cut.length - 6, 4);
            s.write(cut);
            break;
          }
          case 'mid-reply':
            s.write(reply(txn, unit, fc, count).subarray(0, 5));
            hangUp();
            return;
          default:
            break; // silent, or switched to a mode that does not read
        }
      }
    });
  }

  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  peer.port = (server.address() as AddressInfo).port;
  return peer;
}
