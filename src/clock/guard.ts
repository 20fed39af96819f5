/**
 * The clock guard: ticks the pure core (core.ts) once a second with real clocks and the OS probe, stamps
 * samples on their way to the outbox, and when trust arrives corrects what the outbox already holds.
 * - While untrusted, samples get FLAG_TS_UNTRUSTED and a ts on the monotonic timeline.
 * - When trust arrives, every flagged sample this run stored is shifted by the one correction and unflagged.
 *   Samples the uplink already delivered stay flagged at the consumer; a later resend of the same
 *   (epoch, seq) carries the corrected ts.
 * - Samples stored by an earlier run (another timeline) keep their flag: nothing can correct them exactly.
 */
import type { Logger } from '../log.js';
import { FLAG_TS_UNTRUSTED, type SampleInput } from '../outbox/types.js';
import { estimate, initialState, parseDate, step, type ClockEvent, type ClockPolicy, type ClockState, type DistrustReason, type Reading, type SyncStatus, type TrustMode, type TrustReason } from './core.js';
import { retimeStored, type RetimeTarget } from './correct.js';
import { osSyncProbe, type SyncProbe } from './probe.js';

/** gateway.clock in the configuration. */
export interface ClockOptions {
  trust: TrustMode;
  jumpThresholdMs: number;
  /** YYYY-MM-DD */
  minValidDate: string;
}

export interface ClockGuardDeps {
  logger: Logger;
  /** Default Date.now. */
  wall?: () => number;
  /** Default performance.now. */
  mono?: () => number;
  /** Default osSyncProbe(); not consulted under trust: always. */
  probe?: SyncProbe;
  /** The outbox to correct when trust arrives, and the first seq this run may have written. */
  outbox?: { target: RetimeTarget; fromSeq: number };
  tickMs?: number;
}

/** A snapshot for the status page. */
export interface ClockStatus {
  mode: TrustMode;
  trusted: boolean;
  reason: TrustReason | DistrustReason;
  /** Wall time when trust arrived during this run; null while untrusted or when trusted from the start. */
  trustedAt: number | null;
  /** The correction applied to the untrusted samples, and how many stored rows got it (null while running). */
  correctionMs: number | null;
  correctedSamples: number | null;
  jumps: number;
  lastJump: { at: number; jumpMs: number } | null;
}

export type ClockChange = ClockEvent | { type: 'corrected'; correctionMs: number; samples: number; complete: boolean };

/** A sample's own ts may predate stamping by a poll's retries; a larger or negative gap means a step in between. */
const MAX_SAMPLE_AGE_MS = 120_000;

const signed = (ms: number) => (ms >= 0 ? `+${ms}` : `${ms}`);

export class ClockGuard {
  private readonly policy: ClockPolicy;
  private readonly log: Logger;
  private readonly wall: () => number;
  private readonly mono: () => number;
  private readonly probe: SyncProbe | null;
  private state: ClockState;
  private readonly info: ClockStatus;
  private readonly listeners = new Set<(change: ClockChange) => void>();
  private timer: NodeJS.Timeout | null = null;
  private abort: AbortController | null = null;
  private correcting: Promise<void> = Promise.resolve();
  /** The distrust line was logged (once per run). */
  private announced = false;

  constructor(
    options: ClockOptions,
    private readonly deps: ClockGuardDeps,
  ) {
    const minValidMs = parseDate(options.minValidDate);
    if (Number.isNaN(minValidMs)) throw new RangeError(`gateway.clock.minValidDate "${options.minValidDate}" is not a date YYYY-MM-DD`);
    this.policy = { trust: options.trust, jumpThresholdMs: options.jumpThresholdMs, minValidMs };
    this.log = deps.logger;
    this.wall = deps.wall ?? Date.now;
    this.mono = deps.mono ?? (() => performance.now());
    this.probe = options.trust === 'always' ? null : (deps.probe ?? osSyncProbe());
    this.state = initialState(this.policy, this.read(this.probe?.status() ?? 'unknown'));
    this.info = {
      mode: options.trust,
      trusted: this.state.trusted,
      reason: this.state.reason,
      trustedAt: null,
      correctionMs: null,
      correctedSamples: null,
      jumps: 0,
      lastJump: null,
    };
    if (this.state.trusted) this.log.info({ trust: options.trust, reason: this.state.reason }, 'clock trusted');
    this.report();
  }

  /** Ticks now and then every tickMs (default 1 s). Idempotent. */
  start(): void {
    if (this.timer) return;
    this.tick();
    this.timer = setInterval(() => this.tick(), this.deps.tickMs ?? 1000);
    // The guard alone must not keep the process alive.
    this.timer.unref();
  }

