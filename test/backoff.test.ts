import { describe, expect, it } from 'vitest';
import { Backoff } from '../src/backoff.js';

describe('Backoff', () => {
  it('doubles from min to max and resets', () => {
    const b = new Backoff({ minMs: 100, maxMs: 1000 }, () => 0.5);
    expect([b.next(), b.next(), b.next(), b.next(), b.next(), b.next()]).toEqual([100, 200, 400, 800, 1000, 1000]);
    expect(b.attempts).toBe(6);
    b.reset();
    expect(b.attempts).toBe(0);
    expect(b.next()).toBe(100);
  });

  it('jitters within the spread', () => {
    const low = new Backoff({ minMs: 1000, maxMs: 1000, jitter: 0.2 }, () => 0);
    const high = new Backoff({ minMs: 1000, maxMs: 1000, jitter: 0.2 }, () => 0.999999);
    expect(low.next()).toBe(800);
    expect(high.next()).toBe(1200);
  });

  it('reports the next base delay without jitter', () => {
    const b = new Backoff({ minMs: 50, maxMs: 400 }, () => 0);
    b.next();
    expect(b.peek).toBe(100);
  });
});
