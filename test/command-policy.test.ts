import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { checkType, judgeWrite, type PointFacts, type WritePolicyContext } from '../src/commands/policy.js';
import type { WriteCommand } from '../src/commands/types.js';

const NOW = 1_800_000_000_000;
const points = new Map<string, PointFacts>([
  ['pump_enable', { type: 'bool', scale: 1, offset: 0, write: { maxPerMinute: 6 } }],
  ['setpoint', { type: 'uint16', scale: 0.01, offset: 0, unit: 'bar', write: { min: 1.5, max: 4.5, maxPerMinute: 2 } }],
  ['stepped', { type: 'int16', scale: 1, offset: 0, write: { min: 10, step: 5, maxPerMinute: 6 } }],
  ['mode', { type: 'uint16', scale: 1, offset: 0, write: { values: [0, 1, 2], maxPerMinute: 6 } }],
  ['flow_sp', { type: 'float32', scale: 1, offset: 0, write: { maxPerMinute: 6 } }],
  ['tag', { type: 'string', scale: 1, offset: 0, length: 2, write: { maxPerMinute: 6 } }],
  ['level', { type: 'uint16', scale: 0.1, offset: 0 }],
  ['offset_sp', { type: 'int16', scale: 0.5, offset: -10, write: { maxPerMinute: 6 } }],
]);

function ctx(recent: number[] = []): WritePolicyContext {
  return { now: NOW, maxTtlMs: 3_600_000, points: (d) => (d === 'pump1' ? points : undefined), recentWrites: () => recent };
}

const cmd = (point: string, value: unknown, over: Partial<WriteCommand> = {}): WriteCommand => ({
  kind: 'write', id: 'c1', device: 'pump1', point, value, expiresAt: NOW + 30_000, origin: 'mqtt', ...over,
});

const reason = (c: WriteCommand, context = ctx()) => {
  const v = judgeWrite(c, context);
  return v.ok ? 'ok' : `${v.status}: ${v.reason}`;
};

