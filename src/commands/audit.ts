/**
 * The audit trail of commands: every command the guard sees and how it ended is an event in the outbox,
 * committed before the command runs and again with its result, so a SIGKILL between the two leaves the
 * record of what was about to happen. The events drain ahead of the backlog like alarms.
 */
import type { Command, CommandResult } from './types.js';

/**
 * accepted: judged and handed to its bus or the alarms (committed before it runs); result: how it ended
 * (also a refusal, without an accepted before it); duplicate: an id seen before, answered with its first result.
 */
export type CommandPhase = 'accepted' | 'result' | 'duplicate';

export interface CommandRecord {
  kind: 'command';
  phase: CommandPhase;
  command: Command;
  result?: CommandResult;
}

export function commandRecord(phase: CommandPhase, command: Command, result?: CommandResult): CommandRecord {
  return result ? { kind: 'command', phase, command, result } : { kind: 'command', phase, command };
}

const PHASES: readonly string[] = ['accepted', 'result', 'duplicate'];
const STATUSES: readonly string[] = ['done', 'rejected', 'failed', 'expired'];
const ORIGINS: readonly string[] = ['mqtt', 'sparkplug', 'local'];
const ACTIONS: readonly string[] = ['ack', 'shelve', 'unshelve'];

const isObj = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
const optStr = (o: Record<string, unknown>, k: string) => o[k] === undefined || typeof o[k] === 'string';

function commandFrom(o: unknown): Command | undefined {
  if (!isObj(o) || typeof o.id !== 'string' || typeof o.device !== 'string' || typeof o.point !== 'string') return undefined;
  if (typeof o.origin !== 'string' || !ORIGINS.includes(o.origin) || !optStr(o, 'by')) return undefined;
  if (o.kind === 'write' && typeof o.expiresAt === 'number' && 'value' in o) return o as unknown as Command;
  if (o.kind === 'alarm' && typeof o.action === 'string' && ACTIONS.includes(o.action) && typeof o.alarm === 'string' && optStr(o, 'note')) {
    if (o.durationS !== undefined && typeof o.durationS !== 'number') return undefined;
    return o as unknown as Command;
  }
  return undefined;
}

function resultFrom(o: unknown): CommandResult | undefined {
  if (!isObj(o) || typeof o.id !== 'string' || typeof o.status !== 'string' || !STATUSES.includes(o.status) || typeof o.ts !== 'number') return undefined;
  if (!optStr(o, 'reason')) return undefined;
  return o as unknown as CommandResult;
}

/** The stored form (the event row's payload). */
export function encodeCommandRecord(r: CommandRecord): string {
  return JSON.stringify({ phase: r.phase, command: r.command, result: r.result });
}

/** Reads a stored row back; undefined when it is not a command record this build can read. */
export function decodeCommandRecord(o: Record<string, unknown>): CommandRecord | undefined {
  if (typeof o.phase !== 'string' || !PHASES.includes(o.phase)) return undefined;
  const command = commandFrom(o.command);
  if (!command) return undefined;
  const result = o.result === undefined ? undefined : resultFrom(o.result);
  if (o.result !== undefined && !result) return undefined;
  return commandRecord(o.phase as CommandPhase, command, result);
}

/**
 * v1: `{"v":1,"event":"command","g","phase","id","command":{…},"result"?:{…}}`; the uplink puts "seq" and
 * "ep" in front (docs/payload.md).
 */
export function commandEventJson(gatewayId: string, r: CommandRecord): string {
  const o: Record<string, unknown> = { v: 1, event: 'command', g: gatewayId, phase: r.phase, id: r.command.id, command: r.command };
  if (r.result) o.result = r.result;
  return JSON.stringify(o);
}
