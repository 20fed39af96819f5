/**
 * Prometheus metrics for /metrics, with prom-client on a registry of its own (no global registration), loaded at
 * the first scrape: a gateway nobody scrapes never pays for it (its module, about 1.5 MiB of heap, and the process
 * metrics' event-loop sampling). Most values are counters the sources, outbox and uplink already keep: they are
 * copied in at each scrape from a snapshot, so nothing on the acquisition path calls prom-client. The PUBACK
 * latency histogram is counted here as PUBACKs arrive, from the start, and written out with the rest.
 */
import type { Counter, Gauge, Registry } from 'prom-client';
import type { StatusSnapshot } from './types.js';

export interface MetricCounts {
  /** Samples stored, by device and quality. */
  samples: ReadonlyMap<string, { device: string; quality: string; count: number }>;
  /** Alarms raised since start, by severity. */
  alarmsRaised: ReadonlyMap<string, number>;
}

const PUBACK_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const PUBACK_NAME = 'fieldgate_uplink_puback_seconds';
/** Prometheus text format 0.0.4, what prom-client's registry serves. */
const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** Publish-to-PUBACK times in seconds: a Prometheus histogram (cumulative buckets, sum and count). */
class PubackHistogram {
  /** Observations per bucket (not cumulative); the last is above every bound (+Inf). */
  private readonly counts = new Array<number>(PUBACK_BUCKETS.length + 1).fill(0);
  private sum = 0;
  private count = 0;

  observe(seconds: number): void {
    let i = 0;
    while (i < PUBACK_BUCKETS.length && seconds > PUBACK_BUCKETS[i]!) i++;
    this.counts[i]!++;
    this.sum += seconds;
    this.count++;
  }

  text(): string {
    const lines = [`# HELP ${PUBACK_NAME} Time from publish to PUBACK`, `# TYPE ${PUBACK_NAME} histogram`];
    let cumulative = 0;
    PUBACK_BUCKETS.forEach((le, i) => lines.push(`${PUBACK_NAME}_bucket{le="${le}"} ${(cumulative += this.counts[i]!)}`));
    lines.push(`${PUBACK_NAME}_bucket{le="+Inf"} ${this.count}`, `${PUBACK_NAME}_sum ${this.sum}`, `${PUBACK_NAME}_count ${this.count}`);
    return `${lines.join('\n')}\n`;
  }
}

interface Prom {
  registry: Registry;
  gauges: Record<string, Gauge>;
  counters: Record<string, Counter>;
}

async function loadProm(processMetrics: boolean): Promise<Prom> {
  const ns = await import('prom-client');
  // A CommonJS package: its exports are the default export under Node's ESM rules, which the bundle follows.
  const { Counter, Gauge, Registry, collectDefaultMetrics } = (ns as unknown as { default?: typeof ns }).default ?? ns;
  const registry = new Registry();
  const registers = [registry];
  const gauge = (name: string, help: string, labelNames: string[] = []) => new Gauge({ name, help, labelNames, registers });
  const counter = (name: string, help: string, labelNames: string[] = []) => new Counter({ name, help, labelNames, registers });
  const gauges = {
    info: gauge('fieldgate_info', 'Always 1; the labels name the gateway and its version', ['gateway', 'version']),
    health: gauge('fieldgate_health_failing', '1 when /healthz answers 503 (see docs/status.md)'),
    deviceUp: gauge('fieldgate_device_up', '1 while the device answers, 0 while it is failing and backed off', ['bus', 'device']),
    lastGood: gauge('fieldgate_device_last_good_timestamp_seconds', 'Time of the last good response from the device', ['bus', 'device']),
    busConnected: gauge('fieldgate_bus_connected', '1 while the bus (serial port or TCP peer) is connected', ['bus']),
    outboxSamples: gauge('fieldgate_outbox_samples', 'Samples stored and not yet acknowledged by the broker'),
    outboxEvents: gauge('fieldgate_outbox_events', 'Events (alarms, drops) stored and not yet acknowledged'),
    outboxBytes: gauge('fieldgate_outbox_bytes', 'Bytes used by the outbox database'),
    outboxMax: gauge('fieldgate_outbox_max_bytes', 'Configured upper bound of the outbox (buffer.maxBytes)'),
    outboxOldest: gauge('fieldgate_outbox_oldest_age_seconds', 'Age of the oldest sample waiting to be sent (0 when empty)'),
    outboxOk: gauge('fieldgate_outbox_ok', '1 while the outbox accepts writes, 0 on disk full or a storage error'),
    uplinkConnected: gauge('fieldgate_uplink_connected', '1 while the MQTT session is connected'),
    inflight: gauge('fieldgate_uplink_inflight_messages', 'QoS 1 publishes awaiting their PUBACK'),
    lastPuback: gauge('fieldgate_uplink_last_puback_timestamp_seconds', 'Time of the last PUBACK'),
    alarmsActive: gauge('fieldgate_alarms_active', 'Alarms active now', ['severity']),
    monthBytes: gauge('fieldgate_uplink_month_bytes', "This calendar month's bytes on the uplink socket, sent and received (UTC month)"),
    monthProjected: gauge('fieldgate_uplink_month_projected_bytes', "The month's bytes at its end if it goes on at its rate so far"),
    budget: gauge('fieldgate_uplink_budget_bytes', 'uplink.budget.monthlyBytes (0 without a budget)'),
    stretch: gauge('fieldgate_uplink_budget_stretch', '1, or how many times longer telemetry batches wait while the projection is over budget'),
    broker: gauge('fieldgate_uplink_broker_info', 'Always 1; the labels name the broker in use (or dialled next) and its place in uplink.urls (0: the primary)', ['url', 'index']),
  };
  const counters = {
    samples: counter('fieldgate_samples_acquired_total', 'Samples stored in the outbox after processing', ['device', 'quality']),
    requests: counter('fieldgate_device_requests_total', 'Requests sent to the device (Modbus transactions, line queries or lines taken)', ['bus', 'device']),
    errors: counter('fieldgate_device_errors_total', 'Failed requests by kind (timeout, crc, exception, checksum, parse...)', ['bus', 'device', 'kind']),
    dropped: counter('fieldgate_outbox_dropped_samples_total', 'Samples dropped before delivery, by reason', ['reason']),
    published: counter('fieldgate_uplink_published_samples_total', 'Samples handed to the MQTT session'),
    acked: counter('fieldgate_uplink_acked_samples_total', 'Samples acknowledged by the broker (PUBACK)'),
    reconnects: counter('fieldgate_uplink_reconnects_total', 'MQTT connections lost after being established'),
    alarmsRaised: counter('fieldgate_alarms_raised_total', 'Alarms raised since start', ['severity']),
    bytes: counter('fieldgate_uplink_bytes_total', "This calendar month's bytes on the uplink socket by direction and cause; kept across restarts, from 0 at each month's start (UTC)", ['direction', 'cause']),
    brokerSwitches: counter('fieldgate_uplink_broker_switches_total', 'Moves from one broker of uplink.urls to another (failovers and returns to the primary)'),
  };
  // Process metrics (CPU, memory, event loop, GC) count from the first scrape on.
  if (processMetrics) collectDefaultMetrics({ register: registry });
  return { registry, gauges, counters };
}

