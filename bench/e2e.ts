/**
 * End to end, as deployed: the simulator (Modbus TCP, child process) -> `fieldgate run -c FILE` (child process)
 * -> Mosquitto with QoS 1 -> a subscriber decoding every payload with the dictionary of the retained birth.
 * Samples per second at saturation (the smallest poll interval the schema allows, four devices) and latency from
 * acquisition (the sample's ts) to the subscriber at a steady 1,000 points at 1 Hz, with the gateway's CPU and RSS
 * from /proc. `node --import tsx bench/e2e.ts` prints the tables.
 */
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import { startBroker } from './lib/broker.js';
import { FROM_SOURCE, bundled, serviceEnv, serviceNodeFlags, shipped, type Entry } from './lib/bundle.js';
import { summarize, type ProfileSummary } from './lib/profile.js';
import { f1, int, load, seconds } from './lib/format.js';
import { acquired, launch, measure } from './lib/phase.js';
import { startSim, type SimKind } from './lib/sim.js';
import { MIN_POLL_MS, POINTS } from './lib/workload.js';

const SATURATION_S = seconds('FIELDGATE_BENCH_SATURATION_S', 12);
const STEADY_S = seconds('FIELDGATE_BENCH_STEADY_S', 60);
const WARMUP_MS = 3000;
/** Time after a window for samples acquired in it to arrive, so they can be counted by their ts. */
const GRACE_MS = 4000;

interface Row {
  label: string;
  cells: (string | number)[];
}

async function saturation(kind: SimKind, busPerDevice: boolean, entry?: Entry): Promise<Row> {
  const broker = await startBroker();
  const sim = await startSim(kind);
  try {
    const sys = await launch('fieldgate', { sim, broker, pollIntervalMs: MIN_POLL_MS, busPerDevice, entry });
    await sleep(WARMUP_MS);
    const w = await measure([sys], SATURATION_S, { sim: sim.pid, broker: broker.pid(), sub: process.pid });
    await sleep(GRACE_MS);
    const m = w.systems[0]!;
    const acq = acquired(m, sys);
    const lost = sys.sub.lost();
    await sys.stop();
    const label = entry ? entry.label : `${kind === 'bare' ? 'bare responder' : 'simulator'}, ${busPerDevice ? '4 connections' : '1 connection'}`;
    return {
      label,
      cells: [
        label,
        int(acq / m.seconds),
        int(m.delivered / m.seconds),
        `${int(m.p50)} / ${int(m.p99)}`,
        f1(m.delivered / Math.max(1, m.messages)),
        lost,
        f1(m.cpuPct),
        f1(w.others.sim),
        f1(w.others.broker),
        f1(w.others.sub),
        `${f1(m.rssMean)} / ${f1(m.peakRss)}`,
      ],
    };
  } finally {
    await sim.stop();
    await broker.stop();
  }
}

/**
 * The bare-responder row again under --cpu-prof: where the gateway's time goes when it cannot go faster. From the
 * sources (through tsx) so the profile names fieldgate's folders; the bundle's chunks would hide them.
 */
