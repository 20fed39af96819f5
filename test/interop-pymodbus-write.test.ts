/**
 * Writes through a bus against independent peers. pymodbus over TCP: each write lands with the register bytes
 * built here with Buffer (float32 in ABCD and CDAB, a uint16 with scale 0.01, a negative int16, a coil) and the
 * read-back is reported; a write the unit refuses, or to a read-only point, leaves its registers unchanged.
 * Over RTU on a socat pty, a responder that timestamps every request shows that writes and continuous polls
 * never overlap on the wire and that a write goes ahead of due polls.
 */
import type { Duplex } from 'node:stream';
import { SerialPort } from 'serialport';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ModbusBusConfig } from '../src/config/schema.js';
import { crc16Modbus } from '../src/sources/line/checksum.js';
import { ModbusBus } from '../src/sources/modbus/bus.js';
import { compileDevice } from '../src/sources/modbus/device.js';
import { ModbusLink } from '../src/sources/modbus/link.js';
import type { WriteOutcome } from '../src/sources/types.js';
import { config, recordingLogger, SampleLog } from './helpers/gateway.js';
import { needPeers, startPymodbus, startSocatPair, type PymodbusPeer, type SocatPair } from './helpers/peers.js';

const words = (b: Buffer): number[] => Array.from({ length: b.length / 2 }, (_, i) => b.readUInt16BE(i * 2));
const float32 = (v: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeFloatBE(v);
  return b;
};
const expiresAt = () => Date.now() + 10_000;

