/**
 * Sparkplug B against compact v1 (docs/sparkplug.md): bytes per sample on the wire for the e2e workload (1,000
 * points at 1 Hz, the gateway as a process, counted at a subscriber), the gateway's RSS in each profile, and the
 * drain of a 1 M-sample backlog as historical DDATA: the encoder alone, then encoded, published at QoS 0 and
 * fenced (UNSUBSCRIBE/UNSUBACK) through a local Mosquitto, as the uplink confirms a Sparkplug batch.
 * `node --import tsx bench/sparkplug.ts` prints the tables.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import { fromBinary } from '@bufbuild/protobuf';
import mqtt from 'mqtt';
import { stringify } from 'yaml';
import { resolvedType } from '../src/config/points.js';
import { decodeTelemetry } from '../src/uplink/payload.js';
import type { BirthContext, Outgoing, StoredRow } from '../src/uplink/profile.js';
import { sparkplugProfile } from '../src/uplink/profiles/sparkplug/index.js';
import { PayloadSchema } from '../src/uplink/profiles/sparkplug/sparkplug_b_pb.js';
import { startBroker } from './lib/broker.js';
import { f1, f2, int, load, ratio } from './lib/format.js';
import { startSim } from './lib/sim.js';
import { fieldgateConfig, POINTS } from './lib/workload.js';
import { syntheticDevices } from './modbus-tcp.js';
import { spawnChild } from './peers.js';

const WINDOW_S = 15;
const WARMUP_S = 4;
const GROUP = 'bench';
const BACKLOG = 1_000_000;
/** The uplink's default batch.maxSamples: one batch is read, encoded and fenced at a time. */
const BATCH = 500;
/** Fences outstanding at once while draining (the uplink's window of batches in flight). */
const WINDOW = 8;
const ROOT = new URL('..', import.meta.url).pathname;

const varintLen = (n: number) => (n < 128 ? 1 : n < 16_384 ? 2 : n < 2_097_152 ? 3 : 4);
/** An MQTT 5 PUBLISH without properties: fixed header (1 + remaining length), topic (2 + bytes), packet id at QoS 1, properties length, payload. */
function publishBytes(topic: number, payload: number, qos: 0 | 1): number {
  const rest = 2 + topic + (qos ? 2 : 0) + 1 + payload;
  return 1 + varintLen(rest) + rest;
}
/** The fence after a Sparkplug batch: UNSUBSCRIBE of `fieldgate/fence` (MQTT 5) and its UNSUBACK. */
const FENCE = 1 + 1 + 2 + 1 + 2 + 'fieldgate/fence'.length + (1 + 1 + 2 + 1 + 1);

interface Wire {
  label: string;
  messages: number;
  samples: number;
  payload: number;
  mqtt: number;
  qos: 0 | 1;
  rssKiB: number;
  hwmKiB: number;
}

function procStatus(pid: number): { rss: number; hwm: number } {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(s)?.[1] ?? NaN);
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

