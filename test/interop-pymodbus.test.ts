/**
 * fieldgate's Modbus client against an independent server (pymodbus) for every type and order, exceptions and
 * timeouts, over TCP and over RTU on a socat pty; and an independent client (mbpoll) reading our simulator
 * and checking what `fieldgate write` wrote. Register images are built here with Buffer, not with our encoder.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { startSimulator, type RunningSimulator } from '../src/sim/server.js';
import { needPeers, startPymodbus, startSocatPair, type PymodbusPeer, type SocatPair } from './helpers/peers.js';
import { fieldgate } from './helpers/cli.js';
import { compileDecoder } from '../src/sources/modbus/decode.js';
import { ModbusLink } from '../src/sources/modbus/link.js';
import { pointWidth, type Order, type PointType } from '../src/sources/modbus/types.js';

type Case = { type: string; value: number | string; bytes: Buffer };

function be(type: string, value: number | bigint | string): Buffer {
  const b = Buffer.alloc(type.endsWith('64') ? 8 : type.endsWith('32') ? 4 : type === 'string' ? 8 : 2);
  switch (type) {
    case 'int16': b.writeInt16BE(value as number); break;
    case 'uint16': b.writeUInt16BE(value as number); break;
    case 'int32': b.writeInt32BE(value as number); break;
    case 'uint32': b.writeUInt32BE(value as number); break;
    case 'float32': b.writeFloatBE(value as number); break;
    case 'float64': b.writeDoubleBE(value as number); break;
    case 'int64': b.writeBigInt64BE(BigInt(value)); break;
    case 'uint64': b.writeBigUInt64BE(BigInt(value)); break;
    case 'string': b.write(value as string, 'latin1'); break;
  }
  return b;
}

const CASES: Case[] = [
  { type: 'int16', value: -12345, bytes: be('int16', -12345) },
  { type: 'uint16', value: 54321, bytes: be('uint16', 54321) },
  { type: 'int32', value: -123456789, bytes: be('int32', -123456789) },
  { type: 'uint32', value: 3000000000, bytes: be('uint32', 3000000000) },
  { type: 'float32', value: 123.456, bytes: be('float32', 123.456) },
  { type: 'float64', value: -1234.5678, bytes: be('float64', -1234.5678) },
  { type: 'int64', value: -1234567890123, bytes: be('int64', -1234567890123n) },
  { type: 'uint64', value: 9007199254740991, bytes: be('uint64', 9007199254740991n) },
  { type: 'string', value: 'PT-101', bytes: be('string', 'PT-101') },
];

/** Big-endian bytes laid out in registers for an order: CDAB swaps words, BADC bytes, DCBA both. */
function registers(bytes: Buffer, order: string): number[] {
  const words: number[] = [];
  for (let i = 0; i < bytes.length; i += 2) words.push(bytes.readUInt16BE(i));
  const wordSwap = order === 'CDAB' || order === 'DCBA';
  const byteSwap = order === 'BADC' || order === 'DCBA';
  const ordered = wordSwap ? [...words].reverse() : words;
  return ordered.map((w) => (byteSwap ? ((w & 0xff) << 8) | (w >> 8) : w));
}

const ORDERS = ['ABCD', 'CDAB', 'BADC', 'DCBA'];
const STRING_ORDERS = ['ABCD', 'BADC'];

/** The holding map: every case in every order, each at its own address; returns where each one sits. */
function layout() {
  const holding: number[] = [];
  const at: Array<{ c: Case; order: string; address: number }> = [];
  for (const c of CASES) {
    for (const order of c.type === 'string' ? STRING_ORDERS : ORDERS) {
      at.push({ c, order, address: holding.length });
      holding.push(...registers(c.bytes, order));
    }
  }
  return { holding, at };
}

/** Runs promises a few at a time: each CLI start costs a process. */
async function limited<T>(items: T[], n: number, fn: (item: T) => Promise<void>): Promise<void> {
  const queue = [...items];
  await Promise.all(Array.from({ length: n }, async () => {
    for (let item = queue.shift(); item !== undefined; item = queue.shift()) await fn(item);
  }));
}

/** mbpoll, asynchronously: the simulator answering it lives in this same process. */
async function mbpoll(...args: string[]): Promise<{ status: number; stdout: string }> {
  try {
    const { stdout } = await promisify(execFile)('mbpoll', args, { encoding: 'utf8', timeout: 10_000 });
    return { status: 0, stdout };
  } catch (err) {
    const e = err as { code?: number; stdout?: string };
    return { status: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '' };
  }
}

const skip = needPeers('pymodbus', 'socat', 'mbpoll');

