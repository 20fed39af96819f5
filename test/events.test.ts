import { describe, expect, it } from 'vitest';
import { decodeEvent, encodeEvent, type GatewayEvent } from '../src/events.js';
import { alarmEventJson, outboxRecreatedEvent } from '../src/uplink/messages.js';
import type { AlarmEvent } from '../src/processing/types.js';

const alarm: AlarmEvent = { state: 'raised', device: 'face', point: 'ch4', alarm: 'ch4-stop', type: 'high', severity: 'major', value: 1.1, limit: 1, ts: 5, message: 'stop drilling' };

describe('stored events', () => {
  it('round-trips every kind through its stored row', () => {
    const all: GatewayEvent[] = [
      { kind: 'alarm', alarm },
      { kind: 'alarm', alarm: { ...alarm, state: 'cleared', value: null, limit: null, message: undefined } },
      { kind: 'outbox-recreated', reason: 'corrupt', error: 'malformed', movedTo: '/d/outbox.db.corrupt-1' },
      { kind: 'outbox-recreated', reason: 'deleted', movedTo: null },
      { kind: 'unreadable', stored: 'future-kind', text: '{"x":1}' },
    ];
    for (const e of all) {
      const row = encodeEvent(e);
      expect(decodeEvent(row.kind, row.payload)).toEqual(JSON.parse(JSON.stringify(e)));
    }
  });

  it('reads rows an older build stored as finished v1 JSON as typed events', () => {
    expect(decodeEvent('alarm', alarmEventJson('gw', alarm))).toEqual({ kind: 'alarm', alarm });
    expect(decodeEvent('alarms', alarmEventJson('gw', alarm))).toEqual({ kind: 'alarm', alarm });
    expect(decodeEvent('events', outboxRecreatedEvent('gw', { reason: 'corrupt', error: 'e', movedTo: '/m' }))).toEqual({ kind: 'outbox-recreated', reason: 'corrupt', error: 'e', movedTo: '/m' });
    // The v1 bytes come out the same after the round trip.
    const back = decodeEvent('alarm', alarmEventJson('gw', alarm));
    expect(back.kind === 'alarm' && alarmEventJson('gw', back.alarm)).toBe(alarmEventJson('gw', alarm));
  });

  it('keeps a row it cannot read as unreadable, never throwing', () => {
    for (const [kind, payload] of [['alarm', 'not json'], ['alarm', '[1]'], ['alarm', '{"state":"raised"}'], ['alarm', 'null'], ['events', '{"event":"other"}'], ['x', '{}'], ['alarm', '{"state":"raised","device":"d","point":"p","alarm":"a","type":"high","severity":"major","value":"5","limit":1,"ts":1}']]) {
      expect(decodeEvent(kind!, payload!)).toEqual({ kind: 'unreadable', stored: kind, text: payload });
    }
  });
});
