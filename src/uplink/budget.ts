/**
 * The data budget of a metered link (docs/metered.md "Data budget"): the bytes sent and received on the uplink
 * socket by cause, kept per calendar month (UTC) in the outbox state so a restart does not forget them, and the
 * month's projection against uplink.budget.monthlyBytes. The session counts every PUBLISH, PUBACK and inbound
 * message by cause (the packet sizes MQTT gives them) and reads its socket's own byte counters (below TLS when
 * TLS is used); what the socket carried beyond the counted packets is `control`: CONNECT, SUBSCRIBE, pings,
 * DISCONNECT, TLS handshakes and records. Pure but for the clock it is given.
 */

export const CAUSES = ['telemetry', 'backlog', 'status', 'events', 'commands', 'control'] as const;
export type Cause = (typeof CAUSES)[number];
export type ByCause = Record<Cause, number>;

export const zero = (): ByCause => ({ telemetry: 0, backlog: 0, status: 0, events: 0, commands: 0, control: 0 });

/** One month's bytes, as stored under `budget/YYYY-MM` in the outbox state. */
export interface MonthBytes {
  month: string;
  sent: ByCause;
  received: ByCause;
}

export const BUDGET_STATE_PREFIX = 'budget/';

/** `2026-12` for a time in December 2026 (UTC). */
export function monthOf(ts: number): string {
  return new Date(ts).toISOString().slice(0, 7);
}

/** Milliseconds from the start of the month of `ts` to `ts`, and the month's length. */
export function monthSpan(ts: number): { elapsedMs: number; lengthMs: number } {
  const d = new Date(ts);
  const start = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
  const end = Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
  return { elapsedMs: ts - start, lengthMs: end - start };
}

function varintBytes(n: number): number {
  return n < 128 ? 1 : n < 16_384 ? 2 : n < 2_097_152 ? 3 : 4;
}

/** Bytes of a PUBLISH packet: fixed header, topic, packet id (QoS 1), properties (MQTT 5) and payload. */
export function publishBytes(topic: string, payloadBytes: number, qos: 0 | 1, v5: boolean, propertiesBytes = 0): number {
  const remaining = 2 + Buffer.byteLength(topic) + (qos > 0 ? 2 : 0) + (v5 ? varintBytes(propertiesBytes) + propertiesBytes : 0) + payloadBytes;
  return 1 + varintBytes(remaining) + remaining;
}

/** A PUBACK with reason 0 and no properties (MQTT 5 leaves both out; 3.1.1 has neither). */
export const PUBACK_BYTES = 4;

/** The cause of a message by its topic, for fieldgate v1 and Sparkplug B topics; telemetry of a backlog is told by the caller. */
export function causeOfTopic(topic: string): Cause {
  const last = topic.slice(topic.lastIndexOf('/') + 1);
  if (last === 'telemetry') return 'telemetry';
  if (last === 'status') return 'status';
  if (last === 'events' || last === 'alarms') return 'events';
  if (last === 'result' || topic.includes('/cmd/')) return 'commands';
  const sparkplug = /^spBv1\.0\/[^/]+\/([ND][A-Z]+)\//.exec(topic)?.[1] ?? (topic.startsWith('spBv1.0/STATE/') ? 'STATE' : undefined);
  if (sparkplug === 'NDATA' || sparkplug === 'DDATA') return 'telemetry';
  if (sparkplug === 'NCMD' || sparkplug === 'DCMD') return 'commands';
  if (sparkplug !== undefined) return 'status';
  return 'control';
}

/**
 * Counts since the process started (or since take()): bytes of the packets counted by cause, and the socket's
 * totals. take() hands over what was counted since the last take, with `control` the socket's bytes beyond the
 * counted packets.
 */
export class DataMeter {
  private sent = zero();
  private received = zero();
  private wireWritten = 0;
  private wireRead = 0;
  /** Packets counted before the socket's counters showed them (a take() between the two): not control when they do. */
  private owed = { sent: 0, received: 0 };

  publish(cause: Cause, bytes: number): void {
    this.sent[cause] += bytes;
  }

  receive(cause: Cause, bytes: number): void {
    this.received[cause] += bytes;
  }

  /** Bytes a socket wrote and read (add each socket's counters as they grow). */
  wire(written: number, read: number): void {
    this.wireWritten += written;
    this.wireRead += read;
  }

