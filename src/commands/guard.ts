/**
 * The command guard: every command, from the cloud (fieldgate cmd/write and cmd/alarm, Sparkplug DCMD) or
 * from the technician's CLI, goes through here and only here. It recognises duplicates, judges writes with
 * the pure policy, commits an audit event before anything runs and another with the result, hands a write
 * to its bus's queue (which checks the expiry again right before sending) and an alarm action to the
 * processor. It answers every command with a result and never throws.
 */
import type { GatewayEvent } from '../events.js';
import type { Logger } from '../log.js';
import { RateLimitedLog } from '../sources/ratelog.js';
import type { WriteOutcome, WriteRequest } from '../sources/types.js';
import type { AlarmEvent } from '../processing/types.js';
import { commandRecord } from './audit.js';
import { CommandLedger, LEDGER_MARGIN_MS, type StateRow } from './ledger.js';
import { RATE_WINDOW_MS, judgeWrite, type PointFacts } from './policy.js';
import type { AlarmCommand, Command, CommandResult, CommandStatus, WriteCommand } from './types.js';

/** The longest a command may be valid for (expiresAt - now): a "pump on" is for now, not for tonight. */
export const MAX_TTL_MS = 3_600_000;

/**
 * Commands taken per second, with a burst: far above any operator, far below what would fill the outbox with
 * audit events. Past it a command is refused without its own audit event (counted, logged once a minute).
 */
export const COMMANDS_PER_S = 20;
export const COMMAND_BURST = 100;

export type { WriteOutcome } from '../sources/types.js';

/** A bus's write queue, as the guard hands it a write (Source.write). */
export type PointWriter = (request: WriteRequest) => Promise<WriteOutcome>;

export type AlarmActionResult = { ok: true; events: AlarmEvent[] } | { ok: false; reason: string };

/** The processor's alarm management (ISA-18.2 states), as the guard calls it. */
export interface AlarmActions {
  acknowledge(device: string, point: string, alarm: string, opts: { by?: string; note?: string; ts: number }): AlarmActionResult;
  shelve(device: string, point: string, alarm: string, durationS: number, opts: { by?: string; note?: string; ts: number }): AlarmActionResult;
  unshelve(device: string, point: string, alarm: string, opts: { by?: string; note?: string; ts: number }): AlarmActionResult;
}

export interface GuardDeps {
  /** Gateway clock, ms. */
  now(): number;
  log: Logger;
  /** The outbox: audit events and ledger rows go in one transaction; commit() makes them durable. */
  audit: {
    appendEvent(event: GatewayEvent, state?: StateRow): void;
    commit(): number;
    stats(): { state: string };
    readState(prefix: string): Map<string, string>;
    saveState(rows: readonly StateRow[]): void;
  };
  /** The configured points of a device (undefined: no such device). Read at every command: a reload changes them. */
  points(device: string): ReadonlyMap<string, PointFacts> | undefined;
  /** The write queue of the bus that has this device. */
  writer(device: string): PointWriter | undefined;
  /** The current processor's alarm actions. */
  alarms(): AlarmActions;
  /** Alarm events an action produced: they go the way of every alarm event (outbox with their state rows). */
  deliverAlarms(events: AlarmEvent[]): void;
  maxTtlMs?: number;
}

export interface GuardStats {
  received: number;
  byStatus: Record<CommandStatus, number>;
  duplicates: number;
  /** Refused over COMMANDS_PER_S, without an audit event each. */
  overLimit: number;
  /** Command-in to result-out of the last writes, ms (the bench reads them). */
  lastWriteMs?: number;
}

export class CommandGuard {
  private readonly ledger: CommandLedger;
  private readonly running = new Map<string, Promise<CommandResult>>();
  private readonly writes = new Map<string, number[]>();
  private readonly maxTtlMs: number;
  readonly stats: GuardStats = { received: 0, byStatus: { done: 0, rejected: 0, failed: 0, expired: 0 }, duplicates: 0, overLimit: 0 };
  private readonly quiet: RateLimitedLog;
  private tokens = COMMAND_BURST;
  private refilledAt: number;

  constructor(private readonly deps: GuardDeps) {
    this.maxTtlMs = deps.maxTtlMs ?? MAX_TTL_MS;
    this.quiet = new RateLimitedLog(deps.log, deps.now);
    this.refilledAt = deps.now();
    this.ledger = new CommandLedger(deps.audit.readState('command/'));
    // A command accepted before a stop or a kill has no result: say so, durably, once.
    for (const c of this.ledger.interrupted()) {
      this.finish(c, { status: 'failed', reason: 'the gateway stopped before the command finished; it may or may not have reached the device' });
    }
  }

  /** Judges and runs one command; the result is also audited. `retained`: the broker replayed a retained message. */
  handle(command: Command, opts: { retained?: boolean } = {}): Promise<CommandResult> {
    this.stats.received++;
    if (!this.admit()) {
      this.stats.overLimit++;
      this.quiet.warn('commands', 'over-limit', { id: command.id, origin: command.origin }, `command refused: more than ${COMMANDS_PER_S} commands a second`);
      return Promise.resolve(this.result(command.id, 'rejected', `over the gateway's command rate (${COMMANDS_PER_S} a second)`));
    }
    const seen = this.ledger.get(command.id);
    if (seen) {
      this.stats.duplicates++;
      this.deps.audit.appendEvent(commandRecord('duplicate', command, seen.result));
      this.deps.audit.commit();
      this.quiet.warn('commands', 'duplicate', { id: command.id, origin: command.origin }, 'duplicate command id: answered with its first result, not run again');
      if (seen.result) return Promise.resolve(seen.result);
      return this.running.get(command.id) ?? Promise.resolve(this.result(command.id, 'failed', 'a command with this id was accepted and did not finish'));
    }
    if (opts.retained) {
      return Promise.resolve(this.finish(command, { status: 'rejected', reason: 'a retained command is refused: the broker would deliver it again at every connect' }));
    }
    const run = command.kind === 'write' ? this.write(command) : Promise.resolve(this.alarm(command));
    this.running.set(command.id, run);
    return run.finally(() => this.running.delete(command.id));
  }

