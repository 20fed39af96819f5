/**
 * Scheduling of one line bus: ASCII sensors on a serial port or behind a serial device server. Devices with a
 * `query` are polled one transaction at a time (RS-485 is half duplex), with a pause between transactions and
 * a reply timeout; a device that stops answering is backed off like a dead Modbus unit. Devices without one
 * are listened to: every line they claim is a reading, stamped at reception. The link is reopened by a
 * single-flight loop with capped exponential backoff and jitter. Noise is counted and logged at a bounded
 * rate; it never stops the bus, never grows memory, and nothing here throws to the caller.
 *
 * Which device a line belongs to:
 * - While a query waits for its reply, the next line is the reply, unless a listening device's `match`
 *   claims it; a queried device with its own `match` only accepts lines it matches.
 * - Otherwise a line goes to every listening device whose `match` it matches; a line none of them matches
 *   goes to the listening devices without `match`; a line no device takes is counted on the bus.
 * - CR and LF at either end of a line are ignored, so a device ending lines with "\r\n" on a bus set to "\n"
 *   (or "\r") still parses. Empty lines are skipped.
 *
 * health(): `requests` counts queries sent, or for a listening device the lines it took; `errors` counts by
 * kind (checksum, binary, parse, field, overlong, timeout). busHealth() counts what no device took.
 */
import { EventEmitter } from 'node:events';
import type { DeviceConfig, LineBusConfig } from '../../config/schema.js';
import type { Logger } from '../../log.js';
import type { Sample } from '../../sample.js';
import type { DeviceHealth, LinkState } from '../bus.js';
import type { Source } from '../index.js';
import { asText, compileLineDevice, type CompiledLineDevice, type LineErrorKind, type LineOutcome } from './device.js';
import { LineFramer, trimEol, type FramerEvents } from './framing.js';
import { LineLink, lineTarget } from './link.js';
import { quote } from './parse.js';
import { RateLimitedLog } from './ratelog.js';

export interface LineBusDeps {
  logger: Logger;
  sink: (samples: Sample[]) => void;
  /** Wall clock for sample timestamps; default Date.now. */
  now?: () => number;
  /** For tests: a link other than the serial port or socket the config names. */
  link?: LineLink;
}

/** Counters of the bus itself: lines no device took, and what was dropped before any device saw it. */
export interface LineBusHealth {
  lines: number;
  errors: Partial<Record<LineErrorKind, number>>;
}

interface Run {
  device: CompiledLineDevice;
  dueAt: number;
  health: DeviceHealth;
}

type Reply = { kind: 'line'; line: Buffer; ts: number } | { kind: 'timeout' } | { kind: 'overlong' } | { kind: 'lost' };

interface Pending {
  run: Run;
  resolve(reply: Reply): void;
}

/** Schedules run on the monotonic clock: an NTP step or a wrong boot clock must not stall or rush polling. */
const monotonic = (): number => performance.now();
/** How long a bus with only listening devices sleeps between looks at its link (a loss wakes it at once). */
const IDLE_MS = 60_000;

export class LineBus extends EventEmitter implements Source {
  readonly id: string;
  private readonly link: LineLink;
  private readonly framer: LineFramer;
  private readonly frameEvents: FramerEvents;
  private readonly log: Logger;
  private readonly rate: RateLimitedLog;
  private readonly now: () => number;
  private readonly runs: Run[];
  private readonly polled: Run[];
  /** Listening devices with `match`, then those without (they take what the others leave). */
  private readonly matching: Run[];
  private readonly catchAll: Run[];
  private readonly busErrors: LineBusHealth['errors'] = {};
  private state: LinkState = 'disconnected';
  private running = false;
  private loopDone: Promise<void> = Promise.resolve();
  private wake: (() => void) | undefined;
  private pending: Pending | undefined;
  private lastTransactionEnd = 0;
  private reconnectDelay: number;
  private lastConnectError = '';
  reconnects = 0;

  constructor(
    readonly config: LineBusConfig,
    devices: DeviceConfig[],
    private readonly deps: LineBusDeps,
  ) {
    super();
    this.id = config.id;
    this.log = deps.logger.child({ bus: config.id });
    this.now = deps.now ?? Date.now;
    this.rate = new RateLimitedLog(this.log, monotonic);
    this.reconnectDelay = config.reconnectMinMs;
    this.runs = devices.map((d) => ({
      device: compileLineDevice(d),
      dueAt: 0,
      health: { device: d.id, state: 'ok', requests: 0, errors: {}, backoffMs: 0 },
    }));
    this.polled = this.runs.filter((r) => r.device.query);
    this.matching = this.runs.filter((r) => !r.device.query && r.device.hasMatch);
    this.catchAll = this.runs.filter((r) => !r.device.query && !r.device.hasMatch);
    this.framer = new LineFramer(config.delimiter, config.maxLineBytes);
    this.frameEvents = { line: (l) => this.onLine(l), overlong: () => this.onOverlong() };
    this.link = deps.link ?? new LineLink(lineTarget(config), Math.max(config.timeoutMs, 3000));
    this.link.on('data', (chunk) => this.framer.push(chunk, this.frameEvents));
    this.link.on('close', (reason) => this.onLinkLost(reason));
  }

