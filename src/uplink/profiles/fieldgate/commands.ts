/**
 * fieldgate v1 commands in (docs/payload.md): `{prefix}/{gateway}/cmd/write` and `cmd/alarm`, QoS 1 JSON.
 * Pure and strict: anything that is not exactly a command (unknown keys, wrong types, no expiry, too large)
 * is `invalid` with a reason naming the key, answered when it carried a usable id. Judging (is the point
 * writable, is the value in range) is the guard's, not the parser's.
 */
import type { AlarmCommand, Command, WriteCommand } from '../../../commands/types.js';
import type { Inbound } from '../../profile.js';

/** A command is a few hundred bytes; more is not one. */
export const MAX_COMMAND_BYTES = 4096;
/** A command id: 1-128 printable characters without spaces (also what the local control socket takes). */
export const COMMAND_ID = /^[\x21-\x7e]{1,128}$/;
const NAME = /^[A-Za-z0-9_-]{1,128}$/;
const MAX_TEXT = 256;
/** ttlS and durationS are bounded here only as numbers; the guard and the processor set the real limits. */
const MAX_SECONDS = 30 * 86_400;

const WRITE_KEYS = new Set(['id', 'device', 'point', 'value', 'expiresAt', 'ttlS', 'by']);
const ALARM_KEYS = new Set(['id', 'action', 'device', 'point', 'alarm', 'durationS', 'by', 'note', 'expiresAt', 'ttlS']);
const ACTIONS = ['ack', 'shelve', 'unshelve'] as const;

class Invalid extends Error {}

const fail = (reason: string): never => {
  throw new Invalid(reason);
};

function name(o: Record<string, unknown>, k: string): string {
  const v = o[k];
  if (typeof v !== 'string' || !NAME.test(v)) fail(`"${k}" must be a name of letters, digits, _ and - (1-128), got ${show(v)}`);
  return v as string;
}

function text(o: Record<string, unknown>, k: string): string | undefined {
  const v = o[k];
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || v.length > MAX_TEXT || /[\x00-\x1f\x7f]/.test(v)) fail(`"${k}" must be text of at most ${MAX_TEXT} characters without control characters`);
  return v as string;
}

function seconds(o: Record<string, unknown>, k: string): number | undefined {
  const v = o[k];
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0 || v > MAX_SECONDS) fail(`"${k}" must be a number of seconds above 0 and at most ${MAX_SECONDS}, got ${show(v)}`);
  return v as number;
}

/** expiresAt (gateway clock ms) or ttlS from receipt; both is ambiguous. */
function expiry(o: Record<string, unknown>, now: number): number | undefined {
  if (o.expiresAt !== undefined && o.ttlS !== undefined) fail('give "expiresAt" or "ttlS", not both');
  if (o.expiresAt !== undefined) {
    const v = o.expiresAt;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) fail(`"expiresAt" must be a time in ms since 1970, got ${show(v)}`);
    return v as number;
  }
  const ttl = seconds(o, 'ttlS');
  return ttl === undefined ? undefined : now + Math.round(ttl * 1000);
}

function show(v: unknown): string {
  if (v === undefined) return 'nothing';
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 40 ? `${s.slice(0, 40)}...` : s;
}

function parseObject(payload: Buffer): Record<string, unknown> {
  if (payload.length > MAX_COMMAND_BYTES) fail(`the command is ${payload.length} bytes; at most ${MAX_COMMAND_BYTES}`);
  let v: unknown;
  try {
    v = JSON.parse(payload.toString('utf8'));
  } catch {
    fail('not JSON');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail('not a JSON object');
  return v as Record<string, unknown>;
}

function checkKeys(o: Record<string, unknown>, allowed: ReadonlySet<string>): void {
  for (const k of Object.keys(o)) if (!allowed.has(k)) fail(`unknown key "${k.slice(0, 40)}" (takes ${[...allowed].join(', ')})`);
}

export function parseWrite(o: Record<string, unknown>, now: number): WriteCommand {
  checkKeys(o, WRITE_KEYS);
  const device = name(o, 'device');
  const point = name(o, 'point');
  if (!('value' in o)) fail('"value" is missing');
  const v = o.value;
  if (typeof v !== 'number' && typeof v !== 'boolean' && typeof v !== 'string') fail(`"value" must be a number, true/false or a string, got ${show(v)}`);
  if (typeof v === 'string' && v.length > MAX_TEXT) fail(`"value" is a string of ${v.length} characters; at most ${MAX_TEXT}`);
  const expiresAt = expiry(o, now);
  if (expiresAt === undefined) fail('the command has no expiry: give "expiresAt" (ms) or "ttlS"; a command without one is never run');
  const by = text(o, 'by');
  return { kind: 'write', id: o.id as string, device, point, value: v, expiresAt: expiresAt!, origin: 'mqtt', ...(by !== undefined ? { by } : {}) };
}

export function parseAlarm(o: Record<string, unknown>, now: number): AlarmCommand {
  checkKeys(o, ALARM_KEYS);
  const action = o.action;
  if (typeof action !== 'string' || !(ACTIONS as readonly string[]).includes(action)) fail(`"action" must be one of ${ACTIONS.join(', ')}, got ${show(action)}`);
  const c: AlarmCommand = { kind: 'alarm', id: o.id as string, action: action as AlarmCommand['action'], device: name(o, 'device'), point: name(o, 'point'), alarm: name(o, 'alarm'), origin: 'mqtt' };
  const durationS = seconds(o, 'durationS');
  if (action === 'shelve' && durationS === undefined) fail('shelve needs "durationS"');
  if (action !== 'shelve' && durationS !== undefined) fail(`"durationS" is only for shelve`);
  if (durationS !== undefined) c.durationS = durationS;
  const expiresAt = expiry(o, now);
  if (expiresAt !== undefined) c.expiresAt = expiresAt;
  const by = text(o, 'by');
  if (by !== undefined) c.by = by;
  const note = text(o, 'note');
  if (note !== undefined) c.note = note;
  return c;
}

/**
 * Parses a message on `cmd/write` or `cmd/alarm` (`which`); never throws. `expiryS`, the MQTT 5 Message
 * Expiry Interval left at arrival, bounds the command's expiry: ttlS alone counts from receipt and cannot
 * see how long the message waited at the broker.
 */
export function parseCommand(which: 'write' | 'alarm', payload: Buffer, now: number, expiryS?: number): Inbound {
  let id: string | undefined;
  try {
    const o = parseObject(payload);
    if (typeof o.id === 'string' && COMMAND_ID.test(o.id)) id = o.id;
    else fail(`"id" must be a string of 1-128 printable characters without spaces, got ${show(o.id)}`);
    const command: Command = which === 'write' ? parseWrite(o, now) : parseAlarm(o, now);
    if (expiryS !== undefined && Number.isFinite(expiryS) && expiryS >= 0) {
      const bound = now + expiryS * 1000;
      if (command.expiresAt === undefined || command.expiresAt > bound) command.expiresAt = bound;
    }
    return { kind: 'command', command };
  } catch (err) {
    const reason = err instanceof Invalid ? err.message : `cannot parse: ${(err as Error).message}`;
    return id === undefined ? { kind: 'invalid', reason } : { kind: 'invalid', reason, id };
  }
}
