/**
 * A set of sequence numbers kept as sorted, merged ranges: memory grows with the number of gaps, not with the
 * number of samples, so a consumer can verify millions of samples. Mostly-ordered arrival appends in O(1).
 */
export class SeqSet {
  /** Disjoint, non-adjacent, ascending [from, to] ranges. */
  private readonly ranges: Array<[number, number]> = [];
  count = 0;
  duplicates = 0;

  /** Adds seq; returns false (and counts a duplicate) when it was already there. */
  add(seq: number): boolean {
    const r = this.ranges;
    const last = r[r.length - 1];
    if (!last || seq > last[1] + 1) {
      r.push([seq, seq]);
    } else if (seq === last[1] + 1) {
      last[1] = seq;
    } else {
      // Binary search for the first range whose end >= seq - 1.
      let lo = 0;
      let hi = r.length - 1;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (r[mid]![1] < seq - 1) lo = mid + 1;
        else hi = mid;
      }
      const at = r[lo]!;
      if (seq >= at[0] && seq <= at[1]) {
        this.duplicates++;
        return false;
      }
      if (seq === at[1] + 1) {
        at[1] = seq;
        const next = r[lo + 1];
        if (next && next[0] === seq + 1) {
          at[1] = next[1];
          r.splice(lo + 1, 1);
        }
      } else if (seq === at[0] - 1) {
        at[0] = seq;
      } else {
        r.splice(lo, 0, [seq, seq]);
      }
    }
    this.count++;
    return true;
  }

  has(seq: number): boolean {
    return this.ranges.some(([a, b]) => seq >= a && seq <= b);
  }

  get min(): number | undefined {
    return this.ranges[0]?.[0];
  }

  get max(): number | undefined {
    return this.ranges[this.ranges.length - 1]?.[1];
  }

  /** The missing runs between the lowest and highest seq seen. */
  gaps(): Array<[number, number]> {
    const out: Array<[number, number]> = [];
    for (let i = 1; i < this.ranges.length; i++) out.push([this.ranges[i - 1]![1] + 1, this.ranges[i]![0] - 1]);
    return out;
  }
}
