/**
 * Writes on a Modbus bus: the pure parts (the frame for each type, the read-back comparison, the queue, one
 * write's execution on a scripted bus) and the bus around them on a scripted link that records every
 * transaction: served ahead of due polls, after the bus's pause, expiry checked right before sending, the queue
 * bounded, stop and a lost link failing what waits, exceptions named, a read-back that differs failed.
 */
import { EventEmitter } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import type { ModbusBusConfig } from '../src/config/schema.js';
import { ModbusBus } from '../src/sources/modbus/bus.js';
import { compileDevice } from '../src/sources/modbus/device.js';
import { ModbusError } from '../src/sources/modbus/errors.js';
import type { ModbusLink, Target } from '../src/sources/modbus/link.js';
import type { ReadFc, WriteFc } from '../src/sources/modbus/types.js';
import {
  compileWrite, encodeWrite, executeWrite, sameValue, WRITE_QUEUE_LIMIT, WriteQueue, type WriteIo, type WriteJob, type WritePlan,
} from '../src/sources/modbus/writes.js';
import type { WriteOutcome } from '../src/sources/types.js';
import { config, recordingLogger, SampleLog } from './helpers/gateway.js';

// ------------------------------------------------------------------------------------------------ pure parts

function plan(point: Record<string, unknown>): WritePlan {
  const cfg = config({ gateway: { id: 'gw' }, devices: [{ id: 'd', bus: 'b', unit: 1, points: [{ id: 'p', address: 10, write: true, ...point }] }] });
  return compileWrite(cfg.devices[0]!.points[0]!)!;
}

describe('encodeWrite: the transaction for each kind of point', () => {
  it('a coil: fc 5, one bool', () => {
    expect(encodeWrite(plan({ fc: 1 }), true)).toEqual({ fc: 5, address: 10, values: [true], written: true });
    expect(encodeWrite(plan({ fc: 1 }), false)).toEqual({ fc: 5, address: 10, values: [false], written: false });
  });

  it('one register: fc 6; several: fc 16, in the point\'s order', () => {
    expect(encodeWrite(plan({ type: 'uint16', scale: 0.01 }), 2.35)).toEqual({ fc: 6, address: 10, values: [235], written: 2.35 });
    expect(encodeWrite(plan({ type: 'int16' }), -2)).toEqual({ fc: 6, address: 10, values: [0xfffe], written: -2 });
    expect(encodeWrite(plan({ type: 'bool' }), true)).toEqual({ fc: 6, address: 10, values: [1], written: true });
    expect(encodeWrite(plan({ type: 'float32' }), 4.5)).toEqual({ fc: 16, address: 10, values: [0x4090, 0x0000], written: 4.5 });
    expect(encodeWrite(plan({ type: 'float32', order: 'CDAB' }), 4.5)).toEqual({ fc: 16, address: 10, values: [0x0000, 0x4090], written: 4.5 });
    expect(encodeWrite(plan({ type: 'uint32', order: 'CDAB' }), 0x12345678)).toMatchObject({ fc: 16, values: [0x5678, 0x1234] });
    expect(encodeWrite(plan({ type: 'float64' }), 1)).toMatchObject({ fc: 16, values: [0x3ff0, 0, 0, 0] });
    expect(encodeWrite(plan({ type: 'string', length: 2 }), 'AB')).toEqual({ fc: 16, address: 10, values: [0x4142, 0], written: 'AB' });
  });

  it('written is what the registers mean: a value between two counts is rounded to the nearer', () => {
    expect(encodeWrite(plan({ scale: 0.1 }), 1.26).written).toBe(1.3);
    expect(encodeWrite(plan({ type: 'int16', scale: 0.5, offset: -40 }), -39.4)).toMatchObject({ values: [1], written: -39.5 });
    expect(encodeWrite(plan({ type: 'float32' }), 0.1).written).toBe(0.1);
  });

  it('refuses a value of the wrong kind or one the registers cannot hold', () => {
    expect(() => encodeWrite(plan({ fc: 1 }), 1)).toThrow('1 is a number; p is bool (true or false)');
    expect(() => encodeWrite(plan({}), '12')).toThrow('"12" is text; p is uint16');
    expect(() => encodeWrite(plan({ type: 'string', length: 1 }), 5)).toThrow('5 is a number; p is string');
    expect(() => encodeWrite(plan({}), 70000)).toThrow('70000 does not fit uint16 (0..65535)');
    expect(() => encodeWrite(plan({}), Number.NaN)).toThrow(/only finite/);
  });

  it('compiles only points with write, on coils and holding registers', () => {
    const cfg = config({ gateway: { id: 'gw' }, devices: [{ id: 'd', bus: 'b', unit: 1, points: [
      { id: 'ro', fc: 3, address: 0 },
      { id: 'coil', fc: 1, address: 0, write: { readBack: false } },
      { id: 'ir', fc: 4, address: 0, write: true },
    ] }] });
    const [ro, coil, ir] = cfg.devices[0]!.points.map(compileWrite);
    expect(ro).toBeUndefined();
    expect(ir).toBeUndefined();
    expect(coil).toMatchObject({ point: 'coil', readFc: 1, address: 0, width: 1, limits: { readBack: false } });
  });
});

