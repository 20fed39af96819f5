/**
 * The alarms the page shows: the active ones (worst first, with those restored from the outbox at start, each
 * with its ISA-18.2 state when the processor tracks one, and the alarms that returned to normal unacknowledged)
 * and the recent events, kept from the gateway's alarm events. `alarmFields` is the one copy of an event's fields
 * that these views and the journal share.
 */
import { alarmKey, withUnit, type Units } from './views.js';
import type { AlarmInput, AlarmStateInput, AlarmView, StatusGateway } from './types.js';

/** What every view of an alarm event carries: which alarm, how bad, the reading against the limit, when. */
export interface AlarmFields {
  device: string;
  point: string;
  alarm: string;
  type: string;
  severity: string;
  value: number | null;
  limit: number | null;
  ts: number;
  message?: string;
}

export function alarmFields(e: AlarmInput): AlarmFields {
  return {
    device: e.device,
    point: e.point,
    alarm: e.alarm,
    type: e.type,
    severity: e.severity,
    value: e.value,
    limit: e.limit,
    ts: e.ts,
    ...(e.message ? { message: e.message } : {}),
  };
}

const SEVERITY_RANK: Record<string, number> = { critical: 0, major: 1, minor: 2, warning: 3 };

export class AlarmBook {
  /** Alarms raised since start, by severity (for /metrics). */
  readonly raised = new Map<string, number>();
  private readonly active = new Map<string, AlarmView>();
  private readonly recentEvents: AlarmView[] = [];

  constructor(private readonly recentMax: number) {}

  /** One alarm event. A raise makes it active, a clear ends it; anything else (an operator's action) leaves it as it is. */
  observe(e: AlarmInput): void {
    const view: AlarmView = { state: e.state, ...alarmFields(e) };
    const key = alarmKey(e.device, e.point, e.alarm);
    if (e.state === 'raised') {
      // A repeated raise (restart, reload) keeps the original time.
      const before = this.active.get(key);
      this.active.set(key, before ? { ...view, ts: before.ts } : view);
      if (!before) this.raised.set(e.severity, (this.raised.get(e.severity) ?? 0) + 1);
    } else if (e.state === 'cleared') {
      this.active.delete(key);
    }
    this.recentEvents.unshift(view);
    if (this.recentEvents.length > this.recentMax) this.recentEvents.length = this.recentMax;
  }

  /** The last events, newest first, with their units. */
  recent(units: Units): AlarmView[] {
    return this.recentEvents.map((a) => withUnit(a, units));
  }

  /**
   * The active alarms with their units and configured messages, and those that returned to normal while nobody
   * acknowledged them: those waiting for a person first, then by severity and newest first; shelved ones last.
   */
  activeAlarms(gateway: StatusGateway, units: Units): AlarmView[] {
    const processor = gateway.processor;
    const states = new Map((processor?.alarmStates?.() ?? []).map((s) => [alarmKey(s.device, s.point, s.alarm), s]));
    const out: AlarmView[] = [];
    const add = (key: string, a: AlarmView) => out.push(withState(withUnit(a, units), states.get(key)));
    for (const [key, a] of this.active) add(key, a);
    // Alarms restored from the outbox at start are active without a raise this process saw.
    for (const r of processor?.activeAlarms() ?? []) {
      const key = alarmKey(r.device, r.point, r.alarm);
      if (this.active.has(key)) continue;
      const message = units.messages.get(key);
      add(key, { state: 'raised', device: r.device, point: r.point, alarm: r.alarm, type: r.type, severity: r.severity, value: null, limit: null, ts: null, restored: true, ...(message ? { message } : {}) });
    }
    const listed = new Set(out.map((a) => alarmKey(a.device, a.point, a.alarm)));
    for (const [key, s] of states) {
      if (s.state !== 'returned-unacknowledged' || listed.has(key)) continue;
      const message = s.message ?? units.messages.get(key);
      add(key, { state: 'cleared', device: s.device, point: s.point, alarm: s.alarm, type: s.type, severity: s.severity, value: s.value, limit: s.limit, ts: s.ts, ...(message ? { message } : {}) });
    }
    return out.sort((a, b) => rank(a) - rank(b) || (SEVERITY_RANK[a.severity] ?? 9) - (SEVERITY_RANK[b.severity] ?? 9) || (b.ts ?? 0) - (a.ts ?? 0));
  }
}

/** Unacknowledged first, then acknowledged (and untracked), then returned unacknowledged; shelved last. */
function rank(a: AlarmView): number {
  if (a.shelvedUntil !== undefined) return 3;
  if (a.isa === 'unacknowledged') return 0;
  return a.isa === 'returned-unacknowledged' ? 2 : 1;
}

function withState(a: AlarmView, s: AlarmStateInput | undefined): AlarmView {
  if (!s || s.state === 'normal') return a;
  return { ...a, isa: s.state, ...(s.shelvedUntil !== undefined ? { shelvedUntil: s.shelvedUntil } : {}) };
}