  /** Forgets ids whose commands can no longer run; called from the gateway's tick. */
  tick(): void {
    const rows = this.ledger.prune(this.deps.now());
    if (rows.length === 0) return;
    this.deps.audit.saveState(rows);
  }

  private async write(c: WriteCommand): Promise<CommandResult> {
    const started = performance.now();
    const now = this.deps.now();
    const verdict = judgeWrite(c, { now, maxTtlMs: this.maxTtlMs, points: (d) => this.deps.points(d), recentWrites: (d, p) => this.writes.get(key(d, p)) ?? [] });
    if (!verdict.ok) return this.finish(c, { status: verdict.status, reason: verdict.reason });
    const writer = this.deps.writer(c.device);
    if (!writer) return this.finish(c, { status: 'rejected', reason: `the bus of device "${c.device}" takes no writes` });
    if (!this.accept(c)) return this.finish(c, { status: 'failed', reason: `the audit record cannot be written (outbox ${this.deps.audit.stats().state}): not run` });
    this.noteWrite(c, now);
    let outcome: WriteOutcome;
    try {
      outcome = await writer({ device: c.device, point: c.point, value: verdict.value, expiresAt: c.expiresAt });
    } catch (err) {
      outcome = { status: 'failed', reason: (err as Error).message };
    }
    const result = outcome.status === 'done'
      ? this.finish(c, { status: 'done', value: outcome.written, ...(outcome.readBack !== undefined ? { readBack: outcome.readBack } : {}) })
      : this.finish(c, { status: outcome.status, reason: outcome.reason });
    this.stats.lastWriteMs = Math.round((performance.now() - started) * 10) / 10;
    return result;
  }

  private alarm(c: AlarmCommand): CommandResult {
    const now = this.deps.now();
    if (c.expiresAt !== undefined && c.expiresAt <= now) return this.finish(c, { status: 'expired', reason: `expired ${Math.round((now - c.expiresAt) / 1000)} s ago` });
    if (!this.deps.points(c.device)) return this.finish(c, { status: 'rejected', reason: `no device "${c.device}"` });
    const opts = { by: c.by, note: c.note, ts: now };
    const alarms = this.deps.alarms();
    let r: AlarmActionResult;
    if (c.action === 'ack') r = alarms.acknowledge(c.device, c.point, c.alarm, opts);
    else if (c.action === 'unshelve') r = alarms.unshelve(c.device, c.point, c.alarm, opts);
    else if (c.durationS === undefined) r = { ok: false, reason: 'shelve needs durationS' };
    else r = alarms.shelve(c.device, c.point, c.alarm, c.durationS, opts);
    if (!r.ok) return this.finish(c, { status: 'rejected', reason: r.reason });
    this.deps.deliverAlarms(r.events);
    return this.finish(c, { status: 'done' });
  }

  /** The 'accepted' audit record and the pending ledger row, durable before the command runs. */
  private accept(c: Command): boolean {
    this.deps.audit.appendEvent(commandRecord('accepted', c), this.ledger.pending(c, this.keepUntil(c)));
    this.deps.audit.commit();
    return this.deps.audit.stats().state === 'ok';
  }

  private finish(c: Command, r: { status: CommandStatus; reason?: string; value?: unknown; readBack?: unknown }): CommandResult {
    const result: CommandResult = { id: c.id, ...r, ts: this.deps.now() };
    this.stats.byStatus[r.status]++;
    this.deps.audit.appendEvent(commandRecord('result', c, result), this.ledger.finished(c, result, this.keepUntil(c)));
    this.deps.audit.commit();
    const fields = { id: c.id, origin: c.origin, by: c.by, device: c.device, point: c.point, status: r.status, reason: r.reason };
    if (r.status === 'done') this.deps.log.info(fields, `command ${c.kind === 'write' ? 'write' : c.action} done`);
    else this.quiet.warn(`${c.device}/${c.point}`, r.status, fields, `command ${r.status}: ${r.reason ?? ''}`);
    return result;
  }

  /** Token bucket over the gateway clock. */
  private admit(): boolean {
    const now = this.deps.now();
    this.tokens = Math.min(COMMAND_BURST, this.tokens + (Math.max(0, now - this.refilledAt) / 1000) * COMMANDS_PER_S);
    this.refilledAt = now;
    if (this.tokens < 1) return false;
    this.tokens--;
    return true;
  }

  private result(id: string, status: CommandStatus, reason: string): CommandResult {
    return { id, status, reason, ts: this.deps.now() };
  }

  private keepUntil(c: Command): number {
    const now = this.deps.now();
    const until = Math.min(c.expiresAt ?? now + this.maxTtlMs, now + this.maxTtlMs);
    return Math.max(now, Number.isFinite(until) ? until : now + this.maxTtlMs) + LEDGER_MARGIN_MS;
  }

  private noteWrite(c: WriteCommand, now: number): void {
    const k = key(c.device, c.point);
    const list = (this.writes.get(k) ?? []).filter((t) => t > now - RATE_WINDOW_MS);
    list.push(now);
    this.writes.set(k, list);
  }
}

const key = (device: string, point: string) => `${device}\u0000${point}`;
