import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { MAX_FLAGS, Outbox, type SampleInput, type StoredSample } from '../src/outbox/index.js';
import { RECENT_MAX } from '../src/outbox/recent.js';

const sampleArb: fc.Arbitrary<SampleInput> = fc.record(
  {
    device: fc.oneof(fc.constantFrom('pump1', 'pump2', 'tunnel'), fc.string({ maxLength: 6 })),
    point: fc.oneof(fc.constantFrom('level', 'flow', 'state'), fc.string({ maxLength: 6 })),
    ts: fc.oneof(fc.integer({ min: 0, max: 2 ** 42 }), fc.double({ min: 0, max: 1e13, noNaN: true })),
    value: fc.oneof(fc.double(), fc.integer(), fc.boolean(), fc.string({ maxLength: 12 }), fc.constant(null)),
    quality: fc.constantFrom('good' as const, 'bad' as const, 'uncertain' as const),
    reason: fc.string({ maxLength: 10 }),
    flags: fc.integer({ min: 0, max: MAX_FLAGS }),
  },
  { requiredKeys: ['device', 'point', 'ts', 'value', 'quality'] },
);

type Cmd =
  | { op: 'append'; samples: SampleInput[] }
  | { op: 'commit' }
  | { op: 'ack'; from: number; len: number }
  | { op: 'reopen' };

const cmdArb: fc.Arbitrary<Cmd> = fc.oneof(
  { arbitrary: fc.record({ op: fc.constant('append' as const), samples: fc.array(sampleArb, { maxLength: 150 }) }), weight: 4 },
  { arbitrary: fc.record({ op: fc.constant('commit' as const) }), weight: 2 },
  { arbitrary: fc.record({ op: fc.constant('ack' as const), from: fc.nat(120), len: fc.nat(20) }), weight: 3 },
  { arbitrary: fc.record({ op: fc.constant('reopen' as const) }), weight: 1 },
);

type Expected = Omit<StoredSample, 'series'>;

/** What `read` must return for a sample appended as `s` (its series index is checked separately). */
function expected(s: SampleInput, seq: number): Expected {
  const { flags, reason, ...rest } = s;
  return { ...rest, ...(reason === undefined ? {} : { reason }), seq, flags: flags ?? 0 };
}

describe('outbox property', () => {
  it('keeps seq monotonic and every un-acked committed sample readable exactly once', () => {
    fc.assert(
      fc.property(fc.array(cmdArb, { maxLength: 30 }), (cmds) => {
        const dir = mkdtempSync(join(tmpdir(), 'outbox-prop-'));
        // Clock at 0: no generated ts is ever older than maxAge, so only acks remove rows.
        const open = () => Outbox.open({ dir, logger: pino({ level: 'silent' }), commitIntervalMs: 60_000, clock: () => 0 });
        let ob = open();
        const model = new Map<number, Expected>();
        const seriesOf = new Map<string, number>();
        let queued: SampleInput[] = [];
        let lastSeq = 0;
        const settle = () => {
          for (const s of queued) model.set(++lastSeq, expected(s, lastSeq));
          queued = [];
        };
        try {
          for (const cmd of cmds) {
            if (cmd.op === 'append') {
              ob.append(cmd.samples);
              queued.push(...cmd.samples);
            } else if (cmd.op === 'commit') {
              expect(ob.commit()).toBe(queued.length);
              settle();
            } else if (cmd.op === 'ack') {
              const to = cmd.from + cmd.len;
              let removed = 0;
              for (const seq of [...model.keys()]) if (seq >= cmd.from && seq <= to && model.delete(seq)) removed++;
              expect(ob.ack([[cmd.from, to]])).toBe(removed);
            } else {
              ob.close();
              settle();
              ob = open();
            }
            expect(ob.stats().lastSeq).toBe(lastSeq);
            const stored = ob.read(0, 100_000);
            const want = [...model.values()].sort((a, b) => a.seq - b.seq);
            expect(stored.map(({ series: _, ...s }) => s)).toEqual(want);
            // One index per (device, point), for good.
            for (const s of stored) {
              const key = JSON.stringify([s.device, s.point]);
              expect(seriesOf.get(key) ?? s.series).toBe(s.series);
              seriesOf.set(key, s.series);
            }
            for (let i = 1; i < stored.length; i++) expect(stored[i].seq).toBeGreaterThan(stored[i - 1].seq);
          }
          // What is still queued gets the next seqs, above everything ever handed out.
          ob.commit();
          const fresh = ob.read(lastSeq, 100_000);
          expect(fresh.map((s) => s.seq)).toEqual(queued.map((_, i) => lastSeq + 1 + i));
        } finally {
          ob.close();
          rmSync(dir, { recursive: true, force: true });
        }
      }),
      { numRuns: 60 },
    );
  });
});

type CacheCmd =
  | { op: 'add'; samples: SampleInput[] }
  | { op: 'ack'; from: number; len: number }
  | { op: 'retime'; from: number; len: number }
  | { op: 'age' }
  | { op: 'read'; after: number; limit: number; span: number };

