import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { StatusSurface } from '../src/status/surface.js';

describe('the status surface with the page off', () => {
  it('keeps no history of the points (it grows with the point count) and forgets what it had', async () => {
    const s = new StatusSurface({ gateway: () => { throw new Error('not asked'); }, logger: pino({ level: 'silent' }) });
    const sample = (ts: number) => [{ device: 'd', point: 'p', ts, value: 1, quality: 'good' as const }];
    s.hooks.onSamples(sample(Date.now()));
    expect(s.state.allHistory().points).toHaveLength(1);
    await s.apply({ enabled: false, listen: '127.0.0.1:0' });
    expect(s.state.allHistory().points).toHaveLength(0);
    s.hooks.onSamples(sample(Date.now() + 1000));
    expect(s.state.allHistory().points).toHaveLength(0);
    await s.close();
  });
});
