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
}
