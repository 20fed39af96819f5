/** The gateway as a real process (`fieldgate run`), and an MQTT subscriber that decodes and counts what arrives. */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { stringify } from 'yaml';
import { decodeTelemetry, type DecodedSample, type DictionaryEntry } from '../../src/uplink/payload.js';
import { SeqSet } from '../../src/uplink/seqset.js';
import { cliEntry } from './cli-bundle.js';
import { fieldgate } from './cli.js';

const ROOT = new URL('../..', import.meta.url).pathname;

export function writeConfig(dir: string, config: unknown): string {
  const file = join(dir, 'gateway.yaml');
  writeFileSync(file, stringify(config));
  return file;
}

export interface GatewayProcess {
  child: ChildProcess;
  log(): string;
  exited: Promise<number | null>;
  /** Resolves once the gateway is running (its signal handlers installed), or once it has exited. */
  running(): Promise<void>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export function runGateway(configFile: string, env: Record<string, string> = {}): GatewayProcess {
  const child = spawn(process.execPath, [cliEntry(), 'run', '-c', configFile], { cwd: ROOT, env: { ...process.env, ...env } });
  let log = '';
  child.stdout!.on('data', (d) => (log += d));
  child.stderr!.on('data', (d) => (log += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return {
    child,
    log: () => log,
    exited,
    async running() {
      while (!log.includes('gateway started') && child.exitCode === null && child.signalCode === null) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    },
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

export async function lastSeq(configFile: string): Promise<number> {
  const r = await fieldgate(['buffer', 'stats', '-c', configFile, '--json']);
  if (r.code !== 0) throw new Error(`buffer stats failed: ${r.stderr}`);
  return JSON.parse(r.stdout).lastSeq as number;
}

/** A QoS 1 subscriber with a persistent session, so a broker restart does not lose what it queued for us. */
export class Collector {
  readonly client: MqttClient;
  readonly seqs = new SeqSet();
  readonly samples: DecodedSample[] = [];
  readonly statuses: Array<Record<string, unknown>> = [];
  readonly events: Array<{ topic: string; msg: Record<string, unknown> }> = [];
  readonly payloadBytes: number[] = [];
  private dict = new Map<number, DictionaryEntry>();

  constructor(url: string, opts: mqtt.IClientOptions = {}, prefix = 'fieldgate') {
    this.client = mqtt.connect(url, { clientId: `collector-${Math.random().toString(16).slice(2)}`, clean: false, reconnectPeriod: 300, ...opts });
    this.client.on('error', () => {});
    this.client.on('connect', () => this.client.subscribe(`${prefix}/+/#`, { qos: 1 }));
    this.client.on('message', (topic, payload) => {
      const kind = topic.split('/').pop();
      const text = payload.toString();
      if (kind === 'telemetry') {
        this.payloadBytes.push(payload.length);
        for (const s of decodeTelemetry(text, (i) => this.dict.get(i))) {
          this.seqs.add(s.seq);
          this.samples.push(s);
        }
        return;
      }
      if (text === '') return;
      const msg = JSON.parse(text) as Record<string, unknown>;
      if (kind === 'status') {
        this.statuses.push(msg);
        if (Array.isArray(msg.points)) {
          for (const p of msg.points as Array<[number, string, string, string | null, string | null]>) {
            this.dict.set(p[0], { index: p[0], device: p[1], point: p[2], unit: p[3] ?? undefined, type: p[4] ?? undefined });
          }
        }
      } else {
        this.events.push({ topic, msg });
        // Stored events (alarms, outbox-recreated) take a seq in the same sequence as samples.
        if (typeof msg.seq === 'number') this.seqs.add(msg.seq);
      }
    });
  }

  async until(cond: () => boolean, timeoutMs = 15_000, what = 'messages'): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (!cond()) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}: ${this.seqs.count} samples, seq ${this.seqs.min}-${this.seqs.max}, statuses ${JSON.stringify(this.statuses.map((s) => s.state))}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  /** Every seq from 1 to last arrived. */
  complete(last: number): boolean {
    return last > 0 && this.seqs.min === 1 && this.seqs.max !== undefined && this.seqs.max >= last && this.seqs.gaps().length === 0;
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.client.end(true, {}, () => resolve()));
  }
}
