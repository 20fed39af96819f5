/**
 * Request planning: groups a device's points into as few read requests as possible, then as few registers
 * (or bits) on the wire as possible. Pure and synchronous; runs once per device at start.
 *
 * Rules, per function code (each fc is its own address space, grouped independently):
 * - a point is never split: it lies entirely inside the one request that reads it;
 * - a request reads at most maxRegisters (fc 3/4) or maxBits (fc 1/2);
 * - a request reads through at most maxGap consecutive unused addresses, where an address is unused when no
 *   point of that fc occupies it. Reading an address that belongs to another point is not a gap: it exists,
 *   so the device answers it, and reading it costs no more than a gap would;
 * - requests start at their first point and end at their last point's end (no leading or trailing waste).
 */
import { isBitFc, type ReadFc } from './types.js';

export interface PlanPoint {
  fc: ReadFc;
  address: number;
  /** Registers (fc 3/4) or bits (fc 1/2) the point occupies; see pointWidth. */
  width: number;
}

export interface PlanOptions {
  maxRegisters: number;
  maxBits: number;
  maxGap: number;
  /** "optimize": fewest requests, then fewest addresses read; "per-point": one request per point. */
  mode: 'optimize' | 'per-point';
}

export interface PlannedPoint {
  /** Index into the planner's input array. */
  index: number;
  /** point.address - request.address. */
  offset: number;
}

export interface ReadRequest {
  fc: ReadFc;
  address: number;
  count: number;
  points: PlannedPoint[];
}

const FCS: readonly ReadFc[] = [1, 2, 3, 4];

function checkOptions(opts: PlanOptions): void {
  const int = (name: string, v: number, min: number) => {
    if (!Number.isInteger(v) || v < min) throw new RangeError(`planner option ${name} must be an integer >= ${min}, got ${v}`);
  };
  int('maxRegisters', opts.maxRegisters, 1);
  int('maxBits', opts.maxBits, 1);
  int('maxGap', opts.maxGap, 0);
  if (opts.mode !== 'optimize' && opts.mode !== 'per-point') throw new RangeError(`planner mode must be optimize or per-point, got ${String(opts.mode)}`);
}

function checkPoint(p: PlanPoint, i: number, opts: PlanOptions): void {
  const where = `point ${i} (fc ${p.fc}, address ${p.address})`;
  if (!FCS.includes(p.fc)) throw new RangeError(`${where}: function code must be 1-4`);
  if (!Number.isInteger(p.address) || p.address < 0 || p.address > 65535) throw new RangeError(`${where}: address must be 0-65535`);
  if (!Number.isInteger(p.width) || p.width < 1) throw new RangeError(`${where}: width must be a positive integer, got ${p.width}`);
  if (p.address + p.width > 65536) throw new RangeError(`${where}: ${p.width} addresses run past 65535`);
  const max = isBitFc(p.fc) ? opts.maxBits : opts.maxRegisters;
  if (p.width > max) throw new RangeError(`${where}: ${p.width} ${isBitFc(p.fc) ? 'bits' : 'registers'} exceed the ${max} one request may read`);
}

export function planRequests(points: ReadonlyArray<PlanPoint>, opts: PlanOptions): ReadRequest[] {
  checkOptions(opts);
  points.forEach((p, i) => checkPoint(p, i, opts));
  const out: ReadRequest[] = [];
  for (const fc of FCS) {
    const order: number[] = [];
    for (let i = 0; i < points.length; i++) if (points[i].fc === fc) order.push(i);
    if (order.length === 0) continue;
    // By start, then end, then input index: the order the proof below relies on, and a deterministic one.
    order.sort((a, b) => points[a].address - points[b].address || points[a].width - points[b].width || a - b);
    const max = isBitFc(fc) ? opts.maxBits : opts.maxRegisters;
    if (opts.mode === 'per-point') out.push(...perPoint(fc, points, order));
    else out.push(...optimize(fc, points, order, max, opts.maxGap));
  }
  return out;
}

/** One request per point; points with the same address and width share one (bits of one status register). */
function perPoint(fc: ReadFc, points: ReadonlyArray<PlanPoint>, order: number[]): ReadRequest[] {
  const out: ReadRequest[] = [];
  let last: ReadRequest | undefined;
  for (const i of order) {
    const p = points[i];
    if (last && last.address === p.address && last.count === p.width) {
      last.points.push({ index: i, offset: 0 });
      continue;
    }
    last = { fc, address: p.address, count: p.width, points: [{ index: i, offset: 0 }] };
    out.push(last);
  }
  return out;
}