describe('sameValue: is the read-back the value written', () => {
  const spec = (p: Record<string, unknown>) => plan(p).spec;
  it('scaled integers within half a count, not a whole one', () => {
    const s = spec({ scale: 0.01 });
    expect(sameValue(s, 2.35, 2.35)).toBe(true);
    expect(sameValue(s, 2.35, 2.3500000000000005)).toBe(true);
    expect(sameValue(s, 2.35, 2.354)).toBe(true);
    expect(sameValue(s, 2.35, 2.36)).toBe(false);
    expect(sameValue(s, 2.35, 2.34)).toBe(false);
    expect(sameValue(spec({ type: 'int16', scale: -0.5 }), -3, -3.5)).toBe(false);
  });

  it('unscaled integers and 64-bit integers exactly', () => {
    expect(sameValue(spec({}), 7, 7)).toBe(true);
    expect(sameValue(spec({}), 7, 8)).toBe(false);
    expect(sameValue(spec({ type: 'int64' }), 2 ** 60, 2 ** 60 + 256)).toBe(false);
  });

  it('float32 by equality as float32, also scaled', () => {
    const s = spec({ type: 'float32' });
    expect(sameValue(s, 0.1, Math.fround(0.1))).toBe(true);
    expect(sameValue(s, 0.1, 0.1000001)).toBe(false);
    expect(sameValue(spec({ type: 'float32', scale: 0.1 }), 1.234, 1.2340000000000002)).toBe(true);
    expect(sameValue(s, 1, Number.NaN)).toBe(false);
  });

  it('float64, bools and strings exactly; never across kinds', () => {
    expect(sameValue(spec({ type: 'float64' }), 0.1, 0.1)).toBe(true);
    expect(sameValue(spec({ type: 'float64' }), 0.1, Math.fround(0.1))).toBe(false);
    expect(sameValue(spec({ fc: 1 }), true, true)).toBe(true);
    expect(sameValue(spec({ fc: 1 }), true, false)).toBe(false);
    expect(sameValue(spec({ type: 'string', length: 2 }), 'AB', 'AB')).toBe(true);
    expect(sameValue(spec({ type: 'string', length: 2 }), 'AB', 'AC')).toBe(false);
    expect(sameValue(spec({ type: 'bool' }), true, 1 as never)).toBe(false);
  });
});

describe('WriteQueue', () => {
  const job = (point: string) => ({ request: { device: 'd', point, value: 1, expiresAt: 0 }, device: 'd', unit: 1, plan: plan({}), frame: encodeWrite(plan({}), 1) });

  it('first in first out, bounded, failAll settles what waits', async () => {
    const q = new WriteQueue(2);
    const a = q.push(job('a'));
    const b = q.push(job('b'));
    await expect(q.push(job('c'))).resolves.toEqual({ status: 'failed', reason: 'write queue full (2 writes waiting)' });
    expect(q.length).toBe(2);
    const first = q.next()!;
    expect(first.request.point).toBe('a');
    first.settle({ status: 'done', written: 1 });
    await expect(a).resolves.toEqual({ status: 'done', written: 1 });
    q.failAll('bus stopped');
    await expect(b).resolves.toEqual({ status: 'failed', reason: 'bus stopped' });
    expect(q.length).toBe(0);
    expect(q.next()).toBeUndefined();
  });

  it('holds 16 by default', () => {
    expect(WRITE_QUEUE_LIMIT).toBe(16);
  });
});

