/**
 * fieldgate's own wire format, v1 (docs/payload.md, docs/telemetry.schema.json): `{prefix}/{gateway}/...`
 * topics, a retained JSON status that carries the point dictionary, compact or JSON telemetry, and JSON
 * events that carry their (epoch, seq). Its bytes are pinned by test/messages-golden.test.ts.
 */
import type { PayloadFormat } from '../../payload.js';
import { encodeCompactSeries, encodeJson } from '../../payload.js';
import { birthStatus, droppedEvent, eventJson, offlineStatus, outboxStateEvent, withSeq } from '../../messages.js';
import type { CommandResult } from '../../../commands/types.js';
import type { DroppedRange, StoredEvent } from '../../../outbox/types.js';
import type { OutboxCondition, Outgoing, StoredRow, Subscription, UplinkProfile } from '../../profile.js';
import { parseCommand } from './commands.js';
import { DEFLATE_CONTENT_TYPE, deflateTelemetry, type Compression } from '../../compress.js';

export interface FieldgateTopics {
  telemetry: string;
  status: string;
  events: string;
  alarms: string;
  /** Commands in: `cmd/write`, `cmd/alarm`; results out on `cmd/result`. */
  commands: string;
  results: string;
}

export function topicsFor(prefix: string, gatewayId: string): FieldgateTopics {
  const base = `${prefix}/${gatewayId}`;
  return { telemetry: `${base}/telemetry`, status: `${base}/status`, events: `${base}/events`, alarms: `${base}/alarms`, commands: `${base}/cmd`, results: `${base}/cmd/result` };
}

/** `{prefix}/{gateway}`, the level every topic of the profile is under. */
const prefixOf = (t: FieldgateTopics) => t.status.slice(0, -'/status'.length);

export interface FieldgateProfileOptions {
  gatewayId: string;
  topicPrefix: string;
  format: PayloadFormat;
  /** deflate: telemetry goes compressed, behind a marker byte and with an MQTT 5 content type (compress.ts). Default none. */
  compression?: Compression;
  /**
   * Which command topics to listen on: cmd/write when a point is writable, cmd/alarm when a point has alarms
   * (default both). What is not subscribed cannot arrive; the guard judges what does.
   */
  commands?: { write: boolean; alarm: boolean };
  /** Listen on config/desired (remoteConfig.enabled). */
  remoteConfig?: boolean;
  /** Gateway clock for ttlS; Date.now by default. */
  now?: () => number;
}

/** v1 carries every kind: each encoder returns exactly one message. */
export interface FieldgateProfile extends UplinkProfile {
  readonly topics: FieldgateTopics;
  samples(epoch: string, rows: readonly StoredRow[], start: number, end: number, backlog: boolean): Outgoing;
  event(epoch: string, event: StoredEvent): Outgoing;
  dropped(epoch: string, ranges: readonly DroppedRange[]): Outgoing;
  outboxCondition(condition: OutboxCondition): Outgoing;
  commandResult(result: CommandResult): Outgoing;
}

export function fieldgateProfile(o: FieldgateProfileOptions): FieldgateProfile {
  const topics = topicsFor(o.topicPrefix, o.gatewayId);
  const g = o.gatewayId;
  const now = o.now ?? Date.now;
  const takes = o.commands ?? { write: true, alarm: true };
  const writeTopic = `${topics.commands}/write`;
  const alarmTopic = `${topics.commands}/alarm`;
  const desiredTopic = `${prefixOf(topics)}/config/desired`;
  const subscriptions: Subscription[] = [
    ...(takes.write ? [{ filter: writeTopic, qos: 1 as const }] : []),
    ...(takes.alarm ? [{ filter: alarmTopic, qos: 1 as const }] : []),
    ...(o.remoteConfig ? [{ filter: desiredTopic, qos: 1 as const }] : []),
  ];
  return {
    name: 'fieldgate',
    topics,
    will: () => ({ topic: topics.status, payload: offlineStatus('lost'), qos: 1, retain: true }),
    birth: (ctx) => [{ topic: topics.status, payload: birthStatus({ gatewayId: g, ...ctx }), qos: 1, retain: true }],
    // The status is the only birth, retained, and made of the context alone (docs/payload.md "Status").
    retainedBirth: true,
    offline: () => ({ topic: topics.status, payload: offlineStatus('shutdown'), qos: 1, retain: true }),
    samples: (epoch, rows, start, end) => {
      const text = o.format === 'compact' ? encodeCompactSeries(g, epoch, rows, start, end) : encodeJson(g, epoch, rows.slice(start, end).map((r) => ({ ...r, pointIndex: r.series })));
      if (o.compression !== 'deflate') return { topic: topics.telemetry, payload: text, qos: 1, retain: false };
      return { topic: topics.telemetry, payload: deflateTelemetry(text), qos: 1, retain: false, contentType: DEFLATE_CONTENT_TYPE };
    },
    event: (epoch, e) => ({
      topic: e.event.kind === 'alarm' ? topics.alarms : topics.events,
      payload: withSeq(eventJson(g, e.event), e.seq, epoch),
      qos: 1,
      retain: false,
    }),
    dropped: (epoch, ranges) => ({ topic: topics.events, payload: droppedEvent(g, epoch, ranges), qos: 1, retain: false }),
    outboxCondition: (c) => ({ topic: topics.events, payload: outboxStateEvent(g, c.state, c.was, c.pending, c.ts), qos: 1, retain: false }),
    budget: (b, ts) => ({ topic: topics.events, payload: JSON.stringify({ v: 1, event: 'budget', g, state: b.stretch > 1 ? 'throttled' : 'within', month: b.month, usedBytes: b.usedBytes, projectedBytes: b.projectedBytes, monthlyBytes: b.monthlyBytes, stretch: b.stretch, ts }), qos: 1, retain: false }),
    subscriptions: () => subscriptions,
    inbound: (topic, payload, meta) => {
      if (topic === writeTopic && takes.write) return parseCommand('write', payload, now(), meta?.expiryS);
      if (topic === alarmTopic && takes.alarm) return parseCommand('alarm', payload, now(), meta?.expiryS);
      // An empty retained message is how a desired configuration is withdrawn: nothing to judge.
      if (topic === desiredTopic && o.remoteConfig) return payload.length === 0 ? null : { kind: 'config-desired', payload };
      return null;
    },
    commandResult: (r) => ({ topic: topics.results, payload: JSON.stringify(r), qos: 1, retain: false }),
  };
}
