/**
 * Sparkplug B against a host that is not fieldgate's own code: Google's protobuf runtime decoding with a
 * module protoc generated from sparkplug_b.proto, over paho-mqtt, through Mosquitto. The devices are the
 * village simulator, a scripted Modbus server whose register counts up at every read (a ramp with no gap
 * to lose) and whose second unit can fall silent, and pymodbus for writes.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import net, { type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSimulator, type RunningSimulator } from '../src/sim/server.js';
import { trackerOf } from './helpers/cleanup.js';
import { runGateway, writeConfig, type GatewayProcess } from './helpers/gw-process.js';
import { ModbusLink } from '../src/sources/modbus/link.js';
import { needPeers, PYTHON, startMosquitto, startPymodbus, tempDir, which, type MosquittoPeer } from './helpers/peers.js';

const skip = needPeers('mosquitto', 'sparkplug-host');
const skipPymodbus = skip ?? needPeers('pymodbus');
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
  /** Subscriptions made: one per connect, so a second one means the host is back after a broker restart. */
  subscribed = 0;
  private get ready() {
    return this.subscribed > 0;
  }
  constructor(private readonly proc: ChildProcess) {
    createInterface({ input: proc.stdout! }).on('line', (line) => {
      const m = JSON.parse(line) as Message & { ready?: boolean };
      if (m.ready) this.subscribed++;
      else if (typeof m.topic === 'string') this.messages.push(m);
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

/** The Python module protoc makes from the specification's sparkplug_b.proto, in a fresh directory. */
function generate(): string {
  const dir = tempDir('spb-gen');
  const r = spawnSync(which('protoc')!, [`--python_out=${dir}`, `-I${PROTO_DIR}`, join(PROTO_DIR, 'sparkplug_b.proto')], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`protoc failed: ${r.stderr}`);
  return dir;
}

const bdSeqOf = (m: Message) => m.metrics.find((x) => x.name === 'bdSeq')!.value as number;

describe.skipIf(skip).concurrent('Sparkplug B with an independent host on Mosquitto', () => {
  let sim: RunningSimulator;
  let genDir: string;
  beforeAll(async () => {
    sim = await startSimulator({ scenario: 'village-water', tcp: { host: '127.0.0.1', port: 0 }, seed: 5 });
    genDir = generate();
  });
  afterAll(async () => {
    await sim?.close();
  });

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

  it('births in order with every metric, data by alias with seq +1, NDEATH at stop, a new bdSeq after a restart, rebirth on NCMD', async (ctx) => {
    const track = trackerOf(ctx);
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

  it('sends what was buffered while the broker was down as historical, oldest first, with their original timestamps', async (ctx) => {
    const track = trackerOf(ctx);
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

  it('waits for the primary host: no birth until its STATE is online, and it stops when the host goes offline', async (ctx) => {
    const track = trackerOf(ctx);
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

/**
 * A Modbus TCP server whose unit 1 register 0 counts up by one at every read (from 1), so each poll gives the
 * next value and a lost sample is a missing number. Unit 2 answers 215 in every register until it is made
 * silent. Other function codes answer exception 1.
 */
interface RampServer {
  readonly port: number;
  /** The last value unit 1 served. */
  readonly served: number;
  readonly silent: Set<number>;
  stop(): Promise<void>;
}

async function startRampServer(): Promise<RampServer> {
  let counter = 0;
  const silent = new Set<number>();
  const sockets = new Set<net.Socket>();
  const server = net.createServer((sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    sock.on('error', () => {});
    let buf = Buffer.alloc(0);
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 7 && buf.length >= 6 + buf.readUInt16BE(4)) {
        const frame = buf.subarray(0, 6 + buf.readUInt16BE(4));
        buf = buf.subarray(frame.length);
        const unit = frame[6]!;
        const fc = frame[7]!;
        if (silent.has(unit)) continue;
        let pdu: Buffer;
        if (fc === 3 || fc === 4) {
          const count = frame.readUInt16BE(10);
          const data = Buffer.alloc(count * 2);
          for (let i = 0; i < count; i++) data.writeUInt16BE(unit === 1 ? (i === 0 ? ++counter & 0xffff : 0) : 215, i * 2);
          pdu = Buffer.concat([Buffer.from([fc, data.length]), data]);
        } else pdu = Buffer.from([fc | 0x80, 1]);
        const head = Buffer.alloc(7);
        frame.copy(head, 0, 0, 4);
        head.writeUInt16BE(pdu.length + 1, 4);
        head[6] = unit;
        sock.write(Buffer.concat([head, pdu]));
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as AddressInfo).port,
    get served() {
      return counter;
    },
    silent,
    stop: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/**
 * A TCP relay the test can cut (every connection dropped, new ones closed at once) and mend, or mute (the
 * connections stay, bytes from the far side are dropped: a unit behind it that no longer answers).
 */
interface Relay {
  readonly port: number;
  readonly url: string;
  cut(): void;
  mend(): void;
  muted: boolean;
  stop(): Promise<void>;
}

async function startRelay(targetPort: number): Promise<Relay> {
  let up = true;
  const pairs = new Set<net.Socket>();
  const server = net.createServer((inbound) => {
    inbound.on('error', () => {});
    if (!up) return void inbound.destroy();
    const outbound = net.connect(targetPort, '127.0.0.1');
    outbound.on('error', () => inbound.destroy());
    inbound.on('close', () => outbound.destroy());
    outbound.on('close', () => inbound.destroy());
    inbound.pipe(outbound);
    outbound.on('data', (d) => {
      if (!relay.muted) inbound.write(d);
    });
    pairs.add(inbound).add(outbound);
    inbound.on('close', () => pairs.delete(inbound));
    outbound.on('close', () => pairs.delete(outbound));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as AddressInfo).port;
  const cut = () => {
    up = false;
    for (const s of pairs) s.destroy();
  };
  const relay: Relay = {
    port,
    url: `mqtt://127.0.0.1:${port}`,
    cut,
    mend: () => {
      up = true;
    },
    muted: false,
    stop: async () => {
      cut();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
  return relay;
}

/** The alias a device's DBIRTH gave a metric. */
function aliasOf(host: Host, device: string, name: string): number {
  const birth = host.of('DBIRTH').find((m) => m.topic.endsWith(`/${device}`));
  const alias = birth?.metrics.find((m) => m.name === name)?.alias;
  if (typeof alias !== 'number') throw new Error(`no DBIRTH of ${device} with metric ${name}`);
  return alias;
}

/** Every DDATA metric of one alias, in arrival order. */
const dataOf = (host: Host, device: string, alias: number) =>
  host.of('DDATA').filter((m) => m.topic.endsWith(`/${device}`)).flatMap((m) => m.metrics.filter((x) => x.alias === alias));

/** The numbers missing between the smallest and the largest of `values`. */
function gaps(values: number[]): number[] {
  const have = new Set(values);
  const missing: number[] = [];
  for (let v = Math.min(...values); v <= Math.max(...values); v++) if (!have.has(v)) missing.push(v);
  return missing;
}

describe.skipIf(skip).concurrent('Sparkplug B on devices that count and fall silent, with an independent host', () => {
  let genDir: string;
  beforeAll(() => {
    genDir = generate();
  });

  function config(dir: string, ramp: RampServer, url: string) {
    return writeConfig(dir, {
      gateway: { id: NODE, dataDir: join(dir, 'data') },
      buses: [
        // A generous timeout: a retried read would take the next number from the counter.
        { id: 'ramp', transport: 'tcp', host: '127.0.0.1', port: ramp.port, timeoutMs: 3000, reconnectMinMs: 200 },
        { id: 'spare', transport: 'tcp', host: '127.0.0.1', port: ramp.port, timeoutMs: 300, retries: 0, reconnectMinMs: 200, unitBackoffMinMs: 200, unitBackoffMaxMs: 500 },
      ],
      devices: [
        { id: 'counter', bus: 'ramp', unit: 1, pollIntervalMs: 100, points: [{ id: 'count', fc: 4, address: 0, type: 'uint16' }] },
        { id: 'tank', bus: 'spare', unit: 2, pollIntervalMs: 200, points: [{ id: 'temp', fc: 4, address: 0, scale: 0.1, unit: '°C' }] },
      ],
      uplink: { url, profile: 'sparkplug', sparkplug: { groupId: GROUP }, batch: { maxSamples: 200, maxDelayMs: 100 }, reconnectMinMs: 300, reconnectMaxMs: 1000 },
      buffer: { commitIntervalMs: 50 },
    });
  }

  it('sends a ramp buffered across a cut link as historical with its original timestamps, and no number is missing', async (ctx) => {
    const track = trackerOf(ctx);
    const broker = track(await startMosquitto());
    const host = track(await Host.start(genDir, broker));
    const ramp = track(await startRampServer());
    const relay = track(await startRelay(broker.port));
    const gw = track(runGateway(config(tempDir('spb-ramp'), ramp, relay.url)));
    await until(() => host.of('DBIRTH').length >= 2, 'the births');
    const alias = aliasOf(host, 'counter', 'count');
    await until(() => dataOf(host, 'counter', alias).length >= 10, '10 live counts');

    relay.cut();
    const cutAt = Date.now();
    const servedAtCut = ramp.served;
    await until(() => host.of('NDEATH').length === 1, 'the will when the link is cut');
    await until(() => ramp.served >= servedAtCut + 20, '20 counts read during the outage');
    const mendAt = Date.now();
    relay.mend();
    await until(() => host.of('NBIRTH').length === 2, 'the NBIRTH after the link is back');
    const servedAtMend = ramp.served;
    await until(() => {
      const values = dataOf(host, 'counter', alias).map((m) => m.value as number);
      return Math.max(...values) > servedAtMend + 5 && gaps(values).length === 0;
    }, `every count up to ${servedAtMend} and more, without a gap`, 60_000).catch((err: Error) => {
      const values = dataOf(host, 'counter', alias).map((m) => m.value as number);
      throw new Error(`${err.message}: missing ${JSON.stringify(gaps(values).slice(0, 20))} of ${Math.min(...values)}..${Math.max(...values)}`);
    });

    const metrics = dataOf(host, 'counter', alias);
    const historical = metrics.filter((m) => m.historical);
    // Everything read while the link was cut came as historical, with the time it was read.
    const outage = metrics.filter((m) => m.ts > cutAt + 200 && m.ts < mendAt - 200);
    expect(outage.length).toBeGreaterThan(10);
    for (const m of outage) expect(m.historical).toBe(true);
    expect(historical.length).toBeGreaterThanOrEqual(outage.length);
    // Oldest first, and a count's timestamp is the one it was read at: both rise with the count.
    const hv = historical.map((m) => m.value as number);
    expect(hv).toEqual([...hv].sort((a, b) => a - b));
    const firstTs = new Map<number, number>();
    for (const m of metrics) if (!firstTs.has(m.value as number)) firstTs.set(m.value as number, m.ts);
    const byValue = [...firstTs].sort((a, b) => a[0] - b[0]).map(([, ts]) => ts);
    expect(byValue).toEqual([...byValue].sort((a, b) => a - b));
    // The will carried the first session's bdSeq; every CONNECT since (the refused ones during the outage too)
    // took a new one, and the seq of the new session runs +1 per message from its NBIRTH.
    expect(bdSeqOf(host.of('NDEATH')[0]!)).toBe(bdSeqOf(host.of('NBIRTH')[0]!));
    const second = host.messages.indexOf(host.of('NBIRTH')[1]!);
    expect(bdSeqOf(host.messages[second]!)).toBeGreaterThan(bdSeqOf(host.of('NBIRTH')[0]!));
    const seqs = host.messages.slice(second).filter((m) => m.seq !== null).map((m) => m.seq!);
    for (let i = 1; i < seqs.length; i++) expect(seqs[i]).toBe((seqs[i - 1]! + 1) % 256);
    expect(gw.log()).not.toMatch(/"level":50/);
  }, 120_000);

  it('gives a unit that falls silent a DDEATH and a DBIRTH with its value when it answers again; the other device goes on', async (ctx) => {
    const track = trackerOf(ctx);
    const broker = track(await startMosquitto());
    const host = track(await Host.start(genDir, broker));
    const ramp = track(await startRampServer());
    const gw = track(runGateway(config(tempDir('spb-silent'), ramp, broker.url)));
    await until(() => host.of('DBIRTH').length >= 2 && host.of('DDATA').length >= 5, 'births and data');
    const counter = aliasOf(host, 'counter', 'count');
    // The tank's DBIRTH: its scaled register as Double with its value, once it was read.
    await until(() => host.messages.some((m) => m.topic.endsWith('/DDATA/' + NODE + '/tank')) || host.of('DBIRTH').some((m) => m.topic.endsWith('/tank') && m.metrics.some((x) => x.value !== null)), 'the tank read');

    ramp.silent.add(2);
    await until(() => host.of('DDEATH').length === 1, 'DDEATH of the silent unit', 30_000);
    const death = host.of('DDEATH')[0]!;
    expect(death.topic).toBe(`spBv1.0/${GROUP}/DDEATH/${NODE}/tank`);
    expect(typeof death.seq).toBe('number');
    const at = host.messages.indexOf(death);
    await until(() => dataOf(host, 'counter', counter).length > 0 && host.messages.slice(at).some((m) => m.topic.endsWith('/counter') && m.metrics.some((x) => x.alias === counter)), 'the counter going on while the tank is dead');

    ramp.silent.delete(2);
    await until(() => host.messages.slice(at).some((m) => m.topic === `spBv1.0/${GROUP}/DBIRTH/${NODE}/tank`), 'DBIRTH when the unit answers again', 30_000);
    const rebirth = host.messages.slice(at).find((m) => m.topic.endsWith('/DBIRTH/' + NODE + '/tank'))!;
    expect(rebirth.metrics.find((m) => m.name === 'temp')).toMatchObject({ datatype: 10, value: 21.5, null: false, props: { engUnit: '°C' } });
    // Death and birth are messages of the node's one seq: +1 per message across all of them.
    const seqs = host.messages.map((m) => m.seq!).filter((x) => x !== null);
    for (let i = 1; i < seqs.length; i++) expect(seqs[i]).toBe((seqs[i - 1]! + 1) % 256);
    expect(host.of('NBIRTH')).toHaveLength(1);
    expect(gw.log()).not.toMatch(/"level":50/);
  }, 120_000);
});

describe.skipIf(skipPymodbus).concurrent('Sparkplug DCMD from an independent host through the command guard to pymodbus', () => {

  it('writes a writable metric (the register changes, the next DDATA has it), refuses the rest, and a unit that stops answering gets DDEATH, then DBIRTH when it is back', async (ctx) => {
    const track = trackerOf(ctx);
    const broker = track(await startMosquitto());
    const host = track(await Host.start(generate(), broker));
    const holding = new Array<number>(20).fill(0);
    holding[0] = 40;
    holding[10] = 200;
    const device = track(await startPymodbus({ holding }));
    const relay = track(await startRelay(device.port!));
    const registers = async (address: number, count: number) => {
      const link = new ModbusLink({ transport: 'tcp', host: '127.0.0.1', port: device.port! }, 1000);
      await link.open();
      try {
        return (await link.read(1, 3, address, count)) as number[];
      } finally {
        await link.close();
      }
    };
    const dir = tempDir('spb-dcmd');
    const gw = track(runGateway(writeConfig(dir, {
      gateway: { id: NODE, dataDir: join(dir, 'data') },
      buses: [{ id: 'plc', transport: 'tcp', host: '127.0.0.1', port: relay.port, timeoutMs: 500, reconnectMinMs: 200, reconnectMaxMs: 500, unitBackoffMinMs: 200, unitBackoffMaxMs: 500 }],
      devices: [{ id: 'pump', bus: 'plc', unit: 1, pollIntervalMs: 200, points: [
        { id: 'level', fc: 3, address: 0, type: 'uint16', unit: '%' },
        { id: 'setpoint', fc: 3, address: 10, type: 'uint16', scale: 0.01, unit: 'bar', write: { min: 1.5, max: 4.5 } },
      ] }],
      uplink: { url: broker.url, profile: 'sparkplug', sparkplug: { groupId: GROUP }, batch: { maxDelayMs: 50 }, reconnectMinMs: 200, reconnectMaxMs: 1000 },
      buffer: { commitIntervalMs: 50 },
    })));
    // The device is born before its first read (null values); the read value follows by alias.
    await until(() => host.of('DBIRTH').length > 0 && dataOf(host, 'pump', aliasOf(host, 'pump', 'setpoint')).some((m) => m.value === 2), 'the DBIRTH and the setpoint read');
    const setpoint = aliasOf(host, 'pump', 'setpoint');
    expect(host.of('DBIRTH')[0]!.metrics.find((m) => m.name === 'setpoint')).toMatchObject({ datatype: 10, props: { engUnit: 'bar' } });

    // A write of the writable metric: the guard lets it through, the bus writes and reads it back.
    const before = host.messages.length;
    host.send('dcmd pump 10 3.2 setpoint');
    await until(() => host.messages.slice(before).some((m) => m.topic.endsWith('/DDATA/' + NODE + '/pump') && m.metrics.some((x) => x.alias === setpoint && x.value === 3.2)), 'the DDATA with the new setpoint');
    expect(await registers(10, 1)).toEqual([320]);
    expect(gw.log()).toMatch(/"origin":"sparkplug".*"status":"done".*command write done/);

    // A metric without write, and a value beyond the point's limit: refused with a logged reason, nothing written.
    host.send('dcmd pump 6 7 level');
    host.send('dcmd pump 10 9 setpoint');
    await until(() => /"point":"level".*command rejected:.*not writable/.test(gw.log()) && /"point":"setpoint".*command rejected:.*above the maximum/.test(gw.log()), 'both refusals in the log');
    expect(await registers(0, 1)).toEqual([40]);
    expect(await registers(10, 1)).toEqual([320]);
    const levels = dataOf(host, 'pump', aliasOf(host, 'pump', 'level')).map((m) => m.value);
    expect(levels.every((v) => v === 40)).toBe(true);

    // The unit stops answering (its replies no longer reach the gateway): DDEATH; it answers again: DBIRTH
    // with the value it holds now, the written one.
    relay.muted = true;
    await until(() => host.of('DDEATH').length === 1, 'DDEATH of the unit that stopped answering', 30_000);
    expect(host.of('DDEATH')[0]!.topic).toBe(`spBv1.0/${GROUP}/DDEATH/${NODE}/pump`);
    const at = host.messages.length;
    relay.muted = false;
    await until(() => host.messages.slice(at).some((m) => m.topic.endsWith('/DBIRTH/' + NODE + '/pump')), 'DBIRTH when the unit answers again', 30_000);
    const back = host.messages.slice(at).find((m) => m.topic.endsWith('/DBIRTH/' + NODE + '/pump'))!;
    expect(back.metrics.map((m) => [m.name, m.value])).toEqual([['level', 40], ['setpoint', 3.2]]);
    const seqs = host.messages.map((m) => m.seq).filter((x): x is number => x !== null);
    for (let i = 1; i < seqs.length; i++) expect(seqs[i]).toBe((seqs[i - 1]! + 1) % 256);
    expect(gw.log()).not.toMatch(/"level":50/);
  }, 120_000);
});
