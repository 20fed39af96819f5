/**
 * Modbus RTU bytes on the wire per poll cycle, measured, against the theoretical minimum for the planned requests
 * and for a one-request-per-point plan (what a naive poller sends), and the poll rate each leaves a 9600 or 115200
 * baud line. The gateway sits on one socat pty pair, the simulator on another; a relay in this process forwards
 * between them and parses every byte into frames, so retries, stray bytes or extra frames would show.
 * `node --import tsx bench/rtu-wire.ts` prints the table.
 */
import type { ModbusBusConfig } from '../src/config/schema.js';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { SerialPort } from 'serialport';
import type { Config } from '../src/config/schema.js';
import { createLogger } from '../src/log.js';
import { startSimulator } from '../src/sim/server.js';
import { ModbusBus } from '../src/sources/modbus/bus.js';
import { compileDevice, type CompiledRequest } from '../src/sources/modbus/device.js';
import { isBitFc } from '../src/sources/modbus/types.js';
import { startSocatPair, type SocatPair } from '../test/helpers/peers.js';
import { SHIPPED, scenarioFor, workloadConfig, type Workload } from './modbus-tcp.js';

const BAUD = 9600;
const BITS_PER_CHAR = 11; // start, 8 data, even parity, stop
const CYCLES: Record<Workload, number> = { 'village-water': 20, tunnel: 20, synthetic: 8 };

/** Seconds a line needs for these bytes and frames: 11 bits a character, 3.5 characters of silence per frame. */
export function wireSeconds(bytes: number, frames: number, baud: number): number {
  // Above 19200 baud the silent interval is a fixed 1.75 ms.
  const gap = baud > 19200 ? 0.00175 : (3.5 * BITS_PER_CHAR) / baud;
  return (bytes * BITS_PER_CHAR) / baud + frames * gap;
}

/** Request plus response bytes of one read: request 8; response 5 + 2N for N registers, 5 + ceil(N/8) for bits. */
export function readBytes(r: Pick<CompiledRequest, 'fc' | 'count'>): number {
  return 8 + 5 + (isBitFc(r.fc) ? Math.ceil(r.count / 8) : 2 * r.count);
}

function crc16(buf: Buffer, end: number): number {
  let crc = 0xffff;
  for (let i = 0; i < end; i++) {
    crc ^= buf[i]!;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0xa001 : crc >>> 1;
  }
  return crc;
}

/** Splits one direction's byte stream into RTU frames by their declared length and CRC; anything else is garbage. */
class FrameCounter {
  bytes = 0;
  frames = 0;
  exceptions = 0;
  garbage = 0;
  private buf: Buffer = Buffer.alloc(0);

  constructor(private readonly side: 'request' | 'response') {}

  push(chunk: Buffer): void {
    this.bytes += chunk.length;
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    for (;;) {
      const len = this.frameLength();
      if (len === undefined || this.buf.length < len) return;
      if (len > 0 && crc16(this.buf, len - 2) === this.buf.readUInt16LE(len - 2)) {
        this.frames++;
        if (this.side === 'response' && this.buf[1]! & 0x80) this.exceptions++;
        this.buf = this.buf.subarray(len);
      } else {
        this.garbage++;
        this.buf = this.buf.subarray(1);
      }
    }
  }

  /** Length the frame at the head declares, 0 when the head cannot start a frame, undefined when more is needed. */
  private frameLength(): number | undefined {
    const b = this.buf;
    if (b.length < 3) return undefined;
    const fc = b[1]!;
    if (this.side === 'response' && fc & 0x80) return 5;
    if (fc >= 1 && fc <= 4) return this.side === 'request' ? 8 : 5 + b[2]!;
    if (fc === 5 || fc === 6) return 8;
    if (fc === 15 || fc === 16) {
      if (this.side === 'response') return 8;
      return b.length < 7 ? undefined : 9 + b[6]!;
    }
    return 0;
  }

  /** Bytes left over that never made a frame count as garbage too. */
  get leftover(): number {
    return this.buf.length;
  }
}

function openPort(path: string): Promise<SerialPort> {
  return new Promise((ok, fail) => {
    const port = new SerialPort({ path, baudRate: BAUD, parity: 'even', dataBits: 8, stopBits: 1 }, (err) => (err ? fail(err) : ok(port)));
  });
}

