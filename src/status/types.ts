/**
 * What the status surface reads of the gateway (a narrow view the real Gateway satisfies, easy to fake in
 * tests) and the snapshot it serves as JSON to the page, to /api/status and to /events.
 */
import type { Config } from '../config/schema.js';
import type { DropReason, OutboxState, OutboxStats } from '../outbox/types.js';
import type { ActiveAlarm } from '../processing/processor.js';
import type { AlarmEvent } from '../processing/types.js';
import type { Quality, SampleValue } from '../sample.js';
import type { Command, CommandResult } from '../commands/types.js';
import type { DeviceHealth, LinkState } from '../sources/types.js';
import type { ToolControl, ToolOutcome, ToolRequest } from '../sources/modbus/tools.js';
import type { UplinkStats } from '../uplink/uplink.js';
import type { LineBusCounters, UnitCommissioning } from './commissioning.js';
import type { Bucket } from './history.js';

export interface StatusSource {
  readonly id: string;
  readonly linkState: LinkState;
  health(): DeviceHealth[];
  /** A line bus: what it received that no device took. */
  busHealth?(): { lines: number; errors: { readonly [kind: string]: number | undefined } };
  /** A line bus: the last raw line it received. */
  lastLine?(): { text: string; ts: number } | undefined;
  /** A Modbus bus: a register read or a scan on the live bus (the page's tools). */
  tool?(request: ToolRequest, control?: ToolControl): Promise<ToolOutcome>;
}

export interface StatusSession {
  readonly currentState: string;
  readonly connectedSince: number | undefined;
  readonly reconnects: number;
  on?(event: 'state', listener: (state: string, reason?: string) => void): unknown;
  off?(event: 'state', listener: (state: string, reason?: string) => void): unknown;
}

/** The parts of a running gateway the status surface reads; `startGateway`'s result fits. */
export interface StatusGateway {
  readonly config: Config;
  readonly buses: readonly StatusSource[];
  readonly outbox: { stats(): OutboxStats };
  readonly uplink?: { readonly stats: UplinkStats };
  readonly session?: StatusSession;
  /** Active alarms, including those restored from the outbox at start (no raise event is seen for them). */
  readonly processor?: { activeAlarms(): ActiveAlarm[]; alarmStates?(): AlarmStateInput[] };
  /** The command guard: the page's writes and alarm actions go through it, like the cloud's. */
  readonly commands?: { handle(command: Command): Promise<CommandResult> };
}

/** One configured alarm as the processor tracks it (ISA-18.2): what the page shows beside an active alarm. */
export interface AlarmStateInput {
  device: string;
  point: string;
  alarm: string;
  type: string;
  severity: string;
  /** 'normal', 'unacknowledged', 'acknowledged' or 'returned-unacknowledged'. */
  state: string;
  /** Shelved until then (ms); absent when not shelved. */
  shelvedUntil?: number;
  value: number | null;
  limit: number | null;
  ts: number | null;
  message?: string;
}

/** The gateway, or a getter for it: after a restart-reload `fieldgate run` holds a new Gateway object. */
export type GatewayRef = StatusGateway | (() => StatusGateway);

export const gatewayOf = (ref: GatewayRef): StatusGateway => (typeof ref === 'function' ? ref() : ref);

export type AlarmInput = Pick<AlarmEvent, 'state' | 'device' | 'point' | 'alarm' | 'type' | 'severity' | 'ts'> & {
  value: number | null;
  limit: number | null;
  message?: string;
  /** An operator's action: who (as the command says), the shelve's end (ms) and the note. */
  by?: string;
  until?: number;
  note?: string;
};

export interface AlarmView {
  /** Active alarms: 'raised'. Recent events: what happened (raised, cleared, or an operator's action). */
  state: AlarmInput['state'];
  device: string;
  point: string;
  alarm: string;
  type: string;
  severity: string;
  value: number | null;
  limit: number | null;
  unit?: string;
  /** When it was raised (active) or this event's time (recent); null for an alarm restored at start. */
  ts: number | null;
  message?: string;
  /** Active since before the gateway started: restored from the outbox, no raise seen by this process. */
  restored?: boolean;
  /** Its ISA-18.2 state, when the gateway tracks it: 'unacknowledged', 'acknowledged' or 'returned-unacknowledged'. */
  isa?: string;
  /** Shelved (not announced) until then, ms. */
  shelvedUntil?: number;
}

