/**
 * The uplink pump: committed samples and events leave the outbox through one MQTT session, and leave it only
 * when the broker acknowledged them (QoS 1 PUBACK). Live first: new samples go out within a batch delay while a
 * backlog drains oldest-first behind them, capped for metered links. A window of QoS 1 publishes is kept in
 * flight so throughput does not wait for one round trip per message; mqtt.js's own queue stays empty because
 * nothing is published while the session is down.
 */
import type { UplinkConfig } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { DroppedRange, StoredEvent, StoredSample } from '../outbox/types.js';
import { realTimers, type TimerHandle, type Timers } from '../timers.js';
import type { Session } from './types.js';
import type { BirthContext, Outgoing, UplinkProfile } from './profile.js';
import { fieldgateProfile } from './profiles/fieldgate/index.js';
import { MonthlyBytes, type BudgetState, type ByCause, type Cause } from './budget.js';

/** What the uplink needs of the outbox (the real Outbox, or a fake in tests). */
export interface UplinkOutbox {
  readonly epoch: string;
  read(afterSeq: number, limit: number, beforeSeq?: number): Array<StoredSample & { series: number }>;
  readEvents(afterSeq: number, limit: number, beforeSeq?: number): StoredEvent[];
  maxSeq(): number | null;
  ack(ranges: ReadonlyArray<readonly [number, number]>): number;
  droppedRanges(sinceId?: number): DroppedRange[];
  markDroppedReported(upToId: number): void;
  onCommit(listener: (lastSeq: number) => void): () => void;
  /** The point dictionary (ids only needed here), to know when the birth must be published again. */
  series(): ReadonlyArray<{ id: number }>;
  /** Tells the outbox which seqs are published and not yet deleted, so its size limit does not drop them. */
  holdInFlight?(ranges: () => ReadonlyArray<readonly [number, number]>): void;
  /** The outbox state table, where the month's bytes are kept (budget/YYYY-MM). */
  readState?(prefix: string): Map<string, string>;
  saveState?(entry: { key: string; value: string | null }): void;
}

export { topicsFor, type FieldgateTopics as UplinkTopics } from './profiles/fieldgate/index.js';

export interface UplinkStats {
  published: number;
  publishedMessages: number;
  acked: number;
  inflight: number;
  lastPubackAt?: number;
  /** Milliseconds from publish to PUBACK, the last one. */
  lastPubackMs?: number;
  /** The broker of the current (or last) connection, without credentials, and its index in uplink.urls (0: the primary). */
  broker?: string;
  brokerIndex?: number;
  /** Moves from one broker to another (failovers and returns to the primary). */
  brokerSwitches?: number;
  /** Births published, and births not sent again because the retained one stood (a resumed session, or a reload that changed nothing). */
  births?: { sent: number; kept: number };
  /** This calendar month's bytes on the uplink socket by cause (UTC month; kept across restarts), and the budget. */
  bytes?: { month: string; sent: ByCause; received: ByCause; total: number; projected: number; monthlyBytes?: number; stretch: number };
}

/** How often the month's bytes are taken from the session, checked against the budget and saved. */
export const BUDGET_CHECK_MS = 60_000;
/** The backlog drain rate the budget slows when uplink.maxSamplesPerSecond sets none (samples a second). */
const BUDGET_BACKLOG_RATE = 100;

export interface UplinkDeps {
  session: Session;
  outbox: UplinkOutbox;
  config: UplinkConfig;
  gatewayId: string;
  logger: Logger;
  /** The wire format: topics, birth, will and every encoder. Default: fieldgate v1 with the config's prefix and format. */
  profile?: UplinkProfile;
  /** What the birth is made of, read fresh at every connect (it carries the point dictionary). */
  birth: () => BirthContext;
  /** Called with the PUBACK latency of every acknowledged publish (metrics). */
  onPuback?: (ms: number, samples: number) => void;
  /** The clock and timers of the batch delay, the drain cap and ack grouping (a manual clock in tests). */
  timers?: Timers;
}

