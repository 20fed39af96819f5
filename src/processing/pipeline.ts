/**
 * One point's compiled processing, built once from its configuration: sensorFault -> range -> alarms ->
 * aggregate -> report-by-exception. Only the steps the point configures exist; the Processor never builds a
 * pipeline for a point without processing keys (those samples pass through untouched).
 */
import { Aggregator, numeric } from './aggregate.js';
import { ManagedAlarm } from './alarm-isa.js';
import { compileAlarm, StaleAlarm, type ValueRule } from './alarms.js';
import { namurCheck } from './namur.js';
import { compileRange, type RangeFn } from './range.js';
import { compileReporter, parseDeadband, type Reporter } from './report.js';
import type { AlarmEvent, FlaggedSample, ProcessingPoint } from './types.js';

/** True when the point has any processing to do. */
export function hasProcessing(p: ProcessingPoint): boolean {
  return (
    p.range !== undefined ||
    p.sensorFault === 'namur' ||
    parseDeadband(p.deadband) !== null ||
    p.aggregate !== undefined ||
    (p.alarms !== undefined && p.alarms.length > 0)
  );
}

export class PointPipeline {
  readonly point: string;
  private readonly range?: RangeFn;
  private readonly namur: boolean;
  readonly rules: ManagedAlarm<ValueRule>[] = [];
  readonly stale: ManagedAlarm<StaleAlarm>[] = [];
  readonly aggregator?: Aggregator;
  private readonly reporter?: Reporter;
  /** Has work to do on tick(): stale alarms, open windows or a held sample. */
  readonly ticks: boolean;

  constructor(
    readonly device: string,
    p: ProcessingPoint,
    pollMs: number,
    startMono: number,
  ) {
    if (p.range) this.range = compileRange(p.range);
    this.namur = p.sensorFault === 'namur';
    for (const cfg of p.alarms ?? []) {
      const rule = compileAlarm(cfg, startMono);
      if (rule instanceof StaleAlarm) this.stale.push(new ManagedAlarm(rule, device, p.id, cfg));
      else this.rules.push(new ManagedAlarm(rule, device, p.id, cfg));
    }
    if (p.aggregate) this.aggregator = new Aggregator(device, p.id, p.aggregate.windowS, p.aggregate.functions);
    this.reporter = compileReporter(p, pollMs);
    this.point = p.id;
    this.ticks = this.stale.length > 0 || this.aggregator !== undefined || this.reporter !== undefined;
  }

  /** An alarm of the point, by id. */
  alarm(id: string): ManagedAlarm | undefined {
    return this.rules.find((a) => a.rule.id === id) ?? this.stale.find((a) => a.rule.id === id);
  }

  /** Every alarm of the point, in configuration order of the value rules, then the stale ones. */
  alarms(): ManagedAlarm[] {
    return [...this.rules, ...this.stale];
  }

  run(s: FlaggedSample, mono: number, out: FlaggedSample[], alarms: AlarmEvent[]): void {
    const x = this.range !== undefined || this.namur ? this.transform(s) : s;
    let forced = false;
    if (this.rules.length > 0) {
      const v = numeric(x);
      if (v !== null) {
        for (const a of this.rules) {
          const t = a.rule.evaluate(x.ts, v);
          if (t !== null && a.onCondition(t, x.ts, mono, alarms)) forced = true;
        }
      }
    }
    for (const a of this.stale) {
      const t = a.rule.onSample(x.ts, x.quality === 'good', mono);
      if (t !== null && a.onCondition(t, x.ts, mono, alarms)) forced = true;
    }
    this.aggregator?.add(x, out);
    if (this.reporter) this.reporter.offer(x, forced, out);
    else out.push(x);
  }

  tick(now: number, mono: number, graceMs: number, out: FlaggedSample[], alarms: AlarmEvent[]): void {
    for (const a of this.stale) {
      const t = a.rule.onTick(mono);
      if (t !== null) a.onCondition(t, now, mono, alarms);
    }
    this.aggregator?.tick(now, graceMs, out);
    this.reporter?.tick(now, out);
  }

  /** sensorFault on the raw current, then range; a new sample, the input is not mutated. */
  private transform(s: FlaggedSample): FlaggedSample {
    if (typeof s.value !== 'number') return s;
    let value: number | null = s.value;
    let quality = s.quality;
    let reason = s.reason;
    if (this.namur && quality !== 'bad') {
      const verdict = namurCheck(value);
      if (verdict?.quality === 'bad') {
        // Null, not the mapped value: a consumer ignoring quality must not plot an open loop as -2.5 bar.
        value = null;
        quality = 'bad';
        reason = verdict.reason;
      } else if (verdict && quality === 'good') {
        quality = 'uncertain';
        reason = verdict.reason;
      }
    }
    if (value !== null && this.range) value = this.range(value);
    const x: FlaggedSample = { ...s, value, quality };
    if (reason !== undefined) x.reason = reason;
    return x;
  }
}
