import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { CommandGuard, COMMAND_BURST, type AlarmActions, type PointWriter, type WriteOutcome } from '../src/commands/guard.js';
import type { PointFacts } from '../src/commands/policy.js';
import type { AlarmCommand, WriteCommand } from '../src/commands/types.js';
import type { CommandRecord } from '../src/commands/audit.js';
import { Outbox } from '../src/outbox/index.js';
import type { AlarmEvent } from '../src/processing/types.js';

const dirs: string[] = [];
const open: Outbox[] = [];
afterEach(() => {
  for (const o of open.splice(0)) o.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function openOutbox(dir: string): Outbox {
  const ob = Outbox.open({ dir, logger: pino({ level: 'silent' }), commitIntervalMs: 60_000 });
  open.push(ob);
  return ob;
}

const points = new Map<string, PointFacts>([
  ['sp', { type: 'uint16', scale: 0.01, offset: 0, unit: 'bar', write: { min: 1.5, max: 4.5, maxPerMinute: 3 } }],
  ['level', { type: 'uint16', scale: 0.1, offset: 0 }],
]);

interface Harness {
  guard: CommandGuard;
  outbox: Outbox;
  writes: Array<{ point: string; value: unknown }>;
  clock: { now: number };
  delivered: AlarmEvent[];
  records(): CommandRecord[];
}

function harness(dir = mkdtempSync(join(tmpdir(), 'guard-')), opts: { writer?: PointWriter; alarms?: Partial<AlarmActions>; now?: number } = {}): Harness {
  if (!dirs.includes(dir)) dirs.push(dir);
  const outbox = openOutbox(dir);
  const writes: Harness['writes'] = [];
  const clock = { now: opts.now ?? 1_800_000_000_000 };
  const delivered: AlarmEvent[] = [];
  const writer: PointWriter = opts.writer ?? (async (r) => (writes.push({ point: r.point, value: r.value }), { status: 'done', written: r.value, readBack: r.value }));
  const refuse = () => ({ ok: false as const, reason: 'no such alarm' });
  const alarms: AlarmActions = { acknowledge: refuse, shelve: refuse, unshelve: refuse, ...opts.alarms };
  const guard = new CommandGuard({
    now: () => clock.now,
    log: pino({ level: 'silent' }),
    audit: outbox,
    points: (d) => (d === 'pump1' ? points : undefined),
    writer: (d) => (d === 'pump1' ? writer : undefined),
    alarms: () => alarms,
    deliverAlarms: (e) => delivered.push(...e),
  });
  const records = () => outbox.readEvents(0, 1000).map((e) => e.event).filter((e): e is CommandRecord => e.kind === 'command');
  return { guard, outbox, writes, clock, delivered, records };
}

const write = (h: Harness, over: Partial<WriteCommand> = {}): WriteCommand => ({
  kind: 'write', id: 'c1', device: 'pump1', point: 'sp', value: 3.2, expiresAt: h.clock.now + 30_000, origin: 'mqtt', ...over,
});

describe('the command guard', () => {
  it('runs a valid write, audits accepted then result, and answers done with the read-back', async () => {
    const h = harness();
    const r = await h.guard.handle(write(h));
    expect(r).toEqual({ id: 'c1', status: 'done', value: 3.2, readBack: 3.2, ts: h.clock.now });
    expect(h.writes).toEqual([{ point: 'sp', value: 3.2 }]);
    expect(h.records().map((x) => [x.phase, x.result?.status])).toEqual([['accepted', undefined], ['result', 'done']]);
  });

  it('refuses without touching the device, audits the refusal', async () => {
    const h = harness();
    const r = await h.guard.handle(write(h, { value: 9 }));
    expect(r).toMatchObject({ status: 'rejected', reason: '9 bar is above the maximum 4.5 bar' });
    expect((await h.guard.handle(write(h, { id: 'c2', point: 'level' }))).reason).toMatch(/not writable/);
    expect((await h.guard.handle(write(h, { id: 'c3', expiresAt: h.clock.now - 1 }))).status).toBe('expired');
    expect(h.writes).toEqual([]);
    expect(h.records().map((x) => x.phase)).toEqual(['result', 'result', 'result']);
  });

  it('runs a duplicate id once and answers it with the first result, also after a restart', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'guard-'));
    const h = harness(dir);
    const first = await h.guard.handle(write(h));
    expect(await h.guard.handle(write(h, { value: 4 }))).toEqual(first);
    h.outbox.close();
    open.splice(open.indexOf(h.outbox), 1);
    const again = harness(dir, { now: h.clock.now + 1000 });
    expect(await again.guard.handle(write(again, { value: 4 }))).toEqual(first);
    expect([...h.writes, ...again.writes]).toEqual([{ point: 'sp', value: 3.2 }]);
    expect(again.records().map((x) => x.phase)).toEqual(['accepted', 'result', 'duplicate', 'duplicate']);
  });

  it('answers a duplicate that arrives while the first still runs with the same result', async () => {
    let release!: (o: WriteOutcome) => void;
    const h = harness(undefined, { writer: () => new Promise((r) => (release = r)) });
    const a = h.guard.handle(write(h));
    const b = h.guard.handle(write(h));
    await new Promise((r) => setTimeout(r, 10));
    release({ status: 'done', written: 3.2 });
    expect(await b).toEqual(await a);
  });

  it('refuses a retained command', async () => {
    const h = harness();
    expect(await h.guard.handle(write(h), { retained: true })).toMatchObject({ status: 'rejected', reason: expect.stringMatching(/retained command is refused/) });
    expect(h.writes).toEqual([]);
  });

  it('holds a point to its rate limit', async () => {
    const h = harness();
    for (let i = 0; i < 3; i++) expect((await h.guard.handle(write(h, { id: `r${i}` }))).status).toBe('done');
    expect((await h.guard.handle(write(h, { id: 'r3' }))).reason).toMatch(/over the rate limit/);
    h.clock.now += 61_000;
    expect((await h.guard.handle(write(h, { id: 'r4', expiresAt: h.clock.now + 1000 }))).status).toBe('done');
  });

  it('reports a bus failure or a late expiry as the bus says', async () => {
    const h = harness(undefined, { writer: async () => ({ status: 'failed', reason: 'read back 3.1, wrote 3.2' }) });
    expect(await h.guard.handle(write(h))).toMatchObject({ status: 'failed', reason: 'read back 3.1, wrote 3.2' });
    const e = harness(undefined, { writer: async () => ({ status: 'expired', reason: 'expired in the queue' }) });
    expect(await e.guard.handle(write(e))).toMatchObject({ status: 'expired' });
    const t = harness(undefined, { writer: async () => Promise.reject(new Error('boom')) });
    expect(await t.guard.handle(write(t))).toMatchObject({ status: 'failed', reason: 'boom' });
  });

  it('reports a command interrupted by a kill as failed at the next start, once', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'guard-'));
    const h = harness(dir, { writer: () => new Promise(() => {}) });
    void h.guard.handle(write(h));
    await new Promise((r) => setTimeout(r, 10));
    h.outbox.close();
    open.splice(open.indexOf(h.outbox), 1);
    const next = harness(dir);
    const last = next.records().at(-1)!;
    expect(last).toMatchObject({ phase: 'result', result: { id: 'c1', status: 'failed', reason: expect.stringMatching(/stopped before the command finished/) } });
    expect(await next.guard.handle(write(next))).toMatchObject({ status: 'failed' });
    expect(next.writes).toEqual([]);
  });

  it('forgets ids only once their commands could no longer run', async () => {
    const h = harness();
    await h.guard.handle(write(h));
    h.clock.now += 30_000;
    h.guard.tick();
    expect(h.outbox.readState('command/').size).toBe(1);
    h.clock.now += 61_000;
    h.guard.tick();
    expect(h.outbox.readState('command/').size).toBe(0);
  });

  it('refuses past the gateway command rate without an audit event each', async () => {
    const h = harness();
    const results = [];
    for (let i = 0; i < COMMAND_BURST + 5; i++) results.push(await h.guard.handle(write(h, { id: `f${i}`, point: 'nope' })));
    expect(results.filter((r) => /command rate/.test(r.reason ?? ''))).toHaveLength(5);
    expect(h.records()).toHaveLength(COMMAND_BURST);
    expect(h.guard.stats.overLimit).toBe(5);
  });

  it('hands alarm actions to the processor and delivers their events', async () => {
    const ev = { state: 'acknowledged', device: 'pump1', point: 'sp', alarm: 'high' } as unknown as AlarmEvent;
    const h = harness(undefined, { alarms: { acknowledge: (_d, _p, _a, o) => (o.by === 'op' ? { ok: true, events: [ev] } : { ok: false, reason: 'x' }) } });
    const ack: AlarmCommand = { kind: 'alarm', id: 'a1', action: 'ack', device: 'pump1', point: 'sp', alarm: 'high', origin: 'local', by: 'op' };
    expect(await h.guard.handle(ack)).toMatchObject({ status: 'done' });
    expect(h.delivered).toEqual([ev]);
    expect(await h.guard.handle({ ...ack, id: 'a2', action: 'shelve' })).toMatchObject({ status: 'rejected', reason: 'shelve needs durationS' });
    expect(await h.guard.handle({ ...ack, id: 'a3', device: 'x' })).toMatchObject({ status: 'rejected', reason: 'no device "x"' });
    expect(await h.guard.handle({ ...ack, id: 'a4', expiresAt: h.clock.now - 1 })).toMatchObject({ status: 'expired' });
  });
});
