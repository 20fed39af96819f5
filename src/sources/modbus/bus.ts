/**
 * Scheduling of one Modbus bus: one transaction at a time (RS-485 is half duplex, and a TCP gateway in front
 * of a serial line is too), every device at its own poll interval, pauses between requests and after connect.
 * A unit that stops answering costs only its own timeout and is backed off; the link is kept by the shared
 * loop of src/sources/link-loop.ts, the per-device schedule is src/sources/schedule.ts (reopened through the backoff, which only a valid reply resets). Nothing
 * here throws to the caller.
 *
 * A device is up (`ok`) after a poll in which its unit gave at least one valid reply: registers or bits that
 * passed every check, or a Modbus exception (the unit itself saying it cannot serve that request). A poll in
 * which every request timed out or came back garbled (CRC, wrong unit, wrong function code, wrong length)
 * makes it `failing` and backs it off; a poll cut off by the link makes it `failing` too. Before its first
 * poll has an outcome a device is `unknown`.
 *
 * Writes (commands) wait in a bounded queue and are served ahead of due polls, at the next gap between two
 * transactions (also between two requests of one poll), after the bus's pause like any request; how one is sent
 * and read back is in writes.ts.
 */
import type { ModbusBusConfig } from '../../config/schema.js';
import type { Logger } from '../../log.js';
import type { Sample } from '../../sample.js';
import { LinkLoop } from '../link-loop.js';
import { LoopedBus } from '../looped-bus.js';
import { cycleSleep, monotonic, reschedule, stepDue } from '../schedule.js';
import type { DeviceHealth, LinkState, WriteOutcome, WriteRequest } from '../types.js';
import { decodeResponse, failedRequest, type CompiledDevice, type CompiledRequest } from './device.js';
import { ModbusError } from './errors.js';
import { ModbusLink, describeTarget, type Target } from './link.js';
import { encodeWrite, executeWrite, failed, shownValue, WriteQueue, type WriteIo, type WriteJob } from './writes.js';
import { ToolRunner, type ToolControl, type ToolOutcome, type ToolRequest } from './tools.js';

export type { DeviceHealth, LinkState };

export interface BusDeps {
  logger: Logger;
  sink: (samples: Sample[]) => void;
  cycle?: (busy: boolean) => void;
  now?: () => number;
  /** For tests: a link other than modbus-serial's. */
  link?: ModbusLink;
  /** For tests: the reconnect jitter's random source. */
  random?: () => number;
}

/** How a poll ended, for the device's state: a valid reply, none (silent or garbled), or the link went away. */
type PollOutcome = { kind: 'answered' } | { kind: 'no-reply'; error: ModbusError } | { kind: 'lost'; error: ModbusError };

interface DeviceRun {
  device: CompiledDevice;
  dueAt: number;
  health: DeviceHealth;
  /** Last reason logged per request, so a persistent error is logged once, not once per poll. */
  reported: Map<CompiledRequest, string>;
}

export function busTarget(bus: ModbusBusConfig): Target {
  if (bus.transport === 'rtu') {
    return { transport: 'rtu', port: bus.port, baudRate: bus.baudRate, parity: bus.parity, dataBits: bus.dataBits, stopBits: bus.stopBits };
  }
  return { transport: bus.transport, host: bus.host, port: bus.port };
}

export class ModbusBus extends LoopedBus<DeviceRun> {
  private readonly link: ModbusLink;
  protected readonly loop: LinkLoop;
  private readonly log: Logger;
  private readonly now: () => number;
  protected readonly runs: DeviceRun[];
  private lastTransactionEnd = 0;
  private readonly writes = new WriteQueue();
  /** The loop sleeps until the next poll is due: a queued write wakes it (a pause between requests it does not). */
  private idle = false;
  /** Settles when the first connection attempt has succeeded or failed (or the bus stopped first). */
  private readonly firstAttempt: Promise<void>;
  private firstAttemptDone = false;
  private readonly writeIo: WriteIo;
  /** The technician's register reads and scans (tools.ts), served between polls. */
  private readonly tools: ToolRunner;
  private stopped = false;

