import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { describe, expect, it } from 'vitest';
import { UserError } from '../src/errors.js';
import { formatIssue, loadConfig, parseConfig } from '../src/config/load.js';
import { resolvedType } from '../src/config/validate.js';
import { errors, HEAD, withPoints, yaml } from './fixtures/config/text.js';
import { cliEntry } from './helpers/cli-bundle.js';

const root = fileURLToPath(new URL('..', import.meta.url)).replace(/\/$/, '');
const fixture = (name: string) => `test/fixtures/config/${name}`;

describe('YAML and schema errors', () => {
  it('reports a YAML syntax error with its position and stops there', () => {
    expect(errors(yaml('gateway:', '  id: [gw', 'buses: 3'))).toEqual([
      'c.yaml:3:1 buses: YAML syntax: Flow sequence in block collection must be sufficiently indented and end with a ]',
    ]);
  });

  it('reports duplicate keys at the second occurrence', () => {
    expect(errors(yaml('gateway:', '  id: gw', '  id: gw2', 'buses: []', 'buses: []'))).toEqual([
      'c.yaml:3:3 gateway.id: duplicate key "id" (first at line 2)',
      'c.yaml:5:1 buses: duplicate key "buses" (first at line 4)',
    ]);
  });

  it('names an unknown key and suggests the known key it is close to', () => {
    const text = yaml(...HEAD.slice(0, 6), '    baudrate: 19200', '    stopbit: 2', '    flowControl: true');
    expect(errors(text)).toEqual([
      'c.yaml:7:5 buses[0].baudrate: unknown key "baudrate" (did you mean "baudRate"?)',
      'c.yaml:8:5 buses[0].stopbit: unknown key "stopbit" (did you mean "stopBits"?)',
      expect.stringMatching(/^c\.yaml:9:5 buses\[0\]\.flowControl: unknown key "flowControl" \(known keys: id, timeoutMs, .*, stopBits\)$/),
    ]);
  });

  it('reports wrong types, ranges and enum values at the value, in YAML words', () => {
    const text = withPoints(
      '      - id: p', //         12
      '        address: "12"', // 13
      '        fc: 5', //         14
      '        scale: x', //      15
      '      - id: q', //         16
      '        address: 70000', //17
      '        order: abcd', //   18
      '        bit: 1.5', //      19
    );
    expect(errors(text)).toEqual([
      'c.yaml:13:18 devices[0].points[0].address: must be a number, got "12"',
      'c.yaml:14:13 devices[0].points[0].fc: must be one of 1, 2, 3, 4, got 5',
      'c.yaml:15:16 devices[0].points[0].scale: must be a number, got "x"',
      'c.yaml:17:18 devices[0].points[1].address: must be 0-65535, got 70000',
      'c.yaml:18:16 devices[0].points[1].order: must be one of "ABCD", "CDAB", "BADC", "DCBA", "ABCDEFGH", "GHEFCDAB", "BADCFEHG", "HGFEDCBA", got "abcd" (did you mean "ABCD"?)',
      'c.yaml:19:14 devices[0].points[1].bit: must be a whole number, got 1.5',
    ]);
  });

  it('reports a missing key at the mapping that lacks it', () => {
    const text = yaml('gateway:', '  dataDir: /tmp', 'buses:', '  - id: a', '    port: x', '  - id: b', '    transport: rtu');
    expect(errors(text)).toEqual([
      'c.yaml:2:3 gateway.id: is required',
      'c.yaml:4:5 buses[0].transport: is required (one of "rtu", "tcp", "rtu-over-tcp", "line")',
      'c.yaml:6:5 buses[1].port: is required',
    ]);
  });

  it('words schema messages with the value found and the accepted forms', () => {
    const text = yaml('gateway:', '  id: gw 1', 'buses:', '  - id: a', '    transport: rtu', '    port: ""', '    dataBits: 9', 'devices: x');
    expect(errors(text)).toEqual([
      'c.yaml:2:7 gateway.id: must match [A-Za-z0-9_-]+ (letters, digits, _ and -), got "gw 1"',
      'c.yaml:6:11 buses[0].port: must not be empty',
      'c.yaml:7:15 buses[0].dataBits: must be 7 or 8, got 9',
      'c.yaml:8:10 devices: must be a list ("- " items), got "x"',
    ]);
  });

  it('treats an empty file as an empty mapping and rejects a top level that is not a mapping', () => {
    expect(errors('')).toEqual(['c.yaml:1:1 gateway: is required']);
    expect(errors('# nothing yet\n')).toEqual(['c.yaml:1:1 gateway: is required']);
    expect(errors('- a\n')).toEqual(['c.yaml:1:1 (root): must be a mapping (key: value lines), got a list']);
  });

  it('reports every error of a file, in file order', () => {
    const { issues } = parseConfig(readFixture('several-errors.yaml'), 'bad.yaml');
    expect(issues.map(formatIssue)).toEqual([
      'bad.yaml:2:7 gateway.id: must match [A-Za-z0-9_-]+ (letters, digits, _ and -), got "gw 1"',
      'bad.yaml:7:5 buses[0].baudrate: unknown key "baudrate" (did you mean "baudRate"?)',
      'bad.yaml:8:13 buses[0].parity: must be one of "none", "even", "odd", got "Even" (did you mean "even"?)',
      'bad.yaml:11:10 devices[0].bus: no bus "line2"; defined buses: line1',
      'bad.yaml:12:11 devices[0].unit: unit must be 1-247, got 300',
      'bad.yaml:15:18 devices[0].points[0].address: must be 0-65535, got 70000',
      'bad.yaml:16:9 devices[0].points[1].address: is required',
      'bad.yaml:17:9 devices[0].points[1].adress: unknown key "adress" (did you mean "address"?)',
    ]);
  });

  it('reports cross-field rules together with schema errors', () => {
    // One pass: the missing bus is listed beside the out-of-range unit, not after it is fixed.
    const text = yaml(...HEAD.slice(0, 8), '    bus: nope', '    unit: 0', '    points: [{ id: p, address: 0 }]');
    expect(errors(text)).toEqual(['c.yaml:9:10 devices[0].bus: no bus "nope"; defined buses: a', 'c.yaml:10:11 devices[0].unit: unit must be 1-247, got 0']);
  });

  it('follows aliases to report positions and fails cleanly on an unknown alias', () => {
    expect(errors(yaml('gateway: *nope'))).toEqual([
      'c.yaml:1:1 gateway: cannot read the YAML: Unresolved alias (the anchor must be set before the alias): nope',
    ]);
  });
});

