/**
 * Scheduling of one line bus: ASCII sensors on a serial port or behind a serial device server. Devices with a
 * `query` are polled one transaction at a time (RS-485 is half duplex), with a pause between transactions and
 * a reply timeout; a device that stops answering is backed off like a dead Modbus unit. Devices without one
 * are listened to: every line they claim is a reading, stamped at reception. The link is kept by the shared
 * loop of src/sources/link-loop.ts (reopened through the backoff, which only a good reading resets). Noise is
 * counted and logged at a bounded rate; it never stops the bus, never grows memory, and nothing here throws
 * to the caller.
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
 * kind (checksum, binary, parse, field, overlong, timeout, disconnected). busHealth() counts what no device took.
 * `state`: `unknown` until a first outcome. A queried device is `ok` after a poll whose reply gave at least one
 * good reading; a poll without one (no reply, or only garbled or unparsable replies) makes it `failing` and
 * backs it off, and a query cut off by the link makes it `failing` too. A listening device is `ok` from its
 * first good reading; that it stopped sending good ones shows as stale on the status surface.
 */
import type { DeviceConfig, LineBusConfig } from '../../config/schema.js';
import type { Logger } from '../../log.js';
import type { Sample } from '../../sample.js';
import type { DeviceHealth, LinkState, Source } from '../types.js';
import { LinkLoop } from '../link-loop.js';
import { LoopedBus } from '../looped-bus.js';
import { cycleSleep, monotonic, reschedule, stepDue } from '../schedule.js';
import { asText, compileLineDevice, type CompiledLineDevice, type LineErrorKind, type LineOutcome } from './device.js';
import { LineFramer, trimEol, type FramerEvents } from './framing.js';
import { LineLink, lineTarget } from './link.js';
import { quote } from './parse.js';
import { RateLimitedLog } from '../ratelog.js';

export interface LineBusDeps {
  logger: Logger;
  sink: (samples: Sample[]) => void;
  cycle?: (busy: boolean) => void;
  /** Wall clock for sample timestamps; default Date.now. */
  now?: () => number;
  /** For tests: a link other than the serial port or socket the config names. */
  link?: LineLink;
  /** For tests: the reconnect jitter's random source. */
  random?: () => number;
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

/** How a poll ended: a good reading, none (with why, and whether the device was silent), or the link went away. */
type PollOutcome = { kind: 'good' } | { kind: 'no-reading'; reason: string; silent: boolean } | { kind: 'lost' };

/** How long a bus with only listening devices sleeps between looks at its link (a loss wakes it at once). */
const IDLE_MS = 60_000;

export class LineBus extends LoopedBus<Run> implements Source {
  readonly id: string;
  private readonly link: LineLink;
  protected readonly loop: LinkLoop;
  private readonly framer: LineFramer;
  private readonly frameEvents: FramerEvents;
  private readonly log: Logger;
  private readonly rate: RateLimitedLog;
  private readonly now: () => number;
  protected readonly runs: Run[];
  private readonly polled: Run[];
  /** Listening devices with `match`, then those without (they take what the others leave). */
  private readonly matching: Run[];
  private readonly catchAll: Run[];
  private readonly busErrors: LineBusHealth['errors'] = {};
  private lastRaw: { text: string; ts: number } | undefined;
  private pending: Pending | undefined;
  private lastTransactionEnd = 0;

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
    this.runs = devices.map((d) => ({
      device: compileLineDevice(d),
      dueAt: 0,
      health: { device: d.id, state: 'unknown', requests: 0, errors: {}, backoffMs: 0 },
    }));
    this.polled = this.runs.filter((r) => r.device.query);
    this.matching = this.runs.filter((r) => !r.device.query && r.device.hasMatch);
    this.catchAll = this.runs.filter((r) => !r.device.query && !r.device.hasMatch);
    this.framer = new LineFramer(config.delimiter, config.maxLineBytes);
    this.frameEvents = { line: (l) => this.onLine(l), overlong: () => this.onOverlong() };
    this.link = deps.link ?? new LineLink(lineTarget(config), Math.max(config.timeoutMs, 3000));
    this.loop = new LinkLoop({
      log: this.log,
      link: this.link,
      target: this.link.describe(),
      reconnectMinMs: config.reconnectMinMs,
      reconnectMaxMs: config.reconnectMaxMs,
      connectPauseMs: config.connectPauseMs,
      random: deps.random,
      onOpen: () => {
        this.framer.reset();
        this.lastTransactionEnd = monotonic();
      },
      onLost: () => this.reportDisconnected(),
      step: () => this.step(),
    });
    this.loop.on('state', (state: LinkState, detail?: string) => this.emit('state', state, detail));
    this.link.on('data', (chunk) => this.framer.push(chunk, this.frameEvents));
    this.link.on('close', (reason) => this.onLinkLost(reason));
  }

  busHealth(): LineBusHealth {
    return { lines: this.framer.lines, errors: { ...this.busErrors } };
  }

  /** The last non-empty line received, raw (lossy UTF-8, at most 200 characters), and when: for commissioning. */
  lastLine(): { text: string; ts: number } | undefined {
    return this.lastRaw && { ...this.lastRaw };
  }

