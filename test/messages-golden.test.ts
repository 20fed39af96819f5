/**
 * The v1 wire format, pinned byte for byte for every message kind a gateway publishes, and each one valid
 * against docs/telemetry.schema.json. A change of any byte here is a change of the documented format.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { alarmEventJson, birthStatus, droppedEvent, offlineStatus, outboxRecreatedEvent, outboxStateEvent, withSeq } from '../src/uplink/messages.js';
import { encodeCompact, encodeJson, type OutgoingSample } from '../src/uplink/payload.js';
import { expectValid, validator } from './helpers/payload-schema.js';

const G = 'bashan-village-01';
const EP = '3f9a0c41d27be856';
const TS = 1_748_771_998_000;
const SAMPLES: OutgoingSample[] = [
  { seq: 101, pointIndex: 0, device: 'pump_house', point: 'inlet_pressure', ts: TS, value: 4.2875, quality: 'good', flags: 0 },
  { seq: 102, pointIndex: 1, device: 'pump_house', point: 'pump_running', ts: TS + 250, value: true, quality: 'bad', reason: 'CRC error', flags: 1 },
];

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['Date'] });
  vi.setSystemTime(TS);
});
afterEach(() => void vi.useRealTimers());

const golden: Array<[string, string, () => string, string]> = [
  [
    'birth (retained status)',
    'birthStatus',
    () => birthStatus({ gatewayId: G, version: '0.1.0', configHash: 'a1b2c3d4e5f6', epoch: EP, points: [{ index: 0, device: 'pump_house', point: 'inlet_pressure', unit: 'bar', type: 'uint16' }, { index: 1, device: 'pump_house', point: 'pump_running', type: 'bool' }] }),
    '{"v":1,"state":"online","g":"bashan-village-01","version":"0.1.0","configHash":"a1b2c3d4e5f6","ep":"3f9a0c41d27be856","ts":1748771998000,"points":[[0,"pump_house","inlet_pressure","bar","uint16"],[1,"pump_house","pump_running",null,"bool"]]}',
  ],
  ['offline status at a clean stop', 'offlineStatus', () => offlineStatus('shutdown'), '{"v":1,"state":"offline","reason":"shutdown"}'],
  ['offline status as the will', 'offlineStatus', () => offlineStatus('lost'), '{"v":1,"state":"offline","reason":"lost"}'],
  [
    'alarm event (with seq and epoch in front)',
    'alarmEvent',
    () => withSeq(alarmEventJson(G, { state: 'raised', device: 'pump_house', point: 'inlet_pressure', alarm: 'burst', type: 'rateOfChange', severity: 'critical', value: 3.12, limit: -0.5, ts: 1_748_700_123_000, message: 'Pipe burst?' }), 812, EP),
    '{"seq":812,"ep":"3f9a0c41d27be856","v":1,"event":"alarm","g":"bashan-village-01","state":"raised","device":"pump_house","point":"inlet_pressure","alarm":"burst","type":"rateOfChange","severity":"critical","value":3.12,"limit":-0.5,"ts":1748700123000,"message":"Pipe burst?"}',
  ],
  [
    'dropped ranges',
    'droppedEvent',
    () => droppedEvent(G, EP, [{ id: 1, reason: 'maxBytes', stream: 'sample', fromSeq: 1, toSeq: 100, beforeSeq: null, count: 100, fromTs: 1_748_700_000_000, toTs: 1_748_700_099_000, at: TS, reported: false }]),
    '{"v":1,"event":"dropped","g":"bashan-village-01","ep":"3f9a0c41d27be856","ranges":[{"reason":"maxBytes","stream":"sample","from":1,"to":100,"before":null,"count":100,"fromTs":1748700000000,"toTs":1748700099000}]}',
  ],
  ['outbox state', 'outboxStateEvent', () => outboxStateEvent(G, 'disk-full', 'ok', 1234, TS), '{"v":1,"event":"outbox-state","g":"bashan-village-01","state":"disk-full","was":"ok","pending":1234,"ts":1748771998000}'],
  [
    'outbox recreated (a stored event, with seq and epoch in front)',
    'storedEvent',
    () => withSeq(outboxRecreatedEvent(G, { reason: 'corrupt', error: 'database disk image is malformed', movedTo: '/var/lib/fieldgate/outbox.db.corrupt-1' }), 1, EP),
    '{"seq":1,"ep":"3f9a0c41d27be856","v":1,"event":"outbox-recreated","g":"bashan-village-01","reason":"corrupt","error":"database disk image is malformed","movedTo":"/var/lib/fieldgate/outbox.db.corrupt-1"}',
  ],
  ['compact telemetry', 'compactTelemetry', () => encodeCompact(G, EP, SAMPLES), '{"v":1,"g":"bashan-village-01","ep":"3f9a0c41d27be856","s":101,"t":1748771998000,"d":[[0,0,4.2875],[1,250,true,6,"CRC error"]]}'],
  [
    'json telemetry',
    'jsonTelemetry',
    () => encodeJson(G, EP, SAMPLES),
    '{"v":1,"format":"json","g":"bashan-village-01","ep":"3f9a0c41d27be856","samples":[{"seq":101,"device":"pump_house","point":"inlet_pressure","ts":1748771998000,"value":4.2875,"quality":"good"},{"seq":102,"device":"pump_house","point":"pump_running","ts":1748771998250,"value":true,"quality":"bad","reason":"CRC error","timeUntrusted":true}]}',
  ],
];

describe('payload v1, byte for byte', () => {
  for (const [what, definition, build, bytes] of golden) {
    it(what, () => {
      const text = build();
      expect(text).toBe(bytes);
      expectValid(validator(definition), text);
    });
  }
});
