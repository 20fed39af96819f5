/**
 * What the status surface remembers between requests: an hour of downsampled history and the readings per
 * quality of every point, the active and recent alarms, and the counters that turn into rates. The latest
 * reading of a point is the core's last-value cache (last-values.ts), read here, not copied. Fed from the
 * gateway's callbacks; everything else is read from the gateway when a snapshot is built. No timers and no
 * I/O here: the clock is injected, so tests step time themselves.
 *
 * Wired by StatusSurface (surface.ts), which `fieldgate run` and the demo use; docs/status.md shows how.
 * A restart-reload keeps the same StatusState (points and alarms carry over) and passes the same callbacks.
 */
import type { Config, DeviceConfig } from '../config/schema.js';
import { LastValues, MAX_POINTS } from '../last-values.js';
import { VERSION } from '../paths.js';
import type { Quality, Sample } from '../sample.js';
import type { DeviceHealth } from '../sources/types.js';
import { DEFAULT_HEALTH_RULES, evaluateHealth, staleAfterMs, type HealthRules } from './health.js';
import { bucketMsFor, emptyChart, HistorySlab, plottable, type HistorySeries } from './history.js';
import { limitsOf, marksOf, type PointChart } from './charts.js';
import { busCommissioning } from './commissioning.js';
import { AlarmBook } from './alarms.js';
import { outboxView, sampleRate, uplinkView, type RateSample } from './delivery.js';
import { AlarmJournal, DEFAULT_JOURNAL_SIZE } from './journal.js';
import { StatusMetrics } from './metrics.js';
import { describeBus, unitsOf, type Units } from './views.js';
import type { AlarmInput, BusView, DeviceView, PointView, StatusGateway, StatusSnapshot, StatusSource } from './types.js';

export interface StatusStateOptions {
  /** Wall clock, ms. Default Date.now. */
  now?: () => number;
  /** Plot resolution with few points; doubled as the point count needs (history.ts, bucketMsFor). Default 20 s. */
  bucketMs?: number;
  /** How far back plots reach. Default one hour. */
  historyMs?: number;
  /** Alarm events kept for the "recent" list. Default 50. */
  recentAlarms?: number;
  /** Entries the alarm journal keeps (raises, clears, acknowledgements, shelves). Default 200. */
  journalSize?: number;
  health?: Partial<HealthRules>;
  /** Node.js process metrics (memory, CPU, event loop) on /metrics. Default true. */
  processMetrics?: boolean;
  /**
   * The core's last-value cache, fed by the gateway before observe() sees the samples. Without it (tests, a page
   * fed only through its hooks) the state keeps one of its own and observe() feeds it.
   */
  values?: LastValues;
}

/** What the page keeps of a point beyond its latest reading: its plot and its readings per quality. */
interface PointEntry {
  counts: Record<Quality, number>;
  /** Its plot's ring in the slab; -1 before its first plottable value. */
  ring: number;
}

export class StatusState {
  readonly startedAt: number;
  readonly metrics: StatusMetrics;
  readonly rules: HealthRules;
  readonly journal: AlarmJournal;
  private readonly now: () => number;
  private readonly baseBucketMs: number;
  /** Every point's plot; its bucket width only ever widens, as points arrive. */
  private readonly slab: HistorySlab;
  private readonly historyMs: number;
  private readonly alarms: AlarmBook;
  private readonly values: LastValues;
  private readonly feedsValues: boolean;
  private readonly points = new Map<string, Map<string, PointEntry>>();
  private pointCount = 0;
  private readonly listeners = new Set<() => void>();
  private rate: RateSample[] = [];
  private downSince: number | null = null;
  private uplinkError: string | undefined;
  private readonly firstSeen = new WeakMap<StatusSource, number>();
  private pubackFed = false;
  private lastPubackAt: number | undefined;
  private configSeen: Config | undefined;

