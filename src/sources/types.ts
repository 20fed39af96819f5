/**
 * What every source shares with the rest of the gateway: a source is one bus with its devices; it emits
 * samples into a sink and never throws to its caller. The gateway, the status page and metrics know only
 * these types; each transport family (modbus/, line/) has its own bus behind them.
 */
import type { Logger } from '../log.js';
import type { Sample } from '../sample.js';
import type { ToolControl, ToolOutcome, ToolRequest } from './modbus/tools.js';

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
  /** Write transactions sent to the unit (commands; a bus without writes leaves these out). */
  writes?: number;
  /** Writes sent that did not end done: refused by the unit, unanswered, or read back different. */
  writeErrors?: number;
}

/**
 * One value to write to one point, in engineering units (scale and offset are undone by the bus). expiresAt is
 * on the gateway's clock (ms since the epoch, like sample timestamps): past it, nothing is sent.
 */
export interface WriteRequest {
  device: string;
  point: string;
  value: number | boolean | string;
  expiresAt: number;
}

/**
 * How a write ended. done: the unit acknowledged it and, unless the point says readBack: false, reading the point
 * back gave the value written (`written` is what the registers written mean, `readBack` what was read).
 * failed: refused before sending (unknown point, queue full, link down), refused by the unit, unanswered (it may
 * or may not have landed), or read back different; the reason says which. expired: its expiresAt passed before
 * it could be sent, and nothing was.
 */
export type WriteOutcome =
  | { status: 'done'; written: number | boolean | string; readBack?: number | boolean | string }
  | { status: 'failed'; reason: string }
  | { status: 'expired'; reason: string };

export interface Source {
  readonly id: string;
  readonly linkState: LinkState;
  health(): DeviceHealth[];
  start(): void;
  stop(): Promise<void>;
  /**
   * Writes one point, queued on the bus ahead of due polls; never rejects. A source that cannot write (a line
   * bus) leaves it undefined. The caller checks the command first (writable, in range, unexpired); the bus
   * refuses again an unknown device or point and a point without `write`.
   */
  write?(request: WriteRequest): Promise<WriteOutcome>;
  /**
   * The technician's tools on the live bus (a Modbus bus): read any registers of any unit, or scan unit ids for
   * those that answer; queued like a write, one at a time per bus, between polls. Never rejects.
   */
  tool?(request: ToolRequest, control?: ToolControl): Promise<ToolOutcome>;
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
