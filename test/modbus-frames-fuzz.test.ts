/**
 * Fuzzing the Modbus response path: a fake device on 127.0.0.1 answers each request of the real ModbusLink
 * (modbus-serial underneath) with a generated frame: valid, valid in pieces, an exception, a wrong byte count,
 * a wrong transaction id or unit or function, truncated, trailing garbage, random bytes or nothing. Whatever
 * comes back, a read gives exactly the registers asked for or a ModbusError of a known kind: never another
 * exception, never a short array that decoding would read past, never a dead link.
 */
import { createServer, type Server, type Socket } from 'node:net';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ModbusError } from '../src/sources/modbus/errors.js';
import { ModbusLink } from '../src/sources/modbus/link.js';

const TIMEOUT_MS = 120;
const KINDS = new Set(['exception', 'timeout', 'crc', 'frame', 'disconnected', 'connect']);

/** Modbus CRC-16 (poly 0xA001), low byte first on the wire. */
function crc16(buf: Buffer): number {
  let crc = 0xffff;
  for (const b of buf) {
    crc ^= b;
    for (let i = 0; i < 8; i++) crc = crc & 1 ? (crc >>> 1) ^ 0xa001 : crc >>> 1;
  }
  return crc;
}

type Reply =
  | { kind: 'valid'; pieces: number }
  | { kind: 'exception'; code: number }
  | { kind: 'byteCount'; n: number }
  | { kind: 'txid' }
  | { kind: 'unit' }
  | { kind: 'function' }
  | { kind: 'truncate'; keep: number }
  | { kind: 'trailing'; extra: Uint8Array }
  | { kind: 'random'; bytes: Uint8Array }
  | { kind: 'badCrc' }
  | { kind: 'silence' };

const replyArb: fc.Arbitrary<Reply> = fc.oneof(
  { arbitrary: fc.record({ kind: fc.constant('valid' as const), pieces: fc.integer({ min: 1, max: 4 }) }), weight: 4 },
  fc.record({ kind: fc.constant('exception' as const), code: fc.integer({ min: 1, max: 255 }) }),
  fc.record({ kind: fc.constant('byteCount' as const), n: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('txid' as const) }),
  fc.record({ kind: fc.constant('unit' as const) }),
  fc.record({ kind: fc.constant('function' as const) }),
  fc.record({ kind: fc.constant('truncate' as const), keep: fc.integer({ min: 0, max: 20 }) }),
  fc.record({ kind: fc.constant('trailing' as const), extra: fc.uint8Array({ minLength: 1, maxLength: 40 }) }),
  fc.record({ kind: fc.constant('random' as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 300 }) }),
  fc.record({ kind: fc.constant('badCrc' as const) }),
  { arbitrary: fc.record({ kind: fc.constant('silence' as const) }), weight: 1 },
);

interface Request {
  txid: number;
  unit: number;
  fc: number;
  count: number;
}

/** The PDU a correct device would send: function code, byte count and the register or bit data. */
function goodPdu(req: Request, registers: number[]): Buffer {
  if (req.fc <= 2) {
    const bytes = Buffer.alloc(Math.ceil(Math.min(req.count, 2000) / 8));
    for (let i = 0; i < bytes.length * 8; i++) bytes[i >> 3]! |= ((registers[i] ?? 0) & 1) << (i & 7);
    return Buffer.concat([Buffer.from([req.fc, bytes.length]), bytes]);
  }
  const data = Buffer.alloc(Math.min(req.count, 125) * 2);
  for (let i = 0; i < data.length / 2; i++) data.writeUInt16BE(registers[i] ?? 0, i * 2);
  return Buffer.concat([Buffer.from([req.fc, data.length]), data]);
}

/** Wraps a PDU as the transport frames it: MBAP for Modbus TCP, unit + CRC for RTU over TCP. */
function frame(rtu: boolean, req: Request, pdu: Buffer, o: { txid?: number; unit?: number; badCrc?: boolean } = {}): Buffer {
  const unit = o.unit ?? req.unit;
  if (rtu) {
    const body = Buffer.concat([Buffer.from([unit]), pdu]);
    const crc = crc16(body) ^ (o.badCrc ? 0x5a5a : 0);
    return Buffer.concat([body, Buffer.from([crc & 0xff, crc >> 8])]);
  }
  const head = Buffer.alloc(7);
  head.writeUInt16BE(o.txid ?? req.txid, 0);
  head.writeUInt16BE(0, 2);
  head.writeUInt16BE(pdu.length + 1, 4);
  head[6] = unit;
  return Buffer.concat([head, pdu]);
}

