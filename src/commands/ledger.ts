/**
 * The command ids the guard has seen, with how each ended, kept in the outbox's state table beside the audit
 * event that records it (one transaction), so a duplicate (a QoS 1 redelivery, an operator pressing twice, a
 * restart) is answered with its first result and never runs twice. An id is kept until its command could no
 * longer run anyway (its expiry, bounded by the guard's longest TTL) plus a margin; a command still pending
 * when the gateway stopped is found at the next start and reported as interrupted.
 */
import type { Command, CommandResult } from './types.js';

export const LEDGER_PREFIX = 'command/';
/** Ids kept past their expiry: a redelivery that arrives just after is still recognised. */
export const LEDGER_MARGIN_MS = 60_000;
/** At most this many ids are kept; past it the oldest go (a flood of ids must not grow the state table). */
export const LEDGER_MAX = 10_000;

export interface LedgerEntry {
  /** pending: accepted and handed to its bus; the result comes later. */
  status: 'pending' | 'finished';
  keepUntil: number;
  command: Command;
  result?: CommandResult;
}

export interface StateRow {
  key: string;
  value: string | null;
}

export class CommandLedger {
  private readonly entries = new Map<string, LedgerEntry>();

  /** Reads the rows of a previous run (`outbox.readState(LEDGER_PREFIX)`); unreadable rows are skipped. */
  constructor(rows: ReadonlyMap<string, string> = new Map()) {
    const loaded: LedgerEntry[] = [];
    for (const [key, value] of rows) {
      if (!key.startsWith(LEDGER_PREFIX)) continue;
      try {
        const e = JSON.parse(value) as LedgerEntry;
        if ((e.status === 'pending' || e.status === 'finished') && typeof e.keepUntil === 'number' && typeof e.command?.id === 'string') loaded.push(e);
      } catch {
        // A torn or foreign row: the id is forgotten, and its command has expired by the time it could matter.
      }
    }
    loaded.sort((a, b) => a.keepUntil - b.keepUntil);
    for (const e of loaded) this.entries.set(e.command.id, e);
  }

  get size(): number {
    return this.entries.size;
  }

  get(id: string): LedgerEntry | undefined {
    return this.entries.get(id);
  }

  /** Commands accepted by a previous run that never got a result (the gateway stopped or was killed meanwhile). */
  interrupted(): Command[] {
    return [...this.entries.values()].filter((e) => e.status === 'pending').map((e) => e.command);
  }

  /** Records an accepted command; the row goes into the outbox with its 'accepted' audit event. */
  pending(command: Command, keepUntil: number): StateRow {
    return this.put({ status: 'pending', keepUntil, command });
  }

  /** Records how a command ended; the row goes with its 'result' audit event. */
  finished(command: Command, result: CommandResult, keepUntil: number): StateRow {
    return this.put({ status: 'finished', keepUntil, command, result });
  }

  /** Forgets what may be forgotten (kept past keepUntil, or the oldest over LEDGER_MAX); returns the deletions. */
  prune(now: number): StateRow[] {
    const out: StateRow[] = [];
    for (const [id, e] of this.entries) {
      if (e.keepUntil > now && this.entries.size - out.length <= LEDGER_MAX) continue;
      if (e.status === 'pending' && e.keepUntil > now) continue;
      out.push({ key: LEDGER_PREFIX + id, value: null });
    }
    for (const r of out) this.entries.delete(r.key.slice(LEDGER_PREFIX.length));
    return out;
  }

  private put(e: LedgerEntry): StateRow {
    // Re-inserted at the end, so Map order stays roughly oldest first.
    this.entries.delete(e.command.id);
    this.entries.set(e.command.id, e);
    return { key: LEDGER_PREFIX + e.command.id, value: JSON.stringify(e) };
  }
}
