import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { describe, expect, it } from 'vitest';
import { DataType } from '../src/uplink/profiles/sparkplug/metrics.js';
import { sparkplugProfile, type SparkplugOptions } from '../src/uplink/profiles/sparkplug/index.js';
import { PayloadSchema } from '../src/uplink/profiles/sparkplug/sparkplug_b_pb.js';
import type { BirthContext, StoredRow } from '../src/uplink/profile.js';

function make(extra: Partial<SparkplugOptions> = {}) {
  let saved: number | undefined;
  const saves: number[] = [];
  const p = sparkplugProfile({
    groupId: 'g',
    edgeNodeId: 'n',
    commandTtlS: 30,
    version: '1',
    now: () => 1000,
    bdSeq: { load: () => saved, save: (v) => { saved = v; saves.push(v); } },
    ...extra,
  });
  return { p, saves };
}
const decode = (b: string | Buffer) => fromBinary(PayloadSchema, b as Buffer);
const ctx: BirthContext = { epoch: 'e', version: '1', configHash: 'h', points: [{ index: 1, device: 'd1', point: 'p', type: 'uint16', unit: 'bar', alarms: ['low'] }, { index: 2, device: 'd2', point: 'q', type: 'float32' }] };
const row = (seq: number, series: number, device: string, point: string, value: number): StoredRow => ({ seq, series, device, point, ts: seq, value, quality: 'good', flags: 0 });