/** A group of PUBACKed messages is deleted at this size or age, whichever comes first. */
const ACK_GROUP_MESSAGES = 8;
const ACK_GROUP_MS = 50;

export class Uplink {
  readonly stats: UplinkStats = { published: 0, publishedMessages: 0, acked: 0, inflight: 0 };
  private readonly log: Logger;
  /** Highest seq handed to the session in this connection, per stream. */
  private liveCursor = 0;
  private backlogCursor = 0;
  private liveStart = 0;
  private eventCursor = 0;
  private generation = -1;
  /** Counts births within a connection (a rebirth starts a new round): in-flight counts belong to one round. */
  private round = 0;
  private liveTimer: TimerHandle | undefined;
  private liveWaitingSince: number | undefined;
  private tokens = 0;
  private tokensAt: number;
  private rateTimer: TimerHandle | undefined;
  private pumping = false;
  private again = false;
  private stopped = false;
  private unsubscribe: (() => void) | undefined;
  private idleWaiters: Array<() => void> = [];
  private droppedCheckedAt = 0;
  private birthSeries = 0;
  /** Per broker (index in uplink.urls): what the birth last acknowledged there was made of (birthKey). */
  private readonly birthOn = new Map<number, string>();
  /** PUBACKed seq ranges not yet deleted from the outbox (adjacent ones merged), and how many PUBACKs they hold. */
  private acks: Array<[number, number]> = [];
  private ackedMessages = 0;
  private ackTimer: TimerHandle | undefined;
  /** Published in this connection, no PUBACK yet: first seq -> last seq of each message. */
  private readonly sending = new Map<number, number>();
  private readonly timers: Timers;
  readonly profile: UplinkProfile;
  private readonly monthly: MonthlyBytes;
  private budgetTimer: TimerHandle | undefined;
  /** 1, or how many times longer batches wait and slower the backlog drains while the month's projection is over budget. */
  private stretch = 1;
  /** rebirth() was asked: the next birth goes whatever the broker holds. */
  private rebirthAsked = false;

  constructor(private readonly deps: UplinkDeps) {
    this.profile = deps.profile ?? fieldgateProfile({ gatewayId: deps.gatewayId, topicPrefix: deps.config.topicPrefix, format: deps.config.format, compression: deps.config.compression });
    this.log = deps.logger.child({ uplink: deps.config.url });
    this.timers = deps.timers ?? realTimers;
    this.tokensAt = this.timers.now();
    const outbox = deps.outbox;
    this.monthly = new MonthlyBytes({
      now: () => this.timers.now(),
      read: (key) => outbox.readState?.(key).get(key),
      save: (key, value) => {
        try {
          outbox.saveState?.({ key, value });
        } catch (err) {
          this.log.warn(`cannot save the month's uplink bytes: ${(err as Error).message}`);
        }
      },
      monthlyBytes: deps.config.budget?.monthlyBytes,
    });
  }

  /** Takes the bytes counted since the last check, saves the month, and throttles or stops throttling. */
  checkBudget(): BudgetState {
    const d = this.deps.session.takeBytes?.();
    if (d) this.monthly.add(d);
    if (d || this.stopped) this.monthly.save();
    const state = this.monthly.state();
    const m = this.monthly.month;
    this.stats.bytes = { month: m.month, sent: { ...m.sent }, received: { ...m.received }, total: state.usedBytes, projected: state.projectedBytes, ...(state.monthlyBytes !== undefined ? { monthlyBytes: state.monthlyBytes } : {}), stretch: state.stretch };
    if (state.stretch !== this.stretch) {
      const was = this.stretch;
      this.stretch = state.stretch;
      const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;
      if (state.stretch > 1 && was === 1) {
        this.log.warn({ budget: state }, `uplink budget: ${mb(state.projectedBytes)} projected this month over uplink.budget.monthlyBytes ${mb(state.monthlyBytes ?? 0)}; telemetry batches wait ${state.stretch} times longer and the backlog drains ${state.stretch} times slower (events, alarms and commands are not held back)`);
      } else if (state.stretch === 1) {
        this.log.info({ budget: state }, `uplink budget: ${mb(state.projectedBytes)} projected this month, within ${mb(state.monthlyBytes ?? 0)}; telemetry back to its configured batches`);
      }
      if (state.stretch === 1 || was === 1) {
        const message = this.profile.budget?.(state, this.timers.now());
        if (message && this.deps.session.connected) this.publish(message).catch(() => {});
      }
      this.pump();
    }
    return state;
  }

