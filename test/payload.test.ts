/**
 * Telemetry payload v1: round trips of both formats, every message the uplink publishes against
 * docs/telemetry.schema.json, bytes per sample on a realistic workload (quoted in docs/payload.md), and a
 * decoder that meets any input with samples or a PayloadError.
 */
import fc from 'fast-check';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { uplinkSchema } from '../src/config/schema.js';
import type { DroppedRange, StoredEvent, StoredSample } from '../src/outbox/types.js';
import {
  decodeTelemetry,
  encodeCompact,
  encodeJson,
  FLAG_TIME_UNTRUSTED,
  PayloadError,
  type DecodedSample,
  type DictionaryEntry,
  type OutgoingSample,
} from '../src/uplink/payload.js';
import { offlineStatus } from '../src/uplink/messages.js';
import { Uplink, type UplinkOutbox } from '../src/uplink/uplink.js';
import { ajv, expectValid, validateAny, validator } from './helpers/payload-schema.js';
import { RecordingSession } from './helpers/recording-session.js';

const GATEWAY = 'bashan-village-01';
const EPOCH = '3f9a0c41d27be856';

/** What decoding must give back for an outgoing sample. */
function decoded(s: OutgoingSample): DecodedSample {
  return {
    gateway: GATEWAY, epoch: EPOCH, seq: s.seq, device: s.device, point: s.point, ts: s.ts, value: s.value, quality: s.quality,
    ...(s.reason ? { reason: s.reason } : {}),
    ...(s.flags & FLAG_TIME_UNTRUSTED ? { timeUntrusted: true } : {}),
  };
}

const dictionary = (samples: readonly OutgoingSample[]) => {
  const m = new Map<number, DictionaryEntry>();
  for (const s of samples) m.set(s.pointIndex, { index: s.pointIndex, device: s.device, point: s.point });
  return (i: number) => m.get(i);
};

const T0 = Date.UTC(2025, 5, 1, 6, 30);
const VARIED: OutgoingSample[] = [
  { seq: 41, pointIndex: 0, device: 'pump_house', point: 'inlet_pressure', ts: T0, value: 4.2875, quality: 'good', flags: 0 },
  { seq: 42, pointIndex: 1, device: 'pump_house', point: 'pump_running', ts: T0 + 3, value: true, quality: 'good', flags: 0 },
  { seq: 43, pointIndex: 2, device: 'flow_meter', point: 'inlet_total', ts: T0 + 3, value: 48213517, quality: 'good', flags: 0 },
  { seq: 44, pointIndex: 3, device: 'flow_meter', point: 'serial', ts: T0 + 2, value: 'EM-2207 "b"', quality: 'good', flags: 0 },
  { seq: 45, pointIndex: 4, device: 'highest_house', point: 'high_pressure', ts: T0 + 9, value: null, quality: 'bad', reason: 'timeout after 500 ms', flags: 0 },
  { seq: 46, pointIndex: 5, device: 'flow_meter', point: 'inlet_flow', ts: T0 - 1000, value: -0.25, quality: 'uncertain', reason: 'ILLEGAL_DATA_VALUE', flags: FLAG_TIME_UNTRUSTED },
  { seq: 47, pointIndex: 1, device: 'pump_house', point: 'pump_running', ts: T0 + 5, value: false, quality: 'bad', flags: FLAG_TIME_UNTRUSTED },
  { seq: 48, pointIndex: 0, device: 'pump_house', point: 'inlet_pressure', ts: T0 + 5, value: 4.288125, quality: 'uncertain', flags: 0 },
];