function replyBytes(rtu: boolean, r: Reply, req: Request, registers: number[]): Buffer[] {
  const good = frame(rtu, req, goodPdu(req, registers));
  switch (r.kind) {
    case 'valid': {
      // The same frame in `pieces` writes, as a slow serial gateway delivers it.
      const cuts = Array.from({ length: r.pieces - 1 }, (_, i) => Math.floor(((i + 1) * good.length) / r.pieces));
      return [0, ...cuts].map((start, i) => good.subarray(start, cuts[i] ?? good.length));
    }
    case 'exception':
      return [frame(rtu, req, Buffer.from([req.fc | 0x80, r.code]))];
    case 'byteCount': {
      const pdu = goodPdu(req, registers);
      const data = Buffer.alloc(r.n, 0x11);
      return [frame(rtu, req, Buffer.concat([Buffer.from([pdu[0]!, r.n]), data]))];
    }
    case 'txid':
      return [frame(rtu, req, goodPdu(req, registers), { txid: (req.txid + 1) & 0xffff })];
    case 'unit':
      return [frame(rtu, req, goodPdu(req, registers), { unit: (req.unit % 247) + 1 })];
    case 'function': {
      const pdu = goodPdu(req, registers);
      pdu[0] = req.fc === 3 ? 4 : 3;
      return [frame(rtu, req, pdu)];
    }
    case 'truncate':
      return [good.subarray(0, Math.min(r.keep, good.length - 1))];
    case 'trailing':
      return [Buffer.concat([good, Buffer.from(r.extra)])];
    case 'random':
      return [Buffer.from(r.bytes)];
    case 'badCrc':
      return [rtu ? frame(rtu, req, goodPdu(req, registers), { badCrc: true }) : good];
    case 'silence':
      return [];
  }
}

/** A device that answers the next request with whatever the current property run decided. */
class FuzzDevice {
  readonly server: Server;
  port = 0;
  next: (req: Request) => Buffer[] = () => [];
  private sockets = new Set<Socket>();

  constructor(private readonly rtu: boolean) {
    this.server = createServer((socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
      socket.on('error', () => {});
      let buf = Buffer.alloc(0);
      socket.on('data', (d) => {
        buf = Buffer.concat([buf, d]);
        // Requests are fixed size for reads: MBAP 7 + 5 bytes, or RTU 8 bytes.
        const size = this.rtu ? 8 : 12;
        while (buf.length >= size) {
          const raw = buf.subarray(0, size);
          buf = buf.subarray(size);
          const req: Request = this.rtu
            ? { txid: 0, unit: raw[0]!, fc: raw[1]!, count: raw.readUInt16BE(4) }
            : { txid: raw.readUInt16BE(0), unit: raw[6]!, fc: raw[7]!, count: raw.readUInt16BE(10) };
          const pieces = this.next(req);
          pieces.forEach((p, i) => setTimeout(() => socket.writable && socket.write(p), i * 5));
        }
      });
    });
  }

  async listen(): Promise<void> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', () => r()));
    this.port = (this.server.address() as { port: number }).port;
  }

  /** Bytes nobody asked for, on every connection (line noise, another master's traffic). */
  async blast(bytes: Buffer, times: number): Promise<void> {
    for (let i = 0; i < times; i++) {
      for (const s of this.sockets) s.write(bytes);
      await new Promise((r) => setImmediate(r));
    }
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise((r) => this.server.close(r));
  }
}

