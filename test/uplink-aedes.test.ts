/**
 * Store-and-forward end to end with no outside peers: the simulator feeds an in-process gateway whose uplink
 * talks to an in-process aedes broker. Every committed seq must reach a subscriber (duplicates allowed)
 * through a broker outage; a backlog drains oldest-first behind live samples, and under the configured cap.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { configSchema } from '../src/config/schema.js';
import { startGateway, type Gateway } from '../src/gateway.js';
import { Outbox } from '../src/outbox/index.js';
import { startSimulator, type RunningSimulator } from '../src/sim/server.js';
import { decodeTelemetry } from '../src/uplink/payload.js';
import { freePort, startAedes, type AedesBroker } from './helpers/aedes.js';
import { recordingLogger, type RecordingLogger } from './helpers/gateway.js';
import { Collector } from './helpers/gw-process.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const schema = JSON.parse(readFileSync(new URL('../docs/telemetry.schema.json', import.meta.url), 'utf8'));
const validate = new Ajv({ strictTuples: false, allowUnionTypes: true }).compile(schema);

const POINTS = [
  ['pump_house', 'inlet_pressure', 'bar', 'uint16'],
  ['pump_house', 'tank_level', 'm', 'uint16'],
  ['pump_house', 'pump_running', null, 'bool'],
  ['flow_meter', 'inlet_flow', 'm3/h', 'float32'],
  ['flow_meter', 'inlet_total', 'm3', 'uint32'],
] as const;

describe('uplink to an in-process aedes broker', () => {
  let sim: RunningSimulator;
  let dir: string;
  const cleanups: Array<() => Promise<unknown>> = [];
  beforeAll(async () => {
    sim = await startSimulator({ scenario: 'village-water', tcp: { host: '127.0.0.1', port: 0 }, seed: 4 });
    dir = mkdtempSync(join(tmpdir(), 'fieldgate-aedes-'));
  });
  afterAll(async () => {
    await sim?.close();
    rmSync(dir, { recursive: true, force: true });
  });
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
  });

  function track<T extends { stop(): Promise<unknown> } | { close(): Promise<unknown> }>(x: T): T {
    cleanups.push(() => ('stop' in x ? x.stop() : (x as { close(): Promise<unknown> }).close()));
    return x;
  }

  let n = 0;
  function gateway(url: string, uplink: Record<string, unknown> = {}): { gw: Gateway; log: RecordingLogger; dataDir: string } {
    const dataDir = join(dir, `data-${++n}`);
    const config = configSchema.parse({
      gateway: { id: 'gw-aedes', dataDir },
      buses: [{ id: 'sim', transport: 'tcp', host: '127.0.0.1', port: sim.tcpPort, reconnectMinMs: 200 }],
      devices: [
        { id: 'pump_house', bus: 'sim', unit: 1, pollIntervalMs: 50, points: [
          { id: 'inlet_pressure', fc: 4, address: 0, scale: 0.000625, offset: -2.5, unit: 'bar' },
          { id: 'tank_level', fc: 4, address: 1, scale: 0.0003125, offset: -1.25, unit: 'm' },
          { id: 'pump_running', fc: 2, address: 0 },
        ] },
        { id: 'flow_meter', bus: 'sim', unit: 3, pollIntervalMs: 50, points: [
          { id: 'inlet_flow', fc: 3, address: 0, type: 'float32', order: 'CDAB', unit: 'm3/h' },
          { id: 'inlet_total', fc: 3, address: 2, type: 'uint32', order: 'CDAB', scale: 0.001, unit: 'm3' },
        ] },
      ],
      // aedes speaks MQTT 3.1.1 only.
      uplink: { url, protocolVersion: 4, batch: { maxSamples: 200, maxDelayMs: 100 }, reconnectMinMs: 200, reconnectMaxMs: 500, ...uplink },
      buffer: { commitIntervalMs: 50 },
    });
    const log = recordingLogger();
    const gw = startGateway(config, log.logger);
    cleanups.push(() => gw.stop());
    return { gw, log, dataDir };
  }

  /** The highest seq ever assigned, and the samples left, read from the closed gateway's outbox. */
  function finalStats(dataDir: string) {
    const reader = Outbox.openReadOnly(dataDir);
    try {
      return reader.stats();
    } finally {
      reader.close();
    }
  }

  it('delivers every committed seq from 1, lists every point in the birth, and says offline at stop', async () => {
    const broker = track(await startAedes());
    const sub = track(new Collector(broker.url));
    const raw: Array<{ topic: string; text: string }> = [];
    sub.client.on('message', (topic, payload) => raw.push({ topic, text: payload.toString() }));
    await sub.until(() => sub.client.connected);
    const { gw, log, dataDir } = gateway(broker.url);
    await sub.until(() => sub.seqs.count >= 100, 15_000, '100 samples');

    const birth = sub.statuses.find((s) => s.state === 'online')!;
    expect(birth).toMatchObject({ v: 1, g: 'gw-aedes', ep: gw.outbox.epoch, version: expect.any(String), configHash: expect.stringMatching(/^[0-9a-f]{12}$/) });
    const points = birth.points as unknown[][];
    expect(points.map((p) => p.slice(1))).toEqual(expect.arrayContaining(POINTS.map((p) => [...p])));
    expect(points).toHaveLength(POINTS.length);
    const pressure = sub.samples.find((s) => s.point === 'inlet_pressure')!;
    expect(pressure).toMatchObject({ gateway: 'gw-aedes', device: 'pump_house', quality: 'good' });
    expect(pressure.value as number).toBeGreaterThan(2);

    await gw.stop();
    const stats = finalStats(dataDir);
    expect(stats.samples).toBe(0);
    await sub.until(() => sub.complete(stats.lastSeq), 10_000, `seq 1..${stats.lastSeq}`);
    expect(sub.seqs.max).toBe(stats.lastSeq);
    await sub.until(() => sub.statuses.at(-1)?.state === 'offline', 5000, 'offline status');
    expect(sub.statuses.at(-1)).toEqual({ v: 1, state: 'offline', reason: 'shutdown' });
    for (const m of raw) expect(validate(JSON.parse(m.text)), `${m.topic}: ${JSON.stringify(validate.errors)}`).toBe(true);
    expect(log.lines.filter((l) => l.level >= 50)).toEqual([]);
  });

  it('publishes the json format too', async () => {
    const broker = track(await startAedes());
    const sub = track(new Collector(broker.url));
    const formats = new Set<unknown>();
    sub.client.on('message', (topic, payload) => {
      if (topic.endsWith('/telemetry')) formats.add(JSON.parse(payload.toString()).format ?? 'compact');
    });
    await sub.until(() => sub.client.connected);
    const { gw, dataDir } = gateway(broker.url, { format: 'json' });
    await sub.until(() => sub.seqs.count >= 30, 15_000, '30 samples');
    await gw.stop();
    const { lastSeq } = finalStats(dataDir);
    await sub.until(() => sub.complete(lastSeq), 10_000, `seq 1..${lastSeq}`);
    expect([...formats]).toEqual(['json']);
    expect(new Set(sub.samples.map((s) => `${s.device}/${s.point}`))).toEqual(new Set(POINTS.map(([d, p]) => `${d}/${p}`)));
  });

  it('loses nothing while the broker is down and restarted on the same port', async () => {
    let broker: AedesBroker = await startAedes();
    cleanups.push(() => broker.stop());
    const sub = track(new Collector(broker.url, { clientId: 'collector-outage' }));
    await sub.until(() => sub.client.connected);
    const { gw, dataDir } = gateway(broker.url);
    await sub.until(() => sub.seqs.count >= 40, 15_000, '40 samples');

    const { port, persistence } = broker;
    await broker.stop();
    const seenBefore = sub.seqs.max!;
    await sleep(1500);
    // The gateway kept acquiring into its outbox meanwhile.
    expect(gw.outbox.stats().lastSeq).toBeGreaterThan(seenBefore + 20);
    broker = await startAedes({ port, persistence });
    const outageEnd = gw.outbox.stats().lastSeq;
    await sub.until(() => sub.seqs.max! > outageEnd + 20, 15_000, 'delivery after the restart');

    await gw.stop();
    const stats = finalStats(dataDir);
    expect(stats.samples).toBe(0);
    await sub.until(() => sub.complete(stats.lastSeq), 15_000, `every seq 1..${stats.lastSeq}`);
    expect(sub.seqs.gaps()).toEqual([]);
    expect(sub.statuses.filter((s) => s.state === 'online').length).toBeGreaterThanOrEqual(2);
  });

  /** Backlog written straight into the outbox while the broker is down; then the broker comes up. */
  async function withBacklog(samples: number, uplink: Record<string, unknown>) {
    const port = await freePort();
    const { gw, dataDir } = gateway(`mqtt://127.0.0.1:${port}`, uplink);
    const t = Date.now() - 3_600_000;
    for (let i = 0; i < samples; i += 10_000) {
      gw.outbox.append(Array.from({ length: Math.min(10_000, samples - i) }, (_, k) => ({ device: 'pump_house', point: 'tank_level', ts: t + i + k, value: 2.5 + ((i + k) % 100) / 1000, quality: 'good' as const })));
    }
    gw.outbox.commit();
    expect(gw.outbox.stats().lastSeq).toBeGreaterThanOrEqual(samples);
    const broker = track(await startAedes({ port }));
    // The gateway splits backlog from live after its birth is acknowledged. Seqs committed before it connected
    // are surely backlog; seqs committed after its birth reached us are surely live.
    let backlogEnd = 0;
    let liveAfter = Infinity;
    let birthAt = 0;
    broker.broker.on('clientReady', (client) => {
      if (client.id === 'fieldgate-gw-aedes') backlogEnd = gw.outbox.stats().lastSeq;
    });
    const sub = track(new Collector(broker.url));
    const arrived = new Map<number, number>();
    sub.client.on('message', (topic, payload) => {
      if (topic.endsWith('/status') && payload.length > 0 && JSON.parse(payload.toString()).state === 'online') {
        birthAt = Date.now();
        liveAfter = gw.outbox.stats().lastSeq;
      }
      if (topic.endsWith('/telemetry')) for (const s of decodeTelemetry(payload.toString())) if (!arrived.has(s.seq)) arrived.set(s.seq, Date.now());
    });
    return { gw, dataDir, sub, arrived, backlog: () => ({ birthAt, backlogEnd, liveAfter }) };
  }

  it('sends live samples within seconds while a 200k backlog drains oldest-first behind them', async () => {
    const { gw, dataDir, sub, arrived, backlog } = await withBacklog(200_000, { inflight: 16, shutdownTimeoutMs: 20_000 });
    await sub.until(() => backlog().birthAt > 0, 15_000, 'the birth');
    const { birthAt, backlogEnd, liveAfter } = backlog();
    expect(backlogEnd).toBeGreaterThanOrEqual(200_000);
    await sub.until(() => [...arrived.keys()].some((s) => s > liveAfter), 5000, 'a live sample');
    const firstLive = Math.min(...[...arrived].filter(([s]) => s > liveAfter).map(([, at]) => at));
    await sub.until(() => sub.seqs.min === 1 && sub.seqs.max! >= backlogEnd && sub.seqs.gaps().every(([a]) => a > backlogEnd), 60_000, 'the backlog');
    let backlogDone = 0;
    let prevAt = 0;
    let outOfOrder = 0;
    for (let s = 1; s <= backlogEnd; s++) {
      const at = arrived.get(s)!;
      backlogDone = Math.max(backlogDone, at);
      if (at < prevAt) outOfOrder++;
      prevAt = at;
    }
    console.log(`backlog of ${backlogEnd} samples drained in ${backlogDone - birthAt} ms; first live sample after ${firstLive - birthAt} ms`);
    expect(firstLive - birthAt).toBeLessThan(3000);
    expect(firstLive).toBeLessThan(backlogDone);
    // Oldest first: the backlog arrives in seq order (messages complete in order on one connection).
    expect(outOfOrder).toBe(0);
    await gw.stop();
    const stats = finalStats(dataDir);
    expect(stats.samples).toBe(0);
    await sub.until(() => sub.complete(stats.lastSeq), 15_000, `every seq 1..${stats.lastSeq}`);
  });
  // The drain cap (uplink.maxSamplesPerSecond) is measured in simulated time: test/uplink-clock.test.ts.
});
