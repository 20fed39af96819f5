/**
 * Configuration files a careless installer or an attacker could hand the gateway: not a regular file, too
 * large, too many errors, too deep, not UTF-8. Each is refused with one clear line, in bounded time and memory.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatIssue, loadConfig, MAX_LISTED_ISSUES, parseConfig } from '../src/config/load.js';
import { MAX_DEPTH, MAX_YAML_TOKENS } from '../src/config/parse-yaml.js';
import { decodeConfigText, firstInvalidUtf8, MAX_CONFIG_BYTES } from '../src/config/read.js';
import { UserError } from '../src/errors.js';
import { errors, yaml } from './fixtures/config/text.js';
import { tempDir } from './helpers/peers.js';

function refusal(run: () => unknown): UserError {
  try {
    run();
  } catch (err) {
    expect(err).toBeInstanceOf(UserError);
    return err as UserError;
  }
  throw new Error('expected a UserError');
}

const VALID = yaml('gateway:', '  id: gw', 'buses:', '  - id: a', '    transport: tcp', '    host: 127.0.0.1', 'devices:', '  - id: d', '    bus: a', '    unit: 1', '    points:', '      - id: t', '        address: 0', '        unit: °C');

describe('the file itself', () => {
  it('refuses a directory, a FIFO and a device without reading them', () => {
    const dir = tempDir('cfg-kind');
    const sub = join(dir, 'conf.d');
    mkdirSync(sub);
    expect(refusal(() => loadConfig(sub)).message).toBe(`cannot read ${sub}: it is a directory, not a file`);
    // A FIFO with no writer: a plain read would wait forever (or forever read what a writer sends).
    const fifo = join(dir, 'gw.fifo');
    execFileSync('mkfifo', [fifo]);
    expect(refusal(() => loadConfig(fifo)).message).toBe(`cannot read ${fifo}: it is a pipe (FIFO), not a regular file; write the configuration to a file`);
    // /dev/zero never ends: read whole, it grew the process to gigabytes.
    expect(refusal(() => loadConfig('/dev/zero')).message).toBe('cannot read /dev/zero: it is a device, not a regular file');
  });

  it('refuses a file over the size cap before reading it', () => {
    const file = join(tempDir('cfg-big'), 'gw.yaml');
    writeFileSync(file, `${VALID}        description: ${'x'.repeat(3 * 1024 * 1024)}\n`);
    const err = refusal(() => loadConfig(file));
    expect(err.message).toBe(`cannot read ${file}: it is 3 MiB; a configuration file may be at most ${MAX_CONFIG_BYTES / 1024 / 1024} MiB`);
    expect(err.exitCode).toBe(2);
  });

  it('reads a file just under the cap', () => {
    const file = join(tempDir('cfg-cap'), 'gw.yaml');
    const filler = MAX_CONFIG_BYTES - Buffer.byteLength(VALID) - 40;
    writeFileSync(file, `${VALID}        description: ${'x'.repeat(filler)}\n`);
    expect(loadConfig(file).devices[0].points[0].description).toHaveLength(filler);
  });
});

describe('encoding', () => {
  const bytes = (text: string, latin1Line?: string) => Buffer.concat([Buffer.from(text), latin1Line === undefined ? Buffer.alloc(0) : Buffer.from(latin1Line, 'latin1')]);

  it('refuses Latin-1 text with the line, column and byte of the first bad byte', () => {
    const text = VALID.replace('        unit: °C\n', '');
    // Latin-1 "°C" is 0xB0 0x43: read as UTF-8 it became "\uFFFDC" and was published.
    const err = refusal(() => decodeConfigText(bytes(text, '        unit: °C\n'), 'c.yaml'));
    expect(err.message).toBe('c.yaml:14:15: not valid UTF-8 (byte 0xB0); save the file as UTF-8');
    // The column counts characters, as every other position does: "é" before the bad byte is one.
    expect(refusal(() => decodeConfigText(bytes('gateway:\n  id: gw # é ', 'café\n'), 'c.yaml')).message).toBe(
      'c.yaml:2:17: not valid UTF-8 (byte 0xE9); save the file as UTF-8',
    );
  });

  it('names UTF-16 and UTF-32, with or without a byte-order mark', () => {
    const utf16le = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(VALID, 'utf16le')]);
    const utf16be = Buffer.from(utf16le).swap16();
    for (const encoded of [utf16le, utf16be, Buffer.from(VALID, 'utf16le')]) {
      expect(refusal(() => decodeConfigText(encoded, 'c.yaml')).message).toBe('c.yaml: UTF-16 encoded; save the file as UTF-8');
    }
    const utf32 = Buffer.from([0xff, 0xfe, 0, 0, 0x67, 0, 0, 0]);
    expect(refusal(() => decodeConfigText(utf32, 'c.yaml')).message).toBe('c.yaml: UTF-32 encoded; save the file as UTF-8');
  });

  it('accepts a UTF-8 byte-order mark and keeps positions as the editor shows them', () => {
    const file = join(tempDir('cfg-bom'), 'gw.yaml');
    writeFileSync(file, Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(VALID)]));
    expect(loadConfig(file).devices[0].points[0].unit).toBe('°C');
    const bad = 'gateway: { id: "gw 1" }\n';
    writeFileSync(file, Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(bad)]));
    const withBom = refusal(() => loadConfig(file)).details;
    expect(withBom).toEqual([`${file}:1:16 gateway.id: must match [A-Za-z0-9_-]+ (letters, digits, _ and -), got "gw 1"`]);
    writeFileSync(file, bad);
    expect(refusal(() => loadConfig(file)).details).toEqual(withBom);
  });

  it('finds the first invalid byte exactly where a strict decoder stops', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), fc.string({ unit: 'grapheme', maxLength: 10 }), (noise, valid) => {
        const b = Buffer.concat([Buffer.from(valid), noise]);
        const at = firstInvalidUtf8(b);
        const strict = new TextDecoder('utf-8', { fatal: true });
        expect(() => strict.decode(b.subarray(0, at))).not.toThrow();
        if (at === b.length) expect(() => strict.decode(b)).not.toThrow();
        else expect(() => strict.decode(b.subarray(0, at + 4))).toThrow();
      }),
      { numRuns: 2000 },
    );
  });
});

describe('nesting', () => {
  const nestedBlock = (levels: number) => yaml('gateway:', '  id: gw', 'status:', ...Array.from({ length: levels - 1 }, (_, i) => `${' '.repeat(i + 1)}k${i}:${i === levels - 2 ? ' 1' : ''}`));

  it(`accepts ${MAX_DEPTH} levels and refuses one more with a short path, not a stack overflow`, () => {
    // Level 1 is the top mapping, level 2 status's mapping: MAX_DEPTH levels reach the schema (which refuses k0).
    expect(errors(nestedBlock(MAX_DEPTH))[0]).toMatch(/^c\.yaml:4:2 status\.k0: unknown key "k0"/);
    // The refused mapping is k30's value, holding k31: line 4 + 31, indented 32.
    expect(errors(nestedBlock(MAX_DEPTH + 1))).toEqual([`c.yaml:${MAX_DEPTH + 3}:${MAX_DEPTH + 1} status.k0.k1.k2.k3.k4...k29.k30: nested too deeply (more than ${MAX_DEPTH} levels)`]);
  });

  it('stops parsing at the limit: a million nested flow lists and compact sequences', () => {
    for (const text of [`gateway: {id: gw}\nstatus: ${'['.repeat(1_000_000)}${']'.repeat(1_000_000)}\n`, `gateway: {id: gw}\nstatus:\n${'- '.repeat(1_000_000)}1\n`]) {
      const [issue, ...rest] = errors(text);
      expect(rest).toEqual([]);
      expect(issue).toMatch(new RegExp(`^c\\.yaml:\\d+:\\d+ status(\\[0\\]){5}\\.\\.\\.(\\[0\\]){2}: nested too deeply \\(more than ${MAX_DEPTH} levels\\)$`));
    }
  });
});

describe('bounded errors', () => {
  const unknownKeys = (n: number) => yaml('gateway:', '  id: gw', ...Array.from({ length: n }, (_, i) => `  unknownkey${String(i).padStart(5, '0')}: 1`));

  it('lists the first errors and counts the rest', () => {
    const file = join(tempDir('cfg-many'), 'gw.yaml');
    writeFileSync(file, unknownKeys(30_000));
    const err = refusal(() => loadConfig(file));
    expect(err.message).toBe(`${file}: invalid configuration, 30000 errors`);
    expect(err.details).toHaveLength(MAX_LISTED_ISSUES + 1);
    expect(err.details[0]).toBe(`${file}:3:3 gateway.unknownkey00000: unknown key "unknownkey00000" (known keys: id, dataDir, clock)`);
    expect(err.details[MAX_LISTED_ISSUES - 1]).toMatch(new RegExp(`^${file}:${MAX_LISTED_ISSUES + 2}:3 gateway\\.unknownkey00099: `));
    expect(err.details[MAX_LISTED_ISSUES]).toBe(`... and ${30_000 - MAX_LISTED_ISSUES} more`);
  });

  it('places every error of a large mapping at its own key', () => {
    const { issues } = parseConfig(unknownKeys(5000), 'c.yaml');
    expect(issues).toHaveLength(5000);
    issues.forEach((issue, i) => expect([issue.line, issue.path]).toEqual([i + 3, `gateway.unknownkey${String(i).padStart(5, '0')}`]));
  });

  it('keeps each error one short line, however long the key or value in the file', () => {
    const long = 'k'.repeat(100_000);
    for (const line of errors(yaml('gateway:', '  id: gw', `  ${long}: 1`, `  dataDir: [${'1,'.repeat(20_000)}1]`, `*${long}`))) {
      expect(line.length).toBeLessThan(400);
    }
    // YAML itself caps an implicit key at 1024 characters.
    const [unknown] = errors(yaml('gateway:', '  id: gw', `  ${long.slice(0, 1000)}: 1`));
    expect(unknown).toBe(`c.yaml:3:3 gateway["${'k'.repeat(37)}..."]: unknown key "${'k'.repeat(37)}..." (known keys: id, dataDir, clock)`);
  });

  it('refuses a file of more YAML tokens than any configuration needs, where it passes the bound', () => {
    const text = `gateway: {id: gw}\nbuses: [${'1,'.repeat(MAX_YAML_TOKENS / 2)}1]\n`;
    expect(Buffer.byteLength(text)).toBeLessThan(MAX_CONFIG_BYTES);
    const [issue, ...rest] = errors(text);
    expect(rest).toEqual([]);
    expect(issue).toMatch(/^c\.yaml:2:\d+ buses: too large: more than 300,000 YAML tokens \(keys, values, indentation and punctuation\); 1,000 points written as usual take about 50,000$/);
  });

  it('lists syntax errors with their positions, past the first hundred too', () => {
    const { issues } = parseConfig(yaml('gateway:', '  id: gw', ...Array.from({ length: 300 }, () => '  x: "open')), 'c.yaml');
    expect(issues.length).toBeGreaterThan(0);
    for (const issue of issues) expect(formatIssue(issue)).toMatch(/^c\.yaml:\d+:\d+ \S+: YAML syntax: /);
  });
});
