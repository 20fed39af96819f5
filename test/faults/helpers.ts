/**
 * Fault injection: a tmpfs for a full disk, the gateway's configuration, a subscriber that accounts per epoch, and the
 * one-line summary each scenario prints. Loss is judged by (epoch, seq) only, as docs/payload.md tells a consumer.
 */
import { execFileSync } from 'node:child_process';
import { appendFileSync, closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { stringify } from 'yaml';
import { decodeTelemetry, type DecodedSample, type DictionaryEntry } from '../../src/uplink/payload.js';
import { SeqSet } from '../../src/uplink/seqset.js';
import { fieldgate } from '../helpers/cli.js';
import type { GatewayProcess } from '../helpers/gw-process.js';

export const ROOT = new URL('../..', import.meta.url).pathname;
/** FIELDGATE_SOAK=1: more iterations and the 10-minute soak. */
export const SOAK = process.env.FIELDGATE_SOAK === '1';
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A missing capability skips the scenario with its reason, except under CI=true, where it fails it. */
export function skipOrFail(reason: string): string {
  if (process.env.CI === 'true') throw new Error(`fault scenario cannot run and CI=true: ${reason}`);
  console.warn(`skipped: ${reason}`);
  return reason;
}

export async function until(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 20_000, detail?: () => string): Promise<number> {
  const t0 = Date.now();
  while (!(await cond())) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${detail ? `: ${detail()}` : ''}`);
    await sleep(25);
  }
  return Date.now() - t0;
}

// ---------------------------------------------------------------- a full disk

export interface Tmpfs {
  dir: string;
  unmount(): void;
}

/** A tmpfs of sizeMiB (root only), or the reason it cannot be had here. */
export function mountTmpfs(sizeMiB: number): Tmpfs | string {
  if (process.getuid?.() !== 0) return 'a tmpfs mount needs root';
  const dir = mkdtempSync(join(tmpdir(), 'fieldgate-tmpfs-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeMiB}m`, 'tmpfs', dir], { stdio: 'pipe' });
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    return `cannot mount a tmpfs (${String((err as Error).message).split('\n')[0]})`;
  }
  let mounted = true;
  return {
    dir,
    unmount() {
      if (!mounted) return;
      mounted = false;
      // Lazy: a process that still holds a file there must not make the cleanup fail.
      execFileSync('umount', ['-l', dir], { stdio: 'pipe' });
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Writes `file` until the filesystem refuses (ENOSPC); returns the bytes it took. */
export function fillDisk(file: string): number {
  const fd = openSync(file, 'w');
  let total = 0;
  try {
    for (const size of [1 << 16, 4096, 512]) {
      const chunk = Buffer.alloc(size, 0x5a);
      for (;;) {
        try {
          total += writeSync(fd, chunk);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
          break;
        }
      }
    }
  } finally {
    closeSync(fd);
  }
  return total;
}

// ---------------------------------------------------------------- the gateway

export interface BufferStats {
  epoch: string;
  samples: number;
  events: number;
  lastSeq: number;
  dropped: Record<string, number>;
}

export async function bufferStats(configFile: string): Promise<BufferStats> {
  const r = await fieldgate(['buffer', 'stats', '-c', configFile, '--json']);
  if (r.code !== 0) throw new Error(`buffer stats failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as BufferStats;
}

/** A gateway configuration for the faults: short reconnects, 5 s keepalive, 50 ms commits, trusted clock. */
export function faultConfig(dir: string, parts: { buses: unknown[]; devices: unknown[]; uplink: Record<string, unknown>; buffer?: Record<string, unknown>; dataDir?: string }): string {
  const file = join(dir, 'gateway.yaml');
  const config = {
    gateway: { id: 'gw-faults', dataDir: parts.dataDir ?? join(dir, 'data'), clock: { trust: 'always' } },
    buses: parts.buses,
    devices: parts.devices,
    uplink: {
      batch: { maxSamples: 200, maxDelayMs: 100 },
      keepaliveS: 5,
      connectTimeoutMs: 3000,
      reconnectMinMs: 200,
      reconnectMaxMs: 1000,
      shutdownTimeoutMs: 30_000,
      ...parts.uplink,
    },
    buffer: { commitIntervalMs: 50, ...parts.buffer },
  };
  mkdirSync(dir, { recursive: true });
  writeFileSync(file, stringify(config));
  return file;
}

/** Village-water units on one Modbus TCP bus: pump house (1), highest house (2), flow meter (3). */
export function villageDevices(bus: string, pollIntervalMs: number): unknown[] {
  return [
    { id: 'pump_house', bus, unit: 1, pollIntervalMs, points: [
      { id: 'inlet_pressure', fc: 4, address: 0, scale: 0.000625, offset: -2.5, unit: 'bar' },
      { id: 'tank_level', fc: 4, address: 1, scale: 0.0003125, offset: -1.25, unit: 'm' },
    ] },
    { id: 'highest_house', bus, unit: 2, pollIntervalMs, points: [{ id: 'high_pressure', fc: 4, address: 0 }] },
    { id: 'flow_meter', bus, unit: 3, pollIntervalMs, points: [{ id: 'flow', fc: 3, address: 0, type: 'float32', order: 'CDAB' }] },
  ];
}

/** VmRSS of a process in KiB, from /proc; undefined once it is gone. */
export function rssKiB(pid: number): number | undefined {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------- the consumer

/**
 * A QoS 1 subscriber with a persistent session that keeps, per epoch, the seqs received (telemetry and stored
 * events, as docs/payload.md says to count them) and the ranges the gateway announced as dropped.
 */
export class Ledger {
  readonly client: MqttClient;
  readonly seqs = new Map<string, SeqSet>();
  readonly dropped = new Map<string, Array<[number, number]>>();
  readonly events: Array<Record<string, unknown>> = [];
  readonly statuses: Array<Record<string, unknown>> = [];
  readonly errors: string[] = [];
  private readonly dicts = new Map<string, Map<number, DictionaryEntry>>();

  constructor(url: string, clientId: string, private readonly onSample?: (s: DecodedSample) => void) {
    this.client = mqtt.connect(url, { clientId, clean: false, reconnectPeriod: 300, protocolVersion: 4 });
    this.client.on('error', () => {});
    this.client.on('connect', () => this.client.subscribe('fieldgate/+/#', { qos: 1 }));
    this.client.on('message', (topic, payload) => {
      try {
        this.receive(topic.split('/').pop()!, payload.toString('utf8'));
      } catch (err) {
        this.errors.push(`${topic}: ${(err as Error).message}`);
      }
    });
  }

  epoch(ep: string): SeqSet {
    let set = this.seqs.get(ep);
    if (!set) this.seqs.set(ep, (set = new SeqSet()));
    return set;
  }

  private receive(kind: string, text: string): void {
    if (text === '') return;
    const msg = JSON.parse(text) as Record<string, unknown>;
    if (kind === 'telemetry') {
      const dict = this.dicts.get(msg.ep as string);
      for (const s of decodeTelemetry(text, (i) => dict?.get(i))) {
        this.epoch(s.epoch).add(s.seq);
        this.onSample?.(s);
      }
    } else if (kind === 'status') {
      this.statuses.push(msg);
      if (Array.isArray(msg.points)) {
        const dict = new Map<number, DictionaryEntry>();
        for (const [index, device, point] of msg.points as Array<[number, string, string]>) dict.set(index, { index, device, point });
        this.dicts.set(msg.ep as string, dict);
      }
    } else {
      this.events.push(msg);
      if (typeof msg.ep === 'string' && Number.isSafeInteger(msg.seq)) this.epoch(msg.ep).add(msg.seq as number);
      if (msg.event === 'dropped') {
        const list = this.dropped.get(msg.ep as string) ?? [];
        for (const r of msg.ranges as Array<{ from: number | null; to: number | null }>) if (r.from !== null && r.to !== null) list.push([r.from, r.to]);
        this.dropped.set(msg.ep as string, list);
      }
    }
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.client.end(true, {}, () => resolve()));
  }
}

// ---------------------------------------------------------------- accounting

export interface Tally {
  produced: number;
  delivered: number;
  /** Committed, never delivered, not announced as dropped, and not a broker's loss: the gateway's. */
  lost: number;
  duplicated: number;
  dropped: number;
  /** Committed, PUBACKed by a broker that was then SIGKILLed, never delivered: counted only when allowed. */
  brokerLost: number;
  /** The first missing runs, for the failure message. */
  missing: Array<[number, number]>;
}

/**
 * Seqs 1..lastSeq of one epoch against what the ledger received. With `brokerAcked`, a missing seq the broker
 * had PUBACKed is the broker's loss (it was killed holding it), not the gateway's.
 */
export function tally(ledger: Ledger, epoch: string, lastSeq: number, brokerAcked?: SeqSet): Tally {
  const got = ledger.epoch(epoch);
  const drops = ledger.dropped.get(epoch) ?? [];
  const t: Tally = { produced: lastSeq, delivered: 0, lost: 0, duplicated: got.duplicates, dropped: 0, brokerLost: 0, missing: [] };
  const runs: Array<[number, number]> = [];
  if (got.min === undefined) runs.push([1, lastSeq]);
  else {
    if (got.min > 1) runs.push([1, Math.min(got.min - 1, lastSeq)]);
    for (const [a, b] of got.gaps()) if (a <= lastSeq) runs.push([a, Math.min(b, lastSeq)]);
    if (got.max! < lastSeq) runs.push([got.max! + 1, lastSeq]);
  }
  let missing = 0;
  for (const [a, b] of runs) {
    for (let s = a; s <= b; s++) {
      missing++;
      if (drops.some(([x, y]) => s >= x && s <= y)) t.dropped++;
      else if (brokerAcked?.has(s)) t.brokerLost++;
      else {
        t.lost++;
        const last = t.missing.at(-1);
        if (last && last[1] === s - 1) last[1] = s;
        else if (t.missing.length < 10) t.missing.push([s, s]);
      }
    }
  }
  t.delivered = lastSeq - missing;
  return t;
}

/** Prints the scenario's one line and appends it to test-output/faults-summary.txt. */
export function summary(name: string, t: Tally, seconds: number, extra: Record<string, string | number> = {}): string {
  const parts = [`produced ${t.produced}`, `delivered ${t.delivered}`, `lost ${t.lost}`, `duplicated ${t.duplicated}`];
  if (t.dropped) parts.push(`dropped (announced) ${t.dropped}`);
  if (t.brokerLost) parts.push(`lost by the broker ${t.brokerLost}`);
  const more = Object.entries(extra).map(([k, v]) => `${k} ${v}`);
  const line = `${name}: ${parts.join(', ')}; ${seconds.toFixed(1)} s${more.length ? `; ${more.join(', ')}` : ''}`;
  console.log(line);
  mkdirSync(join(ROOT, 'test-output'), { recursive: true });
  appendFileSync(join(ROOT, 'test-output', 'faults-summary.txt'), `${new Date().toISOString()} ${line}\n`);
  return line;
}

/**
 * Waits until everything the outbox committed so far (read while the gateway runs) has arrived, or is
 * accounted for as dropped or as PUBACKed by the broker (`brokerAcked`). Returns the ms it took, including about
 * a second to read the outbox's stats.
 */
export async function drained(ledger: Ledger, configFile: string, brokerAcked?: (epoch: string) => SeqSet | undefined, timeoutMs = 60_000): Promise<number> {
  const t0 = Date.now();
  const { epoch, lastSeq } = await bufferStats(configFile);
  const count = () => tally(ledger, epoch, lastSeq, brokerAcked?.(epoch));
  await until('the backlog to drain', () => count().lost === 0, timeoutMs, () => `${lastSeq - count().lost} of ${lastSeq} arrived, first holes ${JSON.stringify(count().missing.slice(0, 5))}`);
  return Date.now() - t0;
}

export interface Finished {
  exitCode: number | null;
  stats: BufferStats;
  tally: Tally;
  /** Restarts it took to send what a stop left in the outbox (a stop while the link was down sends nothing). */
  redrains: number;
}

/**
 * The end of a scenario: SIGTERM (the gateway drains within uplink.shutdownTimeoutMs), the outbox's own count of
 * what it committed, and, if the link was down at the stop, a restart to send the rest, as the next boot would.
 * Then up to `waitMs` for the last deliveries before counting.
 */
export async function finish(
  gw: GatewayProcess,
  restart: () => GatewayProcess,
  configFile: string,
  ledger: Ledger,
  brokerAcked?: (epoch: string) => SeqSet | undefined,
  waitMs = 30_000,
): Promise<Finished> {
  // A SIGTERM while node is still loading the modules is not a clean stop to judge (the default action kills it
  // before the gateway could install its handlers): stop a gateway that is running.
  await gw.running();
  const exitCode = await gw.stop('SIGTERM');
  let stats = await bufferStats(configFile);
  let redrains = 0;
  while (stats.samples + stats.events > 0 && redrains < 3) {
    redrains++;
    const again = restart();
    await drained(ledger, configFile, brokerAcked).catch(() => {});
    await again.running();
    await again.stop('SIGTERM');
    stats = await bufferStats(configFile);
  }
  const count = () => tally(ledger, stats.epoch, stats.lastSeq, brokerAcked?.(stats.epoch));
  await until('every committed seq', () => count().lost === 0, waitMs).catch(() => {});
  return { exitCode, stats, tally: count(), redrains };
}
