/**
 * Report-by-exception: which samples of a point go to the outbox. The last step, so it sees the alarm
 * transitions and quality changes it must never hide. The exact rule is in docs/processing.md; in short, a
 * sample is reported when it is the point's first, carries an alarm transition, changes the quality, differs
 * from the last reported value by more than the deadband, or comes maxIntervalS after the last report.
 * The last suppressed good sample ("held") is emitted before a quality change and at a gap, so a plot that
 * draws lines between reported points shows the true step instead of a ramp.
 */
import type { Quality, SampleValue } from '../sample.js';
import type { FlaggedSample, ProcessingPoint } from './types.js';

/** A silence longer than this many sample intervals (or poll intervals, the larger) is a gap. */
export const GAP_FACTOR = 3;

type Deadband = { abs: number } | { fraction: number };

/** A number, or "N%"; null for no deadband or a deadband of 0 (every sample passes). */
export function parseDeadband(d: number | string | undefined): Deadband | null {
  if (d === undefined) return null;
  if (typeof d === 'number') return d > 0 ? { abs: d } : null;
  const pct = Number(d.trim().replace(/\s*%$/, ''));
  if (!Number.isFinite(pct) || pct < 0) throw new RangeError(`deadband "${d}" is not a number or a percentage`);
  return pct > 0 ? { fraction: pct / 100 } : null;
}

export interface ReporterOptions {
  /** deadband: the rule above; exceptions (aggregate.raw false): only transitions and quality changes. */
  mode: 'deadband' | 'exceptions';
  deadband: Deadband | null;
  /** Span of range.eng, the base of a percentage; without a range it is |last reported value|. */
  span: number | null;
  maxIntervalMs: number;
  pollMs: number;
}

export class Reporter {
  private last: FlaggedSample | null = null;
  private held: FlaggedSample | null = null;
  /** Quality of the previous sample seen; a stream is taken to start good. */
  private prevQuality: Quality = 'good';
  private prevTs = NaN;
  private prevDt = NaN;

  constructor(private readonly o: ReporterOptions) {}

  /** Decides on one sample; `forced` when it raised or cleared an alarm. Pushes what is reported to `out`. */
  offer(s: FlaggedSample, forced: boolean, out: FlaggedSample[]): void {
    const first = Number.isNaN(this.prevTs);
    const qualityChanged = s.quality !== this.prevQuality;
    const dt = s.ts - this.prevTs;
    if (this.held !== null && (qualityChanged || this.isGap(dt))) this.flushHeld(out);
    let report = forced || qualityChanged;
    if (!report && this.o.mode === 'deadband') {
      const last = this.last;
      report = first || last === null || s.ts - last.ts >= this.o.maxIntervalMs || this.changed(s.value, last.value);
    }
    if (report) {
      out.push(s);
      this.last = s;
      this.held = null;
    } else if (this.o.mode === 'deadband' && s.quality === 'good') {
      this.held = s;
    }
    this.prevQuality = s.quality;
    if (!first) this.prevDt = dt;
    this.prevTs = s.ts;
  }

  /** At a gap without samples, the held sample goes out: the last value before the silence. */
  tick(now: number, out: FlaggedSample[]): void {
    if (this.held !== null && this.isGap(now - this.prevTs)) this.flushHeld(out);
  }

  private isGap(dt: number): boolean {
    const base = this.prevDt > this.o.pollMs ? this.prevDt : this.o.pollMs;
    return dt > GAP_FACTOR * base;
  }

  private flushHeld(out: FlaggedSample[]): void {
    out.push(this.held!);
    this.last = this.held;
    this.held = null;
  }

  /** Same quality as the last report here (a quality change is reported before this is asked). */
  private changed(v: SampleValue, last: SampleValue): boolean {
    if (Object.is(v, last)) return false;
    if (typeof v !== 'number' || typeof last !== 'number') return true;
    const db = this.o.deadband;
    const limit = db === null ? 0 : 'abs' in db ? db.abs : db.fraction * (this.o.span ?? Math.abs(last));
    // Written so that NaN (a value that cannot be compared) counts as a change.
    return !(Math.abs(v - last) <= limit);
  }
}

/** The point's reporter, or undefined when every sample passes (no deadband, or 0, and raw samples wanted). */
export function compileReporter(p: ProcessingPoint, pollMs: number): Reporter | undefined {
  const deadband = parseDeadband(p.deadband);
  const raw = p.aggregate?.raw ?? true;
  if (raw && deadband === null) return undefined;
  return new Reporter({
    mode: raw ? 'deadband' : 'exceptions',
    deadband,
    span: p.range ? Math.abs(p.range.eng[1] - p.range.eng[0]) : null,
    maxIntervalMs: p.maxIntervalS === undefined ? Infinity : p.maxIntervalS * 1000,
    pollMs,
  });
}