  private scheduleBudget(): void {
    this.budgetTimer = this.timers.setTimeout(() => {
      this.checkBudget();
      if (!this.stopped) this.scheduleBudget();
    }, BUDGET_CHECK_MS);
  }

  start(): void {
    // Published or PUBACKed but not yet deleted: a drop of these would report as lost what may have arrived.
    this.deps.outbox.holdInFlight?.(() => [...this.sending, ...this.acks]);
    this.unsubscribe = this.deps.outbox.onCommit(() => {
      // Drops happen at commits (size and age limits): announce them soon, but not on every commit.
      if (this.deps.session.connected && this.timers.now() - this.droppedCheckedAt > 5000) this.reportDropped();
      this.pump();
    });
    this.deps.session.on('state', (state: string) => {
      if (state === 'connected') {
        const broker = this.deps.session.broker;
        if (broker) Object.assign(this.stats, { broker: broker.url, brokerIndex: broker.index, brokerSwitches: broker.switches });
        void this.onConnected();
      }
    });
    this.deps.session.start();
    this.checkBudget();
    this.scheduleBudget();
  }

  /** Publishes the birth again: the point list changed (a configuration reload); not when its context is the one the broker holds. */
  refreshBirth(): void {
    if (!this.deps.session.connected) return;
    this.publishBirth(true).catch((err) => this.log.warn(`cannot publish the birth status: ${(err as Error).message}`));
  }

  /**
   * The birth carries the point dictionary; remember how far it reaches so a newer point triggers a new one.
   * `mayKeep`: the retained birth on this broker stands (a resumed session or the same connection), so a birth
   * of the same context is not sent again (profile.retainedBirth; docs/payload.md "Status").
   */
  private publishBirth(mayKeep: boolean): Promise<void> {
    let max = 0;
    for (const s of this.deps.outbox.series()) if (s.id > max) max = s.id;
    this.birthSeries = max;
    const ctx = this.deps.birth();
    const broker = this.deps.session.broker?.index ?? 0;
    const key = birthKey(ctx);
    const births = (this.stats.births ??= { sent: 0, kept: 0 });
    if (this.profile.retainedBirth && mayKeep && this.birthOn.get(broker) === key) {
      births.kept++;
      return Promise.resolve();
    }
    // Until this one is acknowledged, the broker may hold either: the next connect sends it again.
    this.birthOn.delete(broker);
    births.sent++;
    const generation = this.deps.session.generation;
    return Promise.all(this.profile.birth(ctx).map((m) => this.publish(m))).then(() => {
      if (this.deps.session.generation === generation) this.birthOn.set(broker, key);
    });
  }

  /** Resolves when nothing is left to send or in flight, or after timeoutMs. */
  async drain(timeoutMs: number): Promise<boolean> {
    if (this.idle()) return true;
    return new Promise((resolve) => {
      const timer = this.timers.setTimeout(() => resolve(false), timeoutMs);
      this.idleWaiters.push(() => {
        this.timers.clearTimeout(timer);
        resolve(true);
      });
      this.flushLive();
    });
  }

