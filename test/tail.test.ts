/**
 * `fieldgate tail` as a technician runs it, against an in-process aedes broker: one JSON line per sample,
 * status lines, the --verify summary over crafted telemetry (a gap, duplicates, a range the gateway reported
 * as dropped), garbage that is reported once without stopping, and a bad URL.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { describe, expect, it, type TestContext } from 'vitest';
import { configSchema } from '../src/config/schema.js';
import { startGateway } from '../src/gateway.js';
import { startSimulator, type RunningSimulator } from '../src/sim/server.js';
import { encodeCompact, type OutgoingSample } from '../src/uplink/payload.js';
import { startAedes, type AedesBroker } from './helpers/aedes.js';
import { cleanupListOf, type Cleanup } from './helpers/cleanup.js';
import { fieldgate } from './helpers/cli.js';
import { recordingLogger } from './helpers/gateway.js';

const jsonLines = (stdout: string) => stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);

/** Resolves once `count` clients subscribed to the gateway topics (tail is listening). */
function subscribed(broker: AedesBroker, count: number): Promise<void> {
  let seen = 0;
  return new Promise((resolve) => {
    broker.broker.on('subscribe', (subs) => {
      if (subs.some((s) => s.topic.startsWith('fieldgate/')) && ++seen === count) setTimeout(resolve, 200);
    });
  });
}