/*
 * Why a run-splitting DP over the sorted points is optimal.
 *
 * Costs compare lexicographically: (number of requests, total addresses read). Sort points by start s (then
 * end e). Call a range [S, E) valid when E - S <= max and every run of unused addresses inside it is <= maxGap.
 * Validity is hereditary: a sub-range of a valid range is valid (shorter, and its unused runs are parts of
 * the bigger range's). A solution is a set of valid ranges such that every point lies inside one of them.
 *
 * 1. An optimal solution has no range inside another (dropping the inner one saves a request), so its ranges
 *    sorted by start S1 < S2 < ... also have ends E1 < E2 < ....
 * 2. Reassign every point p to the last range with S_i <= p.s. If some range j contains p, then j <= i and
 *    E_i >= E_j >= p.e, so range i contains p too. Range i now serves exactly the points with s in
 *    [S_i, S_{i+1}): a contiguous run of the sorted order.
 * 3. Shrink each range to the hull of its run (drop it if empty). By heredity it stays valid, and no cost
 *    grows. So some optimal solution is a partition of the sorted points into contiguous runs, each read by
 *    its hull.
 * 4. The DP below tries every such partition (best[j] = best over i of best[i] + cost of run i..j-1), so it
 *    finds an optimum. A run is valid iff its hull fits max and it stays within one "segment" (the points
 *    chained by unused runs <= maxGap): a hull spanning two segments contains the long gap between them.
 *    For a fixed end j, widening the run (smaller i) only lengthens the hull, so the scan stops at the first
 *    invalid i.
 *
 * A plain greedy (extend each request as far as it goes) also reaches the fewest requests, but not the fewest
 * addresses: points at 0, 1, 5, 6 with max 6 give [0..5] + [6] = 7 registers greedily, [0..1] + [5..6] = 4.
 * At 9600 baud each register read needlessly costs about 2.3 ms of wire time.
 *
 * Cost: O(n * w) where w is the number of points a request can hold; for 1,000 points well under a
 * millisecond.
 */
function optimize(fc: ReadFc, points: ReadonlyArray<PlanPoint>, order: number[], max: number, maxGap: number): ReadRequest[] {
  const n = order.length;
  const start = new Int32Array(n);
  const end = new Int32Array(n);
  const segment = new Int32Array(n);
  let reach = -Infinity;
  let seg = 0;
  for (let k = 0; k < n; k++) {
    const p = points[order[k]];
    start[k] = p.address;
    end[k] = p.address + p.width;
    if (k > 0 && start[k] - reach > maxGap) seg++;
    segment[k] = seg;
    reach = Math.max(reach, end[k]);
  }

  const requests = new Int32Array(n + 1);
  const read = new Float64Array(n + 1);
  const from = new Int32Array(n + 1);
  for (let j = 1; j <= n; j++) {
    let bestRequests = Infinity;
    let bestRead = Infinity;
    let bestFrom = j - 1;
    let hullEnd = 0;
    for (let i = j - 1; i >= 0 && segment[i] === segment[j - 1]; i--) {
      hullEnd = Math.max(hullEnd, end[i]);
      const span = hullEnd - start[i];
      if (span > max) break;
      const r = requests[i] + 1;
      const w = read[i] + span;
      // Strict comparison: on a full tie the shorter last run wins, so plans are deterministic.
      if (r < bestRequests || (r === bestRequests && w < bestRead)) {
        bestRequests = r;
        bestRead = w;
        bestFrom = i;
      }
    }
    requests[j] = bestRequests;
    read[j] = bestRead;
    from[j] = bestFrom;
  }

  const out: ReadRequest[] = [];
  for (let j = n; j > 0; j = from[j]) {
    const i = from[j];
    const address = start[i];
    let hullEnd = 0;
    const served: PlannedPoint[] = [];
    for (let k = i; k < j; k++) {
      hullEnd = Math.max(hullEnd, end[k]);
      served.push({ index: order[k], offset: start[k] - address });
    }
    out.push({ fc, address, count: hullEnd - address, points: served });
  }
  return out.reverse();
}
