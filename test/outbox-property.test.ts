import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { MAX_FLAGS, Outbox, type SampleInput, type StoredSample } from '../src/outbox/index.js';

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