describe('the write policy', () => {
  it('lets a valid write through with its value', () => {
    expect(judgeWrite(cmd('setpoint', 3.2), ctx())).toMatchObject({ ok: true, value: 3.2 });
    expect(judgeWrite(cmd('pump_enable', true), ctx())).toMatchObject({ ok: true, value: true });
    expect(judgeWrite(cmd('mode', 2), ctx())).toMatchObject({ ok: true });
    expect(judgeWrite(cmd('stepped', 25), ctx())).toMatchObject({ ok: true });
    expect(judgeWrite(cmd('flow_sp', 12.345), ctx())).toMatchObject({ ok: true });
    expect(judgeWrite(cmd('tag', 'AB12'), ctx())).toMatchObject({ ok: true });
    expect(judgeWrite(cmd('offset_sp', -9.5), ctx())).toMatchObject({ ok: true });
  });

  it('refuses unknown devices and points, and points without write', () => {
    expect(reason(cmd('setpoint', 3, { device: 'pump9' }))).toBe('rejected: no device "pump9"');
    expect(reason(cmd('nope', 3))).toBe('rejected: device "pump1" has no point "nope"');
    expect(reason(cmd('level', 3))).toMatch(/^rejected: point pump1\/level is not writable/);
  });

  it('refuses values of the wrong type', () => {
    expect(reason(cmd('pump_enable', 1))).toMatch(/bool point takes true or false, got 1/);
    expect(reason(cmd('pump_enable', 'on'))).toMatch(/bool point takes true or false/);
    expect(reason(cmd('setpoint', '3.2'))).toMatch(/uint16 point takes a finite number, got "3.2"/);
    expect(reason(cmd('setpoint', null))).toMatch(/got null/);
    expect(reason(cmd('setpoint', Number.NaN))).toMatch(/finite number/);
    expect(reason(cmd('tag', 5))).toMatch(/string point takes a string/);
    expect(reason(cmd('tag', 'ABCDE'))).toMatch(/5 characters; the point holds 4/);
    expect(reason(cmd('tag', 'A\u0000'))).toMatch(/printable ASCII/);
  });

  it('refuses out of range, off-step and values not allowed', () => {
    expect(reason(cmd('setpoint', 1.49))).toBe('rejected: 1.49 bar is below the minimum 1.5 bar');
    expect(reason(cmd('setpoint', 4.51))).toBe('rejected: 4.51 bar is above the maximum 4.5 bar');
    expect(reason(cmd('setpoint', 3.205))).toMatch(/off-step: the point's resolution is 0.01/);
    expect(reason(cmd('stepped', 27))).toMatch(/off-step: allowed are 10 \+ k x 5/);
    expect(reason(cmd('mode', 3))).toMatch(/not one of the allowed values 0, 1, 2/);
    expect(reason(cmd('offset_sp', -9.7))).toMatch(/off-step: the point's resolution is 0.5 from -10/);
  });

  it('refuses a value that does not fit the register', () => {
    const wide = new Map<string, PointFacts>([['w', { type: 'int16', scale: 1, offset: 0, write: { maxPerMinute: 6 } }], ['f', { type: 'float32', scale: 1, offset: 0, write: { maxPerMinute: 6 } }]]);
    const c = { ...ctx(), points: () => wide };
    expect(reason(cmd('w', 32768), c)).toMatch(/does not fit a int16 register \(raw 32768, range -32768..32767\)/);
    expect(reason(cmd('w', -32768), c)).toBe('ok');
    expect(reason(cmd('f', 1e39), c)).toMatch(/does not fit a float32/);
  });

  it('refuses commands past their expiry, without one, or valid too long', () => {
    expect(reason(cmd('setpoint', 3, { expiresAt: NOW - 5000 }))).toBe('expired: expired 5 s ago');
    expect(reason(cmd('setpoint', 3, { expiresAt: NOW }))).toMatch(/^expired/);
    expect(reason(cmd('setpoint', 3, { expiresAt: Number.NaN }))).toMatch(/no expiry/);
    expect(reason(cmd('setpoint', 3, { expiresAt: NOW + 3_600_001 }))).toMatch(/at most 3600 s is taken/);
  });

  it('checks expiry before anything else: a stale command for an unknown point is expired, not rejected', () => {
    expect(reason(cmd('nope', 'x', { expiresAt: NOW - 1 }))).toMatch(/^expired/);
  });

  it('counts only the last minute against the rate limit', () => {
    expect(reason(cmd('setpoint', 3), ctx([NOW - 10_000, NOW - 5_000]))).toMatch(/over the rate limit: 2 writes .* \(maxPerMinute 2\)/);
    expect(reason(cmd('setpoint', 3), ctx([NOW - 70_000, NOW - 5_000]))).toBe('ok');
  });

  it('never lets through a value outside min..max or off the resolution (property)', () => {
    // Doubles near the range and values on the 0.01 grid, so accepted values are drawn too.
    const near = fc.oneof(fc.double({ min: -100, max: 100, noNaN: true }), fc.integer({ min: 100, max: 500 }).map((k) => k / 100));
    fc.assert(
      fc.property(near, (v) => {
        const verdict = judgeWrite(cmd('setpoint', v), ctx());
        return !verdict.ok || (v >= 1.5 && v <= 4.5 && Math.abs(v * 100 - Math.round(v * 100)) < 1e-6);
      }),
    );
  });

  it('takes every whole raw value of an integer register and nothing beyond (property)', () => {
    const f: PointFacts = { type: 'uint16', scale: 1, offset: 0, write: { maxPerMinute: 6 } };
    fc.assert(fc.property(fc.integer({ min: -70000, max: 140000 }), (v) => (checkType(f, v) === undefined) === (v >= 0 && v <= 65535)));
  });
});