/** A bus as executeWrite sees it, scripted: every call recorded in order. */
function scriptedIo(over: Partial<WriteIo> & { registers?: number[] } = {}) {
  const calls: string[] = [];
  const registers = over.registers ?? [0, 0, 0, 0];
  let clock = 1000;
  const io: WriteIo & { calls: string[]; setClock(ms: number): void } = {
    bus: 'b',
    calls,
    setClock: (ms) => (clock = ms),
    pause: async () => (calls.push('pause'), true),
    linkUp: () => true,
    now: () => clock,
    write: async (_unit, fc, address, values) => {
      calls.push(`write fc ${fc} @${address} ${values.join(',')}`);
      values.forEach((v, i) => (registers[address - 10 + i] = Number(v)));
    },
    read: async (_unit, fc, address, count) => {
      calls.push(`read fc ${fc} @${address} x${count}`);
      return registers.slice(address - 10, address - 10 + count);
    },
    sleep: async (ms) => void calls.push(`sleep ${ms}`),
    retries: 2,
    busyRetryMs: 100,
    ...over,
  };
  return io;
}

function queued(p: WritePlan, value: number | boolean | string, expiresAt = 5000): WriteJob {
  return { request: { device: 'd', point: p.point, value, expiresAt }, device: 'd', unit: 1, plan: p, frame: encodeWrite(p, value), settle: () => {} };
}

