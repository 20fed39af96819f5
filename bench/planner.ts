/**
 * Planner and decoder benchmark: requests per poll cycle against the exhaustive optimum on random small maps,
 * planning time for a 1,000-point device, and decode throughput. `node --import tsx bench/planner.ts`.
 */
import { pathToFileURL } from 'node:url';
import { resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { compileDecoder, type Decoder } from '../src/sources/modbus/decode.js';
import { planRequests, type PlanOptions, type PlanPoint, type ReadRequest } from '../src/sources/modbus/planner.js';
import { isBitFc, type ReadFc } from '../src/sources/modbus/types.js';

export interface Cost {
  requests: number;
  /** Registers plus bits read, summed over requests. */
  read: number;
}

/**
 * Exhaustive optimum, written independently of the planner: a DP over subsets, where every subset of a fc's
 * points is tried as one request (valid when its hull fits the limit and contains no unused run longer than
 * maxGap, an address being unused when no point of that fc occupies it). Exponential: up to ~12 points per fc.
 */
export function optimum(points: ReadonlyArray<PlanPoint>, opts: PlanOptions): Cost {
  const total: Cost = { requests: 0, read: 0 };
  for (const fc of [1, 2, 3, 4] as ReadFc[]) {
    const pts = points.filter((p) => p.fc === fc);
    const n = pts.length;
    if (n === 0) continue;
    if (n > 14) throw new RangeError(`optimum: ${n} points is too many to enumerate`);
    const max = isBitFc(fc) ? opts.maxBits : opts.maxRegisters;
    const used = new Set<number>();
    for (const p of pts) for (let a = p.address; a < p.address + p.width; a++) used.add(a);

    const full = (1 << n) - 1;
    const blockCost = new Float64Array(full + 1).fill(Infinity);
    for (let mask = 1; mask <= full; mask++) {
      let lo = Infinity;
      let hi = -Infinity;
      for (let k = 0; k < n; k++) {
        if (mask & (1 << k)) {
          lo = Math.min(lo, pts[k].address);
          hi = Math.max(hi, pts[k].address + pts[k].width);
        }
      }
      if (hi - lo > max) continue;
      let run = 0;
      let ok = true;
      for (let a = lo; a < hi && ok; a++) {
        run = used.has(a) ? 0 : run + 1;
        ok = run <= opts.maxGap;
      }
      if (ok) blockCost[mask] = hi - lo;
    }
    // best[mask]: cheapest cover of exactly the points in mask, encoded as requests * 2^32 + read.
    const best = new Float64Array(full + 1).fill(Infinity);
    best[0] = 0;
    for (let mask = 1; mask <= full; mask++) {
      const low = mask & -mask;
      for (let sub = mask; sub > 0; sub = (sub - 1) & mask) {
        if (!(sub & low) || blockCost[sub] === Infinity) continue;
        best[mask] = Math.min(best[mask], best[mask ^ sub] + 2 ** 32 + blockCost[sub]);
      }
    }
    total.requests += Math.floor(best[full] / 2 ** 32);
    total.read += best[full] % 2 ** 32;
  }
  return total;
}

export function planCost(plan: ReadonlyArray<ReadRequest>): Cost {
  return { requests: plan.length, read: plan.reduce((sum, r) => sum + r.count, 0) };
}

/** Baseline: the usual greedy (extend each request as far as the limits allow), for comparison. */
function greedyRead(points: ReadonlyArray<PlanPoint>, opts: PlanOptions): number {
  let read = 0;
  for (const fc of [1, 2, 3, 4]) {
    const pts = points.filter((p) => p.fc === fc).sort((a, b) => a.address - b.address || a.width - b.width);
    const max = isBitFc(fc) ? opts.maxBits : opts.maxRegisters;
    let lo = -1;
    let hi = -1;
    for (const p of pts) {
      const end = Math.max(hi, p.address + p.width);
      if (lo >= 0 && p.address - hi <= opts.maxGap && end - lo <= max) {
        hi = end;
        continue;
      }
      if (lo >= 0) read += hi - lo;
      lo = p.address;
      hi = p.address + p.width;
    }
    if (lo >= 0) read += hi - lo;
  }
  return read;
}

/** Deterministic PRNG (mulberry32) so runs compare. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A small device: up to 10 points of mixed widths on fc 1 and 3, crowded into a few dozen addresses. */
function smallMap(r: () => number): { points: PlanPoint[]; opts: PlanOptions } {
  const n = 4 + Math.floor(r() * 7);
  const points: PlanPoint[] = [];
  for (let i = 0; i < n; i++) {
    const bits = r() < 0.2;
    points.push({ fc: bits ? 1 : 3, address: Math.floor(r() * 40), width: bits ? 1 : [1, 1, 2, 2, 4][Math.floor(r() * 5)] });
  }
  const opts: PlanOptions = { maxRegisters: 4 + Math.floor(r() * 12), maxBits: 4 + Math.floor(r() * 12), maxGap: Math.floor(r() * 6), mode: 'optimize' };
  return { points, opts };
}

/** A realistic big device: 1,000 points over holding, input and coil tables, with gaps and shared status registers. */
function bigMap(r: () => number): PlanPoint[] {
  const points: PlanPoint[] = [];
  const next: Record<number, number> = { 1: 0, 3: 0, 4: 0 };
  for (let i = 0; i < 1000; i++) {
    const x = r();
    const fc: ReadFc = x < 0.1 ? 1 : x < 0.3 ? 4 : 3;
    const width = fc === 1 ? 1 : [1, 2, 2, 4][Math.floor(r() * 4)];
    // One in five register points is a bit of the register just read (status words).
    if (fc !== 1 && r() < 0.2 && next[fc] > 0) {
      points.push({ fc, address: next[fc] - 1, width: 1 });
      continue;
    }
    const address = next[fc] + (r() < 0.3 ? Math.floor(r() * 30) : 0);
    points.push({ fc, address, width });
    next[fc] = address + width;
  }
  return points;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** Written by the decode loop so the JIT cannot drop the work. */
export let blackhole = 0;

function decodeRate(decode: Decoder, width: number): number {
  const words = Array.from({ length: 124 }, (_, i) => (i * 7919) & 0xffff);
  const per = Math.floor(words.length / width);
  let sink = 0;
  const rounds = 40_000;
  const t0 = performance.now();
  for (let k = 0; k < rounds; k++) for (let i = 0; i < per; i++) sink += decode(words, i * width) as number;
  const ms = performance.now() - t0;
  blackhole += sink;
  return (rounds * per) / (ms / 1000);
}

export async function run(): Promise<string> {
  const r = rng(20240611);
  const maps = 2000;
  let planned = 0;
  let optimal = 0;
  let perPoint = 0;
  let plannedRead = 0;
  let optimalRead = 0;
  let greedy = 0;
  let atCount = 0;
  let atBoth = 0;
  for (let m = 0; m < maps; m++) {
    const { points, opts } = smallMap(r);
    const got = planCost(planRequests(points, opts));
    const best = optimum(points, opts);
    planned += got.requests;
    optimal += best.requests;
    plannedRead += got.read;
    optimalRead += best.read;
    greedy += greedyRead(points, opts);
    perPoint += planRequests(points, { ...opts, mode: 'per-point' }).length;
    if (got.requests === best.requests) atCount++;
    if (got.requests === best.requests && got.read === best.read) atBoth++;
  }

  const big = bigMap(rng(7));
  const bigOpts: PlanOptions = { maxRegisters: 125, maxBits: 2000, maxGap: 16, mode: 'optimize' };
  const bigPlan = planRequests(big, bigOpts);
  const times: number[] = [];
  for (let k = 0; k < 30; k++) {
    const t0 = performance.now();
    planRequests(big, bigOpts);
    times.push(performance.now() - t0);
  }

  const f32 = decodeRate(compileDecoder({ fc: 3, type: 'float32', order: 'CDAB', scale: 1, offset: 0 }), 2);
  const u16 = decodeRate(compileDecoder({ fc: 3, type: 'uint16', order: 'ABCD', scale: 0.1, offset: -40 }), 1);
  const fmt = (x: number, d = 2) => x.toFixed(d);
  const mps = (x: number) => `${fmt(x / 1e6, 1)} M`;

  return [
    `Random maps: ${maps} devices of 4-10 points (fc 1 and 3, widths 1/2/4, addresses 0-43), limits 4-15, maxGap 0-5.`,
    '',
    '| measure | value |',
    '| --- | --- |',
    `| requests per poll cycle, planner (mean) | ${fmt(planned / maps)} |`,
    `| requests per poll cycle, exhaustive optimum (mean) | ${fmt(optimal / maps)} |`,
    `| requests per poll cycle, per-point mode (mean) | ${fmt(perPoint / maps)} |`,
    `| addresses read per cycle, planner / optimum (mean) | ${fmt(plannedRead / maps)} / ${fmt(optimalRead / maps)} |`,
    `| addresses read per cycle, plain greedy (mean) | ${fmt(greedy / maps)} |`,
    `| maps at the fewest requests | ${fmt((100 * atCount) / maps, 1)} % |`,
    `| maps at the fewest requests and fewest addresses | ${fmt((100 * atBoth) / maps, 1)} % |`,
    `| planning a 1,000-point device (median of 30; ${bigPlan.length} requests) | ${fmt(median(times), 3)} ms |`,
    `| decode float32 CDAB | ${mps(f32)} points/s |`,
    `| decode uint16 with scale and offset | ${mps(u16)} points/s |`,
    '',
  ].join('\n');
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  process.stdout.write(await run());
}