  constructor(options: StatusStateOptions = {}) {
    this.now = options.now ?? Date.now;
    this.baseBucketMs = options.bucketMs ?? 20_000;
    this.historyMs = options.historyMs ?? 3_600_000;
    this.slab = new HistorySlab(this.baseBucketMs, this.historyMs);
    this.alarms = new AlarmBook(options.recentAlarms ?? 50);
    this.journal = new AlarmJournal(options.journalSize ?? DEFAULT_JOURNAL_SIZE);
    this.rules = { ...DEFAULT_HEALTH_RULES, ...options.health };
    this.metrics = new StatusMetrics({ processMetrics: options.processMetrics });
    this.startedAt = this.now();
    this.feedsValues = options.values === undefined;
    this.values = options.values ?? new LastValues();
  }

  /** Every batch the gateway stores (after processing). Cheap: map lookups and a ring write per sample. */
  observe(samples: readonly Sample[]): void {
    if (this.feedsValues) this.values.update(samples);
    let device: Map<string, PointEntry> | undefined;
    let deviceId: string | undefined;
    for (const s of samples) {
      if (s.device !== deviceId) {
        deviceId = s.device;
        device = this.points.get(deviceId);
        if (!device) this.points.set(deviceId, (device = new Map()));
      }
      let p = device!.get(s.point);
      if (!p) {
        if (this.pointCount >= MAX_POINTS) continue;
        p = { counts: { good: 0, bad: 0, uncertain: 0 }, ring: -1 };
        device!.set(s.point, p);
        this.pointCount++;
      }
      p.counts[s.quality]++;
      if (s.quality === 'bad') {
        // Nothing to draw, but the chart shows the stretch as bad rather than as a silent gap.
        if (p.ring >= 0) this.slab.add(p.ring, s.ts, undefined, 'bad');
        continue;
      }
      const v = plottable(s.value);
      if (v === undefined) continue;
      if (p.ring < 0) p.ring = this.newRing();
      this.slab.add(p.ring, s.ts, v, s.quality);
    }
  }

  /** What the plots cost now, bytes; bounded by HISTORY_BUDGET_BYTES whatever the point count. */
  historyBytes(): number {
    return this.slab.bytes;
  }

  /** ArrayBuffers the plots take: one per chunk of rings, not one per point. */
  historyBuffers(): number {
    return this.slab.buffers;
  }

  private get bucketMs(): number {
    return this.slab.bucketMs;
  }

  /** A point's first plotted value: its ring, after widening every ring if one more would not fit the budget. */
  private newRing(): number {
    const width = bucketMsFor(this.slab.rings + 1, this.baseBucketMs, this.historyMs);
    while (this.slab.bucketMs < width) this.slab.widen();
    return this.slab.alloc();
  }

  /** Every alarm event: raises and clears, and the operator's actions once they come. */
  observeAlarm(e: AlarmInput): void {
    this.alarms.observe(e);
    this.journal.alarm(e);
    this.changed();
  }

  /** The latency of each PUBACK (Uplink's onPuback); without it the histogram samples the last one per track(). */
  observePuback(ms: number): void {
    this.pubackFed = true;
    this.metrics.observePuback(ms);
  }

  /** The MQTT session's 'state' events, for the reason it is down; the server subscribes it. */
  observeUplink(state: string, reason?: string): void {
    if (state === 'connected') {
      this.downSince = null;
      this.uplinkError = undefined;
    } else {
      this.downSince ??= this.now();
      if (reason && reason !== 'closed') this.uplinkError = reason;
    }
    this.changed();
  }

  /** Called on alarm and link changes, so live pages update at once. Returns the unsubscribe function. */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Samples the counters that rates are computed from; call every second or so (the server does). */
  track(gateway: StatusGateway): void {
    const now = this.now();
    const session = gateway.session;
    if (!gateway.config.uplink || !session) this.downSince = null;
    else if (session.currentState === 'connected') this.downSince = null;
    else this.downSince ??= now;

    const stats = gateway.uplink?.stats;
    if (stats && !this.pubackFed && stats.lastPubackAt !== undefined && stats.lastPubackAt !== this.lastPubackAt && stats.lastPubackMs !== undefined) {
      this.metrics.observePuback(stats.lastPubackMs);
    }
    this.lastPubackAt = stats?.lastPubackAt;

    this.rate = sampleRate(this.rate, { t: now, acked: stats?.acked ?? 0, samples: gateway.outbox.stats().samples });
  }

