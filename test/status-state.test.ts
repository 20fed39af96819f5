/** StatusState on a fake gateway and a stepped clock: bounded history, alarms, rates, health rules. */
import { describe, expect, it } from 'vitest';
import { configSchema, type Config } from '../src/config/schema.js';
import { validateConfig } from '../src/config/validate.js';
import type { OutboxStats } from '../src/outbox/types.js';
import type { DeviceHealth, LinkState } from '../src/sources/types.js';
import { alarmSchema } from '../src/config/processing-schema.js';
import { Processor, type AlarmActionResult, type AlarmEvent } from '../src/processing/index.js';
import { PointHistory } from './helpers/point-history.js';
import { isLoopback, parseListen } from '../src/status/listen.js';
import { StatusState } from '../src/status/state.js';
import type { AlarmInput, AlarmStateInput, StatusGateway } from '../src/status/types.js';
import type { UplinkStats } from '../src/uplink/uplink.js';

const T0 = Date.UTC(2025, 5, 1, 10, 0, 0);

function clock() {
  let t = T0;
  return { now: () => t, step: (ms: number) => (t += ms) };
}

const CONFIG = {
  gateway: { id: 'gw-test' },
  buses: [
    { id: 'b1', transport: 'tcp', host: '127.0.0.1', port: 1502 },
    { id: 'b2', transport: 'rtu', port: '/dev/ttyUSB0', parity: 'even' },
  ],
  devices: [
    { id: 'pump', bus: 'b1', unit: 1, pollIntervalMs: 1000, points: [
      { id: 'pressure', fc: 4, address: 0, unit: 'bar', alarms: [{ type: 'low', limit: 2.5, message: 'Low pressure' }] },
      { id: 'running', fc: 2, address: 0 },
    ] },
    { id: 'meter', bus: 'b2', unit: 2, pollIntervalMs: 5000, points: [{ id: 'flow', fc: 3, address: 0, unit: 'm3/h' }] },
  ],
  uplink: { url: 'mqtt://user:secret@127.0.0.1:1883' },
};

/** A gateway whose every reading is a mutable field. */
function fakeGateway(c: { now: () => number }, raw: unknown = CONFIG) {
  const config: Config = configSchema.parse(raw);
  const links: Record<string, LinkState> = { b1: 'connected', b2: 'connected' };
  const health: Record<string, DeviceHealth> = {
    pump: { device: 'pump', state: 'ok', requests: 10, errors: { timeout: 2 }, lastGoodTs: c.now(), backoffMs: 0 },
    meter: { device: 'meter', state: 'ok', requests: 5, errors: {}, lastGoodTs: c.now(), backoffMs: 0 },
  };
  const outbox: OutboxStats = {
    epoch: 'e1', createdAt: T0, mode: 'writer', state: 'ok', samples: 0, events: 0, bytes: 4096, maxBytes: 1_000_000,
    oldestTs: null, newestTs: null, minSeq: null, maxSeq: null, lastSeq: 0, dropped: { maxBytes: 0, maxAge: 0, memoryQueueFull: 0 }, pending: 0,
  };
  const session = { currentState: 'connected', connectedSince: c.now() as number | undefined, reconnects: 0 };
  const uplink: { stats: UplinkStats } = { stats: { published: 0, publishedMessages: 0, acked: 0, inflight: 0 } };
  const restored: Array<{ key: string; device: string; point: string; alarm: string; type: 'low'; severity: 'major' }> = [];
  const gw: StatusGateway = {
    config,
    buses: config.buses.map((b) => ({ id: b.id, get linkState() { return links[b.id]!; }, health: () => config.devices.filter((d) => d.bus === b.id).map((d) => ({ ...health[d.id]! })) })),
    outbox: { stats: () => ({ ...outbox }) },
    uplink,
    session,
    processor: { activeAlarms: () => restored },
  };
  return { gw, links, health, outbox, session, uplink, restored };
}

