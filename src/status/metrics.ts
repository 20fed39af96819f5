/**
 * Prometheus metrics for /metrics, with prom-client on a registry of its own (no global registration). Most
 * values are counters the sources, outbox and uplink already keep: they are copied in at each scrape from a
 * snapshot, so nothing on the acquisition path calls prom-client. Only the PUBACK latency histogram is fed
 * as PUBACKs arrive.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { StatusSnapshot } from './types.js';

export interface MetricCounts {
  /** Samples stored, by device and quality. */
  samples: ReadonlyMap<string, { device: string; quality: string; count: number }>;
  /** Alarms raised since start, by severity. */
  alarmsRaised: ReadonlyMap<string, number>;
}

const PUBACK_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export class StatusMetrics {
  readonly registry = new Registry();
  private readonly puback: Histogram;
  private readonly gauges: Record<string, Gauge>;
  private readonly counters: Record<string, Counter>;

  constructor(options: { processMetrics?: boolean } = {}) {
    const registers = [this.registry];
    const gauge = (name: string, help: string, labelNames: string[] = []) => new Gauge({ name, help, labelNames, registers });
    const counter = (name: string, help: string, labelNames: string[] = []) => new Counter({ name, help, labelNames, registers });
    this.gauges = {
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
    this.counters = {
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
    this.puback = new Histogram({
      name: 'fieldgate_uplink_puback_seconds',
      help: 'Time from publish to PUBACK',
      buckets: PUBACK_BUCKETS,
      registers,
    });
    if (options.processMetrics !== false) collectDefaultMetrics({ register: this.registry });
  }

  observePuback(ms: number): void {
    if (Number.isFinite(ms) && ms >= 0) this.puback.observe(ms / 1000);
  }

  /** Prometheus text exposition of the snapshot and counts. */
  async render(s: StatusSnapshot, counts: MetricCounts): Promise<string> {
    const g = this.gauges;
    const c = this.counters;
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
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