describe('executeWrite: one write on a scripted bus', () => {
  it('pause, send, pause, read back with the point\'s own read, done with both values', async () => {
    const io = scriptedIo();
    const p = plan({ type: 'float32', order: 'CDAB' });
    const r = await executeWrite(io, queued(p, 4.5));
    expect(r).toEqual({ sent: true, outcome: { status: 'done', written: 4.5, readBack: 4.5 } });
    expect(io.calls).toEqual(['pause', 'write fc 16 @10 0,16528', 'pause', 'read fc 3 @10 x2']);
  });

  it('readBack: false is done once the unit acknowledges, without a read', async () => {
    const io = scriptedIo();
    const r = await executeWrite(io, queued(plan({ write: { readBack: false } }), 3));
    expect(r.outcome).toEqual({ status: 'done', written: 3 });
    expect(io.calls).toEqual(['pause', 'write fc 6 @10 3']);
  });

  it('expired when the clock passed expiresAt by the time it could be sent: nothing sent', async () => {
    const io = scriptedIo();
    io.setClock(5001);
    const r = await executeWrite(io, queued(plan({}), 3, 5000));
    expect(r).toEqual({ sent: false, outcome: { status: 'expired', reason: 'expired 1 ms before it could be sent; nothing was written' } });
    expect(io.calls).toEqual(['pause']);
    // At expiresAt itself it still goes.
    io.setClock(5000);
    expect((await executeWrite(io, queued(plan({}), 3, 5000))).outcome.status).toBe('done');
  });

  it('a stop during the pause, or a link gone, sends nothing', async () => {
    expect(await executeWrite(scriptedIo({ pause: async () => false }), queued(plan({}), 3))).toEqual({ sent: false, outcome: { status: 'failed', reason: 'bus stopped' } });
    expect(await executeWrite(scriptedIo({ linkUp: () => false }), queued(plan({}), 3))).toEqual({ sent: false, outcome: { status: 'failed', reason: 'bus b disconnected' } });
  });

  it('an exception: failed with its name, not retried (the unit did not act)', async () => {
    const io = scriptedIo({ write: async () => { io.calls.push('write'); throw new ModbusError('exception', 'exception 2 (illegal data address)', 2); } });
    const r = await executeWrite(io, queued(plan({}), 3));
    expect(r).toEqual({ sent: true, outcome: { status: 'failed', reason: 'unit 1 refused the write of 3 to d.p: exception 2 (illegal data address)' } });
    expect(io.calls).toEqual(['pause', 'write']);
  });

  it('busy (exception 6) is sent again after busyRetryMs, with the expiry checked again', async () => {
    let busy = 1;
    const io = scriptedIo({
      write: async () => {
        io.calls.push('write');
        if (busy-- > 0) throw new ModbusError('exception', 'exception 6 (slave device busy)', 6);
      },
    });
    expect((await executeWrite(io, queued(plan({ write: { readBack: false } }), 3))).outcome).toEqual({ status: 'done', written: 3 });
    expect(io.calls).toEqual(['pause', 'write', 'sleep 100', 'pause', 'write']);

    busy = 1;
    io.calls.length = 0;
    const late = scriptedIo({ ...io, sleep: async () => void late.setClock(9999) });
    late.write = io.write;
    expect((await executeWrite(late, queued(plan({}), 3, 5000))).outcome.status).toBe('expired');

    busy = 99;
    const r = await executeWrite(scriptedIo({ write: io.write, retries: 1 }), queued(plan({}), 3));
    expect(r.outcome).toEqual({ status: 'failed', reason: 'unit 1 refused the write of 3 to d.p: exception 6 (slave device busy)' });
  });

  it('no reply: never sent again; failed, saying what a read-back shows', async () => {
    const registers = [0];
    const io = scriptedIo({
      registers,
      write: async (_u, _fc, _a, values) => {
        io.calls.push('write');
        registers[0] = Number(values[0]); // it landed, but the reply was lost
        throw new ModbusError('timeout', 'timeout after 500 ms');
      },
    });
    const r = await executeWrite(io, queued(plan({ scale: 0.1 }), 2.5));
    expect(r.outcome).toEqual({ status: 'failed', reason: 'no valid reply to the write of 2.5 to d.p (timeout after 500 ms): it may or may not have landed; read back shows 2.5 (the value asked for)' });
    expect(io.calls.filter((c) => c === 'write')).toHaveLength(1);

    const dead = scriptedIo({ write: io.write, read: async () => { throw new ModbusError('timeout', 'timeout after 500 ms'); } });
    registers[0] = 0;
    expect((await executeWrite(dead, queued(plan({}), 7))).outcome).toEqual({
      status: 'failed', reason: 'no valid reply to the write of 7 to d.p (timeout after 500 ms): it may or may not have landed; read back failed too: timeout after 500 ms',
    });
    const unread = await executeWrite(scriptedIo({ write: io.write }), queued(plan({ write: { readBack: false } }), 7));
    expect(unread.outcome).toEqual({ status: 'failed', reason: 'no valid reply to the write of 7 to d.p (timeout after 500 ms): it may or may not have landed' });
    const crc = await executeWrite(scriptedIo({ registers: [5], write: async () => { throw new ModbusError('crc', 'CRC error in response'); } }), queued(plan({}), 7));
    expect(crc.outcome).toEqual({ status: 'failed', reason: 'no valid reply to the write of 7 to d.p (CRC error in response): it may or may not have landed; read back shows 5' });
  });

  it('a lost link during the write: failed, may or may not have landed', async () => {
    const io = scriptedIo({ write: async () => { throw new ModbusError('disconnected', 'link to tcp://h:502 closed during a request'); } });
    expect((await executeWrite(io, queued(plan({}), 7))).outcome).toEqual({ status: 'failed', reason: 'link to tcp://h:502 closed during a request: the write of 7 to d.p may or may not have landed' });
  });

  it('a read-back that differs is failed with both values; a failed read-back is failed', async () => {
    const registers = [0];
    const clamp = scriptedIo({ registers, write: async (_u, _f, _a, values) => void (registers[0] = Math.min(Number(values[0]), 400)) });
    expect((await executeWrite(clamp, queued(plan({ scale: 0.01 }), 4.5))).outcome).toEqual({
      status: 'failed', reason: 'read back 4 after writing 4.5 to d.p: the unit did not keep the value',
    });
    const coil = scriptedIo({ registers: [0], write: async () => {} });
    expect((await executeWrite(coil, queued(plan({ fc: 1 }), true))).outcome).toEqual({ status: 'failed', reason: 'read back false after writing true to d.p: the unit did not keep the value' });
    const refused = scriptedIo({ read: async () => { throw new ModbusError('exception', 'exception 2 (illegal data address)', 2); } });
    expect((await executeWrite(refused, queued(plan({}), 7))).outcome).toEqual({
      status: 'failed', reason: 'unit 1 acknowledged the write of 7 to d.p, but reading it back failed: exception 2 (illegal data address)',
    });
  });

  it('a read-back that times out is read again (reading is safe to repeat)', async () => {
    let silent = 2;
    const io = scriptedIo({
      read: async () => {
        io.calls.push('read');
        if (silent-- > 0) throw new ModbusError('timeout', 'timeout after 500 ms');
        return [7];
      },
    });
    expect((await executeWrite(io, queued(plan({}), 7))).outcome).toEqual({ status: 'done', written: 7, readBack: 7 });
    expect(io.calls.filter((c) => c === 'read')).toHaveLength(3);
  });
});

// ------------------------------------------------------------------------------------------------ the bus

interface Transaction {
  kind: 'read' | 'write';
  unit: number;
  fc: number;
  address: number;
  values?: Array<number | boolean>;
  start: number;
  end: number;
}