// Each test with a broker of its own (a tail without --gateway sees every gateway's topics), all at once.
describe.concurrent('fieldgate tail', () => {
  /** The test's cleanups, and an aedes broker stopped at its end. */
  async function setUp(ctx: TestContext): Promise<{ broker: AedesBroker; cleanups: { push(c: Cleanup): void } }> {
    const cleanups = cleanupListOf(ctx, true);
    const broker = await startAedes();
    cleanups.push(() => broker.stop());
    return { broker, cleanups };
  }

  it('--json prints one line per sample with fixed keys, and status lines', async (ctx) => {
    const { broker, cleanups } = await setUp(ctx);
    const sim: RunningSimulator = await startSimulator({ scenario: 'village-water', tcp: { host: '127.0.0.1', port: 0 }, seed: 2 });
    cleanups.push(() => sim.close());
    const dir = mkdtempSync(join(tmpdir(), 'fieldgate-tail-'));
    cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
    const config = configSchema.parse({
      // A trusted clock, so no sample carries the timeUntrusted key.
      gateway: { id: 'gw-tail', dataDir: join(dir, 'data'), clock: { trust: 'always' } },
      buses: [{ id: 'sim', transport: 'tcp', host: '127.0.0.1', port: sim.tcpPort, timeoutMs: 300, reconnectMinMs: 200 }],
      devices: [
        { id: 'pump_house', bus: 'sim', unit: 1, pollIntervalMs: 100, points: [{ id: 'inlet_pressure', fc: 4, address: 0, scale: 0.000625, offset: -2.5, unit: 'bar' }] },
        // No such unit behind the simulator's TCP gateway: every reading is bad, with a reason.
        { id: 'missing_meter', bus: 'sim', unit: 9, pollIntervalMs: 300, points: [{ id: 'flow', fc: 3, address: 0 }] },
      ],
      uplink: { url: broker.url, protocolVersion: 4, batch: { maxSamples: 100, maxDelayMs: 100 }, reconnectMinMs: 200 },
      buffer: { commitIntervalMs: 50 },
    });
    const gw = startGateway(config, recordingLogger().logger);
    cleanups.push(() => gw.stop());

    const r = await fieldgate(['tail', broker.url, '--json', '--duration', '3']);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`connected to ${broker.url}`);
    const lines = jsonLines(r.stdout);
    const samples = lines.filter((l) => !('event' in l));
    expect(samples.length).toBeGreaterThan(10);
    for (const s of samples) {
      const keys = ['gateway', 'seq', 'device', 'point', 'ts', 'value', 'quality', ...(s.quality === 'bad' ? ['reason'] : [])];
      expect(Object.keys(s).sort()).toEqual(keys.sort());
      expect(s.gateway).toBe('gw-tail');
    }
    expect(samples.find((s) => s.point === 'inlet_pressure')).toMatchObject({ device: 'pump_house', quality: 'good', value: expect.any(Number) });
    expect(samples.find((s) => s.device === 'missing_meter')).toMatchObject({ quality: 'bad', value: null, reason: expect.any(String) });
    const status = lines.filter((l) => l.event === 'status');
    expect(status.length).toBeGreaterThanOrEqual(1);
    // The retained birth, with its point list shortened to a count.
    expect(status[0]).toMatchObject({ event: 'status', gateway: 'gw-tail', state: 'online', points: 2 });
  });

  it('--verify counts received, unique, duplicates and missing; a reported drop is not missing; garbage is one stderr line', async (ctx) => {
    const { broker, cleanups } = await setUp(ctx);
    const G = 'gw-verify';
    const EP = '0123456789abcdef';
    const listening = subscribed(broker, 2);
    const text = fieldgate(['tail', broker.url, '--verify', '--gateway', G, '--duration', '5']);
    const json = fieldgate(['tail', broker.url, '--verify', '--json', '--gateway', G, '--duration', '5']);
    await listening;

    const pub = mqtt.connect(broker.url, { clientId: 'crafted-publisher' });
    cleanups.push(() => pub.endAsync());
    await new Promise<void>((resolve, reject) => pub.once('connect', () => resolve()).once('error', reject));
    const t0 = Date.UTC(2025, 5, 1);
    const batch = (from: number, to: number): OutgoingSample[] =>
      Array.from({ length: to - from + 1 }, (_, k) => ({ seq: from + k, pointIndex: k % 3, device: 'd', point: 'p', ts: t0 + (from + k) * 1000, value: from + k, quality: 'good' as const, flags: 0 }));
    const telemetry = (payload: string) => pub.publishAsync(`fieldgate/${G}/telemetry`, payload, { qos: 1 });
    await telemetry(encodeCompact(G, EP, batch(1, 10)));
    await telemetry(encodeCompact(G, EP, batch(11, 20)));
    await telemetry(encodeCompact(G, EP, batch(15, 20))); // 6 duplicates, as after a reconnect
    await telemetry('{"v":1,"g":"gw-verify","ep":"0123456789abcdef","s":"x"'); // garbage: cut short
    await telemetry(encodeCompact(G, EP, batch(26, 30))); // 21-25 never arrive
    const dropped = { reason: 'maxBytes', stream: 'sample', from: 31, to: 40, before: null, count: 10, fromTs: t0 + 31_000, toTs: t0 + 40_000 };
    await pub.publishAsync(`fieldgate/${G}/events`, JSON.stringify({ v: 1, event: 'dropped', g: G, ep: EP, ranges: [dropped] }), { qos: 1 });
    await telemetry(encodeCompact(G, EP, batch(41, 50)));

    const [t, j] = await Promise.all([text, json]);
    expect(t.code).toBe(0);
    expect(t.stdout.trim()).toBe(`${G} epoch ${EP}: 41 received, 35 unique (seq 1-50), 6 duplicates, 5 missing in 1 gaps: 21-25; 1 ranges dropped by the gateway (reported)`);
    for (const r of [t, j]) expect(r.stderr.split('\n').filter((l) => /cannot decode telemetry/.test(l))).toEqual([`fieldgate/${G}/telemetry: cannot decode telemetry: not JSON`]);

    expect(j.code).toBe(0);
    const lines = jsonLines(j.stdout);
    expect(lines.filter((l) => !('event' in l))).toHaveLength(41);
    expect(lines.filter((l) => l.event === 'dropped')).toEqual([{ event: 'dropped', gateway: G, v: 1, g: G, ep: EP, ranges: [dropped] }]);
    expect(lines.at(-1)).toEqual({
      event: 'verify', gateway: G, epoch: EP, received: 41, unique: 35, duplicates: 6, firstSeq: 1, lastSeq: 50, missing: 5,
      gaps: [[21, 25]], droppedByGateway: [[31, 40]],
    });
  });

  it('exits 2 on a URL that is not a broker URL', async () => {
    const r = await fieldgate(['tail', 'http://127.0.0.1:1883', '--duration', '1']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/is not a broker URL/);
    expect(r.stdout).toBe('');
  });
});