describe('telemetry payload v1', () => {
  it('round-trips every value kind, quality, reason, the time-untrusted flag and negative dt (compact)', () => {
    const text = encodeCompact(GATEWAY, EPOCH, VARIED);
    expect(decodeTelemetry(text, dictionary(VARIED))).toEqual(VARIED.map(decoded));
    expectValid(validator('compactTelemetry'), text);
    // Rows: flags only when needed, reasons after them, dt against the previous row.
    expect(text).toContain('"s":41,"t":1748759400000,"d":[[0,0,4.2875],[1,3,true],[2,0,48213517]');
    expect(text).toContain('[4,7,null,2,"timeout after 500 ms"],[5,-1009,-0.25,5,"ILLEGAL_DATA_VALUE"],[1,1005,false,6]');
  });

  it('round-trips the same through the json format, with no dictionary', () => {
    const text = encodeJson(GATEWAY, EPOCH, VARIED);
    expect(decodeTelemetry(text)).toEqual(VARIED.map(decoded));
    expectValid(validator('jsonTelemetry'), text);
  });

  it('decodes an index missing from the dictionary as point "#N" instead of failing', () => {
    const [s] = decodeTelemetry(encodeCompact(GATEWAY, EPOCH, VARIED.slice(0, 1)));
    expect(s).toMatchObject({ device: '?', point: '#0', seq: 41, value: 4.2875 });
  });

  it('refuses batches it cannot express', () => {
    expect(() => encodeCompact(GATEWAY, EPOCH, [])).toThrow(PayloadError);
    expect(() => encodeCompact(GATEWAY, EPOCH, [VARIED[0]!, VARIED[2]!])).toThrow(/not contiguous at seq 43/);
  });
});

const valueArb: fc.Arbitrary<OutgoingSample['value']> = fc.oneof(
  fc.double({ noNaN: true, noDefaultInfinity: true }).map((x) => (x === 0 ? 0 : x)), // -0 is written as 0
  fc.integer(),
  fc.boolean(),
  fc.string({ maxLength: 12 }),
  fc.constant(null),
);

const batchArb = fc
  .record({
    first: fc.integer({ min: 1, max: 2 ** 40 }),
    t0: fc.integer({ min: 0, max: 2 ** 42 }),
    rows: fc.array(
      fc.record({
        pointIndex: fc.nat(40),
        dt: fc.integer({ min: -60_000, max: 60_000 }),
        value: valueArb,
        quality: fc.constantFrom('good' as const, 'uncertain' as const, 'bad' as const),
        reason: fc.option(fc.string({ minLength: 1, maxLength: 20 }), { nil: undefined }),
        flags: fc.constantFrom(0, FLAG_TIME_UNTRUSTED),
      }),
      { minLength: 1, maxLength: 60 },
    ),
  })
  .map(({ first, t0, rows }) => {
    let ts = t0;
    return rows.map((r, k): OutgoingSample => {
      ts += r.dt;
      const { dt: _dt, reason, ...rest } = r;
      return { ...rest, ...(reason ? { reason } : {}), seq: first + k, device: `dev_${r.pointIndex % 7}`, point: `p${r.pointIndex}`, ts };
    });
  });