/** A ModbusLink stand-in: registers and coils per unit, a delay per transaction, scripted failures. */
class FakeLink extends EventEmitter {
  readonly target: Target = { transport: 'tcp', host: 'fake', port: 502 };
  readonly timeoutMs = 100;
  open_ = false;
  canOpen = true;
  delayMs = 2;
  readonly log: Transaction[] = [];
  readonly holding = new Map<number, number[]>();
  readonly coils = new Map<number, boolean[]>();
  /** Throws instead of writing, once per entry. */
  writeFailures: ModbusError[] = [];
  /** What the unit keeps of a written register (a device clamping to its own limit). */
  keep: (v: number) => number = (v) => v;
  private inFlight = false;

  get isOpen(): boolean {
    return this.open_;
  }

  /** How long open() takes (a device that is slow to accept). */
  openDelayMs = 0;

  async open(): Promise<void> {
    if (this.openDelayMs > 0) await new Promise((r) => setTimeout(r, this.openDelayMs));
    if (!this.canOpen) throw new ModbusError('connect', 'cannot open tcp://fake:502: refused');
    this.open_ = true;
  }

  async close(): Promise<void> {
    this.open_ = false;
  }

  /** The link goes away by itself, as a socket closing. */
  drop(): void {
    this.open_ = false;
    this.emit('close', 'peer closed');
  }

  private async transaction<T>(t: Omit<Transaction, 'start' | 'end'>, body: () => T): Promise<T> {
    if (!this.open_) throw new ModbusError('disconnected', 'link to tcp://fake:502 is not open');
    if (this.inFlight) throw new Error('two transactions at once');
    this.inFlight = true;
    const start = performance.now();
    try {
      await new Promise((r) => setTimeout(r, this.delayMs));
      return body();
    } finally {
      this.inFlight = false;
      this.log.push({ ...t, start, end: performance.now() });
    }
  }

  read(unit: number, fc: ReadFc, address: number, count: number): Promise<number[] | boolean[]> {
    return this.transaction({ kind: 'read', unit, fc, address }, () => {
      if (fc === 1) return Array.from({ length: count }, (_, i) => this.coils.get(unit)?.[address + i] ?? false);
      return Array.from({ length: count }, (_, i) => this.holding.get(unit)?.[address + i] ?? 0);
    });
  }

  write(unit: number, fc: WriteFc, address: number, values: number[] | boolean[]): Promise<void> {
    return this.transaction({ kind: 'write', unit, fc, address, values: [...values] }, () => {
      const failure = this.writeFailures.shift();
      if (failure) throw failure;
      if (fc === 5 || fc === 15) {
        const c = this.coils.get(unit) ?? [];
        values.forEach((v, i) => (c[address + i] = Boolean(v)));
        this.coils.set(unit, c);
      } else {
        const h = this.holding.get(unit) ?? [];
        values.forEach((v, i) => (h[address + i] = this.keep(Number(v))));
        this.holding.set(unit, h);
      }
    });
  }
}

let bus: ModbusBus | undefined;
afterEach(async () => {
  await bus?.stop();
  bus = undefined;
});

/** Polled back to back beside the two devices with writable points: a poll is always due. */
const busyDevices = (n: number) => Array.from({ length: n }, (_, i) => ({ id: `meter${i}`, bus: 'field', unit: 10 + i, pollIntervalMs: 1, points: [{ id: 'v', fc: 3, address: 0 }] }));

function startBus(link: FakeLink, busExtra: Record<string, unknown> = {}, clock?: () => number, extraDevices = 0) {
  const cfg = config({
    gateway: { id: 'gw' },
    buses: [{ id: 'field', transport: 'tcp', host: 'fake', timeoutMs: 100, retries: 1, reconnectMinMs: 50, reconnectMaxMs: 100, ...busExtra }],
    devices: [
      { id: 'pumps', bus: 'field', unit: 1, pollIntervalMs: 1, points: [
        { id: 'level', fc: 3, address: 0 },
        { id: 'setpoint', fc: 3, address: 10, type: 'uint16', scale: 0.01, write: { min: 1.5, max: 4.5 } },
        { id: 'flow_sp', fc: 3, address: 20, type: 'float32', order: 'CDAB', write: true },
        { id: 'blind', fc: 3, address: 30, write: { readBack: false } },
      ] },
      { id: 'valves', bus: 'field', unit: 2, pollIntervalMs: 1, points: [
        { id: 'open', fc: 1, address: 0, write: true },
        { id: 'position', fc: 3, address: 0 },
      ] },
      ...busyDevices(extraDevices),
    ],
  });
  const samples = new SampleLog();
  const rec = recordingLogger();
  bus = new ModbusBus(cfg.buses[0] as ModbusBusConfig, cfg.devices.map(compileDevice), {
    logger: rec.logger, sink: samples.sink, link: link as unknown as ModbusLink, now: clock,
  });
  bus.start();
  return { bus, samples, rec };
}

