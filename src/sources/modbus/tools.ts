/**
 * The technician's tools on a live Modbus bus: read any registers or bits of any unit with a chosen type and
 * order (what `fieldgate read` does), and scan a range of unit ids for those that answer (what `fieldgate scan`
 * does), while the bus keeps polling. A tool request is queued on the bus like a write (bus.ts asks `wants` at
 * each step and lets `serve` run one transaction): one transaction at a time, after the bus's pause like any
 * request, writes first; while polls are due a tool transaction and a device's poll take turns, so a scan of
 * 247 units slows polling down but never stops it. At most one tool request per bus at a time; a scan reports
 * its progress and can be cancelled between two units. Nothing here throws to the bus.
 */
import { nextDue, monotonic, type ScheduledRun } from '../schedule.js';
import { compileDecoder, type DecodedValue } from './decode.js';
import { ModbusError } from './errors.js';
import { MAX_BITS_PER_READ, MAX_REGISTERS_PER_READ, ORDERS, POINT_TYPES, isBitFc, pointWidth, type Order, type PointType, type ReadFc } from './types.js';

export interface ReadTool {
  kind: 'read';
  unit: number;
  fc: ReadFc;
  address: number;
  /** Values of `type`, one after another. */
  count: number;
  type: PointType;
  order: Order;
  /** A string's length in registers. */
  length?: number;
}

export interface ScanTool {
  kind: 'scan';
  /** Unit ids from..to, both included (1-247). */
  from: number;
  to: number;
  fc: ReadFc;
  address: number;
  /** Each unit's own timeout: short, so 247 silent units cost well under a minute. */
  timeoutMs: number;
}

export type ToolRequest = ReadTool | ScanTool;

/** A unit that answered a scan: with a value, or with a Modbus exception (it is there, it lacks the register). */
export interface ScanHit {
  unit: number;
  value?: number | boolean;
  exception?: number;
  message: string;
  ms: number;
}

export interface ScanProgress {
  /** Units asked so far, of `total`. */
  tried: number;
  total: number;
  /** The unit asked last. */
  unit: number;
  found: ScanHit[];
}

export interface ReadResult {
  kind: 'read';
  unit: number;
  fc: ReadFc;
  address: number;
  type: PointType;
  order: Order;
  values: DecodedValue[];
  /** The raw registers (or bits) as they came. */
  registers: number[] | boolean[];
  ms: number;
}

export interface ScanResult extends ScanProgress {
  kind: 'scan';
  cancelled: boolean;
  ms: number;
}

export type ToolOutcome =
  | { status: 'done'; result: ReadResult | ScanResult }
  | { status: 'failed'; reason: string; partial?: ScanResult };

export interface ToolControl {
  /** Aborting ends a scan between two units (done, cancelled, with what it found). */
  signal?: AbortSignal;
  progress?(p: ScanProgress): void;
}

/** What the tools need of their bus: its pause, link state and transactions with their own timeout. */
export interface ToolIo {
  bus: string;
  /** Waits out the pause after the last transaction; false when the bus stopped meanwhile. */
  pause(): Promise<boolean>;
  linkUp(): boolean;
  read(unit: number, fc: ReadFc, address: number, count: number, timeoutMs?: number): Promise<number[] | boolean[]>;
}

export const SCAN_TIMEOUT_MS = { min: 20, default: 200, max: 1000 } as const;
/** A scan gives up after the link went away this many times under it (a TCP gateway may drop unknown units). */
const SCAN_MAX_LINK_LOSSES = 3;

class Invalid extends Error {}

function int(o: Record<string, unknown>, k: string, min: number, max: number, fallback?: number): number {
  const v = o[k] ?? fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw new Invalid(`"${k}" must be a whole number from ${min} to ${max}`);
  return v;
}

function oneOf<T extends string>(o: Record<string, unknown>, k: string, allowed: readonly T[], fallback: T): T {
  const v = o[k] ?? fallback;
  if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) throw new Invalid(`"${k}" must be one of ${allowed.join(', ')}`);
  return v as T;
}

/**
 * A tool request from its JSON form (the status page's), checked as `fieldgate read` and `scan` check their
 * flags: unit ids 1-247, one request of at most 125 registers or 2000 bits, addresses within 0-65535. Throws an
 * Error whose message names the field.
 */
