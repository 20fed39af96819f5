/**
 * A Modbus RTU slave whose every unit the test scripts: it answers reads of holding or input registers
 * (every register holds 0x3FC0 0x0000 + its index, so a float32 ABCD at address 0 reads 1.5), stays silent,
 * answers with a corrupted CRC, or answers exception 2. It speaks on any byte stream: the far end of a socat pty
 * (the real serial path) or a TCP socket (RTU over TCP). Counts the requests it saw per unit.
 */
import { SerialPort } from 'serialport';
import type { Duplex } from 'node:stream';
import { crc16Modbus } from '../../src/sources/line/checksum.js';

export type UnitMode = 'good' | 'silent' | 'bad-crc' | 'exception-2';

export interface RtuPeer {
  modes: Map<number, UnitMode>;
  requests: Map<number, number>;
  close(): Promise<void>;
}

function withCrc(body: number[]): Buffer {
  const b = Buffer.alloc(body.length + 2);
  Buffer.from(body).copy(b);
  const c = crc16Modbus(b, 0, body.length);
  b.writeUInt16LE(c, body.length);
  return b;
}

/** The reply to one request frame, or undefined for silence. */
export function rtuReply(frame: Buffer, mode: UnitMode | undefined): Buffer | undefined {
  const [unit, fc] = [frame[0]!, frame[1]!];
  if (!mode || mode === 'silent') return undefined;
  if (mode === 'exception-2') return withCrc([unit, fc | 0x80, 2]);
  const address = frame.readUInt16BE(2);
  const count = frame.readUInt16BE(4);
  const data: number[] = [];
  for (let i = 0; i < count; i++) {
    const v = (address + i) % 2 === 0 ? 0x3fc0 : 0x0000;
    data.push(v >> 8, v & 0xff);
  }
  const reply = withCrc([unit, fc, data.length, ...data]);
  if (mode === 'bad-crc') reply[reply.length - 1]! ^= 0x5a;
  return reply;
}

/** Serves RTU requests arriving on `stream` (8-byte read frames; anything unparsable is dropped). */
export function serveRtu(stream: Duplex, modes: Map<number, UnitMode>, requests: Map<number, number>): void {
  let buf = Buffer.alloc(0);
  stream.on('data', (chunk: Buffer) => {
    buf = Buffer.concat([buf, chunk]);
    while (buf.length >= 8) {
      const frame = buf.subarray(0, 8);
      if (crc16Modbus(frame, 0, 6) !== frame.readUInt16LE(6) || frame[1]! < 1 || frame[1]! > 4) {
        buf = buf.subarray(1); // out of step: resynchronise byte by byte
        continue;
      }
      buf = buf.subarray(8);
      const unit = frame[0]!;
      requests.set(unit, (requests.get(unit) ?? 0) + 1);
      const reply = rtuReply(Buffer.from(frame), modes.get(unit));
      if (reply) stream.write(reply);
    }
  });
  stream.on('error', () => {});
}

/** An RTU slave on a serial device (the far end of a socat pty pair). */
export async function startRtuPeerOnSerial(path: string, modes: Record<number, UnitMode>): Promise<RtuPeer> {
  const port = new SerialPort({ path, baudRate: 19200, autoOpen: false });
  await new Promise<void>((resolve, reject) => port.open((err) => (err ? reject(err) : resolve())));
  const peer: RtuPeer = {
    modes: new Map(Object.entries(modes).map(([k, v]) => [Number(k), v])),
    requests: new Map(),
    close: () => new Promise<void>((resolve) => (port.isOpen ? port.close(() => resolve()) : resolve())),
  };
  serveRtu(port as unknown as Duplex, peer.modes, peer.requests);
  return peer;
}