export interface PointView {
  id: string;
  unit?: string;
  description?: string;
  /** Undefined until the first sample. */
  value?: SampleValue;
  quality: Quality | null;
  reason?: string;
  ts: number | null;
  /** The last good reading, when the current one is not good. */
  lastGood?: { value: SampleValue; ts: number };
  /** The plot's newest bucket [start ms, min, max, last], so the page can extend its plot live. */
  bucket?: Bucket;
  /** Severity of the worst active alarm on this point. */
  alarm?: string;
}

export interface DeviceView {
  id: string;
  state: 'ok' | 'failing' | 'unknown';
  pollIntervalMs: number;
  requests: number;
  errors: Record<string, number>;
  errorCount: number;
  lastGoodTs: number | null;
  lastError: string | null;
  backoffMs: number;
  /** No good response for longer than the health rule allows (see health.ts). */
  stale: boolean;
  points: PointView[];
}

export interface BusView {
  id: string;
  transport: string;
  /** Where it reads: "/dev/ttyUSB0 9600 8N1", "192.168.1.20:502". */
  target: string;
  link: LinkState | 'unknown';
  devices: DeviceView[];
  /** Per unit: requests, replies, faults by kind, response times and the likely cause in words. */
  commissioning: { units: UnitCommissioning[]; cause?: string; line?: LineBusCounters };
}

export interface UplinkView {
  configured: boolean;
  /** Broker URL without credentials. */
  url?: string;
  state: string;
  connectedSince: number | null;
  /** Not connected since then (also before the first connection). */
  downSince: number | null;
  /** The session's reason for the last disconnect or failed attempt. */
  lastError?: string;
  lastPubackAt: number | null;
  lastPubackMs: number | null;
  reconnects: number;
  published: number;
  acked: number;
  inflight: number;
  /** The broker in use (or dialled next) with uplink.urls: its URL without credentials, its place (0: the primary), moves between brokers. */
  broker?: { url: string; index: number; count: number; switches: number };
  /** This calendar month's bytes on the uplink socket (UTC month, kept across restarts), its projection and the budget. */
  bytes?: UplinkBytesView;
}

export interface UplinkBytesView {
  month: string;
  /** By cause: telemetry, backlog, status, events, commands, control (docs/metered.md). */
  sent: Record<string, number>;
  received: Record<string, number>;
  total: number;
  projected: number;
  monthlyBytes: number | null;
  /** 1: not throttled; above 1, how many times longer telemetry batches wait. */
  stretch: number;
}

export interface OutboxView {
  state: OutboxState;
  samples: number;
  events: number;
  bytes: number;
  maxBytes: number | null;
  oldestTs: number | null;
  /** Samples acknowledged by the broker per second, over the last minute; null until measured. */
  drainPerS: number | null;
  /** Seconds until the backlog is empty at the current net rate; null when it is not shrinking. */
  etaS: number | null;
  dropped: Record<DropReason, number>;
  droppedTotal: number;
  pending: number;
}

export type HealthStatus = 'ok' | 'degraded' | 'failing';

export interface HealthReport {
  status: HealthStatus;
  /** Why it is failing (503), in plain words. */
  failing: string[];
  /** Worth a look, still 200. */
  warnings: string[];
}

export interface StatusSnapshot {
  v: 1;
  gateway: { id: string; version: string };
  /** The gateway's clock when the snapshot was taken: the page computes ages against it. */
  now: number;
  startedAt: number;
  /** The plots' bucket width now: it widens as points are added (history.ts); a page reloads its plots then. */
  plotBucketMs: number;
  health: HealthReport;
  alarms: { active: AlarmView[]; recent: AlarmView[] };
  uplink: UplinkView;
  outbox: OutboxView;
  buses: BusView[];
}
