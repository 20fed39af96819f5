/**
 * The alarm conditions of one point, each a small state machine: its condition starts and ends (with delays,
 * hysteresis); what is announced of it (ISA-18.2 states, latch, shelving) is alarm-isa.ts. low, high and
 * rateOfChange see only good numeric samples (booleans as 0 and 1); other samples are invisible to them: they
 * neither start, reset nor complete a delay, and never clear an alarm (a broken gas detector must not clear
 * its gas alarm). stale sees every sample and the tick. Rules in docs/processing.md.
 */
import type { AlarmConfig, AlarmType, Severity } from './types.js';

/** A rule's condition starting (raised) or ending (cleared). */
export type Transition = 'raised' | 'cleared';

/** What the outbox keeps of an alarm (alarm-state.ts): enough to clear it after a restart. */
export interface StoredAlarm {
  ts?: number;
  value?: number | null;
}

abstract class Rule {
  readonly id: string;
  readonly severity: Severity;
  readonly message?: string;
  abstract readonly type: AlarmType;
  abstract readonly limit: number;
  /** The condition holds (after delay and hysteresis); the alarm's announced state is alarm-isa.ts's. */
  condition = false;
  /** The value of the event the last transition produced (see AlarmEvent.value). */
  eventValue: number | null = null;

  constructor(cfg: AlarmConfig) {
    this.id = cfg.id ?? cfg.type;
    this.severity = cfg.severity ?? 'major';
    if (cfg.message !== undefined) this.message = cfg.message;
  }

  /** Takes the condition as holding, as restored from the outbox, so it is not raised again and its clear is not lost. */
  restore(_stored: StoredAlarm): void {
    this.condition = true;
  }

  /** The value an operator's action reports (AlarmEvent.value): that of the last transition. */
  actionValue(_ts: number, _mono: number): number | null {
    return this.eventValue;
  }
}

/** A condition must hold this long, measured on sample timestamps from the first sample in it. */
class Hold {
  private since = NaN;
  constructor(private readonly ms: number) {}

  held(cond: boolean, ts: number): boolean {
    if (!cond) {
      this.since = NaN;
      return false;
    }
    if (Number.isNaN(this.since)) this.since = ts;
    return ts - this.since >= this.ms;
  }

  reset(): void {
    this.since = NaN;
  }
}

export abstract class ValueRule extends Rule {
  protected readonly hold: Hold;

  constructor(cfg: AlarmConfig & { delayS?: number }) {
    super(cfg);
    this.hold = new Hold((cfg.delayS ?? 0) * 1000);
  }

  /** Feeds one good value; returns the transition it completes, if any. */
  abstract evaluate(ts: number, v: number): Transition | null;

  protected transition(cond: boolean, ts: number, value: number): Transition | null {
    if (!this.hold.held(cond, ts)) return null;
    this.hold.reset();
    this.condition = !this.condition;
    this.eventValue = value;
    return this.condition ? 'raised' : 'cleared';
  }
}

/** high: raised at value >= limit, cleared below limit - hysteresis. low: raised at <= limit, cleared above limit + hysteresis. */
export class LevelAlarm extends ValueRule {
  readonly type: 'low' | 'high';
  readonly limit: number;
  private readonly clearAt: number;

  constructor(cfg: Extract<AlarmConfig, { type: 'low' | 'high' }>) {
    super(cfg);
    this.type = cfg.type;
    this.limit = cfg.limit;
    const h = cfg.hysteresis ?? 0;
    this.clearAt = cfg.type === 'high' ? cfg.limit - h : cfg.limit + h;
  }

  evaluate(ts: number, v: number): Transition | null {
    const high = this.type === 'high';
    const cond = this.condition ? (high ? v < this.clearAt : v > this.clearAt) : high ? v >= this.limit : v <= this.limit;
    return this.transition(cond, ts, v);
  }
}

/**
 * rateOfChange: the change per perS, from the newest sample and the newest one at least perS older (so the
 * slope always spans at least perS and a short jitter is not extrapolated into a burst). Unknown until the
 * point's good samples span perS; an unknown rate neither raises nor clears. Raised at rate <= limit for a
 * negative limit (a fall), rate >= limit for a positive one; cleared when the rate is back inside.
 */