describe('PointHistory', () => {
  it('stays bounded whatever the sample rate, with min, max and last per bucket', () => {
    const h = new PointHistory(10_000, 3_600_000);
    // Two hours at 50 Hz: a sawtooth 0..99 inside every bucket.
    for (let t = T0; t < T0 + 7_200_000; t += 20) h.add(t, ((t - T0) / 20) % 100);
    const s = h.series(T0 + 7_200_000 - 3_600_000);
    expect(s.t.length).toBeLessThanOrEqual(360);
    expect(s.t.length).toBeGreaterThan(355);
    expect(Math.min(...s.min)).toBe(0);
    expect(Math.max(...s.max)).toBe(99);
    expect(s.t).toEqual([...s.t].sort((a, b) => a - b));
    expect(s.t.every((t, i) => i === 0 || t - s.t[i - 1]! === 10_000)).toBe(true);
  });

  it('leaves gaps where nothing was read, ignores late samples, starts over after a large clock step back', () => {
    const h = new PointHistory(10_000, 3_600_000);
    h.add(T0, 1);
    h.add(T0 + 60_000, 2);
    h.add(T0 + 5_000, 7); // late, same bucket as the first: still counted
    h.add(T0 - 600_000, 9); // older, in a slot still free: kept
    h.add(T0 + 60_000 - 3_600_000, 5); // its slot holds a newer bucket (T0 + 60 s): dropped
    expect(h.series(0).t).toEqual([T0 - 600_000, T0, T0 + 60_000]);
    expect(h.series(T0 - 1).t).toEqual([T0, T0 + 60_000]);
    expect(h.series(T0 - 1).max).toEqual([7, 2]);
    h.add(T0 + 60_000 - 5_000_000, 4); // older than the span: dropped, the rest kept
    expect(h.series(0).t).toHaveLength(3);
    h.add(T0 - 10_000_000, 3); // clock stepped back by hours
    expect(h.series(0).t).toEqual([Math.floor((T0 - 10_000_000) / 10_000) * 10_000]);
  });
});

