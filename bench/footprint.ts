/**
 * The gateway's footprint at a steady 1,000 points at 1 Hz: RSS every second and CPU share of `fieldgate run`
 * over 2 minutes (10 with FIELDGATE_BENCH_LONG=1), first half against second half so growth shows; then where the
 * RSS goes, from an empty Node process up, with Node-RED's beside it. `node --import tsx bench/footprint.ts`.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import { spawnChild } from './peers.js';
import { startBroker } from './lib/broker.js';
import { FROM_SOURCE, bundled, envText, serviceEnv, serviceNodeFlags, shipped, type Entry } from './lib/bundle.js';
import { f1, int, load } from './lib/format.js';
import { installNodeRed } from './lib/nodered.js';
import { launch, measure, type LaunchOptions, type SystemName } from './lib/phase.js';
import { RssSampler, anonRssMiB } from './lib/proc.js';
import { startSim } from './lib/sim.js';
import { POINTS } from './lib/workload.js';

const LONG = process.env.FIELDGATE_BENCH_LONG === '1';
const STEADY_S = LONG ? 600 : 120;
const WARMUP_MS = 5000;
const VARIANT_S = 20;
/** V8's young generation is 3 semi-spaces, 16 MiB each by default on 64-bit: a daemon at 1 Hz needs far less. */
const SMALL_YOUNG = '--max-semi-space-size=1';

async function steady() {
  const broker = await startBroker();
  const sim = await startSim('synthetic');
  try {
    const sys = await launch('fieldgate', { sim, broker, pollIntervalMs: 1000 });
    await sleep(WARMUP_MS);
    const w = await measure([sys], STEADY_S, { sim: sim.pid, broker: broker.pid() });
    await sys.sub.settle(1500, 10_000);
    const r = { m: w.systems[0]!, lost: sys.sub.lost(), dups: sys.sub.duplicates };
    await sys.stop();
    return r;
  } finally {
    await sim.stop();
    await broker.stop();
  }
}

interface Variant {
  label: string;
  rss: number;
  anon: number;
  cpu?: number;
}

/** A process doing nothing, for the floor of the table. */
async function idle(label: string, args: string[]): Promise<Variant> {
  const c = spawnChild(process.execPath, [...args, '-e', 'setInterval(() => {}, 1000)']);
  await sleep(2000);
  const s = new RssSampler(c.pid, 500);
  await sleep(3000);
  s.stop();
  const v = { label, rss: s.mean(), anon: anonRssMiB(c.pid) };
  await c.stop();
  return v;
}

async function loaded(label: string, name: SystemName, extra: Partial<LaunchOptions>): Promise<Variant> {
  const broker = await startBroker();
  const sim = await startSim('synthetic');
  try {
    const sys = await launch(name, { sim, broker, pollIntervalMs: 1000, ...extra });
    await sleep(WARMUP_MS);
    const w = await measure([sys], VARIANT_S, {});
    await sys.stop();
    const m = w.systems[0]!;
    return { label, rss: m.rssMean, anon: m.anonRss, cpu: m.cpuPct };
  } finally {
    await sim.stop();
    await broker.stop();
  }
}

async function breakdown(): Promise<{ rows: Variant[]; notes: string[] }> {
  const notes: string[] = [];
  const rows: Variant[] = [await idle('empty Node 20 process', []), await idle('empty Node 20 process with the tsx loader', ['--import', 'tsx'])];
  const b = bundled();
  const gw = (label: string, entry: Entry, nodeArgs: string[] = []) => loaded(label, 'fieldgate', { entry, nodeArgs });
  rows.push(await gw('fieldgate, sources through tsx', FROM_SOURCE));
  if (typeof b === 'string') notes.push(`The bundle could not be built (${b}); its rows are missing.`);
  else {
    rows.push(await gw('fieldgate, bundle, node defaults', b));
    rows.push(await gw(`fieldgate, bundle, \`${SMALL_YOUNG}\``, b, [SMALL_YOUNG]));
    rows.push(await gw(`fieldgate, bundle, the service's flags \`${serviceNodeFlags().join(' ')}\`, glibc malloc defaults`, { ...shipped(), env: undefined }));
    rows.push(await gw(`fieldgate as the service runs it: bundle, \`${serviceNodeFlags().join(' ')}\`, \`${envText(serviceEnv())}\``, shipped()));
  }
  const nr = installNodeRed();
  if (typeof nr === 'string') notes.push(`Node-RED could not be run: ${nr}`);
  else {
    rows.push(await loaded('Node-RED flow (Node 22)', 'nodered', { nodered: nr }));
    rows.push(await loaded(`Node-RED flow, \`${SMALL_YOUNG}\``, 'nodered', { nodered: nr, nodeArgs: [SMALL_YOUNG] }));
    rows.push(await loaded(`Node-RED flow, \`${SMALL_YOUNG}\`, \`${envText(serviceEnv())}\``, 'nodered', { nodered: nr, nodeArgs: [SMALL_YOUNG], env: serviceEnv() }));
  }
  return { rows, notes };
}