export function parseToolRequest(raw: unknown): ToolRequest {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new Invalid('the request is not a JSON object');
  const o = raw as Record<string, unknown>;
  const fc = int(o, 'fc', 1, 4, 3) as ReadFc;
  const address = int(o, 'address', 0, 65535, 0);
  if (o.kind === 'scan') {
    const from = int(o, 'from', 1, 247, 1);
    const to = int(o, 'to', from, 247, 247);
    const timeoutMs = int(o, 'timeoutMs', SCAN_TIMEOUT_MS.min, SCAN_TIMEOUT_MS.max, SCAN_TIMEOUT_MS.default);
    return { kind: 'scan', from, to, fc, address, timeoutMs };
  }
  if (o.kind !== 'read') throw new Invalid('"kind" must be read or scan');
  const unit = int(o, 'unit', 1, 247);
  const type = isBitFc(fc) ? 'bool' : oneOf(o, 'type', POINT_TYPES.filter((t) => t !== 'bool'), 'uint16');
  const order = oneOf(o, 'order', ORDERS, 'ABCD');
  const length = type === 'string' ? int(o, 'length', 1, MAX_REGISTERS_PER_READ, 1) : undefined;
  const count = int(o, 'count', 1, isBitFc(fc) ? MAX_BITS_PER_READ : MAX_REGISTERS_PER_READ, 1);
  const total = pointWidth(fc, type, length) * count;
  const max = isBitFc(fc) ? MAX_BITS_PER_READ : MAX_REGISTERS_PER_READ;
  if (total > max) throw new Invalid(`${count} x ${type} needs ${total} ${isBitFc(fc) ? 'bits' : 'registers'}; one request reads at most ${max}`);
  if (address + total > 65536) throw new Invalid(`address ${address} + ${total} runs past 65535`);
  return { kind: 'read', unit, fc, address, count, type, order, ...(length !== undefined ? { length } : {}) };
}

/** What a scan or a read says about one request in words, for the unit at fault. */
function explain(e: ModbusError): string {
  if (e.kind === 'timeout') return `${e.message}: no answer; check the unit id, baud rate, parity, A/B wiring and termination`;
  if (e.kind === 'crc') return `${e.message}: check the baud rate, parity and wiring noise`;
  if (e.kind === 'exception' && e.code === 2) return `${e.message}: no such register (manuals often count from 1 or as 40001; this address is 0-based)`;
  return e.message;
}

const asModbusError = (err: unknown): ModbusError => (err instanceof ModbusError ? err : new ModbusError('disconnected', String(err)));

interface Job {
  request: ToolRequest;
  control: ToolControl;
  settle(outcome: ToolOutcome): void;
  startedAt: number;
  units: number[];
  tried: number;
  found: ScanHit[];
  losses: number;
}

/** The one tool request of a bus, served a transaction at a time between polls. */
export class ToolRunner {
  private job: Job | undefined;
  /** A due poll was let go first last time: the tool's turn now. */
  private yielded = false;
  /** A transaction of the job is on the wire: a cancel waits for it to end. */
  private active = false;

  /** `wake`: ends the bus's sleep until the next poll, so a request queued meanwhile starts at once. */
  constructor(
    private readonly io: ToolIo,
    private readonly wake: () => void,
  ) {}

  /** What runs now, for a refusal's words. */
  get running(): string | undefined {
    const j = this.job;
    if (!j) return undefined;
    const r = j.request;
    return r.kind === 'scan' ? `a scan of units ${r.from}-${r.to} (${j.tried}/${j.units.length})` : `a read of unit ${r.unit}`;
  }

  /** Queues a request; refused at once (failed) when `notReady` names why, or another runs on this bus. */
  submit(request: ToolRequest, control: ToolControl = {}, notReady?: string): Promise<ToolOutcome> {
    if (notReady) return Promise.resolve({ status: 'failed', reason: notReady });
    const running = this.running;
    if (running) return Promise.resolve({ status: 'failed', reason: `busy: ${running} is running on bus ${this.io.bus}; cancel it or wait` });
    if (control.signal?.aborted) return Promise.resolve({ status: 'failed', reason: 'cancelled before it started' });
    const units = request.kind === 'scan' ? Array.from({ length: request.to - request.from + 1 }, (_, i) => request.from + i) : [];
    return new Promise((settle) => {
      const job: Job = { request, control, settle, startedAt: monotonic(), units, tried: 0, found: [], losses: 0 };
      this.job = job;
      this.yielded = false;
      control.signal?.addEventListener('abort', () => {
        if (this.job === job && !this.active) this.finishScan(job, true);
      }, { once: true });
      this.wake();
    });
  }

