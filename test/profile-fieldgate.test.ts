/** The fieldgate v1 profile: which topic, QoS and retain flag each message kind goes out with. */
import { describe, expect, it } from 'vitest';
import { fieldgateProfile } from '../src/uplink/profiles/fieldgate/index.js';

const profile = fieldgateProfile({ gatewayId: 'gw-1', topicPrefix: 'water/bashan', format: 'compact' });
const row = { seq: 5, series: 0, device: 'd', point: 'p', ts: 1_748_771_998_000, value: 1, quality: 'good' as const, flags: 0 };

describe('fieldgate profile', () => {
  it('puts every message kind on its documented topic', () => {
    const base = 'water/bashan/gw-1';
    expect(profile.will()).toEqual({ topic: `${base}/status`, payload: '{"v":1,"state":"offline","reason":"lost"}', qos: 1, retain: true });
    expect(profile.offline()).toMatchObject({ topic: `${base}/status`, qos: 1, retain: true });
    const births = profile.birth({ epoch: 'e', version: '1', configHash: 'h', points: [] });
    expect(births.map((b) => [b.topic, b.qos, b.retain])).toEqual([[`${base}/status`, 1, true]]);
    expect(profile.samples('e', [row], 0, 1, false)).toMatchObject({ topic: `${base}/telemetry`, qos: 1, retain: false });
    // Live and backlog rows are the same v1 message: a consumer tells them apart by seq, not by topic.
    expect(profile.samples('e', [row], 0, 1, true)).toEqual(profile.samples('e', [row], 0, 1, false));
    const alarm = { state: 'raised', device: 'd', point: 'p', alarm: 'high', type: 'high', severity: 'major', value: 5, limit: 4, ts: 9 } as const;
    expect(profile.event('e', { seq: 7, ts: 0, event: { kind: 'alarm', alarm } })).toEqual({
      topic: `${base}/alarms`,
      payload: '{"seq":7,"ep":"e","v":1,"event":"alarm","g":"gw-1","state":"raised","device":"d","point":"p","alarm":"high","type":"high","severity":"major","value":5,"limit":4,"ts":9}',
      qos: 1,
      retain: false,
    });
    expect(profile.event('e', { seq: 8, ts: 0, event: { kind: 'outbox-recreated', reason: 'corrupt' } }).topic).toBe(`${base}/events`);
    // A row this build cannot read goes out as stored, so its seq is filled.
    expect(profile.event('e', { seq: 9, ts: 0, event: { kind: 'unreadable', stored: 'x', text: '{"v":1,"event":"future"}' } }).payload).toBe('{"seq":9,"ep":"e","v":1,"event":"future"}');
    expect(profile.dropped('e', []).topic).toBe(`${base}/events`);
    expect(profile.outboxCondition({ state: 'disk-full', was: 'ok', pending: 1, ts: 2 }).topic).toBe(`${base}/events`);
  });

  it('encodes telemetry in the configured format', () => {
    const json = fieldgateProfile({ gatewayId: 'gw-1', topicPrefix: 'fieldgate', format: 'json' });
    expect(JSON.parse(json.samples('e', [row], 0, 1, false).payload.toString())).toMatchObject({ format: 'json', samples: [{ seq: 5 }] });
    expect(JSON.parse(profile.samples('e', [row], 0, 1, false).payload.toString())).toMatchObject({ s: 5, d: [[0, 0, 1]] });
  });
});