  constructor(
    readonly config: ModbusBusConfig,
    devices: CompiledDevice[],
    private readonly deps: BusDeps,
  ) {
    super();
    this.link = deps.link ?? new ModbusLink(busTarget(config), config.timeoutMs);
    this.log = deps.logger.child({ bus: config.id });
    this.now = deps.now ?? Date.now;
    this.runs = devices.map((device) => ({
      device,
      dueAt: 0,
      reported: new Map(),
      health: { device: device.id, state: 'unknown', requests: 0, errors: {}, backoffMs: 0 },
    }));
    this.loop = new LinkLoop({
      log: this.log,
      link: this.link,
      target: describeTarget(this.link.target),
      reconnectMinMs: config.reconnectMinMs,
      reconnectMaxMs: config.reconnectMaxMs,
      connectPauseMs: config.connectPauseMs,
      random: deps.random,
      onOpen: () => (this.lastTransactionEnd = monotonic()),
      onLost: () => this.reportDisconnected(),
      step: () => this.step(),
    });
    this.writeIo = this.makeWriteIo();
    const { pause, linkUp } = this.writeIo;
    const read = (unit: number, fc: 1 | 2 | 3 | 4, address: number, count: number, timeoutMs?: number) => this.timed(() => this.link.read(unit, fc, address, count, timeoutMs));
    this.tools = new ToolRunner({ bus: config.id, pause, linkUp, read }, () => {
      if (this.idle) this.loop.wake();
    });
    this.loop.on('state', (state: LinkState, detail?: string) => this.emit('state', state, detail));
    this.firstAttempt = new Promise((settled) => {
      const seen = (state: LinkState) => {
        if (state === 'connecting') return;
        this.loop.off('state', seen);
        this.firstAttemptDone = true;
        settled();
      };
      this.loop.on('state', seen);
    });
    this.link.on('close', (reason?: string) => this.loop.lost(reason ?? 'port or connection closed'));
  }

  /** Ends polling between two transactions, fails the queued writes and destroys the link's socket (or closes its port). */
  stop(): Promise<void> {
    this.stopped = true;
    const stopped = this.loop.stop();
    this.writes.failAll('bus stopped');
    this.tools.stop('bus stopped');
    return stopped;
  }

  /** A register read or a scan of unit ids on the live bus, served between polls; one at a time (tools.ts). */
  tool(request: ToolRequest, control?: ToolControl): Promise<ToolOutcome> {
    const notReady = !this.loop.running ? (this.stopped ? 'bus stopped' : `bus ${this.config.id} is not started`) : this.linkState !== 'connected' ? `bus ${this.config.id} disconnected` : undefined;
    return this.tools.submit(request, control, notReady);
  }

  /**
   * Queues a write of one point, served ahead of due polls. Refused at once (failed): an unknown device or point,
   * a point without `write`, a value its type cannot take, a bus that is stopped or disconnected, a full queue.
   */
  write(request: WriteRequest): Promise<WriteOutcome> {
    const run = this.runs.find((r) => r.device.id === request.device);
    if (!run) return Promise.resolve(failed(`no device "${request.device}" on bus ${this.config.id}`));
    const { device } = run;
    const plan = device.writes.get(request.point);
    if (!plan) {
      const why = device.pointIds.has(request.point) ? 'is not writable (the configuration gives it no write)' : 'does not exist';
      return Promise.resolve(failed(`point ${device.id}.${request.point} ${why}`));
    }
    let frame;
    try {
      frame = encodeWrite(plan, request.value);
    } catch (err) {
      return Promise.resolve(failed(`cannot write ${JSON.stringify(request.value)} to ${device.id}.${plan.point}: ${(err as Error).message}`));
    }
    if (!this.loop.running) return Promise.resolve(failed(this.stopped ? 'bus stopped' : `bus ${this.config.id} is not started`));
    if (this.linkState !== 'connected') {
      // A command that arrives while the bus makes its first connection (one the broker kept for the gateway,
      // delivered at start) waits for that attempt; after it, a link that is down refuses at once.
      if (!this.firstAttemptDone) return this.firstAttempt.then(() => this.write(request));
      return Promise.resolve(failed(`bus ${this.config.id} disconnected`));
    }
    const queued = this.writes.push({ request, device: device.id, unit: device.unit, plan, frame });
    if (this.idle) this.loop.wake();
    return queued;
  }

