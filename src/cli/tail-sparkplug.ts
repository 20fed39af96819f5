/**
 * `fieldgate tail --profile sparkplug`: watches spBv1.0/{group}/# and decodes Sparkplug B with the generated
 * code (sparkplug_b_pb.ts). Metrics are named from the aliases of the births seen on this connection; --verify
 * reports, per edge node, the gaps in seq (modulo 256, from each NBIRTH's 0) and every change of bdSeq.
 * SparkplugWatch is the decoding and the bookkeeping without I/O; tailSparkplug wires it to a broker.
 */
import { fromBinary, isFieldSet } from '@bufbuild/protobuf';
import mqtt from 'mqtt';
import { UserError } from '../errors.js';
import { DataType, valueFrom } from '../uplink/profiles/sparkplug/metrics.js';
import { NAMESPACE } from '../uplink/profiles/sparkplug/index.js';
import { Payload_MetricSchema, PayloadSchema, type Payload, type Payload_Metric } from '../uplink/profiles/sparkplug/sparkplug_b_pb.js';

const VERBS = new Set(['NBIRTH', 'NDEATH', 'DBIRTH', 'DDEATH', 'NDATA', 'DDATA', 'NCMD', 'DCMD']);
const QUALITY_NAME: Record<number, string> = { 0: 'bad', 192: 'good', 500: 'stale' };

/** One decoded metric, as `--json` prints it. */
export interface MetricLine {
  kind: string;
  node: string;
  device?: string;
  seq?: number;
  name: string;
  alias?: number;
  ts: number;
  value: number | boolean | string | null;
  historical?: true;
  quality?: number;
  unit?: string;
}

/** A message with no metric to print on its own (deaths), or one of a kind this watch does not decode. */
export interface EventLine {
  event: string;
  node?: string;
  device?: string;
  seq?: number;
  bdSeq?: number;
  metrics?: number;
  state?: unknown;
}

/** One gap in an edge node's seq: after `after`, `next` came, `missing` messages between (modulo 256). */
export interface SeqGap {
  after: number;
  next: number;
  missing: number;
}

export interface NodeVerify {
  event: 'verify';
  group: string;
  node: string;
  messages: number;
  births: number;
  deaths: number;
  missing: number;
  gaps: SeqGap[];
  /** The bdSeq of each NBIRTH and NDEATH in arrival order, a value listed again only when it changed. */
  bdSeqs: number[];
  bdSeqChanges: number;
  /** Data seen before any NBIRTH of the node on this connection (aliases could not be named). */
  beforeBirth: number;
}

/** What a birth said of an alias. */
interface Named {
  name: string;
  datatype: number;
  unit?: string;
}

interface NodeState {
  group: string;
  node: string;
  lastSeq?: number;
  bdSeq?: number;
  names: Map<string, Map<number, Named>>;
  v: Omit<NodeVerify, 'event' | 'group' | 'node'>;
}

/** A metric's property set by key. */
function propertiesOf(m: Payload_Metric): Map<string, Payload_Metric['value']> {
  const props = new Map<string, Payload_Metric['value']>();
  m.properties?.keys.forEach((k, i) => props.set(k, m.properties!.values[i]?.value as Payload_Metric['value']));
  return props;
}

const bdSeqOf = (p: Payload): number | undefined => {
  const m = p.metrics.find((x) => x.name === 'bdSeq');
  return m ? Number(valueFrom(m)) : undefined;
};

export class SparkplugWatch {
  private readonly nodes = new Map<string, NodeState>();