  /** Publishes the offline status (if the link is up) and closes the session. Nothing committed is lost. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.unsubscribe?.();
    this.timers.clearTimeout(this.liveTimer);
    this.timers.clearTimeout(this.rateTimer);
    this.timers.clearTimeout(this.budgetTimer);
    this.flushAcks();
    const last = this.profile.offline();
    await this.deps.session.close(last);
    this.flushAcks();
    this.checkBudget();
  }

  private idle(): boolean {
    if (this.stats.inflight > 0) return false;
    const max = this.deps.outbox.maxSeq();
    return max === null || !this.deps.session.connected || (max <= this.liveCursor && this.backlogCursor >= this.liveStart);
  }

  /** The host asked for every birth again: data stops at once, the births go, then the unacknowledged rows as backlog. */
  rebirth(): void {
    if (!this.deps.session.connected) return;
    this.generation = -1;
    this.rebirthAsked = true;
    void this.onConnected();
  }

  /** The host application's state (Sparkplug STATE): data flows only while the profile says it is ready. */
  hostState(online: boolean, ts: number): void {
    const change = this.profile.hostState?.(online, ts) ?? 'ignore';
    const session = this.deps.session;
    if (change === 'online' && session.connected && this.generation !== session.generation) void this.onConnected();
    if (change === 'offline' && session.connected) {
      // The host that records us is gone: stop, say so, and buffer until it is back.
      this.generation = -1;
      const death = this.profile.offline();
      this.publish(death).catch(() => {});
      this.log.warn('primary host offline: data is held in the outbox until it is back');
    }
  }

  /** A device stopped or started answering (its link state): the profile's death or birth of it, at once. */
  deviceState(device: string, alive: boolean): void {
    const session = this.deps.session;
    if (!this.profile.deviceState || !session.connected || this.generation !== session.generation) return;
    for (const m of this.profile.deviceState(device, alive, this.deps.birth())) this.publish(m).catch(() => {});
  }

  private async onConnected(): Promise<void> {
    const session = this.deps.session;
    const generation = session.generation;
    // A profile waiting for its host (Sparkplug primary host) sends nothing, births included, until it is ready.
    if (this.profile.ready && !this.profile.ready()) return;
    this.round++;
    // A lost connection fires the will (offline, retained) unless the session was resumed within the will delay.
    const forced = this.rebirthAsked;
    this.rebirthAsked = false;
    try {
      await this.publishBirth(!forced && session.resumed === true);
    } catch (err) {
      this.log.warn(`cannot publish the birth status: ${(err as Error).message}`);
      return;
    }
    if (generation !== session.generation) return;
    // Delete what the last connection delivered before reading the backlog, or it would go again.
    this.flushAcks();
    // Everything unacknowledged is backlog now; what commits from here on is live.
    this.generation = generation;
    this.liveStart = this.deps.outbox.maxSeq() ?? 0;
    this.liveCursor = this.liveStart;
    this.backlogCursor = 0;
    this.eventCursor = 0;
    this.stats.inflight = 0;
    this.sending.clear();
    this.tokens = 0;
    this.tokensAt = this.timers.now();
    this.reportDropped();
    this.pump();
  }

  /** Called on every commit and every PUBACK; re-entrant calls fold into one more round. */
  private pump(): void {
    if (this.pumping) {
      this.again = true;
      return;
    }
    this.pumping = true;
    try {
      do {
        this.again = false;
        this.pumpOnce();
      } while (this.again);
    } catch (err) {
      this.log.error({ err }, 'uplink pump failed; retrying on the next commit');
    } finally {
      this.pumping = false;
    }
    if (this.idle()) for (const w of this.idleWaiters.splice(0)) w();
  }

