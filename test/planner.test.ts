import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { optimum, planCost } from '../bench/planner.js';
import { planRequests, type PlanOptions, type PlanPoint, type ReadRequest } from '../src/sources/modbus/planner.js';
import { isBitFc, type ReadFc } from '../src/sources/modbus/types.js';

const OPTS: PlanOptions = { maxRegisters: 125, maxBits: 2000, maxGap: 16, mode: 'optimize' };
const reg = (address: number, width = 1, f: ReadFc = 3): PlanPoint => ({ fc: f, address, width });
const spans = (plan: ReadRequest[]) => plan.map((r) => [r.fc, r.address, r.count]);

/** Every rule a plan must keep, checked from scratch. */
function checkPlan(points: ReadonlyArray<PlanPoint>, opts: PlanOptions, plan: ReadRequest[]): void {
  const seen = new Map<number, number>();
  for (const r of plan) {
    const max = isBitFc(r.fc) ? opts.maxBits : opts.maxRegisters;
    expect(r.count).toBeGreaterThanOrEqual(1);
    expect(r.count).toBeLessThanOrEqual(max);
    expect(r.address + r.count).toBeLessThanOrEqual(65536);
    let first = Infinity;
    let last = -Infinity;
    for (const { index, offset } of r.points) {
      const p = points[index];
      seen.set(index, (seen.get(index) ?? 0) + 1);
      expect(p.fc).toBe(r.fc);
      expect(offset).toBe(p.address - r.address);
      expect(offset).toBeGreaterThanOrEqual(0);
      expect(offset + p.width).toBeLessThanOrEqual(r.count);
      first = Math.min(first, p.address);
      last = Math.max(last, p.address + p.width);
    }
    // Tight: no leading or trailing waste.
    expect([first, last]).toEqual([r.address, r.address + r.count]);
    if (opts.mode === 'optimize') {
      const used = (a: number) => points.some((p) => p.fc === r.fc && a >= p.address && a < p.address + p.width);
      let run = 0;
      for (let a = r.address; a < r.address + r.count; a++) {
        run = used(a) ? 0 : run + 1;
        expect(run).toBeLessThanOrEqual(opts.maxGap);
      }
    }
  }
  expect(seen.size).toBe(points.length);
  for (const n of seen.values()) expect(n).toBe(1);
}

