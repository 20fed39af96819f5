/**
 * Latency at a steady 1,000 points at 1 Hz, durable (every sample committed before it is published), with
 * `batch.maxDelayMs: 0` and with the default batch: acquisition (the sample's ts) to a QoS 1 subscriber, and the
 * gateway's fsyncs a second counted with strace (fsync + fdatasync of every thread) in a window of its own just after.
 * `npm run bench -- latency`; FIELDGATE_BENCH_STEADY_S sets the window (30 s).
 */
import { spawn } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import { which } from './peers.js';
import { startBroker } from './lib/broker.js';
import { shipped } from './lib/bundle.js';
import { f1, int, load, seconds } from './lib/format.js';
import { launch, measure } from './lib/phase.js';
import { startSim, type SimKind } from './lib/sim.js';
import { POINTS } from './lib/workload.js';

const STEADY_S = seconds('FIELDGATE_BENCH_STEADY_S', 30);
const SYNC_S = Math.min(STEADY_S, 20);
const WARMUP_MS = 3000;

/** fsync and fdatasync calls of a process and its threads over `ms`, or undefined without strace (or ptrace). */
async function countSyncs(pid: number, ms: number): Promise<number | undefined> {
  const exe = which('strace');
  if (!exe) return undefined;
  const out = join(tmpdir(), `fieldgate-bench-strace-${process.pid}-${pid}`);
  const child = spawn(exe, ['-f', '-qq', '-e', 'trace=fsync,fdatasync', '-o', out, '-p', String(pid)], { stdio: 'ignore' });
  const exited = new Promise((done) => child.once('exit', done));
  await sleep(ms);
  if (child.pid) process.kill(child.pid, 'SIGINT');
  await exited;
  try {
    return readFileSync(out, 'utf8').split('\n').filter((l) => /\b(fsync|fdatasync)\(/.test(l)).length;
  } catch {
    return undefined;
  } finally {
    rmSync(out, { force: true });
  }
}

interface Row {
  label: string;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  delivered: number;
  lost: number;
  syncsPerS: number | undefined;
  cpu: number;
  rss: number;
}

async function steady(label: string, uplink: Record<string, unknown>, brokerLines: string[], simKind: SimKind): Promise<Row> {
  const broker = await startBroker(brokerLines);
  const sim = await startSim(simKind);
  try {
    const sys = await launch('fieldgate', { sim, broker, pollIntervalMs: 1000, uplink });
    await sleep(WARMUP_MS);
    const w = await measure([sys], STEADY_S, {});
    const m = w.systems[0]!;
    const lat = sys.sub.latency;
    const [p90, max] = [lat.percentile(90), lat.percentile(100)];
    // The fsyncs in a window of their own: strace attached with -p stops the process at every system call (its
    // seccomp filter only works on a child it starts), which slows each socket write and would show as latency.
    const nSyncs = await countSyncs(sys.pid, SYNC_S * 1000);
    await sys.sub.settle(1500, 10_000);
    const row: Row = {
      label,
      p50: m.p50,
      p90,
      p99: m.p99,
      max,
      delivered: m.delivered / m.seconds,
      lost: sys.sub.lost(),
      syncsPerS: nSyncs === undefined ? undefined : nSyncs / SYNC_S,
      cpu: m.cpuPct,
      rss: m.rssMean,
    };
    await sys.stop();
    return row;
  } finally {
    await sim.stop();
    await broker.stop();
  }
}

export async function run(): Promise<string> {
  const before = load();
  const rows: Row[] = [];
  // Mosquitto's default leaves Nagle on towards its subscribers, which holds small messages up to ~40 ms there;
  // docs/commands.md recommends `set_tcp_nodelay true`. Both are measured, so the gateway's share is visible.
  // The simulator's ServerTCP defers every request by a 0 ms timer (~1 ms, ten requests a device a cycle); the bare
  // responder answers the same words at once, which leaves the gateway's own share.
  const nodelay = ['set_tcp_nodelay true'];
  for (const [label, uplink, brokerLines, sim] of [
    ['`batch.maxDelayMs: 0`, broker `set_tcp_nodelay true`', { batch: { maxDelayMs: 0 } }, nodelay, 'synthetic'],
    ['`batch.maxDelayMs: 0`, broker `set_tcp_nodelay true`, bare responder', { batch: { maxDelayMs: 0 } }, nodelay, 'bare'],
    ['`batch.maxDelayMs: 0`, broker defaults', { batch: { maxDelayMs: 0 } }, [], 'synthetic'],
    ['default batch (maxSamples 500, maxDelayMs 1000), broker defaults', {}, [], 'synthetic'],
  ] as const) {
    process.stderr.write(`  ${label} for ${STEADY_S} s...\n`);
    rows.push(await steady(label, uplink, [...brokerLines], sim));
  }
  const after = load();
  return [
    `\`fieldgate run -c FILE\` (${shipped().label}) polling the synthetic ${int(POINTS)}-point map (4 units, one connection each)`,
    `at pollIntervalMs 1000 from the simulator, publishing with QoS 1 to Mosquitto and a decoding subscriber; ${STEADY_S} s`,
    `measured after ${WARMUP_MS / 1000} s. Latency is the subscriber's receive time minus the sample's ts (one clock). fsyncs/s are the`,
    `gateway's fsync + fdatasync calls (all threads) counted by strace over the next ${SYNC_S} s, a window of their own (strace stops the process at`,
    'every system call, which would count as latency). Load average before: ' + before + '; after: ' + after + '.',
    '',
    '| uplink | latency p50 / p90 / p99 / max ms | samples/s delivered | lost | fsyncs/s | CPU % | RSS MiB mean |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...rows.map((r) => `| ${r.label} | ${int(r.p50)} / ${int(r.p90)} / ${int(r.p99)} / ${int(r.max)} | ${int(r.delivered)} | ${r.lost} | ${r.syncsPerS === undefined ? 'n/a' : f1(r.syncsPerS)} | ${f1(r.cpu)} | ${f1(r.rss)} |`),
    '',
  ].join('\n');
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  process.stdout.write(await run());
}
