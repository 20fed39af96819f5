/**
 * The gateway's domain events: what the outbox stores beside samples, in the samples' seq space. They are
 * facts, not wire messages: each uplink profile encodes them its own way (fieldgate v1 JSON, Sparkplug).
 * Stored as (kind, JSON of the rest); `decodeEvent` reads rows written by this build and by builds that
 * stored finished v1 JSON (kind 'alarm'/'alarms'/'events'), so an outbox from before the change drains
 * as typed events too.
 */
import { decodeCommandRecord, encodeCommandRecord, type CommandRecord } from './commands/audit.js';
import type { AlarmEvent } from './processing/types.js';

export type { CommandRecord } from './commands/audit.js';

export interface AlarmRecord {
  kind: 'alarm';
  alarm: AlarmEvent;
}

export interface OutboxRecreatedRecord {
  kind: 'outbox-recreated';
  reason: string;
  error?: string;
  movedTo?: string | null;
}

/**
 * A row this build cannot read as any kind it knows (a corrupt payload, a kind from a newer build): kept
 * and sent as its text, so the seq is accounted for and the row can be acknowledged.
 */
export interface UnreadableRecord {
  kind: 'unreadable';
  stored: string;
  text: string;
}

/** What a pushed configuration came to: the retained `config/reported` (docs/remote-config.md). */
export interface ConfigReport {
  version: number;
  /** The effective configuration's hash, the birth's configHash when that version runs. */
  hash?: string;
  state: 'applied' | 'rejected' | 'rolled-back' | 'pending';
  reason?: string;
  errors?: Array<{ path: string; message: string }>;
  ts: number;
}

/** The same as an audit event in the outbox. */
export interface ConfigChangeRecord extends ConfigReport {
  kind: 'config';
}

/** Every kind the outbox stores. New kinds (command audit, configuration changes) are added here. */
export type GatewayEvent = AlarmRecord | OutboxRecreatedRecord | CommandRecord | ConfigChangeRecord | UnreadableRecord;

/** A committed event: its place in the seq space, when it was appended, and the fact itself. */
export interface StoredEvent {
  seq: number;
  /** Gateway clock (ms) when the event was appended. */
  ts: number;
  event: GatewayEvent;
}

/** The (kind, payload) pair a row is written as. */
export function encodeEvent(e: GatewayEvent): { kind: string; payload: string } {
  switch (e.kind) {
    case 'alarm':
      return { kind: e.kind, payload: JSON.stringify(e.alarm) };
    case 'outbox-recreated':
      return { kind: e.kind, payload: JSON.stringify({ reason: e.reason, error: e.error, movedTo: e.movedTo }) };
    case 'command':
      return { kind: e.kind, payload: encodeCommandRecord(e) };
    case 'config': {
      const { kind: _kind, ...rest } = e;
      return { kind: e.kind, payload: JSON.stringify(rest) };
    }
    case 'unreadable':
      return { kind: e.stored, payload: e.text };
  }
}

const ALARM_KEYS = ['state', 'device', 'point', 'alarm', 'type', 'severity', 'value', 'limit', 'ts', 'message', 'alarmState', 'returned', 'until', 'by', 'note'] as const;
const ISA_STATES: readonly unknown[] = ['normal', 'unacknowledged', 'acknowledged', 'returned-unacknowledged'];

function alarmFrom(o: Record<string, unknown>): AlarmEvent | undefined {
  const str = (k: string) => typeof o[k] === 'string';
  const numOrNull = (k: string) => o[k] === null || typeof o[k] === 'number';
  if (!str('state') || !str('device') || !str('point') || !str('alarm') || !str('type') || !str('severity')) return undefined;
  if (!numOrNull('value') || !numOrNull('limit') || typeof o.ts !== 'number') return undefined;
  for (const k of ['message', 'by', 'note'] as const) if (o[k] !== undefined && !str(k)) return undefined;
  if (o.alarmState !== undefined && !ISA_STATES.includes(o.alarmState)) return undefined;
  if (o.returned !== undefined && o.returned !== true) return undefined;
  if (o.until !== undefined && typeof o.until !== 'number') return undefined;
  // Rebuilt key by key, in the order the v1 encoder writes them, dropping the v1 envelope (v, event, g).
  const a: Record<string, unknown> = {};
  for (const k of ALARM_KEYS) if (o[k] !== undefined) a[k] = o[k];
  return a as unknown as AlarmEvent;
}

/** Reads a stored row back; never throws (a row that cannot be read is `unreadable`, not a stuck uplink). */
export function decodeEvent(kind: string, payload: string): GatewayEvent {
  const unreadable: UnreadableRecord = { kind: 'unreadable', stored: kind, text: payload };
  let o: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(payload);
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return unreadable;
    o = parsed as Record<string, unknown>;
  } catch {
    return unreadable;
  }
  // Rows written as finished v1 JSON say what they are in "event".
  const what = kind === 'events' || kind === 'alarms' ? o.event : kind;
  if (what === 'alarm') {
    const alarm = alarmFrom(o);
    return alarm ? { kind: 'alarm', alarm } : unreadable;
  }
  if (what === 'outbox-recreated' && typeof o.reason === 'string') {
    const r: OutboxRecreatedRecord = { kind: 'outbox-recreated', reason: o.reason };
    if (typeof o.error === 'string') r.error = o.error;
    if (typeof o.movedTo === 'string' || o.movedTo === null) r.movedTo = o.movedTo;
    return r;
  }
  if (what === 'command') return decodeCommandRecord(o) ?? unreadable;
  if (what === 'config') return configFrom(o) ?? unreadable;
  return unreadable;
}

const CONFIG_STATES: readonly string[] = ['applied', 'rejected', 'rolled-back', 'pending'];

function configFrom(o: Record<string, unknown>): ConfigChangeRecord | undefined {
  if (!Number.isSafeInteger(o.version) || typeof o.state !== 'string' || !CONFIG_STATES.includes(o.state) || typeof o.ts !== 'number') return undefined;
  const r: ConfigChangeRecord = { kind: 'config', version: o.version as number, state: o.state as ConfigChangeRecord['state'], ts: o.ts };
  if (typeof o.hash === 'string') r.hash = o.hash;
  if (typeof o.reason === 'string') r.reason = o.reason;
  if (Array.isArray(o.errors)) r.errors = o.errors.filter((x): x is { path: string; message: string } => typeof x?.path === 'string' && typeof x?.message === 'string');
  return r;
}