  /** Stops ticking; a correction still running stops between two steps, its rest stays flagged. Idempotent. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.abort?.abort();
    await this.correcting;
  }

  /** One reading of both clocks and the OS; public so tests drive time themselves. */
  tick(): void {
    // Once trusted the OS is not asked again: trust is latched (core.ts).
    const sync = this.probe === null || this.state.trusted ? 'unknown' : this.probe.status();
    const { state, events } = step(this.policy, this.state, this.read(sync));
    this.state = state;
    this.info.reason = state.reason;
    this.report();
    for (const e of events) {
      if (e.type === 'jump') this.onJump(e);
      else this.onTrusted(e);
    }
  }

  /**
   * The samples as the outbox should store them: unchanged while the clock is trusted; otherwise copies with
   * FLAG_TS_UNTRUSTED and the ts moved onto the monotonic timeline, keeping each sample's age at stamping.
   */
  stamp<T extends SampleInput>(samples: T[]): Array<T & { flags?: number }> {
    if (this.state.trusted) return samples;
    const wall = this.wall();
    const now = estimate(this.state, this.mono());
    return samples.map((s) => {
      const age = wall - s.ts;
      const ts = Math.round(now - (age >= 0 && age <= MAX_SAMPLE_AGE_MS ? age : 0));
      return { ...s, ts, flags: (s.flags ?? 0) | FLAG_TS_UNTRUSTED };
    });
  }

  get trusted(): boolean {
    return this.state.trusted;
  }

  status(): ClockStatus {
    return { ...this.info, lastJump: this.info.lastJump && { ...this.info.lastJump } };
  }

  /** Called on every trust arrival, jump and finished correction. Returns an unsubscribe function. */
  onChange(listener: (change: ClockChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Resolves when a running correction has finished (tests, shutdown). */
  idle(): Promise<void> {
    return this.correcting;
  }

  private read(sync: SyncStatus): Reading {
    return { wall: this.wall(), mono: this.mono(), sync };
  }

  /** The once-per-run line about distrust; waiting for the first probe answer is not worth one. */
  private report(): void {
    if (this.announced || this.state.trusted || this.state.reason === 'probing') return;
    this.announced = true;
    const why = this.state.reason === 'not-synced' ? 'the OS reports no NTP sync yet' : 'no sync information and the date is before gateway.clock.minValidDate';
    this.log.warn(
      { trust: this.policy.trust, reason: this.state.reason, wall: new Date(this.state.lastWall).toISOString() },
      `clock not trusted (${why}): samples are flagged and timed by the monotonic clock until it is`,
    );
  }

  private onJump(e: Extract<ClockEvent, { type: 'jump' }>): void {
    this.info.jumps++;
    this.info.lastJump = { at: this.state.lastWall, jumpMs: e.jumpMs };
    if (e.trusted) this.log.warn({ jumpMs: e.jumpMs }, `clock jumped by ${signed(e.jumpMs)} ms; samples before the jump keep their timestamps`);
    else this.log.info({ jumpMs: e.jumpMs }, `clock jumped by ${signed(e.jumpMs)} ms while not trusted; untrusted samples stay on the monotonic timeline`);
    this.emit(e);
  }

  private onTrusted(e: Extract<ClockEvent, { type: 'trusted' }>): void {
    Object.assign(this.info, { trusted: true, reason: e.reason, trustedAt: this.state.lastWall, correctionMs: e.correctionMs });
    this.emit(e);
    const ctx = { reason: e.reason, correctionMs: e.correctionMs, untrustedMs: e.untrustedMs };
    const what = e.reason === 'os-sync' ? 'clock synchronised' : 'clock trusted (no sync information; the date is after gateway.clock.minValidDate)';
    const done = (samples: number, complete: boolean) => {
      this.info.correctedSamples = samples;
      if (complete) this.log.info({ ...ctx, samples }, `${what}; corrected ${samples} samples by ${signed(e.correctionMs)} ms`);
      else this.log.warn({ ...ctx, samples }, `${what}; stopped after correcting ${samples} samples by ${signed(e.correctionMs)} ms, the rest stay flagged untrusted`);
      this.emit({ type: 'corrected', correctionMs: e.correctionMs, samples, complete });
    };
    const outbox = this.deps.outbox;
    if (!outbox) return done(0, true);
    const abort = (this.abort = new AbortController());
    this.correcting = retimeStored(outbox.target, outbox.fromSeq, e.correctionMs, abort.signal).then(
      (r) => done(r.rows, r.complete),
      (err: unknown) => this.log.warn({ err, ...ctx }, `${what}; correcting the stored samples failed, they stay flagged untrusted`),
    );
  }

  private emit(change: ClockChange): void {
    for (const listener of this.listeners) {
      try {
        listener(change);
      } catch (err) {
        this.log.error({ err }, 'clock onChange listener threw');
      }
    }
  }
}
