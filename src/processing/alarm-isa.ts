/**
 * What is announced of one alarm, after ISA-18.2: normal, unacknowledged, acknowledged and
 * returned-to-normal-unacknowledged, latching, and shelving for a bounded time. The rule (alarms.ts) says when
 * its condition starts and ends; this says which event that is, if any, and takes the operator's actions.
 * Pure: the time comes in with each call. Rules and the table in docs/processing.md.
 */
import { DEFAULT_SHELVE_MAX_S } from '../config/processing-schema.js';
import type { StaleAlarm, StoredAlarm, Transition, ValueRule } from './alarms.js';
import type { AlarmEvent, AlarmState, IsaState } from './types.js';

/** What an operator's action gives: the events to append (the gateway writes each with its state row), or why not. */
export type AlarmActionResult = { ok: true; events: AlarmEvent[] } | { ok: false; reason: string };

export interface AlarmActionOptions {
  /** Who (the command's `by`): carried on the event. */
  by?: string;
  note?: string;
  /** When, on the clock of the samples and of tick(): the event's ts, and where a shelve's duration starts. */
  ts: number;
}

/** The announced state of an alarm as the outbox keeps it (alarm-state.ts), beside what the rule restores. */
export interface StoredIsa extends StoredAlarm {
  /** Absent in rows of older builds: they held active alarms, none acknowledged. */
  state?: IsaState;
  returned?: boolean;
  shelvedUntil?: number;
}

const refuse = (reason: string): AlarmActionResult => ({ ok: false, reason });

export class ManagedAlarm<R extends ValueRule | StaleAlarm = ValueRule | StaleAlarm> {
  readonly latch: boolean;
  readonly shelveMaxS: number;
  /** Raised upstream and not cleared (unacknowledged or acknowledged). */
  private published = false;
  private acked = false;
  /** Latched, published, unacknowledged, its condition gone: `returned` was sent, the ack clears it. */
  private returned = false;
  /** Not published, cleared before anyone acknowledged it: waits for an acknowledgement. */
  private unackedReturn = false;
  /** The shelve's end (ms), or null when not shelved. */
  shelvedUntil: number | null = null;
  /** The condition ended during the shelve: a condition found at the unshelve is a new occurrence. */
  private endedWhileShelved = false;
  /** The time and value of its last event (or the restored row's), null when it had none. */
  lastTs: number | null = null;
  lastValue: number | null = null;

  constructor(
    readonly rule: R,
    readonly device: string,
    readonly point: string,
    cfg: { latch?: boolean; shelveMaxS?: number },
  ) {
    this.latch = cfg.latch ?? false;
    this.shelveMaxS = cfg.shelveMaxS ?? DEFAULT_SHELVE_MAX_S;
  }

  get state(): IsaState {
    if (this.published) return this.acked ? 'acknowledged' : 'unacknowledged';
    return this.unackedReturn ? 'returned-unacknowledged' : 'normal';
  }

  /** Raised upstream and not cleared: what a birth or the status page counts as active. */
  get active(): boolean {
    return this.published;
  }

  /** `alarm high on tank/level`: how the refusals name it. */
  get name(): string {
    return `alarm ${this.rule.id} on ${this.device}/${this.point}`;
  }

  /** The rule's condition started or ended at ts; pushes the event it is, if any. True when it pushed one. */
  onCondition(t: Transition, ts: number, mono: number, out: AlarmEvent[]): boolean {
    if (this.shelvedUntil !== null) {
      // Shelved: the rule keeps evaluating, nothing is announced; the unshelve brings the announcement in line.
      if (t === 'cleared') this.endedWhileShelved = true;
      return false;
    }
    return this.follow(t === 'raised', false, ts, mono, out);
  }

  /** Brings the announced state in line with the condition `cond`; `renew` raises again an alarm already raised. */
  private follow(cond: boolean, renew: boolean, ts: number, mono: number, out: AlarmEvent[]): boolean {
    if (cond) {
      if (this.published && !this.returned && !renew) return false;
      // A new occurrence, or the condition back on a latched alarm that had returned: unacknowledged again.
      this.published = true;
      this.acked = false;
      this.returned = false;
      this.unackedReturn = false;
      out.push(this.event('raised', ts, mono));
      return true;
    }
    if (!this.published || this.returned) return false;
    if (this.latch && !this.acked) {
      this.returned = true;
      out.push(this.event('returned', ts, mono));
      return true;
    }
    this.published = false;
    this.unackedReturn = !this.acked;
    this.acked = false;
    out.push(this.event('cleared', ts, mono));
    return true;
  }