  /** Ends at once, even while a query waits for its reply, and closes the port or destroys the socket. */
  async stop(): Promise<void> {
    const stopping = this.loop.stop();
    this.pending?.resolve({ kind: 'lost' });
    await stopping;
  }

  /** One step while the link is open: the next due query, or a sleep until it is due. */
  private step(): Promise<void> {
    const cycle = this.deps.cycle;
    return stepDue(this.polled, cycleSleep((ms) => this.loop.sleep(ms), cycle), (run) => (cycle?.(true), this.poll(run)), IDLE_MS);
  }

  private onLinkLost(reason: string): void {
    this.pending?.resolve({ kind: 'lost' });
    if (this.framer.reset()) this.countBus('partial', 'a partial line was dropped when the link went away');
    this.loop.lost(reason);
  }

  /** Every point learns once that its bus is down; no samples are made up while it stays down. */
  private reportDisconnected(): void {
    const ts = this.now();
    this.emitSamples(this.runs.flatMap((r) => r.device.fail(ts, `bus ${this.config.id} disconnected`)));
    this.deps.cycle?.(false);
  }

  // ---------------------------------------------------------------- lines as they arrive

  private onLine(raw: Buffer): void {
    const line = trimEol(raw);
    if (line.length === 0) return;
    try {
      const ts = this.now();
      // Lossy decoding is enough to route; the device decodes strictly after its checksum.
      const text = line.toString('utf8');
      this.lastRaw = { text: text.slice(0, 200), ts };
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
    if (this.account(run, out)) run.health.state = 'ok';
    this.emitSamples(out.samples);
  }

  /** Counts a decoded line on its device; true when it gave a good reading (which also proves the link). */
  private account(run: Run, out: LineOutcome): boolean {
    const good = out.samples.some((s) => s.quality === 'good');
    if (good) {
      run.health.lastGoodTs = out.samples[0]!.ts;
      this.loop.healthy();
    }
    if (out.error) this.noteError(run, out.error.kind, out.error.reason);
    return good;
  }

  private noteError(run: Run, kind: LineErrorKind, reason: string): void {
    const h = run.health;
    h.errors[kind] = (h.errors[kind] ?? 0) + 1;
    h.lastError = reason;
    // A silent device is logged per state change in schedule(), a lost link by the link loop.
    if (kind !== 'timeout' && kind !== 'disconnected') this.rate.warn(run.device.id, kind, { device: run.device.id }, `${run.device.id}: ${reason}`);
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
    for (let attempt = 0; attempt < attempts; attempt++) {
      const reply = await this.transact(run);
      if (!this.loop.running) return;
      if (reply.kind === 'lost') {
        // The loss reports every point; the device learns its query was cut off (and is not up on that).
        this.noteError(run, 'disconnected', `link to ${this.link.describe()} lost during a query`);
        this.schedule(run, { kind: 'lost' });
        return;
      }
      if (reply.kind === 'timeout') {
        failure = { kind: 'timeout', reason: `no reply within ${this.config.timeoutMs} ms` };
      } else if (reply.kind === 'overlong') {
        failure = { kind: 'overlong', reason: `reply longer than ${this.config.maxLineBytes} bytes dropped` };
      } else {
        const out = run.device.decode(reply.line, reply.ts);
        const lineFault = out.error?.kind === 'checksum' || out.error?.kind === 'binary';
        // A garbled reply is worth another query; a reply that parses wrong will parse wrong again.
        if (!lineFault || attempt === attempts - 1) {
          const good = this.account(run, out);
          this.emitSamples(out.samples);
          this.schedule(run, good ? { kind: 'good' } : { kind: 'no-reading', reason: out.error?.reason ?? 'no good reading', silent: false });
          return;
        }
        failure = out.error;
      }
      this.noteError(run, failure!.kind, failure!.reason);
    }
    this.emitSamples(run.device.fail(this.now(), failure!.reason));
    this.schedule(run, { kind: 'no-reading', reason: failure!.reason, silent: failure!.kind === 'timeout' });
  }

  private schedule(run: Run, outcome: PollOutcome): void {
    const { health, device } = run;
    const verdict = outcome.kind === 'good' ? 'answered' : outcome.kind === 'lost' ? 'lost' : 'failed';
    const change = reschedule(run, device.pollIntervalMs, verdict, this.config);
    // A lost link is logged by the link loop, not blamed on the device.
    if (change === 'failing' && outcome.kind === 'no-reading') {
      const what = outcome.silent ? 'not answering' : 'gives no good reading';
      this.log.warn({ device: device.id, retryInMs: health.backoffMs }, `${device.id} ${what} (${outcome.reason}); backing off`);
    }
    if (change === 'recovered') this.log.info({ device: device.id }, `${device.id} answers again`);
  }

  /** One query and its reply line. The reply timeout starts once the query is written. */
  private async transact(run: Run): Promise<Reply> {
    await this.loop.quietUntil(this.lastTransactionEnd + this.config.requestPauseMs);
    if (!this.loop.running || !this.link.isOpen) return { kind: 'lost' };
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
