/**
 * Scheduling of one Modbus bus: one transaction at a time (RS-485 is half duplex, and a TCP gateway in front
 * of a serial line is too), every device at its own poll interval, pauses between requests and after connect.
 * A unit that stops answering costs only its own timeout and is backed off; a link that goes away is reopened
 * by a single-flight loop with capped exponential backoff and jitter. Nothing here throws to the caller.
 */
import { EventEmitter } from 'node:events';
import type { ModbusBusConfig } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { Sample } from '../sample.js';
import { decodeResponse, failedRequest, type CompiledDevice, type CompiledRequest } from './modbus/device.js';
import { ModbusError, ModbusLink, describeTarget, type Target } from './modbus/link.js';

export type LinkState = 'connecting' | 'connected' | 'disconnected' | 'stopped';

/** What the status surface and metrics read about each device. */
export interface DeviceHealth {
  device: string;
  state: 'ok' | 'failing';
  requests: number;
  errors: Record<string, number>;
  lastGoodTs?: number;
  lastError?: string;
  backoffMs: number;
}

export interface BusDeps {
  logger: Logger;
  sink: (samples: Sample[]) => void;
  now?: () => number;
  /** For tests: a link other than modbus-serial's. */
  link?: ModbusLink;
}

interface DeviceRun {
  device: CompiledDevice;
  dueAt: number;
  health: DeviceHealth;
  /** Last reason logged per request, so a persistent error is logged once, not once per poll. */
  reported: Map<CompiledRequest, string>;
}

/** Schedules run on the monotonic clock: an NTP step or a wrong boot clock must not stall or rush polling. */
const monotonic = (): number => performance.now();

export function busTarget(bus: ModbusBusConfig): Target {
  if (bus.transport === 'rtu') {
    return { transport: 'rtu', port: bus.port, baudRate: bus.baudRate, parity: bus.parity, dataBits: bus.dataBits, stopBits: bus.stopBits };
  }
  return { transport: bus.transport, host: bus.host, port: bus.port };
}

export class ModbusBus extends EventEmitter {
  private readonly link: ModbusLink;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly runs: DeviceRun[];
  private state: LinkState = 'disconnected';
  private running = false;
  private loopDone: Promise<void> = Promise.resolve();
  private wake: (() => void) | undefined;
  private lastTransactionEnd = 0;
  private reconnectDelay: number;
  private lastConnectError = '';
  reconnects = 0;

  constructor(
    readonly config: ModbusBusConfig,
    devices: CompiledDevice[],
    private readonly deps: BusDeps,
  ) {
    super();
    this.link = deps.link ?? new ModbusLink(busTarget(config), config.timeoutMs);
    this.log = deps.logger.child({ bus: config.id });
    this.now = deps.now ?? Date.now;
    this.reconnectDelay = config.reconnectMinMs;
    this.runs = devices.map((device) => ({
      device,
      dueAt: 0,
      reported: new Map(),
      health: { device: device.id, state: 'ok', requests: 0, errors: {}, backoffMs: 0 },
    }));
    this.link.on('close', () => this.onLinkLost('port or connection closed'));
  }

  get linkState(): LinkState {
    return this.state;
  }

  health(): DeviceHealth[] {
    return this.runs.map((r) => ({ ...r.health, errors: { ...r.health.errors } }));
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loopDone = this.loop().catch((err) => this.log.error({ err }, 'bus loop failed; this is a bug'));
  }

  async stop(): Promise<void> {
    this.running = false;
    this.wake?.();
    await this.loopDone;
    await this.link.close();
    this.setState('stopped');
  }

  private setState(state: LinkState, detail?: string): void {
    if (this.state === state) return;
    this.state = state;
    this.emit('state', state, detail);
  }

  private async loop(): Promise<void> {
    while (this.running) {
      if (!this.link.isOpen) {
        // A port can vanish without a 'close' event (a pulled USB adapter, seen by the library only as not open).
        if (this.state === 'connected') this.onLinkLost('the port or socket is no longer open');
        await this.connect();
        continue;
      }
      const run = this.nextDue();
      if (!run) {
        await this.sleep(1000);
        continue;
      }
      const wait = run.dueAt - monotonic();
      if (wait > 0) {
        await this.sleep(wait);
        continue;
      }
      await this.poll(run);
    }
  }

  private nextDue(): DeviceRun | undefined {
    let best: DeviceRun | undefined;
    for (const r of this.runs) if (!best || r.dueAt < best.dueAt) best = r;
    return best;
  }

