/**
 * Sparkplug B 3.0 edge node (docs/sparkplug.md). Every fieldgate device is a Sparkplug device, every point a
 * metric named by its point id with the outbox series id as alias. The births carry every metric with its
 * datatype, unit and current value; data goes by alias, one DDATA per device and batch; rows stored while
 * the link or the primary host was down go as is_historical. The seq runs 0..255 from each NBIRTH; bdSeq
 * +1 at every CONNECT, kept in the outbox state so a restart never reuses one. Data is QoS 0 by the spec:
 * the uplink fences it (Session.fence) before a row leaves the outbox.
 */
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import type { Command } from '../../../commands/types.js';
import type { Quality } from '../../../sample.js';
import { alarmActive } from '../../../processing/index.js';
import type { BirthContext, Inbound, Outgoing, StoredRow, Subscription, UplinkProfile } from '../../profile.js';
import { DataType, datatypeOf, engineeringDatatype, metric, valueFrom } from './metrics.js';
import { PayloadSchema, type Payload_Metric } from './sparkplug_b_pb.js';

export const NAMESPACE = 'spBv1.0';
export const REBIRTH = 'Node Control/Rebirth';

/** The metric of one alarm of a point: true while raised. */
export const alarmMetric = (point: string, alarm: string) => `${point}/Alarms/${alarm}`;

export interface SparkplugOptions {
  groupId: string;
  edgeNodeId: string;
  primaryHostId?: string;
  /** A DCMD expires this long after its timestamp. */
  commandTtlS: number;
  /** Subscribe to DCMD: only when some point is writable (default true); the guard judges each command. */
  takesWrites?: boolean;
  /**
   * Points with a scale or offset (`{device}\u0000{point}`): their engineering values are not integers, so an
   * integer register type goes out as Double.
   */
  scaled?: ReadonlySet<string>;
  /** Where bdSeq lives across restarts (the outbox state). */
  bdSeq: { load(): number | undefined; save(value: number): void };
  version: string;
  now?: () => number;
}

interface Known {
  device: string;
  point: string;
  datatype: number;
  unit?: string;
  alarms?: string[];
  engRange?: [number, number];
  writable: boolean;
}

export interface SparkplugProfile extends UplinkProfile {
  topic(verb: string, device?: string): string;
  /** The bdSeq of the current (or last) CONNECT. */
  readonly bdSeq: number;
}

