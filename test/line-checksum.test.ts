/** Line checksums: what each kind accepts, the reasons it gives, and that no input can make it throw. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CHECKSUM_KINDS, compileChecksum, crc16Modbus, sum8, withChecksum, xor8 } from '../src/sources/line/checksum.js';

const b = (s: string) => Buffer.from(s, 'latin1');
const verify = (kind: (typeof CHECKSUM_KINDS)[number], line: string) => {
  const r = compileChecksum(kind)(b(line));
  return r.ok ? { ok: true, body: r.body.toString('latin1') } : r;
};

describe('checksum algorithms', () => {
  it('match their reference values', () => {
    // The catalogue check value of CRC-16/MODBUS.
    expect(crc16Modbus(b('123456789'))).toBe(0x4b37);
    expect(sum8(b('ABC'))).toBe(0xc6);
    expect(sum8(b('\xff\x02'))).toBe(0x01);
    expect(xor8(b('GPGGA,092750.000,5321.6802,N,00630.3372,W,1,8,1.03,61.7,M,55.2,M,,'))).toBe(0x76);
  });

  it('formats lines as a device sends them', () => {
    expect(withChecksum('none', 'abc')).toBe('abc');
    expect(withChecksum('nmea', 'GAS,CH4=0.04,CO=3,H2S=0.3,O2=20.9')).toBe('$GAS,CH4=0.04,CO=3,H2S=0.3,O2=20.9*23');
    expect(withChecksum('sum8', 'ABC')).toBe('ABCC6');
    expect(withChecksum('crc16-modbus', '123456789')).toBe('1234567894B37');
    expect(withChecksum('sum8', '')).toBe('00');
  });
});

describe('nmea', () => {
  it('accepts $BODY*HH in either case and hands on $BODY', () => {
    expect(verify('nmea', '$GAS,CH4=0.04,CO=3,H2S=0.3,O2=20.9*23')).toEqual({ ok: true, body: '$GAS,CH4=0.04,CO=3,H2S=0.3,O2=20.9' });
    expect(verify('nmea', '$GPGGA,092750.000,5321.6802,N,00630.3372,W,1,8,1.03,61.7,M,55.2,M,,*76').ok).toBe(true);
    const lower = withChecksum('nmea', 'X,Y=zz').replace(/\*(..)$/, (_, h: string) => `*${h.toLowerCase()}`);
    expect(verify('nmea', lower).ok).toBe(true);
  });

  it('drops bytes in front of the sentence (a noise burst or a cut-off line)', () => {
    const good = withChecksum('nmea', 'GAS,CH4=0.12');
    expect(verify('nmea', `\x00\xff${good}`)).toEqual({ ok: true, body: '$GAS,CH4=0.12' });
    expect(verify('nmea', `$GAS,CH4=0.${good}`)).toEqual({ ok: true, body: '$GAS,CH4=0.12' });
  });

  it('names both values on a mismatch', () => {
    expect(verify('nmea', '$GAS,CH4=0.04,CO=3,H2S=0.3,O2=20.9*24')).toEqual({ ok: false, reason: 'checksum mismatch (got 24, computed 23)' });
    expect(verify('nmea', '$GAS,CH4=0.05,CO=3,H2S=0.3,O2=20.9*23')).toEqual({ ok: false, reason: 'checksum mismatch (got 23, computed 22)' });
  });

  it('refuses lines without a checksum or without a start', () => {
    for (const line of ['$GAS,CH4=0.04', '$GAS,CH4=0.04*2', '$GAS*2G', '*23', '', '$GAS,CH4=0.04*23 x']) {
      expect(verify('nmea', line)).toMatchObject({ ok: false, reason: expect.stringMatching(/^no NMEA checksum/) });
    }
    expect(verify('nmea', 'GAS,CH4=0.04*23')).toEqual({ ok: false, reason: 'no NMEA sentence start ($) before the checksum' });
  });

  it('catches every single changed byte in the body', () => {
    const line = withChecksum('nmea', 'GAS,CH4=0.04,CO=3');
    for (let i = 1; i < line.length - 3; i++) {
      const bad = `${line.slice(0, i)}${String.fromCharCode(line.charCodeAt(i) ^ 0x01)}${line.slice(i + 1)}`;
      if (bad[i] === '$' || bad[i] === '*') continue;
      expect(verify('nmea', bad).ok, bad).toBe(false);
    }
  });
});

describe('sum8', () => {
  it('accepts two hex digits summing the characters before them, the separator included', () => {
    expect(verify('sum8', 'ABCC6')).toEqual({ ok: true, body: 'ABC' });
    expect(verify('sum8', 'ABCc6')).toEqual({ ok: true, body: 'ABC' });
    const line = withChecksum('sum8', 'D,4823.4,mm,');
    expect(verify('sum8', line)).toEqual({ ok: true, body: 'D,4823.4,mm,' });
  });

  it('gives a reason for a mismatch, a missing checksum and a line that is only a checksum', () => {
    expect(verify('sum8', 'ABCC7')).toEqual({ ok: false, reason: 'checksum mismatch (got C7, computed C6)' });
    expect(verify('sum8', 'ABCXY')).toEqual({ ok: false, reason: "no sum8 checksum (the last 2 characters 'XY' are not 2 hex digits after the data)" });
    expect(verify('sum8', '00').ok).toBe(false);
    expect(verify('sum8', 'A').ok).toBe(false);
    expect(verify('sum8', 'AB\x00')).toMatchObject({ ok: false, reason: expect.stringContaining("'B?'") });
  });
});

describe('crc16-modbus', () => {
  it('accepts four hex digits, most significant first, in either case', () => {
    expect(verify('crc16-modbus', '1234567894B37')).toEqual({ ok: true, body: '123456789' });
    expect(verify('crc16-modbus', '1234567894b37')).toEqual({ ok: true, body: '123456789' });
  });

  it('refuses the bytes swapped, a mismatch, and short lines', () => {
    expect(verify('crc16-modbus', '123456789374B')).toEqual({ ok: false, reason: 'checksum mismatch (got 374B, computed 4B37)' });
    expect(verify('crc16-modbus', '1234567884B37')).toMatchObject({ ok: false, reason: expect.stringMatching(/^checksum mismatch \(got 4B37, computed [0-9A-F]{4}\)$/) });
    expect(verify('crc16-modbus', '4B37').ok).toBe(false);
    expect(verify('crc16-modbus', 'B37').ok).toBe(false);
  });
});

describe('none', () => {
  it('passes every line unchanged', () => {
    expect(verify('none', 'anything *FF')).toEqual({ ok: true, body: 'anything *FF' });
  });
});

describe('checksum fuzz', () => {
  it('never throws: any bytes in give a body or a reason', () => {
    fc.assert(
      fc.property(fc.constantFrom(...CHECKSUM_KINDS), fc.uint8Array({ maxLength: 200 }), (kind, bytes) => {
        const r = compileChecksum(kind)(Buffer.from(bytes));
        expect(r.ok ? r.body instanceof Buffer : typeof r.reason === 'string' && r.reason.length > 0).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  it('round-trips: every text with its checksum verifies, and the body is what was sealed', () => {
    fc.assert(
      fc.property(fc.constantFrom('sum8', 'crc16-modbus', 'nmea') as fc.Arbitrary<'sum8' | 'crc16-modbus' | 'nmea'>, fc.string({ minLength: 1, maxLength: 80 }), (kind, text) => {
        const clean = kind === 'nmea' ? text.replace(/[$*]/g, '') : text;
        fc.pre(clean.length > 0);
        const r = compileChecksum(kind)(Buffer.from(withChecksum(kind, clean), 'utf8'));
        expect(r.ok).toBe(true);
        if (r.ok) expect(r.body.toString('utf8')).toBe(kind === 'nmea' ? `$${clean}` : clean);
      }),
      { numRuns: 1000 },
    );
  });
});
