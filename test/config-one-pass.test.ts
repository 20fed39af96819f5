/**
 * `fieldgate validate` lists every problem of a file in one pass: reference errors (a bus that does not
 * exist, duplicate ids) together with schema errors, sorted by position, so one round of edits fixes them.
 */
import { describe, expect, it } from 'vitest';
import { fieldgate } from './helpers/cli.js';
import { errors, yaml } from './fixtures/config/text.js';

describe('one pass over a configuration', () => {
  it('lists an unknown key, a unit of 300 and a missing bus together (fieldgate validate)', async () => {
    const file = 'test/fixtures/config/several-errors.yaml';
    const { code, stdout, stderr } = await fieldgate(['validate', '-c', file]);
    expect(code).toBe(2);
    expect(stdout).toBe('');
    const lines = stderr.trimEnd().split('\n');
    expect(lines[0]).toBe(`fieldgate: ${file}: invalid configuration, 8 errors`);
    expect(lines).toContain(`${file}:7:5 buses[0].baudrate: unknown key "baudrate" (did you mean "baudRate"?)`);
    expect(lines).toContain(`${file}:11:10 devices[0].bus: no bus "line2"; defined buses: line1`);
    expect(lines).toContain(`${file}:12:11 devices[0].unit: unit must be 1-247, got 300`);
    // Sorted by position: line, then column.
    const places = lines.slice(1).map((l) => /:(\d+):(\d+) /.exec(l)!.slice(1).map(Number) as [number, number]);
    expect(places).toEqual([...places].sort((a, b) => a[0] - b[0] || a[1] - b[1]));
  });

  it('reports duplicate ids and a reused serial port beside schema errors', () => {
    const text = yaml(
      'gateway: { id: gw, colour: red }', //                                             1
      'buses:', //                                                                        2
      '  - { id: a, transport: rtu, port: /dev/ttyS0 }', //                               3
      '  - { id: a, transport: rtu, port: /dev/ttyS0, parity: Odd }', //                  4
      'devices:', //                                                                      5
      '  - { id: d, bus: a, unit: 1, points: [{ id: p, address: 0 }, { id: p, address: 1 }] }', // 6
      '  - { id: d, bus: a, unit: 1, pollIntervalMs: 0, points: [{ id: q, address: 0 }] }', //      7
    );
    expect(errors(text)).toEqual([
      'c.yaml:1:20 gateway.colour: unknown key "colour" (known keys: id, dataDir, clock)',
      'c.yaml:4:11 buses[1].id: duplicate bus id "a" (also buses[0])',
      'c.yaml:4:36 buses[1].port: serial port "/dev/ttyS0" is already used by bus "a"',
      'c.yaml:4:56 buses[1].parity: must be one of "none", "even", "odd", got "Odd" (did you mean "odd"?)',
      'c.yaml:6:69 devices[0].points[1].id: duplicate point id "p" (also points[0])',
      'c.yaml:7:11 devices[1].id: duplicate device id "d" (also devices[0])',
      'c.yaml:7:28 devices[1].unit: unit 1 on bus "a" is already used by device "d"',
      'c.yaml:7:47 devices[1].pollIntervalMs: must be 1-86400000, got 0',
    ]);
  });

  it('runs the rules of a device the schema accepts while another part is refused', () => {
    const text = yaml(
      'gateway: { id: gw }',
      'buses: [{ id: a, transport: tcp, host: h, port: 99999 }]',
      'devices:',
      '  - { id: d, bus: a, unit: 1, points: [{ id: p, address: 0, type: int32 }, { id: q, address: 1 }] }',
    );
    expect(errors(text)).toEqual([
      'c.yaml:2:49 buses[0].port: must be 1-65535, got 99999',
      'c.yaml:4:94 devices[0].points[1].address: holding registers 1 overlap 0-1, read by point "p" (points[0])',
    ]);
  });
});