  /** The lines one message becomes; throws on a payload that is not Sparkplug. */
  handle(topic: string, payload: Buffer): Array<MetricLine | EventLine> {
    const parts = topic.split('/');
    if (parts[0] !== NAMESPACE) return [];
    if (parts[1] === 'STATE') {
      let state: unknown = payload.toString('utf8');
      try {
        state = JSON.parse(state as string);
      } catch {
        // a 2.x host's plain ONLINE/OFFLINE
      }
      return [{ event: 'STATE', node: parts[2], state }];
    }
    const [, group = '', verb = '', node = '', device] = parts;
    if (!VERBS.has(verb)) return [];
    const p = fromBinary(PayloadSchema, payload);
    const n = this.node(group, node);
    // Presence, not the value: an absent field reads as its default (a death has no seq, a node metric no alias).
    const seq = isFieldSet(p, PayloadSchema.field.seq) ? Number(p.seq) : undefined;
    if (verb !== 'NCMD' && verb !== 'DCMD') this.count(n, verb, seq, p);
    if (verb === 'NBIRTH') n.names = new Map();
    if (verb === 'NBIRTH' || verb === 'DBIRTH') {
      const names = new Map<number, Named>();
      for (const m of p.metrics) {
        if (!isFieldSet(m, Payload_MetricSchema.field.alias) || !m.name) continue;
        const unit = propertiesOf(m).get('engUnit');
        names.set(Number(m.alias), { name: m.name, datatype: m.datatype || DataType.Double, ...(unit?.case === 'stringValue' ? { unit: unit.value } : {}) });
      }
      n.names.set(device ?? '', names);
    }
    if (verb === 'NDEATH' || verb === 'DDEATH') {
      return [{ event: verb, node, ...(device === undefined ? {} : { device }), ...(seq === undefined ? {} : { seq }), ...(verb === 'NDEATH' ? { bdSeq: bdSeqOf(p) } : {}) }];
    }
    const known = n.names.get(device ?? '');
    const header: EventLine[] = verb === 'NBIRTH' ? [{ event: verb, node, seq, bdSeq: bdSeqOf(p), metrics: p.metrics.length }] : [];
    return [...header, ...p.metrics.map((m) => this.metric(verb, node, device, seq, m, known))];
  }

  /** The --verify summary of every edge node seen. */
  summary(): NodeVerify[] {
    return [...this.nodes.values()].map((n) => ({ event: 'verify', group: n.group, node: n.node, ...n.v, gaps: [...n.v.gaps], bdSeqs: [...n.v.bdSeqs] }));
  }

  private node(group: string, node: string): NodeState {
    const key = `${group}/${node}`;
    let n = this.nodes.get(key);
    if (!n) {
      n = { group, node, names: new Map(), v: { messages: 0, births: 0, deaths: 0, missing: 0, gaps: [], bdSeqs: [], bdSeqChanges: 0, beforeBirth: 0 } };
      this.nodes.set(key, n);
    }
    return n;
  }

  private count(n: NodeState, verb: string, seq: number | undefined, p: Payload): void {
    n.v.messages++;
    if (verb === 'NBIRTH' || verb === 'NDEATH') {
      const bd = bdSeqOf(p);
      if (bd !== undefined) {
        if (n.bdSeq !== undefined && bd !== n.bdSeq) n.v.bdSeqChanges++;
        if (n.bdSeq !== bd) n.v.bdSeqs.push(bd);
        n.bdSeq = bd;
      }
    }
    if (verb === 'NDEATH') {
      // A death ends the session: the next NBIRTH starts again from 0.
      n.v.deaths++;
      n.lastSeq = undefined;
      return;
    }
    if (verb === 'NBIRTH') {
      n.v.births++;
      n.lastSeq = undefined;
    } else if (n.v.births === 0) n.v.beforeBirth++;
    if (seq === undefined) return;
    // The first message of a session is the NBIRTH at 0; anything else before it counts from 0 too.
    const expected = n.lastSeq === undefined ? (verb === 'NBIRTH' ? seq : undefined) : (n.lastSeq + 1) % 256;
    if (expected !== undefined && seq !== expected) {
      const missing = (seq - expected + 256) % 256;
      n.v.gaps.push({ after: n.lastSeq ?? -1, next: seq, missing });
      n.v.missing += missing;
    }
    n.lastSeq = seq;
  }

  private metric(kind: string, node: string, device: string | undefined, seq: number | undefined, m: Payload_Metric, known: Map<number, Named> | undefined): MetricLine {
    const alias = isFieldSet(m, Payload_MetricSchema.field.alias) ? Number(m.alias) : undefined;
    const birth = alias === undefined ? undefined : known?.get(alias);
    const name = m.name || birth?.name || `#${alias ?? '?'}`;
    const datatype = m.datatype || birth?.datatype || DataType.Double;
    const props = propertiesOf(m);
    const quality = props.get('Quality');
    const engUnit = props.get('engUnit');
    const unit = engUnit?.case === 'stringValue' ? engUnit.value : birth?.unit;
    return {
      kind,
      node,
      ...(device === undefined ? {} : { device }),
      ...(seq === undefined ? {} : { seq }),
      name,
      ...(alias === undefined ? {} : { alias }),
      ts: Number(m.timestamp ?? 0n),
      value: valueFrom({ datatype, value: m.value, isNull: m.isNull ?? false }),
      ...(m.isHistorical ? { historical: true as const } : {}),
      ...(quality?.case === 'intValue' ? { quality: quality.value } : {}),
      ...(unit === undefined ? {} : { unit }),
    };
  }
}

