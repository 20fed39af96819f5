/**
 * `fieldgate tail --profile sparkplug`: the decoding and the --verify bookkeeping over messages the real
 * Sparkplug profile encodes (a lost message, a death and a new session), then the CLI as a technician runs it
 * against an in-process aedes broker while the gateway publishes with its Sparkplug profile.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatLine, formatVerify, SparkplugWatch, type MetricLine } from '../src/cli/tail-sparkplug.js';
import { configSchema } from '../src/config/schema.js';
import { startGateway } from '../src/gateway.js';
import { startSimulator, type RunningSimulator } from '../src/sim/server.js';
import type { BirthContext, Outgoing, StoredRow } from '../src/uplink/profile.js';
import { sparkplugProfile } from '../src/uplink/profiles/sparkplug/index.js';
import { startAedes, type AedesBroker } from './helpers/aedes.js';
import { cleanupListOf } from './helpers/cleanup.js';
import { fieldgate } from './helpers/cli.js';
import { recordingLogger } from './helpers/gateway.js';

const jsonLines = (stdout: string) => stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);

describe('SparkplugWatch', () => {
  const ctx: BirthContext = {
    epoch: 'e', version: '1', configHash: 'h',
    points: [{ index: 4, device: 'pump', point: 'level', type: 'int16', unit: 'm' }, { index: 5, device: 'pump', point: 'running', type: 'bool' }],
  };
  const row = (seq: number, series: number, point: string, value: number | boolean, quality: 'good' | 'uncertain' = 'good'): StoredRow =>
    ({ seq, series, device: 'pump', point, ts: 1_750_000_000_000 + seq, value, quality, flags: 0 });
  const flat = (x: Outgoing | Outgoing[] | null) => (x === null ? [] : [x].flat());

  it('names data by the aliases of the births, reads signed values back, marks historical and quality; --verify finds a lost seq and a new bdSeq', () => {
    let saved: number | undefined;
    const p = sparkplugProfile({ groupId: 'g', edgeNodeId: 'n', commandTtlS: 30, version: '1', bdSeq: { load: () => saved, save: (v) => void (saved = v) } });
    const w = new SparkplugWatch();
    const feed = (ms: Outgoing[]) => ms.flatMap((m) => w.handle(m.topic, Buffer.from(m.payload)));

    const will = p.will();
    const birth = feed(p.birth(ctx));
    expect(birth[0]).toEqual({ event: 'NBIRTH', node: 'n', seq: 0, bdSeq: 0, metrics: 6 });
    expect(birth.find((l) => 'name' in l && l.name === 'level')).toMatchObject({ kind: 'DBIRTH', device: 'pump', alias: 4, value: null, unit: 'm' });
    const data = feed(flat(p.samples('e', [row(1, 4, 'level', -3), row(2, 5, 'running', true)], 0, 2, false))) as MetricLine[];
    expect(data.map((l) => [l.kind, l.device, l.seq, l.name, l.value, l.historical])).toEqual([
      ['DDATA', 'pump', 2, 'level', -3, undefined],
      ['DDATA', 'pump', 2, 'running', true, undefined],
    ]);
    // One message lost on the way (seq 3), then historical and uncertain data.
    flat(p.samples('e', [row(3, 4, 'level', 1)], 0, 1, false));
    const [hist] = feed(flat(p.samples('e', [row(4, 4, 'level', 2, 'uncertain')], 0, 1, true))) as MetricLine[];
    expect(hist).toMatchObject({ seq: 4, name: 'level', value: 2, historical: true, quality: 500, unit: 'm' });
    expect(formatLine(hist!)).toBe(`${new Date(hist!.ts).toISOString()} DDATA n/pump level = 2 m (historical, quality 500 stale)`);

    // The link drops: the broker publishes the will, then a new session with the next bdSeq starts from seq 0.
    expect(feed([will])).toEqual([{ event: 'NDEATH', node: 'n', bdSeq: 0 }]);
    p.will();
    feed(p.birth(ctx));
    feed(flat(p.samples('e', [row(5, 4, 'level', 7)], 0, 1, false)));
    const [v] = w.summary();
    expect(v).toEqual({
      event: 'verify', group: 'g', node: 'n', messages: 8, births: 2, deaths: 1, missing: 1,
      gaps: [{ after: 2, next: 4, missing: 1 }], bdSeqs: [0, 1], bdSeqChanges: 1, beforeBirth: 0,
    });
    expect(formatVerify(v!)).toBe('g/n: 8 messages, 2 NBIRTH, 1 NDEATH, 1 missing in 1 seq gaps: 2->4; bdSeq 0, 1 (1 changes)');
  });

  it('counts data before any birth and names its metrics by alias; reads STATE; refuses a payload that is not Sparkplug', () => {
    const p = sparkplugProfile({ groupId: 'g', edgeNodeId: 'n', commandTtlS: 30, version: '1', bdSeq: { load: () => 3, save: () => {} } });
    p.birth(ctx);
    const w = new SparkplugWatch();
    const [m] = flat(p.samples('e', [row(1, 4, 'level', 5)], 0, 1, false));
    expect(w.handle(m!.topic, Buffer.from(m!.payload))).toMatchObject([{ name: '#4', alias: 4, value: 5 }]);
    expect(w.summary()[0]).toMatchObject({ beforeBirth: 1, missing: 0 });
    expect(w.handle('spBv1.0/STATE/scada', Buffer.from('{"online":true,"timestamp":1}'))).toEqual([{ event: 'STATE', node: 'scada', state: { online: true, timestamp: 1 } }]);
    expect(() => w.handle('spBv1.0/g/DDATA/n/pump', Buffer.from([0xff, 0xff, 0xff]))).toThrow();
    expect(w.handle('fieldgate/x/telemetry', Buffer.from('{}'))).toEqual([]);
  });
});

// The refusals need no gateway: they run beside the gateway test.
describe.concurrent('fieldgate tail --profile sparkplug', () => {
  let broker: AedesBroker;
  beforeAll(async () => {
    broker = await startAedes();
  });
  afterAll(async () => {
    await broker?.stop();
  });

  it('prints the metrics of a gateway that publishes Sparkplug, named from its births, and --verify finds no gap', async (ctx) => {
    const cleanups = cleanupListOf(ctx, true);
    const sim: RunningSimulator = await startSimulator({ scenario: 'village-water', tcp: { host: '127.0.0.1', port: 0 }, seed: 3 });
    cleanups.push(() => sim.close());
    const dir = mkdtempSync(join(tmpdir(), 'fieldgate-tail-spb-'));
    cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
    // Every tail subscribed before the gateway connects: Sparkplug births are QoS 0 and not retained.
    let seen = 0;
    const listening = new Promise<void>((resolve) => {
      broker.broker.on('subscribe', (subs) => {
        if (subs.some((s) => s.topic === 'spBv1.0/bashan-water/#') && ++seen === 3) setTimeout(resolve, 200);
      });
    });
    const args = ['tail', broker.url, '--profile', 'sparkplug', '--group', 'bashan-water', '--duration', '6'];
    const json = fieldgate([...args, '--json'], 60_000);
    const text = fieldgate(args, 60_000);
    const verify = fieldgate([...args, '--verify', '--json'], 60_000);
    await listening;
    const gw = startGateway(configSchema.parse({
      gateway: { id: 'pump-house-1', dataDir: join(dir, 'data'), clock: { trust: 'always' } },
      buses: [{ id: 'sim', transport: 'tcp', host: '127.0.0.1', port: sim.tcpPort, timeoutMs: 300, reconnectMinMs: 200 }],
      devices: [{ id: 'pump_house', bus: 'sim', unit: 1, pollIntervalMs: 100, points: [
        { id: 'inlet_pressure', fc: 4, address: 0, scale: 0.000625, offset: -2.5, unit: 'bar' },
        { id: 'tank_level', fc: 4, address: 1, scale: 0.0003125, offset: -1.25, unit: 'm' },
      ] }],
      uplink: { url: broker.url, protocolVersion: 4, profile: 'sparkplug', sparkplug: { groupId: 'bashan-water' }, batch: { maxSamples: 100, maxDelayMs: 100 }, reconnectMinMs: 200 },
      buffer: { commitIntervalMs: 50 },
    }), recordingLogger().logger);
    cleanups.push(() => gw.stop());

    const [j, t, v] = await Promise.all([json, text, verify]);
    for (const r of [j, t, v]) expect([r.code, r.stderr]).toEqual([0, `connected to ${broker.url}, watching spBv1.0/bashan-water/#\n`]);
    const lines = jsonLines(j.stdout);
    expect(lines[0]).toEqual({ event: 'NBIRTH', node: 'pump-house-1', seq: 0, bdSeq: 0, metrics: 6 });
    const data = lines.filter((l) => l.kind === 'DDATA');
    expect(data.length).toBeGreaterThan(5);
    for (const d of data) {
      expect(['inlet_pressure', 'tank_level']).toContain(d.name);
      expect(d).toMatchObject({ node: 'pump-house-1', device: 'pump_house', value: expect.any(Number), ts: expect.any(Number) });
    }
    expect(lines.find((l) => l.kind === 'DBIRTH' && l.name === 'inlet_pressure')).toMatchObject({ unit: 'bar', alias: expect.any(Number) });
    expect(t.stdout).toMatch(/^NBIRTH pump-house-1 seq 0 bdSeq 0 \(6 metrics\)$/m);
    expect(t.stdout).toMatch(/^\S+Z DDATA pump-house-1\/pump_house (inlet_pressure|tank_level) = -?[\d.]+ (bar|m)$/m);

    const summary = jsonLines(v.stdout).at(-1)!;
    expect(summary).toMatchObject({ event: 'verify', group: 'bashan-water', node: 'pump-house-1', births: 1, deaths: 0, missing: 0, gaps: [], bdSeqs: [0], bdSeqChanges: 0, beforeBirth: 0 });
    expect(summary.messages as number).toBeGreaterThan(5);
  }, 90_000);

  it('exits 2 without --group or on an unknown profile', async () => {
    const a = await fieldgate(['tail', broker.url, '--profile', 'sparkplug']);
    expect([a.code, a.stderr]).toEqual([2, expect.stringContaining('--group')]);
    const b = await fieldgate(['tail', broker.url, '--profile', 'opcua']);
    expect([b.code, b.stderr]).toEqual([2, expect.stringContaining('--profile must be fieldgate or sparkplug')]);
  });
});