describe('StatusState', () => {
  it('keeps the last reading per point with unit and quality, and the last good one behind a bad one', () => {
    const c = clock();
    const { gw } = fakeGateway(c);
    const st = new StatusState({ now: c.now, processMetrics: false });
    st.observe([{ device: 'pump', point: 'pressure', ts: c.now(), value: 4.2, quality: 'good' }, { device: 'pump', point: 'running', ts: c.now(), value: true, quality: 'good' }]);
    c.step(2000);
    st.observe([{ device: 'pump', point: 'pressure', ts: c.now(), value: null, quality: 'bad', reason: 'timeout after 1000 ms' }]);
    const s = st.snapshot(gw);
    const pump = s.buses[0]!.devices[0]!;
    const pressure = pump.points.find((p) => p.id === 'pressure')!;
    expect(pressure).toMatchObject({ unit: 'bar', quality: 'bad', value: null, reason: 'timeout after 1000 ms', lastGood: { value: 4.2, ts: T0 } });
    expect(pump.points.find((p) => p.id === 'running')).toMatchObject({ value: true, quality: 'good', bucket: [T0, 1, 1, 1] });
    expect(s.buses[1]!.devices[0]!.points[0]).toMatchObject({ id: 'flow', unit: 'm3/h', quality: null, ts: null });
    expect(s.buses[1]!.target).toBe('/dev/ttyUSB0 9600 8E1');
    expect(s.uplink.url).toBe('mqtt://127.0.0.1:1883');
    expect(st.history('pump', 'pressure')!.last).toEqual([4.2]);
    expect(st.history('pump', 'nope')).toBeUndefined();
  });

  it('tells the page the plots\' bucket width, which widens as points are added', () => {
    const c = clock();
    const { gw } = fakeGateway(c);
    const st = new StatusState({ now: c.now, processMetrics: false });
    st.observe([{ device: 'pump', point: 'pressure', ts: c.now(), value: 1, quality: 'good' }]);
    expect(st.snapshot(gw).plotBucketMs).toBe(20_000);
    st.observe(Array.from({ length: 10_000 }, (_, i) => ({ device: 'many', point: `p${i}`, ts: c.now(), value: i, quality: 'good' as const })));
    expect(st.snapshot(gw).plotBucketMs).toBe(80_000);
    expect(st.history('pump', 'pressure')!.bucketMs).toBe(80_000);
  });

  it('gives the rings of a device a reload removed to the next points, so the plots do not grow', () => {
    const c = clock();
    const { gw } = fakeGateway(c);
    const st = new StatusState({ now: c.now, processMetrics: false });
    const points = (device: string) => Array.from({ length: 1500 }, (_, i) => ({ device, point: `p${i}`, ts: c.now(), value: i, quality: 'good' as const }));
    st.observe(points('gone'));
    expect([st.historyBytes(), st.historyBuffers()]).toEqual([1500 * 180 * 18, 2]);
    st.snapshot(gw); // the configuration has no device "gone"
    expect([st.historyBytes(), st.history('gone', 'p0')]).toEqual([0, undefined]);
    st.observe(points('pump'));
    expect([st.historyBytes(), st.historyBuffers(), st.history('pump', 'p7')!.last]).toEqual([1500 * 180 * 18, 2, [7]]);
  });

  it('lists aggregates after the configured points with their base unit', () => {
    const c = clock();
    const { gw } = fakeGateway(c);
    const st = new StatusState({ now: c.now, processMetrics: false });
    st.observe([{ device: 'meter', point: 'flow.avg', ts: c.now(), value: 3, quality: 'good' }, { device: 'meter', point: 'flow.count', ts: c.now(), value: 12, quality: 'good' }]);
    const pts = st.snapshot(gw).buses[1]!.devices[0]!.points;
    expect(pts.map((p) => [p.id, p.unit])).toEqual([['flow', 'm3/h'], ['flow.avg', 'm3/h'], ['flow.count', undefined]]);
  });

  it('keeps raised alarms active until cleared, worst first, and recent events newest first', () => {
    const c = clock();
    const { gw, restored } = fakeGateway(c);
    const st = new StatusState({ now: c.now, processMetrics: false });
    let changes = 0;
    st.onChange(() => changes++);
    const base = { device: 'pump', point: 'pressure', type: 'low' as const, value: 2.1, limit: 2.5 };
    st.observeAlarm({ ...base, state: 'raised', alarm: 'low', severity: 'major', ts: c.now(), message: 'Low pressure' });
    c.step(1000);
    st.observeAlarm({ ...base, state: 'raised', alarm: 'burst', type: 'rateOfChange' as never, severity: 'critical', ts: c.now() });
    c.step(1000);
    st.observeAlarm({ ...base, state: 'raised', alarm: 'low', severity: 'major', ts: c.now() }); // repeated raise keeps its time
    let s = st.snapshot(gw);
    expect(s.alarms.active.map((a) => [a.alarm, a.severity, a.ts])).toEqual([['burst', 'critical', T0 + 1000], ['low', 'major', T0]]);
    expect(s.alarms.active[1]).toMatchObject({ unit: 'bar', value: 2.1 });
    expect(s.buses[0]!.devices[0]!.points[0]!.alarm).toBe('critical');
    st.observeAlarm({ ...base, state: 'cleared', alarm: 'burst', type: 'rateOfChange' as never, severity: 'critical', ts: c.now() });
    restored.push({ key: 'k', device: 'meter', point: 'flow', alarm: 'high', type: 'low', severity: 'major' });
    s = st.snapshot(gw);
    expect(s.alarms.active.map((a) => [a.alarm, a.restored ?? false])).toEqual([['low', false], ['high', true]]);
    expect(s.alarms.recent.map((a) => `${a.state} ${a.alarm}`)).toEqual(['cleared burst', 'raised low', 'raised burst', 'raised low']);
    expect(changes).toBe(4);
  });

  it('bounds recent alarm events', () => {
    const c = clock();
    const { gw } = fakeGateway(c);
    const st = new StatusState({ now: c.now, recentAlarms: 5, processMetrics: false });
    for (let i = 0; i < 20; i++) st.observeAlarm({ state: i % 2 ? 'cleared' : 'raised', device: 'pump', point: 'pressure', alarm: 'low', type: 'low', severity: 'major', value: 1, limit: 2, ts: c.now() });
    const s = st.snapshot(gw);
    expect(s.alarms.recent).toHaveLength(5);
    expect(s.alarms.active).toHaveLength(0);
  });

  it("shows each alarm's ISA-18.2 state when the processor tracks it: unacknowledged first, returned ones kept, shelved last", () => {
    const c = clock();
    const { gw } = fakeGateway(c);
    const states: AlarmStateInput[] = [];
    const tracked: StatusGateway = { ...gw, processor: { activeAlarms: () => [], alarmStates: () => states } };
    const st = new StatusState({ now: c.now, processMetrics: false });
    const low = { device: 'pump', point: 'pressure', alarm: 'low', type: 'low' as const, severity: 'major' as const, value: 2.1, limit: 2.5 };
    const high = { device: 'meter', point: 'flow', alarm: 'high', type: 'high' as const, severity: 'minor' as const, value: 41, limit: 40 };
    st.observeAlarm({ ...low, state: 'raised', ts: T0 });
    st.observeAlarm({ ...high, state: 'raised', ts: T0 + 1000 });
    // An operator's action (an ISA-18.2 event) leaves the alarm active; the journal says who and why.
    const ack = { ...low, state: 'acknowledged', ts: T0 + 2000, by: 'maria', note: 'crew on the way' } as unknown as AlarmInput;
    st.observeAlarm(ack);
    const shelve = { ...high, state: 'shelved', ts: T0 + 3000, by: 'maria', until: T0 + 3_603_000 } as unknown as AlarmInput;
    st.observeAlarm(shelve);
    expect(st.snapshot(gw).alarms.active.map((a) => a.alarm)).toEqual(['low', 'high']);
    expect(st.journal.entries().slice(0, 2)).toMatchObject([
      { kind: 'shelved', by: 'maria', until: T0 + 3_603_000, alarm: 'high', value: 41, limit: 40 },
      { kind: 'acknowledged', by: 'maria', note: 'crew on the way', alarm: 'low' },
    ]);
    // Only what the rules did is marked on the chart.
    expect(st.chart(gw.config, 'pump', 'pressure')!.marks.map((m) => m.kind)).toEqual(['raised']);

    states.push(
      { ...low, state: 'acknowledged', ts: T0 + 2000 },
      { ...high, state: 'unacknowledged', shelvedUntil: T0 + 3_603_000, ts: T0 + 1000 },
      { device: 'pump', point: 'pressure', alarm: 'high', type: 'high', severity: 'critical', state: 'returned-unacknowledged', value: 6.2, limit: 6, ts: T0 - 5000 },
      { device: 'pump', point: 'running', alarm: 'stale', type: 'stale', severity: 'minor', state: 'normal', value: null, limit: 30, ts: null },
    );
    let active = st.snapshot(tracked).alarms.active;
    expect(active.map((a) => [a.alarm, a.state, a.isa, a.shelvedUntil])).toEqual([
      ['low', 'raised', 'acknowledged', undefined],
      ['high', 'cleared', 'returned-unacknowledged', undefined],
      ['high', 'raised', 'unacknowledged', T0 + 3_603_000],
    ]);
    expect(active[1]).toMatchObject({ device: 'pump', unit: 'bar', value: 6.2, ts: T0 - 5000 });
    states[0]!.state = 'unacknowledged';
    active = st.snapshot(tracked).alarms.active;
    expect(active[0]).toMatchObject({ alarm: 'low', isa: 'unacknowledged' });
    // Without alarmStates() (a processor that does not track them) the list is as before.
    expect(st.snapshot(gw).alarms.active.every((a) => a.isa === undefined)).toBe(true);
  });

  it("follows the gateway's own Processor: raised unacknowledged, acknowledged, shelved, returned unacknowledged", () => {
    const c = clock();
    const { gw } = fakeGateway(c);
    let mono = 0;
    const processor = new Processor([{ id: 'pump', points: [{ id: 'pressure', alarms: [alarmSchema.parse({ type: 'low', limit: 2.5 })] }] }], { monotonic: () => mono });
    const live: StatusGateway = { ...gw, processor };
    const st = new StatusState({ now: c.now, processMetrics: false });
    const take = (events: readonly AlarmEvent[]) => events.forEach((e) => st.observeAlarm(e));
    const act = (r: AlarmActionResult) => {
      expect(r.ok).toBe(true);
      if (r.ok) take(r.events);
    };
    const step = (ms: number) => {
      c.step(ms);
      mono += ms;
    };
    const active = () => st.snapshot(live).alarms.active.map((a) => ({ state: a.state, isa: a.isa, shelvedUntil: a.shelvedUntil }));
    take(processor.process([{ device: 'pump', point: 'pressure', ts: c.now(), value: 2, quality: 'good' }]).alarms);
    expect(active()).toEqual([{ state: 'raised', isa: 'unacknowledged', shelvedUntil: undefined }]);
    step(60_000);
    act(processor.acknowledge('pump', 'pressure', 'low', { by: 'maria', ts: c.now() }));
    expect(active()).toEqual([{ state: 'raised', isa: 'acknowledged', shelvedUntil: undefined }]);
    expect(st.journal.entries()[0]).toMatchObject({ kind: 'acknowledged', by: 'maria' });
    step(1000);
    act(processor.shelve('pump', 'pressure', 'low', 600, { by: 'maria', ts: c.now() }));
    expect(active()).toEqual([{ state: 'raised', isa: 'acknowledged', shelvedUntil: c.now() + 600_000 }]);
    act(processor.unshelve('pump', 'pressure', 'low', { by: 'maria', ts: c.now() }));
    // Back to normal after an acknowledgement: off the list.
    step(1000);
    take(processor.process([{ device: 'pump', point: 'pressure', ts: c.now(), value: 3, quality: 'good' }]).alarms);
    expect(active()).toEqual([]);
    // Raised and back to normal with nobody acknowledging: listed until someone does.
    step(1000);
    take(processor.process([{ device: 'pump', point: 'pressure', ts: c.now(), value: 2, quality: 'good' }]).alarms);
    step(1000);
    take(processor.process([{ device: 'pump', point: 'pressure', ts: c.now(), value: 3, quality: 'good' }]).alarms);
    expect(active()).toEqual([{ state: 'cleared', isa: 'returned-unacknowledged', shelvedUntil: undefined }]);
    act(processor.acknowledge('pump', 'pressure', 'low', { by: 'maria', ts: c.now() }));
    expect(active()).toEqual([]);
  });

  it('computes the drain rate from acknowledged deltas and the time to empty', () => {
    const c = clock();
    const { gw, outbox, uplink } = fakeGateway(c);
    const st = new StatusState({ now: c.now, processMetrics: false });
    outbox.samples = 6000;
    outbox.oldestTs = T0 - 3_600_000;
    expect(st.snapshot(gw).outbox.drainPerS).toBeNull();
    for (let i = 0; i < 90; i++) {
      c.step(1000);
      uplink.stats.acked += 100; // 100 acked a second while 40 a second come in
      outbox.samples -= 60;
      st.track(gw);
    }
    const o = st.snapshot(gw).outbox;
    expect(o.drainPerS).toBe(100);
    expect(o.etaS).toBe(Math.round(outbox.samples / 60));
    uplink.stats.acked = 0; // a new uplink after a restart: no negative rate
    c.step(1000);
    expect(st.snapshot(gw).outbox.drainPerS).toBeNull();
  });
});