  /** The hour of history of one point; undefined for a point never seen. */
  history(device: string, point: string): HistorySeries | undefined {
    const p = this.points.get(device)?.get(point);
    if (!p) return undefined;
    if (p.ring < 0) return { bucketMs: this.bucketMs, t: [], min: [], max: [], last: [] };
    return this.slab.series(p.ring, this.now() - this.historyMs);
  }

  /** One point's chart: its hour with means and qualities, the window's figures, its limits and alarm marks. */
  chart(config: Config, device: string, point: string): PointChart | undefined {
    const p = this.points.get(device)?.get(point);
    const configured = config.devices.find((d) => d.id === device)?.points.some((q) => q.id === point);
    if (!p && !configured) return undefined;
    const since = this.now() - this.historyMs;
    const series = p && p.ring >= 0 ? this.slab.chart(p.ring, since) : emptyChart(this.bucketMs);
    const unit = unitsOf(config).get(device, point);
    return { device, point, ...(unit ? { unit } : {}), ...series, limits: limitsOf(config, device, point), marks: marksOf(this.journal.forPoint(device, point, since)) };
  }

  /** Every point of a device, for overlaying those that share a unit; undefined for an unknown device. */
  deviceChart(config: Config, device: string): { device: string; bucketMs: number; points: PointChart[] } | undefined {
    const d = config.devices.find((x) => x.id === device);
    if (!d) return undefined;
    const ids = new Set([...d.points.map((p) => p.id), ...(this.points.get(device)?.keys() ?? [])]);
    const points = [...ids].map((id) => this.chart(config, device, id)!).filter((c) => c.t.length > 0 || c.bad.length > 0);
    return { device, bucketMs: this.bucketMs, points };
  }

  /** Every point's history, last values only: what the page's small plots need at load. */
  allHistory(): { bucketMs: number; points: Array<{ device: string; point: string; t: number[]; last: number[] }> } {
    const since = this.now() - this.historyMs;
    const points: Array<{ device: string; point: string; t: number[]; last: number[] }> = [];
    for (const [device, byPoint] of this.points) {
      for (const [point, p] of byPoint) {
        if (p.ring < 0) continue;
        const { t, last } = this.slab.series(p.ring, since);
        if (t.length > 0) points.push({ device, point, t, last });
      }
    }
    return { bucketMs: this.bucketMs, points };
  }

  snapshot(gateway: StatusGateway): StatusSnapshot {
    this.track(gateway);
    const config = gateway.config;
    if (config !== this.configSeen) this.prune(config);
    const now = this.now();
    const units = unitsOf(config);
    const alarms = this.alarms.activeAlarms(gateway, units);
    const worst = new Map<string, string>();
    for (const a of alarms) {
      const k = `${a.device}\u0000${a.point}`;
      if (!worst.has(k)) worst.set(k, a.severity); // sorted worst first
    }
    const buses = config.buses.map((bc): BusView => {
      const source = gateway.buses.find((b) => b.id === bc.id);
      if (source && !this.firstSeen.has(source)) this.firstSeen.set(source, now);
      const since = source ? this.firstSeen.get(source)! : now;
      const healths = source?.health() ?? [];
      const health = new Map(healths.map((h) => [h.device, h]));
      const devices = config.devices.filter((d) => d.bus === bc.id).map((d) => this.deviceView(d, health.get(d.id), since, units, worst));
      const commissioning = busCommissioning(bc, config, source, healths);
      return { id: bc.id, transport: bc.transport, target: describeBus(bc), link: source?.linkState ?? 'unknown', devices, commissioning };
    });
    const partial = {
      v: 1 as const,
      gateway: { id: config.gateway.id, version: VERSION },
      now,
      startedAt: this.startedAt,
      plotBucketMs: this.bucketMs,
      alarms: { active: alarms, recent: this.alarms.recent(units) },
      uplink: uplinkView(gateway, this.downSince, this.uplinkError),
      outbox: outboxView(gateway, this.rate),
      buses,
    };
    return { ...partial, health: evaluateHealth(partial, this.rules) };
  }