  /** One step while the link is open: a queued write, else the next due poll, or a sleep until it is due. */
  private step(): Promise<void> {
    const job = this.writes.next();
    if (job) return this.serveWrite(job);
    if (this.tools.wants(this.runs)) return this.tools.serve();
    const cycle = this.deps.cycle;
    const sleep = async (ms: number) => {
      this.idle = true;
      try {
        await this.loop.sleep(ms);
      } finally {
        this.idle = false;
      }
    };
    return stepDue(this.runs, cycleSleep(sleep, cycle), (run) => (cycle?.(true), this.poll(run)), 1000);
  }

  private async serveWrite(job: WriteJob): Promise<void> {
    const { outcome, sent } = await executeWrite(this.writeIo, job);
    const run = this.runs.find((r) => r.device.id === job.device)!;
    if (sent) {
      run.health.writes = (run.health.writes ?? 0) + 1;
      if (outcome.status !== 'done') run.health.writeErrors = (run.health.writeErrors ?? 0) + 1;
    }
    const fields = { device: job.device, point: job.plan.point, unit: job.unit, value: job.request.value };
    if (outcome.status === 'done') this.log.info({ ...fields, readBack: outcome.readBack }, `wrote ${shownValue(outcome.written)} to ${job.device}.${job.plan.point}`);
    else this.log.warn(fields, `write ${outcome.status}: ${outcome.reason}`);
    job.settle(outcome);
  }

  /** The bus as writes.ts sees it: the same pause, link and clock as the polls. */
  private makeWriteIo(): WriteIo {
    return {
      bus: this.config.id,
      pause: async () => {
        await this.loop.quietUntil(this.lastTransactionEnd + this.config.requestPauseMs);
        return this.loop.running;
      },
      linkUp: () => this.link.isOpen && this.linkState === 'connected',
      now: () => this.now(),
      write: (unit, fc, address, values) => this.timed(() => this.link.write(unit, fc, address, values)),
      read: (unit, fc, address, count) => this.timed(() => this.link.read(unit, fc, address, count)),
      sleep: (ms) => this.loop.sleep(ms),
      retries: this.config.retries,
      busyRetryMs: this.config.busyRetryMs,
    };
  }

  private async timed<T>(transaction: () => Promise<T>): Promise<T> {
    try {
      return await transaction();
    } finally {
      this.lastTransactionEnd = monotonic();
    }
  }

  /** Every point learns once that its bus is down; no samples are made up while it stays down. */
  private reportDisconnected(): void {
    this.writes.failAll(`bus ${this.config.id} disconnected`);
    this.tools.lost(`bus ${this.config.id} disconnected`);
    const ts = this.now();
    for (const r of this.runs) {
      this.deps.sink(r.device.requests.flatMap((q) => failedRequest(r.device, q, ts, `bus ${this.config.id} disconnected`)));
    }
    this.deps.cycle?.(false);
  }

  /**
   * One poll of a device: its requests in turn. Each request's samples go to the sink as soon as its reply is
   * decoded (a reading does not wait for the device's other requests); the poll's end is told by the bus's
   * cycle signal, which is what a grouped commit waits for.
   */
  private async poll(run: DeviceRun): Promise<void> {
    const { device } = run;
    let unitSilent: ModbusError | undefined;
    let answered = false;
    let failure: ModbusError | undefined;
    /** Bad samples of the requests a silent unit was not asked: handed over together at the poll's end. */
    let skipped: Sample[] = [];
    const emit = (samples: Sample[]) => {
      if (samples.length > 0) this.deps.sink(samples);
    };
    for (const request of device.requests) {
      if (!this.loop.running) return;
      // A write waits at most one transaction, also in the middle of a poll of many requests.
      for (let job = this.writes.next(); job; job = this.writes.next()) await this.serveWrite(job);
      if (!this.loop.running) return;
      if (!this.link.isOpen) {
        // The link went between two requests of this poll: it is cut off all the same.
        emit(skipped);
        this.schedule(run, answered ? { kind: 'answered' } : { kind: 'lost', error: new ModbusError('disconnected', `link to ${describeTarget(this.link.target)} lost during the poll`) });
        return;
      }
      if (unitSilent) {
        skipped = skipped.concat(failedRequest(device, request, this.now(), unitSilent.message));
        continue;
      }
      try {
        const data = await this.transact(run, request);
        this.noteGood(run, request);
        answered = true;
        emit(decodeResponse(device, request, data, this.now()));
      } catch (err) {
        const e = err as ModbusError;
        if (!this.loop.running) return;
        this.noteError(run, request, e);
        if (e.linkLost) {
          // The loss reports every point; the device learns its poll was cut off (and is not up on that).
          this.schedule(run, answered ? { kind: 'answered' } : { kind: 'lost', error: e });
          return;
        }
        if (e.kind === 'exception') {
          // The unit answered, it only cannot serve this request: the unit and the link work.
          answered = true;
          this.loop.healthy();
        } else failure ??= e;
        // A unit that does not answer at all would cost a timeout per request: skip its other requests.
        if (e.kind === 'timeout') unitSilent = e;
        emit(failedRequest(device, request, this.now(), e.message));
      }
    }
    this.schedule(run, answered ? { kind: 'answered' } : { kind: 'no-reply', error: failure ?? new ModbusError('timeout', 'no request answered') });
    emit(skipped);
  }

