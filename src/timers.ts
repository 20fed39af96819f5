/**
 * The clock and timers a waiting loop uses, injected so backoff, batch delays and the drain cap are tested on a
 * manual clock (test/helpers/manual-timers.ts) instead of in real time. `now` is the wall clock in ms: the
 * uplink stamps and paces with it; the buses schedule on the monotonic clock and pass their own `now`.
 */
export type TimerHandle = { readonly id: unknown };

export interface Timers {
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle | undefined): void;
}

export const realTimers: Timers = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    return { id: t };
  },
  clearTimeout: (handle) => {
    if (handle) clearTimeout(handle.id as NodeJS.Timeout);
  },
};

/** Real timers that do not keep the process alive on their own (the outbox's commit: close() commits what is left). */
export const backgroundTimers: Timers = {
  ...realTimers,
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    t.unref();
    return { id: t };
  },
};