export async function run(): Promise<string> {
  const loadAtStart = load();
  process.stderr.write(`  fieldgate at 1 Hz for ${STEADY_S} s...\n`);
  const s = await steady();
  const m = s.m;
  const [a, b] = m.rssHalves;
  process.stderr.write('  RSS breakdown...\n');
  const bd = await breakdown();
  return [
    `\`fieldgate run -c FILE\` (run from ${shipped().label}) polling the synthetic ${int(POINTS)}-point map at pollIntervalMs 1000 from the simulator,`,
    `publishing to Mosquitto with QoS 1 to a decoding subscriber, ${int(m.seconds)} s measured after ${WARMUP_MS / 1000} s of warm-up${LONG ? '' : ' (FIELDGATE_BENCH_LONG=1 for 10 minutes)'}.`,
    `RSS is VmRSS of the gateway process read every second; CPU is user + system time in % of one core. A 2-core machine`,
    `shared with other work (load average at the start: ${loadAtStart}).`,
    '',
    '| measure | value |',
    '| --- | ---: |',
    `| samples/s delivered | ${int(m.delivered / m.seconds)} |`,
    `| samples lost / duplicated | ${s.lost} / ${s.dups} |`,
    `| latency p50 / p99 | ${int(m.p50)} / ${int(m.p99)} ms |`,
    `| gateway CPU | ${f1(m.cpuPct)} % of one core |`,
    `| RSS, mean of the first half / second half | ${f1(a)} / ${f1(b)} MiB (${b >= a ? '+' : ''}${f1(((b - a) / a) * 100)} %) |`,
    `| RSS, largest sample / VmHWM | ${f1(m.rssMax)} / ${f1(m.peakRss)} MiB |`,
    `| anonymous RSS at the end | ${f1(m.anonRss)} MiB |`,
    '',
    `Where the RSS goes, each loaded row the same workload for ${VARIANT_S} s after ${WARMUP_MS / 1000} s (mean VmRSS; anonymous = RssAnon, the`,
    "process's own heap and buffers, without the mapped node binary and libraries):",
    '',
    '| process | RSS MiB | anonymous RSS MiB | CPU % |',
    '| --- | ---: | ---: | ---: |',
    ...bd.rows.map((v) => `| ${v.label} | ${f1(v.rss)} | ${f1(v.anon)} | ${v.cpu === undefined ? '' : f1(v.cpu)} |`),
    ...(bd.notes.length ? ['', ...bd.notes] : []),
    '',
    'About 33 MiB of every Node process is the node binary and its libraries mapped in (the empty process row less its',
    "anonymous pages); the tsx loader adds a loader thread with its own heap, which the bundle avoids. A good part of the rest",
    "of a busy process is V8's young generation: three semi-spaces of up to 16 MiB each on 64-bit Node, filled by any process that",
    'allocates steadily and kept between collections. `--max-semi-space-size=1` caps them at 1 MiB at the cost of more',
    "frequent scavenges; it shrinks fieldgate's RSS far more than Node-RED's, whose own heap is larger. The service unit",
    '(scripts/install-service.sh) runs node with a 2 MiB semi-space and `--heap-growing-percent=30` (the old generation grows',
    "by 30 % of what survives a collection, not by V8's eager default), which keeps a burst or a backlog drain from",
    'leaving a large heap behind at full speed (see e2e and uplink-drain). Its environment also tunes glibc malloc: two',
    'arenas, and a fixed 128 KiB mmap threshold so that large freed blocks return to the system. The first table is measured that way.',
    'Growth would show as a second half above the first in the table above.',
    '',
  ].join('\n');
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  process.stdout.write(await run());
}
