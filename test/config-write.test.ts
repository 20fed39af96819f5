/**
 * `write` on a point: nothing is writable without it; only coils and holding registers, whole, may carry it; its
 * limits (engineering units) must fit the point's type. Every refusal at its file:line:col and key path.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config/load.js';
import { onStep } from '../src/config/validate-write.js';
import { errors, withPoints, yaml } from './fixtures/config/text.js';

function accepted(...points: string[]) {
  const { config, issues } = parseConfig(withPoints(...points), 'c.yaml');
  expect(issues).toEqual([]);
  return config!.devices[0]!.points;
}

describe('write: what is accepted', () => {
  it('no write key: not writable (write stays undefined), and write: false says the same', () => {
    const [a, b] = accepted('      - { id: a, fc: 3, address: 0 }', '      - { id: b, fc: 1, address: 0, write: false }');
    expect(a!.write).toBeUndefined();
    expect(b!.write).toBeUndefined();
  });

  it('write: true on a coil and on a holding register, with the defaults (readBack true, maxPerMinute 6)', () => {
    const [coil, reg] = accepted('      - { id: pump_enable, fc: 1, address: 0, type: bool, write: true }', '      - { id: sp, fc: 3, address: 10, write: true }');
    expect(coil!.write).toEqual({ readBack: true, maxPerMinute: 6 });
    expect(reg!.write).toEqual({ readBack: true, maxPerMinute: 6 });
  });

  it('the issue\'s example: a scaled setpoint with min and max in engineering units', () => {
    const [p] = accepted('      - { id: pressure_setpoint, fc: 3, address: 10, type: uint16, scale: 0.01, unit: bar, write: { min: 1.5, max: 4.5 } }');
    expect(p!.write).toEqual({ min: 1.5, max: 4.5, readBack: true, maxPerMinute: 6 });
  });

  it('every key at once, on every numeric type, values on the step grid from min', () => {
    const types = ['int16', 'uint16', 'int32', 'uint32', 'int64', 'uint64', 'float32', 'float64'];
    const points = accepted(
      ...types.map((t, i) => `      - { id: p${i}, fc: 3, address: ${i * 4}, type: ${t}, write: { min: 2, max: 10, step: 2, values: [2, 4, 10], readBack: false, maxPerMinute: 60 } }`),
    );
    for (const p of points) expect(p.write).toEqual({ min: 2, max: 10, step: 2, values: [2, 4, 10], readBack: false, maxPerMinute: 60 });
  });

  it('values of bools on a coil or bool register, and of texts on a string', () => {
    const [coil, reg, text] = accepted(
      '      - { id: stop_only, fc: 1, address: 0, write: { values: [false] } }',
      '      - { id: mode, fc: 3, address: 0, type: bool, write: { values: [true, false] } }',
      '      - { id: tag, fc: 3, address: 1, type: string, length: 3, write: { values: [PT-1, "", AB CD] } }',
    );
    expect(coil!.write!.values).toEqual([false]);
    expect(reg!.write!.values).toEqual([true, false]);
    expect(text!.write!.values).toEqual(['PT-1', '', 'AB CD']);
  });

  it('a scaled step that is a whole number of counts, a negative scale, an offset, min equal to max', () => {
    accepted(
      '      - { id: a, fc: 3, address: 0, scale: 0.01, write: { step: 0.05, min: 0, max: 655.35 } }',
      '      - { id: b, fc: 3, address: 1, type: int16, scale: -0.5, write: { min: -100, max: 100, step: 1.5 } }',
      '      - { id: c, fc: 3, address: 2, type: int16, scale: 0.1, offset: -40, write: { min: -40, max: 85 } }',
      '      - { id: d, fc: 3, address: 3, write: { min: 7, max: 7 } }',
      '      - { id: e, fc: 3, address: 4, type: float32, scale: 0.001, write: { step: 0.0001 } }',
    );
  });
});

describe('docs/configuration.md', () => {
  it('its write example is a valid list of points', () => {
    const docs = readFileSync(new URL('../docs/configuration.md', import.meta.url), 'utf8');
    const block = /```yaml\n(  - \{ id: pump_enable[\s\S]*?)```/.exec(docs)?.[1];
    expect(block).toBeDefined();
    const points = accepted(...block!.trimEnd().split('\n').map((l) => `    ${l}`));
    expect(points.map((p) => [p.id, p.write])).toEqual([
      ['pump_enable', { readBack: true, maxPerMinute: 6 }],
      ['pressure_setpoint', { min: 1.5, max: 4.5, step: 0.05, readBack: true, maxPerMinute: 6 }],
      ['mode', { values: [0, 1, 2], readBack: true, maxPerMinute: 6 }],
      ['flow_sp', { max: 120, readBack: false, maxPerMinute: 6 }],
    ]);
  });
});

describe('write: what is refused, at the key to blame', () => {
  it('discrete inputs and input registers are read-only in Modbus', () => {
    expect(errors(withPoints('      - { id: a, fc: 2, address: 0, write: true }', '      - { id: b, fc: 4, address: 0, write: { min: 0 } }'))).toEqual([
      'c.yaml:12:44 devices[0].points[0].write: fc 2 points are discrete inputs, read-only in Modbus; only coils (fc 1) and holding registers (fc 3) can be written',
      'c.yaml:13:44 devices[0].points[1].write: fc 4 points are input registers, read-only in Modbus; only coils (fc 1) and holding registers (fc 3) can be written',
    ]);
  });

  it('a bit of a register: writing it would rewrite the whole register', () => {
    expect(errors(withPoints('      - { id: flag, fc: 3, address: 1, bit: 3, write: true }'))).toEqual([
      'c.yaml:12:55 devices[0].points[0].write: a bit of a register cannot be written on its own: it would rewrite the whole register and could undo a bit the device changed meanwhile; write the register as uint16 (with values) or use a coil (fc 1)',
    ]);
  });

  it('a point of a line sensor', () => {
    const text = yaml(
      'gateway: { id: gw }',
      'buses: [{ id: gas, transport: line, port: /dev/ttyUSB1 }]',
      'devices:',
      "  - { id: face, bus: gas, parse: { kv: {} }, points: [{ id: ch4, write: true }] }",
    );
    expect(errors(text)).toEqual(['c.yaml:4:73 devices[0].points[0].write: write applies to Modbus coils and holding registers; a line sensor only reports its readings']);
  });

  it('min, max and step on a bool or a string', () => {
    expect(errors(withPoints(
      '      - { id: a, fc: 1, address: 0, write: { min: 0 } }',
      '      - { id: b, fc: 3, address: 0, type: bool, write: { step: 1 } }',
      '      - { id: s, fc: 3, address: 1, type: string, length: 2, write: { max: 3 } }',
    ))).toEqual([
      'c.yaml:12:51 devices[0].points[0].write.min: min applies to numeric points, not bool: it is written true or false (values: [true] allows only one)',
      'c.yaml:13:64 devices[0].points[1].write.step: step applies to numeric points, not bool: it is written true or false (values: [true] allows only one)',
      'c.yaml:14:76 devices[0].points[2].write.max: max applies to numeric points, not string: list the texts allowed in values',
    ]);
  });

  it('min above max', () => {
    expect(errors(withPoints('      - { id: a, fc: 3, address: 0, write: { min: 5, max: 4 } }'))).toEqual([
      'c.yaml:12:51 devices[0].points[0].write.min: min (5) must not exceed max (4)',
    ]);
  });

  it('a limit the registers cannot hold once scale and offset are undone', () => {
    expect(errors(withPoints(
      '      - { id: a, fc: 3, address: 0, scale: 0.01, write: { max: 700 } }',
      '      - { id: b, fc: 3, address: 1, type: int16, write: { min: -40000 } }',
      '      - { id: c, fc: 3, address: 2, type: int16, scale: 0.1, offset: -40, write: { min: -3400 } }',
      '      - { id: d, fc: 3, address: 3, type: float32, write: { max: 1e39 } }',
    ))).toEqual([
      'c.yaml:13:64 devices[0].points[1].write.min: min -40000 does not fit int16; int16 holds -32768..32767',
      'c.yaml:12:64 devices[0].points[0].write.max: max 700 does not fit uint16 with scale 0.01 (raw 70000); uint16 holds 0..65535',
      'c.yaml:14:89 devices[0].points[2].write.min: min -3400 does not fit int16 with scale 0.1 and offset -40 (raw -33600); int16 holds -32768..32767',
      'c.yaml:15:66 devices[0].points[3].write.max: max 1e+39 does not fit float32; float32 holds -3.4028234663852886e+38..3.4028234663852886e+38',
    ].sort(byLine));
  });

  it('a step finer than a count of the register, or not a whole number of them', () => {
    expect(errors(withPoints(
      '      - { id: a, fc: 3, address: 0, scale: 0.01, write: { step: 0.005 } }',
      '      - { id: b, fc: 3, address: 1, write: { step: 1.5 } }',
    ))).toEqual([
      'c.yaml:12:65 devices[0].points[0].write.step: step 0.005 is not a whole number of register counts (scale 0.01): use a multiple of 0.01',
      'c.yaml:13:52 devices[0].points[1].write.step: step 1.5 is not a whole number of register counts (scale 1): use a multiple of 1',
    ]);
    expect(errors(withPoints('      - { id: c, fc: 3, address: 2, write: { step: 0 } }'))).toEqual(['c.yaml:12:52 devices[0].points[0].write.step: must be greater than 0, got 0']);
  });

  it('values of the wrong type, outside min and max, off the step grid, or beyond the registers', () => {
    expect(errors(withPoints(
      '      - { id: a, fc: 3, address: 0, scale: 0.01, write: { min: 1, max: 5, step: 0.5, values: [1, 2.5, 0.5, 6, 1.25, x, true] } }',
      '      - { id: b, fc: 1, address: 0, write: { values: [1] } }',
      '      - { id: s, fc: 3, address: 1, type: string, length: 2, write: { values: [ABCDE, 7, "\\u00e9"] } }',
      '      - { id: c, fc: 3, address: 3, write: { values: [70000] } }',
    ))).toEqual([
      'c.yaml:12:103 devices[0].points[0].write.values[2]: 0.5 is below min (1): it could never be written',
      'c.yaml:12:108 devices[0].points[0].write.values[3]: 6 is above max (5): it could never be written',
      'c.yaml:12:111 devices[0].points[0].write.values[4]: 1.25 is not on the step grid (1 + k x 0.5): it could never be written',
      'c.yaml:12:117 devices[0].points[0].write.values[5]: must be a number (the point is uint16), got "x"',
      'c.yaml:12:120 devices[0].points[0].write.values[6]: must be a number (the point is uint16), got true',
      'c.yaml:13:55 devices[0].points[1].write.values[0]: must be true or false (the point is bool), got 1',
      'c.yaml:14:80 devices[0].points[2].write.values[0]: "ABCDE" has 5 characters; the point holds 4',
      'c.yaml:14:87 devices[0].points[2].write.values[1]: must be text (the point is a string), got 7',
      'c.yaml:14:90 devices[0].points[2].write.values[2]: "é" has a character outside printable ASCII',
      'c.yaml:15:55 devices[0].points[3].write.values[0]: 70000 does not fit uint16; uint16 holds 0..65535',
    ]);
    expect(errors(withPoints('      - { id: d, fc: 3, address: 4, write: { values: [] } }'))).toEqual(['c.yaml:12:54 devices[0].points[0].write.values: needs at least 1 entry']);
  });

  it('a string longer than one write carries', () => {
    const text = withPoints('      - { id: s, fc: 3, address: 0, type: string, length: 124, write: true }').replace('    points:', '    maxRegistersPerRequest: 125\n    points:');
    expect(errors(text)).toEqual(['c.yaml:13:71 devices[0].points[0].write: a string of 124 registers cannot be written: one write (fc 16) carries at most 123']);
  });

  it('malformed write values, unknown keys, bad readBack and maxPerMinute', () => {
    expect(errors(withPoints(
      '      - { id: a, fc: 3, address: 0, write: yes }',
      '      - { id: b, fc: 3, address: 1, write: { minimum: 1, readBack: 2, maxPerMinute: 0 } }',
      '      - { id: c, fc: 3, address: 2, write: [1, 2] }',
      '      - { id: e, fc: 3, address: 3, write: { maxPerMinute: 2.5, min: "1" } }',
    ))).toEqual([
      'c.yaml:12:44 devices[0].points[0].write: must be true, false or a mapping of min, max, step, values, readBack, maxPerMinute, got "yes"',
      'c.yaml:13:46 devices[0].points[1].write.minimum: unknown key "minimum" (known keys: min, max, step, values, readBack, maxPerMinute)',
      'c.yaml:13:68 devices[0].points[1].write.readBack: must be true or false, got 2',
      'c.yaml:13:85 devices[0].points[1].write.maxPerMinute: must be 1-600, got 0',
      'c.yaml:14:44 devices[0].points[2].write: must be true, false or a mapping of min, max, step, values, readBack, maxPerMinute, got a list',
      'c.yaml:15:60 devices[0].points[3].write.maxPerMinute: must be a whole number, got 2.5',
      'c.yaml:15:70 devices[0].points[3].write.min: must be a number, got "1"',
    ]);
  });

  it('write problems are listed in the same pass as schema errors elsewhere in the file', () => {
    const text = withPoints('      - { id: a, fc: 4, address: 0, write: true }').replace('  id: gw', '  id: gw\n  colour: red');
    expect(errors(text)).toEqual([
      'c.yaml:3:3 gateway.colour: unknown key "colour" (known keys: id, dataDir, clock)',
      'c.yaml:13:44 devices[0].points[0].write: fc 4 points are input registers, read-only in Modbus; only coils (fc 1) and holding registers (fc 3) can be written',
    ]);
  });
});

describe('onStep: the grid rule', () => {
  it('counts from min (0 without), within decimal rounding', () => {
    expect(onStep(0.3, 0.1)).toBe(true);
    expect(onStep(0.35, 0.1)).toBe(false);
    expect(onStep(2.5, 0.5, 1)).toBe(true);
    expect(onStep(1.25, 0.5, 1)).toBe(false);
    expect(onStep(-3, 1.5)).toBe(true);
    expect(onStep(1e6 + 0.2, 0.2)).toBe(true);
  });
});

function byLine(a: string, b: string): number {
  const [, la, ca] = /^c\.yaml:(\d+):(\d+)/.exec(a)!.map(Number);
  const [, lb, cb] = /^c\.yaml:(\d+):(\d+)/.exec(b)!.map(Number);
  return la! - lb! || ca! - cb!;
}
