/** Types shared by the processing steps: what they read from the configuration and what they emit. */
import { z } from 'zod';
import { alarmSchema, processingKeys, type SEVERITIES } from '../config/processing-schema.js';
import type { Sample } from '../sample.js';

const processingObject = z.object(processingKeys);

/** A point's processing keys as written (defaults optional), so a parsed PointConfig fits as well. */
export type ProcessingConfig = z.input<typeof processingObject>;
export type AlarmConfig = z.input<typeof alarmSchema>;
export type AlarmType = AlarmConfig['type'];
export type Severity = (typeof SEVERITIES)[number];

export interface ProcessingPoint extends ProcessingConfig {
  id: string;
}

/** The part of a configured device the Processor reads; a parsed DeviceConfig fits. */
export interface ProcessingDevice {
  id: string;
  /** Scale of the silence that counts as a gap in the reported series (report.ts). Default 1000. */
  pollIntervalMs?: number;
  points: readonly ProcessingPoint[];
}

/** A sample with the outbox's optional flags (an untrusted timestamp), which processing carries along. */
export type FlaggedSample = Sample & { flags?: number };

export type AlarmState = 'raised' | 'cleared';

export interface AlarmEvent {
  state: AlarmState;
  device: string;
  point: string;
  /** The alarm's id: its configured id, else its type. */
  alarm: string;
  type: AlarmType;
  severity: Severity;
  /**
   * low/high: the sample's value; rateOfChange: the change per perS; stale: the seconds without a good sample.
   * Null only when it is unknown (a clear for an alarm removed from the configuration).
   */
  value: number | null;
  /** The configured limit (stale: afterS). Null only when unknown, as for value. */
  limit: number | null;
  /** The sample that raised or cleared it; for a stale alarm raised without samples, tick's now. */
  ts: number;
  message?: string;
}

export interface ProcessResult {
  samples: FlaggedSample[];
  alarms: AlarmEvent[];
}
