/**
 * What a point's chart needs beside its readings: the alarm limits it is held against (drawn as lines) and
 * the alarm raises, returns and clears of the window (drawn as marks), read from the configuration and the journal.
 * No new data path: the readings are the bounded history ring the page already keeps.
 */
import type { Config } from '../config/schema.js';
import type { ChartSeries } from './history.js';
import type { JournalEntry } from './journal.js';

export interface ChartLimit {
  alarm: string;
  type: 'low' | 'high';
  limit: number;
  severity: string;
  hysteresis: number;
}

export interface ChartMark {
  ts: number;
  kind: JournalEntry['kind'];
  alarm: string;
  severity: string;
  value: number | null;
}

export interface PointChart extends ChartSeries {
  device: string;
  point: string;
  unit?: string;
  limits: ChartLimit[];
  marks: ChartMark[];
}

/** The level alarms of a point (low and high); a rate of change or stale alarm has no line to draw. */
export function limitsOf(config: Config, device: string, point: string): ChartLimit[] {
  const p = config.devices.find((d) => d.id === device)?.points.find((q) => q.id === point);
  const out: ChartLimit[] = [];
  for (const a of p?.alarms ?? []) {
    if (a.type !== 'low' && a.type !== 'high') continue;
    out.push({ alarm: a.id ?? a.type, type: a.type, limit: a.limit, severity: a.severity, hysteresis: a.hysteresis });
  }
  return out;
}

/** What the rules did to the alarm (drawn on the chart); an operator's acknowledgement or shelve is in the journal only. */
const MARKED: ReadonlySet<string> = new Set(['raised', 'cleared', 'returned']);

export const marksOf = (entries: JournalEntry[]): ChartMark[] =>
  entries.filter((e) => MARKED.has(e.kind)).map((e) => ({ ts: e.ts, kind: e.kind, alarm: e.alarm, severity: e.severity, value: e.value }));
