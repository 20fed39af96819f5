import { describe, expect, it } from 'vitest';
import { LastValues } from '../src/last-values.js';

const s = (device: string, point: string, ts: number, value: number, quality: 'good' | 'bad' = 'good') => ({ device, point, ts, value, quality });

describe('last-value cache', () => {
  it('keeps the newest value and quality of each point, never an older one arriving late', () => {
    const lv = new LastValues();
    lv.update([s('d', 'p', 10, 1), s('d', 'q', 10, 5)]);
    lv.update([s('d', 'p', 20, 2, 'bad')]);
    lv.update([s('d', 'p', 15, 9)]);
    expect(lv.get('d', 'p')).toEqual({ value: 2, quality: 'bad', ts: 20 });
    expect(lv.get('d', 'q')).toEqual({ value: 5, quality: 'good', ts: 10 });
    expect(lv.get('d', 'x')).toBeUndefined();
    expect(lv.get('other', 'p')).toBeUndefined();
  });

  it('forgets the points a reload removed', () => {
    const lv = new LastValues();
    lv.update([s('a', 'p', 1, 1), s('a', 'q', 1, 1), s('b', 'p', 1, 1)]);
    lv.retain((device, point) => device === 'a' && point === 'p');
    expect([lv.get('a', 'p')?.value, lv.get('a', 'q'), lv.get('b', 'p')]).toEqual([1, undefined, undefined]);
  });
});
