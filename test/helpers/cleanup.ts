/** What a test started, stopped when that test ends: per test, so tests of a describe.concurrent keep their own. */
import type { TestContext } from 'vitest';

export type Cleanup = () => unknown;
type Ctx = Pick<TestContext, 'onTestFinished'>;

/**
 * A function that registers a cleanup for the test of `ctx`. At the end of the test (passed or failed) the
 * cleanups run, the last registered first; a cleanup that throws fails the test after all have run, unless
 * `ignoreFailures` (things that may be gone already).
 */
export function cleanupsOf(ctx: Ctx, ignoreFailures = false): (cleanup: Cleanup) => void {
  const cleanups: Cleanup[] = [];
  ctx.onTestFinished(async () => {
    const failures: unknown[] = [];
    for (const c of cleanups.splice(0).reverse()) {
      try {
        await c();
      } catch (err) {
        failures.push(err);
      }
    }
    if (failures.length > 0 && !ignoreFailures) throw failures[0];
  });
  return (cleanup) => void cleanups.push(cleanup);
}

/** For things with a stop() that may be gone already: `track(x)` stops x at the end of the test and returns it. */
export function trackerOf(ctx: Ctx): <T extends { stop(): Promise<unknown> }>(x: T) => T {
  const add = cleanupsOf(ctx, true);
  return (x) => {
    add(() => x.stop());
    return x;
  };
}

/** cleanupsOf as a list: `cleanups.push(c)`, where a test used to push onto a list an afterEach emptied. */
export function cleanupListOf(ctx: Ctx, ignoreFailures = false): { push(cleanup: Cleanup): void } {
  return { push: cleanupsOf(ctx, ignoreFailures) };
}