describe.skipIf(skip)('interop with pymodbus and mbpoll', () => {
  const { holding, at } = layout();
  let tcp: PymodbusPeer;
  let target: string;

  beforeAll(async () => {
    tcp = await startPymodbus({
      holding,
      input: [11, 22, 33],
      coils: [true, false, true, true],
      discrete: [false, true],
      units: [{ unit: 7, holding: [0, 0, 0, 0, 0, 0, 0, 0] }],
    });
    target = `tcp://127.0.0.1:${tcp.port}`;
  });
  afterAll(async () => {
    await tcp?.stop();
  });

  it('decodes every type in every byte/word order', async () => {
    // One connection for all 34 cases; the CLI's own decoding path is covered by the reads below.
    const link = new ModbusLink({ transport: 'tcp', host: '127.0.0.1', port: tcp.port! }, 2000);
    await link.open();
    const failures: string[] = [];
    try {
      for (const { c, order, address } of at) {
        const length = c.type === 'string' ? 4 : undefined;
        const spec = { fc: 3 as const, type: c.type as PointType, order: order as Order, length, scale: 1, offset: 0 };
        const words = await link.read(1, 3, address, pointWidth(3, spec.type, length));
        const got = compileDecoder(spec)(words, 0);
        if (got !== c.value) failures.push(`${c.type} ${order}: got ${JSON.stringify(got)}, want ${JSON.stringify(c.value)}`);
      }
    } finally {
      await link.close();
    }
    expect(failures).toEqual([]);
  });

  it('the read command decodes as the library does (a few types and orders)', async () => {
    const failures: string[] = [];
    const sample = at.filter(({ c, order }) => (c.type === 'float32' && order === 'CDAB') || (c.type === 'int64' && order === 'DCBA') || (c.type === 'string' && order === 'BADC'));
    await limited(sample, 3, async ({ c, order, address }) => {
      const args = ['read', target, '--unit', '1', '--address', String(address), '--type', c.type, '--order', order, '--json'];
      if (c.type === 'string') args.push('--length', '4');
      const r = await fieldgate(args);
      const got = r.code === 0 ? JSON.parse(r.stdout).values[0] : r.stderr;
      if (got !== c.value) failures.push(`${c.type} ${order}: got ${JSON.stringify(got)}, want ${JSON.stringify(c.value)}`);
    });
    expect(failures).toEqual([]);
  });

  it('reads input registers, coils and discrete inputs', async () => {
    const ir = JSON.parse((await fieldgate(['read', target, '--unit', '1', '--fc', '4', '--address', '0', '--count', '3', '--json'])).stdout);
    expect(ir.values).toEqual([11, 22, 33]);
    const coils = JSON.parse((await fieldgate(['read', target, '--unit', '1', '--fc', '1', '--address', '0', '--count', '4', '--json'])).stdout);
    expect(coils.values).toEqual([true, false, true, true]);
    const di = JSON.parse((await fieldgate(['read', target, '--unit', '1', '--fc', '2', '--address', '0', '--count', '2', '--json'])).stdout);
    expect(di.values).toEqual([false, true]);
  });

  it('names exception 2 and reports a silent unit as a timeout', async () => {
    const ex = await fieldgate(['read', target, '--unit', '1', '--address', '60000']);
    expect(ex.code).toBe(1);
    expect(ex.stderr).toContain('exception 2 (illegal data address)');
    const silent = await fieldgate(['read', target, '--unit', '9', '--address', '0', '--timeout', '250']);
    expect(silent.code).toBe(1);
    expect(silent.stderr).toContain('timeout after 250 ms');
  });

  it('writes with fc 6, 16 (float32 CDAB), 5 and 15; mbpoll reads back what was written', async () => {
    expect((await fieldgate(['write', target, '--unit', '7', '--address', '0', '--value', '1234'])).code).toBe(0);
    expect((await fieldgate(['write', target, '--unit', '7', '--address', '2', '--type', 'float32', '--order', 'CDAB', '--value', '4.5'])).code).toBe(0);
    expect((await fieldgate(['write', target, '--unit', '7', '--address', '4', '--fc', '16', '--value', '7,8'])).code).toBe(0);
    // mbpoll: -r is 1-based, -t 4 holding registers, -t 4:float is CDAB unless -B.
    const words = await mbpoll('-m', 'tcp', '-p', String(tcp.port), '-a', '7', '-r', '1', '-c', '6', '-t', '4', '-1', '127.0.0.1');
    expect(words.stdout).toMatch(/\[1\]:\s+1234/);
    expect(words.stdout).toMatch(/\[5\]:\s+7/);
    expect(words.stdout).toMatch(/\[6\]:\s+8/);
    const float = await mbpoll('-m', 'tcp', '-p', String(tcp.port), '-a', '7', '-r', '3', '-c', '1', '-t', '4:float', '-1', '127.0.0.1');
    expect(float.stdout).toMatch(/\[3\]:\s+4\.5/);
    expect((await fieldgate(['write', target, '--unit', '1', '--fc', '5', '--address', '1', '--value', '1'])).code).toBe(0);
    expect((await fieldgate(['write', target, '--unit', '1', '--fc', '15', '--address', '2', '--value', '0,0'])).code).toBe(0);
    const coils = JSON.parse((await fieldgate(['read', target, '--unit', '1', '--fc', '1', '--address', '0', '--count', '4', '--json'])).stdout);
    expect(coils.values).toEqual([true, true, false, false]);
  });

  describe('over RTU', () => {
    let line: SocatPair;
    let rtu: PymodbusPeer;
    beforeAll(async () => {
      line = await startSocatPair();
      rtu = await startPymodbus({ holding: registers(be('float32', 123.456), 'CDAB'), serialPath: line.b, baudRate: 19200 });
    });
    afterAll(async () => {
      await rtu?.stop();
      await line?.stop();
    });

    it('reads a CDAB float over a serial line', async () => {
      const r = await fieldgate(['read', line.a, '--baud', '19200', '--unit', '1', '--address', '0', '--type', 'float32', '--order', 'CDAB', '--json']);
      expect(r.stderr).toBe('');
      expect(JSON.parse(r.stdout).values).toEqual([123.456]);
    });
  });

  describe('RTU over TCP (a serial device server in transparent mode)', () => {
    let server: PymodbusPeer;
    beforeAll(async () => {
      server = await startPymodbus({ rtuOverTcp: true, holding: registers(be('float32', 123.456), 'CDAB'), input: [11, 22, 33], coils: [true, false, true] });
    });
    afterAll(async () => {
      await server?.stop();
    });

    it('reads and writes with raw RTU frames, from the CLI and from a bus', async () => {
      const target = `rtu-over-tcp://127.0.0.1:${server.port}`;
      const r = await fieldgate(['read', target, '--unit', '1', '--address', '0', '--type', 'float32', '--order', 'CDAB', '--json']);
      expect(r.stderr).toBe('');
      expect(JSON.parse(r.stdout).values).toEqual([123.456]);
      const link = new ModbusLink({ transport: 'rtu-over-tcp', host: '127.0.0.1', port: server.port! }, 2000);
      await link.open();
      try {
        expect(await link.read(1, 4, 0, 3)).toEqual([11, 22, 33]);
        expect(await link.read(1, 1, 0, 3)).toEqual([true, false, true]);
        await link.write(1, 16, 0, [500, 600]);
        expect(await link.read(1, 3, 0, 2)).toEqual([500, 600]);
        // An address outside the table: the exception comes back as an RTU exception frame and is named.
        await expect(link.read(1, 4, 90, 1)).rejects.toMatchObject({ kind: 'exception', code: 2 });
        expect(await link.read(1, 4, 1, 1)).toEqual([22]);
      } finally {
        await link.close();
      }
    });
  });

  describe('mbpoll reading our simulator', () => {
    let sim: RunningSimulator;
    beforeAll(async () => {
      sim = await startSimulator({ scenario: 'village-water', tcp: { host: '127.0.0.1', port: 0 }, seed: 5 });
    });
    afterAll(async () => {
      await sim?.close();
    });

    it('reads the flow meter float (CDAB) and the 4-20 mA input registers', async () => {
      const flow = await mbpoll('-m', 'tcp', '-p', String(sim.tcpPort), '-a', '3', '-r', '1', '-c', '1', '-t', '4:float', '-1', '127.0.0.1');
      expect(flow.status).toBe(0);
      const m = /\[1\]:\s+(-?[\d.]+)/.exec(flow.stdout);
      expect(Number(m?.[1])).toBeGreaterThan(0);
      const ir = await mbpoll('-m', 'tcp', '-p', String(sim.tcpPort), '-a', '1', '-r', '1', '-c', '2', '-t', '3', '-1', '127.0.0.1');
      expect(ir.status).toBe(0);
      const ua = [...ir.stdout.matchAll(/\[\d\]:\s+(\d+)/g)].map((x) => Number(x[1]));
      expect(ua).toHaveLength(2);
      // Loop currents in µA inside the 4-20 mA measuring range.
      for (const v of ua) expect(v).toBeGreaterThanOrEqual(3800);
      for (const v of ua) expect(v).toBeLessThanOrEqual(20500);
    });
  });
});
