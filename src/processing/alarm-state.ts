/**
 * Alarms as they leave the Processor: the state row the outbox writes in the same transaction as each event,
 * so an alarm that is not normal (or is shelved) survives a restart exactly (src/outbox/state.ts).
 */
import { SEVERITIES } from '../config/processing-schema.js';
import type { StoredIsa } from './alarm-isa.js';
import type { AlarmEvent, AlarmType, IsaState, Severity } from './types.js';

/** Prefix of the alarm state keys: `outbox.readState(ALARM_STATE_PREFIX)` at start. */
export const ALARM_STATE_PREFIX = 'alarm/';

/** `alarm/{device}/{point}/{alarmId}`; ids match [A-Za-z0-9_-]+, so the slashes are unambiguous. */
export function alarmStateKey(device: string, point: string, alarm: string): string {
  return `${ALARM_STATE_PREFIX}${device}/${point}/${alarm}`;
}

/**
 * The alarm's state after an event: its `alarmState`, else the one its `state` implies (events of older
 * builds): raised and returned -> unacknowledged, acknowledged -> acknowledged, cleared ->
 * returned-unacknowledged (nobody could acknowledge before), shelved and unshelved -> unacknowledged.
 */
export function stateAfter(e: AlarmEvent): IsaState {
  if (e.alarmState !== undefined) return e.alarmState;
  if (e.state === 'cleared') return 'returned-unacknowledged';
  return e.state === 'acknowledged' ? 'acknowledged' : 'unacknowledged';
}

/** Raised and not cleared after this event (unacknowledged or acknowledged): a birth's or a status page's "active". */
export function alarmActive(e: AlarmEvent): boolean {
  const s = stateAfter(e);
  return s === 'unacknowledged' || s === 'acknowledged';
}

/**
 * The state row to write with the event: the alarm's details unless it is now normal and not shelved (then a
 * deletion). `{type, severity, limit, value, ts}` as older builds wrote for an active alarm, and beside them
 * `state` when it is not unacknowledged, `returned` (latched, condition gone) and `shelvedUntil`.
 */
export function alarmStateEntry(e: AlarmEvent): { key: string; value: string | null } {
  const key = alarmStateKey(e.device, e.point, e.alarm);
  const state = stateAfter(e);
  if (state === 'normal' && e.until === undefined) return { key, value: null };
  const row: Record<string, unknown> = { type: e.type, severity: e.severity, limit: e.limit, value: e.value, ts: e.ts };
  if (state !== 'unacknowledged') row.state = state;
  if (e.returned === true) row.returned = true;
  if (e.until !== undefined) row.shelvedUntil = e.until;
  return { key, value: JSON.stringify(row) };
}

export interface RestoredAlarm extends StoredIsa {
  device: string;
  point: string;
  alarm: string;
  type?: AlarmType;
  severity?: Severity;
  limit?: number;
}

const TYPES: readonly string[] = ['low', 'high', 'rateOfChange', 'stale'];
const STATES: readonly string[] = ['normal', 'unacknowledged', 'acknowledged', 'returned-unacknowledged'];
const num = (x: unknown) => (typeof x === 'number' && Number.isFinite(x) ? x : undefined);

/**
 * Parses the state rows; keys of another shape are skipped, unreadable values keep only the key's facts (an
 * active, unacknowledged alarm, as are rows without `state`).
 */
export function parseAlarmState(rows: ReadonlyMap<string, string>): RestoredAlarm[] {
  const out: RestoredAlarm[] = [];
  for (const [key, value] of rows) {
    if (!key.startsWith(ALARM_STATE_PREFIX)) continue;
    const parts = key.slice(ALARM_STATE_PREFIX.length).split('/');
    if (parts.length !== 3 || parts.some((p) => p.length === 0)) continue;
    let v: Record<string, unknown> = {};
    try {
      const parsed: unknown = JSON.parse(value);
      if (typeof parsed === 'object' && parsed !== null) v = parsed as Record<string, unknown>;
    } catch {
      // The key alone says the alarm is active; that is what matters.
    }
    out.push({
      device: parts[0],
      point: parts[1],
      alarm: parts[2],
      type: typeof v.type === 'string' && TYPES.includes(v.type) ? (v.type as AlarmType) : undefined,
      severity: typeof v.severity === 'string' && (SEVERITIES as readonly string[]).includes(v.severity) ? (v.severity as Severity) : undefined,
      limit: num(v.limit),
      value: num(v.value),
      ts: num(v.ts),
      state: typeof v.state === 'string' && STATES.includes(v.state) ? (v.state as IsaState) : undefined,
      returned: v.returned === true ? true : undefined,
      shelvedUntil: num(v.shelvedUntil),
    });
  }
  return out;
}

/**
 * The clear of a restored alarm the configuration no longer has: without it the alarm would stay active upstream.
 * It leaves the alarm normal (its row deleted): nobody can acknowledge an alarm that is not configured.
 */
export function orphanClear(r: RestoredAlarm, ts: number): AlarmEvent {
  const type = r.type ?? (TYPES.includes(r.alarm) ? (r.alarm as AlarmType) : 'high');
  return {
    state: 'cleared',
    device: r.device,
    point: r.point,
    alarm: r.alarm,
    type,
    severity: r.severity ?? 'major',
    value: null,
    limit: r.limit ?? null,
    ts,
    message: 'alarm no longer in the configuration',
    alarmState: 'normal',
  };
}
