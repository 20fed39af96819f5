/** Rules for line-sensor buses and devices, keys required by the bus kind, and the processing keys. */
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config/load.js';
import { errors, withPoints, yaml } from './fixtures/config/text.js';

const LINE_HEAD = [
  'gateway: { id: gw }', //                                                1
  'buses:', //                                                             2
  '  - { id: gas, transport: line, port: /dev/ttyUSB1 }', //               3
  'devices:', //                                                           4
  '  - id: face', //                                                       5
  '    bus: gas', //                                                       6
];
const line = (...lines: string[]) => yaml(...LINE_HEAD, ...lines);

describe('line-sensor configuration', () => {
  it('accepts a regex device with checksum and query, and fills in the line defaults', () => {
    const { config, issues } = parseConfig(
      line(
        '    query: "#01\\r"',
        '    checksum: nmea',
        "    parse: { regex: '^\\$GAS,CH4=(?<ch4>-?[\\d.]+),CO=(?<co>\\d+)' }",
        '    points:',
        '      - { id: ch4, unit: "%vol" }',
        '      - { id: carbon_monoxide, field: co, unit: ppm }',
      ),
      'c.yaml',
    );
    expect(issues).toEqual([]);
    expect(config!.buses[0]).toMatchObject({ transport: 'line', delimiter: '\r\n', maxLineBytes: 512, baudRate: 9600, timeoutMs: 1000 });
    expect(config!.devices[0]).toMatchObject({ query: '#01\r', checksum: 'nmea' });
  });

  it('needs exactly one parse mode, and a group or column for every point', () => {
    expect(errors(line('    points: [{ id: ch4 }]'))).toEqual(['c.yaml:5:5 devices[0]: a line device needs parse: with one of regex, kv, csv or json']);
    expect(errors(line('    parse: { json: true, csv: { columns: [a] } }', '    points: [{ id: a }]'))).toEqual([
      'c.yaml:7:12 devices[0].parse: parse takes one of regex, kv, csv or json, not csv and json',
    ]);
    expect(errors(line("    parse: { regex: 'CH4=(?<ch4>[0-9.]+)' }", '    points:', '      - { id: co }'))).toEqual([
      'c.yaml:9:15 devices[0].points[0].id: the regex has no named group "co"; it has ch4',
    ]);
    expect(errors(line("    parse: { regex: '(?<a>[0-9' }", '    points: [{ id: a }]'))[0]).toMatch(/^c\.yaml:7:\d+ devices\[0\]\.parse\.regex: not a valid regular expression/);
    expect(errors(line('    parse: { csv: { columns: [dist, temp] } }', '    points:', '      - { id: d, field: distance }'))).toEqual([
      'c.yaml:9:25 devices[0].points[0].field: csv has no column "distance"; its columns are dist, temp',
    ]);
  });

  it('refuses Modbus keys on a line device and its points', () => {
    expect(errors(line('    unit: 3', '    parse: { json: true }', '    points:', '      - { id: a, address: 4 }'))).toEqual([
      'c.yaml:7:11 devices[0].unit: unit is a Modbus unit id; a device on a line bus has none',
      'c.yaml:10:27 devices[0].points[0].address: address applies to Modbus points; a line point is read from its field',
    ]);
  });

  it('refuses fc, order and the Modbus device keys on a line bus, and only these keys, in one pass', () => {
    expect(
      errors(line('    maxGap: 4', '    parse: { json: true }', '    points:', '      - { id: a, fc: 4, order: CDAB }', '      - { id: b, fc: 9, adress: 1 }')),
    ).toEqual([
      'c.yaml:7:13 devices[0].maxGap: maxGap is a Modbus key; a line-sensor device takes query, match, checksum, parse (besides id, bus, pollIntervalMs and points)',
      'c.yaml:10:22 devices[0].points[0].fc: fc is a Modbus key; a line-sensor point takes field, type, scale, offset, unit, description and the processing keys',
      'c.yaml:10:32 devices[0].points[0].order: order is a Modbus key; a line-sensor point takes field, type, scale, offset, unit, description and the processing keys',
      // Refused by kind once: not also "must be 1, 2, 3 or 4" for its value.
      'c.yaml:11:22 devices[0].points[1].fc: fc is a Modbus key; a line-sensor point takes field, type, scale, offset, unit, description and the processing keys',
      // A typo is matched against the keys a line point takes, never pointed to a Modbus key.
      'c.yaml:11:25 devices[0].points[1].adress: unknown key "adress" (known keys: id, field, type, scale, offset, unit, description, range, sensorFault, deadband, maxIntervalS, aggregate, alarms)',
    ]);
  });

  it('takes the kind from the bus, not from parse: a line device without parse is still a line device', () => {
    // Without parse the old guess made this a Modbus device and asked for unit and address.
    expect(errors(line('    points: [{ id: ch4 }]'))).toEqual(['c.yaml:5:5 devices[0]: a line device needs parse: with one of regex, kv, csv or json']);
  });

  it('refuses unitBackoffMinMs above unitBackoffMaxMs on a line bus', () => {
    const text = yaml('gateway: { id: gw }', 'buses:', '  - { id: g, transport: line, port: /dev/ttyUSB1, unitBackoffMinMs: 9000, unitBackoffMaxMs: 1000 }');
    expect(errors(text)).toEqual(['c.yaml:3:69 buses[0].unitBackoffMinMs: unitBackoffMinMs (9000) must not exceed unitBackoffMaxMs (1000)']);
  });

  it('accepts every point type on a line point (each has a converter)', () => {
    const types = ['bool', 'int16', 'uint16', 'int32', 'uint32', 'int64', 'uint64', 'float32', 'float64', 'string'];
    const { issues } = parseConfig(line('    parse: { json: true }', '    points:', ...types.map((t) => `      - { id: p_${t}, type: ${t} }`)), 'c.yaml');
    expect(issues).toEqual([]);
  });

  it('checks port against host on a line bus', () => {
    const text = yaml(
      'gateway: { id: gw }',
      'buses:',
      '  - { id: a, transport: line, host: 10.0.0.5, port: /dev/ttyS0 }',
      '  - { id: b, transport: line, port: 4001 }',
    );
    expect(errors(text)).toEqual([
      'c.yaml:3:53 buses[0].port: with host, port is the TCP port of the serial device server (a number), not "/dev/ttyS0"',
      'c.yaml:4:37 buses[1].port: port is a serial device path (e.g. /dev/ttyUSB1); for a serial device server over TCP add host',
    ]);
  });
});

