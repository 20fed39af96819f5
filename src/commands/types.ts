/**
 * Commands as they come back from the cloud (or the local CLI), before the guard judges them, and their
 * results. A profile parses its own wire form into these; policy, dispatch and audit see only these.
 */

/** Where a command came from: the audit says so. */
export type CommandOrigin = 'mqtt' | 'sparkplug' | 'local';

/** Set a writable point to a value (in engineering units). */
export interface WriteCommand {
  kind: 'write';
  id: string;
  device: string;
  point: string;
  value: unknown;
  /** Absolute expiry, gateway clock ms: a command past it never runs. */
  expiresAt: number;
  origin: CommandOrigin;
  by?: string;
}

/** Acknowledge, shelve or unshelve one alarm of a point. */
export interface AlarmCommand {
  kind: 'alarm';
  id: string;
  action: 'ack' | 'shelve' | 'unshelve';
  device: string;
  point: string;
  alarm: string;
  durationS?: number;
  /** Optional for alarm actions: an acknowledgement that arrives after it is refused as expired. */
  expiresAt?: number;
  origin: CommandOrigin;
  by?: string;
  note?: string;
}

export type Command = WriteCommand | AlarmCommand;

export type CommandStatus = 'done' | 'rejected' | 'failed' | 'expired';

export interface CommandResult {
  id: string;
  status: CommandStatus;
  reason?: string;
  value?: unknown;
  readBack?: unknown;
  ts: number;
}