describe('planRequests edges', () => {
  it('plans nothing for no points', () => {
    expect(planRequests([], OPTS)).toEqual([]);
  });

  it('reads through a gap of exactly maxGap, splits at maxGap + 1', () => {
    const opts = { ...OPTS, maxGap: 3 };
    expect(spans(planRequests([reg(0), reg(4)], opts))).toEqual([[3, 0, 5]]);
    expect(spans(planRequests([reg(0), reg(5)], opts))).toEqual([[3, 0, 1], [3, 5, 1]]);
    expect(spans(planRequests([reg(0), reg(1)], { ...opts, maxGap: 0 }))).toEqual([[3, 0, 2]]);
  });

  it('fills exactly 125 registers, splits at 126', () => {
    const full = Array.from({ length: 125 }, (_, i) => reg(i));
    expect(spans(planRequests(full, OPTS))).toEqual([[3, 0, 125]]);
    expect(spans(planRequests([...full, reg(125)], OPTS)).map((s) => s[2]).sort()).toEqual([1, 125]);
    const wide = { ...OPTS, maxGap: 125 };
    expect(spans(planRequests([reg(0, 2), reg(123, 2)], wide))).toEqual([[3, 0, 125]]);
    expect(planRequests([reg(0, 2), reg(124, 2)], wide)).toHaveLength(2);
  });

  it('never splits a point and fits it whole', () => {
    const plan = planRequests([reg(0, 4), reg(3, 4), reg(6, 4)], { ...OPTS, maxRegisters: 5 });
    checkPlan([reg(0, 4), reg(3, 4), reg(6, 4)], { ...OPTS, maxRegisters: 5 }, plan);
    expect(plan).toHaveLength(3);
  });

  it('groups each function code on its own', () => {
    const points = [reg(0, 1, 3), reg(0, 1, 4), reg(1, 1, 3), reg(1, 1, 4), { fc: 1 as const, address: 0, width: 1 }, { fc: 2 as const, address: 0, width: 1 }];
    const plan = planRequests(points, OPTS);
    expect(spans(plan)).toEqual([[1, 0, 1], [2, 0, 1], [3, 0, 2], [4, 0, 2]]);
    checkPlan(points, OPTS, plan);
  });

  it('uses maxBits for coils and discrete inputs', () => {
    const coils = Array.from({ length: 20 }, (_, i) => ({ fc: 1 as const, address: i, width: 1 }));
    expect(spans(planRequests(coils, { ...OPTS, maxBits: 8 })).map((s) => s[2])).toEqual([8, 8, 4]);
  });

  it('handles the top of the address space', () => {
    expect(spans(planRequests([reg(65535)], OPTS))).toEqual([[3, 65535, 1]]);
    expect(spans(planRequests([reg(65532, 4), reg(65530, 2)], OPTS))).toEqual([[3, 65530, 6]]);
    expect(() => planRequests([reg(65535, 2)], OPTS)).toThrow(/run past 65535/);
  });

  it('puts overlapping points (bits of one status register, a word and its bits) in one request', () => {
    const points = [reg(10), reg(10), reg(10), reg(9, 2), reg(11)];
    const plan = planRequests(points, OPTS);
    expect(spans(plan)).toEqual([[3, 9, 3]]);
    expect(plan[0].points.map((p) => [p.index, p.offset])).toEqual([[3, 0], [0, 1], [1, 1], [2, 1], [4, 2]]);
  });

  it('counts addresses occupied by any point as used, not as a gap', () => {
    // The long point covers 2..9; the short ones alone would leave a gap of 7.
    const points = [reg(0), reg(1, 9), reg(9)];
    const opts = { ...OPTS, maxGap: 0, maxRegisters: 10 };
    const plan = planRequests(points, opts);
    checkPlan(points, opts, plan);
    expect(planCost(plan)).toEqual({ requests: 1, read: 10 });
  });

  it('prefers fewer registers when the request count ties', () => {
    // Greedy would read [0..5] + [6]; the optimum is [0..1] + [5..6].
    const plan = planRequests([reg(0), reg(1), reg(5), reg(6)], { ...OPTS, maxRegisters: 6 });
    expect(spans(plan)).toEqual([[3, 0, 2], [3, 5, 2]]);
  });

  it('is deterministic whatever the input order', () => {
    const points = [reg(7, 2), reg(0), reg(3), reg(3), reg(12, 4), reg(1)];
    const a = planRequests(points, { ...OPTS, maxRegisters: 8, maxGap: 2 });
    const b = planRequests(points, { ...OPTS, maxRegisters: 8, maxGap: 2 });
    expect(a).toEqual(b);
    const reversed = [...points].reverse();
    expect(spans(planRequests(reversed, { ...OPTS, maxRegisters: 8, maxGap: 2 }))).toEqual(spans(a));
  });

  it('throws for a point wider than one request, or bad options', () => {
    expect(() => planRequests([reg(0, 4)], { ...OPTS, maxRegisters: 2 })).toThrow(/4 registers exceed the 2/);
    expect(() => planRequests([reg(0, 0)], OPTS)).toThrow(/width/);
    expect(() => planRequests([reg(-1)], OPTS)).toThrow(/address/);
    expect(() => planRequests([], { ...OPTS, maxGap: -1 })).toThrow(/maxGap/);
  });

  it('per-point: one request per point, identical points share', () => {
    const points = [reg(5, 2), reg(0), reg(0), reg(1), reg(0, 2)];
    const plan = planRequests(points, { ...OPTS, mode: 'per-point' });
    expect(spans(plan)).toEqual([[3, 0, 1], [3, 0, 2], [3, 1, 1], [3, 5, 2]]);
    expect(plan[0].points.map((p) => p.index)).toEqual([1, 2]);
    checkPlan(points, { ...OPTS, mode: 'per-point' }, plan);
  });
});

describe('planRequests against the exhaustive optimum', () => {
  const point = fc.oneof(
    { weight: 4, arbitrary: fc.record({ fc: fc.constantFrom<ReadFc>(3, 4), address: fc.nat(30), width: fc.constantFrom(1, 1, 2, 2, 4, 5) }) },
    { weight: 1, arbitrary: fc.record({ fc: fc.constantFrom<ReadFc>(1, 2), address: fc.nat(30), width: fc.constant(1) }) },
  );
  const map = fc.record({
    points: fc.array(point, { maxLength: 9 }),
    extraRegisters: fc.nat(10),
    maxBits: fc.integer({ min: 1, max: 12 }),
    maxGap: fc.nat(5),
  });

  it('reaches the fewest requests, then the fewest addresses, and keeps every rule', () => {
    fc.assert(
      fc.property(map, ({ points, extraRegisters, maxBits, maxGap }) => {
        const widest = Math.max(1, ...points.filter((p) => !isBitFc(p.fc)).map((p) => p.width));
        const opts: PlanOptions = { maxRegisters: widest + extraRegisters, maxBits, maxGap, mode: 'optimize' };
        const plan = planRequests(points, opts);
        checkPlan(points, opts, plan);
        expect(planCost(plan)).toEqual(optimum(points, opts));
      }),
      { numRuns: 3000 },
    );
  });

  it('per-point plans keep every rule', () => {
    fc.assert(
      fc.property(map, ({ points }) => {
        const opts: PlanOptions = { ...OPTS, mode: 'per-point' };
        checkPlan(points, opts, planRequests(points, opts));
      }),
      { numRuns: 500 },
    );
  });
});