describe('valid files', () => {
  it('fills in every default', () => {
    const { config, issues } = parseConfig(readFixture('minimal.yaml'), 'minimal.yaml');
    expect(issues).toEqual([]);
    expect(config).toEqual({
      gateway: { id: 'gw1', dataDir: './data', clock: { trust: 'auto', jumpThresholdMs: 2000, minValidDate: '2025-01-01' } },
      buses: [
        {
          id: 'line1', transport: 'rtu', port: '/dev/ttyS0', baudRate: 9600, parity: 'none', dataBits: 8, stopBits: 1,
          timeoutMs: 500, retries: 2, requestPauseMs: 0, connectPauseMs: 0, busyRetryMs: 100,
          reconnectMinMs: 1000, reconnectMaxMs: 30_000, unitBackoffMinMs: 5000, unitBackoffMaxMs: 60_000,
        },
      ],
      devices: [
        {
          id: 'meter', bus: 'line1', unit: 3, pollIntervalMs: 1000, maxRegistersPerRequest: 125,
          maxBitsPerRequest: 2000, maxGap: 16, requests: 'optimize',
          points: [{ id: 'voltage', fc: 3, address: 0, order: 'ABCD', scale: 1, offset: 0, sensorFault: 'none' }],
        },
      ],
      buffer: { maxBytes: 512 * 1024 * 1024, maxAgeHours: 720, commitIntervalMs: 250, maxPendingSamples: 100_000 },
    });
  });

  it('defaults a TCP bus to port 502 and a 1000 ms timeout', () => {
    const { config } = parseConfig(yaml('gateway: { id: gw }', 'buses: [{ id: t, transport: rtu-over-tcp, host: h }]'), 'c.yaml');
    expect(config?.buses[0]).toMatchObject({ port: 502, timeoutMs: 1000 });
    expect(config?.devices).toEqual([]);
  });

  it('accepts the full example from the documentation', () => {
    const { config, issues } = parseConfig(readFixture('full.yaml'), 'full.yaml');
    expect(issues).toEqual([]);
    expect(config?.buses.map((b) => b.id)).toEqual(['rs485', 'plc']);
    expect(config?.devices.flatMap((d) => d.points.map(resolvedType))).toEqual([
      'float32', 'uint64', 'uint16', 'bool', 'bool', 'string', 'bool', 'bool', 'int16',
    ]);
  });

  it('keeps the full example in docs/configuration.md identical to the fixture', () => {
    const docs = readFileSync(`${root}/docs/configuration.md`, 'utf8');
    expect(docs).toContain(`\`\`\`yaml\n${readFixture('full.yaml')}\`\`\``);
  });

  it('returns a config or issues for any input, and never throws', () => {
    const valid = readFixture('full.yaml');
    const text = fc.oneof(
      fc.string(),
      fc.string({ unit: fc.constantFrom('a', ':', ' ', '\n', '-', '[', '{', '}', ']', '"', '&', '*', '#', '!', '|', '1') }),
      fc.anything().map((value) => stringify(value) ?? ''),
      // A valid file with a slice cut out or repeated: close to what a careless edit produces.
      fc.tuple(fc.nat(valid.length), fc.nat(200), fc.boolean()).map(([at, n, repeat]) =>
        repeat ? valid.slice(0, at) + valid.slice(at, at + n) + valid.slice(at) : valid.slice(0, at) + valid.slice(at + n)),
    );
    fc.assert(
      fc.property(text, (input) => {
        const { config, issues } = parseConfig(input, 'p.yaml');
        expect(config === undefined).toBe(issues.length > 0);
        for (const issue of issues) expect(formatIssue(issue)).toMatch(/^p\.yaml:\d+:\d+ \S[^\n]*: [^\n]+$/);
      }),
      { numRuns: 500 },
    );
  });
});