  private pumpOnce(): void {
    const { session, outbox, config } = this.deps;
    if (this.stopped && this.idleWaiters.length === 0) return;
    if (!session.connected || session.generation !== this.generation) return;
    const window = config.inflight;
    // A quarter of the window (up to 4) stays free for events: an alarm must not wait for a PUBACK behind a
    // window full of backlog. Samples use the rest; the whole stays within the broker's receive maximum.
    const forSamples = window - (window >= 4 ? Math.min(4, Math.floor(window / 4)) : 0);
    // Over budget, live batches hold `stretch` times more samples (and wait as many times longer, liveDue).
    const max = Math.min(50_000, config.batch.maxSamples * this.stretch);

    // Events (alarms) jump ahead of everything.
    while (this.stats.inflight < window) {
      const events = outbox.readEvents(this.eventCursor, 50);
      if (events.length === 0) break;
      this.eventCursor = events[events.length - 1]!.seq;
      for (const e of events) this.send(this.profile.event(outbox.epoch, e), [e.seq, e.seq], 0);
    }

    // Live samples: a full batch at once, a partial one after maxDelayMs.
    while (this.stats.inflight < forSamples) {
      const rows = outbox.read(this.liveCursor, max);
      if (rows.length === 0) {
        this.liveWaitingSince = undefined;
        break;
      }
      if (rows.length < max && !this.liveDue()) break;
      this.liveCursor = rows[rows.length - 1]!.seq;
      this.liveWaitingSince = undefined;
      this.sendSamples(rows, false);
    }

    // Backlog, oldest first, behind the live samples and under the drain cap.
    while (this.stats.inflight < forSamples && this.backlogCursor < this.liveStart) {
      const allowance = this.allowance(max);
      if (allowance === 0) break;
      const rows = outbox.read(this.backlogCursor, allowance, this.liveStart + 1);
      if (rows.length === 0) {
        this.backlogCursor = this.liveStart;
        break;
      }
      this.backlogCursor = rows[rows.length - 1]!.seq;
      this.tokens -= rows.length;
      this.sendSamples(rows, true);
    }
  }

  /** True when the oldest waiting live sample has waited maxDelayMs; otherwise arms a timer for it. */
  private liveDue(): boolean {
    const now = this.timers.now();
    this.liveWaitingSince ??= now;
    const wait = this.liveWaitingSince + this.deps.config.batch.maxDelayMs * this.stretch - now;
    if (wait <= 0) return true;
    if (!this.liveTimer) {
      this.liveTimer = this.timers.setTimeout(() => {
        this.liveTimer = undefined;
        this.pump();
      }, wait);
    }
    return false;
  }

  private flushLive(): void {
    this.liveWaitingSince = 0;
    this.pump();
  }

  /** Token bucket for the backlog drain; 0 means wait (a timer pumps again). */
  private allowance(max: number): number {
    const configured = this.deps.config.maxSamplesPerSecond;
    const rate = this.stretch > 1 ? Math.max(1, Math.floor((configured > 0 ? configured : BUDGET_BACKLOG_RATE) / this.stretch)) : configured;
    if (rate <= 0) return max;
    const now = this.timers.now();
    this.tokens = Math.min(this.tokens + ((now - this.tokensAt) / 1000) * rate, Math.max(rate, max));
    this.tokensAt = now;
    const n = Math.min(max, Math.floor(this.tokens));
    if (n < Math.min(max, rate)) {
      if (!this.rateTimer) {
        const need = Math.min(max, rate) - this.tokens;
        this.rateTimer = this.timers.setTimeout(() => {
          this.rateTimer = undefined;
          this.pump();
        }, Math.ceil((need / rate) * 1000));
      }
      return 0;
    }
    return n;
  }

  /** Splits at seq gaps (events and acknowledged rows leave holes) so each payload's seqs are implied. */
  private sendSamples(rows: Array<StoredSample & { series: number }>, backlog: boolean): void {
    // A point the last birth did not list (a series first seen since): publish the dictionary again first.
    for (const r of rows) {
      if (r.series > this.birthSeries) {
        this.refreshBirth();
        break;
      }
    }
    let start = 0;
    for (let i = 1; i <= rows.length; i++) {
      if (i === rows.length || rows[i]!.seq !== rows[i - 1]!.seq + 1) {
        const messages = this.profile.samples(this.deps.outbox.epoch, rows, start, i, backlog);
        this.send(messages, [rows[start]!.seq, rows[i - 1]!.seq], i - start, backlog ? 'backlog' : 'telemetry');
        start = i;
      }
    }
  }

