/**
 * Draining a backlog through the real uplink into Mosquitto with QoS 1: a 1,000,000- and a 10,000,000-sample
 * outbox (100 points of plausible values) built once per run, copied for every drain, and drained by
 * bench/drain-child.ts in its own process, so the peak RSS (VmHWM) is the drainer's alone. One more 1M drain
 * with a QoS 1 subscriber proves every seq arrives. `node --import tsx bench/uplink-drain.ts` prints the tables;
 * FIELDGATE_BENCH_BACKLOGS=1000000 limits the backlog sizes for a quick run.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import mqtt from 'mqtt';
import { pino } from 'pino';
import { Outbox, type SampleInput } from '../src/outbox/index.js';
import type { DrainArgs, DrainResult } from './drain-child.js';
import { bundled, envText, serviceEnv, serviceNodeFlags, type Entry } from './lib/bundle.js';
import { spawnChild, startMosquitto, type Broker } from './peers.js';

const POINTS = 100;
const CHUNK = 50_000;
const BACKLOGS = (process.env.FIELDGATE_BENCH_BACKLOGS ?? '1000000,10000000').split(',').map(Number);
const BATCHES = (process.env.FIELDGATE_BENCH_BATCHES ?? '500,5000').split(',').map(Number);
const INFLIGHT = 16;
const CHILD = fileURLToPath(new URL('./drain-child.ts', import.meta.url));
/**
 * The drainer as the daemon ships: bundled, with the service unit's node flags and malloc environment
 * (FIELDGATE_BENCH_NODE_FLAGS overrides the flags, to compare); through tsx when the bundle cannot be built.
 */
function drainer(): Entry {
  const flags = process.env.FIELDGATE_BENCH_NODE_FLAGS !== undefined ? process.env.FIELDGATE_BENCH_NODE_FLAGS.split(/\s+/).filter(Boolean) : serviceNodeFlags();
  const env = serviceEnv();
  const b = bundled(CHILD);
  const args = typeof b === 'string' ? ['--import', 'tsx', CHILD] : b.args;
  const label = `${typeof b === 'string' ? 'the sources through tsx' : b.label}${flags.length ? ` with ${flags.join(' ')}` : ''} and ${envText(env)}`;
  return { label, args: [...flags, ...args], env };
}

/** Poll cycle t of a plausible site: mostly scaled floats, some counters and states, a few bad reads. */
function pushCycle(out: SampleInput[], t: number): void {
  const ts = t * 1000;
  for (let p = 0; p < POINTS; p++) {
    const device = `dev${p % 10}`;
    const point = `point${p}`;
    if (p % 20 === 19) out.push({ device, point, ts, value: null, quality: 'bad', reason: 'timeout after 500 ms' });
    else if (p % 10 === 3) out.push({ device, point, ts, value: (t + p) % 2 === 0, quality: 'good' });
    else if (p % 10 === 5) out.push({ device, point, ts, value: t * 3 + p, quality: 'good' });
    else out.push({ device, point, ts, value: Math.round((20 + 5 * Math.sin(t / 60 + p)) * 100) / 100, quality: 'good' });
  }
}

/** Appends `count` samples (whole cycles from cycle `t`) in big grouped commits; returns the seconds taken. */
export function fill(dir: string, t: number, count: number): number {
  const ob = Outbox.open({ dir, logger: pino({ level: 'silent' }), maxBytes: 1024 ** 3 });
  const start = performance.now();
  for (let done = 0; done < count; ) {
    const batch: SampleInput[] = [];
    while (batch.length < CHUNK && done + batch.length < count) pushCycle(batch, t++);
    ob.append(batch);
    ob.commit();
    done += batch.length;
  }
  ob.close();
  return (performance.now() - start) / 1000;
}

function fmt(n: number, digits = 0): string {
  return n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** utime + stime of a process in seconds, from /proc/PID/stat. */
function cpuSecondsOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}
const CLOCK_TICKS = 100;

async function drain(dir: string, broker: Broker, maxSamples: number): Promise<DrainResult & { brokerCpu: number }> {
  const args: DrainArgs = { dir, url: broker.url, maxSamples, inflight: INFLIGHT };
  const brokerCpu = cpuSecondsOf(broker.pid);
  const d = drainer();
  const child = spawnChild(process.execPath, [...d.args, JSON.stringify(args)], 'pipe', d.env);
  let out = '';
  child.proc.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  const code = await child.exited;
  if (code !== 0) throw new Error(`drain child exited (${code}): ${child.output()}`);
  const r = JSON.parse(out.trim().split('\n').at(-1)!) as DrainResult;
  if (process.env.FIELDGATE_BENCH_VERBOSE) process.stderr.write(`  ${JSON.stringify(r)}\n`);
  return { ...r, brokerCpu: cpuSecondsOf(broker.pid) - brokerCpu };
}

