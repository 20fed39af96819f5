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

/**
 * What happened to an alarm. raised, returned (a latched alarm whose condition went away: still active) and
 * cleared come from its rule (and at an unshelve); acknowledged, shelved and unshelved from an operator's
 * command (unshelved also at a shelve's expiry). A latched alarm is cleared by its acknowledgement.
 */
export type AlarmState = 'raised' | 'cleared' | 'returned' | 'acknowledged' | 'shelved' | 'unshelved';

/** The alarm's ISA-18.2 state (shelving is beside it). */
export type IsaState = 'normal' | 'unacknowledged' | 'acknowledged' | 'returned-unacknowledged';

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
   * Null only when it is unknown (a clear for an alarm removed from the configuration). On an operator's
   * action: the value of the alarm's last raise, return or clear (stale while active: the silence so far).
   */
  value: number | null;
  /** The configured limit (stale: afterS). Null only when unknown, as for value. */
  limit: number | null;
  /**
   * The sample that raised, returned or cleared it; for a stale alarm raised without samples, tick's now; for an
   * operator's action, the command's time; at a shelve's expiry and what it brings, tick's now.
   */
  ts: number;
  message?: string;
  /**
   * The alarm's state after this event, where its `state` does not imply it: absent, a raised leaves it
   * unacknowledged and a cleared returned-unacknowledged (stateAfter() reads either). So a raise, and a clear
   * nobody acknowledged, are the objects and the v1 bytes older builds made.
   */
  alarmState?: IsaState;
  /** A latched alarm whose condition is gone, still active and unacknowledged (after its `returned`). */
  returned?: true;
  /** shelved: the end of the shelve (ms, the gateway's clock). */
  until?: number;
  /** Who acknowledged, shelved or unshelved it (as the command says); absent at a shelve's expiry. */
  by?: string;
  /** The operator's note with an acknowledgement, a shelve or an unshelve. */
  note?: string;
}

export interface ProcessResult {
  samples: FlaggedSample[];
  alarms: AlarmEvent[];
}