/** The gateway as a process on the synthetic map, one profile, counted at a subscriber for WINDOW_S. */
async function wire(label: string, profile: 'fieldgate' | 'sparkplug'): Promise<Wire> {
  const broker = await startBroker();
  const sim = await startSim('synthetic');
  const dir = mkdtempSync(join(tmpdir(), 'fieldgate-bench-spb-'));
  const uplink = profile === 'sparkplug' ? { profile: 'sparkplug', sparkplug: { groupId: GROUP } } : {};
  const file = join(dir, 'gateway.yaml');
  const config = fieldgateConfig({ dataDir: join(dir, 'data'), simPort: sim.port, brokerUrl: broker.url, pollIntervalMs: 1000, busPerDevice: false, uplink });
  // No status page: its default port may be taken by another gateway on this machine.
  writeFileSync(file, stringify({ ...config, status: { enabled: false } }));
  const sub = mqtt.connect(broker.url, { protocolVersion: 5, clientId: `bench-spb-sub-${profile}` });
  await new Promise<void>((ok) => sub.once('connect', () => ok()));
  await sub.subscribeAsync(profile === 'sparkplug' ? `spBv1.0/${GROUP}/#` : 'fieldgate/+/telemetry', { qos: 1 });
  const w: Wire = { label, messages: 0, samples: 0, payload: 0, mqtt: 0, qos: profile === 'sparkplug' ? 0 : 1, rssKiB: 0, hwmKiB: 0 };
  let counting = false;
  sub.on('message', (topic, payload) => {
    if (!counting) return;
    let n = 0;
    if (profile === 'sparkplug') {
      if (!topic.includes('/DDATA/')) return;
      n = fromBinary(PayloadSchema, payload).metrics.length;
    } else n = decodeTelemetry(payload).length;
    w.messages++;
    w.samples += n;
    w.payload += payload.length;
    w.mqtt += publishBytes(Buffer.byteLength(topic), payload.length, w.qos);
  });
  const gw = spawnChild(process.execPath, [join(ROOT, 'bin/fieldgate.js'), 'run', '-c', file, '--log-level', 'warn'], 'keep');
  try {
    await sleep(WARMUP_S * 1000);
    counting = true;
    await sleep(WINDOW_S * 1000);
    counting = false;
    if (gw.proc.exitCode !== null) throw new Error(`the gateway exited during the ${label} run: ${gw.output().slice(-2000)}`);
    const s = procStatus(gw.pid);
    w.rssKiB = s.rss;
    w.hwmKiB = s.hwm;
  } finally {
    await gw.stop();
    await sub.endAsync();
    await sim.stop();
    await broker.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  return w;
}

/** The workload's points as the gateway's birth lists them, and a backlog of `n` stored rows over them. */
function backlog(n: number): { ctx: BirthContext; scaled: Set<string>; rows: StoredRow[] } {
  const devices = syntheticDevices('sim', 1000) as Array<{ id: string; points: Array<{ id: string; fc: 1 | 2 | 3 | 4; type?: string; bit?: number; scale?: number }> }>;
  const points = devices.flatMap((d) => d.points.map((p) => ({ device: d.id, point: p.id, type: resolvedType(p as never), scaled: (p.scale ?? 1) !== 1 })));
  const ctx: BirthContext = { epoch: 'bench', version: 'bench', configHash: 'bench', points: points.map((p, i) => ({ index: i + 1, device: p.device, point: p.point, type: p.type })) };
  const scaled = new Set(points.filter((p) => p.scaled).map((p) => `${p.device}\u0000${p.point}`));
  let x = 12345;
  const r = () => ((x = (x * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31);
  const t0 = Date.UTC(2026, 0, 1);
  const rows: StoredRow[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const k = i % points.length;
    const p = points[k]!;
    const value = p.type === 'bool' ? r() < 0.5 : p.scaled ? Math.round(r() * 4000) / 10 : p.type === 'float32' ? Math.fround(r() * 1000) : Math.round(r() * 30_000);
    rows[i] = { seq: i + 1, series: k + 1, device: p.device, point: p.point, ts: t0 + Math.floor(i / points.length) * 1000, value, quality: 'good', flags: 0 };
  }
  return { ctx, scaled, rows };
}

function profileFor(ctx: BirthContext, scaled: Set<string>) {
  const p = sparkplugProfile({ groupId: GROUP, edgeNodeId: 'bench', commandTtlS: 30, version: 'bench', scaled, bdSeq: { load: () => undefined, save: () => {} } });
  p.will();
  p.birth(ctx);
  return p;
}

interface Drain {
  encodeS: number;
  bytes: number;
  messages: number;
  heapMiB: number;
  brokerS?: number;
  note?: string;
}

async function drain(): Promise<Drain> {
  const { ctx, scaled, rows } = backlog(BACKLOG);
  const p = profileFor(ctx, scaled);
  const flat = (x: Outgoing | Outgoing[] | null) => (x === null ? [] : [x].flat());
  global.gc?.();
  const heap0 = process.memoryUsage().heapUsed;
  let bytes = 0;
  let messages = 0;
  let peak = 0;
  const t0 = performance.now();
  for (let i = 0; i < rows.length; i += BATCH) {
    for (const m of flat(p.samples('bench', rows, i, Math.min(i + BATCH, rows.length), true))) {
      bytes += m.payload.length;
      messages++;
    }
    if (i % (BATCH * 200) === 0) peak = Math.max(peak, process.memoryUsage().heapUsed - heap0);
  }
  const encodeS = (performance.now() - t0) / 1000;
  const out: Drain = { encodeS, bytes, messages, heapMiB: peak / 2 ** 20 };

  let broker;
  try {
    broker = await startBroker();
  } catch (err) {
    return { ...out, note: `not through Mosquitto: ${(err as Error).message}` };
  }
  const c = mqtt.connect(broker.url, { protocolVersion: 5, clientId: 'bench-spb-drain', writeCache: false });
  try {
    await new Promise<void>((ok) => c.once('connect', () => ok()));
    const q = profileFor(ctx, scaled);
    const fences: Promise<unknown>[] = [];
    const t1 = performance.now();
    for (let i = 0; i < rows.length; i += BATCH) {
      for (const m of flat(q.samples('bench', rows, i, Math.min(i + BATCH, rows.length), true))) c.publish(m.topic, m.payload as Buffer, { qos: 0 });
      fences.push(c.unsubscribeAsync('fieldgate/fence'));
      if (fences.length >= WINDOW) await fences.shift();
    }
    await Promise.all(fences);
    out.brokerS = (performance.now() - t1) / 1000;
  } finally {
    await c.endAsync();
    await broker.stop();
  }
  return out;
}

export async function run(): Promise<string> {
  process.stderr.write('  compact v1...\n');
  const compact = await wire('fieldgate, compact v1 (QoS 1)', 'fieldgate');
  process.stderr.write('  sparkplug...\n');
  const spb = await wire('Sparkplug B (QoS 0 + fence)', 'sparkplug');
  process.stderr.write('  drain...\n');
  const loadBefore = load();
  const d = await drain();
  const per = (w: Wire) => (w.mqtt + (w.qos === 0 ? 0 : 4 * w.messages)) / w.samples;
  const row = (w: Wire) =>
    `| ${w.label} | ${f1(w.samples / w.messages)} | ${f2(w.payload / w.samples)} | ${f2((w.mqtt - w.payload) / w.messages)} | ${f2(w.mqtt / w.samples)} | ${f2(per(w))} | ${ratio(per(w), per(compact))} | ${int(w.rssKiB / 1024)} (peak ${int(w.hwmKiB / 1024)}) |`;
  const fencePerSample = FENCE / BATCH;
  return [
    `${int(POINTS)} points at pollIntervalMs 1000 (the e2e workload), the gateway as a process (\`fieldgate run\`), ${WINDOW_S} s`,
    `counted at a subscriber after ${WARMUP_S} s, data messages only (births once per connection). MQTT bytes are an MQTT 5`,
    'PUBLISH without properties: fixed header (1 + remaining length), topic (2 + its bytes), packet id at QoS 1,',
    'properties length and payload. "Per sample" adds the 4-byte PUBACK of each compact v1 message; Sparkplug is QoS 0',
    `and has no PUBACK, but each batch of up to ${BATCH} samples is followed by a fence (UNSUBSCRIBE and UNSUBACK,`,
    `${FENCE} bytes, ${f2(fencePerSample)} B a sample at most), not counted in the table. Byte counts do not depend on the machine.`,
    '',
    '| uplink | samples per message | payload B/sample | MQTT overhead B/message | MQTT B/sample | per sample with acks | vs compact v1 | gateway RSS MiB |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    row(compact),
    row(spb),
    '',
    `A Sparkplug metric in DDATA carries its alias, its own timestamp (ms, 6 bytes as a varint) and the value in its`,
    `datatype's field; scaled registers go as Double (8 bytes). One DDATA per device and batch: 250 points a device here.`,
    '',
    `Drain of a ${int(BACKLOG)}-sample backlog over the same ${int(POINTS)} points as historical DDATA (is_historical, each`,
    `metric with its original timestamp), in batches of ${BATCH} samples (one DDATA per device and batch), load average ${loadBefore}:`,
    '',
    '| step | seconds | samples/s | DDATA messages | payload MiB | B/sample |',
    '| --- | ---: | ---: | ---: | ---: | ---: |',
    `| encode (the profile alone) | ${f2(d.encodeS)} | ${int(BACKLOG / d.encodeS)} | ${int(d.messages)} | ${f1(d.bytes / 2 ** 20)} | ${f2(d.bytes / BACKLOG)} |`,
    d.brokerS !== undefined
      ? `| encode, publish QoS 0 and fence each batch through Mosquitto (${WINDOW} fences in flight) | ${f2(d.brokerS)} | ${int(BACKLOG / d.brokerS)} | ${int(d.messages)} | ${f1(d.bytes / 2 ** 20)} | ${f2(d.bytes / BACKLOG)} |`
      : `| through Mosquitto | n/a | ${d.note ?? ''} | | | |`,
    '',
    `The encoder's heap grew by at most ${f1(d.heapMiB)} MiB over the drain (each batch's messages are garbage once`,
    'counted). The backlog rows are made in memory here; reading them from the outbox is `uplink-drain`\'s measurement.',
    '',
  ].join('\n');
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  process.stdout.write(await run());
}