async function until(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe.skipIf(needPeers('pymodbus'))('writes against pymodbus over TCP', () => {
  let server: PymodbusPeer;
  let bus: ModbusBus;
  let probe: ModbusLink;

  beforeAll(async () => {
    server = await startPymodbus({ holding: Array(12).fill(0), coils: [false, false, false, false] });
    const cfg = config({
      gateway: { id: 'gw' },
      buses: [{ id: 'plant', transport: 'tcp', host: '127.0.0.1', port: server.port, timeoutMs: 1000, retries: 1 }],
      devices: [{ id: 'pump', bus: 'plant', unit: 1, pollIntervalMs: 50, points: [
        { id: 'flow_abcd', fc: 3, address: 0, type: 'float32', write: true },
        { id: 'flow_cdab', fc: 3, address: 2, type: 'float32', order: 'CDAB', write: true },
        { id: 'pressure_sp', fc: 3, address: 4, type: 'uint16', scale: 0.01, unit: 'bar', write: { min: 1.5, max: 4.5 } },
        { id: 'offset_trim', fc: 3, address: 5, type: 'int16', write: true },
        { id: 'mode', fc: 3, address: 6 },
        { id: 'pump_enable', fc: 1, address: 1, write: true },
        // Outside the server's table: the unit answers exception 2 to the write.
        { id: 'missing', fc: 3, address: 500, write: true },
      ] }],
    });
    bus = new ModbusBus(cfg.buses[0] as ModbusBusConfig, cfg.devices.map(compileDevice), { logger: recordingLogger().logger, sink: () => {} });
    bus.start();
    await until(() => bus.linkState === 'connected', 'the bus to connect');
    // A second client reads the raw registers: what landed, not what our decoder makes of it.
    probe = new ModbusLink({ transport: 'tcp', host: '127.0.0.1', port: server.port! }, 2000);
    await probe.open();
  });
  afterAll(async () => {
    await probe?.close();
    await bus?.stop();
    await server?.stop();
  });

  const write = (point: string, value: number | boolean | string): Promise<WriteOutcome> => bus.write({ device: 'pump', point, value, expiresAt: expiresAt() });

  it('float32 in ABCD and CDAB lands with the IEEE 754 bytes in the point\'s word order, and is read back', async () => {
    expect(await write('flow_abcd', 123.456)).toEqual({ status: 'done', written: 123.456, readBack: 123.456 });
    expect(await write('flow_cdab', -0.015625)).toEqual({ status: 'done', written: -0.015625, readBack: -0.015625 });
    const regs = (await probe.read(1, 3, 0, 4)) as number[];
    expect(regs.slice(0, 2)).toEqual(words(float32(123.456)));
    expect(regs.slice(2, 4)).toEqual([...words(float32(-0.015625))].reverse());
    expect(regs.slice(0, 2)).toEqual([0x42f6, 0xe979]);
  });

  it('a uint16 with scale 0.01 lands as the raw count, a negative int16 as two\'s complement', async () => {
    expect(await write('pressure_sp', 2.35)).toEqual({ status: 'done', written: 2.35, readBack: 2.35 });
    expect(await write('offset_trim', -1234)).toEqual({ status: 'done', written: -1234, readBack: -1234 });
    const regs = (await probe.read(1, 3, 4, 2)) as number[];
    const b = Buffer.alloc(4);
    b.writeUInt16BE(235, 0);
    b.writeInt16BE(-1234, 2);
    expect(regs).toEqual(words(b));
  });

  it('a coil is switched on and off (fc 5) and read back', async () => {
    expect(await write('pump_enable', true)).toEqual({ status: 'done', written: true, readBack: true });
    expect(((await probe.read(1, 1, 0, 4)) as boolean[]).slice(0, 4)).toEqual([false, true, false, false]);
    expect(await write('pump_enable', false)).toEqual({ status: 'done', written: false, readBack: false });
    expect(((await probe.read(1, 1, 0, 4)) as boolean[]).slice(0, 4)).toEqual([false, false, false, false]);
  });

  it('refusals leave the registers unchanged: the unit\'s exception, a read-only point, an expired command', async () => {
    const before = (await probe.read(1, 3, 0, 12)) as number[];
    expect(await write('missing', 7)).toEqual({ status: 'failed', reason: 'unit 1 refused the write of 7 to pump.missing: exception 2 (illegal data address)' });
    expect(await write('mode', 3)).toEqual({ status: 'failed', reason: 'point pump.mode is not writable (the configuration gives it no write)' });
    const late = await bus.write({ device: 'pump', point: 'pressure_sp', value: 4, expiresAt: Date.now() - 1 });
    expect(late.status).toBe('expired');
    expect(await probe.read(1, 3, 0, 12)).toEqual(before);
    expect(bus.health()[0]).toMatchObject({ writeErrors: 1 });
  });
});

// ------------------------------------------------------------------------------------------------ RTU

/** One request as the responder saw it: when its last byte arrived and when the reply went out. */
interface Seen {
  unit: number;
  fc: number;
  address: number;
  start: number;
  end: number;
}

function withCrc(body: number[]): Buffer {
  const b = Buffer.alloc(body.length + 2);
  Buffer.from(body).copy(b);
  b.writeUInt16LE(crc16Modbus(b, 0, body.length), body.length);
  return b;
}

/**
 * An RTU slave for fc 3, 6 and 16 with one register map per unit, answering each request after `delayMs`. It
 * counts bytes that arrive while a request is still unanswered: on a half-duplex line that is an overlap.
 */
function startRecordingResponder(path: string, delayMs: number) {
  const port = new SerialPort({ path, baudRate: 19200, autoOpen: false });
  const seen: Seen[] = [];
  const registers = new Map<number, number[]>();
  let overlaps = 0;
  let pending = false;
  let buf = Buffer.alloc(0);
  const reg = (unit: number) => registers.get(unit) ?? (registers.set(unit, Array(64).fill(0)), registers.get(unit)!);

  const frameLength = (b: Buffer): number | undefined => {
    if (b.length < 2) return undefined;
    if (b[1] === 3 || b[1] === 6) return 8;
    if (b[1] === 16) return b.length < 7 ? undefined : 9 + b[6]!;
    return -1;
  };

  const answer = (frame: Buffer): Buffer => {
    const [unit, fc] = [frame[0]!, frame[1]!];
    const address = frame.readUInt16BE(2);
    const map = reg(unit);
    if (fc === 3) {
      const count = frame.readUInt16BE(4);
      const data: number[] = [];
      for (let i = 0; i < count; i++) data.push(map[address + i]! >> 8, map[address + i]! & 0xff);
      return withCrc([unit, 3, data.length, ...data]);
    }
    if (fc === 6) {
      map[address] = frame.readUInt16BE(4);
      return withCrc([...frame.subarray(0, 6)]);
    }
    const count = frame.readUInt16BE(4);
    for (let i = 0; i < count; i++) map[address + i] = frame.readUInt16BE(7 + i * 2);
    return withCrc([...frame.subarray(0, 6)]);
  };

  port.on('data', (chunk: Buffer) => {
    if (pending) overlaps++;
    buf = Buffer.concat([buf, chunk]);
    for (;;) {
      const n = frameLength(buf);
      if (n === undefined || buf.length < Math.max(n, 1)) return;
      const frame = buf.subarray(0, n);
      if (n < 0 || crc16Modbus(frame, 0, n - 2) !== frame.readUInt16LE(n - 2)) {
        buf = buf.subarray(1);
        continue;
      }
      buf = buf.subarray(n);
      const start = performance.now();
      pending = true;
      const reply = answer(Buffer.from(frame));
      setTimeout(() => {
        port.write(reply, () => {
          port.drain(() => {
            pending = false;
            seen.push({ unit: frame[0]!, fc: frame[1]!, address: frame.readUInt16BE(2), start, end: performance.now() });
          });
        });
      }, delayMs);
    }
  });
  (port as unknown as Duplex).on('error', () => {});
  return {
    seen,
    registers,
    get overlaps() {
      return overlaps;
    },
    open: () => new Promise<void>((resolve, reject) => port.open((err) => (err ? reject(err) : resolve()))),
    close: () => new Promise<void>((resolve) => (port.isOpen ? port.close(() => resolve()) : resolve())),
  };
}

describe.skipIf(needPeers('socat'))('writes and polls on one RTU line (socat pty)', () => {
  let line: SocatPair;
  let responder: ReturnType<typeof startRecordingResponder>;
  let bus: ModbusBus | undefined;

  beforeAll(async () => {
    line = await startSocatPair();
    responder = startRecordingResponder(line.b, 8);
    await responder.open();
  });
  afterEach(async () => {
    await bus?.stop();
    bus = undefined;
  });
  afterAll(async () => {
    await responder?.close();
    await line?.stop();
  });

  it('never overlap on the wire, and each write goes ahead of the polls due', async () => {
    const cfg = config({
      gateway: { id: 'gw' },
      buses: [{ id: 'rs485', transport: 'rtu', port: line.a, baudRate: 19200, timeoutMs: 300, retries: 1, requestPauseMs: 3 }],
      devices: [
        { id: 'booster', bus: 'rs485', unit: 1, pollIntervalMs: 1, points: [
          { id: 'level', fc: 3, address: 0 },
          { id: 'speed_sp', fc: 3, address: 10, type: 'uint16', scale: 0.1, write: { min: 0, max: 100 } },
          { id: 'flow_sp', fc: 3, address: 20, type: 'float32', order: 'CDAB', write: true },
        ] },
        // Two requests per poll (far apart): a write may land between them.
        { id: 'tank', bus: 'rs485', unit: 2, pollIntervalMs: 1, maxGap: 4, points: [{ id: 'a', fc: 3, address: 0 }, { id: 'b', fc: 3, address: 40 }] },
        { id: 'meter', bus: 'rs485', unit: 3, pollIntervalMs: 1, points: [{ id: 'total', fc: 3, address: 0, type: 'uint32' }] },
      ],
    });
    const samples = new SampleLog();
    bus = new ModbusBus(cfg.buses[0] as ModbusBusConfig, cfg.devices.map(compileDevice), { logger: recordingLogger().logger, sink: samples.sink });
    bus.start();
    await samples.until((all) => ['booster', 'tank', 'meter'].every((d) => all.some((s) => s.device === d && s.quality === 'good')), 15_000, 'every unit polled');

    const rounds: Array<{ calledAt: number; outcome: WriteOutcome }> = [];
    for (let i = 0; i < 12; i++) {
      // Sometimes right away, sometimes in the middle of a poll.
      await new Promise((r) => setTimeout(r, (i % 3) * 7));
      const calledAt = performance.now();
      const point = i % 2 === 0 ? 'speed_sp' : 'flow_sp';
      const outcome = await bus.write({ device: 'booster', point, value: i % 2 === 0 ? 10 + i * 0.5 : 1.25 * i, expiresAt: expiresAt() });
      rounds.push({ calledAt, outcome });
    }
    // Two writes queued at once are served one after the other, each read back before the next.
    const pair = await Promise.all([
      bus.write({ device: 'booster', point: 'speed_sp', value: 55.5, expiresAt: expiresAt() }),
      bus.write({ device: 'booster', point: 'flow_sp', value: 0.5, expiresAt: expiresAt() }),
    ]);
    await samples.until((all) => all.filter((s) => s.device === 'meter').length > 40, 15_000, 'polls after the writes');
    await bus.stop();
    bus = undefined;

    expect(rounds.map((r) => r.outcome.status)).toEqual(Array(12).fill('done'));
    expect(pair).toEqual([{ status: 'done', written: 55.5, readBack: 55.5 }, { status: 'done', written: 0.5, readBack: 0.5 }]);
    expect(rounds[0]!.outcome).toEqual({ status: 'done', written: 10, readBack: 10 });

    const seen = responder.seen;
    // Never two requests on the line at once: every request arrived after the reply to the one before.
    expect(responder.overlaps).toBe(0);
    for (let i = 1; i < seen.length; i++) expect(seen[i]!.start).toBeGreaterThanOrEqual(seen[i - 1]!.end);
    // Ahead of the polls: after a write is asked for, at most the transaction under way comes before it.
    for (const { calledAt } of rounds) {
      const after = seen.filter((s) => s.start >= calledAt);
      const at = after.findIndex((s) => s.fc === 6 || s.fc === 16);
      expect(at).toBeGreaterThanOrEqual(0);
      expect(at).toBeLessThanOrEqual(1);
      expect(after[at + 1]).toMatchObject({ unit: 1, fc: 3 });
    }
    const writes = seen.filter((s) => s.fc === 6 || s.fc === 16);
    expect(writes.map((s) => s.fc)).toEqual([...Array.from({ length: 12 }, (_, i) => (i % 2 === 0 ? 6 : 16)), 6, 16]);
    // What landed: 55.5 at scale 0.1 is 555; 0.5 as float32 CDAB is 0x0000 0x3F00.
    const map = responder.registers.get(1)!;
    expect(map[10]).toBe(555);
    expect(map.slice(20, 22)).toEqual([0x0000, 0x3f00]);
    // The polls went on throughout.
    expect(seen.filter((s) => s.unit === 3).length).toBeGreaterThan(40);
  });
});
