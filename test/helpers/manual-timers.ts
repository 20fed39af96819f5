/** A manual clock for loops that take `Timers`: time moves only when the test calls advance(). */
import type { TimerHandle, Timers } from '../../src/timers.js';

interface Pending {
  id: number;
  at: number;
  fn: () => void;
}

export class ManualTimers implements Timers {
  private t: number;
  private seq = 0;
  private pending: Pending[] = [];

  constructor(start = 1_750_000_000_000) {
    this.t = start;
  }

  now(): number {
    return this.t;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const p = { id: ++this.seq, at: this.t + Math.max(0, ms), fn };
    this.pending.push(p);
    return { id: p.id };
  }

  clearTimeout(handle: TimerHandle | undefined): void {
    if (handle) this.pending = this.pending.filter((p) => p.id !== handle.id);
  }

  /** Timers waiting to fire. */
  get waiting(): number {
    return this.pending.length;
  }

  /** Moves time forward, firing every timer that falls due, in order, with microtasks flushed after each. */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    for (;;) {
      await flush();
      this.pending.sort((a, b) => a.at - b.at || a.id - b.id);
      const next = this.pending[0];
      if (!next || next.at > end) break;
      this.pending.shift();
      this.t = next.at;
      next.fn();
    }
    this.t = end;
    await flush();
  }
}

async function flush(): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve();
}
