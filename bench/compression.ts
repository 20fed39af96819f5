/**
 * Compressed telemetry on a metered link: bytes per sample on the wire against batch size, for 100 points at
 * 1 Hz (bench/lib/metered-workload.ts), fieldgate's compact payload with uplink.compression none and deflate,
 * over MQTT 5 to Mosquitto, plain TCP and TLS. Bytes are counted by a TCP proxy between the gateway's uplink
 * (the real Uplink and MqttSession) and the broker, both ways, after the birth: PUBLISH, PUBACK and TLS records.
 * The batches are made at once (each full at batch seconds x 100 samples) so a run takes seconds, not the hours
 * it would take in real time; keepalive pings are then absent, see docs/metered.md. Also the codecs of node:zlib
 * on the same batches, payload bytes only, which is how deflate was chosen.
 * `node --import tsx bench/compression.ts` prints the tables.
 */
import { pathToFileURL } from 'node:url';
import { mkdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import zlib from 'node:zlib';
import { pino } from 'pino';
import { uplinkSchema } from '../src/config/schema.js';
import type { StoredEvent } from '../src/outbox/types.js';
import type { StoredRow } from '../src/uplink/profile.js';
import { encodeCompactSeries } from '../src/uplink/payload.js';
import { MqttSession } from '../src/uplink/session.js';
import { Uplink, type UplinkOutbox } from '../src/uplink/uplink.js';
import { makeTlsFiles, startMosquitto } from '../test/helpers/peers.js';
import { startCountingProxy } from './lib/counting-proxy.js';
import { f2, int } from './lib/format.js';
import { METERED_POINTS, meteredRows } from './lib/metered-workload.js';

const EPOCH = '3f9a0c41d27be856';
const GATEWAY = 'village-water';
const BATCH_SECONDS = [1, 2, 5, 10, 30, 60];
/** Simulated seconds of data per run: enough for 10 messages at the largest batch. */
const SECONDS = 600;

/** The outbox as the uplink sees it, in memory: row k has seq k + 1. */
class MemoryOutbox implements UplinkOutbox {
  readonly epoch = EPOCH;
  readonly rows: StoredRow[] = [];
  acked = 0;
  private listeners: Array<(seq: number) => void> = [];
  read(afterSeq: number, limit: number, beforeSeq?: number): StoredRow[] {
    const end = Math.min(this.rows.length, afterSeq + limit, beforeSeq === undefined ? Infinity : beforeSeq - 1);
    return this.rows.slice(afterSeq, Math.max(afterSeq, end));
  }
  readEvents(): StoredEvent[] {
    return [];
  }
  maxSeq(): number | null {
    return this.rows.length || null;
  }
  ack(ranges: ReadonlyArray<readonly [number, number]>): number {
    let n = 0;
    for (const [a, b] of ranges) n += b - a + 1;
    this.acked += n;
    return n;
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
    return Array.from({ length: METERED_POINTS }, (_, i) => ({ id: i + 1 }));
  }
  commit(rows: StoredRow[]): void {
    this.rows.push(...rows);
    for (const l of this.listeners) l(this.rows.length);
  }
}

export interface WireRun {
  samples: number;
  messages: number;
  up: number;
  down: number;
  /** Connect and birth, before the data. */
  setup: number;
  /** The whole run, connect to disconnect: by the proxy, and by the uplink's own counters (stats.bytes). */
  wireTotal?: number;
  counted?: number;
}

const until = async (what: string, check: () => boolean, timeoutMs = 60_000) => {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
};

/** One run: SECONDS of the workload through a real session, batches of batchS seconds, bytes counted by the proxy. */
export async function wireRun(o: { brokerUrl: string; batchS: number; compression: 'none' | 'deflate'; ca?: Buffer; seconds?: number }): Promise<WireRun> {
  const target = new URL(o.brokerUrl);
  const proxy = await startCountingProxy({ host: target.hostname, port: Number(target.port) });
  const tls = target.protocol === 'mqtts:';
  const url = `${tls ? 'mqtts' : 'mqtt'}://127.0.0.1:${proxy.port}`;
  const config = uplinkSchema.parse({ url, compression: o.compression, batch: { maxSamples: o.batchS * METERED_POINTS, maxDelayMs: 600_000 }, inflight: 16 });
  const logger = pino({ level: process.env.BENCH_LOG ?? 'silent' });
  const session = new MqttSession({
    url, clientId: `bench-${o.compression}-${o.batchS}`, ca: o.ca, insecure: false, protocolVersion: 5, keepaliveS: 300,
    connectTimeoutMs: 5000, reconnectMinMs: 500, reconnectMaxMs: 2000, will: { topic: `fieldgate/${GATEWAY}/status`, payload: '{"v":1,"state":"offline","reason":"lost"}' },
  }, logger);
  const outbox = new MemoryOutbox();
  const uplink = new Uplink({
    session, outbox, config, gatewayId: GATEWAY, logger,
    birth: () => ({ version: '0.1.0', configHash: 'a1b2c3d4e5f6', epoch: EPOCH, points: Array.from({ length: METERED_POINTS }, (_, i) => ({ index: i + 1, device: `d${Math.floor(i / 10)}`, point: `p${i}`, type: 'float64' })) }),
  });
  uplink.start();
  try {
    await until('connected', () => session.connected);
    // The birth's PUBACK.
    await new Promise((r) => setTimeout(r, 300));
    const setup = proxy.up + proxy.down;
    proxy.reset();
    const seconds = o.seconds ?? SECONDS;
    const rows = meteredRows(seconds);
    const per = o.batchS * METERED_POINTS;
    for (let i = 0; i < rows.length; i += per) {
      outbox.commit(rows.slice(i, i + per));
      // Let the window drain a little, as a real link would between batches.
      if (uplink.stats.inflight >= 8) await until('window', () => uplink.stats.inflight < 8);
    }
    await until('every sample acknowledged', () => outbox.acked >= rows.length && uplink.stats.inflight === 0);
    await new Promise((r) => setTimeout(r, 100));
    const result: WireRun = { samples: rows.length, messages: uplink.stats.publishedMessages, up: proxy.up, down: proxy.down, setup };
    await uplink.stop();
    await new Promise((r) => setTimeout(r, 100));
    return { ...result, wireTotal: setup + proxy.up + proxy.down, counted: uplink.stats.bytes?.total };
  } finally {
    await uplink.stop();
    await proxy.close();
  }
}

function codecTable(): string[] {
  const rows = meteredRows(120);
  const codecs: Record<string, (b: Buffer) => Buffer> = {
    'deflate (zlib) 6': (b) => zlib.deflateSync(b, { level: 6 }),
    'deflate (zlib) 9': (b) => zlib.deflateSync(b, { level: 9 }),
    'deflate-raw 6': (b) => zlib.deflateRawSync(b, { level: 6 }),
    'gzip 6': (b) => zlib.gzipSync(b, { level: 6 }),
    'brotli 1': (b) => zlib.brotliCompressSync(b, { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 1 } }),
    'brotli 4': (b) => zlib.brotliCompressSync(b, { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 4 } }),
    'brotli 5': (b) => zlib.brotliCompressSync(b, { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 5 } }),
  };
  const names = ['none', ...Object.keys(codecs)];
  const out = [`| batch | ${names.join(' | ')} |`, `| ---: | ${names.map(() => '---:').join(' | ')} |`];
  const cpu = new Map<string, number>();
  let cpuSamples = 0;
  for (const b of BATCH_SECONDS) {
    const n = b * METERED_POINTS;
    const count = Math.floor(rows.length / n);
    const bytes = new Map<string, number>();
    for (let m = 0; m < count; m++) {
      const text = Buffer.from(encodeCompactSeries(GATEWAY, EPOCH, rows, m * n, (m + 1) * n));
      bytes.set('none', (bytes.get('none') ?? 0) + text.length);
      for (const [k, f] of Object.entries(codecs)) {
        const t = process.hrtime.bigint();
        bytes.set(k, (bytes.get(k) ?? 0) + f(text).length);
        if (b === 10) cpu.set(k, (cpu.get(k) ?? 0) + Number(process.hrtime.bigint() - t) / 1000);
      }
      if (b === 10) cpuSamples += n;
    }
    out.push(`| ${b} s | ${names.map((k) => f2(bytes.get(k)! / (count * n))).join(' | ')} |`);
  }
  out.push(`| CPU µs/sample (10 s) | - | ${Object.keys(codecs).map((k) => f2(cpu.get(k)! / cpuSamples)).join(' | ')} |`);
  return out;
}