/** The line `fieldgate tail` prints for one decoded metric or event, without --json. */
export function formatLine(l: MetricLine | EventLine): string {
  if ('event' in l) {
    if (l.event === 'STATE') return `STATE ${l.node}: ${JSON.stringify(l.state)}`;
    const where = [l.node, l.device].filter(Boolean).join('/');
    return `${l.event} ${where}${l.seq === undefined ? '' : ` seq ${l.seq}`}${l.bdSeq === undefined ? '' : ` bdSeq ${l.bdSeq}`}${l.metrics === undefined ? '' : ` (${l.metrics} metrics)`}`;
  }
  const where = [l.node, l.device].filter(Boolean).join('/');
  const flags = [l.historical ? 'historical' : '', l.quality !== undefined && l.quality !== 192 ? `quality ${l.quality} ${QUALITY_NAME[l.quality] ?? ''}`.trim() : ''].filter(Boolean);
  return `${new Date(l.ts).toISOString()} ${l.kind} ${where} ${l.name} = ${JSON.stringify(l.value)}${l.unit ? ` ${l.unit}` : ''}${flags.length ? ` (${flags.join(', ')})` : ''}`;
}

export function formatVerify(v: NodeVerify): string {
  const gaps = v.gaps.slice(0, 10).map((g) => `${g.after}->${g.next}`).join(', ');
  return `${v.group}/${v.node}: ${v.messages} messages, ${v.births} NBIRTH, ${v.deaths} NDEATH, ${v.missing} missing${v.gaps.length ? ` in ${v.gaps.length} seq gaps: ${gaps}` : ''}; bdSeq ${v.bdSeqs.join(', ') || 'none seen'} (${v.bdSeqChanges} changes)${v.beforeBirth ? `; ${v.beforeBirth} before any NBIRTH` : ''}`;
}

export interface SparkplugTailOptions {
  url: string;
  group?: string;
  /** One edge node (default: all). */
  node?: string;
  json?: boolean;
  verify?: boolean;
  durationS?: number;
  connect: Pick<mqtt.IClientOptions, 'username' | 'password' | 'ca' | 'rejectUnauthorized'>;
}

const out = (line: unknown) => process.stdout.write(`${typeof line === 'string' ? line : JSON.stringify(line)}\n`);

/** Runs until SIGINT, SIGTERM or the duration; with verify, prints one summary per edge node. */
export async function tailSparkplug(o: SparkplugTailOptions): Promise<void> {
  if (!o.group) throw new UserError('--profile sparkplug needs --group <group id>', 2);
  if (/[#+/]/.test(o.group) || (o.node && /[#+/]/.test(o.node))) throw new UserError('--group and --gateway are topic levels: no #, + or /', 2);
  const watch = new SparkplugWatch();
  const client = mqtt.connect(o.url, { ...o.connect, reconnectPeriod: 1000, clean: true, writeCache: false });
  const topics = [`${NAMESPACE}/${o.group}/#`, `${NAMESPACE}/STATE/+`];
  let lastError = '';
  const broken = new Set<string>();
  client.on('connect', () => {
    lastError = '';
    process.stderr.write(`connected to ${o.url}, watching ${topics[0]}\n`);
    client.subscribe(topics, { qos: 1 });
  });
  client.on('error', (err) => {
    if (err.message !== lastError) process.stderr.write(`broker: ${err.message}; retrying\n`);
    lastError = err.message;
  });
  client.on('message', (topic, payload) => {
    const node = topic.split('/')[3];
    if (o.node && topic.split('/')[1] !== 'STATE' && node !== o.node) return;
    let lines;
    try {
      lines = watch.handle(topic, payload);
    } catch (err) {
      if (!broken.has(topic)) process.stderr.write(`${topic}: not a Sparkplug B payload (${(err as Error).message})\n`);
      broken.add(topic);
      return;
    }
    if (o.verify && !o.json) return;
    for (const l of lines) {
      out(o.json ? l : formatLine(l));
    }
  });
  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
    if (o.durationS !== undefined) setTimeout(resolve, o.durationS * 1000);
  });
  await new Promise<void>((resolve) => client.end(true, {}, () => resolve()));
  if (!o.verify) return;
  const summary = watch.summary();
  for (const v of summary) out(o.json ? v : formatVerify(v));
  if (summary.length === 0) out(o.json ? { event: 'verify', messages: 0 } : 'no Sparkplug message received');
}