  /** Whether the bus's next transaction is the tool's: always when no poll is due, every other one when polls are. */
  wants(runs: readonly ScheduledRun[]): boolean {
    if (!this.job) return false;
    const due = nextDue(runs);
    if (!due || due.dueAt > monotonic() || this.yielded) {
      this.yielded = false;
      return true;
    }
    this.yielded = true;
    return false;
  }

  /** One transaction of the current request. */
  async serve(): Promise<void> {
    const job = this.job;
    if (!job) return;
    this.active = true;
    try {
      if (job.request.kind === 'read') await this.serveRead(job, job.request);
      else await this.serveScan(job, job.request);
    } finally {
      this.active = false;
    }
  }

  /** The bus stopped: the request ends failed (a scan with what it found). */
  stop(reason: string): void {
    const job = this.job;
    if (!job) return;
    if (job.request.kind === 'scan') this.end(job, { status: 'failed', reason, partial: this.scanResult(job, false) });
    else this.end(job, { status: 'failed', reason });
  }

  /** The link went: a read waiting for it fails; a scan goes on after the reconnect (it counts the loss when it sees it). */
  lost(reason: string): void {
    const job = this.job;
    if (job?.request.kind === 'read' && !this.active) this.end(job, { status: 'failed', reason });
  }

  private async serveRead(job: Job, r: ReadTool): Promise<void> {
    if (!(await this.io.pause())) return this.end(job, { status: 'failed', reason: 'bus stopped' });
    if (!this.io.linkUp()) return this.end(job, { status: 'failed', reason: `bus ${this.io.bus} disconnected` });
    const width = pointWidth(r.fc, r.type, r.length);
    const sent = monotonic();
    try {
      const raw = await this.io.read(r.unit, r.fc, r.address, width * r.count);
      const decode = compileDecoder({ fc: r.fc, type: r.type, order: r.order, length: r.length, scale: 1, offset: 0 });
      const values = Array.from({ length: r.count }, (_, i) => decode(raw, i * width));
      const result: ReadResult = { kind: 'read', unit: r.unit, fc: r.fc, address: r.address, type: r.type, order: r.order, values, registers: raw, ms: elapsed(sent) };
      this.end(job, { status: 'done', result });
    } catch (err) {
      this.end(job, { status: 'failed', reason: `unit ${r.unit} fc ${r.fc} address ${r.address}: ${explain(asModbusError(err))}` });
    }
  }

  private async serveScan(job: Job, r: ScanTool): Promise<void> {
    if (job.control.signal?.aborted) return this.finishScan(job, true);
    if (!(await this.io.pause())) return this.stop('bus stopped');
    if (this.job !== job) return;
    if (!this.io.linkUp()) return; // served again once the link is back
    const unit = job.units[job.tried]!;
    const sent = monotonic();
    try {
      const data = await this.io.read(unit, r.fc, r.address, 1, r.timeoutMs);
      job.found.push({ unit, value: data[0]!, message: `answers: ${String(data[0])} at ${r.address}`, ms: elapsed(sent) });
    } catch (err) {
      const e = asModbusError(err);
      // 10 and 11 come from a TCP gateway saying the unit behind it is absent or silent.
      if (e.kind === 'exception' && e.code !== 10 && e.code !== 11) {
        job.found.push({ unit, exception: e.code, message: `answers with ${explain(e)}`, ms: elapsed(sent) });
      } else if (e.linkLost && ++job.losses >= SCAN_MAX_LINK_LOSSES) {
        job.tried++;
        return this.end(job, { status: 'failed', reason: `the link was lost ${job.losses} times during the scan (last at unit ${unit}: ${e.message})`, partial: this.scanResult(job, false) });
      }
    }
    if (this.job !== job) return;
    job.tried++;
    job.control.progress?.({ tried: job.tried, total: job.units.length, unit, found: [...job.found] });
    if (job.tried >= job.units.length) this.finishScan(job, false);
  }

  private finishScan(job: Job, cancelled: boolean): void {
    this.end(job, { status: 'done', result: this.scanResult(job, cancelled) });
  }

  private scanResult(job: Job, cancelled: boolean): ScanResult {
    return { kind: 'scan', tried: job.tried, total: job.units.length, unit: job.units[Math.max(0, job.tried - 1)] ?? 0, found: [...job.found], cancelled, ms: elapsed(job.startedAt) };
  }

  private end(job: Job, outcome: ToolOutcome): void {
    if (this.job !== job) return;
    this.job = undefined;
    job.settle(outcome);
  }
}

const elapsed = (since: number) => Math.round((monotonic() - since) * 10) / 10;