  /** What was counted since the last take; `control` is the socket's bytes beyond the counted packets. */
  take(): { sent: ByCause; received: ByCause } {
    const sent = this.sent;
    const received = this.received;
    const sum = (b: ByCause) => CAUSES.reduce((a, c) => a + b[c], 0);
    const rest = (wire: number, counted: number, way: 'sent' | 'received') => {
      const over = wire - counted - this.owed[way];
      this.owed[way] = Math.max(0, -over);
      return Math.max(0, over);
    };
    sent.control += rest(this.wireWritten, sum(sent), 'sent');
    received.control += rest(this.wireRead, sum(received), 'received');
    this.sent = zero();
    this.received = zero();
    this.wireWritten = 0;
    this.wireRead = 0;
    return { sent, received };
  }
}

export function parseMonth(text: string | undefined, month: string): MonthBytes {
  const empty = { month, sent: zero(), received: zero() };
  if (!text) return empty;
  try {
    const o = JSON.parse(text) as Partial<MonthBytes>;
    const read = (b: unknown): ByCause => {
      const out = zero();
      for (const c of CAUSES) {
        const v = (b as Record<string, unknown> | undefined)?.[c];
        if (typeof v === 'number' && Number.isFinite(v) && v >= 0) out[c] = v;
      }
      return out;
    };
    return { month, sent: read(o.sent), received: read(o.received) };
  } catch {
    return empty;
  }
}

export const totalOf = (m: MonthBytes): number => CAUSES.reduce((a, c) => a + m.sent[c] + m.received[c], 0);

/**
 * The month's bytes at its end if it goes on as so far: used + rate x remaining, the rate taken over at least
 * an hour, so the first minutes of a month (a connect, a birth) do not project a fortune.
 */
export function projectMonth(used: number, now: number): number {
  const { elapsedMs, lengthMs } = monthSpan(now);
  const over = Math.max(elapsedMs, 3_600_000);
  return used + (used / over) * Math.max(0, lengthMs - elapsedMs);
}

/**
 * How much the gateway holds back when the projection exceeds the budget: telemetry batches wait `stretch`
 * times longer (and hold as many times more samples), the backlog drains `stretch` times slower. 1: not throttled.
 * At most 60: a 1 s batch becomes a minute, a backlog drains at a sixtieth.
 */
export function stretchFor(projected: number, monthlyBytes: number): number {
  if (monthlyBytes <= 0 || projected <= monthlyBytes) return 1;
  return Math.min(60, Math.ceil((projected / monthlyBytes) * 2));
}

/** The budget as the uplink reports it (stats, the budget event). */
export interface BudgetState {
  month: string;
  usedBytes: number;
  projectedBytes: number;
  monthlyBytes?: number;
  /** 1: not throttled; above 1, how many times longer telemetry batches wait and slower the backlog drains. */
  stretch: number;
}

/** The month's bytes by cause, kept in the outbox state under budget/YYYY-MM and rolled over at the month's end (UTC). */
export class MonthlyBytes {
  private current: MonthBytes;

  constructor(
    private readonly o: {
      now: () => number;
      read: (key: string) => string | undefined;
      save: (key: string, value: string) => void;
      monthlyBytes?: number;
    },
  ) {
    const month = monthOf(o.now());
    this.current = parseMonth(o.read(BUDGET_STATE_PREFIX + month), month);
  }

  get month(): MonthBytes {
    return this.current;
  }

  add(delta: { sent: ByCause; received: ByCause }): void {
    const month = monthOf(this.o.now());
    // Counted since the last add: at a month's turn it goes to the new month (at most a minute of the old one).
    if (month !== this.current.month) this.current = parseMonth(this.o.read(BUDGET_STATE_PREFIX + month), month);
    for (const c of CAUSES) {
      this.current.sent[c] += delta.sent[c];
      this.current.received[c] += delta.received[c];
    }
  }

  save(): void {
    this.o.save(BUDGET_STATE_PREFIX + this.current.month, JSON.stringify(this.current));
  }

  state(): BudgetState {
    const used = totalOf(this.current);
    const projected = Math.round(projectMonth(used, this.o.now()));
    const limit = this.o.monthlyBytes;
    return { month: this.current.month, usedBytes: used, projectedBytes: projected, ...(limit !== undefined ? { monthlyBytes: limit } : {}), stretch: limit === undefined ? 1 : stretchFor(projected, limit) };
  }
}
