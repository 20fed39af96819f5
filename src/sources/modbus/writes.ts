/**
 * Writes to Modbus points: compiled once per writable point (its encoder, decoder and read-back request), queued
 * per bus (bounded, served ahead of due polls by bus.ts), and executed one transaction at a time.
 *
 * A write is sent once. A busy unit (exception 6) said it did nothing, so that one is sent again after the bus's
 * busyRetryMs; a write that got no valid reply may have landed, so it is never sent blindly again: it fails
 * with what a read-back shows. The expiry is checked right before every send, after the bus's pause.
 */
import type { PointConfig, PointWrite } from '../../config/schema.js';
import { resolvedType } from '../../config/points.js';
import type { WriteOutcome, WriteRequest } from '../types.js';
import { compileDecoder, encodeValue, type DecodedValue, type Decoder, type ValueSpec } from './decode.js';
import { ModbusError } from './errors.js';
import { pointWidth, type WriteFc } from './types.js';

/** Writes waiting on one bus beyond this are refused ('write queue full'): a backlog of commands is no command. */
export const WRITE_QUEUE_LIMIT = 16;

/** Everything a write of one point needs, built once from its configuration. */
export interface WritePlan {
  point: string;
  /** The function code the point is read with: 1 (coil) or 3 (holding register). */
  readFc: 1 | 3;
  address: number;
  /** Coils or registers the point spans. */
  width: number;
  spec: ValueSpec;
  limits: PointWrite;
  decode: Decoder;
}

/** One write transaction: what goes on the wire, and what those registers mean once decoded. */
export interface WriteFrame {
  fc: WriteFc;
  address: number;
  values: number[] | boolean[];
  written: DecodedValue;
}

/** The write plan of a point with `write` (validated: fc 1 or 3, no bit), or undefined for a read-only point. */
export function compileWrite(point: PointConfig): WritePlan | undefined {
  if (!point.write || (point.fc !== 1 && point.fc !== 3) || point.bit !== undefined || point.address === undefined) return undefined;
  const type = resolvedType(point);
  const spec: ValueSpec = { fc: point.fc, type, order: point.order, length: point.length, scale: point.scale, offset: point.offset };
  return {
    point: point.id,
    readFc: point.fc,
    address: point.address,
    width: pointWidth(point.fc, type, point.length),
    spec,
    limits: point.write,
    decode: compileDecoder(spec),
  };
}

/**
 * The transaction that writes `value`: encoded with the point's own type, order, scale and offset; fc 5 or 15
 * for coils, 6 or 16 for registers, by how many it takes. Throws (TypeError, RangeError) a value the point
 * cannot take, with the reason in words.
 */
export function encodeWrite(plan: WritePlan, value: number | boolean | string): WriteFrame {
  const { type } = plan.spec;
  if (type === 'string' ? typeof value !== 'string' : typeof value === 'string') {
    throw new TypeError(`${JSON.stringify(value)} is ${typeof value === 'string' ? 'text' : `a ${typeof value}`}; ${plan.point} is ${type}`);
  }
  if (type === 'bool' && typeof value !== 'boolean') throw new TypeError(`${String(value)} is a number; ${plan.point} is bool (true or false)`);
  const values = encodeValue(plan.spec, value);
  const coils = plan.readFc === 1;
  const fc: WriteFc = coils ? (values.length === 1 ? 5 : 15) : values.length === 1 ? 6 : 16;
  return { fc, address: plan.address, values, written: plan.decode(values, 0) };
}

const SCALED_INTEGERS = new Set(['int16', 'uint16', 'int32', 'uint32', 'int64', 'uint64']);

/**
 * Whether a read-back is the value written, in engineering units: scaled integers within half a count (the
 * decoder rounds to the scale's decimals), float32 by equality as float32 (unscaled), everything else exactly.
 */
export function sameValue(spec: ValueSpec, written: DecodedValue, read: DecodedValue): boolean {
  if (typeof written !== 'number' || typeof read !== 'number') return written === read;
  if (spec.type === 'float32') return Math.fround((written - spec.offset) / spec.scale) === Math.fround((read - spec.offset) / spec.scale);
  if (SCALED_INTEGERS.has(spec.type) && spec.scale !== 1) return Math.abs(written - read) < Math.abs(spec.scale) / 2;
  return written === read;
}

/** A value as a reason shows it: text quoted, numbers and bools as they are. */
export function shownValue(v: DecodedValue): string {
  return typeof v === 'string' ? JSON.stringify(v) : String(v);
}

/** A queued write: the request as given, the unit and plan it goes to, its encoded frame, and who waits for it. */
export interface WriteJob {
  request: WriteRequest;
  device: string;
  unit: number;
  plan: WritePlan;
  frame: WriteFrame;
  settle(outcome: WriteOutcome): void;
}

/** The bounded queue of one bus, first in first out. */
export class WriteQueue {
  private readonly jobs: WriteJob[] = [];

  constructor(private readonly limit = WRITE_QUEUE_LIMIT) {}

  get length(): number {
    return this.jobs.length;
  }