  /** Prometheus text: the snapshot plus the counts kept here. */
  metricsText(gateway: StatusGateway): Promise<string> {
    const samples = new Map<string, { device: string; quality: string; count: number }>();
    for (const [device, byPoint] of this.points) {
      for (const p of byPoint.values()) {
        for (const quality of ['good', 'bad', 'uncertain'] as const) {
          if (p.counts[quality] === 0) continue;
          const k = `${device}\u0000${quality}`;
          const e = samples.get(k) ?? { device, quality, count: 0 };
          e.count += p.counts[quality];
          samples.set(k, e);
        }
      }
    }
    return this.metrics.render(this.snapshot(gateway), { samples, alarmsRaised: this.alarms.raised });
  }

  private changed(): void {
    for (const l of this.listeners) l();
  }

  /** After a reload: forget devices the configuration no longer has. */
  private prune(config: Config): void {
    this.configSeen = config;
    const ids = new Set(config.devices.map((d) => d.id));
    for (const [device, byPoint] of this.points) {
      if (ids.has(device)) continue;
      this.pointCount -= byPoint.size;
      for (const p of byPoint.values()) if (p.ring >= 0) this.slab.release(p.ring);
      this.points.delete(device);
    }
    // A shared cache is the gateway's to prune (it does at every reload and start).
    if (this.feedsValues) this.values.retain((device) => ids.has(device));
  }

  private deviceView(d: DeviceConfig, h: DeviceHealth | undefined, since: number, units: Units, worst: Map<string, string>): DeviceView {
    const now = this.now();
    const staleAfter = staleAfterMs(d.pollIntervalMs, this.rules);
    const lastGood = h?.lastGoodTs ?? null;
    const stale = lastGood !== null ? now - lastGood > staleAfter : now - since > staleAfter;
    const byPoint = this.points.get(d.id);
    const ids = d.points.map((p) => p.id);
    const configured = new Set(ids);
    // Points the processing adds (aggregates such as flow.avg) follow the configured ones.
    for (const id of [...this.values.points(d.id)].sort()) if (!configured.has(id)) ids.push(id);
    const points = ids.map((id): PointView => {
      const p = this.values.get(d.id, id);
      const unit = units.get(d.id, id);
      const description = d.points.find((c) => c.id === id)?.description;
      const view: PointView = { id, quality: p?.quality ?? null, ts: p?.ts ?? null };
      if (unit) view.unit = unit;
      if (description) view.description = description;
      if (p && p.value !== undefined) view.value = p.value;
      if (p?.reason) view.reason = p.reason;
      if (p && p.quality !== 'good' && p.goodTs !== undefined) view.lastGood = { value: p.goodValue ?? null, ts: p.goodTs };
      const ring = byPoint?.get(id)?.ring ?? -1;
      const bucket = ring >= 0 ? this.slab.current(ring) : undefined;
      if (bucket) view.bucket = bucket;
      const alarm = worst.get(`${d.id}\u0000${id}`);
      if (alarm) view.alarm = alarm;
      return view;
    });
    const errors = { ...(h?.errors ?? {}) };
    return {
      id: d.id,
      state: h?.state ?? 'unknown',
      pollIntervalMs: d.pollIntervalMs,
      requests: h?.requests ?? 0,
      errors,
      errorCount: Object.values(errors).reduce((a, b) => a + b, 0),
      lastGoodTs: lastGood,
      lastError: h?.lastError ?? null,
      backoffMs: h?.backoffMs ?? 0,
      stale,
      points,
    };
  }
}