function row(label: string, maxSamples: number, r: DrainResult & { brokerCpu: number }, last: string): string {
  return [
    label,
    fmt(maxSamples),
    fmt(r.samples / r.seconds),
    fmt(r.seconds, 1),
    `${fmt(r.cpuSeconds, 1)} s (${fmt(r.samples / r.cpuSeconds)}/s)`,
    `${fmt(r.brokerCpu, 1)} s`,
    `${fmt(r.peakRssMiB)} MiB (${fmt(r.rssStartMiB)} at start)`,
    fmt(r.payloadBytes / r.samples, 2),
    last,
  ].join(' | ').replace(/^/, '| ').concat(' |');
}

/** Peak RSS of a Node process that loads nothing, with and without the tsx loader the daemon runs under. */
async function baselineRss(withTsx: boolean): Promise<number> {
  const script = "process.stdout.write(/VmHWM:\\s+(\\d+)/.exec(require('fs').readFileSync('/proc/self/status', 'utf8'))[1])";
  const child = spawnChild(process.execPath, [...(withTsx ? ['--import', 'tsx'] : []), '-e', script], 'pipe');
  let out = '';
  child.proc.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  await child.exited;
  return Number(out) / 1024;
}

/** A QoS 1 subscriber marking every telemetry seq it receives. */
async function subscribe(url: string, total: number) {
  const seen = new Uint8Array(total + 1);
  let distinct = 0;
  let duplicates = 0;
  const client = mqtt.connect(url, { clientId: 'bench-counter', clean: true, reconnectPeriod: 0 });
  await new Promise<void>((resolve, reject) => client.once('connect', () => resolve()).once('error', reject));
  await client.subscribeAsync('fieldgate/bench/telemetry', { qos: 1 });
  client.on('message', (_topic, payload) => {
    const msg = JSON.parse(payload.toString()) as { s: number; d: unknown[] };
    for (let k = 0; k < msg.d.length; k++) {
      const seq = msg.s + k;
      if (seq > total) continue;
      if (seen[seq]) duplicates++;
      else {
        seen[seq] = 1;
        distinct++;
      }
    }
  });
  return {
    async until(timeoutMs: number): Promise<{ distinct: number; duplicates: number }> {
      const deadline = Date.now() + timeoutMs;
      while (distinct < total && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      await client.endAsync();
      return { distinct, duplicates };
    },
  };
}

/** The issue's targets against this run: at least 300,000 samples/s; peak RSS at most 120 MB, whatever the backlog. */
function verdict(results: Array<{ size: number; rate: number; peak: number }>): string {
  const slowest = Math.min(...results.map((r) => r.rate));
  const peaks = BACKLOGS.map((size) => Math.max(...results.filter((r) => r.size === size).map((r) => r.peak)));
  const worst = Math.max(...peaks);
  return [
    `Targets: drain at least 300,000 samples/s, ${slowest >= 300_000 ? 'met' : 'not met'} (slowest run ${fmt(slowest)}/s); peak RSS at most`,
    `120 MB (${fmt(120e6 / 2 ** 20)} MiB), ${worst <= 120e6 / 2 ** 20 ? 'met' : 'not met'} (highest ${fmt(worst)} MiB); peak by backlog: ${BACKLOGS.map((b, i) => `${fmt(b)}: ${fmt(peaks[i]!)} MiB`).join(', ')}.`,
  ].join('\n');
}

export async function run(): Promise<string> {
  const work = mkdtempSync(join(tmpdir(), 'fieldgate-bench-drain-'));
  const broker = await startMosquitto();
  const rows: string[] = [];
  const results: Array<{ size: number; rate: number; peak: number }> = [];
  let delivery = '';
  const buildRows: string[] = [];
  const baseline: number[] = [];
  try {
    // Backlogs: the smallest is built from scratch, each larger one on a copy of the one before.
    const built = new Map<number, string>();
    let prev: { size: number; dir: string } | undefined;
    const t0 = Math.floor(Date.now() / 1000) - Math.max(...BACKLOGS) / POINTS;
    for (const size of [...BACKLOGS].sort((a, b) => a - b)) {
      const dir = join(work, `backlog-${size}`);
      if (prev) cpSync(prev.dir, dir, { recursive: true });
      const added = size - (prev?.size ?? 0);
      process.stderr.write(`  building ${fmt(size)} samples...\n`);
      const secs = fill(dir, t0 + (prev?.size ?? 0) / POINTS, added);
      const bytes = statSync(join(dir, 'outbox.db')).size;
      buildRows.push(
        `| ${fmt(size)} | ${fmt(added)} appended in ${fmt(secs, 1)} s | ${fmt(added / secs)} samples/s | ${fmt(bytes / 2 ** 20)} MiB (${fmt(bytes / size, 1)} B/sample) |`,
      );
      built.set(size, dir);
      prev = { size, dir };
    }

    for (const size of BACKLOGS) {
      for (const maxSamples of BATCHES) {
        const dir = join(work, 'drain');
        cpSync(built.get(size)!, dir, { recursive: true });
        process.stderr.write(`  draining ${fmt(size)}, batch ${maxSamples}...\n`);
        const r = await drain(dir, broker, maxSamples);
        rmSync(dir, { recursive: true, force: true });
        if (r.samples !== size || r.left !== 0) throw new Error(`drained ${r.samples} of ${size}, ${r.left} left`);
        const overhead = (r.wireOut - r.payloadBytes) / r.messages;
        const wire = `${fmt(overhead)} B out + ${fmt(r.wireIn / r.messages)} B in per message; ${fmt((r.wireOut + r.wireIn) / r.samples, 2)} B/sample in all`;
        rows.push(row(fmt(size), maxSamples, r, wire));
        results.push({ size, rate: r.samples / r.seconds, peak: r.peakRssMiB });
      }
    }

    // Every seq arrives: the smallest backlog again, with a QoS 1 subscriber counting distinct seqs.
    const size = Math.min(...BACKLOGS);
    const dir = join(work, 'drain');
    cpSync(built.get(size)!, dir, { recursive: true });
    process.stderr.write(`  draining ${fmt(size)} with a subscriber...\n`);
    const sub = await subscribe(broker.url, size);
    const r = await drain(dir, broker, BATCHES[0]!);
    const got = await sub.until(30_000);
    rmSync(dir, { recursive: true, force: true });
    rows.push(row(`${fmt(size)}, one QoS 1 subscriber`, BATCHES[0]!, r, 'as above'));
    delivery = `With one QoS 1 subscriber on the telemetry topic (in the benchmark's own process, parsing every message), it received ${fmt(got.distinct)} of the ${fmt(size)} seqs, ${fmt(got.duplicates)} of them twice.`;
    baseline.push(await baselineRss(false), await baselineRss(true));
  } finally {
    await broker.stop();
    rmSync(work, { recursive: true, force: true });
  }
  return [
    `Backlogs built with \`Outbox.append\` + \`commit\` in ${fmt(CHUNK)}-sample commits (${POINTS} points: floats, counters, states, 5 % bad with a reason):`,
    '',
    '| backlog | built | inserts | database |',
    '| --- | --- | --- | --- |',
    ...buildRows,
    '',
    `Drained by the real \`Uplink\` + \`MqttSession\` (QoS 1, compact payload, \`uplink.inflight\` ${INFLIGHT}) into Mosquitto`,
    `on 127.0.0.1, the drainer in its own process run as the daemon is deployed (${drainer().label}); seconds from`,
    'connect to the last PUBACK; CPU is user + system time over the same span; peak RSS is the drainer\'s VmHWM, "at',
    `start" its RSS once the gateway's modules are loaded (an empty Node process peaks at ${fmt(baseline[0] ?? 0)} MiB, with the`,
    `tsx loader at ${fmt(baseline[1] ?? 0)} MiB). Payload is the telemetry JSON per sample; the MQTT overhead is the other bytes`,
    'the client wrote and read per message (fixed header, topic, packet id, PUBACK).',
    '',
    '| backlog | batch.maxSamples | samples/s | seconds | drainer CPU | broker CPU | peak RSS | payload B/sample | MQTT overhead |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- |',
    ...rows,
    '',
    delivery,
    '',
    verdict(results),
  ].join('\n') + '\n';
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  process.stdout.write(await run());
}