  private publish(m: Outgoing, cause?: Cause): Promise<void> {
    const extra = m.contentType !== undefined || cause !== undefined ? { ...(m.contentType !== undefined ? { contentType: m.contentType } : {}), ...(cause ? { cause } : {}) } : undefined;
    return this.deps.session.publish(m.topic, m.payload, m.qos, m.retain, extra);
  }

  /**
   * Publishes what a profile made of one seq range and acks the range when the broker has all of it: by
   * PUBACK for QoS 1, by a fence behind the QoS 0 ones (Session.fence). Null: the profile does not carry it,
   * so the range is done at once.
   */
  private send(made: Outgoing | Outgoing[] | null, range: [number, number], samples: number, cause?: Cause): void {
    const { session } = this.deps;
    const messages = made === null ? [] : Array.isArray(made) ? made : [made];
    const generation = session.generation;
    const round = this.round;
    const sentAt = this.timers.now();
    this.stats.inflight++;
    this.stats.publishedMessages += messages.length;
    this.stats.published += samples;
    this.sending.set(range[0], range[1]);
    const published = Promise.all(messages.map((m) => this.publish(m, cause)));
    const received = messages.some((m) => m.qos === 0) ? published.then(() => session.fence()) : published;
    received.then(
      () => {
        if (generation !== session.generation) return;
        if (round === this.round) {
          this.stats.inflight--;
          this.sending.delete(range[0]);
        }
        const ms = this.timers.now() - sentAt;
        this.stats.lastPubackAt = this.timers.now();
        this.stats.lastPubackMs = ms;
        this.stats.acked += samples;
        this.deps.onPuback?.(ms, samples);
        this.ack(range);
        this.pump();
      },
      () => {
        // The connection dropped: the rows are still in the outbox and go again after the reconnect.
        if (generation !== session.generation || round !== this.round) return;
        this.stats.inflight--;
        this.sending.delete(range[0]);
      },
    );
  }

  /**
   * Deletes PUBACKed rows in groups during a drain: one outbox transaction per PUBACK was a large share of the
   * drain's time. A crash before the delete only means those rows go again (the consumer dedups by seq). With
   * nothing left in flight (live traffic, end of a backlog) or after stop() the delete is immediate.
   */
  private ack(range: [number, number]): void {
    const last = this.acks[this.acks.length - 1];
    if (last && last[1] + 1 === range[0]) last[1] = range[1];
    else this.acks.push(range);
    this.ackedMessages++;
    if (this.stats.inflight === 0 || this.stopped || this.ackedMessages >= ACK_GROUP_MESSAGES) this.flushAcks();
    else this.ackTimer ??= this.timers.setTimeout(() => this.flushAcks(), ACK_GROUP_MS);
  }

  private flushAcks(): void {
    this.timers.clearTimeout(this.ackTimer);
    this.ackTimer = undefined;
    if (this.acks.length === 0) return;
    const ranges = this.acks;
    this.acks = [];
    this.ackedMessages = 0;
    this.deps.outbox.ack(ranges);
  }

  /** Samples the outbox had to drop (full disk budget, age) are announced, so a consumer knows the gap is final. */
  private reportDropped(): void {
    this.droppedCheckedAt = this.timers.now();
    const ranges = this.deps.outbox.droppedRanges();
    if (ranges.length === 0) return;
    const last = ranges[ranges.length - 1]!.id;
    const message = this.profile.dropped(this.deps.outbox.epoch, ranges);
    if (!message) {
      this.deps.outbox.markDroppedReported(last);
      return;
    }
    this.publish(message).then(
      () => this.deps.outbox.markDroppedReported(last),
      () => {},
    );
  }
}

/** What a birth says, but for its time: two births of one key are the same birth (docs/payload.md "Status"). */
export function birthKey(ctx: BirthContext): string {
  return JSON.stringify([ctx.version, ctx.configHash, ctx.epoch, ctx.points]);
}

export { birthStatus, offlineStatus, withSeq } from './messages.js';
