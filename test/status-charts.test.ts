/** The chart's data (history ring with means and qualities, limits, alarm marks), the journal and the commissioning rules. */
import { describe, expect, it } from 'vitest';
import { configSchema } from '../src/config/schema.js';
import type { DeviceHealth } from '../src/sources/types.js';
import { BUS_SILENT_CAUSE, CRC_CAUSE, UNIT_SILENT_CAUSE, commissionBus, p95, visible } from '../src/status/commissioning.js';
import { BYTES_PER_BUCKET } from '../src/status/history.js';
import { PointHistory } from './helpers/point-history.js';
import { AlarmJournal } from '../src/status/journal.js';
import { StatusState } from '../src/status/state.js';

const T0 = Date.UTC(2025, 5, 1, 10, 0, 0);
const CONFIG = configSchema.parse({
  gateway: { id: 'gw-test' },
  buses: [{ id: 'b1', transport: 'tcp', host: '127.0.0.1', port: 1502 }],
  devices: [{ id: 'pump', bus: 'b1', unit: 1, points: [
    { id: 'pressure', fc: 4, address: 0, unit: 'bar', alarms: [{ type: 'low', limit: 2.5, hysteresis: 0.1 }, { type: 'high', id: 'over', limit: 6, severity: 'critical' }, { type: 'rateOfChange', limit: -0.3 }] },
    { id: 'suction', fc: 4, address: 2, unit: 'bar' },
    { id: 'running', fc: 2, address: 0 },
  ] }],
});

describe('PointHistory chart', () => {
  it('keeps mean, quality and bad-only buckets, and the window figures weighted by readings', () => {
    const h = new PointHistory(20_000, 3_600_000);
    h.add(T0, 1);
    h.add(T0 + 1000, 3);
    h.add(T0 + 2000, 5, 'uncertain');
    h.add(T0 + 20_000, 10);
    h.add(T0 + 21_000, undefined, 'bad');
    h.add(T0 + 40_000, undefined, 'bad');
    const c = h.chart(T0 - 1);
    expect(c.t).toEqual([T0, T0 + 20_000]);
    expect(c.mean).toEqual([3, 10]);
    expect(c.min).toEqual([1, 10]);
    expect(c.max).toEqual([5, 10]);
    expect(c.quality).toEqual([1, 2]);
    expect(c.bad).toEqual([T0 + 40_000]);
    expect(c.stats).toEqual({ min: 1, max: 10, mean: 4.75, readings: 4 });
    // The plot's own view is unchanged: only buckets with a value.
    expect(h.series(T0 - 1).last).toEqual([5, 10]);
    expect(h.current()).toBeUndefined(); // the newest bucket has no value
  });

  it('is bounded: an hour of 20 s buckets, whatever the sample rate', () => {
    const h = new PointHistory(20_000, 3_600_000);
    for (let i = 0; i < 7200 * 4; i++) h.add(T0 + i * 250, Math.sin(i / 100));
    const c = h.chart(0);
    expect(c.t.length).toBe(180);
    expect(c.t[0]).toBe(T0 + 7200 * 1000 - 3_600_000);
    expect(180 * BYTES_PER_BUCKET).toBeLessThan(5 * 1024);
  });
});

