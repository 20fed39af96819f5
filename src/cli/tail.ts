import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import mqtt from 'mqtt';
import { UserError } from '../errors.js';
import { decodeTelemetry, PayloadError, type DictionaryEntry } from '../uplink/payload.js';
import { SeqSet } from '../uplink/seqset.js';
import { tailSparkplug } from './tail-sparkplug.js';

interface TailFlags {
  profile: string;
  group?: string;
  prefix: string;
  gateway?: string;
  json?: boolean;
  verify?: boolean;
  duration?: string;
  username?: string;
  password?: string;
  ca?: string;
  insecure?: boolean;
}

interface Stream {
  gateway: string;
  epoch: string;
  seqs: SeqSet;
  dropped: Array<[number, number]>;
}

const out = (line: unknown) => process.stdout.write(`${typeof line === 'string' ? line : JSON.stringify(line)}\n`);

export function register(program: Command): void {
  program
    .command('tail')
    .summary('watch what gateways publish; --verify counts gaps and duplicates')
    .argument('<broker-url>', 'mqtt://HOST[:PORT], mqtts://, ws:// or wss://')
    .option('--profile <profile>', 'what the gateways publish: fieldgate or sparkplug (Sparkplug B, decoded; --verify: seq gaps, bdSeq)', 'fieldgate')
    .option('--group <id>', 'with --profile sparkplug: the Sparkplug group id (watches spBv1.0/{group}/#)')
    .option('--prefix <prefix>', 'topic prefix', 'fieldgate')
    .option('--gateway <id>', 'one gateway (default: all)')
    .option('--json', 'one JSON object a line: samples, and {"event": ...} for everything else')
    .option('--verify', 'on exit, print received samples, gaps (missing seqs) and duplicates per gateway and epoch')
    .option('--duration <s>', 'exit after this many seconds')
    .option('--username <user>', 'broker user name')
    .option('--password <password>', 'broker password (or FIELDGATE_MQTT_PASSWORD)')
    .option('--ca <file>', 'CA certificate (PEM) for mqtts:// or wss://')
    .option('--insecure', 'do not verify the broker certificate')
    .addHelpText(
      'after',
      `
Examples:
  fieldgate tail mqtt://127.0.0.1:1883 --json
  fieldgate tail mqtt://broker:1883 --gateway bashan-village-01 --verify --duration 60
  fieldgate tail mqtt://broker:1883 --profile sparkplug --group bashan-water --verify`,
    )
    .action(async (url: string, flags: TailFlags) => {
      if (!/^(mqtts?|wss?):\/\//.test(url)) throw new UserError(`"${url}" is not a broker URL: use mqtt://HOST[:PORT]`, 2);
      const duration = flags.duration === undefined ? undefined : Number(flags.duration);
      if (duration !== undefined && !(duration > 0)) throw new UserError(`--duration must be a positive number of seconds`, 2);
      let ca: Buffer | undefined;
      try {
        ca = flags.ca ? readFileSync(flags.ca) : undefined;
      } catch (err) {
        throw new UserError(`cannot read --ca ${flags.ca}: ${(err as Error).message}`);
      }
      if (flags.profile !== 'fieldgate' && flags.profile !== 'sparkplug') throw new UserError(`--profile must be fieldgate or sparkplug, not "${flags.profile}"`, 2);
      if (flags.profile === 'sparkplug') {
        const connect = { username: flags.username, password: flags.password ?? process.env.FIELDGATE_MQTT_PASSWORD, ca, rejectUnauthorized: !flags.insecure };
        return tailSparkplug({ url, group: flags.group, node: flags.gateway, json: flags.json, verify: flags.verify, durationS: duration, connect });
      }
      const dictionaries = new Map<string, Map<number, DictionaryEntry>>();
      const streams = new Map<string, Stream>();
      const stream = (gateway: string, epoch: string): Stream => {
        const key = `${gateway}\u0000${epoch}`;
        let s = streams.get(key);
        if (!s) streams.set(key, (s = { gateway, epoch, seqs: new SeqSet(), dropped: [] }));
        return s;
      };

      const client = mqtt.connect(url, {
        username: flags.username,
        password: flags.password ?? process.env.FIELDGATE_MQTT_PASSWORD,
        ca,
        rejectUnauthorized: !flags.insecure,
        reconnectPeriod: 1000,
        clean: true,
        writeCache: false,
      });
      const topic = `${flags.prefix}/${flags.gateway ?? '+'}/#`;
      let lastError = '';
      client.on('connect', () => {
        lastError = '';
        process.stderr.write(`connected to ${url}, watching ${topic}\n`);
        client.subscribe(topic, { qos: 1 });
      });
      client.on('error', (err) => {
        if (err.message !== lastError) process.stderr.write(`broker: ${err.message}; retrying\n`);
        lastError = err.message;
      });

      client.on('message', (t, payload) => {
        const parts = t.split('/');
        const kind = parts[parts.length - 1];
        const gateway = parts[parts.length - 2] ?? '?';
        const text = payload.toString('utf8');
        if (kind === 'telemetry') {
          let samples;
          try {
            const dict = dictionaries.get(gateway);
            samples = decodeTelemetry(payload, (i) => dict?.get(i));
          } catch (err) {
            const why = err instanceof PayloadError ? err.message : String(err);
            process.stderr.write(`${t}: cannot decode telemetry: ${why}\n`);
            return;
          }
          for (const s of samples) {
            if (flags.verify) stream(s.gateway, s.epoch).seqs.add(s.seq);
            if (flags.json) {
              out({ gateway: s.gateway, seq: s.seq, device: s.device, point: s.point, ts: s.ts, value: s.value, quality: s.quality, ...(s.reason ? { reason: s.reason } : {}), ...(s.timeUntrusted ? { timeUntrusted: true } : {}) });
            } else if (!flags.verify) {
              out(`${new Date(s.ts).toISOString()} ${s.gateway} #${s.seq} ${s.device}/${s.point} = ${JSON.stringify(s.value)}${s.quality === 'good' ? '' : ` (${s.quality}${s.reason ? `: ${s.reason}` : ''})`}`);
            }
          }
          return;
        }
        let msg: Record<string, unknown>;
        try {
          msg = JSON.parse(text);
          if (typeof msg !== 'object' || msg === null) throw new Error('not an object');
        } catch {
          if (text.length > 0) process.stderr.write(`${t}: not JSON, ignored\n`);
          return;
        }
        if (kind === 'status' && Array.isArray(msg.points)) {
          const dict = new Map<number, DictionaryEntry>();
          for (const p of msg.points as unknown[]) {
            if (Array.isArray(p) && typeof p[0] === 'number') dict.set(p[0], { index: p[0], device: String(p[1]), point: String(p[2]), unit: p[3] ?? undefined, type: p[4] ?? undefined });
          }
          dictionaries.set(gateway, dict);
        }
        const event = kind === 'status' ? 'status' : kind === 'alarms' ? 'alarm' : typeof msg.event === 'string' ? msg.event : kind;
        if (flags.verify && typeof msg.ep === 'string') {
          if (typeof msg.seq === 'number') stream(gateway, msg.ep).seqs.add(msg.seq);
          if (event === 'dropped' && Array.isArray(msg.ranges)) {
            for (const r of msg.ranges as Array<{ from: unknown; to: unknown }>) {
              if (typeof r.from === 'number' && typeof r.to === 'number') stream(gateway, msg.ep).dropped.push([r.from, r.to]);
            }
          }
        }
        if (flags.json && event === 'alarm') {
          const { state, device, point, alarm, severity, value, limit, ts, message, seq } = msg;
          out({ event: 'alarm', gateway, seq, state, device, point, alarm, severity, value, limit, ts, ...(message ? { message } : {}) });
        } else if (!flags.json && event === 'alarm' && !flags.verify) {
          out(`${new Date(Number(msg.ts)).toISOString()} ${gateway} ALARM ${String(msg.state).toUpperCase()} ${msg.severity} ${msg.device}/${msg.point} ${msg.alarm}: value ${JSON.stringify(msg.value)}, limit ${JSON.stringify(msg.limit)}${msg.message ? ` (${msg.message})` : ''}`);
        } else if (flags.json) {
          const { points, ...rest } = msg;
          out({ event, gateway, ...rest, ...(Array.isArray(points) ? { points: points.length } : {}) });
        } else if (!flags.verify) {
          out(`${gateway} ${event}: ${text.length > 200 ? `${text.slice(0, 200)}...` : text}`);
        }
      });

      await new Promise<void>((resolve) => {
        const done = () => resolve();
        process.once('SIGINT', done);
        process.once('SIGTERM', done);
        if (duration !== undefined) setTimeout(done, duration * 1000);
      });
      await new Promise<void>((resolve) => client.end(true, {}, () => resolve()));
      if (flags.verify) {
        for (const s of streams.values()) {
          const gaps = s.seqs.gaps();
          const reported = gaps.filter(([a, b]) => s.dropped.some(([x, y]) => x <= a && b <= y));
          const unexplained = gaps.filter((g) => !reported.includes(g));
          const missing = unexplained.reduce((n, [a, b]) => n + b - a + 1, 0);
          const summary = {
            event: 'verify',
            gateway: s.gateway,
            epoch: s.epoch,
            received: s.seqs.count + s.seqs.duplicates,
            unique: s.seqs.count,
            duplicates: s.seqs.duplicates,
            firstSeq: s.seqs.min,
            lastSeq: s.seqs.max,
            missing,
            gaps: unexplained,
            droppedByGateway: reported,
          };
          if (flags.json) out(summary);
          else {
            out(`${s.gateway} epoch ${s.epoch}: ${summary.received} received, ${summary.unique} unique (seq ${summary.firstSeq}-${summary.lastSeq}), ${summary.duplicates} duplicates, ${missing} missing${unexplained.length ? ` in ${unexplained.length} gaps: ${unexplained.slice(0, 10).map(([a, b]) => (a === b ? `${a}` : `${a}-${b}`)).join(', ')}` : ''}${reported.length ? `; ${reported.length} ranges dropped by the gateway (reported)` : ''}`);
          }
        }
        if (streams.size === 0) out(flags.json ? { event: 'verify', received: 0 } : 'no samples received');
      }
    });
}