  private schedule(run: DeviceRun, outcome: PollOutcome): void {
    const { health, device } = run;
    const verdict = outcome.kind === 'answered' ? 'answered' : outcome.kind === 'lost' ? 'lost' : 'failed';
    const change = reschedule(run, device.pollIntervalMs, verdict, this.config);
    // A lost link is logged by the link loop, not blamed on the unit.
    if (change === 'failing' && outcome.kind === 'no-reply') {
      const what = outcome.error.kind === 'timeout' ? 'not answering' : 'gives no valid reply';
      this.log.warn({ device: device.id, unit: device.unit, retryInMs: health.backoffMs }, `unit ${device.unit} ${what} (${outcome.error.message}); backing off`);
    }
    if (change === 'recovered') this.log.info({ device: device.id, unit: device.unit }, `unit ${device.unit} answers again`);
  }

  /** One request with its retries: busy (exception 6) after a wait, timeout and CRC/frame errors at once. */
  private async transact(run: DeviceRun, request: CompiledRequest): Promise<number[] | boolean[]> {
    const cfg = this.config;
    // A unit already known to be silent gets one probe, not a full set of retries.
    const attempts = run.health.state === 'failing' ? 1 : cfg.retries + 1;
    let last: ModbusError | undefined;
    for (let attempt = 0; attempt < attempts; attempt++) {
      await this.loop.quietUntil(this.lastTransactionEnd + cfg.requestPauseMs);
      if (!this.loop.running) break;
      run.health.requests++;
      const sent = monotonic();
      try {
        const data = await this.link.read(run.device.unit, request.fc, request.address, request.count);
        noteReply(run.health, monotonic() - sent);
        return data;
      } catch (err) {
        last = err instanceof ModbusError ? err : new ModbusError('disconnected', String(err));
        if (last.kind === 'exception') {
          // An exception is a reply: it times the unit, and its code says what the unit refused.
          noteReply(run.health, monotonic() - sent);
          const ex = (run.health.exceptions ??= {});
          ex[String(last.code)] = (ex[String(last.code)] ?? 0) + 1;
        }
        if (last.linkLost) throw last;
        if (last.kind === 'exception' && last.code !== 6) throw last;
        if (last.kind === 'exception' && cfg.busyRetryMs > 0) await this.loop.sleep(cfg.busyRetryMs);
      } finally {
        this.lastTransactionEnd = monotonic();
      }
    }
    throw last ?? new ModbusError('disconnected', 'bus stopped');
  }

  private noteGood(run: DeviceRun, request: CompiledRequest): void {
    run.health.lastGoodTs = this.now();
    this.loop.healthy();
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
    // Timeouts are logged per unit state change in schedule(), link losses by the link loop.
    if (e.kind === 'timeout' || e.linkLost) return;
    if (run.reported.get(request) === e.message) return;
    run.reported.set(request, e.message);
    this.log.warn(
      { device: run.device.id, unit: run.device.unit, fc: request.fc, address: request.address, count: request.count, points: request.points.map((p) => p.id) },
      e.message,
    );
  }
}

/** Response times kept per device for the commissioning view's p95: a bounded window, not a history. */
const RESPONSE_WINDOW = 64;

function noteReply(h: DeviceHealth, ms: number): void {
  h.replies = (h.replies ?? 0) + 1;
  h.lastResponseMs = Math.round(ms * 10) / 10;
  const w = (h.recentResponseMs ??= []);
  w.push(h.lastResponseMs);
  if (w.length > RESPONSE_WINDOW) w.shift();
}