const cacheCmdArb: fc.Arbitrary<CacheCmd> = fc.oneof(
  { arbitrary: fc.record({ op: fc.constant('add' as const), samples: fc.array(sampleArb, { minLength: 1, maxLength: 150 }) }), weight: 4 },
  { arbitrary: fc.record({ op: fc.constant('ack' as const), from: fc.nat(600), len: fc.nat(80) }), weight: 3 },
  fc.record({ op: fc.constant('retime' as const), from: fc.nat(600), len: fc.nat(80) }),
  fc.record({ op: fc.constant('age' as const) }),
  { arbitrary: fc.record({ op: fc.constant('read' as const), after: fc.nat(700), limit: fc.integer({ min: 1, max: 300 }), span: fc.nat(400) }), weight: 4 },
);

describe('reads served from the last commits', () => {
  it('return exactly what a read of the database returns, through acks, retimes and retention drops', () => {
    fc.assert(
      fc.property(fc.array(cacheCmdArb, { maxLength: 40 }), (cmds) => {
        const dir = mkdtempSync(join(tmpdir(), 'outbox-recent-'));
        let now = 10 * 3_600_000;
        const ob = Outbox.open({ dir, logger: pino({ level: 'silent' }), commitIntervalMs: 60_000, maxAgeHours: 1, clock: () => now });
        const db = Outbox.openReadOnly(dir);
        const compare = (after: number, limit: number, before?: number) => {
          expect(ob.read(after, limit, before)).toEqual(db.read(after, limit, before));
        };
        try {
          for (const cmd of cmds) {
            if (cmd.op === 'add') {
              // Timestamps near the clock, so an 'age' step makes retention drop the older ones.
              ob.append(cmd.samples.map((s, i) => ({ ...s, ts: now - 1000 + i })));
              ob.commit();
            } else if (cmd.op === 'ack') {
              ob.ack([[cmd.from, cmd.from + cmd.len]]);
            } else if (cmd.op === 'retime') {
              ob.retime(cmd.from, cmd.from + cmd.len, 5000);
            } else if (cmd.op === 'age') {
              now += 2 * 3_600_000;
              ob.append([{ device: 'd', point: 'p', ts: now, value: 1, quality: 'good' }]);
              ob.commit();
            } else {
              compare(cmd.after, cmd.limit, cmd.span === 0 ? undefined : cmd.after + cmd.span);
            }
            const last = ob.stats().lastSeq;
            compare(Math.max(0, last - 200), 100_000);
            compare(0, 100_000);
          }
        } finally {
          db.close?.();
          ob.close();
          rmSync(dir, { recursive: true, force: true });
        }
      }),
      { numRuns: 60 },
    );
  });
});

describe('reads served from the last commits, by case', () => {
  it('see a retime, an ack and a retention drop at once', () => {
    const dir = mkdtempSync(join(tmpdir(), 'outbox-recent-'));
    let now = 10 * 3_600_000;
    const ob = Outbox.open({ dir, logger: pino({ level: 'silent' }), commitIntervalMs: 60_000, maxAgeHours: 1, clock: () => now });
    try {
      ob.append([0, 1, 2].map((i) => ({ device: 'd', point: 'p', ts: now - 10 + i, value: i, quality: 'good' as const, flags: i < 2 ? 1 : 0 })));
      ob.commit();
      expect(ob.retime(1, 2, 5000)).toBe(2);
      expect(ob.read(0, 10).map((s) => [s.seq, s.ts, s.flags])).toEqual([[1, now - 10 + 5000, 0], [2, now - 9 + 5000, 0], [3, now - 8, 0]]);
      ob.ack([[2, 2]]);
      expect(ob.read(0, 10).map((s) => s.seq)).toEqual([1, 3]);
      now += 2 * 3_600_000;
      ob.append([{ device: 'd', point: 'p', ts: now, value: 9, quality: 'good' }]);
      ob.commit();
      expect(Outbox.openReadOnly(dir).read(0, 10).map((s) => s.seq)).toEqual(ob.read(0, 10).map((s) => s.seq));
      expect(ob.read(0, 10).map((s) => s.seq)).toEqual([4]);
    } finally {
      ob.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('past their bound, read the rest from the database', () => {
    const dir = mkdtempSync(join(tmpdir(), 'outbox-recent-'));
    const ob = Outbox.open({ dir, logger: pino({ level: 'silent' }), commitIntervalMs: 60_000 });
    try {
      const n = RECENT_MAX + 5000;
      ob.append(Array.from({ length: n }, (_, i) => ({ device: 'd', point: `p${i % 7}`, ts: 1000 + i, value: i, quality: 'good' as const })));
      ob.commit();
      const all = ob.read(0, n + 10);
      expect(all).toHaveLength(n);
      expect(all.map((s) => s.value)).toEqual(Array.from({ length: n }, (_, i) => i));
      expect(ob.read(n - 3, 10).map((s) => s.seq)).toEqual([n - 2, n - 1, n]);
    } finally {
      ob.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
