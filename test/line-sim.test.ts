/** Line-protocol simulators: what the instruments say, their events on an injected clock, and the noise. */
import { describe, expect, it } from 'vitest';
import { compileChecksum } from '../src/sources/line/checksum.js';
import { compileParser } from '../src/sources/line/parse.js';
import { gasDetector, laserMeter } from '../src/sim/line/models.js';
import { NoiseSource, seededRandom } from '../src/sim/line/noise.js';

const T0 = Date.UTC(2025, 5, 1, 8, 0, 0);
const S = 1000;

function gasFields(line: string): Record<string, number> {
  const sum = compileChecksum('nmea')(Buffer.from(line));
  if (!sum.ok) throw new Error(`${line}: ${sum.reason}`);
  const r = compileParser({ kv: { pairSeparator: ',', assign: '=' } }, [])(sum.body.toString());
  if (!r.ok) throw new Error(r.reason);
  return Object.fromEntries(Object.entries(r.fields).map(([k, v]) => [k, Number(v)]));
}

describe('gas detector', () => {
  it('sends checksummed NMEA-style sentences, and answers only its own address', () => {
    const gas = gasDetector({ seed: 3 });
    const line = gas.periodic(T0);
    expect(line).toMatch(/^\$GAS,CH4=\d+\.\d\d,CO=\d+,H2S=\d+\.\d,O2=\d+\.\d\*[0-9A-F]{2}$/);
    const f = gasFields(line);
    expect(f.CH4).toBeGreaterThanOrEqual(0.02);
    expect(f.CH4).toBeLessThan(0.07);
    expect(f.O2).toBeGreaterThan(20.7);
    expect(gas.answer('#01', T0)).toBe(line);
    expect(gas.answer('#02', T0)).toBeUndefined();
    expect(gasDetector({ address: 2 }).answer('#02', T0)).toMatch(/^\$GAS/);
  });

  it('an excursion passes 0.5 and 1.0 %vol within a minute, then dies away by itself', () => {
    const gas = gasDetector();
    const ch4 = (t: number) => gasFields(gas.periodic(T0 + t)).CH4!;
    gas.trigger('gas', T0);
    expect(gas.eventActive).toBe(true);
    expect(ch4(10 * S)).toBeLessThan(0.5);
    expect(ch4(25 * S)).toBeGreaterThan(0.5);
    expect(ch4(50 * S)).toBeLessThan(1.0);
    expect(ch4(65 * S)).toBeGreaterThan(1.0);
    expect(ch4(90 * S)).toBeLessThan(1.5);
    expect(ch4(300 * S)).toBeLessThan(0.1);
    expect(gas.eventActive).toBe(false);
  });

  it('reads the same whether the clock ticks through or jumps, and clears at once on clear', () => {
    const a = gasDetector();
    const b = gasDetector();
    a.trigger('gas', T0);
    b.trigger('gas', T0);
    for (let t = 0; t <= 200 * S; t += 5 * S) a.periodic(T0 + t);
    expect(a.periodic(T0 + 200 * S)).toBe(b.periodic(T0 + 200 * S));
    const c = gasDetector();
    c.trigger('gas', T0);
    c.trigger('clear', T0 + 60 * S);
    expect(gasFields(c.periodic(T0 + 60 * S)).CH4).toBeGreaterThan(0.95);
    expect(gasFields(c.periodic(T0 + 260 * S)).CH4).toBeLessThan(0.1);
    expect(() => c.trigger('creep', T0)).toThrow(/"gas" event/);
  });
});

describe('laser distance meter', () => {
  it('answers D, DT and J, and refuses other commands', () => {
    const laser = laserMeter(T0);
    expect(laser.answer('D', T0)).toMatch(/^D,482[23]\.\d,mm$/);
    expect(laser.answer('dt', T0)).toMatch(/^482[23]\.\d,\d\d\.\d$/);
    const j = JSON.parse(laser.answer('J', T0)!);
    expect(j).toMatchObject({ distance: { value: expect.any(Number), unit: 'mm' }, temperature: expect.any(Number) });
    expect(laser.answer('X', T0)).toBe('E,unknown command');
  });

  it('seals replies with sum8 or CRC-16/MODBUS after a comma', () => {
    for (const kind of ['sum8', 'crc16-modbus'] as const) {
      const reply = laserMeter(T0, { checksum: kind }).answer('DT', T0)!;
      const r = compileChecksum(kind)(Buffer.from(reply));
      expect(r.ok, reply).toBe(true);
      if (r.ok) expect(r.body.toString()).toMatch(/^[\d.]+,[\d.]+,$/);
    }
  });

  it('converges slowly, and faster while a squeezing section creeps', () => {
    const laser = laserMeter(T0, { distanceMm: 5000 });
    const d = (t: number) => Number(laser.answer('D', T0 + t)!.split(',')[1]);
    expect(d(0)).toBeCloseTo(5000, 0);
    expect(5000 - d(86_400 * S)).toBeCloseTo(2 * Math.LN2, 0);
    laser.trigger('creep', T0 + 86_400 * S);
    expect(laser.eventActive).toBe(true);
    const atStart = d(86_400 * S);
    expect(atStart - d(86_400 * S + 10 * 60 * S)).toBeCloseTo(2, 0);
    laser.trigger('clear', T0 + 86_400 * S + 10 * 60 * S);
    const after = d(86_400 * S + 10 * 60 * S);
    expect(after - d(86_400 * S + 20 * 60 * S)).toBeLessThan(0.2);
    expect(() => laser.trigger('gas', T0)).toThrow(/"creep" event/);
  });
});

describe('noise', () => {
  it('is deterministic for a seed and takes turns through every kind', () => {
    expect([1, 2, 3].map(seededRandom(5))).toEqual([1, 2, 3].map(seededRandom(5)));
    const noise = new NoiseSource({ rate: 1, overlongBytes: 600, seed: 9 });
    const line = '$GAS,CH4=0.04,CO=3,H2S=0.3,O2=20.9*23';
    const items = Array.from({ length: 8 }, () => noise.before(line, '\r\n')!);
    expect(noise.sent).toEqual({ garbage: 2, partial: 2, checksum: 2, overlong: 2 });
    expect(items[0]!.subarray(0, -2).every((b) => b < 0x20 || b >= 0x7f)).toBe(true);
    expect(items[1]!.toString()).toBe(line.slice(0, line.length >> 1));
    const corrupted = items[2]!.toString().replace('\r\n', '');
    expect(corrupted).not.toBe(line);
    expect(compileChecksum('nmea')(Buffer.from(corrupted)).ok).toBe(false);
    expect(items[3]!.length).toBe(602);
    expect(new NoiseSource({ rate: 0 }).before(line, '\n')).toBeUndefined();
  });
});