export class RateAlarm extends ValueRule {
  readonly type = 'rateOfChange' as const;
  readonly limit: number;
  private readonly perMs: number;
  private ts: number[] = [];
  private vs: number[] = [];
  private head = 0;

  constructor(cfg: Extract<AlarmConfig, { type: 'rateOfChange' }>) {
    super(cfg);
    this.limit = cfg.limit;
    this.perMs = (cfg.perS ?? 60) * 1000;
  }

  /** The change per perS at this sample, or null while unknown. */
  rate(ts: number, v: number): number | null {
    const last = this.ts.length - 1;
    // A timestamp going backwards means the clock stepped: slopes across the step would be fiction.
    if (last >= this.head && ts < this.ts[last]) this.forget();
    this.ts.push(ts);
    this.vs.push(v);
    const edge = ts - this.perMs;
    while (this.head + 1 < this.ts.length && this.ts[this.head + 1] <= edge) this.head++;
    if (this.head > 1024 && this.head * 2 > this.ts.length) {
      this.ts = this.ts.slice(this.head);
      this.vs = this.vs.slice(this.head);
      this.head = 0;
    }
    const t0 = this.ts[this.head];
    if (t0 > edge) return null;
    return ((v - this.vs[this.head]) / (ts - t0)) * this.perMs;
  }

  evaluate(ts: number, v: number): Transition | null {
    const rate = this.rate(ts, v);
    if (rate === null) return null;
    const fall = this.limit < 0;
    const beyond = fall ? rate <= this.limit : rate >= this.limit;
    return this.transition(this.condition ? !beyond : beyond, ts, rate);
  }

  private forget(): void {
    this.ts = [];
    this.vs = [];
    this.head = 0;
  }
}

/**
 * stale: raised when no good sample arrived for afterS, cleared by the next good sample. Silence is measured
 * on the Processor's monotonic clock (when samples were processed), so a wall-clock step does not raise it.
 */
export class StaleAlarm extends Rule {
  readonly type = 'stale' as const;
  readonly limit: number;
  private readonly afterMs: number;
  private lastGood: number;
  /** Wall time of the last good sample before a restored raise, to report the silence at its clear. */
  private restoredFrom: number | null = null;

  constructor(cfg: Extract<AlarmConfig, { type: 'stale' }>, startMono: number) {
    super(cfg);
    this.limit = cfg.afterS;
    this.afterMs = cfg.afterS * 1000;
    this.lastGood = startMono;
  }

  override restore(stored: StoredAlarm): void {
    super.restore(stored);
    if (typeof stored.ts === 'number' && typeof stored.value === 'number') this.restoredFrom = stored.ts - stored.value * 1000;
  }

  /** While the condition holds: the silence so far (so a state row written at an acknowledgement restores it). */
  override actionValue(ts: number, mono: number): number | null {
    return this.condition ? Math.max(0, this.silenceMs(ts, mono)) / 1000 : this.eventValue;
  }

  private silenceMs(ts: number, mono: number): number {
    return this.restoredFrom !== null ? ts - this.restoredFrom : mono - this.lastGood;
  }

  /** Any sample, at monotonic time `mono`; `ts` is the sample's own timestamp. */
  onSample(ts: number, good: boolean, mono: number): Transition | null {
    if (good) {
      const silenceMs = this.silenceMs(ts, mono);
      this.lastGood = mono;
      this.restoredFrom = null;
      if (!this.condition) return null;
      this.condition = false;
      this.eventValue = Math.max(0, silenceMs) / 1000;
      return 'cleared';
    }
    return this.onTick(mono);
  }

  onTick(mono: number): Transition | null {
    const silenceMs = mono - this.lastGood;
    if (this.condition || silenceMs < this.afterMs) return null;
    this.condition = true;
    this.eventValue = silenceMs / 1000;
    return 'raised';
  }
}

export function compileAlarm(cfg: AlarmConfig, startMono: number): ValueRule | StaleAlarm {
  switch (cfg.type) {
    case 'low':
    case 'high':
      return new LevelAlarm(cfg);
    case 'rateOfChange':
      return new RateAlarm(cfg);
    case 'stale':
      return new StaleAlarm(cfg, startMono);
  }
}
