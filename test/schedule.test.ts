import { describe, expect, it } from 'vitest';
import { nextDue, reschedule, stepDue, type ScheduledRun } from '../src/sources/schedule.js';

const policy = { unitBackoffMinMs: 1000, unitBackoffMaxMs: 8000 };
const run = (): ScheduledRun => ({ dueAt: 0, health: { device: 'd', state: 'unknown', requests: 0, errors: {}, backoffMs: 0 } });

describe('the per-device schedule', () => {
  it('keeps the cadence of a device that answers, and starts again from now after an overrun', () => {
    const r = run();
    expect(reschedule(r, 500, 'answered', policy, 10_000)).toBeUndefined();
    expect(r).toMatchObject({ dueAt: 10_500, health: { state: 'ok', backoffMs: 0 } });
    reschedule(r, 500, 'answered', policy, 10_600);
    expect(r.dueAt).toBe(11_000);
    reschedule(r, 500, 'answered', policy, 20_000);
    expect(r.dueAt).toBe(20_000);
  });

  it('backs off a device with no valid reply, doubling to the max, never faster than its interval', () => {
    const r = run();
    expect(reschedule(r, 500, 'failed', policy, 0)).toBe('failing');
    expect(r).toMatchObject({ dueAt: 1000, health: { state: 'failing', backoffMs: 1000 } });
    const waits = [2000, 4000, 8000, 8000].map((expected) => {
      expect(reschedule(r, 500, 'failed', policy, 0)).toBeUndefined();
      return [r.health.backoffMs, expected];
    });
    for (const [got, expected] of waits) expect(got).toBe(expected);
    const slow = run();
    reschedule(slow, 60_000, 'failed', policy, 0);
    expect(slow.dueAt).toBe(60_000);
  });

  it('says when a failing device answers again and clears its backoff', () => {
    const r = run();
    reschedule(r, 500, 'failed', policy, 0);
    expect(reschedule(r, 500, 'answered', policy, 5000)).toBe('recovered');
    expect(r.health).toMatchObject({ state: 'ok', backoffMs: 0 });
    // From unknown to ok is no recovery.
    expect(reschedule(run(), 500, 'answered', policy, 0)).toBeUndefined();
  });

  it('fails a device whose poll the link cut off, without a device backoff', () => {
    const r = run();
    reschedule(r, 500, 'answered', policy, 0);
    expect(reschedule(r, 500, 'lost', policy, 600)).toBeUndefined();
    expect(r.health).toMatchObject({ state: 'failing', backoffMs: 0 });
    expect(r.dueAt).toBe(1000);
  });

  it('puts devices of one interval on the same grid, whenever their first poll was and after a backoff', () => {
    const a = run();
    const b = run();
    reschedule(a, 1000, 'answered', policy, 10_003);
    reschedule(b, 1000, 'answered', policy, 10_041);
    expect([a.dueAt, b.dueAt]).toEqual([11_000, 11_000]);
    // A first poll late in a grid step skips the step rather than poll again at once.
    const late = run();
    reschedule(late, 1000, 'answered', policy, 10_700);
    expect(late.dueAt).toBe(12_000);
    // Back from a backoff (off the grid), the device joins it again.
    reschedule(a, 1000, 'failed', policy, 11_010);
    expect(a.dueAt).toBe(12_010);
    reschedule(a, 1000, 'answered', policy, 12_030);
    expect(a.dueAt).toBe(13_000);
  });

  it('polls the most overdue device, or sleeps until the next one is due', async () => {
    const a = { ...run(), dueAt: 300 };
    const b = { ...run(), dueAt: 100 };
    expect(nextDue([a, b])).toBe(b);
    expect(nextDue([])).toBeUndefined();
    const slept: number[] = [];
    const polled: ScheduledRun[] = [];
    const sleep = async (ms: number) => void slept.push(ms);
    const poll = async (r: ScheduledRun) => void polled.push(r);
    await stepDue([a, b], sleep, poll, 1000, () => 40);
    await stepDue([a, b], sleep, poll, 1000, () => 100);
    await stepDue([], sleep, poll, 1000, () => 100);
    expect(slept).toEqual([60, 1000]);
    expect(polled).toEqual([b]);
  });
});