export function sparkplugProfile(o: SparkplugOptions): SparkplugProfile {
  const now = o.now ?? Date.now;
  const topic = (verb: string, device?: string) => `${NAMESPACE}/${o.groupId}/${verb}/${o.edgeNodeId}${device === undefined ? '' : `/${device}`}`;
  let bdSeq = o.bdSeq.load() ?? -1;
  let seq = 0;
  let known = new Map<number, Known>();
  let byName = new Map<string, Map<string, number>>();
  /** Last quality sent live per alias: Quality is sent when it differs from good or recovers to good. */
  const lastQuality = new Map<number, string>();
  let host = { online: o.primaryHostId === undefined, ts: -Infinity };

  const nextSeq = () => {
    const s = seq;
    seq = (seq + 1) % 256;
    return BigInt(s);
  };
  const encode = (metrics: Payload_Metric[], withSeq = true) =>
    Buffer.from(toBinary(PayloadSchema, create(PayloadSchema, { timestamp: BigInt(now()), seq: withSeq ? nextSeq() : undefined, metrics })));
  const qos0 = (t: string, payload: Buffer): Outgoing => ({ topic: t, payload, qos: 0, retain: false });
  const bdSeqMetric = () => metric({ name: 'bdSeq', datatype: DataType.Int64, as: DataType.Int64, ts: now(), value: bdSeq });
  const death = (): Outgoing => ({ topic: topic('NDEATH'), payload: encode([bdSeqMetric()], false), qos: 1, retain: false });

  function learn(ctx: BirthContext): void {
    known = new Map();
    byName = new Map();
    for (const p of ctx.points) {
      const datatype = o.scaled?.has(`${p.device}\u0000${p.point}`) ? engineeringDatatype(p.type) : datatypeOf(p.type);
      known.set(p.index, { device: p.device, point: p.point, datatype, unit: p.unit, alarms: p.alarms, engRange: p.engRange, writable: p.writable === true });
      if (!byName.has(p.device)) byName.set(p.device, new Map());
      byName.get(p.device)!.set(p.point, p.index);
    }
  }

  function deviceBirth(device: string, ctx: BirthContext): Outgoing {
    const metrics: Payload_Metric[] = [];
    for (const [alias, k] of known) {
      if (k.device !== device) continue;
      const last = ctx.latest?.(k.device, k.point);
      lastQuality.set(alias, last?.quality ?? 'good');
      metrics.push(
        metric({
          name: k.point,
          alias,
          datatype: k.datatype,
          as: k.datatype,
          ts: last?.ts ?? now(),
          value: last?.value ?? null,
          quality: last && last.quality !== 'good' ? last.quality : undefined,
          unit: k.unit,
          engRange: k.engRange,
          readOnly: !k.writable,
        }),
      );
      for (const alarm of k.alarms ?? []) {
        const active = ctx.activeAlarms?.has(`${k.device}/${k.point}/${alarm}`) ?? false;
        metrics.push(metric({ name: alarmMetric(k.point, alarm), datatype: DataType.Boolean, as: DataType.Boolean, ts: now(), value: active }));
      }
    }
    return qos0(topic('DBIRTH', device), encode(metrics));
  }

  function births(ctx: BirthContext): Outgoing[] {
    learn(ctx);
    seq = 0;
    const t = now();
    const node = [
      bdSeqMetric(),
      metric({ name: REBIRTH, datatype: DataType.Boolean, as: DataType.Boolean, ts: t, value: false }),
      metric({ name: 'Properties/Version', datatype: DataType.String, as: DataType.String, ts: t, value: ctx.version }),
      metric({ name: 'Properties/Config Hash', datatype: DataType.String, as: DataType.String, ts: t, value: ctx.configHash }),
      metric({ name: 'Properties/Outbox Epoch', datatype: DataType.String, as: DataType.String, ts: t, value: ctx.epoch }),
      metric({ name: 'Outbox/State', datatype: DataType.String, as: DataType.String, ts: t, value: ctx.outboxState ?? 'ok' }),
    ];
    const out = [qos0(topic('NBIRTH'), encode(node))];
    for (const device of byName.keys()) out.push(deviceBirth(device, ctx));
    return out;
  }

  function samples(rows: readonly StoredRow[], start: number, end: number, backlog: boolean): Outgoing[] {
    const perDevice = new Map<string, Payload_Metric[]>();
    for (let i = start; i < end; i++) {
      const r = rows[i]!;
      const k = known.get(r.series);
      const as = k?.datatype ?? DataType.Double;
      let quality: Quality | undefined = r.quality !== 'good' ? r.quality : undefined;
      if (!backlog) {
        if (r.quality === 'good' && lastQuality.get(r.series) !== 'good') quality = 'good';
        lastQuality.set(r.series, r.quality);
      }
      // A series the last birth did not list goes by name (the uplink publishes a new birth for it).
      const m = metric({ alias: k ? r.series : undefined, name: k ? undefined : r.point, datatype: k ? undefined : as, as, ts: r.ts, value: r.value, quality, historical: backlog, reason: r.quality === 'good' ? undefined : r.reason });
      const list = perDevice.get(r.device);
      if (list) list.push(m);
      else perDevice.set(r.device, [m]);
    }
    return [...perDevice].map(([device, metrics]) => qos0(topic('DDATA', device), encode(metrics)));
  }

  function parseCommand(device: string | undefined, payload: Buffer): Inbound[] {
    let p;
    try {
      p = fromBinary(PayloadSchema, payload);
    } catch (err) {
      return [{ kind: 'invalid', reason: `${device ? 'DCMD' : 'NCMD'} is not a Sparkplug payload: ${(err as Error).message}` }];
    }
    const out: Inbound[] = [];
    for (const m of p.metrics) {
      const name = m.name || (m.alias !== undefined ? known.get(Number(m.alias))?.point : undefined);
      if (device === undefined) {
        if (name === REBIRTH && m.value.case === 'booleanValue' && m.value.value) out.push({ kind: 'rebirth' });
        else out.push({ kind: 'invalid', reason: `NCMD metric "${name ?? `alias ${m.alias}`}" is not one this node takes (only ${REBIRTH})` });
        continue;
      }
      if (!name) {
        out.push({ kind: 'invalid', reason: `DCMD for device "${device}" names no metric fieldgate knows (alias ${m.alias})` });
        continue;
      }
      const ts = Number(m.timestamp || p.timestamp) || now();
      const command: Command = {
        kind: 'write',
        id: `spb:${device}:${name}:${ts}`,
        device,
        point: name,
        value: valueFrom(m),
        expiresAt: ts + o.commandTtlS * 1000,
        origin: 'sparkplug',
      };
      out.push({ kind: 'command', command });
    }
    return out;
  }

  function parseState(payload: Buffer): Inbound {
    let v: unknown;
    try {
      v = JSON.parse(payload.toString('utf8'));
    } catch {
      return { kind: 'invalid', reason: `STATE of host "${o.primaryHostId}" is not JSON` };
    }
    const s = v as { online?: unknown; timestamp?: unknown };
    if (typeof v !== 'object' || v === null || typeof s.online !== 'boolean' || typeof s.timestamp !== 'number') {
      return { kind: 'invalid', reason: `STATE of host "${o.primaryHostId}" lacks {"online": boolean, "timestamp": number}` };
    }
    return { kind: 'host-state', online: s.online, ts: s.timestamp };
  }

  const stateTopic = o.primaryHostId === undefined ? undefined : `${NAMESPACE}/STATE/${o.primaryHostId}`;
  const dcmdPrefix = `${topic('DCMD')}/`;

  return {
    name: 'sparkplug',
    topic,
    get bdSeq() {
      return Math.max(bdSeq, 0);
    },
    will() {
      // Every CONNECT carries the next bdSeq, saved before the dial so a restart never reuses it.
      bdSeq = (bdSeq + 1) % 256;
      o.bdSeq.save(bdSeq);
      return death();
    },
    birth: births,
    offline: death,
    samples: (_epoch, rows, start, end, backlog) => samples(rows, start, end, backlog),
    event(_epoch, e) {
      if (e.event.kind !== 'alarm') return null;
      const a = e.event.alarm;
      // An alarm is a Boolean metric of its device, named {point}/Alarms/{alarm}, listed in the device's birth:
      // true while active (unacknowledged or acknowledged, also a latched one whose value returned).
      const m = metric({ name: alarmMetric(a.point, a.alarm), datatype: DataType.Boolean, as: DataType.Boolean, ts: a.ts, value: alarmActive(a) });
      return qos0(topic('DDATA', a.device), encode([m]));
    },
    dropped: () => null,
    outboxCondition: (c) => qos0(topic('NDATA'), encode([metric({ name: 'Outbox/State', as: DataType.String, ts: c.ts, value: c.state })])),
    ready: () => host.online,
    hostState(online, ts) {
      // An older STATE (a previous host session's will delivered late) says nothing about the current one.
      if (ts < host.ts) return 'ignore';
      const was = host.online;
      host = { online, ts };
      if (online === was) return 'ignore';
      return online ? 'online' : 'offline';
    },
    deviceState(device, alive, ctx) {
      if (!byName.has(device)) return [];
      return alive ? [deviceBirth(device, ctx)] : [qos0(topic('DDEATH', device), encode([]))];
    },
    subscriptions(): Subscription[] {
      const subs: Subscription[] = [
        { filter: topic('NCMD'), qos: 1 },
        ...(o.takesWrites === false ? [] : [{ filter: `${dcmdPrefix}+`, qos: 1 as const }]),
      ];
      if (stateTopic) subs.push({ filter: stateTopic, qos: 1 });
      return subs;
    },
    inbound(t, payload) {
      if (t === topic('NCMD')) return parseCommand(undefined, payload);
      if (t.startsWith(dcmdPrefix)) return parseCommand(t.slice(dcmdPrefix.length), payload);
      if (stateTopic && t === stateTopic) return parseState(payload);
      return null;
    },
    commandResult: () => null,
  };
}
