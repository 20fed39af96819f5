/**
 * The v1 messages other than telemetry batches (docs/payload.md, docs/telemetry.schema.json): the retained
 * status (birth and offline), the events (dropped ranges, outbox state, a recreated outbox) and the alarm
 * events. Pure: test/messages-golden.test.ts pins their bytes.
 */
import { commandEventJson } from '../commands/audit.js';
import type { GatewayEvent } from '../events.js';
import type { DroppedRange, RecreateReason } from '../outbox/types.js';
import type { AlarmEvent } from '../processing/types.js';
import type { DictionaryEntry } from './payload.js';

/**
 * `{"v":1,"event":"alarm","g":…,"state","device","point","alarm","type","severity","value","limit","ts",
 * "message"?,"alarmState"?,"returned"?,"until"?,"by"?,"note"?}`; the uplink puts "seq" and "ep" in front.
 * `alarmState` is left out where `state` implies it (a raise: unacknowledged; a clear: returned-unacknowledged),
 * so a raise and a clear nobody acknowledged keep the bytes of older builds.
 */
export function alarmEventJson(gatewayId: string, e: AlarmEvent): string {
  const o: Record<string, unknown> = {
    v: 1,
    event: 'alarm',
    g: gatewayId,
    state: e.state,
    device: e.device,
    point: e.point,
    alarm: e.alarm,
    type: e.type,
    severity: e.severity,
    value: e.value,
    limit: e.limit,
    ts: e.ts,
  };
  if (e.message !== undefined) o.message = e.message;
  const implied = (e.state === 'raised' && e.alarmState === 'unacknowledged') || (e.state === 'cleared' && e.alarmState === 'returned-unacknowledged');
  if (e.alarmState !== undefined && !implied) o.alarmState = e.alarmState;
  if (e.returned === true) o.returned = true;
  if (e.until !== undefined) o.until = e.until;
  if (e.by !== undefined) o.by = e.by;
  if (e.note !== undefined) o.note = e.note;
  return JSON.stringify(o);
}

/** Samples the outbox had to drop (disk budget, age), so a consumer knows the gap is final. */
export function droppedEvent(gatewayId: string, epoch: string, ranges: readonly DroppedRange[]): string {
  return JSON.stringify({
    v: 1,
    event: 'dropped',
    g: gatewayId,
    ep: epoch,
    ranges: ranges.map((r) => ({ reason: r.reason, stream: r.stream, from: r.fromSeq, to: r.toSeq, before: r.beforeSeq, count: r.count, fromTs: r.fromTs, toTs: r.toTs })),
  });
}

/** The outbox stopped or started again accepting writes (disk full and back). */
export function outboxStateEvent(gatewayId: string, state: string, was: string, pending: number, ts: number): string {
  return JSON.stringify({ v: 1, event: 'outbox-state', g: gatewayId, state, was, pending, ts });
}

/** Why the epoch changed: the outbox was found corrupt, not an outbox, newer, or deleted, and started anew. */
export function outboxRecreatedEvent(gatewayId: string, report: { reason: RecreateReason | string; error?: string; movedTo?: string | null }): string {
  return JSON.stringify({ v: 1, event: 'outbox-recreated', g: gatewayId, reason: report.reason, error: report.error, movedTo: report.movedTo });
}

/** The v1 JSON of a stored event, before its (epoch, seq) is put in front. */
export function eventJson(gatewayId: string, e: GatewayEvent): string {
  switch (e.kind) {
    case 'alarm':
      return alarmEventJson(gatewayId, e.alarm);
    case 'outbox-recreated':
      return outboxRecreatedEvent(gatewayId, e);
    case 'command':
      return commandEventJson(gatewayId, e);
    case 'config': {
      // {"v":1,"event":"config","g","version","hash","state","reason"?,"errors"?,"ts"}: the audit of a pushed change.
      const { kind: _kind, ...rest } = e;
      return JSON.stringify({ v: 1, event: 'config', g: gatewayId, ...rest });
    }
    case 'unreadable':
      // Sent as stored, so the consumer sees the seq filled and can read what there is.
      return e.text;
  }
}

/**
 * Events share the samples' seq space, so each one carries its (epoch, seq): a consumer checking for gaps
 * sees them fill the holes they leave in the telemetry.
 */
export function withSeq(payloadJson: string, seq: number, epoch: string): string {
  const body = payloadJson.trim();
  if (!body.startsWith('{')) return JSON.stringify({ v: 1, seq, ep: epoch, payload: body });
  return `{"seq":${seq},"ep":${JSON.stringify(epoch)}${body === '{}' ? '' : ','}${body.slice(1)}`;
}

export function offlineStatus(reason: 'shutdown' | 'lost'): string {
  return JSON.stringify({ v: 1, state: 'offline', reason });
}

export function birthStatus(args: {
  gatewayId: string;
  version: string;
  configHash: string;
  epoch: string;
  points: DictionaryEntry[];
}): string {
  return JSON.stringify({
    v: 1,
    state: 'online',
    g: args.gatewayId,
    version: args.version,
    configHash: args.configHash,
    ep: args.epoch,
    ts: Date.now(),
    points: args.points.map((p) => [p.index, p.device, p.point, p.unit ?? null, p.type ?? null]),
  });
}