describe('payload properties', () => {
  it('encode then decode is the identity for random batches, in both formats', () => {
    fc.assert(
      fc.property(batchArb, (batch) => {
        const want = batch.map(decoded);
        expect(decodeTelemetry(encodeCompact(GATEWAY, EPOCH, batch), dictionary(batch))).toEqual(want);
        expect(decodeTelemetry(encodeJson(GATEWAY, EPOCH, batch))).toEqual(want);
      }),
      { numRuns: 300 },
    );
  });

  it('random batches validate against the schema in both formats', () => {
    const compact = validator('compactTelemetry');
    const json = validator('jsonTelemetry');
    fc.assert(
      fc.property(batchArb, (batch) => {
        expect(compact(JSON.parse(encodeCompact(GATEWAY, EPOCH, batch))), ajv.errorsText(compact.errors)).toBe(true);
        expect(json(JSON.parse(encodeJson(GATEWAY, EPOCH, batch))), ajv.errorsText(json.errors)).toBe(true);
      }),
      { numRuns: 200 },
    );
  });

  /** The decoder's whole contract: well-formed samples, or a PayloadError; never another exception. */
  function samplesOrPayloadError(text: string): void {
    let out: DecodedSample[];
    try {
      out = decodeTelemetry(text, (i) => (i % 2 ? { index: i, device: 'd', point: `p${i}` } : undefined));
    } catch (err) {
      expect(err).toBeInstanceOf(PayloadError);
      return;
    }
    expect(Array.isArray(out)).toBe(true);
    for (const s of out) {
      expect(typeof s.gateway === 'string' && typeof s.epoch === 'string' && typeof s.device === 'string' && typeof s.point === 'string').toBe(true);
      expect(Number.isSafeInteger(s.seq)).toBe(true);
      expect(Number.isInteger(s.ts)).toBe(true);
      expect(['good', 'uncertain', 'bad']).toContain(s.quality);
      expect(s.value === null || ['number', 'boolean', 'string'].includes(typeof s.value)).toBe(true);
      if (typeof s.value === 'number') expect(Number.isFinite(s.value)).toBe(true);
    }
  }

  it('fuzz: arbitrary strings', () => {
    fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 200 }), samplesOrPayloadError), { numRuns: 2000 });
  });

  it('fuzz: arbitrary JSON values', () => {
    fc.assert(fc.property(fc.jsonValue(), (v) => samplesOrPayloadError(JSON.stringify(v) ?? 'null')), { numRuns: 2000 });
  });

  it('fuzz: near-valid messages of both formats', () => {
    const any = fc.jsonValue({ maxDepth: 2 });
    const header = { v: fc.oneof(fc.constant(1), any), g: fc.oneof(fc.constant(GATEWAY), any), ep: fc.oneof(fc.constant(EPOCH), any) };
    const compactArb = fc.record({
      ...header,
      s: fc.oneof(fc.integer({ min: -2, max: 2 ** 53 }), any),
      t: fc.oneof(fc.integer(), fc.double(), any),
      d: fc.oneof(fc.array(fc.oneof(fc.array(fc.oneof(fc.integer({ min: -3, max: 9 }), fc.double(), fc.boolean(), fc.string(), fc.constant(null)), { maxLength: 6 }), any), { maxLength: 8 }), any),
    }, { requiredKeys: [] });
    const jsonArb = fc.record({
      ...header,
      format: fc.constant('json'),
      samples: fc.oneof(fc.array(fc.oneof(fc.record({
        seq: fc.oneof(fc.integer(), any), device: fc.oneof(fc.string(), any), point: fc.oneof(fc.string(), any),
        ts: fc.oneof(fc.integer(), fc.double(), any), value: fc.oneof(valueArb, any), quality: fc.oneof(fc.constantFrom('good', 'bad', 'uncertain'), any),
        reason: any, timeUntrusted: any,
      }, { requiredKeys: [] }), any), { maxLength: 5 }), any),
    }, { requiredKeys: ['format'] });
    fc.assert(fc.property(fc.oneof(compactArb, jsonArb), (m) => samplesOrPayloadError(JSON.stringify(m))), { numRuns: 3000 });
  });
});

/**
 * The benchmark workload: 100 points of a water utility polled at 1 Hz, published in 1 s batches. Ten
 * stations of ten points each, read one after another within the second, with values as the decoders produce
 * them (scaled registers to the decimal they mean, float32 to its shortest decimal, counters, bools).
 */