describe('health rules', () => {
  it('is ok when polling, storing and sending; degraded for one problem among several; failing when nothing works', () => {
    const c = clock();
    const f = fakeGateway(c);
    const st = new StatusState({ now: c.now, processMetrics: false });
    expect(st.snapshot(f.gw).health).toEqual({ status: 'ok', failing: [], warnings: [] });

    f.links.b2 = 'disconnected';
    expect(st.snapshot(f.gw).health).toMatchObject({ status: 'degraded', warnings: ['bus b2 is disconnected'] });
    f.links.b1 = 'connecting';
    expect(st.snapshot(f.gw).health.failing).toEqual(['no bus is connected (b1: connecting, b2: disconnected)']);
    f.links.b1 = f.links.b2 = 'connected';

    f.outbox.state = 'disk-full';
    expect(st.snapshot(f.gw).health.failing).toEqual(['outbox cannot store samples: disk-full']);
    f.outbox.state = 'ok';
    f.outbox.bytes = 950_000;
    expect(st.snapshot(f.gw).health.warnings).toEqual(['outbox 95% full: the oldest samples will be dropped']);
    f.outbox.bytes = 4096;
  });

  it('counts a device stale after 3 poll intervals (at least 30 s) without a good reply; all stale is failing', () => {
    const c = clock();
    const f = fakeGateway(c);
    const st = new StatusState({ now: c.now, processMetrics: false });
    f.health.pump!.lastError = 'timeout after 1000 ms';
    c.step(29_000);
    expect(st.snapshot(f.gw).health.status).toBe('ok');
    c.step(2000);
    f.health.meter!.lastGoodTs = c.now();
    expect(st.snapshot(f.gw).health.warnings).toEqual(['device pump: no good reading for 31 s: timeout after 1000 ms']);
    c.step(16_000); // meter: 3 x 5 s passed, but the 30 s floor has not
    expect(st.snapshot(f.gw).health.status).toBe('degraded');
    c.step(15_000);
    expect(st.snapshot(f.gw).health.failing).toEqual(['no good reading from any device (pump, meter)']);
  });

  it('warns at once about a device its bus backed off, and fails when every device is down', () => {
    const c = clock();
    const f = fakeGateway(c);
    const st = new StatusState({ now: c.now, processMetrics: false });
    c.step(3000);
    f.health.meter = { ...f.health.meter!, state: 'failing', lastError: 'timeout after 500 ms', backoffMs: 5000 };
    expect(st.snapshot(f.gw).health.warnings).toEqual(['device meter: not answering for 3 s: timeout after 500 ms']);
    f.health.pump = { ...f.health.pump!, state: 'failing' };
    expect(st.snapshot(f.gw).health.failing).toEqual(['no good reading from any device (pump, meter)']);
  });

  it('gives a device that never answered the same grace from when its bus was first seen', () => {
    const c = clock();
    const f = fakeGateway(c);
    delete f.health.pump!.lastGoodTs;
    const st = new StatusState({ now: c.now, processMetrics: false });
    expect(st.snapshot(f.gw).buses[0]!.devices[0]!.stale).toBe(false);
    c.step(31_000);
    f.health.meter!.lastGoodTs = c.now();
    expect(st.snapshot(f.gw).health.warnings).toEqual(['device pump: no good reading yet']);
  });

  it('tolerates the broker link down for 10 minutes, then fails with the reason', () => {
    const c = clock();
    const f = fakeGateway(c);
    const st = new StatusState({ now: c.now, processMetrics: false });
    const keepPolling = () => {
      f.health.pump!.lastGoodTs = c.now();
      f.health.meter!.lastGoodTs = c.now();
    };
    f.session.currentState = 'disconnected';
    f.session.connectedSince = undefined;
    st.observeUplink('disconnected', 'connection refused (is the broker running, right host and port?)');
    c.step(5 * 60_000);
    keepPolling();
    let s = st.snapshot(f.gw);
    expect(s.uplink).toMatchObject({ state: 'disconnected', downSince: T0, lastError: 'connection refused (is the broker running, right host and port?)' });
    expect(s.health).toMatchObject({ status: 'degraded' });
    c.step(6 * 60_000);
    keepPolling();
    s = st.snapshot(f.gw);
    expect(s.health.failing).toEqual(['link to broker down for 11 min: connection refused (is the broker running, right host and port?)']);
    f.session.currentState = 'connected';
    st.observeUplink('connected');
    expect(st.snapshot(f.gw).health.status).toBe('ok');
  });
});