describe('keys required by the bus kind', () => {
  it('reports a Modbus device without unit and a point without address together with schema errors', () => {
    const text = yaml(
      'gateway: { id: gw }',
      'buses: [{ id: a, transport: tcp, host: h }]',
      'devices:',
      '  - id: d',
      '    bus: a',
      '    pollIntervalMs: fast',
      '    points: [{ id: p }]',
    );
    expect(errors(text)).toEqual([
      'c.yaml:4:5 devices[0].unit: is required: the Modbus unit id (1-247)',
      'c.yaml:6:21 devices[0].pollIntervalMs: must be a number, got "fast"',
      'c.yaml:7:14 devices[0].points[0].address: is required',
    ]);
  });
});

describe('processing keys', () => {
  it('accepts the village pressure example', () => {
    const { issues } = parseConfig(
      withPoints(
        '      - id: inlet_pressure',
        '        fc: 4',
        '        address: 0',
        '        scale: 0.001',
        '        range: { raw: [4, 20], eng: [0, 10] }',
        '        sensorFault: namur',
        '        deadband: "2%"',
        '        maxIntervalS: 60',
        '        aggregate: { windowS: 60, functions: [min, max, avg, count] }',
        '        alarms:',
        '          - { type: low, limit: 1.5, hysteresis: 0.1, delayS: 5, severity: major }',
        '          - { type: rateOfChange, limit: -0.5, perS: 60, severity: critical }',
        '          - { type: stale, afterS: 30, severity: minor }',
      ),
      'c.yaml',
    );
    expect(issues).toEqual([]);
  });

  it('refuses inconsistent processing keys', () => {
    const lines = errors(
      withPoints(
        '      - id: p', //                                                           12
        '        address: 0', //                                                      13
        '        maxIntervalS: 60', //                                                14
        '        sensorFault: namur', //                                              15
        '        range: { raw: [0, 20], eng: [0, 10] }', //                           16
        '        alarms:', //                                                         17
        '          - { type: high, limit: 8 }', //                                    18
        '          - { type: high, limit: 9 }', //                                    19
      ),
    );
    expect(lines).toEqual([
      'c.yaml:14:23 devices[0].points[0].maxIntervalS: maxIntervalS bounds the silence of a deadband; set deadband too (or remove maxIntervalS)',
      'c.yaml:16:23 devices[0].points[0].range.raw: sensorFault: namur expects the raw reading in mA with range raw [4, 20]',
      'c.yaml:19:21 devices[0].points[0].alarms[1].type: alarm id "high" is also alarms[0]; give each alarm of one type its own id',
    ]);
    expect(errors(withPoints('      - { id: p, address: 0, deadband: "2 percent" }'))[0]).toMatch(/deadband: must be a number or a percentage like "2%"/);
    expect(errors(withPoints('      - { id: p, address: 0, alarms: [{ type: rateOfChange, limit: 0 }] }'))[0]).toMatch(/limit: must not be 0/);
  });
});