function benchmarkBatches(seconds: number): OutgoingSample[][] {
  let seed = 12345;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const stations = ['pump_house_1', 'pump_house_2', 'pump_house_3', 'booster_station_1', 'booster_station_2', 'reservoir_north', 'reservoir_south', 'well_field_4', 'chlorination_plant', 'district_meter_12'];
  const kinds: Array<{ point: string; next: (prev: number | boolean, k: number) => number | boolean; start: number | boolean }> = [
    { point: 'inlet_pressure', start: 10860, next: (raw) => (raw as number) + Math.round((rnd() - 0.5) * 6) }, // raw; scaled below
    { point: 'outlet_pressure', start: 14200, next: (raw) => (raw as number) + Math.round((rnd() - 0.5) * 6) },
    { point: 'flow_rate', start: 12.5, next: (x) => Number(Math.fround((x as number) + (rnd() - 0.5) * 0.4).toPrecision(7)) },
    { point: 'total_volume', start: 48213.517, next: (x) => Math.round(((x as number) + 0.0035) * 1000) / 1000 },
    { point: 'tank_level', start: 3.1425, next: (x) => Math.round(((x as number) + (rnd() - 0.5) * 0.002) * 10000) / 10000 },
    { point: 'motor_current', start: 7.31, next: (x) => Math.round(((x as number) + (rnd() - 0.5) * 0.1) * 100) / 100 },
    { point: 'water_temperature', start: 11.8, next: (x) => Math.round(((x as number) + (rnd() - 0.5) * 0.1) * 10) / 10 },
    { point: 'pump_starts', start: 1532, next: (n) => ((rnd() < 0.01 ? (n as number) + 1 : n)) },
    { point: 'pump_running', start: true, next: (b) => (rnd() < 0.02 ? !b : b) },
    { point: 'door_open', start: false, next: (b) => (rnd() < 0.01 ? !b : b) },
  ];
  const state = stations.map(() => kinds.map((k) => k.start));
  const t0 = Date.UTC(2025, 5, 1, 6, 0, 0);
  let seq = 1;
  const batches: OutgoingSample[][] = [];
  for (let sec = 0; sec < seconds; sec++) {
    const batch: OutgoingSample[] = [];
    stations.forEach((station, si) => {
      const readAt = t0 + sec * 1000 + si * 23 + Math.floor(rnd() * 4);
      kinds.forEach((kind, ki) => {
        const v = (state[si]![ki] = kind.next(state[si]![ki]!, sec));
        const value = ki < 2 ? Math.round(((v as number) * 0.000625 - 2.5) * 1e6) / 1e6 : v;
        batch.push({ seq: seq++, pointIndex: si * 10 + ki, device: station, point: `${kind.point}_${si + 1}`, ts: readAt + (ki >> 2), value, quality: 'good', flags: 0 });
      });
    });
    batches.push(batch);
  }
  return batches;
}

describe('bytes per sample', () => {
  it('compact stays at or below 40 bytes a sample on the benchmark workload (100 points, 1 Hz, 1 s batches)', () => {
    const batches = benchmarkBatches(600);
    const samples = batches.reduce((n, b) => n + b.length, 0);
    const bytes = (encode: typeof encodeCompact) => batches.reduce((n, b) => n + Buffer.byteLength(encode(GATEWAY, EPOCH, b)), 0);
    const compact = bytes(encodeCompact) / samples;
    const json = bytes(encodeJson) / samples;
    console.log(`payload v1, 100 points at 1 Hz in 1 s batches: compact ${compact.toFixed(1)} bytes/sample, json ${json.toFixed(1)} bytes/sample (${samples} samples)`);
    expect(samples).toBe(60_000);
    expect(compact).toBeLessThanOrEqual(40);
    expect(json).toBeGreaterThan(compact);
    // The sample workload decodes to what was encoded.
    const b = batches[7]!;
    expect(decodeTelemetry(encodeCompact(GATEWAY, EPOCH, b), dictionary(b))).toEqual(b.map(decoded));
  });
});

