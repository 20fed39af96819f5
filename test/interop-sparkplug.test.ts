/**
 * Sparkplug B against a host that is not fieldgate's own code: Google's protobuf runtime decoding with a
 * module protoc generated from sparkplug_b.proto, over paho-mqtt, through Mosquitto.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startSimulator, type RunningSimulator } from '../src/sim/server.js';
import { runGateway, writeConfig, type GatewayProcess } from './helpers/gw-process.js';
import { needPeers, PYTHON, startMosquitto, tempDir, which, type MosquittoPeer } from './helpers/peers.js';

const skip = needPeers('mosquitto', 'sparkplug-host');
const PROTO_DIR = fileURLToPath(new URL('../src/uplink/profiles/sparkplug/', import.meta.url));
const HOST_SCRIPT = fileURLToPath(new URL('./peers/sparkplug_host.py', import.meta.url));
const GROUP = 'bashan-water';
const NODE = 'pump-house-1';

interface Metric {
  name: string | null;
  alias: number | null;
  datatype: number | null;
  ts: number;
  historical: boolean;
  null: boolean;
  value: unknown;
  props?: Record<string, unknown>;
}
interface Message {
  topic: string;
  seq: number | null;
  ts: number;
  metrics: Metric[];
}

class Host {
  readonly messages: Message[] = [];
  private ready = false;
  constructor(private readonly proc: ChildProcess) {
    createInterface({ input: proc.stdout! }).on('line', (line) => {
      const m = JSON.parse(line) as Message & { ready?: boolean };
      if (m.ready) this.ready = true;
      else this.messages.push(m);
    });
  }
  static async start(genDir: string, broker: MosquittoPeer): Promise<Host> {
    const proc = spawn(PYTHON, [HOST_SCRIPT, genDir, '127.0.0.1', String(broker.port), GROUP, NODE], { stdio: ['pipe', 'pipe', 'inherit'] });
    const host = new Host(proc);
    await until(() => host.ready, 'the host subscribed');
    return host;
  }
  send(line: string): void {
    this.proc.stdin!.write(`${line}\n`);
  }
  of(kind: string): Message[] {
    return this.messages.filter((m) => m.topic.split('/')[2] === kind);
  }
  async stop(): Promise<void> {
    this.send('quit');
    await new Promise((r) => setTimeout(r, 100));
    this.proc.kill('SIGKILL');
  }
}

async function until(cond: () => boolean, what: string, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const bdSeqOf = (m: Message) => m.metrics.find((x) => x.name === 'bdSeq')!.value as number;

describe.skipIf(skip)('Sparkplug B with an independent host on Mosquitto', () => {
  let sim: RunningSimulator;
  let genDir: string;
  const cleanups: Array<() => Promise<unknown>> = [];
  beforeAll(async () => {
    sim = await startSimulator({ scenario: 'village-water', tcp: { host: '127.0.0.1', port: 0 }, seed: 5 });
    genDir = tempDir('spb-gen');
    const r = spawnSync(which('protoc')!, [`--python_out=${genDir}`, `-I${PROTO_DIR}`, join(PROTO_DIR, 'sparkplug_b.proto')], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`protoc failed: ${r.stderr}`);
  });
  afterAll(async () => {
    await sim?.close();
  });
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
  });
  const track = <T extends { stop(): Promise<unknown> }>(x: T): T => {
    cleanups.push(() => x.stop());
    return x;
  };

  function config(dir: string, broker: MosquittoPeer, sparkplug: Record<string, unknown> = {}, uplink: Record<string, unknown> = {}) {
    return writeConfig(dir, {
      gateway: { id: NODE, dataDir: join(dir, 'data') },
      buses: [{ id: 'sim', transport: 'tcp', host: '127.0.0.1', port: sim.tcpPort, reconnectMinMs: 200 }],
      devices: [
        { id: 'pump_house', bus: 'sim', unit: 1, pollIntervalMs: 100, points: [
          { id: 'inlet_pressure', fc: 4, address: 0, scale: 0.000625, offset: -2.5, unit: 'bar', alarms: [{ type: 'low', limit: 0.5 }] },
          { id: 'tank_level', fc: 4, address: 1, scale: 0.0003125, offset: -1.25, unit: 'm' },
        ] },
        { id: 'flow_meter', bus: 'sim', unit: 3, pollIntervalMs: 100, points: [{ id: 'flow', fc: 3, address: 0, type: 'float32', order: 'CDAB', unit: 'm3/h' }] },
      ],
      uplink: { url: broker.url, profile: 'sparkplug', sparkplug: { groupId: GROUP, ...sparkplug }, batch: { maxSamples: 200, maxDelayMs: 100 }, reconnectMinMs: 200, reconnectMaxMs: 1000, ...uplink },
      buffer: { commitIntervalMs: 50 },
    });
  }

  it('births in order with every metric, data by alias with seq +1, NDEATH at stop, a new bdSeq after a restart, rebirth on NCMD', async () => {
    const broker = track(await startMosquitto());
    const host = track(await Host.start(genDir, broker));
    const dir = tempDir('spb');
    const file = config(dir, broker);
    let gw: GatewayProcess = track(runGateway(file));
    await until(() => host.of('DDATA').length >= 10, '10 DDATA');

    const [nbirth, ...rest] = host.messages;
    expect(nbirth!.topic).toBe(`spBv1.0/${GROUP}/NBIRTH/${NODE}`);
    expect(nbirth!.seq).toBe(0);
    expect(bdSeqOf(nbirth!)).toBe(0);
    const rebirth = nbirth!.metrics.find((m) => m.name === 'Node Control/Rebirth')!;
    expect(rebirth).toMatchObject({ datatype: 11, value: false, alias: null });
    const births = rest.slice(0, 2);
    expect(births.map((m) => [m.topic, m.seq])).toEqual(
      expect.arrayContaining([[`spBv1.0/${GROUP}/DBIRTH/${NODE}/pump_house`, expect.any(Number)], [`spBv1.0/${GROUP}/DBIRTH/${NODE}/flow_meter`, expect.any(Number)]]),
    );
    const pump = births.find((m) => m.topic.endsWith('/pump_house'))!;
    const pressure = pump.metrics.find((m) => m.name === 'inlet_pressure')!;
    // A scaled register goes as Double: its engineering value is a fraction.
    expect(pressure).toMatchObject({ datatype: 10, props: { engUnit: 'bar' } });
    expect(typeof pressure.alias).toBe('number');
    expect(pump.metrics.find((m) => m.name === 'inlet_pressure/Alarms/low')).toMatchObject({ datatype: 11 });
    const flow = births.find((m) => m.topic.endsWith('/flow_meter'))!.metrics.find((m) => m.name === 'flow')!;
    expect(flow.datatype).toBe(9);

    // seq: +1 per message modulo 256 from the NBIRTH on, across births and data.
    const seqs = host.messages.map((m) => m.seq!);
    for (let i = 1; i < seqs.length; i++) expect(seqs[i]).toBe((seqs[i - 1]! + 1) % 256);
    const data = host.of('DDATA');
    const aliases = new Set(births.flatMap((b) => b.metrics.map((m) => m.alias)).filter((a): a is number => a !== null));
    for (const d of data) for (const m of d.metrics) {
      expect(m.name).toBeNull();
      expect(aliases.has(m.alias!)).toBe(true);
      expect(m.ts).toBeGreaterThan(1_700_000_000_000);
    }
    for (const m of data.flatMap((d) => d.metrics).filter((x) => x.alias === pressure.alias)) expect([m.null, typeof m.value]).toEqual([false, 'number']);

    // A rebirth request: NBIRTH at seq 0 with the same bdSeq, and the DBIRTHs again.
    const before = host.messages.length;
    host.send('rebirth');
    await until(() => host.messages.slice(before).some((m) => m.topic.includes('/NBIRTH/')), 'the NBIRTH after the rebirth request');
    const again = host.messages.slice(before).find((m) => m.topic.includes('/NBIRTH/'))!;
    expect(again.seq).toBe(0);
    expect(bdSeqOf(again)).toBe(0);

    // A clean stop publishes NDEATH with the session's bdSeq.
    expect(await gw.stop('SIGTERM')).toBe(0);
    await until(() => host.of('NDEATH').length === 1, 'NDEATH at stop');
    expect(bdSeqOf(host.of('NDEATH')[0]!)).toBe(0);
    expect(host.of('NDEATH')[0]!.seq).toBeNull();

    // A restart never reuses the bdSeq.
    gw = track(runGateway(file));
    await until(() => host.of('NBIRTH').length === 3, 'the NBIRTH after the restart');
    expect(bdSeqOf(host.of('NBIRTH')[2]!)).toBe(1);

    // A cut link: the broker publishes the will, NDEATH with the same bdSeq.
    gw.child.kill('SIGKILL');
    await gw.exited;
    await until(() => host.of('NDEATH').length === 2, 'the will after SIGKILL', 60_000);
    expect(bdSeqOf(host.of('NDEATH')[1]!)).toBe(1);
    expect(gw.log()).not.toMatch(/"level":50/);
  });

  it('sends what was buffered while the broker was down as historical, oldest first, with their original timestamps', async () => {
    const broker = track(await startMosquitto());
    const dir = tempDir('spb');
    // The gateway redials slowly enough that the new host has subscribed before the backlog goes (QoS 0 is not queued).
    const file = config(dir, broker, {}, { reconnectMinMs: 4000, reconnectMaxMs: 5000 });
    const gw = track(runGateway(file));
    await gw.running();
    let host = track(await Host.start(genDir, broker));
    await until(() => host.of('DDATA').length >= 3, 'live data');
    await host.stop();
    await broker.stop();
    await new Promise((r) => setTimeout(r, 1500));
    await broker.restart();
    host = track(await Host.start(genDir, broker));
    await until(() => host.of('DDATA').some((m) => m.metrics.some((x) => x.historical)), 'historical data after the outage', 40_000);
    await until(() => host.of('DDATA').some((m) => m.metrics.some((x) => !x.historical)), 'live data after the outage');
    const hist = host.of('DDATA').flatMap((m) => m.metrics.filter((x) => x.historical));
    // Oldest first per metric, original timestamps, a second and more of them.
    const byAlias = new Map<number, number[]>();
    for (const m of hist) byAlias.set(m.alias!, [...(byAlias.get(m.alias!) ?? []), m.ts]);
    for (const ts of byAlias.values()) expect(ts).toEqual([...ts].sort((a, b) => a - b));
    const span = Math.max(...hist.map((m) => m.ts)) - Math.min(...hist.map((m) => m.ts));
    expect(span).toBeGreaterThan(800);
  });

  it('waits for the primary host: no birth until its STATE is online, and it stops when the host goes offline', async () => {
    const broker = track(await startMosquitto());
    const host = track(await Host.start(genDir, broker));
    const dir = tempDir('spb');
    const gw = track(runGateway(config(dir, broker, { primaryHostId: 'scada' })));
    await gw.running();
    await new Promise((r) => setTimeout(r, 1500));
    expect(host.of('NBIRTH')).toEqual([]);
    host.send(`state online ${Date.now()} scada`);
    await until(() => host.of('NBIRTH').length === 1 && host.of('DDATA').length > 0, 'births and data once the host is online');
    host.send(`state offline ${Date.now() + 1} scada`);
    await until(() => host.of('NDEATH').length === 1, 'NDEATH when the host goes offline');
    const n = host.of('DDATA').length;
    await new Promise((r) => setTimeout(r, 1000));
    expect(host.of('DDATA').length).toBeLessThanOrEqual(n + 2);
  });
});
