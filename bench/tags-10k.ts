/**
 * 10,000 tags at 1 Hz: the synthetic map grown to 20 units of 500 points (the planner's requests, one Modbus TCP
 * connection per unit, spread over 4 simulator processes) polled by `fieldgate run` as the service runs it, to
 * Mosquitto and a decoding QoS 1 subscriber, for FIELDGATE_BENCH_TAGS_S seconds (120; 600 for the 10 minutes of the
 * target): RSS over time, CPU, latency, loss, the birth's size, the start. `npm run bench -- tags-10k`.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import { startBroker } from './lib/broker.js';
import { shipped } from './lib/bundle.js';
import { f1, int, load, seconds } from './lib/format.js';
import { launch, measure } from './lib/phase.js';
import { startSim, type Sim } from './lib/sim.js';
import { configSchema } from '../src/config/schema.js';
import { compileDevice } from '../src/sources/modbus/device.js';
import { syntheticDevices } from './modbus-tcp.js';
import { TAGS_10K } from './lib/workload.js';

const { devices: DEVICES, pointsPerDevice: POINTS_PER_DEVICE, sims: SIMS } = TAGS_10K;
const STEADY_S = seconds('FIELDGATE_BENCH_TAGS_S', 120);
const WARMUP_MS = 10_000;
/** RSS figures reported: one per tenth of the window. */
const RSS_POINTS = 10;

function plan(): { points: number; requests: number } {
  const devices = syntheticDevices('sim', 1000, DEVICES, POINTS_PER_DEVICE);
  const cfg = configSchema.parse({ gateway: { id: 'plan' }, buses: [{ id: 'sim', transport: 'tcp', host: '127.0.0.1' }], devices });
  const compiled = cfg.devices.map(compileDevice);
  return { points: compiled.reduce((n, d) => n + d.requests.reduce((m, r) => m + r.points.length, 0), 0), requests: compiled.reduce((n, d) => n + d.requests.length, 0) };
}

export async function run(): Promise<string> {
  const before = load();
  const { points, requests } = plan();
  const broker = await startBroker();
  const sims: Sim[] = [];
  for (let i = 0; i < SIMS; i++) sims.push(await startSim('synthetic'));
  const startedAt = Date.now();
  process.stderr.write(`  ${int(points)} points for ${STEADY_S} s...\n`);
  try {
    const sys = await launch('fieldgate', {
      sim: sims[0]!,
      moreSims: sims.slice(1),
      broker,
      pollIntervalMs: 1000,
      scale: { devices: DEVICES, pointsPerDevice: POINTS_PER_DEVICE },
      firstValuesMs: 120_000,
    });
    const firstValuesS = (Date.now() - startedAt) / 1000;
    await sleep(WARMUP_MS);
    const w = await measure([sys], STEADY_S, Object.fromEntries(sims.map((s, i) => [`sim${i + 1}`, s.pid])));
    await sys.sub.settle(2000, 20_000);
    const m = w.systems[0]!;
    const lost = sys.sub.lost();
    const dups = sys.sub.duplicates;
    const birth = sys.sub.birthBytes;
    const rssSeries = (() => {
      const r = m.rssSeries;
      const step = Math.max(1, Math.floor(r.length / RSS_POINTS));
      const out: string[] = [];
      for (let i = 0; i < r.length; i += step) out.push(`${Math.round(i)} s: ${f1(r[i])}`);
      return out.join(', ');
    })();
    await sys.stop();
    const after = load();
    const simCpu = Object.values(w.others).reduce((a, b) => a + b, 0);
    const [a, b] = m.rssHalves;
    return [
      `\`fieldgate run -c FILE\` (${shipped().label}) polling ${int(points)} points at pollIntervalMs 1000: the synthetic map of`,
      `\`modbus-tcp\` grown to ${DEVICES} units of ${POINTS_PER_DEVICE} points (${requests} requests a cycle in the planner's plan), one Modbus TCP connection per`,
      `unit, spread over ${SIMS} simulator processes; Mosquitto and a decoding QoS 1 subscriber as in \`e2e\`. ${int(m.seconds)} s measured after`,
      `${WARMUP_MS / 1000} s of warm-up (FIELDGATE_BENCH_TAGS_S=600 for the 10 minutes of the target). Load average before: ${before}; after: ${after}.`,
      '',
      '| measure | value |',
      '| --- | ---: |',
      `| samples/s delivered | ${int(m.delivered / m.seconds)} |`,
      `| samples lost / duplicated | ${lost} / ${dups} |`,
      `| latency p50 / p99 | ${int(m.p50)} / ${int(m.p99)} ms |`,
      `| gateway CPU | ${f1(m.cpuPct)} % of one core (simulators ${f1(simCpu)} % together) |`,
      `| RSS, mean of the first half / second half | ${f1(a)} / ${f1(b)} MiB (${b >= a ? '+' : ''}${f1(((b - a) / a) * 100)} %) |`,
      `| RSS, largest sample / VmHWM | ${f1(m.rssMax)} / ${f1(m.peakRss)} MiB |`,
      `| anonymous RSS at the end | ${f1(m.anonRss)} MiB |`,
      `| birth (retained status with the point dictionary) | ${int(birth)} bytes |`,
      `| start to the first values at the subscriber | ${f1(firstValuesS)} s |`,
      '',
      `RSS over the window (VmRSS, MiB): ${rssSeries}.`,
      '',
    ].join('\n');
  } finally {
    for (const s of sims) await s.stop();
    await broker.stop();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  process.stdout.write(await run());
}