describe('StatusState chart and journal', () => {
  it('gives a point its unit, its level limits, and the raises and clears of the hour as marks', () => {
    let now = T0;
    const st = new StatusState({ now: () => now, processMetrics: false });
    st.observe([{ device: 'pump', point: 'pressure', ts: T0 - 60_000, value: 3.1, quality: 'good' }]);
    st.observe([{ device: 'pump', point: 'pressure', ts: T0 - 30_000, value: 2.2, quality: 'good' }]);
    st.observeAlarm({ state: 'raised', device: 'pump', point: 'pressure', alarm: 'low', type: 'low', severity: 'major', value: 2.2, limit: 2.5, ts: T0 - 30_000 });
    st.observeAlarm({ state: 'cleared', device: 'pump', point: 'pressure', alarm: 'low', type: 'low', severity: 'major', value: 2.7, limit: 2.5, ts: T0 - 10_000 });
    st.observeAlarm({ state: 'raised', device: 'pump', point: 'pressure', alarm: 'low', type: 'low', severity: 'major', value: 2, limit: 2.5, ts: T0 - 4_000_000 });
    const c = st.chart(CONFIG, 'pump', 'pressure')!;
    expect(c.unit).toBe('bar');
    expect(c.limits).toEqual([
      { alarm: 'low', type: 'low', limit: 2.5, severity: 'major', hysteresis: 0.1 },
      { alarm: 'over', type: 'high', limit: 6, severity: 'critical', hysteresis: 0 },
    ]);
    expect(c.marks.map((m) => [m.kind, m.ts])).toEqual([['raised', T0 - 30_000], ['cleared', T0 - 10_000]]);
    expect(c.stats).toMatchObject({ min: 2.2, max: 3.1 });
    // A configured point not read yet has an empty chart, an unknown one none.
    expect(st.chart(CONFIG, 'pump', 'suction')!.t).toEqual([]);
    expect(st.chart(CONFIG, 'pump', 'nope')).toBeUndefined();
    expect(st.deviceChart(CONFIG, 'pump')!.points.map((p) => p.point)).toEqual(['pressure']);
    expect(st.deviceChart(CONFIG, 'nope')).toBeUndefined();
    // The journal says who: the gateway's alarm rules.
    expect(st.journal.entries()[0]).toMatchObject({ kind: 'raised', by: 'gateway', ts: T0 - 4_000_000 });
    now += 1;
  });

  it('keeps the last N entries, newest first', () => {
    const j = new AlarmJournal(3);
    for (let i = 0; i < 5; i++) j.alarm({ state: i % 2 ? 'cleared' : 'raised', device: 'd', point: 'p', alarm: 'low', type: 'low', severity: 'major', value: i, limit: 0, ts: T0 + i });
    expect(j.entries().map((e) => e.value)).toEqual([4, 3, 2]);
    j.add({ kind: 'acknowledged', device: 'd', point: 'p', alarm: 'low', severity: 'major', value: null, limit: null, ts: T0 + 9, by: 'operator' });
    expect(j.entries().map((e) => e.kind)).toEqual(['acknowledged', 'raised', 'cleared']);
    expect(j.forPoint('d', 'p', T0 + 3).map((e) => e.ts)).toEqual([T0 + 3, T0 + 4, T0 + 9]);
  });
});

const unit = (device: string, o: Partial<DeviceHealth>): DeviceHealth => ({ device, state: 'ok', requests: 0, errors: {}, backoffMs: 0, ...o });

describe('commissioning causes', () => {
  it('blames the line when every unit only times out, the unit when one does', () => {
    const silentA = unit('a', { requests: 5, errors: { timeout: 5 } });
    const silentB = unit('b', { requests: 5, errors: { timeout: 5 } });
    const fine = unit('c', { requests: 5, replies: 5, lastResponseMs: 12, recentResponseMs: [10, 12, 11, 30] });
    const all = commissionBus([silentA, silentB], new Map([['a', 1], ['b', 2]]), 'modbus');
    expect(all.cause).toBe(BUS_SILENT_CAUSE);
    expect(all.units[0]).toMatchObject({ device: 'a', unit: 1, requests: 5, replies: 0, timeouts: 5 });
    const one = commissionBus([silentA, fine], new Map(), 'modbus');
    expect(one.cause).toBeUndefined();
    expect(one.units[0]!.causes).toEqual([UNIT_SILENT_CAUSE]);
    expect(one.units[1]).toMatchObject({ causes: [], lastResponseMs: 12, p95ResponseMs: 30 });
  });

  it('names termination and noise for CRC errors, register numbering for exception 2', () => {
    const r = commissionBus([unit('a', { requests: 9, replies: 4, errors: { crc: 3, exception: 2 }, exceptions: { '2': 2 } })], new Map(), 'modbus');
    expect(r.units[0]!.crc).toBe(3);
    expect(r.units[0]!.exceptions).toEqual({ '2': 2 });
    expect(r.units[0]!.causes[0]).toBe(CRC_CAUSE);
    expect(r.units[0]!.causes[1]).toMatch(/^exception 2 \(illegal data address\).*40001 is fc 3 address 0/);
  });

  it('counts a line sensor by its lines, checksums and overlong lines', () => {
    const r = commissionBus([unit('gas', { requests: 10, errors: { checksum: 2, overlong: 1 } })], new Map(), 'line');
    expect(r.units[0]).toMatchObject({ replies: 7, checksum: 2, overlong: 1 });
    expect(r.units[0]!.causes.join(' ')).toMatch(/bad checksums.*longer than maxLineBytes/);
  });

  it('p95 by nearest rank; raw lines made visible', () => {
    expect(p95([])).toBeNull();
    expect(p95(Array.from({ length: 100 }, (_, i) => i + 1))).toBe(95);
    expect(visible('CH4=0.0\r\u0000<b>')).toBe('CH4=0.0\\x0d\\x00<b>');
  });
});
