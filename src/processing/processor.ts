/**
 * The edge processing of every configured point, compiled once. Pure apart from its own state: no I/O, no
 * timers; time comes in with the samples, tick(now) and the injected monotonic clock.
 */
import type { AlarmActionOptions, AlarmActionResult, ManagedAlarm } from './alarm-isa.js';
import { parseAlarmState, orphanClear, alarmStateKey, type RestoredAlarm } from './alarm-state.js';
import { PointPipeline, hasProcessing } from './pipeline.js';
import type { AlarmEvent, AlarmType, FlaggedSample, IsaState, ProcessResult, ProcessingDevice, Severity } from './types.js';

export interface ProcessorOptions {
  /** The alarm states as the outbox holds them: `outbox.readState(ALARM_STATE_PREFIX)`. */
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

/** One configured alarm as it stands (alarmStates()): for the status page and `fieldgate alarms list`. */
export interface AlarmStateView {
  /** Its state row's key, `alarm/{device}/{point}/{alarm}`. */
  key: string;
  device: string;
  point: string;
  alarm: string;
  type: AlarmType;
  severity: Severity;
  state: IsaState;
  /** Shelved until then (ms); absent when not shelved. */
  shelvedUntil?: number;
  /**
   * The condition holds now (after delay and hysteresis), whatever is announced: it differs from the state for
   * a latched alarm that returned and may differ while shelved. Restored alarms take it as holding until a
   * sample says otherwise.
   */
  condition: boolean;
  /** The value of its last event (see AlarmEvent.value); null before any. */
  value: number | null;
  limit: number;
  /** The time of its last event (or of the restored row); null before any. */
  ts: number | null;
  latch: boolean;
  message?: string;
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
 * An operator's acknowledge(), shelve() and unshelve() return `{ ok: true, events }` (emit them the same way:
 * `emit({ samples: [], alarms: events })`) or `{ ok: false, reason }`.
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
  /** Every configured alarm, for shelve expiry and the lists. */
  private readonly alarms: ManagedAlarm[] = [];

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
        this.alarms.push(...pipeline.alarms());
      }
    }
    for (const r of parseAlarmState(options.restored ?? new Map())) {
      const alarm = this.find(r.device, r.point, r.alarm);
      if (alarm) alarm.restore(r);
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

  /**
   * Time passing without samples: shelves ending (unshelved, then raised or cleared as the condition now is),
   * stale alarms, aggregate windows closing, the last value before a gap.
   */
  tick(now: number): ProcessResult {
    const samples: FlaggedSample[] = [];
    const alarms: AlarmEvent[] = this.orphans.map((r) => orphanClear(r, now));
    this.orphans = [];
    if (this.tickers.length === 0 && this.alarms.length === 0) return { samples, alarms };
    const mono = this.mono();
    for (const a of this.alarms) if (a.shelvedUntil !== null) a.expire(now, mono, alarms);
    for (const p of this.tickers) p.tick(now, mono, this.graceMs, samples, alarms);
    return { samples, alarms };
  }

  /**
   * An operator acknowledges an alarm: unacknowledged -> acknowledged (`acknowledged`), or, for a latched alarm
   * whose condition is gone, -> normal (`cleared`); returned-unacknowledged -> normal (`acknowledged`). Refused,
   * with the reason, when the alarm is unknown, normal, already acknowledged or shelved. The events go to the
   * outbox like those of process() and tick(), each with alarmStateEntry(event).
   */
  acknowledge(device: string, point: string, alarm: string, opts: AlarmActionOptions): AlarmActionResult {
    const a = this.find(device, point, alarm);
    return a ? a.acknowledge(opts, this.mono()) : unknown(device, point, alarm);
  }

  /**
   * Shelves an alarm for durationS (1 to its shelveMaxS): its rule keeps evaluating, but it announces nothing
   * until the shelve ends (unshelve(), or tick() at the end), when what the condition is then is announced.
   * Shelving a shelved alarm sets a new end. One `shelved` event.
   */
  shelve(device: string, point: string, alarm: string, durationS: number, opts: AlarmActionOptions): AlarmActionResult {
    const a = this.find(device, point, alarm);
    return a ? a.shelve(durationS, opts, this.mono()) : unknown(device, point, alarm);
  }

  /** Ends a shelve now: `unshelved`, then `raised`, `returned` or `cleared` if the condition changed meanwhile. */
  unshelve(device: string, point: string, alarm: string, opts: AlarmActionOptions): AlarmActionResult {
    const a = this.find(device, point, alarm);
    return a ? a.unshelve(opts, this.mono()) : unknown(device, point, alarm);
  }

  /** Every configured alarm and its state, in configuration order. */
  alarmStates(): AlarmStateView[] {
    return this.alarms.map((a) => {
      const r = a.rule;
      const v: AlarmStateView = {
        key: alarmStateKey(a.device, a.point, r.id),
        device: a.device,
        point: a.point,
        alarm: r.id,
        type: r.type,
        severity: r.severity,
        state: a.state,
        condition: r.condition,
        value: a.lastValue,
        limit: r.limit,
        ts: a.lastTs,
        latch: a.latch,
      };
      if (a.shelvedUntil !== null) v.shelvedUntil = a.shelvedUntil;
      if (r.message !== undefined) v.message = r.message;
      return v;
    });
  }

  /** The alarms raised and not cleared (unacknowledged or acknowledged, shelved or not): a birth's, the status page's. */
  activeAlarms(): ActiveAlarm[] {
    const out: ActiveAlarm[] = [];
    for (const a of this.alarms) {
      if (!a.active) continue;
      const r = a.rule;
      out.push({ key: alarmStateKey(a.device, a.point, r.id), device: a.device, point: a.point, alarm: r.id, type: r.type, severity: r.severity });
    }
    return out;
  }

  private find(device: string, point: string, alarm: string): ManagedAlarm | undefined {
    return this.byDevice.get(device)?.get(point)?.alarm(alarm);
  }
}

const unknown = (device: string, point: string, alarm: string): AlarmActionResult => ({ ok: false, reason: `no alarm ${alarm} on ${device}/${point}` });

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