interface Relay {
  requests: FrameCounter;
  responses: FrameCounter;
  reset(): void;
  close(): Promise<void>;
}

/** Forwards gateway-side bytes to the device side and back, counting both directions. */
async function startRelay(gatewaySide: string, deviceSide: string): Promise<Relay> {
  const g = await openPort(gatewaySide);
  const d = await openPort(deviceSide);
  const relay: Relay = {
    requests: new FrameCounter('request'),
    responses: new FrameCounter('response'),
    reset() {
      relay.requests = new FrameCounter('request');
      relay.responses = new FrameCounter('response');
    },
    async close() {
      await Promise.all([g, d].map((p) => new Promise<void>((done) => (p.isOpen ? p.close(() => done()) : done()))));
    },
  };
  g.on('data', (chunk: Buffer) => {
    relay.requests.push(chunk);
    d.write(chunk);
  });
  d.on('data', (chunk: Buffer) => {
    relay.responses.push(chunk);
    g.write(chunk);
  });
  return relay;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Polled {
  seconds: number;
  bad: number;
}

/** Runs the bus until every device has been polled `cycles` times; the interval keeps cycles from overlapping. */
async function poll(cfg: Config, pollIntervalMs: number, cycles: number): Promise<Polled> {
  const devices = cfg.devices.map((d) => ({ ...compileDevice(d), pollIntervalMs }));
  const polls = new Map(devices.map((d) => [d.id, 0]));
  let bad = 0;
  const bus = new ModbusBus(cfg.buses[0] as ModbusBusConfig, devices, {
    logger: createLogger('silent', false),
    sink: (samples) => {
      const id = samples[0]?.device;
      if (id) polls.set(id, (polls.get(id) ?? 0) + 1);
      for (const s of samples) if (s.quality !== 'good') bad++;
    },
  });
  const t0 = Date.now();
  bus.start();
  try {
    const deadline = t0 + 60_000;
    while ([...polls.values()].some((n) => n < cycles)) {
      if (Date.now() > deadline) throw new Error(`${cfg.gateway.id}: ${cycles} cycles not done within 60 s`);
      await sleep(5);
    }
    const seconds = (Date.now() - t0) / 1000;
    await sleep(50); // let the last response's bytes pass the relay
    return { seconds, bad };
  } finally {
    await bus.stop();
  }
}

interface Row {
  workload: Workload;
  points: number;
  cycles: number;
  planned: { requests: number; bytes: number };
  perPoint: { requests: number; bytes: number };
  measured: { bytes: number; frames: number; requests: number; responses: number; exceptions: number; garbage: number };
  bad: number;
  pty: { cycleMs: number };
}

async function measureWorkload(workload: Workload, line1: SocatPair, line2: SocatPair, relay: Relay): Promise<Row> {
  const sim = await startSimulator({ scenario: scenarioFor(workload), serial: { path: line2.b, baudRate: BAUD, parity: 'even' }, seed: 1 });
  try {
    const bus = { id: 'rs485', transport: 'rtu', port: line1.a, baudRate: BAUD, parity: 'even', timeoutMs: 500 };
    const cfg = workloadConfig(workload, bus, 3_600_000);
    // One cycle to learn how long a cycle takes on this machine, then N cycles spaced so they never overlap.
    const first = await poll(cfg, 3_600_000, 1);
    relay.reset();
    const cycles = CYCLES[workload];
    const spacing = Math.ceil(first.seconds * 1000 * 1.5) + 50;
    const run = await poll(cfg, spacing, cycles);
    const { requests: q, responses: s } = relay;

    const sum = (plan: CompiledRequest[][]) => ({
      requests: plan.reduce((n, reqs) => n + reqs.length, 0),
      bytes: plan.reduce((n, reqs) => n + reqs.reduce((m, r) => m + readBytes(r), 0), 0),
    });
    return {
      workload,
      points: cfg.devices.reduce((n, d) => n + d.points.length, 0),
      cycles,
      planned: sum(cfg.devices.map((d) => compileDevice(d).requests)),
      perPoint: sum(cfg.devices.map((d) => compileDevice({ ...d, requests: 'per-point' }).requests)),
      measured: {
        bytes: q.bytes + s.bytes,
        frames: q.frames + s.frames,
        requests: q.frames,
        responses: s.frames,
        exceptions: s.exceptions,
        garbage: q.garbage + s.garbage + q.leftover + s.leftover,
      },
      bad: run.bad,
      pty: { cycleMs: (run.seconds * 1000) / cycles },
    };
  } finally {
    await sim.close();
  }
}

const num = (x: number, digits = 0) => x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
const ms = (s: number) => num(s * 1000, 1);
const rate = (s: number) => (1 / s >= 10 ? (1 / s).toFixed(0) : (1 / s).toFixed(2));

function tables(rows: Row[]): string[] {
  const out = [
    '| map | points | cycles | requests per cycle (planned / per-point) | bytes per cycle, measured | bytes, planned minimum | frames per cycle | retries, exceptions, garbage bytes | bad samples |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const r of rows) {
    const m = r.measured;
    const retries = m.requests - r.planned.requests * r.cycles;
    out.push(
      `| ${r.workload} | ${num(r.points)} | ${r.cycles} | ${r.planned.requests} / ${r.perPoint.requests} | ${num(m.bytes / r.cycles, 1)} | ${num(r.planned.bytes)} | ${num(m.frames / r.cycles, 1)} | ${retries}, ${m.exceptions}, ${m.garbage} | ${r.bad} |`,
    );
  }
  out.push(
    '',
    '| map | wire ms per cycle at 9600, measured | planned minimum | measured vs minimum | per-point minimum | per-point vs planned | cycles/s at 9600: planned / per-point | cycles/s at 115200: planned / per-point |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  );
  for (const r of rows) {
    const m = r.measured;
    const measured = wireSeconds(m.bytes / r.cycles, m.frames / r.cycles, BAUD);
    const min = wireSeconds(r.planned.bytes, 2 * r.planned.requests, BAUD);
    const naive = wireSeconds(r.perPoint.bytes, 2 * r.perPoint.requests, BAUD);
    const fast = wireSeconds(m.bytes / r.cycles, m.frames / r.cycles, 115200);
    const naiveFast = wireSeconds(r.perPoint.bytes, 2 * r.perPoint.requests, 115200);
    const extra = ((measured / min - 1) * 100).toFixed(1);
    out.push(
      `| ${r.workload} | ${ms(measured)} | ${ms(min)} | +${extra} % | ${ms(naive)} | ${(naive / min).toFixed(1)} x | ${rate(measured)} / ${rate(naive)} | ${rate(fast)} / ${rate(naiveFast)} |`,
    );
  }
  return out;
}

export async function run(): Promise<string> {
  const line1 = await startSocatPair();
  const line2 = await startSocatPair();
  const rows: Row[] = [];
  let relay: Relay | undefined;
  try {
    relay = await startRelay(line1.b, line2.a);
    for (const workload of [...SHIPPED, 'synthetic'] as Workload[]) rows.push(await measureWorkload(workload, line1, line2, relay));
  } finally {
    await relay?.close();
    await line1.stop();
    await line2.stop();
  }
  return [
    `Modbus RTU at ${BAUD} baud 8E1 over two socat pty pairs with a counting relay between them; the shipped maps`,
    'with their bus changed to RTU, and the synthetic 1,000-point map (4 units). Every byte the relay forwarded is',
    'parsed into frames by declared length and CRC. Wire time = bytes x 11 / baud + frames x 3.5 characters of',
    'silence (a fixed 1.75 ms above 19200 baud); the planned minimum is the same formula over the planned requests',
    '(request 8 bytes, response 5 + 2N or 5 + ceil(bits / 8)), with no retries. Device turnaround, typically 5-50 ms',
    'per request, comes on top of every figure, and weighs most on the per-point plan.',
    '',
    ...tables(rows),
    '',
    `On the pty (no baud-rate pacing; the simulator's serial server waits 30 ms of silence before it answers) a cycle took ${rows.map((r) => `${r.pty.cycleMs.toFixed(0)} ms (${r.workload})`).join(', ')}.`,
    '',
  ].join('\n');
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  process.stdout.write(await run());
}
