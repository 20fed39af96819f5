/**
 * The alarm journal: the last raises and clears, returns, acknowledgements and shelves, each with who and
 * when. A fixed-size ring, newest first when read: the technician's record of what happened on site, and the
 * marks on a point's chart.
 */
import { alarmFields } from './alarms.js';
import type { AlarmInput } from './types.js';

/** What happened: the alarm events' states (raised, cleared, and the operator's actions as they are added). */
export type JournalKind = AlarmInput['state'] | 'acknowledged' | 'shelved' | 'unshelved' | 'returned';

export interface JournalEntry {
  kind: JournalKind;
  device: string;
  point: string;
  alarm: string;
  type?: string;
  severity: string;
  value: number | null;
  limit: number | null;
  /** When it happened, ms (a raise or clear: the sample's time). */
  ts: number;
  /** Who: "gateway" for what the alarm rules decided; a person or the cloud's user for an acknowledgement or shelve. */
  by: string;
  message?: string;
  /** A shelve's end, ms. */
  until?: number;
  note?: string;
}

/** Entries kept: a busy day of a chattering alarm, at about 200 bytes each. */
export const DEFAULT_JOURNAL_SIZE = 200;

export class AlarmJournal {
  private readonly ring: JournalEntry[] = [];
  private next = 0;

  constructor(readonly size = DEFAULT_JOURNAL_SIZE) {}

  /** An alarm event: a raise or clear from the gateway's alarm rules, or an operator's action with who did it. */
  alarm(e: AlarmInput): void {
    this.add({
      kind: e.state,
      ...alarmFields(e),
      by: e.by ?? 'gateway',
      ...(e.until !== undefined ? { until: e.until } : {}),
      ...(e.note ? { note: e.note } : {}),
    });
  }

  add(entry: JournalEntry): void {
    if (this.ring.length < this.size) this.ring.push(entry);
    else this.ring[this.next] = entry;
    this.next = (this.next + 1) % this.size;
  }

  /** Newest first. */
  entries(): JournalEntry[] {
    const n = this.ring.length;
    const out: JournalEntry[] = [];
    for (let i = 1; i <= n; i++) out.push(this.ring[(this.next - i + n * 2) % n]!);
    return out;
  }

  /** One point's entries since `since`, oldest first: the marks on its chart. */
  forPoint(device: string, point: string, since: number): JournalEntry[] {
    return this.entries().filter((e) => e.device === device && e.point === point && e.ts >= since).reverse();
  }
}