describe('loadConfig', () => {
  it('reads a file and returns the config', () => {
    expect(loadConfig(`${root}/${fixture('minimal.yaml')}`).devices[0].id).toBe('meter');
  });

  it('throws one clear line for a missing file', () => {
    expect(() => loadConfig('/nonexistent/fieldgate.yaml')).toThrow(
      new UserError('cannot read /nonexistent/fieldgate.yaml: no such file', 2),
    );
  });

  it('throws a UserError with exit code 2 and one detail line per issue', () => {
    const file = `${root}/${fixture('several-errors.yaml')}`;
    const err = catchError(() => loadConfig(file));
    expect(err).toBeInstanceOf(UserError);
    expect(err).toMatchObject({ exitCode: 2, message: `${file}: invalid configuration, 8 errors` });
    expect((err as UserError).details).toHaveLength(8);
    expect((err as UserError).details[0]).toBe(`${file}:2:7 gateway.id: must match [A-Za-z0-9_-]+ (letters, digits, _ and -), got "gw 1"`);
  });
});

describe('fieldgate validate', () => {
  const run = async (...args: string[]) => {
    try {
      const { stdout, stderr } = await promisify(execFile)(process.execPath, [cliEntry(), ...args], { cwd: root });
      return { code: 0, stdout, stderr };
    } catch (err) {
      const e = err as { code: number; stdout: string; stderr: string };
      return { code: e.code, stdout: e.stdout, stderr: e.stderr };
    }
  };

  it('prints a summary and exits 0 for a valid file', async () => {
    expect(await run('validate', '-c', fixture('full.yaml'))).toEqual({
      code: 0,
      stdout: `${fixture('full.yaml')}: ok (2 buses, 2 devices, 9 points)\n`,
      stderr: '',
    });
  });

  it('prints every error as FILE:LINE:COL path: message and exits 2, without a stack trace', async () => {
    const file = fixture('several-errors.yaml');
    const { code, stdout, stderr } = await run('validate', '--config', file);
    expect(code).toBe(2);
    expect(stdout).toBe('');
    const lines = stderr.trimEnd().split('\n');
    expect(lines[0]).toBe(`fieldgate: ${file}: invalid configuration, 8 errors`);
    expect(lines.slice(1)).toHaveLength(8);
    for (const line of lines.slice(1)) expect(line).toMatch(/^test\/fixtures\/config\/several-errors\.yaml:\d+:\d+ [\w.[\]]+: .+$/);
    expect(lines[2]).toBe(`${file}:7:5 buses[0].baudrate: unknown key "baudrate" (did you mean "baudRate"?)`);
    expect(stderr).not.toMatch(/\n\s+at /);
  });

  it('reports a YAML syntax error and a missing file in one line each', async () => {
    const bad = await run('validate', '-c', fixture('bad-syntax.yaml'));
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain(`${fixture('bad-syntax.yaml')}:7:1 buses[0].port: YAML syntax: Missing closing "quote\n`);
    expect(await run('validate', '-c', 'missing.yaml')).toEqual({
      code: 2,
      stdout: '',
      stderr: 'fieldgate: cannot read missing.yaml: no such file\n',
    });
  });

  it('shows an example in --help', async () => {
    const { code, stdout } = await run('validate', '--help');
    expect(code).toBe(0);
    expect(stdout).toContain('-c, --config <file>');
    expect(stdout).toContain('$ fieldgate validate -c fieldgate.yaml');
  });
});

function readFixture(name: string): string {
  return readFileSync(`${root}/${fixture(name)}`, 'utf8');
}

function catchError(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected a throw');
}
