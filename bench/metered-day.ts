/**
 * A simulated day of the shipped village configuration (config/village-water.yaml) on a metered link: the
 * village-water simulator on a virtual clock, read point by point at each device's poll interval, the
 * gateway's own processing (scale, range, NAMUR, deadbands, maxIntervalS, aggregates, alarms) and the real
 * Uplink and MqttSession, MQTT 5 over TLS to Mosquitto through a counting TCP proxy. The uplink runs on the
 * same virtual clock (batch delays, budget checks); each publish waits for its real PUBACK before time moves
 * on, so a day takes seconds of machine time. Bytes are the proxy's (TCP payload both ways, TLS records and
 * all) against the gateway's own counters (stats.bytes); per cause from the gateway's counters.
 * Keepalive pings cannot happen in virtual time: they are counted from the day's PUBACK times the way mqtt.js
 * schedules them (a PINGREQ after keepaliveS without a PUBACK or PINGRESP) and priced at the bytes of a ping
 * measured on the wire here. Also measured: one reconnect with and without the birth, and topic aliases.
 * `npm run bench -- metered-day` prints the tables; `-- --write` puts them in docs/BENCHMARKS.md.
 */
import { pathToFileURL } from 'node:url';
import { mkdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { pino } from 'pino';
import { uplinkSchema, type Config, type DeviceConfig } from '../src/config/schema.js';
import { resolvedType } from '../src/config/points.js';
import { pointWidth } from '../src/config/modbus-model.js';
import type { StoredEvent } from '../src/events.js';
import { Processor } from '../src/processing/index.js';
import type { FlaggedSample } from '../src/processing/types.js';
import { Simulator } from '../src/sim/simulator.js';
import { createScenario } from '../src/sim/scenarios/index.js';
import type { Table } from '../src/sim/registers.js';
import { compileDecoder } from '../src/sources/modbus/decode.js';
import { CAUSES, type ByCause } from '../src/uplink/budget.js';
import type { StoredRow } from '../src/uplink/profile.js';
import { fieldgateProfile } from '../src/uplink/profiles/fieldgate/index.js';
import { MqttSession } from '../src/uplink/session.js';
import { Uplink, type UplinkOutbox } from '../src/uplink/uplink.js';
import { makeTlsFiles, startMosquitto } from '../test/helpers/peers.js';
import { ManualTimers } from '../test/helpers/manual-timers.js';
import { startCountingProxy } from './lib/counting-proxy.js';
import { f2, int } from './lib/format.js';
import { birthContext, villageConfig } from './lib/village-birth.js';

const EPOCH = '5e1f0c0a9d3b7a21';
/** 1 June 2026, 00:00 UTC: a day with both demand peaks. */
const T0 = Date.UTC(2026, 5, 1);
const DAY_MS = 86_400_000;
const MONTH_DAYS = 30;
const KEEPALIVES = [30, 60, 120, 300];
/** IPv4 + TCP with timestamps, per segment. */
const IP_TCP = 52;

const TABLE: Record<number, Table> = { 1: 'coil', 2: 'discrete', 3: 'holding', 4: 'input' };

class DayOutbox implements UplinkOutbox {
  readonly epoch = EPOCH;
  private rows: StoredRow[] = [];
  private events: StoredEvent[] = [];
  private seq = 0;
  private listeners: Array<(seq: number) => void> = [];
  constructor(private readonly dictionary: Map<string, number>) {}
  read(afterSeq: number, limit: number, beforeSeq?: number): StoredRow[] {
    const out: StoredRow[] = [];
    for (const r of this.rows) {
      if (r.seq <= afterSeq) continue;
      if (beforeSeq !== undefined && r.seq >= beforeSeq) break;
      out.push(r);
      if (out.length >= limit) break;
    }
    return out;
  }
  readEvents(afterSeq: number, limit: number): StoredEvent[] {
    return this.events.filter((e) => e.seq > afterSeq).slice(0, limit);
  }
  maxSeq(): number | null {
    return this.seq || null;
  }
  ack(ranges: ReadonlyArray<readonly [number, number]>): number {
    const gone = (s: number) => ranges.some(([a, b]) => s >= a && s <= b);
    this.rows = this.rows.filter((r) => !gone(r.seq));
    this.events = this.events.filter((e) => !gone(e.seq));
    return 0;
  }
  droppedRanges() {
    return [];
  }
  markDroppedReported(): void {}
  onCommit(listener: (seq: number) => void): () => void {
    this.listeners.push(listener);
    return () => {};
  }
  series() {
    return [...this.dictionary.values()].map((id) => ({ id }));
  }
  commit(samples: FlaggedSample[], alarms: StoredEvent['event'][], ts: number): void {
    for (const s of samples) {
      const series = this.dictionary.get(`${s.device}/${s.point}`);
      if (series === undefined) continue;
      this.rows.push({ seq: ++this.seq, series, device: s.device, point: s.point, ts: s.ts, value: s.value, quality: s.quality, ...(s.reason ? { reason: s.reason } : {}), flags: s.flags ?? 0 });
    }
    for (const event of alarms) this.events.push({ seq: ++this.seq, ts, event });
    if (samples.length + alarms.length > 0) for (const l of this.listeners) l(this.seq);
  }
}

/** The village configuration at another poll interval and deadband (factor of the configured ones; 0: none, every poll sent). */
export function variant(base: Config, pollS: number, deadband: number): Config {
  const devices = base.devices.map((d) => ({
    ...d,
    pollIntervalMs: pollS * 1000,
    points: d.points.map((p) => {
      if (p.deadband === undefined) return p;
      if (deadband === 0) {
        const { deadband: _d, maxIntervalS: _m, ...rest } = p;
        return rest;
      }
      const db = typeof p.deadband === 'string' ? `${Number.parseFloat(p.deadband) * deadband}%` : p.deadband * deadband;
      return { ...p, deadband: db };
    }),
  })) as DeviceConfig[];
  return { ...base, devices };
}

export interface DayRun {
  label: string;
  samples: number;
  events: number;
  messages: number;
  /** TCP payload both ways by the proxy, and the gateway's own count of the same run. */
  wire: number;
  counted: number;
  byCause: ByCause;
  /** Virtual times of the PUBACKs: where keepalive pings fall. */
  pubacks: number[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(what: string, check: () => boolean, timeoutMs = 60_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setImmediate(r));
  }
}

/** One simulated day of `config` through the real uplink, MQTT 5 over TLS via a counting proxy. */
export async function dayRun(o: { brokerUrl: string; ca: Buffer; config: Config; label: string; hours?: number; topicAliases?: boolean }): Promise<DayRun> {
  const config = o.config;
  const target = new URL(o.brokerUrl);
  const proxy = await startCountingProxy({ host: target.hostname, port: Number(target.port) });
  const url = `mqtts://127.0.0.1:${proxy.port}`;
  const timers = new ManualTimers(T0);
  const ctx = birthContext(config, EPOCH);
  const dictionary = new Map(ctx.points.map((p) => [`${p.device}/${p.point}`, p.index]));
  const outbox = new DayOutbox(dictionary);
  const logger = pino({ level: process.env.BENCH_LOG ?? 'silent' });
  // The shipped file has no uplink: the defaults (batch 1 s, compact, no compression) with the proxy's URL.
  const uplinkConfig = uplinkSchema.parse({ ...(config.uplink ?? {}), url });
  const profile = fieldgateProfile({ gatewayId: config.gateway.id, topicPrefix: uplinkConfig.topicPrefix, format: uplinkConfig.format, compression: uplinkConfig.compression });
  const session = new MqttSession({
    url, clientId: `fieldgate-${config.gateway.id}-${o.label}`, ca: o.ca, insecure: false, protocolVersion: 5,
    // No ping falls in the few seconds of machine time a day takes; they are counted from the PUBACKs instead.
    keepaliveS: 3600, connectTimeoutMs: 10_000, reconnectMinMs: 500, reconnectMaxMs: 2000, willDelayS: 60,
    will: () => profile.will(),
  }, logger);
  const pubacks: number[] = [];
  const uplink = new Uplink({ session, outbox, config: uplinkConfig, gatewayId: config.gateway.id, logger, profile, timers, birth: () => ctx, onPuback: () => pubacks.push(timers.now()) });
  const sim = new Simulator(createScenario('village-water', { seed: 3 }), () => timers.now());
  const processor = new Processor(config.devices, { monotonic: () => timers.now() - T0 });
  const reads = config.devices.map((d) => ({
    device: d,
    points: d.points.map((p) => {
      const type = resolvedType(p);
      return { p, table: TABLE[p.fc]!, width: pointWidth(p.fc, type, p.length), decode: compileDecoder({ fc: p.fc, type, order: p.order, length: p.length, scale: p.scale, offset: p.offset }) };
    }),
  }));
  let samples = 0;
  let events = 0;
  uplink.start();
  try {
    await until('connected', () => session.connected);
    await until('the birth', () => (uplink.stats.births?.sent ?? 0) > 0 && uplink.stats.inflight === 0);
    await sleep(50);
    const stepMs = Math.min(...config.devices.map((d) => d.pollIntervalMs ?? 5000));
    const end = T0 + (o.hours ?? 24) * 3_600_000;
    const next = new Map(config.devices.map((d) => [d.id, T0]));
    while (timers.now() < end) {
      const now = timers.now();
      const got: FlaggedSample[] = [];
      for (const r of reads) {
        if (next.get(r.device.id)! > now) continue;
        next.set(r.device.id, now + (r.device.pollIntervalMs ?? 5000));
        for (const q of r.points) {
          const reply = sim.read((r.device as { unit?: number }).unit ?? 1, q.table, (q.p as { address?: number }).address ?? 0, q.width);
          if (reply.kind !== 'ok') continue;
          const words = q.table === 'coil' || q.table === 'discrete' ? reply.values.map((v) => v !== 0) : reply.values;
          got.push({ device: r.device.id, point: q.p.id, ts: now, value: q.decode(words, 0), quality: 'good' });
        }
      }
      const a = processor.process(got);
      const b = processor.tick(now);
      const out = [...a.samples, ...b.samples];
      const alarms = [...a.alarms, ...b.alarms].map((alarm) => ({ kind: 'alarm' as const, alarm }));
      samples += out.length;
      events += alarms.length;
      outbox.commit(out, alarms, now);
      await timers.advance(stepMs);
      if (uplink.stats.inflight > 0) await until('the PUBACKs', () => uplink.stats.inflight === 0);
    }
    await uplink.drain(10_000);
    await until('everything acknowledged', () => uplink.stats.inflight === 0);
    await uplink.stop();
    await sleep(100);
    const b = uplink.stats.bytes!;
    const byCause = Object.fromEntries(CAUSES.map((c) => [c, b.sent[c] + b.received[c]])) as ByCause;
    return { label: o.label, samples, events, messages: uplink.stats.publishedMessages, wire: proxy.up + proxy.down, counted: b.total, byCause, pubacks };
  } finally {
    await uplink.stop();
    await proxy.close();
  }
}

/** Pings in a day at keepalive k: one after every k seconds without a PUBACK (mqtt.js reschedules on each). */
export function pingsInDay(pubacks: readonly number[], k: number, hours = 24): number {
  const times = [T0, ...pubacks, T0 + hours * 3_600_000];
  let n = 0;
  for (let i = 1; i < times.length; i++) n += Math.floor((times[i]! - times[i - 1]!) / (k * 1000));
  return n;
}

/** A PINGREQ and its PINGRESP over TLS, measured through the proxy: bytes of TCP payload per ping. */
export async function pingBytes(brokerUrl: string, ca: Buffer): Promise<{ perPing: number; pings: number }> {
  const target = new URL(brokerUrl);
  const proxy = await startCountingProxy({ host: target.hostname, port: Number(target.port) });
  const client = mqtt.connect(`mqtts://127.0.0.1:${proxy.port}`, { protocolVersion: 5, keepalive: 2, ca, reconnectPeriod: 0, clientId: 'bench-ping' });
  let pings = 0;
  client.on('packetreceive', (p) => {
    if (p.cmd === 'pingresp') pings++;
  });
  await new Promise((r) => client.once('connect', r));
  await sleep(300);
  proxy.reset();
  const start = pings;
  await until('five pings', () => pings - start >= 5, 30_000);
  const bytes = proxy.up + proxy.down;
  const n = pings - start;
  await client.endAsync(true);
  await proxy.close();
  return { perPing: bytes / n, pings: n };
}

/** One reconnect of the village gateway (TLS resumed): bytes with the birth sent again, and with the birth kept. */
export async function reconnectBytes(brokerUrl: string, ca: Buffer): Promise<{ withBirth: number; kept: number; birthPublish: number }> {
  const config = villageConfig();
  const out = { withBirth: 0, kept: 0, birthPublish: 0 };
  for (const keep of [false, true]) {
    const target = new URL(brokerUrl);
    const proxy = await startCountingProxy({ host: target.hostname, port: Number(target.port) });
    const url = `mqtts://127.0.0.1:${proxy.port}`;
    const ctx = birthContext(config, EPOCH);
    const profile = fieldgateProfile({ gatewayId: config.gateway.id, topicPrefix: 'fieldgate', format: 'compact' });
    const logger = pino({ level: 'silent' });
    const session = new MqttSession({
      url, clientId: `bench-reconnect-${keep}`, ca, insecure: false, protocolVersion: 5, keepaliveS: 3600, connectTimeoutMs: 10_000,
      reconnectMinMs: 100, reconnectMaxMs: 200, willDelayS: keep ? 60 : 0, will: () => profile.will(),
    }, logger);
    await session.subscribe('fieldgate/village-water/cmd/write', 1);
    const outbox = new DayOutbox(new Map(ctx.points.map((p) => [`${p.device}/${p.point}`, p.index])));
    const uplink = new Uplink({ session, outbox, config: uplinkSchema.parse({ url }), gatewayId: config.gateway.id, logger, profile, birth: () => ctx });
    uplink.start();
    await until('connected', () => session.connected && uplink.stats.inflight === 0 && (uplink.stats.births?.sent ?? 0) === 1);
    await sleep(300);
    const first = proxy.up + proxy.down;
    proxy.reset();
    // The link resets: the socket closes under the session, which redials at once.
    (session as unknown as { client: { stream: { destroy(): void } } }).client.stream.destroy();
    const generation = session.generation;
    await until('the reconnect', () => session.connected && session.generation > generation);
    await sleep(500);
    const again = proxy.up + proxy.down;
    if (keep) out.kept = again;
    else out.withBirth = again;
    if (!keep) out.birthPublish = first;
    await uplink.stop();
    await proxy.close();
  }
  return out;
}

const mb = (bytes: number) => f2((bytes * MONTH_DAYS) / 1e6);

export async function run(): Promise<string> {
  const tlsDir = join(tmpdir(), `fieldgate-bench-day-${process.pid}`);
  mkdirSync(tlsDir, { recursive: true });
  const tlsFiles = await makeTlsFiles(tlsDir);
  const broker = await startMosquitto({ tls: { caFile: tlsFiles.caFile, certFile: tlsFiles.serverCertFile, keyFile: tlsFiles.serverKeyFile } });
  const ca = readFileSync(tlsFiles.caFile);
  const base = villageConfig();
  const lines: string[] = [];
  try {
    const ping = await pingBytes(broker.url, ca);
    const reconnect = await reconnectBytes(broker.url, ca);
    const perPingWire = ping.perPing + 3 * IP_TCP;
    const runs: Array<{ pollS: number; deadband: number; r: DayRun }> = [];
    for (const [pollS, deadband] of [[5, 1], [5, 0], [5, 0.5], [5, 2], [15, 1], [60, 1]] as const) {
      process.stderr.write(`  day at poll ${pollS} s, deadband x${deadband}...\n`);
      runs.push({ pollS, deadband, r: await dayRun({ brokerUrl: broker.url, ca, config: variant(base, pollS, deadband), label: `p${pollS}-d${deadband}` }) });
    }
    const shipped = runs[0]!.r;
    lines.push(
      `The shipped village configuration (${base.devices.length} devices, ${base.devices.reduce((n, d) => n + d.points.length, 0)} points, aggregates and alarms) for a simulated day (1 June, both demand`,
      'peaks), MQTT 5 QoS 1 over TLS to Mosquitto through a counting TCP proxy; the gateway\'s processing and uplink on a virtual clock.',
      'Bytes are TCP payload both ways (TLS records and all); IP/TCP headers not included.',
      '',
      `Proxy vs the gateway's own counters, shipped configuration: ${int(shipped.wire)} vs ${int(shipped.counted)} bytes (${f2((100 * (shipped.counted - shipped.wire)) / shipped.wire)} %).`,
      '',
      '| cause (gateway counters, shipped configuration) | bytes a day | MB a month |',
      '| --- | ---: | ---: |',
      ...CAUSES.map((c) => `| ${c} | ${int(shipped.byCause[c])} | ${mb(shipped.byCause[c])} |`),
      '',
      `A keepalive ping (PINGREQ + PINGRESP) over TLS: ${f2(ping.perPing)} bytes of TCP payload (${ping.pings} measured), about ${int(perPingWire)} with the IP/TCP headers of its`,
      'three segments (the ping, the answer, the ACK). Pings fall only where no PUBACK came for keepaliveS seconds; counted from the day\'s PUBACK times:',
      '',
      `| poll | deadband | samples | messages | proxy bytes a day | counters a day | diff % | MB a month (no pings) | ${KEEPALIVES.map((k) => `+ pings at ${k} s`).join(' | ')} |`,
      `| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ${KEEPALIVES.map(() => '---:').join(' | ')} |`,
      ...runs.map(({ pollS, deadband, r }) => `| ${pollS} s | ${deadband === 0 ? 'none' : `x${deadband}`} | ${int(r.samples)} | ${int(r.messages)} | ${int(r.wire)} | ${int(r.counted)} | ${f2((100 * (r.counted - r.wire)) / r.wire)} | ${mb(r.wire)} | ${KEEPALIVES.map((k) => mb(r.wire + pingsInDay(r.pubacks, k) * ping.perPing)).join(' | ')} |`),
      '',
      `Idle link, pings only: ${KEEPALIVES.map((k) => `${k} s: ${f2((ping.perPing * 86_400 * MONTH_DAYS) / k / 1e6)} MB (${f2((perPingWire * 86_400 * MONTH_DAYS) / k / 1e6)} with IP/TCP)`).join('; ')} a month.`,
      '',
      `One reconnect (TLS session resumed, CONNECT, SUBSCRIBE, birth): ${int(reconnect.withBirth)} bytes with the birth sent again, ${int(reconnect.kept)} with the retained birth kept (saves ${int(reconnect.withBirth - reconnect.kept)}).`,
      '',
    );
  } finally {
    await broker.stop();
  }
  return lines.join('\n');
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  process.stdout.write(`${await run()}\n`);
}