  /** Queues a write; the promise settles when the bus has served it, or at once when the queue is full. */
  push(job: Omit<WriteJob, 'settle'>): Promise<WriteOutcome> {
    if (this.jobs.length >= this.limit) return Promise.resolve(failed(`write queue full (${this.limit} writes waiting)`));
    return new Promise((resolve) => this.jobs.push({ ...job, settle: resolve }));
  }

  next(): WriteJob | undefined {
    return this.jobs.shift();
  }

  /** Fails every queued write with the same reason (the bus stopped, its link went). */
  failAll(reason: string): void {
    for (const job of this.jobs.splice(0)) job.settle(failed(reason));
  }
}

export const failed = (reason: string): WriteOutcome => ({ status: 'failed', reason });

/** What executing a write needs of its bus: its pause, clock, transactions and retry policy. */
export interface WriteIo {
  bus: string;
  /** Waits out the pause after the last transaction; false when the bus stopped meanwhile. */
  pause(): Promise<boolean>;
  linkUp(): boolean;
  /** The gateway clock expiresAt is on. */
  now(): number;
  write(unit: number, fc: WriteFc, address: number, values: number[] | boolean[]): Promise<void>;
  read(unit: number, fc: 1 | 3, address: number, count: number): Promise<number[] | boolean[]>;
  sleep(ms: number): Promise<void>;
  retries: number;
  busyRetryMs: number;
}

/** The outcome, and whether anything was sent to the unit (for its write counters). */
export interface WriteResult {
  outcome: WriteOutcome;
  sent: boolean;
}

const asModbusError = (err: unknown): ModbusError => (err instanceof ModbusError ? err : new ModbusError('disconnected', String(err)));

/** Runs one queued write on the bus: pause, expiry, send (busy retried), read-back. Never throws. */
export async function executeWrite(io: WriteIo, job: WriteJob): Promise<WriteResult> {
  const { frame, plan, unit } = job;
  const what = `${job.device}.${plan.point}`;
  let sent = false;
  for (let attempt = 0; ; attempt++) {
    const ready = await whyNotNow(io, job);
    if (ready) return { outcome: ready, sent };
    try {
      sent = true;
      await io.write(unit, frame.fc, frame.address, frame.values);
      break;
    } catch (err) {
      const e = asModbusError(err);
      if (e.kind === 'exception' && e.code === 6 && attempt < io.retries) {
        if (io.busyRetryMs > 0) await io.sleep(io.busyRetryMs);
        continue;
      }
      if (e.kind === 'exception') return { outcome: failed(`unit ${unit} refused the write of ${shownValue(frame.written)} to ${what}: ${e.message}`), sent };
      if (e.linkLost) return { outcome: failed(`${e.message}: the write of ${shownValue(frame.written)} to ${what} may or may not have landed`), sent };
      const unsure = `no valid reply to the write of ${shownValue(frame.written)} to ${what} (${e.message}): it may or may not have landed`;
      if (!plan.limits.readBack) return { outcome: failed(unsure), sent };
      const back = await readBack(io, job);
      const shows = 'value' in back ? `read back shows ${shownValue(back.value)}${sameValue(plan.spec, frame.written, back.value) ? ' (the value asked for)' : ''}` : `read back failed too: ${back.error}`;
      return { outcome: failed(`${unsure}; ${shows}`), sent };
    }
  }
  if (!plan.limits.readBack) return { outcome: { status: 'done', written: frame.written }, sent };
  const back = await readBack(io, job);
  if (!('value' in back)) return { outcome: failed(`unit ${unit} acknowledged the write of ${shownValue(frame.written)} to ${what}, but reading it back failed: ${back.error}`), sent };
  if (!sameValue(plan.spec, frame.written, back.value)) {
    return { outcome: failed(`read back ${shownValue(back.value)} after writing ${shownValue(frame.written)} to ${what}: the unit did not keep the value`), sent };
  }
  return { outcome: { status: 'done', written: frame.written, readBack: back.value }, sent };
}

/** Undefined when the write may go now; otherwise why it may not (stopped, link down, expired). */
async function whyNotNow(io: WriteIo, job: WriteJob): Promise<WriteOutcome | undefined> {
  if (!(await io.pause())) return failed('bus stopped');
  if (!io.linkUp()) return failed(`bus ${io.bus} disconnected`);
  const late = io.now() - job.request.expiresAt;
  if (late > 0) return { status: 'expired', reason: `expired ${late} ms before it could be sent; nothing was written` };
  return undefined;
}

/** Reads the point back with its own read function code and decoder; a read is safe to repeat. */
async function readBack(io: WriteIo, job: WriteJob): Promise<{ value: DecodedValue } | { error: string }> {
  const { plan, unit } = job;
  let last = 'bus stopped';
  for (let attempt = 0; attempt <= io.retries; attempt++) {
    if (!(await io.pause())) return { error: 'bus stopped' };
    if (!io.linkUp()) return { error: `bus ${io.bus} disconnected` };
    try {
      const data = await io.read(unit, plan.readFc, plan.address, plan.width);
      return { value: plan.decode(data, 0) };
    } catch (err) {
      const e = asModbusError(err);
      last = e.message;
      if (e.linkLost || (e.kind === 'exception' && e.code !== 6)) break;
      if (e.kind === 'exception' && io.busyRetryMs > 0) await io.sleep(io.busyRetryMs);
    }
  }
  return { error: last };
}