export async function run(): Promise<string> {
  const tlsDir = join(tmpdir(), `fieldgate-bench-tls-${process.pid}`);
  mkdirSync(tlsDir, { recursive: true });
  const tlsFiles = await makeTlsFiles(tlsDir);
  const plain = await startMosquitto();
  const tls = await startMosquitto({ tls: { caFile: tlsFiles.caFile, certFile: tlsFiles.serverCertFile, keyFile: tlsFiles.serverKeyFile } });
  const ca = readFileSync(tlsFiles.caFile);
  const lines = [
    `${METERED_POINTS} points at 1 Hz (bench/lib/metered-workload.ts: 50 loops through scale and range, 20 float32, 15 counters, 15 contacts),`,
    `${SECONDS} s of data per run, MQTT 5 QoS 1 to Mosquitto through a counting TCP proxy; bytes both ways (PUBLISH, PUBACK, TLS`,
    'records) per sample, after the connect and the birth. IP/TCP headers are not in these figures (see docs/metered.md).',
    '',
    '| batch | messages | none, TCP B/sample | deflate, TCP B/sample | none, TLS B/sample | deflate, TLS B/sample | deflate TLS: MB a month |',
    '| ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  try {
    for (const b of BATCH_SECONDS) {
      process.stderr.write(`  batch ${b} s...\n`);
      const r = {
        none: await wireRun({ brokerUrl: plain.url, batchS: b, compression: 'none' }),
        deflate: await wireRun({ brokerUrl: plain.url, batchS: b, compression: 'deflate' }),
        noneTls: await wireRun({ brokerUrl: tls.url, batchS: b, compression: 'none', ca }),
        deflateTls: await wireRun({ brokerUrl: tls.url, batchS: b, compression: 'deflate', ca }),
      };
      const per = (w: WireRun) => (w.up + w.down) / w.samples;
      const month = (per(r.deflateTls) * METERED_POINTS * 86_400 * 30) / 1e6;
      lines.push(`| ${b} s | ${int(r.deflate.messages)} | ${f2(per(r.none))} | ${f2(per(r.deflate))} | ${f2(per(r.noneTls))} | ${f2(per(r.deflateTls))} | ${f2(month)} |`);
    }
  } finally {
    await plain.stop();
    await tls.stop();
  }
  lines.push('', 'The codecs of node:zlib on the same compact batches, payload bytes per sample (levels are zlib levels and brotli qualities):', '', ...codecTable(), '');
  return lines.join('\n');
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  process.stdout.write(`${await run()}\n`);
}