const soon = () => Date.now() + 10_000;

async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

describe('ModbusBus.write on a scripted link', () => {
  it('refuses at once an unknown device or point, a read-only point, a value of the wrong kind: nothing sent', async () => {
    const link = new FakeLink();
    const { bus } = startBus(link);
    await until(() => bus.linkState === 'connected', 'connected');
    const w = (device: string, point: string, value: number | boolean | string) => bus.write({ device, point, value, expiresAt: soon() });
    expect(await w('nobody', 'x', 1)).toEqual({ status: 'failed', reason: 'no device "nobody" on bus field' });
    expect(await w('pumps', 'nothing', 1)).toEqual({ status: 'failed', reason: 'point pumps.nothing does not exist' });
    expect(await w('pumps', 'level', 1)).toEqual({ status: 'failed', reason: 'point pumps.level is not writable (the configuration gives it no write)' });
    expect(await w('pumps', 'setpoint', 'high')).toEqual({ status: 'failed', reason: 'cannot write "high" to pumps.setpoint: "high" is text; setpoint is uint16' });
    expect(await w('valves', 'open', 1)).toEqual({ status: 'failed', reason: 'cannot write 1 to valves.open: 1 is a number; open is bool (true or false)' });
    expect(link.log.filter((t) => t.kind === 'write')).toEqual([]);
  });

  it('writes with the point\'s encoding and reads back: float32 CDAB (fc 16), scaled uint16 (fc 6), a coil (fc 5)', async () => {
    const link = new FakeLink();
    const { bus } = startBus(link);
    await until(() => bus.linkState === 'connected', 'connected');
    expect(await bus.write({ device: 'pumps', point: 'flow_sp', value: 12.5, expiresAt: soon() })).toEqual({ status: 'done', written: 12.5, readBack: 12.5 });
    expect(await bus.write({ device: 'pumps', point: 'setpoint', value: 2.35, expiresAt: soon() })).toEqual({ status: 'done', written: 2.35, readBack: 2.35 });
    expect(await bus.write({ device: 'valves', point: 'open', value: true, expiresAt: soon() })).toEqual({ status: 'done', written: true, readBack: true });
    expect(await bus.write({ device: 'pumps', point: 'blind', value: 9, expiresAt: soon() })).toEqual({ status: 'done', written: 9 });
    const writes = link.log.filter((t) => t.kind === 'write').map(({ unit, fc, address, values }) => ({ unit, fc, address, values }));
    expect(writes).toEqual([
      { unit: 1, fc: 16, address: 20, values: [0x0000, 0x4148] },
      { unit: 1, fc: 6, address: 10, values: [235] },
      { unit: 2, fc: 5, address: 0, values: [true] },
      { unit: 1, fc: 6, address: 30, values: [9] },
    ]);
    // Each write is followed at once by its read-back, with the point's read function code.
    const after = (i: number) => link.log[link.log.indexOf(link.log.filter((t) => t.kind === 'write')[i]!) + 1]!;
    expect([0, 1, 2].map((i) => [after(i).fc, after(i).address])).toEqual([[3, 20], [3, 10], [1, 0]]);
    expect(bus.health().map((h) => [h.device, h.writes, h.writeErrors])).toEqual([['pumps', 3, undefined], ['valves', 1, undefined]]);
  });

  it('is served ahead of due polls: the next transaction after the one in flight is the write', async () => {
    const link = new FakeLink();
    link.delayMs = 5;
    const { bus } = startBus(link, {}, undefined, 6);
    // Eight devices poll back to back (pollIntervalMs 1): several polls are due at any time.
    await until(() => link.log.length >= 10, 'polls');
    for (let round = 0; round < 5; round++) {
      const before = link.log.length;
      const outcome = bus.write({ device: 'pumps', point: 'setpoint', value: 1.5 + round * 0.5, expiresAt: soon() });
      const done = await outcome;
      expect(done.status).toBe('done');
      const since = link.log.slice(before);
      // At most the transaction already under way (one poll request) comes first.
      const at = since.findIndex((t) => t.kind === 'write');
      expect(at).toBeLessThanOrEqual(1);
      expect(since[at + 1]).toMatchObject({ kind: 'read', fc: 3, address: 10 });
    }
    // One transaction at a time, whatever the mix.
    for (let i = 1; i < link.log.length; i++) expect(link.log[i]!.start).toBeGreaterThanOrEqual(link.log[i - 1]!.end);
  });

  it('waits out requestPauseMs before the write and before its read-back, like any request', async () => {
    const link = new FakeLink();
    const { bus } = startBus(link, { requestPauseMs: 40 });
    await until(() => link.log.length >= 2, 'polls');
    await bus.write({ device: 'pumps', point: 'setpoint', value: 3, expiresAt: soon() });
    const w = link.log.findIndex((t) => t.kind === 'write');
    const [prev, write, back] = [link.log[w - 1]!, link.log[w]!, link.log[w + 1]!];
    expect(write.start - prev.end).toBeGreaterThanOrEqual(39);
    expect(back.start - write.end).toBeGreaterThanOrEqual(39);
  });

  it('checks the expiry on the gateway clock right before sending: a write that waited too long is expired, nothing sent', async () => {
    const link = new FakeLink();
    link.delayMs = 30;
    let clock = 1_000_000;
    const { bus } = startBus(link, {}, () => clock);
    await until(() => link.log.length >= 1, 'a poll');
    const before = link.log.length;
    // Queued while a poll is on the wire; the clock passes its expiry before the poll ends.
    const outcome = bus.write({ device: 'pumps', point: 'setpoint', value: 3, expiresAt: clock + 100 });
    clock += 250;
    expect(await outcome).toEqual({ status: 'expired', reason: 'expired 150 ms before it could be sent; nothing was written' });
    await until(() => link.log.length >= before + 3, 'more polls');
    expect(link.log.filter((t) => t.kind === 'write')).toEqual([]);
    expect(bus.health()[0]!.writes).toBeUndefined();
  });

  it('a full queue refuses the write at once; stop fails every queued one with "bus stopped"', async () => {
    const link = new FakeLink();
    link.delayMs = 100;
    const { bus } = startBus(link);
    await until(() => link.log.length >= 1, 'a poll');
    // All queued while one poll is on the wire, so none is served yet.
    const outcomes: Promise<WriteOutcome>[] = [];
    for (let i = 0; i < WRITE_QUEUE_LIMIT + 2; i++) outcomes.push(bus.write({ device: 'pumps', point: 'setpoint', value: 2, expiresAt: soon() }));
    const settled = new Map<number, WriteOutcome>();
    outcomes.forEach((o, i) => void o.then((r) => settled.set(i, r)));
    await new Promise((r) => setTimeout(r, 0));
    expect(settled.get(WRITE_QUEUE_LIMIT)).toEqual({ status: 'failed', reason: 'write queue full (16 writes waiting)' });
    expect(settled.get(WRITE_QUEUE_LIMIT + 1)).toEqual({ status: 'failed', reason: 'write queue full (16 writes waiting)' });
    expect(settled.size).toBe(2);
    await bus.stop();
    const all = await Promise.all(outcomes);
    expect(all.slice(0, WRITE_QUEUE_LIMIT).every((o) => o.status === 'failed' && o.reason === 'bus stopped')).toBe(true);
    expect(link.log.filter((t) => t.kind === 'write')).toEqual([]);
    expect(await bus.write({ device: 'pumps', point: 'setpoint', value: 2, expiresAt: soon() })).toEqual({ status: 'failed', reason: 'bus stopped' });
  });

  it('a write that arrives during the first connection waits for it: done once connected, failed if it fails', async () => {
    const slow = new FakeLink();
    slow.openDelayMs = 80;
    const { bus } = startBus(slow);
    expect(bus.linkState).toBe('connecting');
    const w = await bus.write({ device: 'pumps', point: 'setpoint', value: 2, expiresAt: soon() });
    expect(w).toEqual({ status: 'done', written: 2, readBack: 2 });
    expect(slow.log.filter((t) => t.kind === 'write')).toHaveLength(1);
    await bus.stop();

    const refused = new FakeLink();
    refused.openDelayMs = 80;
    refused.canOpen = false;
    const second = startBus(refused).bus;
    expect(second.linkState).toBe('connecting');
    expect(await second.write({ device: 'pumps', point: 'setpoint', value: 2, expiresAt: soon() })).toEqual({ status: 'failed', reason: 'bus field disconnected' });
    expect(refused.log.filter((t) => t.kind === 'write')).toEqual([]);
  });

  it('while the link is down a write fails at once; a link lost with writes queued fails them', async () => {
    const link = new FakeLink();
    link.canOpen = false;
    const { bus } = startBus(link);
    await until(() => bus.linkState === 'disconnected', 'a failed open');
    expect(await bus.write({ device: 'pumps', point: 'setpoint', value: 2, expiresAt: soon() })).toEqual({ status: 'failed', reason: 'bus field disconnected' });

    link.canOpen = true;
    link.delayMs = 50;
    await until(() => link.log.length >= 1, 'a poll after the reopen', 3000);
    const queued = [bus.write({ device: 'pumps', point: 'setpoint', value: 2, expiresAt: soon() }), bus.write({ device: 'valves', point: 'open', value: false, expiresAt: soon() })];
    link.drop();
    expect(await Promise.all(queued)).toEqual([
      { status: 'failed', reason: 'bus field disconnected' },
      { status: 'failed', reason: 'bus field disconnected' },
    ]);
    expect(link.log.filter((t) => t.kind === 'write')).toEqual([]);
  });

  it('a Modbus exception fails the write with its name and counts a write error', async () => {
    const link = new FakeLink();
    link.writeFailures.push(new ModbusError('exception', 'exception 3 (illegal data value)', 3));
    const { bus, rec } = startBus(link);
    await until(() => bus.linkState === 'connected', 'connected');
    expect(await bus.write({ device: 'pumps', point: 'setpoint', value: 4, expiresAt: soon() })).toEqual({
      status: 'failed', reason: 'unit 1 refused the write of 4 to pumps.setpoint: exception 3 (illegal data value)',
    });
    expect(bus.health()[0]).toMatchObject({ writes: 1, writeErrors: 1 });
    expect(rec.warnings(/write failed: unit 1 refused/)).toHaveLength(1);
    // Polling goes on.
    const n = link.log.length;
    await until(() => link.log.length > n + 2, 'polls after the write');
  });

  it('a timeout is not sent again: failed, with what the read-back shows', async () => {
    const link = new FakeLink();
    link.holding.set(1, []);
    link.writeFailures.push(new ModbusError('timeout', 'timeout after 100 ms'));
    const { bus } = startBus(link);
    await until(() => bus.linkState === 'connected', 'connected');
    expect(await bus.write({ device: 'pumps', point: 'setpoint', value: 4, expiresAt: soon() })).toEqual({
      status: 'failed', reason: 'no valid reply to the write of 4 to pumps.setpoint (timeout after 100 ms): it may or may not have landed; read back shows 0',
    });
    expect(link.log.filter((t) => t.kind === 'write')).toHaveLength(1);
  });

  it('a read-back that differs (the unit clamps to its own limit) fails with both values', async () => {
    const link = new FakeLink();
    link.keep = (v) => Math.min(v, 400);
    const { bus } = startBus(link);
    await until(() => bus.linkState === 'connected', 'connected');
    expect(await bus.write({ device: 'pumps', point: 'setpoint', value: 4.5, expiresAt: soon() })).toEqual({
      status: 'failed', reason: 'read back 4 after writing 4.5 to pumps.setpoint: the unit did not keep the value',
    });
    expect(bus.health()[0]).toMatchObject({ writes: 1, writeErrors: 1 });
  });

  it('wakes a bus that sleeps until its next poll, so a write does not wait out the poll interval', async () => {
    const link = new FakeLink();
    const cfg = config({
      gateway: { id: 'gw' },
      buses: [{ id: 'slow', transport: 'tcp', host: 'fake' }],
      devices: [{ id: 'd', bus: 'slow', unit: 1, pollIntervalMs: 60_000, points: [{ id: 'sp', fc: 3, address: 0, write: true }] }],
    });
    bus = new ModbusBus(cfg.buses[0] as ModbusBusConfig, cfg.devices.map(compileDevice), { logger: recordingLogger().logger, sink: () => {}, link: link as unknown as ModbusLink });
    bus.start();
    await until(() => link.log.length >= 1, 'the first poll');
    const t0 = performance.now();
    expect(await bus.write({ device: 'd', point: 'sp', value: 5, expiresAt: soon() })).toEqual({ status: 'done', written: 5, readBack: 5 });
    expect(performance.now() - t0).toBeLessThan(1000);
  });
});