/** A session that accepts every publish at once and remembers it. */
/** An in-memory outbox with a backlog, one stored event and one unreported dropped range. */
function memoryOutbox(): UplinkOutbox & { add(n: number): void; addNewPoint(id: number): void } {
  const rows: Array<StoredSample & { series: number }> = [];
  const events: StoredEvent[] = [];
  const listeners = new Set<(last: number) => void>();
  const known = new Set([0, 1, 2, 3]);
  let seq = 100;
  const add = (n: number) => {
    for (let i = 0; i < n; i++) {
      const k = seq % 4;
      rows.push({ seq: ++seq, series: k, device: k < 2 ? 'pump_house' : 'flow_meter', point: ['inlet_pressure', 'pump_running', 'inlet_flow', 'inlet_total'][k]!, ts: T0 + seq * 250, value: [4.2875, true, 12.5, 48213.517][k]!, quality: seq % 9 ? 'good' : 'bad', ...(seq % 9 ? {} : { reason: 'CRC error' }), flags: seq % 13 ? 0 : FLAG_TIME_UNTRUSTED });
    }
    for (const l of listeners) l(seq);
  };
  add(30);
  events.push({ seq: ++seq, ts: T0, event: { kind: 'outbox-recreated', reason: 'corrupt', error: 'database disk image is malformed', movedTo: '/var/lib/fieldgate/outbox.db.corrupt-1' } });
  add(30);
  const dropped: DroppedRange = { id: 1, reason: 'maxAge', stream: 'sample', fromSeq: 1, toSeq: 100, beforeSeq: null, count: 100, fromTs: T0 - 1e9, toTs: T0 - 9e8, at: T0, reported: false };
  let droppedReported = false;
  const between = <T extends { seq: number }>(list: T[], after: number, limit: number, before = Infinity) => list.filter((r) => r.seq > after && r.seq < before).slice(0, limit);
  return {
    epoch: EPOCH,
    add,
    read: (after, limit, before) => between(rows, after, limit, before),
    readEvents: (after, limit, before) => between(events, after, limit, before),
    series: () => [...known].map((id) => ({ id })),
    addNewPoint: (id: number) => {
      known.add(id);
      rows.push({ seq: ++seq, series: id, device: 'tank', point: 'level', ts: T0 + seq * 250, value: 2.5, quality: 'good', flags: 0 });
      for (const l of listeners) l(seq);
    },
    maxSeq: () => seq,
    ack: (ranges) => {
      for (const [a, b] of ranges) for (const list of [rows, events] as Array<Array<{ seq: number }>>) for (let i = list.length - 1; i >= 0; i--) if (list[i]!.seq >= a && list[i]!.seq <= b) list.splice(i, 1);
      return 0;
    },
    droppedRanges: () => (droppedReported ? [] : [dropped]),
    markDroppedReported: () => void (droppedReported = true),
    onCommit: (l) => (listeners.add(l), () => listeners.delete(l)),
  };
}

describe('every message the uplink publishes validates against the schema', () => {
  for (const format of ['compact', 'json'] as const) {
    it(`${format}: birth, dropped, stored event, backlog and live telemetry, offline`, async () => {
      const session = new RecordingSession();
      const outbox = memoryOutbox();
      const points: DictionaryEntry[] = [
        { index: 0, device: 'pump_house', point: 'inlet_pressure', unit: 'bar', type: 'uint16' },
        { index: 1, device: 'pump_house', point: 'pump_running', type: 'bool' },
        { index: 2, device: 'flow_meter', point: 'inlet_flow', unit: 'm3/h', type: 'float32' },
        { index: 3, device: 'flow_meter', point: 'inlet_total' },
      ];
      const uplink = new Uplink({
        session,
        outbox,
        config: uplinkSchema.parse({ url: 'mqtt://127.0.0.1:1', format, batch: { maxSamples: 16, maxDelayMs: 10 } }),
        gatewayId: GATEWAY,
        logger: pino({ level: 'silent' }),
        birth: () => ({ version: '0.1.0', configHash: 'a1b2c3d4e5f6', epoch: EPOCH, points }),
      });
      uplink.start();
      expect(await uplink.drain(2000)).toBe(true);
      outbox.add(20);
      expect(await uplink.drain(2000)).toBe(true);
      await uplink.stop();

      const byKind = (kind: string) => session.published.filter((p) => p.topic === `fieldgate/${GATEWAY}/${kind}`);
      const status = byKind('status');
      expect(status.map((p) => [JSON.parse(p.payload).state, p.retain])).toEqual([['online', true], ['offline', true]]);
      expect(status[1]!.payload).toBe(offlineStatus('shutdown'));
      expect(JSON.parse(offlineStatus('lost'))).toEqual({ v: 1, state: 'offline', reason: 'lost' });
      expectValid(validator('offlineStatus'), offlineStatus('lost'));
      for (const p of status) expectValid(validator('status'), p.payload);
      const events = byKind('events');
      expect(events.map((p) => JSON.parse(p.payload).event).sort()).toEqual(['dropped', 'outbox-recreated']);
      for (const p of events) expectValid(validator('event'), p.payload);
      const telemetry = byKind('telemetry');
      const seqs = telemetry.flatMap((p) => decodeTelemetry(p.payload).map((s) => s.seq)).sort((a, b) => a - b);
      expect(seqs).toEqual([...Array.from({ length: 30 }, (_, i) => 101 + i), ...Array.from({ length: 50 }, (_, i) => 132 + i)]);
      for (const p of telemetry) expectValid(validator(format === 'compact' ? 'compactTelemetry' : 'jsonTelemetry'), p.payload);
      expect(session.published.length).toBe(status.length + events.length + telemetry.length);
    });
  }
});

