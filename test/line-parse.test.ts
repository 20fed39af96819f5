/** Line parsing: every mode, every point type, the reasons given, and that no line can make it throw. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compileLineDevice } from '../src/sources/line/device.js';
import { compileConverter, compileParser, type Fields, type ParseConfig } from '../src/sources/line/parse.js';
import { withChecksum } from '../src/sources/line/checksum.js';
import { config } from './helpers/gateway.js';

const fields = (parse: ParseConfig, line: string, wanted: string[] = []) => {
  const r = compileParser(parse, wanted)(line);
  return r.ok ? { ...r.fields } : r;
};
const point = (p: Record<string, unknown>) => ({ scale: 1, offset: 0, ...p }) as Parameters<typeof compileConverter>[0];
const convert = (p: Record<string, unknown>, f: Fields) => compileConverter(point(p))(f);
const F = (o: Record<string, unknown>): Fields => Object.assign(Object.create(null), o);

describe('regex', () => {
  const parse = { regex: '^\\$GAS,CH4=(?<ch4>-?[\\d.]+),CO=(?<co>\\d+)(?:,NOTE=(?<note>\\w+))?' };

  it('returns the named groups of the first match', () => {
    expect(fields(parse, '$GAS,CH4=0.12,CO=3,H2S=0.0')).toEqual({ ch4: '0.12', co: '3' });
    expect(fields(parse, '$GAS,CH4=0.12,CO=3,NOTE=ok')).toEqual({ ch4: '0.12', co: '3', note: 'ok' });
  });

  it('says so when the line does not match, quoting it printable and short', () => {
    expect(fields(parse, 'hello')).toEqual({ ok: false, reason: "line does not match the parse regex: 'hello'" });
    const r = fields(parse, `\x00${'x'.repeat(100)}`) as { reason: string };
    expect(r.reason).toBe(`line does not match the parse regex: '?${'x'.repeat(39)}…'`);
  });
});

describe('kv', () => {
  const parse = { kv: { pairSeparator: ',', assign: '=' } };

  it('splits pairs, trims, skips pieces without assign and keeps the first of a repeated key', () => {
    expect(fields(parse, '$GAS,CH4=0.12, CO = 3 ,H2S=0.0,O2=20.9,CO=99')).toEqual({ CH4: '0.12', CO: '3', H2S: '0.0', O2: '20.9' });
    expect(fields(parse, 'a=1=2,=5')).toEqual({ a: '1=2' });
  });

  it('takes other separators, several characters long', () => {
    expect(fields({ kv: { pairSeparator: '; ', assign: ': ' } }, 'level: 2.31; flow: 14.2')).toEqual({ level: '2.31', flow: '14.2' });
  });

  it('refuses a line without pairs', () => {
    expect(fields(parse, 'no pairs here')).toEqual({ ok: false, reason: "no key=value pairs in line: 'no pairs here'" });
  });
});

describe('csv', () => {
  it('names cells by position with the separator given, trimmed; extra cells ignored, missing ones missing', () => {
    const parse = { csv: { columns: ['distance', 'temperature'], separator: ',' } };
    expect(fields(parse, '4823.4, 21.5')).toEqual({ distance: '4823.4', temperature: '21.5' });
    expect(fields(parse, '4823.4,21.5,extra')).toEqual({ distance: '4823.4', temperature: '21.5' });
    expect(fields(parse, '4823.4')).toEqual({ distance: '4823.4' });
    expect(fields({ csv: { columns: ['a', 'b', 'c'], separator: ';' } }, '1;;3')).toEqual({ a: '1', b: '', c: '3' });
  });
});

describe('json', () => {
  const parse = { json: true as const };

  it('follows dotted paths through objects and arrays, own properties only', () => {
    const line = '{"gas":{"ch4":0.12,"ok":true},"r":[{"v":"7"}],"n":null}';
    expect(fields(parse, line, ['gas.ch4', 'gas.ok', 'r.0.v', 'n', 'gas.co', 'gas.ch4.x', 'toString', 'gas.constructor'])).toEqual({
      'gas.ch4': 0.12, 'gas.ok': true, 'r.0.v': '7', n: null,
    });
  });

  it('refuses what is not one JSON object', () => {
    expect(fields(parse, '[1,2]')).toEqual({ ok: false, reason: "not a JSON object: '[1,2]'" });
    expect(fields(parse, '42')).toMatchObject({ ok: false, reason: expect.stringMatching(/^not a JSON object/) });
    expect(fields(parse, '{"a":')).toMatchObject({ ok: false, reason: expect.stringMatching(/^not JSON: /) });
  });

  it('keeps a __proto__ key as data', () => {
    expect(fields(parse, '{"__proto__":{"x":1}}', ['__proto__.x'])).toEqual({ '__proto__.x': 1 });
  });
});

describe('point values', () => {
  it('numbers: instrument formats, scale and offset rounded to the digits carried', () => {
    expect(convert({ id: 'd' }, F({ d: '+004823.4' }))).toEqual({ ok: true, value: 4823.4 });
    expect(convert({ id: 'd' }, F({ d: ' -.5 ' }))).toEqual({ ok: true, value: -0.5 });
    expect(convert({ id: 'd' }, F({ d: '1e-3' }))).toEqual({ ok: true, value: 0.001 });
    expect(convert({ id: 'd', scale: 0.1 }, F({ d: '0.12' }))).toEqual({ ok: true, value: 0.012 });
    expect(convert({ id: 'd', scale: 0.1, offset: -0.3 }, F({ d: '3' }))).toEqual({ ok: true, value: 0 });
    expect(convert({ id: 'd', scale: 1000 }, F({ d: 4.8234 }))).toEqual({ ok: true, value: 4823.4 });
    expect(convert({ id: 'x', field: 'd', type: 'float32' }, F({ d: '1.5' }))).toEqual({ ok: true, value: 1.5 });
  });

  it('numbers: reasons for missing, empty, text, objects, integers and overflow', () => {
    expect(convert({ id: 'ch4' }, F({}))).toEqual({ ok: false, reason: 'field ch4 missing' });
    expect(convert({ id: 'p', field: 'ch4' }, F({}))).toEqual({ ok: false, reason: 'field ch4 missing' });
    expect(convert({ id: 'd' }, F({ d: ' ' }))).toEqual({ ok: false, reason: 'field d is empty' });
    expect(convert({ id: 'd' }, F({ d: 'abc' }))).toEqual({ ok: false, reason: "not a number: 'abc'" });
    expect(convert({ id: 'd' }, F({ d: '12mm' }))).toEqual({ ok: false, reason: "not a number: '12mm'" });
    expect(convert({ id: 'd' }, F({ d: '0x10' }))).toEqual({ ok: false, reason: "not a number: '0x10'" });
    expect(convert({ id: 'd' }, F({ d: null }))).toEqual({ ok: false, reason: 'not a number: null' });
    expect(convert({ id: 'd' }, F({ d: { a: 1 } }))).toEqual({ ok: false, reason: 'not a number: an object' });
    expect(convert({ id: 'd' }, F({ d: true }))).toEqual({ ok: false, reason: "not a number: 'true'" });
    expect(convert({ id: 'd' }, F({ d: '1e999' }))).toEqual({ ok: false, reason: "not a finite number: '1e999'" });
    expect(convert({ id: 'd', type: 'int16' }, F({ d: '3.5' }))).toEqual({ ok: false, reason: "not an integer (int16): '3.5'" });
    expect(convert({ id: 'd', type: 'uint32' }, F({ d: '35' }))).toEqual({ ok: true, value: 35 });
    expect(convert({ id: 'd', scale: 1e300 }, F({ d: '1e300' }))).toEqual({ ok: false, reason: "out of range after scaling: '1e300'" });
  });

  it('bools: words and digits in any case, JSON booleans and 0/1; scale does not apply', () => {
    for (const [raw, value] of [['ON', true], ['off', false], ['Yes', true], ['no', false], ['1', true], ['0', false], ['TRUE', true], [false, false], [1, true], [0, false]] as const) {
      expect(convert({ id: 'b', type: 'bool', scale: 10 }, F({ b: raw }))).toEqual({ ok: true, value });
    }
    expect(convert({ id: 'b', type: 'bool' }, F({ b: '2' }))).toEqual({ ok: false, reason: "not a bool: '2'" });
    expect(convert({ id: 'b', type: 'bool' }, F({ b: [1] }))).toEqual({ ok: false, reason: 'not a bool: an array' });
    expect(convert({ id: 'b', type: 'bool' }, F({}))).toEqual({ ok: false, reason: 'field b missing' });
  });

  it('strings: text as received, JSON scalars as text, objects refused', () => {
    expect(convert({ id: 's', type: 'string' }, F({ s: 'OK ' }))).toEqual({ ok: true, value: 'OK ' });
    expect(convert({ id: 's', type: 'string' }, F({ s: 12.5 }))).toEqual({ ok: true, value: '12.5' });
    expect(convert({ id: 's', type: 'string' }, F({ s: null }))).toEqual({ ok: false, reason: 'field s is null, not text' });
    expect(convert({ id: 's', type: 'string' }, F({ s: {} }))).toEqual({ ok: false, reason: 'field s is an object, not text' });
  });
});

describe('a compiled device', () => {
  const device = (extra: Record<string, unknown>, points: unknown[]) =>
    compileLineDevice(
      config({
        gateway: { id: 'g' },
        buses: [{ id: 'b', transport: 'line', port: '/dev/null' }],
        devices: [{ id: 'gas', bus: 'b', ...extra, points }],
      }).devices[0]!,
    );

  it('strips the checksum, parses, and marks each point by itself', () => {
    const gas = device({ checksum: 'nmea', parse: { kv: {} } }, [{ id: 'ch4', field: 'CH4' }, { id: 'co', field: 'CO' }, { id: 'o2', field: 'O2' }]);
    const out = gas.decode(Buffer.from(withChecksum('nmea', 'GAS,CH4=0.12,CO=abc')), 5);
    expect(out.samples).toEqual([
      { device: 'gas', point: 'ch4', ts: 5, value: 0.12, quality: 'good' },
      { device: 'gas', point: 'co', ts: 5, value: null, quality: 'bad', reason: "not a number: 'abc'" },
      { device: 'gas', point: 'o2', ts: 5, value: null, quality: 'bad', reason: 'field O2 missing' },
    ]);
    expect(out.error).toEqual({ kind: 'field', reason: "co: not a number: 'abc'" });
  });

  it('marks every point bad with the line-level reason: checksum, binary noise, parse', () => {
    const gas = device({ checksum: 'nmea', parse: { kv: {} } }, [{ id: 'ch4', field: 'CH4' }, { id: 'co', field: 'CO' }]);
    const bad = gas.decode(Buffer.from('$GAS,CH4=0.12*00'), 1);
    expect(bad.error).toEqual({ kind: 'checksum', reason: 'checksum mismatch (got 00, computed 66)' });
    expect(bad.samples.map((s) => [s.quality, s.reason])).toEqual([['bad', bad.error!.reason], ['bad', bad.error!.reason]]);
    const binary = gas.decode(Buffer.from(withChecksum('nmea', 'GAS,CH4=\x01'), 'latin1'), 1);
    expect(binary.error).toEqual({ kind: 'binary', reason: 'binary noise: 1 control byte in 10' });
    const notUtf8 = gas.decode(Buffer.concat([Buffer.from('$'), Buffer.from([0xff, 0xfe]), Buffer.from('*01')]), 1);
    expect(notUtf8.error?.kind).toBe('binary');
    expect(gas.decode(Buffer.from(withChecksum('nmea', 'GAS')), 1).error).toEqual({ kind: 'parse', reason: "no key=value pairs in line: '$GAS'" });
  });

  it('claims lines by match, or every line without one', () => {
    expect(device({ match: '^\\$GAS', parse: { json: true } }, [{ id: 'a' }]).claims('$GAS,1')).toBe(true);
    expect(device({ match: '^\\$GAS', parse: { json: true } }, [{ id: 'a' }]).claims('$LEL,1')).toBe(false);
    expect(device({ parse: { json: true } }, [{ id: 'a' }]).claims('anything')).toBe(true);
  });
});

describe('parse fuzz', () => {
  const modes: ParseConfig[] = [
    { regex: '^(?<a>[^,]*),(?<b>\\d+)?' },
    { kv: { pairSeparator: ',', assign: '=' } },
    { csv: { columns: ['a', 'b'], separator: ',' } },
    { json: true },
  ];
  const types = [undefined, 'string', 'bool', 'int16', 'float64'] as const;

  it('any string in: fields or a reason, then a value or a reason, never a throw', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...modes),
        fc.oneof(fc.string({ maxLength: 120 }), fc.json({ maxDepth: 4 }), fc.string({ unit: 'binary', maxLength: 60 })),
        fc.constantFrom(...types),
        (parse, line, type) => {
          const r = compileParser(parse, ['a', 'b', 'a.b'])(line);
          if (!r.ok) {
            expect(r.reason.length).toBeGreaterThan(0);
            return;
          }
          for (const field of ['a', 'b', 'a.b']) {
            const v = compileConverter(point({ id: 'p', field, type, scale: 0.1 }))(r.fields);
            if (v.ok) expect(['number', 'boolean', 'string']).toContain(typeof v.value);
            else expect(v.reason.length).toBeGreaterThan(0);
          }
        },
      ),
      { numRuns: 3000 },
    );
  });

  it('a whole device never throws on any bytes', () => {
    const dev = compileLineDevice(
      config({
        gateway: { id: 'g' },
        buses: [{ id: 'b', transport: 'line', port: '/dev/null' }],
        devices: [{ id: 'd', bus: 'b', checksum: 'nmea', parse: { kv: {} }, points: [{ id: 'x' }, { id: 'y', type: 'bool' }] }],
      }).devices[0]!,
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        const out = dev.decode(Buffer.from(bytes), 0);
        expect(out.samples).toHaveLength(2);
      }),
      { numRuns: 2000 },
    );
  });
});