describe('Sparkplug profile', () => {
  it('takes a new bdSeq at every will, saved before the dial, wrapping 255 -> 0, from where the last run stopped', () => {
    const { p, saves } = make();
    for (let i = 0; i < 257; i++) p.will();
    expect(saves.slice(0, 3)).toEqual([0, 1, 2]);
    expect(saves.slice(254)).toEqual([254, 255, 0]);
    const again = make({ bdSeq: { load: () => 7, save: () => {} } }).p;
    const will = again.will();
    expect(will).toMatchObject({ topic: 'spBv1.0/g/NDEATH/n', qos: 1, retain: false });
    const m = decode(will.payload).metrics[0]!;
    expect([m.name, m.datatype, m.value.value]).toEqual(['bdSeq', DataType.Int64, 8n]);
    expect(decode(will.payload).seq).toBe(0n);
  });

  it('births NBIRTH then one DBIRTH per device with seq 0, 1, 2, then DDATA per device and batch', () => {
    const { p } = make();
    p.will();
    const births = p.birth(ctx);
    expect(births.map((b) => [b.topic, b.qos, b.retain, decode(b.payload).seq])).toEqual([
      ['spBv1.0/g/NBIRTH/n', 0, false, 0n],
      ['spBv1.0/g/DBIRTH/n/d1', 0, false, 1n],
      ['spBv1.0/g/DBIRTH/n/d2', 0, false, 2n],
    ]);
    expect(decode(births[1]!.payload).metrics.map((m) => m.name)).toEqual(['p', 'p/Alarms/low']);
    const data = [p.samples('e', [row(1, 1, 'd1', 'p', 5), row(2, 2, 'd2', 'q', 1.5), row(3, 1, 'd1', 'p', 6)], 0, 3, true)].flat();
    expect(data.map((d) => [d.topic, decode(d.payload).seq, decode(d.payload).metrics.map((m) => [m.alias, m.isHistorical])])).toEqual([
      ['spBv1.0/g/DDATA/n/d1', 3n, [[1n, true], [1n, true]]],
      ['spBv1.0/g/DDATA/n/d2', 4n, [[2n, true]]],
    ]);
  });

  it('turns NCMD rebirth into a rebirth, DCMD metrics into expiring write commands, and refuses the rest', () => {
    const { p } = make();
    p.birth(ctx);
    const ncmd = (name: string, v: boolean) => Buffer.from(toBinary(PayloadSchema, create(PayloadSchema, { metrics: [{ name, datatype: 11, value: { case: 'booleanValue', value: v } }] })));
    expect(p.inbound('spBv1.0/g/NCMD/n', ncmd('Node Control/Rebirth', true))).toEqual([{ kind: 'rebirth' }]);
    expect(p.inbound('spBv1.0/g/NCMD/n', ncmd('Node Control/Reboot', true))).toMatchObject([{ kind: 'invalid' }]);
    const dcmd = Buffer.from(toBinary(PayloadSchema, create(PayloadSchema, { timestamp: 5000n, metrics: [{ alias: 1n, datatype: 6, value: { case: 'intValue', value: 3 } }] })));
    expect(p.inbound('spBv1.0/g/DCMD/n/d1', dcmd)).toEqual([{ kind: 'command', command: { kind: 'write', id: 'spb:d1:p:5000', device: 'd1', point: 'p', value: 3, expiresAt: 35_000, origin: 'sparkplug' } }]);
    expect(p.inbound('spBv1.0/g/DCMD/n/d1', Buffer.from([0xff, 0xff, 0xff]))).toMatchObject([{ kind: 'invalid' }]);
    expect(p.inbound('spBv1.0/g/DDATA/n/d1', dcmd)).toBeNull();
    expect(p.commandResult({ id: 'x', status: 'done', ts: 0 })).toBeNull();
  });

  it('waits for the primary host, ignores a STATE older than the last, and stops when it goes offline', () => {
    const { p } = make({ primaryHostId: 'scada' });
    expect(p.subscriptions().map((s) => s.filter)).toEqual(['spBv1.0/g/NCMD/n', 'spBv1.0/g/DCMD/n/+', 'spBv1.0/STATE/scada']);
    expect(p.ready!()).toBe(false);
    const state = (online: boolean, timestamp: number) => p.inbound('spBv1.0/STATE/scada', Buffer.from(JSON.stringify({ online, timestamp })));
    expect(state(true, 10)).toEqual({ kind: 'host-state', online: true, ts: 10 });
    expect(p.hostState!(true, 10)).toBe('online');
    expect(p.ready!()).toBe(true);
    expect(p.hostState!(false, 5)).toBe('ignore');
    expect(p.ready!()).toBe(true);
    expect(p.hostState!(false, 11)).toBe('offline');
    expect(p.inbound('spBv1.0/STATE/scada', Buffer.from('ONLINE'))).toMatchObject({ kind: 'invalid' });
    expect(p.inbound('spBv1.0/STATE/scada', Buffer.from('{"online":"yes","timestamp":1}'))).toMatchObject({ kind: 'invalid' });
  });

  it('gives a dead device a DDEATH and a revived one its DBIRTH, in the seq', () => {
    const { p } = make();
    p.birth(ctx);
    const [death] = p.deviceState!('d2', false, ctx);
    expect([death!.topic, decode(death!.payload).seq]).toEqual(['spBv1.0/g/DDEATH/n/d2', 3n]);
    const [birth] = p.deviceState!('d2', true, ctx);
    expect([birth!.topic, decode(birth!.payload).seq]).toEqual(['spBv1.0/g/DBIRTH/n/d2', 4n]);
    expect(p.deviceState!('unknown', false, ctx)).toEqual([]);
  });

  it('sends a scaled integer register as Double, so its engineering value is not lost to the integer field', () => {
    const { p } = make({ scaled: new Set(['d1\u0000p']) });
    const [, d1] = p.birth(ctx);
    const m = decode(d1!.payload).metrics.find((x) => x.name === 'p')!;
    expect(m.datatype).toBe(DataType.Double);
    const [data] = [p.samples('e', [row(1, 1, 'd1', 'p', 0.3125)], 0, 1, false)].flat();
    expect(decode(data!.payload).metrics[0]!.value).toEqual({ case: 'doubleValue', value: 0.3125 });
    // Unscaled, the same point stays UInt16.
    const plain = make().p;
    expect(decode(plain.birth(ctx)[1]!.payload).metrics.find((x) => x.name === 'p')!.datatype).toBe(DataType.UInt16);
  });

  it('tells a host which metrics a DCMD may write (readOnly) and the range of a ranged point (engLow, engHigh)', () => {
    const { p } = make();
    const ranged: BirthContext = { ...ctx, points: [{ index: 1, device: 'd1', point: 'p', type: 'float64', unit: 'bar', engRange: [0, 10], writable: true }, { index: 2, device: 'd1', point: 'q', type: 'float32' }] };
    const [, d1] = p.birth(ranged);
    const props = (name: string) => {
      const m = decode(d1!.payload).metrics.find((x) => x.name === name)!;
      return Object.fromEntries(m.properties!.keys.map((k, i) => [k, m.properties!.values[i]!.value.value]));
    };
    expect(props('p')).toEqual({ engUnit: 'bar', engLow: 0, engHigh: 10, readOnly: false });
    expect(props('q')).toEqual({ readOnly: true });
  });
});
