/**
 * Where the gateway's memory goes at 1,000 points at 1 Hz (and at 10,000): `fieldgate run` as the service runs it,
 * its /proc/PID/smaps summed by kind of mapping and V8's heap as the process itself sees it (bench/lib/memstat.ts),
 * with the status page on (the default) and off. `npm run bench -- memory`; FIELDGATE_BENCH_MEMORY_S sets how long
 * each gateway runs before it is read (30 s).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import { startBroker } from './lib/broker.js';
import { shipped } from './lib/bundle.js';
import { f1, int, load, seconds } from './lib/format.js';
import { smapsBreakdown, v8Stats, type SmapsPart, type V8Stat } from './lib/memstat.js';
import { launch } from './lib/phase.js';
import { anonRssMiB, rssMiB } from './lib/proc.js';
import { startSim, type Sim } from './lib/sim.js';
import { TAGS_10K } from './lib/workload.js';

const RUN_S = seconds('FIELDGATE_BENCH_MEMORY_S', 30);
const MIB = 1024 * 1024;

interface Reading {
  label: string;
  rss: number;
  anon: number;
  smaps: SmapsPart[];
  v8?: V8Stat;
}

async function reading(label: string, points: 1000 | 10_000, statusPage: boolean): Promise<Reading> {
  const broker = await startBroker();
  const sims: Sim[] = [];
  for (let i = 0; i < (points === 1000 ? 1 : TAGS_10K.sims); i++) sims.push(await startSim('synthetic'));
  const v8 = v8Stats();
  try {
    const sys = await launch('fieldgate', {
      sim: sims[0]!,
      moreSims: sims.slice(1),
      broker,
      pollIntervalMs: 1000,
      statusPage,
      nodeArgs: v8.nodeArgs,
      ...(points === 10_000 ? { scale: { devices: TAGS_10K.devices, pointsPerDevice: TAGS_10K.pointsPerDevice }, firstValuesMs: 120_000 } : {}),
    });
    await sleep(RUN_S * 1000);
    const r: Reading = { label, rss: rssMiB(sys.pid), anon: anonRssMiB(sys.pid), smaps: smapsBreakdown(sys.pid), v8: v8.read() };
    await sys.stop();
    return r;
  } finally {
    v8.remove();
    for (const s of sims) await s.stop();
    await broker.stop();
  }
}

const mib = (kib: number) => f1(kib / 1024);

export async function run(): Promise<string> {
  const before = load();
  const readings: Reading[] = [];
  for (const [label, points, page] of [
    ['1,000 points, status page on (default)', 1000, true],
    ['1,000 points, status page off', 1000, false],
    ['10,000 points, status page on (default)', 10_000, true],
    ['10,000 points, status page off', 10_000, false],
  ] as const) {
    process.stderr.write(`  ${label}...\n`);
    readings.push(await reading(label, points, page));
  }
  const after = load();
  const kinds = [...new Set(readings.flatMap((r) => r.smaps.map((p) => p.label)))];
  const part = (r: Reading, k: string) => r.smaps.find((p) => p.label === k);
  const spaces = [...new Set(readings.flatMap((r) => Object.keys(r.v8?.spaces ?? {})))];
  const v8row = (name: string, f: (v: V8Stat) => number) => `| ${name} | ${readings.map((r) => (r.v8 ? f1(f(r.v8) / MIB) : 'n/a')).join(' | ')} |`;
  return [
    `\`fieldgate run -c FILE\` (${shipped().label}) polling the synthetic map at pollIntervalMs 1000 (1,000 points: 4 units, one`,
    `simulator; 10,000: ${TAGS_10K.devices} units of ${TAGS_10K.pointsPerDevice} over ${TAGS_10K.sims} simulators, as in \`tags-10k\`), publishing to Mosquitto with QoS 1 to a decoding`,
    `subscriber; each gateway read ${RUN_S} s after its first values. Memory by kind of mapping is /proc/PID/smaps (Rss, of it Anonymous),`,
    "summed by what each mapping is; V8's figures come from inside the process (process.memoryUsage and",
    'v8.getHeapSpaceStatistics, written by a module preloaded with `--import`; the gateway is unchanged). Load average before:',
    `${before}; after: ${after}.`,
    '',
    `| MiB | ${readings.map((r) => r.label).join(' | ')} |`,
    `| --- | ${readings.map(() => '---:').join(' | ')} |`,
    `| VmRSS | ${readings.map((r) => f1(r.rss)).join(' | ')} |`,
    `| of it anonymous (RssAnon) | ${readings.map((r) => f1(r.anon)).join(' | ')} |`,
    ...kinds.map((k) => `| ${k} | ${readings.map((r) => { const p = part(r, k); return p ? `${mib(p.rssKiB)}${p.anonKiB > 0 && p.anonKiB < p.rssKiB ? ` (${mib(p.anonKiB)} anon)` : ''}` : '0'; }).join(' | ')} |`),
    v8row("V8 heap: reserved (heapTotal)", (v) => v.heapTotal),
    v8row('V8 heap: used (heapUsed)', (v) => v.heapUsed),
    ...spaces.map((s) => v8row(`V8 ${s}: used / size`, (v) => v.spaces[s]?.used ?? 0).replace(/\| ([\d.]+|n\/a)/g, (m) => m) ),
    v8row('external (buffers, addons)', (v) => v.external),
    v8row('of it ArrayBuffers', (v) => v.arrayBuffers),
    '',
    `V8 spaces, size in MiB: ${readings.map((r) => `${r.label}: ${Object.entries(r.v8?.spaces ?? {}).filter(([, x]) => x.size > 0).map(([n, x]) => `${n.replace('_space', '')} ${f1(x.size / MIB)}`).join(', ')}`).join('; ')}.`,
    '',
    `Samples per point: ${int(1)} a second in every row.`,
    '',
  ].join('\n');
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  process.stdout.write(await run());
}
