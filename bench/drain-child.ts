/**
 * The drainer for bench/uplink-drain.ts, in its own process so its peak RSS is the gateway's drain path alone:
 * the real Outbox, MqttSession and Uplink, wired as src/gateway.ts wires them, with no sources running. Drains the
 * outbox in argv[2] (JSON: dir, url, maxSamples, inflight) to the broker and prints one JSON line of figures.
 */
import diagnostics from 'node:diagnostics_channel';
import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { pino } from 'pino';
import { configSchema } from '../src/config/schema.js';
// Not used here, loaded for its memory: the daemon drains with every stage's modules in memory.
import '../src/gateway.js';
import { Outbox } from '../src/outbox/index.js';
import { sessionOptions } from '../src/uplink/options.js';
import { MqttSession } from '../src/uplink/session.js';
import { Uplink } from '../src/uplink/uplink.js';

export interface DrainArgs {
  dir: string;
  url: string;
  maxSamples: number;
  inflight: number;
}

export interface DrainResult {
  samples: number;
  messages: number;
  seconds: number;
  /** User + system CPU seconds of the drainer over the same span. */
  cpuSeconds: number;
  payloadBytes: number;
  /** TCP bytes written and read by the MQTT client socket, connect to close. */
  wireOut: number;
  wireIn: number;
  rssStartMiB: number;
  peakRssMiB: number;
  /** Highest V8 heap (total, used) and off-heap (external: buffers, SQLite is not in it) seen, sampled every 50 ms. */
  peakHeapTotalMiB: number;
  peakHeapUsedMiB: number;
  peakExternalMiB: number;
  left: number;
}

function procStatus(field: 'VmRSS' | 'VmHWM'): number {
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

const sockets: Socket[] = [];
diagnostics.subscribe('net.client.socket', (m) => sockets.push((m as { socket: Socket }).socket));

const args = JSON.parse(process.argv[2] ?? '{}') as DrainArgs;
const peaks = { heapTotal: 0, heapUsed: 0, external: 0 };
const memWatch = setInterval(() => {
  const m = process.memoryUsage();
  peaks.heapTotal = Math.max(peaks.heapTotal, m.heapTotal);
  peaks.heapUsed = Math.max(peaks.heapUsed, m.heapUsed);
  peaks.external = Math.max(peaks.external, m.external);
}, 50);
const rssStartMiB = procStatus('VmRSS');
const logger = pino({ level: 'warn' }, pino.destination(2));
const config = configSchema.parse({
  gateway: { id: 'bench', dataDir: args.dir },
  uplink: { url: args.url, clientId: 'bench-drain', batch: { maxSamples: args.maxSamples }, inflight: args.inflight },
  buffer: { maxBytes: '1GiB' },
});
const outbox = Outbox.open({ dir: args.dir, ...config.buffer, logger });
const total = outbox.stats().samples;
const session = new MqttSession(sessionOptions(config), logger);

let payloadBytes = 0;
let messages = 0;
const publish = session.publish.bind(session);
session.publish = (topic, payload, qos, retain) => {
  if (topic.endsWith('/telemetry')) {
    payloadBytes += Buffer.byteLength(payload);
    messages++;
  }
  return publish(topic, payload, qos, retain);
};

let acked = 0;
let started = 0;
let cpuAtStart = process.cpuUsage();
let finish: () => void = () => {};
const done = new Promise<void>((resolve) => (finish = resolve));
const uplink = new Uplink({
  session,
  outbox,
  config: config.uplink!,
  gatewayId: config.gateway.id,
  logger,
  birth: () => ({
      version: 'bench',
      configHash: 'bench',
      epoch: outbox.epoch,
      points: outbox.series().map((s) => ({ index: s.id, device: s.device, point: s.point })),
  }),
  onPuback: (_ms, samples) => {
    acked += samples;
    if (acked >= total) finish();
  },
});
session.on('state', (state: string) => {
  if (state === 'connected' && started === 0) {
    started = performance.now();
    cpuAtStart = process.cpuUsage();
  }
});
uplink.start();
await done;
const seconds = (performance.now() - started) / 1000;
const cpu = process.cpuUsage(cpuAtStart);
const cpuSeconds = (cpu.user + cpu.system) / 1e6;
const wireOut = sockets.reduce((n, s) => n + s.bytesWritten, 0);
const wireIn = sockets.reduce((n, s) => n + s.bytesRead, 0);
clearInterval(memWatch);
await uplink.stop();
const left = outbox.stats().samples;
outbox.close();
const result: DrainResult = {
  samples: acked,
  messages,
  seconds,
  cpuSeconds,
  payloadBytes,
  wireOut,
  wireIn,
  rssStartMiB,
  peakRssMiB: procStatus('VmHWM'),
  peakHeapTotalMiB: peaks.heapTotal / 2 ** 20,
  peakHeapUsedMiB: peaks.heapUsed / 2 ** 20,
  peakExternalMiB: peaks.external / 2 ** 20,
  left,
};
process.stdout.write(`${JSON.stringify(result)}\n`);