describe('the point dictionary', () => {
  it('is published again before telemetry of a point the last birth did not list', async () => {
    const session = new RecordingSession();
    const outbox = memoryOutbox();
    let births = 0;
    const uplink = new Uplink({
      session,
      outbox,
      config: uplinkSchema.parse({ url: 'mqtt://127.0.0.1:1', batch: { maxSamples: 16, maxDelayMs: 10 } }),
      gatewayId: GATEWAY,
      logger: pino({ level: 'silent' }),
      birth: () => ({ version: '0.1.0', configHash: `hash${++births}`.padEnd(12, '0'), epoch: EPOCH, points: [] }),
    });
    uplink.start();
    expect(await uplink.drain(2000)).toBe(true);
    const before = session.published.length;
    outbox.addNewPoint(9);
    expect(await uplink.drain(2000)).toBe(true);
    const after = session.published.slice(before).map((p) => p.topic.split('/').pop());
    expect(after).toEqual(['status', 'telemetry']);
    expect(births).toBe(2);
    await uplink.stop();
  });
});

describe('alarm events', () => {
  it('validate against the schema as published (with seq and epoch in front)', async () => {
    const { alarmEventJson, withSeq } = await import('../src/uplink/messages.js');
    const raised = alarmEventJson('bashan-village-01', {
      state: 'raised', device: 'pump_house', point: 'inlet_pressure', alarm: 'burst', type: 'rateOfChange',
      severity: 'critical', value: 3.12, limit: -0.5, ts: 1_748_700_123_000,
    });
    const published = withSeq(raised, 812, '3f9a0c41d27be856');
    expectValid(validator('alarmEvent'), published);
    expectValid(validateAny, published);
    const stale = withSeq(alarmEventJson('g', { state: 'cleared', device: 'd', point: 'p', alarm: 'stale', type: 'stale', severity: 'minor', value: null, limit: null, ts: 1_748_700_000_000, message: 'no data' }), 1, '3f9a0c41d27be856');
    expectValid(validateAny, stale);
  });
});

describe('edge cases of timestamps and the json decoder', () => {
  const one = { seq: 1, pointIndex: 0, series: 0, device: 'd', point: 'p', ts: 1.6, value: 1, quality: 'good' as const, flags: 0 };
  it('a fractional timestamp goes out as whole milliseconds that decode again', () => {
    expect(decodeTelemetry(encodeCompact('g', 'e', [one]))[0]!.ts).toBe(2);
    expect(decodeTelemetry(encodeJson('g', 'e', [one]))[0]!.ts).toBe(2);
  });
  it('refuses a dt that takes the timestamp past the safe range, a negative seq and a non-string reason', () => {
    expect(() => decodeTelemetry('{"v":1,"g":"g","ep":"e","s":1,"t":9007199254740991,"d":[[0,9007199254740991,1]]}')).toThrow(PayloadError);
    expect(() => decodeTelemetry('{"v":1,"format":"json","g":"g","ep":"e","samples":[{"seq":-5,"device":"d","point":"p","ts":1,"value":1,"quality":"good"}]}')).toThrow(PayloadError);
    expect(() => decodeTelemetry('{"v":1,"format":"json","g":"g","ep":"e","samples":[{"seq":5,"device":"d","point":"p","ts":1,"value":1,"quality":"bad","reason":42}]}')).toThrow(PayloadError);
  });
});
