/**
 * One system under test (fieldgate or the Node-RED flow) with its own subscriber, and a measured window over
 * it: values delivered, latency percentiles, CPU and RSS of its process, bytes per value. Windows start on a whole
 * second, so values acquired in the window can be counted by their sample ts afterwards.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Broker } from './broker.js';
import type { Entry } from './bundle.js';
import { startFieldgate } from './fieldgate.js';
import { startNodeRed, type NodeRedInstall } from './nodered.js';
import { CpuMark, RssSampler, anonRssMiB, peakRssMiB } from './proc.js';
import type { Sim } from './sim.js';
import { Subscriber } from './subscriber.js';
import { GATEWAY_ID, TOPIC_PREFIX } from './workload.js';

export type SystemName = 'fieldgate' | 'nodered';

export interface System {
  name: SystemName;
  pid: number;
  sub: Subscriber;
  /** Node-RED only: values its flow has shaped so far. */
  produced?: () => Promise<number>;
  output(): string;
  /** Resolves when the process has exited (after a SIGTERM of its own, it exits cleanly: --cpu-prof writes then). */
  exited: Promise<unknown>;
  stop(): Promise<void>;
}

export interface LaunchOptions {
  sim: Sim;
  /** fieldgate only: more simulators, the devices' connections spread over `sim` and these in turn. */
  moreSims?: Sim[];
  /** fieldgate only: false turns the status page off. */
  statusPage?: boolean;
  /** fieldgate only: units x points instead of the 1,000-point map (workload.ts). */
  scale?: { devices: number; pointsPerDevice: number };
  broker: Broker;
  pollIntervalMs: number;
  busPerDevice?: boolean;
  format?: 'compact' | 'json';
  /** fieldgate only: extra uplink keys of its configuration file. */
  uplink?: Record<string, unknown>;
  nodered?: NodeRedInstall;
  /** Extra node flags for the system's process (e.g. --cpu-prof, --max-semi-space-size=1). */
  nodeArgs?: string[];
  /** How fieldgate runs: the shipped bundle (default) or the sources through tsx. */
  entry?: Entry;
  /** Node-RED only: extra environment for its process (fieldgate's comes with its entry). */
  env?: Record<string, string>;
  /** How long to wait for the first values at the subscriber (30 s). */
  firstValuesMs?: number;
}

const base = `${TOPIC_PREFIX}/${GATEWAY_ID}`;

export async function launch(name: SystemName, o: LaunchOptions): Promise<System> {
  if (name === 'fieldgate') {
    const sub = await Subscriber.connect(o.broker.url, 'fieldgate', [`${base}/telemetry`, `${base}/status`, `${base}/events`]);
    const gw = startFieldgate(
      {
        simPort: o.sim.port,
        simPorts: o.moreSims?.length ? [o.sim, ...o.moreSims].map((x) => x.port) : undefined,
        scale: o.scale,
        statusPage: o.statusPage,
        brokerUrl: o.broker.url,
        pollIntervalMs: o.pollIntervalMs,
        busPerDevice: o.busPerDevice ?? true,
        format: o.format,
        uplink: o.uplink,
      },
      o.nodeArgs,
      o.entry,
    );
    const sys: System = { name, pid: gw.pid, sub, output: gw.child.output, exited: gw.child.exited, stop: async () => (await gw.stop(), await sub.close()) };
    return firstValues(sys, o.firstValuesMs);
  }
  if (!o.nodered) throw new Error('Node-RED is not installed');
  const sub = await Subscriber.connect(o.broker.url, 'nodered', [`${base}/+/+`]);
  const nr = await startNodeRed(o.nodered, { simPort: o.sim.port, brokerPort: o.broker.port, pollIntervalMs: o.pollIntervalMs }, o.nodeArgs, o.env);
  const sys: System = { name, pid: nr.pid, sub, produced: nr.produced, output: nr.output, exited: nr.exited, stop: async () => (await nr.stop(), await sub.close()) };
  return firstValues(sys);
}

async function firstValues(sys: System, withinMs = 30_000): Promise<System> {
  const deadline = Date.now() + withinMs;
  while (sys.sub.counts.values === 0 && Date.now() < deadline) await sleep(50);
  if (sys.sub.counts.values === 0) {
    const out = sys.output();
    await sys.stop();
    throw new Error(`${sys.name}: no values at the subscriber within ${withinMs / 1000} s: ${out.slice(-1500)}`);
  }
  return sys;
}

export interface Measured {
  name: SystemName;
  seconds: number;
  t0: number;
  t1: number;
  delivered: number;
  p50: number;
  p99: number;
  cpuPct: number;
  rssMean: number;
  rssMax: number;
  rssHalves: [number, number];
  /** VmRSS every second over the window, MiB. */
  rssSeries: number[];
  anonRss: number;
  peakRss: number;
  messages: number;
  payloadBytes: number;
  mqttBytes: number;
  /** Node-RED: values its flow shaped in the window (exact). fieldgate: filled by acquired() afterwards. */
  produced?: number;
}

export interface Window {
  systems: Measured[];
  /** CPU % of one core of the other processes over the window, by label. */
  others: Record<string, number>;
}

/** Measures `seconds` whole seconds over the systems; `others` are further processes whose CPU is reported. */
export async function measure(systems: System[], seconds: number, others: Record<string, number>): Promise<Window> {
  await sleep(1000 - (Date.now() % 1000));
  const t0 = Date.now();
  const before = await Promise.all(systems.map((s) => s.produced?.()));
  const start = systems.map((s) => ({ ...s.sub.counts }));
  for (const s of systems) s.sub.latency.reset();
  const mark = new CpuMark([...systems.map((s) => s.pid), ...Object.values(others)]);
  const samplers = systems.map((s) => new RssSampler(s.pid, 1000));
  await sleep(seconds * 1000 - (Date.now() - t0));
  const t1 = Date.now();
  const after = await Promise.all(systems.map((s) => s.produced?.()));
  const cpu = mark.percent();
  for (const r of samplers) r.stop();
  const secs = (t1 - t0) / 1000;
  return {
    systems: systems.map((s, i) => {
      const c = s.sub.counts;
      const r = samplers[i]!;
      const half = Math.floor(r.series.length / 2);
      return {
        name: s.name,
        seconds: secs,
        t0,
        t1,
        delivered: c.values - start[i]!.values,
        p50: s.sub.latency.percentile(50),
        p99: s.sub.latency.percentile(99),
        cpuPct: cpu.get(s.pid)!,
        rssMean: r.mean(),
        rssMax: r.max(),
        rssHalves: [r.mean(0, half), r.mean(half)],
        rssSeries: r.series,
        anonRss: anonRssMiB(s.pid),
        peakRss: peakRssMiB(s.pid),
        messages: c.messages - start[i]!.messages,
        payloadBytes: c.payloadBytes - start[i]!.payloadBytes,
        mqttBytes: c.mqttBytes - start[i]!.mqttBytes,
        produced: before[i] !== undefined && after[i] !== undefined ? after[i]! - before[i]! : undefined,
      };
    }),
    others: Object.fromEntries(Object.entries(others).map(([label, pid]) => [label, cpu.get(pid)!])),
  };
}

/** Values acquired in the window: Node-RED's own count, or fieldgate's samples by ts that have arrived by now. */
export function acquired(m: Measured, sys: System): number {
  return m.produced ?? sys.sub.acquiredBetween(m.t0, m.t1);
}
