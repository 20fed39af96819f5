/**
 * Alarms as they leave the Processor: the event JSON published on the alarms topic, and the state row the
 * outbox writes in the same transaction, so the active alarms survive a restart (src/outbox/state.ts).
 */
import { SEVERITIES } from '../config/processing-schema.js';
import type { StoredAlarm } from './alarms.js';
import type { AlarmEvent, AlarmType, Severity } from './types.js';

/** Prefix of the active-alarm state keys: `outbox.readState(ALARM_STATE_PREFIX)` at start. */
export const ALARM_STATE_PREFIX = 'alarm/';

/** `alarm/{device}/{point}/{alarmId}`; ids match [A-Za-z0-9_-]+, so the slashes are unambiguous. */
export function alarmStateKey(device: string, point: string, alarm: string): string {
  return `${ALARM_STATE_PREFIX}${device}/${point}/${alarm}`;
}

/** The state row to write with the event: the alarm's details while raised, a deletion when cleared. */
export function alarmStateEntry(e: AlarmEvent): { key: string; value: string | null } {
  const key = alarmStateKey(e.device, e.point, e.alarm);
  if (e.state === 'cleared') return { key, value: null };
  return { key, value: JSON.stringify({ type: e.type, severity: e.severity, limit: e.limit, value: e.value, ts: e.ts }) };
}

export interface RestoredAlarm extends StoredAlarm {
  device: string;
  point: string;
  alarm: string;
  type?: AlarmType;
  severity?: Severity;
  limit?: number;
}

const TYPES: readonly string[] = ['low', 'high', 'rateOfChange', 'stale'];
const num = (x: unknown) => (typeof x === 'number' ? x : undefined);

/** Parses the state rows; keys of another shape are skipped, unreadable values keep only the key's facts. */
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
    });
  }
  return out;
}

/** The clear of a restored alarm the configuration no longer has: without it the alarm would stay active upstream. */
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
  };
}
