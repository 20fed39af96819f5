/**
 * The edge processing of every configured point, compiled once. Pure apart from its own state: no I/O, no
 * timers; time comes in with the samples, tick(now) and the injected monotonic clock.
 */
import { parseAlarmState, orphanClear, alarmStateKey, type RestoredAlarm } from './alarm-state.js';
import { PointPipeline, hasProcessing } from './pipeline.js';
import type { AlarmEvent, AlarmType, FlaggedSample, ProcessResult, ProcessingDevice, Severity } from './types.js';

export interface ProcessorOptions {
  /** The active alarms as the outbox holds them: `outbox.readState(ALARM_STATE_PREFIX)`. */
  restored?: ReadonlyMap<string, string>;
  /** Measures the silence of stale alarms, immune to wall-clock steps. Default performance.now. */
  monotonic?: () => number;
  /** How long after a window's end tick() waits for samples acquired before the end. Default 1000. */
  aggregateGraceMs?: number;
}

export interface ActiveAlarm {
  key: string;
  device: string;
  point: string;
  alarm: string;
  type: AlarmType;
  severity: Severity;
}

const DEFAULT_POLL_MS = 1000;

/**
 * Call sequence for the gateway:
 * ```ts
 * const processor = new Processor(config.devices, { restored: outbox.readState(ALARM_STATE_PREFIX) });
 * const emit = ({ samples, alarms }: ProcessResult) => {
 *   // Events first: committed in the same transaction as their state row, read and published before samples.
 *   for (const a of alarms) outbox.appendEvent({ kind: 'alarm', alarm: a }, alarmStateEntry(a));
 *   outbox.append(samples);
 * };
 * sink = (batch) => emit(processor.process(batch));    // every batch from every source, in arrival order
 * setInterval(() => emit(processor.tick(Date.now())), 1000).unref();   // stale alarms, window ends, gaps
 * ```
 * Register `aggregatePoints(config.devices)` with `outbox.seriesId` beside the configured points so the birth
 * message lists them. Sample timestamps and tick's `now` must be on one clock (the sources' wall clock).
 * process() may return its input array itself when no sample needed processing; do not mutate either.
 */
export class Processor {
  private readonly byDevice = new Map<string, Map<string, PointPipeline>>();
  private readonly tickers: PointPipeline[] = [];
  private readonly mono: () => number;
  private readonly graceMs: number;
  /** Restored alarms the configuration no longer has: cleared by the first tick(). */
  private orphans: RestoredAlarm[] = [];

  constructor(devices: readonly ProcessingDevice[], options: ProcessorOptions = {}) {
    this.mono = options.monotonic ?? (() => performance.now());
    this.graceMs = options.aggregateGraceMs ?? 1000;
    const start = this.mono();
    for (const d of devices) {
      for (const p of d.points) {
        if (!hasProcessing(p)) continue;
        const pipeline = new PointPipeline(d.id, p, d.pollIntervalMs ?? DEFAULT_POLL_MS, start);
        let points = this.byDevice.get(d.id);
        if (!points) this.byDevice.set(d.id, (points = new Map()));
        points.set(p.id, pipeline);
        if (pipeline.ticks) this.tickers.push(pipeline);
      }
    }
    for (const r of parseAlarmState(options.restored ?? new Map())) {
      const rule = this.byDevice.get(r.device)?.get(r.point)?.rule(r.alarm);
      if (rule) rule.restore(r);
      else this.orphans.push(r);
    }
  }

  /** Runs a batch through each point's pipeline; samples of points without processing pass untouched. */
  process(samples: FlaggedSample[]): ProcessResult {
    const alarms: AlarmEvent[] = [];
    if (this.byDevice.size === 0) return { samples, alarms };
    let out: FlaggedSample[] | null = null;
    let mono = NaN;
    for (let i = 0; i < samples.length; i++) {
      const s = samples[i];
      const pipeline = this.byDevice.get(s.device)?.get(s.point);
      if (pipeline === undefined) {
        if (out !== null) out.push(s);
        continue;
      }
      if (out === null) out = samples.slice(0, i);
      if (Number.isNaN(mono)) mono = this.mono();
      pipeline.run(s, mono, out, alarms);
    }
    return { samples: out ?? samples, alarms };
  }

  /** Time passing without samples: stale alarms, aggregate windows closing, the last value before a gap. */
  tick(now: number): ProcessResult {
    const samples: FlaggedSample[] = [];
    const alarms: AlarmEvent[] = this.orphans.map((r) => orphanClear(r, now));
    this.orphans = [];
    if (this.tickers.length === 0) return { samples, alarms };
    const mono = this.mono();
    for (const p of this.tickers) p.tick(now, mono, this.graceMs, samples, alarms);
    return { samples, alarms };
  }

  /** The alarms active now (for the status page). */
  activeAlarms(): ActiveAlarm[] {
    const out: ActiveAlarm[] = [];
    for (const points of this.byDevice.values()) {
      for (const p of points.values()) {
        for (const r of [...p.rules, ...p.stale]) {
          if (!r.active) continue;
          out.push({ key: alarmStateKey(p.device, p.point, r.id), device: p.device, point: p.point, alarm: r.id, type: r.type, severity: r.severity });
        }
      }
    }
    return out;
  }
}

/** The `{point}.{fn}` series the aggregates add, per device, to register for the birth message. */
export function aggregatePoints(devices: readonly ProcessingDevice[]): Array<{ device: string; point: string }> {
  const out: Array<{ device: string; point: string }> = [];
  for (const d of devices) {
    for (const p of d.points) {
      for (const fn of p.aggregate?.functions ?? []) out.push({ device: d.id, point: `${p.id}.${fn}` });
    }
  }
  return out;
}