  /**
   * unacknowledged -> acknowledged (a latched alarm whose condition is gone: cleared, to normal);
   * returned-unacknowledged -> normal. Refused when normal, already acknowledged, or shelved.
   */
  acknowledge(o: AlarmActionOptions, mono: number): AlarmActionResult {
    if (this.shelvedUntil !== null) return refuse(`${this.name} is shelved: unshelve it before acknowledging it`);
    const events: AlarmEvent[] = [];
    switch (this.state) {
      case 'normal':
        return refuse(`${this.name} is normal: nothing to acknowledge`);
      case 'acknowledged':
        return refuse(`${this.name} is already acknowledged`);
      case 'returned-unacknowledged':
        this.unackedReturn = false;
        events.push(this.event('acknowledged', o.ts, mono, o));
        break;
      case 'unacknowledged':
        if (this.returned) {
          // The latch holds it until now: the acknowledgement is its clear.
          this.published = false;
          this.returned = false;
          events.push(this.event('cleared', o.ts, mono, o));
        } else {
          this.acked = true;
          events.push(this.event('acknowledged', o.ts, mono, o));
        }
        break;
    }
    return { ok: true, events };
  }

  /** Suppresses its announcements for durationS (1..shelveMaxS); shelving a shelved alarm sets a new end. */
  shelve(durationS: number, o: AlarmActionOptions, mono: number): AlarmActionResult {
    if (typeof durationS !== 'number' || !Number.isFinite(durationS) || durationS < 1 || durationS > this.shelveMaxS) {
      return refuse(`durationS must be from 1 to ${this.shelveMaxS} s (shelveMaxS of ${this.name}), not ${String(durationS)}`);
    }
    if (this.shelvedUntil === null) this.endedWhileShelved = false;
    this.shelvedUntil = o.ts + Math.round(durationS * 1000);
    return { ok: true, events: [this.event('shelved', o.ts, mono, o)] };
  }

  /** Ends the shelve (a command, or tick at its end) and announces what the condition is now. */
  unshelve(o: AlarmActionOptions, mono: number): AlarmActionResult {
    if (this.shelvedUntil === null) return refuse(`${this.name} is not shelved`);
    this.shelvedUntil = null;
    const events = [this.event('unshelved', o.ts, mono, o)];
    this.follow(this.rule.condition, this.endedWhileShelved, o.ts, mono, events);
    this.endedWhileShelved = false;
    return { ok: true, events };
  }

  /** At tick(now): unshelves at the shelve's end. */
  expire(now: number, mono: number, out: AlarmEvent[]): void {
    if (this.shelvedUntil === null || now < this.shelvedUntil) return;
    const r = this.unshelve({ ts: now }, mono);
    if (r.ok) out.push(...r.events);
  }

  /** As the state row left it (alarm-state.ts); rows of older builds hold active, unacknowledged alarms. */
  restore(s: StoredIsa): void {
    const state = s.state ?? 'unacknowledged';
    this.lastTs = s.ts ?? null;
    this.lastValue = s.value ?? null;
    if (s.value !== undefined) this.rule.eventValue = s.value;
    this.shelvedUntil = s.shelvedUntil ?? null;
    if (state === 'unacknowledged' || state === 'acknowledged') {
      this.published = true;
      this.acked = state === 'acknowledged';
      // A returned row of an alarm no longer latched is taken as active: its condition's end clears it.
      this.returned = state === 'unacknowledged' && s.returned === true && this.latch;
      if (!this.returned) this.rule.restore(s);
    } else if (state === 'returned-unacknowledged') {
      this.unackedReturn = true;
    }
  }

  private event(state: AlarmState, ts: number, mono: number, o?: AlarmActionOptions): AlarmEvent {
    const r = this.rule;
    // A return or clear reports its transition's value; the rest the value now (stale: the silence so far).
    const transition = state === 'returned' || state === 'cleared';
    const e: AlarmEvent = {
      state,
      device: this.device,
      point: this.point,
      alarm: r.id,
      type: r.type,
      severity: r.severity,
      value: transition ? r.eventValue : r.actionValue(ts, mono),
      limit: r.limit,
      ts,
    };
    if (r.message !== undefined) e.message = r.message;
    // Left out where the event's state implies it (stateAfter), so raises and clears are as they always were.
    const after = this.state;
    if (!((state === 'raised' && after === 'unacknowledged') || (state === 'cleared' && after === 'returned-unacknowledged'))) e.alarmState = after;
    if (this.returned) e.returned = true;
    if (state === 'shelved' && this.shelvedUntil !== null) e.until = this.shelvedUntil;
    if (o?.by !== undefined) e.by = o.by;
    if (o?.note !== undefined) e.note = o.note;
    this.lastTs = ts;
    this.lastValue = e.value;
    return e;
  }
}
