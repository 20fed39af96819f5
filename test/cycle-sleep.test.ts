/** A bus reports itself busy from CYCLE_LEAD_MS before its next poll, so the outbox holds a commit for it. */
import { describe, expect, it } from 'vitest';
import { CYCLE_LEAD_MS, cycleSleep } from '../src/sources/schedule.js';

describe('cycleSleep', () => {
  it('is idle for a far poll and sleeps until the lead, then busy for the last stretch', async () => {
    const slept: number[] = [];
    const seen: boolean[] = [];
    const sleep = cycleSleep(async (ms) => void slept.push(ms), (busy) => seen.push(busy));
    await sleep(1000);
    await sleep(CYCLE_LEAD_MS);
    expect(slept).toEqual([1000 - CYCLE_LEAD_MS, CYCLE_LEAD_MS]);
    expect(seen).toEqual([false, true]);
  });

  it('without a cycle listener the sleep is the plain one', async () => {
    const slept: number[] = [];
    await cycleSleep(async (ms) => void slept.push(ms))(1000);
    expect(slept).toEqual([1000]);
  });
});
