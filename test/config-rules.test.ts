import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { configSchema } from '../src/config/schema.js';
import { resolvedType, resolvedWidth, validateConfig } from '../src/config/validate.js';
import { errors, HEAD, withPoints, yaml } from './fixtures/config/text.js';

describe('cross-field rules', () => {
  it('rejects duplicate bus, device and point ids', () => {
    const text = yaml(
      'gateway: { id: gw }', //                          1
      'buses:', //                                       2
      '  - { id: a, transport: tcp, host: h1 }', //      3
      '  - { id: a, transport: tcp, host: h2 }', //      4
      'devices:', //                                     5
      '  - id: d', //                                    6
      '    bus: a', //                                   7
      '    unit: 1', //                                  8
      '    points:', //                                  9
      '      - { id: p, address: 0 }', //                10
      '      - { id: p, address: 1 }', //                11
      '  - id: d', //                                    12
      '    bus: a', //                                   13
      '    unit: 2', //                                  14
      '    points: [{ id: p, address: 0 }]', //          15
    );
    expect(errors(text)).toEqual([
      'c.yaml:4:11 buses[1].id: duplicate bus id "a" (also buses[0])',
      'c.yaml:11:15 devices[0].points[1].id: duplicate point id "p" (also points[0])',
      'c.yaml:12:9 devices[1].id: duplicate device id "d" (also devices[0])',
    ]);
  });

  it('rejects a device on a bus that does not exist, listing the buses', () => {
    const text = yaml(...HEAD.slice(0, 8), '    bus: b', '    unit: 1', '    points: [{ id: p, address: 0 }]');
    expect(errors(text)).toEqual(['c.yaml:9:10 devices[0].bus: no bus "b"; defined buses: a']);
    const none = yaml('gateway: { id: gw }', 'devices: [{ id: d, bus: b, unit: 1, points: [{ id: p, address: 0 }] }]');
    expect(errors(none)).toEqual(['c.yaml:2:25 devices[0].bus: no bus "b"; no buses are defined']);
  });

  it('rejects two devices with one unit on a bus, and allows it on different buses', () => {
    const text = yaml(
      'gateway: { id: gw }',
      'buses:',
      '  - { id: a, transport: rtu, port: /dev/ttyS0 }',
      '  - { id: b, transport: rtu, port: /dev/ttyS1 }',
      'devices:',
      '  - { id: d1, bus: a, unit: 5, points: [{ id: p, address: 0 }] }',
      '  - { id: d2, bus: b, unit: 5, points: [{ id: p, address: 0 }] }',
      '  - { id: d3, bus: a, unit: 5, points: [{ id: p, address: 0 }] }',
    );
    expect(errors(text)).toEqual(['c.yaml:8:29 devices[2].unit: unit 5 on bus "a" is already used by device "d1"']);
  });

  it('rejects two rtu buses on one serial port', () => {
    const text = yaml(
      'gateway: { id: gw }',
      'buses:',
      '  - { id: a, transport: rtu, port: /dev/ttyS0 }',
      '  - { id: b, transport: rtu, port: /dev/ttyS0, baudRate: 19200 }',
    );
    expect(errors(text)).toEqual(['c.yaml:4:36 buses[1].port: serial port "/dev/ttyS0" is already used by bus "a"']);
  });

  it('rejects backoff minimums above their maximums', () => {
    const text = yaml(...HEAD.slice(0, 6), '    reconnectMinMs: 5000', '    reconnectMaxMs: 1000', '    unitBackoffMaxMs: 10');
    expect(errors(text)).toEqual([
      'c.yaml:4:5 buses[0].unitBackoffMinMs: unitBackoffMinMs (5000) must not exceed unitBackoffMaxMs (10)',
      'c.yaml:7:21 buses[0].reconnectMinMs: reconnectMinMs (5000) must not exceed reconnectMaxMs (1000)',
    ]);
  });

  it('rejects a point that runs past register 65535', () => {
    const text = withPoints(
      '      - { id: last, fc: 4, address: 65535 }', //                   12 fits
      '      - { id: s, fc: 4, address: 65530, type: string, length: 5 }', // 13 ends at 65534: fits
      '      - { id: f, fc: 3, address: 65535, type: float32 }', //       14
    );
    expect(errors(text)).toEqual([
      'c.yaml:14:34 devices[0].points[2].address: float32 at 65535 spans 2 registers and runs past 65535',
    ]);
  });

  it('allows bit only on a 16-bit register', () => {
    const text = withPoints(
      '      - { id: ok1, fc: 3, address: 0, bit: 1 }', //                 12
      '      - { id: ok2, fc: 4, address: 0, bit: 2, type: int16 }', //    13
      '      - { id: coil, fc: 1, address: 0, bit: 1 }', //                14
      '      - { id: wide, fc: 3, address: 1, type: int32, bit: 3 }', //   15
      '      - { id: huge, fc: 3, address: 3, type: float64, bit: 3 }', // 16
    );
    expect(errors(text)).toEqual([
      'c.yaml:14:45 devices[0].points[2].bit: bit selects one bit of a register (fc 3/4); fc 1 points are already single bits',
      'c.yaml:15:58 devices[0].points[3].bit: a bit index needs a 16-bit register; int32 is 32-bit (use bool, int16, uint16 or omit type)',
      'c.yaml:16:60 devices[0].points[4].bit: a bit index needs a 16-bit register; float64 is 64-bit (use bool, int16, uint16 or omit type)',
    ]);
  });

  it('requires length with type string and allows it only there', () => {
    const text = withPoints(
      '      - id: name', //           12
      '        address: 0', //         13
      '        type: string', //       14
      '      - id: n', //              15
      '        address: 10', //        16
      '        length: 4', //          17
    );
    expect(errors(text)).toEqual([
      'c.yaml:12:9 devices[0].points[0].length: type string needs length, the number of registers (two characters each)',
      'c.yaml:17:17 devices[0].points[1].length: length applies only to type string, not uint16',
    ]);
  });

  it('allows only bool on coils and discrete inputs', () => {
    const text = withPoints(
      '      - { id: c, fc: 1, address: 0, type: bool }', //   12
      '      - { id: d, fc: 2, address: 0 }', //               13
      '      - { id: e, fc: 2, address: 1, type: int16 }', //  14
    );
    expect(errors(text)).toEqual([
      'c.yaml:14:43 devices[0].points[2].type: fc 2 reads single bits as bool; remove type or set it to bool, not int16',
    ]);
  });

  it('allows 8-letter orders only on 64-bit types', () => {
    const text = withPoints(
      '      - { id: a, address: 0, type: uint64, order: HGFEDCBA }', //   12
      '      - { id: b, address: 4, type: float32, order: GHEFCDAB }', //  13
      '      - { id: c, address: 6, type: float32, order: CDAB }', //      14
    );
    expect(errors(text)).toEqual([
      'c.yaml:13:52 devices[0].points[1].order: GHEFCDAB is a 64-bit order; float32 takes ABCD, CDAB, BADC or DCBA',
    ]);
  });

  it('rejects a point wider than the device allows in one request', () => {
    const text = yaml(
      ...HEAD.slice(0, 10),
      '    maxRegistersPerRequest: 2', //                                  11
      '    points:', //                                                    12
      '      - { id: f, address: 0, type: float32 }', //                   13
      '      - { id: g, address: 2, type: float64 }', //                   14
      '      - { id: s, address: 6, type: string, length: 3 }', //         15
    );
    expect(errors(text)).toEqual([
      'c.yaml:14:36 devices[0].points[1].type: float64 spans 4 registers, more than the device\'s maxRegistersPerRequest (2)',
      'c.yaml:15:52 devices[0].points[2].length: string spans 3 registers, more than the device\'s maxRegistersPerRequest (2)',
    ]);
  });

  it('rejects overlapping points on one function code', () => {
    const text = withPoints(
      '      - { id: w1, address: 100, type: float32 }', //       12 registers 100-101
      '      - { id: w2, address: 101 }', //                      13 overlaps w1
      '      - { id: w3, fc: 4, address: 101 }', //               14 other fc: fine
      '      - { id: b1, address: 100, bit: 0 }', //              15 bit of a word: fine
      '      - { id: b2, address: 100, bit: 1 }', //              16 another bit: fine
      '      - { id: b3, address: 100, bit: 0 }', //              17 same bit as b1
      '      - { id: c1, fc: 1, address: 100 }', //               18
      '      - { id: c2, fc: 1, address: 100 }', //               19 same coil
      '      - { id: s1, address: 200, type: string, length: 4 }', // 20 registers 200-203
      '      - { id: w4, address: 198, type: uint64 }', //        21 registers 198-201
    );
    expect(errors(text)).toEqual([
      'c.yaml:13:28 devices[0].points[1].address: holding registers 101 overlap 100-101, read by point "w1" (points[0])',
      'c.yaml:17:28 devices[0].points[5].address: bit 0 of holding register 100 is also read by point "b1" (points[3])',
      'c.yaml:19:35 devices[0].points[7].address: coil 100 is also read by point "c1" (points[6])',
      'c.yaml:21:28 devices[0].points[9].address: holding registers 198-201 overlap 200-203, read by point "s1" (points[8])',
    ]);
  });

  it('names, for every overlapping point, the first earlier point it overlaps, as comparing every pair does', () => {
    const point = fc.record({
      fc: fc.constantFrom(1, 2, 3, 4),
      address: fc.nat(12),
      type: fc.constantFrom(undefined, 'uint16', 'float32', 'uint64'),
      bit: fc.option(fc.nat(2), { nil: undefined }),
    });
    fc.assert(
      fc.property(fc.array(point, { minLength: 1, maxLength: 30 }), (raw) => {
        const points = raw.map((p, i) => ({ id: `p${i}`, ...p, ...(p.fc <= 2 ? { type: undefined } : {}) }));
        const config = configSchema.parse({ gateway: { id: 'g' }, buses: [{ id: 'a', transport: 'tcp', host: 'h' }], devices: [{ id: 'd', bus: 'a', unit: 1, points }] });
        const found = validateConfig(config).filter((i) => / read by point /.test(i.message)).map((i) => [i.path[3], /\(points\[(\d+)\]\)$/.exec(i.message)![1]]);
        const span = (p: (typeof config.devices)[0]['points'][0]) => [p.address!, p.address! + resolvedWidth(p) - 1];
        const clash = (a: (typeof points)[0], b: (typeof points)[0]) => {
          const [pa, pb] = [config.devices[0].points[Number(a.id.slice(1))], config.devices[0].points[Number(b.id.slice(1))]];
          if (pa.fc !== pb.fc) return false;
          if (pa.fc <= 2) return pa.address === pb.address;
          if ((pa.bit === undefined) !== (pb.bit === undefined)) return false;
          if (pa.bit !== undefined) return pa.address === pb.address && pa.bit === pb.bit;
          const [[a0, a1], [b0, b1]] = [span(pa), span(pb)];
          return !(b0 > a1 || a0 > b1);
        };
        const expected = points.flatMap((p, i) => {
          const q = points.slice(0, i).findIndex((earlier) => clash(earlier, p));
          return q < 0 ? [] : [[i, String(q)]];
        });
        expect(found).toEqual(expected);
      }),
      { numRuns: 500 },
    );
  });

  it('refuses line-sensor keys on a Modbus device and its points', () => {
    expect(errors(yaml(...HEAD, '      - { id: p, address: 0, field: co }', '    parse: { json: true }', '    checksum: nmea'))).toEqual([
      'c.yaml:12:37 devices[0].points[0].field: field applies to line-sensor points; a Modbus point is read by fc and address',
      'c.yaml:13:12 devices[0].parse: parse is a line-sensor key; a Modbus device takes unit, maxRegistersPerRequest, maxBitsPerRequest, maxGap, requests (besides id, bus, pollIntervalMs and points)',
      'c.yaml:14:15 devices[0].checksum: checksum is a line-sensor key; a Modbus device takes unit, maxRegistersPerRequest, maxBitsPerRequest, maxGap, requests (besides id, bus, pollIntervalMs and points)',
    ]);
  });

  it('gives a device on a missing bus the kind of the buses there are, and none when they differ', () => {
    // Every bus is Modbus: the device is checked as one (unit required) beside the missing bus.
    expect(errors(yaml('gateway: { id: gw }', 'buses: [{ id: a, transport: tcp, host: h }]', 'devices:', '  - { id: d, bus: b, points: [{ id: p, address: 0 }] }'))).toEqual([
      'c.yaml:4:5 devices[0].unit: is required: the Modbus unit id (1-247)',
      'c.yaml:4:19 devices[0].bus: no bus "b"; defined buses: a',
    ]);
    const mixed = yaml(
      'gateway: { id: gw }',
      'buses: [{ id: a, transport: tcp, host: h }, { id: g, transport: line, port: /dev/ttyUSB1 }]',
      'devices:',
      '  - { id: d, bus: b, points: [{ id: p, fc: 4 }] }',
    );
    expect(errors(mixed)).toEqual(['c.yaml:4:19 devices[0].bus: no bus "b"; defined buses: a, g']);
  });

  it('reports every rule violation of a file at once', () => {
    const text = yaml(
      'gateway: { id: gw }',
      'buses:',
      '  - { id: a, transport: rtu, port: /dev/ttyS0, reconnectMinMs: 60000 }',
      'devices:',
      '  - { id: d, bus: x, unit: 1, points: [{ id: p, address: 0, bit: 1, type: int32 }] }',
    );
    expect(errors(text)).toHaveLength(3);
  });

  it('resolves the type a point reads', () => {
    expect(resolvedType({ fc: 1 })).toBe('bool');
    expect(resolvedType({ fc: 2, type: 'bool' })).toBe('bool');
    expect(resolvedType({ fc: 3 })).toBe('uint16');
    expect(resolvedType({ fc: 4, type: 'float32' })).toBe('float32');
    expect(resolvedType({ fc: 3, type: 'int16', bit: 4 })).toBe('bool');
    expect(resolvedWidth({ fc: 3, type: 'float64' })).toBe(4);
    expect(resolvedWidth({ fc: 3, type: 'string', length: 6 })).toBe(6);
    expect(resolvedWidth({ fc: 3, type: 'uint16', bit: 3 })).toBe(1);
  });
});