export class StatusMetrics {
  private readonly puback = new PubackHistogram();
  private prom: Promise<Prom> | undefined;
  private readonly processMetrics: boolean;

  constructor(options: { processMetrics?: boolean } = {}) {
    this.processMetrics = options.processMetrics !== false;
  }

  observePuback(ms: number): void {
    if (Number.isFinite(ms) && ms >= 0) this.puback.observe(ms / 1000);
  }

  /** Prometheus text exposition of the snapshot and counts. */
  async render(s: StatusSnapshot, counts: MetricCounts): Promise<string> {
    // A failed load (a broken install) is retried at the next scrape rather than kept.
    const prom = await (this.prom ??= loadProm(this.processMetrics).catch((err: unknown) => {
      this.prom = undefined;
      throw err;
    }));
    const g = prom.gauges;
    const c = prom.counters;
    for (const m of [...Object.values(g), ...Object.values(c)]) m.reset();
    g.info.set({ gateway: s.gateway.id, version: s.gateway.version }, 1);
    g.health.set(s.health.status === 'failing' ? 1 : 0);
    for (const { device, quality, count } of counts.samples.values()) c.samples.inc({ device, quality }, count);
    for (const b of s.buses) {
      g.busConnected.set({ bus: b.id }, b.link === 'connected' ? 1 : 0);
      for (const d of b.devices) {
        const labels = { bus: b.id, device: d.id };
        g.deviceUp.set(labels, d.state === 'ok' ? 1 : 0);
        if (d.lastGoodTs !== null) g.lastGood.set(labels, d.lastGoodTs / 1000);
        c.requests.inc(labels, d.requests);
        for (const [kind, n] of Object.entries(d.errors)) c.errors.inc({ ...labels, kind }, n);
      }
    }
    const o = s.outbox;
    g.outboxSamples.set(o.samples);
    g.outboxEvents.set(o.events);
    g.outboxBytes.set(o.bytes);
    if (o.maxBytes !== null) g.outboxMax.set(o.maxBytes);
    g.outboxOldest.set(o.oldestTs === null ? 0 : Math.max(0, (s.now - o.oldestTs) / 1000));
    g.outboxOk.set(o.state === 'ok' ? 1 : 0);
    for (const [reason, n] of Object.entries(o.dropped)) c.dropped.inc({ reason }, n);
    const u = s.uplink;
    g.uplinkConnected.set(u.state === 'connected' ? 1 : 0);
    g.inflight.set(u.inflight);
    if (u.lastPubackAt !== null) g.lastPuback.set(u.lastPubackAt / 1000);
    c.published.inc(u.published);
    c.acked.inc(u.acked);
    c.reconnects.inc(u.reconnects);
    if (u.broker) {
      g.broker.set({ url: u.broker.url, index: String(u.broker.index) }, 1);
      c.brokerSwitches.inc(u.broker.switches);
    }
    const b = u.bytes;
    if (b) {
      for (const [direction, byCause] of [['sent', b.sent], ['received', b.received]] as const) {
        for (const [cause, n] of Object.entries(byCause)) c.bytes.inc({ direction, cause }, n);
      }
      g.monthBytes.set(b.total);
      g.monthProjected.set(b.projected);
      if (b.monthlyBytes !== null) g.budget.set(b.monthlyBytes);
      g.stretch.set(b.stretch);
    }
    for (const [severity, n] of counts.alarmsRaised) c.alarmsRaised.inc({ severity }, n);
    const active = new Map<string, number>();
    for (const a of s.alarms.active) active.set(a.severity, (active.get(a.severity) ?? 0) + 1);
    for (const sev of ['critical', 'major', 'minor', 'warning']) g.alarmsActive.set({ severity: sev }, active.get(sev) ?? 0);
    return `${await prom.registry.metrics()}\n${this.puback.text()}`;
  }

  get contentType(): string {
    return CONTENT_TYPE;
  }
}
