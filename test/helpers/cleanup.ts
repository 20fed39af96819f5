/** What a test started, stopped when that test ends: per test, so tests of a describe.concurrent keep their own. */
import type { TestContext } from 'vitest';

export type Cleanup = () => unknown;

/**
 * A function that registers a cleanup for the test of `ctx` and returns its argument; at the end of the test
 * (passed or failed) the cleanups run, the last registered first, each one's failure ignored.
 */
export function cleanupsOf(ctx: Pick<TestContext, 'onTestFinished'>): (cleanup: Cleanup) => void {
  const cleanups: Cleanup[] = [];
  ctx.onTestFinished(async () => {
    for (const c of cleanups.splice(0).reverse()) {
      try {
        await c();
      } catch {
        // already gone
      }
    }
  });
  return (cleanup) => void cleanups.push(cleanup);
}

/** cleanupsOf for things with a stop(): `track(x)` stops x at the end of the test and returns it. */
export function trackerOf(ctx: Pick<TestContext, 'onTestFinished'>): <T extends { stop(): Promise<unknown> }>(x: T) => T {
  const add = cleanupsOf(ctx);
  return (x) => {
    add(() => x.stop());
    return x;
  };
}
