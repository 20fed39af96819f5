/**
 * What every source shares with the rest of the gateway: a source is one bus with its devices; it emits
 * samples into a sink and never throws to its caller. The gateway, the status page and metrics know only
 * these types; each transport family (modbus/, line/) has its own bus behind them.
 */
import type { Logger } from '../log.js';
import type { Sample } from '../sample.js';

export type LinkState = 'connecting' | 'connected' | 'disconnected' | 'stopped';

/** What the status surface and metrics read about each device. */
export interface DeviceHealth {
  device: string;
  /**
   * `unknown` until a poll had an outcome; `ok` after a poll with a valid reply; `failing` after one with no
   * valid reply (silent or garbled) or one cut off by the link.
   */
  state: 'ok' | 'failing' | 'unknown';
  requests: number;
  errors: Record<string, number>;
  lastGoodTs?: number;
  lastError?: string;
  backoffMs: number;
  /** Transactions that got a reply (data or a Modbus exception): what commissioning compares with requests. */
  replies?: number;
  /** Modbus exceptions by code ("2": illegal data address), so a wrong register number shows as such. */
  exceptions?: Record<string, number>;
  /** Request to reply of the last answered transaction, ms. */
  lastResponseMs?: number;
  /** The last answered transactions' response times, ms, oldest first (at most 64): enough for a p95. */
  recentResponseMs?: number[];
}

export interface Source {
  readonly id: string;
  readonly linkState: LinkState;
  health(): DeviceHealth[];
  start(): void;
  stop(): Promise<void>;
}

export interface SourceDeps {
  logger: Logger;
  sink: (samples: Sample[]) => void;
  /**
   * True when the bus starts a poll, false when nothing is due any more or its link is lost: the outbox groups
   * the samples of buses polling in step into one commit instead of one per bus.
   */
  cycle?: (busy: boolean) => void;
}