async function profiled(): Promise<{ summary: ProfileSummary; rate: number; cpu: number } | string> {
  const dir = mkdtempSync(join(tmpdir(), 'fieldgate-bench-prof-'));
  const broker = await startBroker();
  const sim = await startSim('bare');
  try {
    const sys = await launch('fieldgate', { sim, broker, pollIntervalMs: MIN_POLL_MS, entry: FROM_SOURCE, nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${dir}`] });
    await sleep(WARMUP_MS);
    const w = await measure([sys], SATURATION_S, {});
    // The profile is written at a clean exit, which SIGTERM gives once the backlog is out or the drain times out.
    process.kill(sys.pid, 'SIGTERM');
    await Promise.race([sys.exited, sleep(20_000)]);
    await sys.stop();
    const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')).map((f) => join(dir, f));
    if (files.length === 0) return 'no profile was written';
    const main = files.sort((a, b) => statSync(b).size - statSync(a).size)[0]!;
    const m = w.systems[0]!;
    return { summary: summarize(main, 8), rate: m.delivered / m.seconds, cpu: m.cpuPct };
  } finally {
    await sim.stop();
    await broker.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Node flags that trade speed for memory, against the service's: the bare-responder row with each. */
const FLAG_VARIANTS: [string, string[]][] = [
  ['node defaults', []],
  ['`--optimize-for-size --max-semi-space-size=8`', ['--optimize-for-size', '--max-semi-space-size=8']],
  ['`--max-semi-space-size=1`', ['--max-semi-space-size=1']],
];

async function flagVariants(): Promise<Row[]> {
  const b = bundled();
  if (typeof b === 'string') return [];
  const rows: Row[] = [];
  for (const [label, flags] of FLAG_VARIANTS) {
    process.stderr.write(`  saturation with ${label}...\n`);
    rows.push(await saturation('bare', true, { label, args: [...flags, ...b.args], env: serviceEnv() }));
  }
  return rows;
}

function profileSection(p: Awaited<ReturnType<typeof profiled>>): string[] {
  if (typeof p === 'string') return [`The profiled run gave nothing to show: ${p}.`];
  const s = p.summary;
  const cell = (name: string) => `\`${name.replace(/\|/g, '\\|')}\``;
  return [
    `Where the gateway's time goes at saturation: the bare-responder row again, from the sources under \`node --cpu-prof\``,
    `(${int(p.rate)} samples/s delivered at ${f1(p.cpu)} % CPU; the profile spans start to exit, ${f1(s.seconds)} s). The event loop was idle`,
    `for ${f1(s.idlePct)} % of the samples and collecting garbage for ${f1(s.gcPct)} %. Self time in % of all samples, by where the code`,
    "lives and by function (SQLite's own C code counts in the JavaScript function that called it):",
    '',
    '| code | % |',
    '| --- | ---: |',
    ...s.packages.map(([k, v]) => `| ${k} | ${f1(v)} |`),
    '',
    '| function | % |',
    '| --- | ---: |',
    ...s.functions.filter(([k]) => k !== '(idle)').map(([k, v]) => `| ${cell(k)} | ${f1(v)} |`),
  ];
}

async function steady() {
  const broker = await startBroker();
  const sim = await startSim('synthetic');
  try {
    const sys = await launch('fieldgate', { sim, broker, pollIntervalMs: 1000 });
    await sleep(WARMUP_MS);
    const w = await measure([sys], STEADY_S, { sim: sim.pid, broker: broker.pid(), sub: process.pid });
    await sleep(GRACE_MS);
    const m = w.systems[0]!;
    const acq = acquired(m, sys);
    const lost = sys.sub.lost();
    const dups = sys.sub.duplicates;
    const unknown = sys.sub.unknownPoints + sys.sub.undecoded;
    await sys.stop();
    return { m, w, acq, lost, dups, unknown };
  } finally {
    await sim.stop();
    await broker.stop();
  }
}

export async function run(): Promise<string> {
  const loadAtStart = load();
  const rows: Row[] = [];
  for (const [kind, perDevice] of [['synthetic', false], ['synthetic', true], ['bare', true]] as const) {
    process.stderr.write(`  saturation: ${kind}, ${perDevice ? 'a connection per device' : 'one connection'}...\n`);
    rows.push(await saturation(kind, perDevice));
  }
  const flagRows = await flagVariants();
  process.stderr.write('  saturation under --cpu-prof...\n');
  const prof = await profiled();
  process.stderr.write(`  steady 1,000 points at 1 Hz for ${STEADY_S} s...\n`);
  const s = await steady();
  const m = s.m;
  return [
    `The synthetic ${int(POINTS)}-point map of \`modbus-tcp\` (4 units of 250 points, 42 requests a cycle) served over Modbus TCP by the`,
    `simulator in a child process; \`fieldgate run -c FILE\` in its own process, run from ${shipped().label}, with the default uplink (compact payload,`,
    'QoS 1, batches of up to 500, commits every 250 ms); Mosquitto 2 on a random port; a subscriber in the bench process',
    'decoding every telemetry message with `decodeTelemetry` and the point dictionary of the retained birth. All on',
    `127.0.0.1 of one 2-core machine shared with other work (load average at the start: ${loadAtStart}).`,
    '',
    `Saturation: every device at pollIntervalMs ${MIN_POLL_MS}, the smallest the schema accepts, ${SATURATION_S} s measured after ${WARMUP_MS / 1000} s of warm-up.`,
    `Acquired counts the samples whose ts falls in the window, as they reached the subscriber within ${GRACE_MS / 1000} s after it; delivered,`,
    'those the subscriber received in the window; lost, the seqs it never received; latency is receive time minus sample ts. CPU is % of one core over the window',
    '(user + system from /proc/PID/stat); RSS is VmRSS sampled every second (mean) and VmHWM (peak). The bare responder is',
    "`modbus-tcp`'s minimal server that answers at once, where the simulator's modbus-serial ServerTCP defers every request.",
    '',
    '| Modbus peer | samples/s acquired | samples/s delivered | latency p50 / p99 ms | samples per message | samples lost | gateway CPU % | simulator CPU % | broker CPU % | subscriber CPU % | gateway RSS MiB mean / peak |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...rows.map((r) => `| ${r.cells.join(' | ')} |`),
    '',
    `With every device due every ${MIN_POLL_MS} ms and one request at a time on each connection, this map cannot give more than`,
    `${int((POINTS / MIN_POLL_MS) * 1000)} samples/s; on one connection the simulator's ServerTCP (about 700 requests/s) is the limit.`,
    '',
    ...(flagRows.length
      ? [
          `The bare-responder row again with other node flags than the service's (\`${serviceNodeFlags().join(' ')}\`), the same bundle and environment:`,
          '',
          '| node flags | samples/s acquired | samples/s delivered | latency p50 / p99 ms | samples per message | samples lost | gateway CPU % | simulator CPU % | broker CPU % | subscriber CPU % | gateway RSS MiB mean / peak |',
          '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
          ...flagRows.map((r) => `| ${r.cells.join(' | ')} |`),
          '',
          "`--optimize-for-size` also picks V8's smaller, slower code paths; node's defaults let the old generation grow",
          'several times past what survives. The service keeps the fast code and bounds the heap instead.',
          '',
        ]
      : []),
    ...profileSection(prof),
    '',
    `Steady: ${int(POINTS)} points at pollIntervalMs 1000 (four connections), ${int(m.seconds)} s measured after ${WARMUP_MS / 1000} s of warm-up.`,
    '',
    '| measure | value |',
    '| --- | ---: |',
    `| samples/s acquired / delivered | ${int(s.acq / m.seconds)} / ${int(m.delivered / m.seconds)} |`,
    `| latency acquisition -> subscriber, p50 / p99 | ${int(m.p50)} / ${int(m.p99)} ms |`,
    `| samples lost / duplicated / not decodable | ${s.lost} / ${s.dups} / ${s.unknown} |`,
    `| gateway CPU | ${f1(m.cpuPct)} % of one core |`,
    `| simulator / broker / subscriber CPU | ${f1(s.w.others.sim)} / ${f1(s.w.others.broker)} / ${f1(s.w.others.sub)} % |`,
    `| gateway RSS, mean / peak | ${f1(m.rssMean)} / ${f1(m.peakRss)} MiB |`,
    `| gateway RSS, anonymous pages at the end | ${f1(m.anonRss)} MiB |`,
    '',
    'Latency at 1 Hz is mostly the outbox: a sample is committed to SQLite (every `buffer.commitIntervalMs`, 250 ms)',
    'before it is published, so it waits up to a commit interval plus a batch; that is the price of losing nothing.',
    '',
  ].join('\n');
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  process.stdout.write(await run());
}