describe('status configuration', () => {
  const base = { gateway: { id: 'g' } };
  const issues = (status: unknown) => validateConfig(configSchema.parse({ ...base, status })).map((i) => `${i.path.join('.')}: ${i.message}`);

  it('listens on loopback by default and needs a token for anything else', () => {
    expect(configSchema.parse({ ...base, status: {} }).status).toEqual({ enabled: true, listen: '127.0.0.1:8080' });
    expect(issues({})).toEqual([]);
    expect(issues({ listen: '[::1]:9000' })).toEqual([]);
    expect(issues({ listen: 'localhost:9000' })).toEqual([]);
    expect(issues({ listen: '0.0.0.0:8080' })).toEqual([
      'status.token: status.listen 0.0.0.0:8080 is reachable from the network: set status.token (any long random string), or listen on 127.0.0.1',
    ]);
    expect(issues({ listen: ':8080' })).toHaveLength(1);
    expect(issues({ listen: '192.168.1.10:8080', token: 'a-long-random-token' })).toEqual([]);
    expect(issues({ listen: 'nonsense' })).toEqual(['status.listen: "nonsense" is not HOST:PORT (e.g. 127.0.0.1:8080, 0.0.0.0:8080, [::1]:8080)']);
    expect(() => configSchema.parse({ ...base, status: { token: 'short' } })).toThrow(/at least 8/);
    // A page that is off needs no token, wherever it would have listened.
    expect(issues({ enabled: false, listen: '0.0.0.0:8080' })).toEqual([]);
  });

  it('parses listen addresses and tells loopback apart', () => {
    expect(parseListen('127.0.0.1:0')).toEqual({ host: '127.0.0.1', port: 0 });
    expect(parseListen('[::1]:80')).toEqual({ host: '::1', port: 80 });
    expect(parseListen(':80')).toEqual({ host: '0.0.0.0', port: 80 });
    expect(parseListen('host:99999')).toBeUndefined();
    expect(['127.0.0.1', '127.1.2.3', '::1', 'localhost', 'LOCALHOST'].every(isLoopback)).toBe(true);
    expect(['0.0.0.0', '::', '10.0.0.1', '127.example.com', 'example.com'].some(isLoopback)).toBe(false);
  });
});