  /** Interruptible sleep, so stop() never waits for a long poll interval or backoff. */
  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    });
  }

  private async connect(): Promise<void> {
    this.setState('connecting');
    try {
      await this.link.open();
    } catch (err) {
      const reason = (err as Error).message;
      if (reason !== this.lastConnectError) {
        this.log.warn({ target: describeTarget(this.link.target), retryInMs: this.reconnectDelay }, `cannot connect: ${reason}; retrying with backoff`);
        this.lastConnectError = reason;
      }
      this.setState('disconnected', reason);
      const jitter = 0.8 + Math.random() * 0.4;
      await this.sleep(this.reconnectDelay * jitter);
      this.reconnectDelay = Math.min(this.reconnectDelay * 2, this.config.reconnectMaxMs);
      return;
    }
    this.reconnects++;
    this.lastConnectError = '';
    this.reconnectDelay = this.config.reconnectMinMs;
    this.log.info({ target: describeTarget(this.link.target) }, 'connected');
    this.setState('connected');
    if (this.config.connectPauseMs > 0) await this.sleep(this.config.connectPauseMs);
    this.lastTransactionEnd = monotonic();
  }

  private onLinkLost(reason: string): void {
    if (this.state !== 'connected') return;
    this.log.warn({ target: describeTarget(this.link.target) }, `link lost: ${reason}; reconnecting`);
    this.setState('disconnected', reason);
    // Every point learns once that its bus is down; no samples are made up while it stays down.
    const ts = this.now();
    for (const r of this.runs) {
      this.deps.sink(r.device.requests.flatMap((q) => failedRequest(r.device, q, ts, `bus ${this.config.id} disconnected`)));
    }
    this.wake?.();
  }

  private async poll(run: DeviceRun): Promise<void> {
    const { device, health } = run;
    const samples: Sample[] = [];
    let unitSilent: ModbusError | undefined;
    for (const request of device.requests) {
      if (!this.running || !this.link.isOpen) return;
      if (unitSilent) {
        samples.push(...failedRequest(device, request, this.now(), unitSilent.message));
        continue;
      }
      try {
        const data = await this.transact(run, request);
        samples.push(...decodeResponse(device, request, data, this.now()));
        this.noteGood(run, request);
      } catch (err) {
        const e = err as ModbusError;
        if (e.linkLost) return; // onLinkLost reports every point
        samples.push(...failedRequest(device, request, this.now(), e.message));
        this.noteError(run, request, e);
        // A unit that does not answer at all would cost a timeout per request: skip its other requests.
        if (e.kind === 'timeout') unitSilent = e;
      }
    }
    this.schedule(run, unitSilent);
    if (samples.length > 0) this.deps.sink(samples);
  }

  private schedule(run: DeviceRun, silent: ModbusError | undefined): void {
    const { health, device } = run;
    const now = monotonic();
    if (silent) {
      health.backoffMs = health.backoffMs === 0 ? this.config.unitBackoffMinMs : Math.min(health.backoffMs * 2, this.config.unitBackoffMaxMs);
      if (health.state === 'ok') {
        this.log.warn({ device: device.id, unit: device.unit, retryInMs: health.backoffMs }, `unit ${device.unit} not answering (${silent.message}); backing off`);
      }
      health.state = 'failing';
      run.dueAt = now + Math.max(health.backoffMs, device.pollIntervalMs);
      return;
    }
    if (health.state === 'failing') {
      this.log.info({ device: device.id, unit: device.unit }, `unit ${device.unit} answers again`);
      health.state = 'ok';
      health.backoffMs = 0;
    }
    // Keep the cadence; after an overrun start again from now instead of firing a burst of late polls.
    run.dueAt = run.dueAt === 0 ? now + device.pollIntervalMs : Math.max(run.dueAt + device.pollIntervalMs, now);
  }

  /** One request with its retries: busy (exception 6) after a wait, timeout and CRC/frame errors at once. */
  private async transact(run: DeviceRun, request: CompiledRequest): Promise<number[] | boolean[]> {
    const cfg = this.config;
    // A unit already known to be silent gets one probe, not a full set of retries.
    const attempts = run.health.state === 'failing' ? 1 : cfg.retries + 1;
    let last: ModbusError | undefined;
    for (let attempt = 0; attempt < attempts; attempt++) {
      const pause = this.lastTransactionEnd + cfg.requestPauseMs - monotonic();
      if (pause > 0) await this.sleep(pause);
      if (!this.running) break;
      run.health.requests++;
      try {
        return await this.link.read(run.device.unit, request.fc, request.address, request.count);
      } catch (err) {
        last = err instanceof ModbusError ? err : new ModbusError('disconnected', String(err));
        if (last.linkLost) throw last;
        if (last.kind === 'exception' && last.code !== 6) throw last;
        if (last.kind === 'exception' && cfg.busyRetryMs > 0) await this.sleep(cfg.busyRetryMs);
      } finally {
        this.lastTransactionEnd = monotonic();
      }
    }
    throw last ?? new ModbusError('disconnected', 'bus stopped');
  }

  private noteGood(run: DeviceRun, request: CompiledRequest): void {
    run.health.lastGoodTs = this.now();
    const before = run.reported.get(request);
    if (before) {
      run.reported.delete(request);
      this.log.info({ device: run.device.id, fc: request.fc, address: request.address }, `request answers again (was: ${before})`);
    }
  }

  private noteError(run: DeviceRun, request: CompiledRequest, e: ModbusError): void {
    const h = run.health;
    h.errors[e.kind] = (h.errors[e.kind] ?? 0) + 1;
    h.lastError = e.message;
    if (e.kind === 'timeout') return; // logged per unit state change in schedule()
    if (run.reported.get(request) === e.message) return;
    run.reported.set(request, e.message);
    this.log.warn(
      { device: run.device.id, unit: run.device.unit, fc: request.fc, address: request.address, count: request.count, points: request.points.map((p) => p.id) },
      e.message,
    );
  }
}