// The two transports at the same time, each with its device and link; the tests of one transport in order.
for (const transport of ['tcp', 'rtu-over-tcp'] as const) {
  describe.concurrent(`Modbus response fuzz over ${transport}`, () => {
    const device = new FuzzDevice(transport === 'rtu-over-tcp');
    let link: ModbusLink;
    beforeAll(async () => {
      await device.listen();
      link = new ModbusLink({ transport, host: '127.0.0.1', port: device.port }, TIMEOUT_MS);
      await link.open();
    });
    afterAll(async () => {
      await link?.close();
      await device.close();
    });

    it.sequential('gives exactly the registers asked for, or a ModbusError of a known kind', async () => {
      const seen = new Map<string, number>();
      await fc.assert(
        fc.asyncProperty(
          replyArb,
          fc.constantFrom(1, 2, 3, 4),
          fc.integer({ min: 1, max: 40 }),
          fc.array(fc.integer({ min: 0, max: 0xffff }), { minLength: 40, maxLength: 40 }),
          async (reply, fcode, count, pool) => {
            const registers = pool.slice(0, count).map((v) => (fcode <= 2 ? v & 1 : v));
            device.next = (req) => replyBytes(transport === 'rtu-over-tcp', reply, req, registers);
            if (!link.isOpen) await link.open();
            let outcome: string;
            try {
              const data = await link.read(1, fcode as 1 | 2 | 3 | 4, 0, count);
              expect(data).toHaveLength(count);
              if (reply.kind === 'valid') expect(data.map(Number)).toEqual(registers);
              for (const v of data) expect(typeof v === 'boolean' || (Number.isInteger(v) && v >= 0 && v <= 0xffff)).toBe(true);
              outcome = 'data';
            } catch (err) {
              if (!(err instanceof ModbusError)) throw err;
              expect(KINDS.has(err.kind), err.message).toBe(true);
              outcome = err.kind;
            }
            if (reply.kind === 'valid') expect(outcome).toBe('data');
            if (reply.kind === 'exception') expect(outcome).toBe('exception');
            if (reply.kind === 'badCrc' && transport === 'rtu-over-tcp') expect(outcome).not.toBe('data');
            seen.set(`${reply.kind}->${outcome}`, (seen.get(`${reply.kind}->${outcome}`) ?? 0) + 1);
            // A stray late frame from this run must not answer the next one: let it arrive and be discarded.
            if (outcome !== 'data') await new Promise((r) => setTimeout(r, 25));
          },
        ),
        { numRuns: 150 },
      );
      // The link still works after all that.
      device.next = (req) => replyBytes(transport === 'rtu-over-tcp', { kind: 'valid', pieces: 1 }, req, [7, 8, 9]);
      if (!link.isOpen) await link.open();
      await expect(link.read(1, 3, 0, 3)).resolves.toEqual([7, 8, 9]);
      expect([...seen.keys()].some((k) => k.startsWith('valid->'))).toBe(true);
    }, 120_000);

    it.sequential('keeps no finished transaction: after 300 reads only the last one is held', async () => {
      if (!link.isOpen) await link.open();
      device.next = (req) => replyBytes(transport === 'rtu-over-tcp', { kind: 'valid', pieces: 1 }, req, [4, 5]);
      for (let i = 0; i < 300; i++) await expect(link.read(1, 3, 0, 2)).resolves.toEqual([4, 5]);
      const client = (link as unknown as { client: { _transactions: object } }).client;
      expect(Object.keys(client._transactions).length).toBeLessThanOrEqual(1);
    });

    it.sequential('keeps at most a few KiB of noise between transactions (a Modbus TCP peer is let go), and the next reply still reads', async () => {
      if (!link.isOpen) await link.open();
      const noise = Buffer.alloc(1000, 0xa5);
      // 20 KB stays below what a serial line relays in a second; a Modbus TCP peer never speaks unasked.
      await device.blast(noise, transport === 'tcp' ? 200 : 20);
      await new Promise((r) => setTimeout(r, 50));
      if (transport === 'tcp') {
        expect(link.isOpen).toBe(false);
        await link.open();
      } else {
        const port = (link as unknown as { client: { _port: { _buffer?: Buffer; _clientRcvData?: Buffer } } }).client._port;
        expect((port._buffer ?? port._clientRcvData)!.length).toBeLessThanOrEqual(4096);
      }
      device.next = (req) => replyBytes(transport === 'rtu-over-tcp', { kind: 'valid', pieces: 2 }, req, [1, 2]);
      await expect(link.read(1, 4, 0, 2)).resolves.toEqual([1, 2]);
    });
  });
}

describe('a connection that dies during a request', () => {
  for (const transport of ['tcp', 'rtu-over-tcp'] as const) {
    it(`ends the request with a link error over ${transport}, never leaves it pending`, async () => {
      // The device hangs up the moment a request arrives, as a serial server rebooting or a pulled cable does.
      const server = createServer((socket) => socket.on('data', () => socket.destroy()));
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
      const link = new ModbusLink({ transport, host: '127.0.0.1', port: (server.address() as { port: number }).port }, 5000);
      try {
        await link.open();
        const outcome = await link.read(1, 3, 0, 2).then(
          () => 'data',
          (err: unknown) => (err instanceof ModbusError ? err.kind : `not a ModbusError: ${String(err)}`),
        );
        expect(['disconnected', 'timeout']).toContain(outcome);
      } finally {
        await link.close();
        await new Promise((r) => server.close(r));
      }
    }, 15_000);
  }
});