  get linkState(): LinkState {
    return this.state;
  }

  health(): DeviceHealth[] {
    return this.runs.map((r) => ({ ...r.health, errors: { ...r.health.errors } }));
  }

  busHealth(): LineBusHealth {
    return { lines: this.framer.lines, errors: { ...this.busErrors } };
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loopDone = this.loop().catch((err) => this.log.error({ err }, 'line bus loop failed; this is a bug'));
  }

  async stop(): Promise<void> {
    this.running = false;
    this.pending?.resolve({ kind: 'lost' });
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
        await this.connect();
        continue;
      }
      const run = this.nextDue();
      if (!run) {
        await this.sleep(IDLE_MS);
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

  private nextDue(): Run | undefined {
    let best: Run | undefined;
    for (const r of this.polled) if (!best || r.dueAt < best.dueAt) best = r;
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
        this.log.warn({ target: this.link.describe(), retryInMs: this.reconnectDelay }, `cannot connect: ${reason}; retrying with backoff`);
        this.lastConnectError = reason;
      }
      this.setState('disconnected', reason);
      const jitter = 0.8 + Math.random() * 0.4;
      await this.sleep(this.reconnectDelay * jitter);
      this.reconnectDelay = Math.min(this.reconnectDelay * 2, this.config.reconnectMaxMs);
      return;
    }
    this.framer.reset();
    this.reconnects++;
    this.lastConnectError = '';
    this.reconnectDelay = this.config.reconnectMinMs;
    this.log.info({ target: this.link.describe() }, 'connected');
    this.setState('connected');
    if (this.config.connectPauseMs > 0) await this.sleep(this.config.connectPauseMs);
    this.lastTransactionEnd = monotonic();
  }

  private onLinkLost(reason: string): void {
    this.pending?.resolve({ kind: 'lost' });
    if (this.framer.reset()) this.countBus('partial', 'a partial line was dropped when the link went away');
    if (this.state !== 'connected') return;
    this.log.warn({ target: this.link.describe() }, `link lost: ${reason}; reconnecting`);
    this.setState('disconnected', reason);
    // Every point learns once that its bus is down; no samples are made up while it stays down.
    const ts = this.now();
    const samples = this.runs.flatMap((r) => r.device.fail(ts, `bus ${this.config.id} disconnected`));
    this.emitSamples(samples);
    this.wake?.();
  }

  // ---------------------------------------------------------------- lines as they arrive

  private onLine(raw: Buffer): void {
    const line = trimEol(raw);
    if (line.length === 0) return;
    try {
      const ts = this.now();
      // Lossy decoding is enough to route; the device decodes strictly after its checksum.
      const text = line.toString('utf8');
      const p = this.pending;
      if (p) {
        const dev = p.run.device;
        const isReply = dev.hasMatch ? dev.claims(text) : !this.matching.some((r) => r.device.claims(text));
        if (isReply) {
          p.resolve({ kind: 'line', line, ts });
          return;
        }
      }
      let taken = false;
      for (const r of this.matching) {
        if (r.device.claims(text)) {
          taken = true;
          this.deliver(r, line, ts);
        }
      }
      if (!taken) for (const r of this.catchAll) {
        taken = true;
        this.deliver(r, line, ts);
      }
      if (!taken) {
        const t = asText(line);
        if (t.ok) this.countBus('unmatched', `a line no device claims: ${quote(t.text, 40)}`);
        else this.countBus('binary', `${t.reason}; no device claims it`);
      }
    } catch (err) {
      this.log.error({ err }, 'handling a line failed; this is a bug');
    }
  }

  private onOverlong(): void {
    const reason = `line longer than ${this.config.maxLineBytes} bytes dropped`;
    if (this.pending) {
      this.pending.resolve({ kind: 'overlong' });
      return;
    }
    // Only when one device takes every line can an over-long one be blamed on it.
    const only = this.polled.length === 0 && this.matching.length === 0 && this.catchAll.length === 1 ? this.catchAll[0] : undefined;
    if (!only) {
      this.countBus('overlong', reason);
      return;
    }
    this.noteError(only, 'overlong', reason);
    only.health.requests++;
    this.emitSamples(only.device.fail(this.now(), reason));
  }

  private deliver(run: Run, line: Buffer, ts: number): void {
    run.health.requests++;
    const out = run.device.decode(line, ts);
    this.account(run, out);
    this.emitSamples(out.samples);
  }

  private account(run: Run, out: LineOutcome): void {
    if (out.samples.some((s) => s.quality === 'good')) run.health.lastGoodTs = out.samples[0]!.ts;
    if (out.error) this.noteError(run, out.error.kind, out.error.reason);
  }

  private noteError(run: Run, kind: LineErrorKind, reason: string): void {
    const h = run.health;
    h.errors[kind] = (h.errors[kind] ?? 0) + 1;
    h.lastError = reason;
    // A silent device is logged per state change in schedule(), not per timeout.
    if (kind !== 'timeout') this.rate.warn(run.device.id, kind, { device: run.device.id }, `${run.device.id}: ${reason}`);
  }

  private countBus(kind: LineErrorKind, message: string): void {
    this.busErrors[kind] = (this.busErrors[kind] ?? 0) + 1;
    this.rate.warn('', kind, {}, message);
  }

  private emitSamples(samples: Sample[]): void {
    if (samples.length > 0) this.deps.sink(samples);
  }

  // ---------------------------------------------------------------- queried devices

  private async poll(run: Run): Promise<void> {
    const attempts = run.health.state === 'failing' ? 1 : this.config.retries + 1;
    let failure: { kind: LineErrorKind; reason: string } | undefined;
    let answered = false;
    for (let attempt = 0; attempt < attempts; attempt++) {
      const reply = await this.transact(run);
      if (reply.kind === 'lost' || !this.running) return; // onLinkLost reports every point
      if (reply.kind === 'timeout') {
        failure = { kind: 'timeout', reason: `no reply within ${this.config.timeoutMs} ms` };
      } else if (reply.kind === 'overlong') {
        answered = true;
        failure = { kind: 'overlong', reason: `reply longer than ${this.config.maxLineBytes} bytes dropped` };
      } else {
        answered = true;
        const out = run.device.decode(reply.line, reply.ts);
        const lineFault = out.error?.kind === 'checksum' || out.error?.kind === 'binary';
        // A garbled reply is worth another query; a reply that parses wrong will parse wrong again.
        if (!lineFault || attempt === attempts - 1) {
          this.account(run, out);
          this.emitSamples(out.samples);
          this.schedule(run, undefined);
          return;
        }
        failure = out.error;
      }
      this.noteError(run, failure!.kind, failure!.reason);
    }
    this.emitSamples(run.device.fail(this.now(), failure!.reason));
    this.schedule(run, answered ? undefined : failure!.reason);
  }

  private schedule(run: Run, silent: string | undefined): void {
    const { health, device } = run;
    const now = monotonic();
    if (silent) {
      health.backoffMs = health.backoffMs === 0 ? this.config.unitBackoffMinMs : Math.min(health.backoffMs * 2, this.config.unitBackoffMaxMs);
      if (health.state === 'ok') {
        this.log.warn({ device: device.id, retryInMs: health.backoffMs }, `${device.id} not answering (${silent}); backing off`);
      }
      health.state = 'failing';
      run.dueAt = now + Math.max(health.backoffMs, device.pollIntervalMs);
      return;
    }
    if (health.state === 'failing') {
      this.log.info({ device: device.id }, `${device.id} answers again`);
      health.state = 'ok';
      health.backoffMs = 0;
    }
    // Keep the cadence; after an overrun start again from now instead of firing a burst of late polls.
    run.dueAt = run.dueAt === 0 ? now + device.pollIntervalMs : Math.max(run.dueAt + device.pollIntervalMs, now);
  }

  /** One query and its reply line. The reply timeout starts once the query is written. */
  private async transact(run: Run): Promise<Reply> {
    const pause = this.lastTransactionEnd + this.config.requestPauseMs - monotonic();
    if (pause > 0) await this.sleep(pause);
    if (!this.running || !this.link.isOpen) return { kind: 'lost' };
    // Without listeners, bytes left over from noise would only corrupt the start of the reply.
    if (this.matching.length + this.catchAll.length === 0 && this.framer.reset()) {
      this.countBus('partial', 'a partial line was dropped before a query');
    }
    run.health.requests++;
    let timer: NodeJS.Timeout | undefined;
    let settle!: (r: Reply) => void;
    const reply = new Promise<Reply>((resolve) => (settle = resolve));
    let settled = false;
    const pending: Pending = {
      run,
      resolve: (r) => {
        if (settled) return;
        settled = true;
        if (this.pending === pending) this.pending = undefined;
        clearTimeout(timer);
        settle(r);
      },
    };
    this.pending = pending;
    try {
      try {
        await this.link.write(run.device.query!);
      } catch (err) {
        pending.resolve({ kind: 'lost' });
        await this.link.close();
        this.onLinkLost(`cannot write: ${(err as Error).message}`);
        return { kind: 'lost' };
      }
      if (!settled) timer = setTimeout(() => pending.resolve({ kind: 'timeout' }), this.config.timeoutMs);
      return await reply;
    } finally {
      this.lastTransactionEnd = monotonic();
    }
  }
}
