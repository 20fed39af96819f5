import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compileDecoder, encodeValue, registersToHex, type ValueSpec, type WriteValue } from '../src/sources/modbus/decode.js';
import { ORDERS, type Order, type PointType } from '../src/sources/modbus/types.js';

const spec = (type: PointType, order: Order = 'ABCD', extra: Partial<ValueSpec> = {}): ValueSpec => ({ fc: 3, type, order, scale: 1, offset: 0, ...extra });
const decode = (s: ValueSpec, words: number[] | boolean[], at = 0) => compileDecoder(s)(words, at);

/** Known register images of one value in the four orders (and their 8-letter aliases for 64-bit). */
const VECTORS: Array<{ type: PointType; value: number; exact?: bigint; words: Record<'ABCD' | 'CDAB' | 'BADC' | 'DCBA', number[]> }> = [
  {
    type: 'float32',
    value: 123.456, // 0x42F6E979, read back as the shortest decimal of that float32
    words: { ABCD: [0x42f6, 0xe979], CDAB: [0xe979, 0x42f6], BADC: [0xf642, 0x79e9], DCBA: [0x79e9, 0xf642] },
  },
  {
    type: 'float64',
    value: -1234.5678, // 0xC0934A456D5CFAAD
    words: {
      ABCD: [0xc093, 0x4a45, 0x6d5c, 0xfaad],
      CDAB: [0xfaad, 0x6d5c, 0x4a45, 0xc093],
      BADC: [0x93c0, 0x454a, 0x5c6d, 0xadfa],
      DCBA: [0xadfa, 0x5c6d, 0x454a, 0x93c0],
    },
  },
  {
    type: 'int32',
    value: -123456789, // 0xF8A432EB
    words: { ABCD: [0xf8a4, 0x32eb], CDAB: [0x32eb, 0xf8a4], BADC: [0xa4f8, 0xeb32], DCBA: [0xeb32, 0xa4f8] },
  },
  {
    type: 'uint32',
    value: 0x01020304,
    words: { ABCD: [0x0102, 0x0304], CDAB: [0x0304, 0x0102], BADC: [0x0201, 0x0403], DCBA: [0x0403, 0x0201] },
  },
  {
    type: 'int64',
    value: Number(-0x0102030405060708n), // 0xFEFDFCFBFAF9F8F8, above 2^53: rounded once
    exact: -0x0102030405060708n,
    words: {
      ABCD: [0xfefd, 0xfcfb, 0xfaf9, 0xf8f8],
      CDAB: [0xf8f8, 0xfaf9, 0xfcfb, 0xfefd],
      BADC: [0xfdfe, 0xfbfc, 0xf9fa, 0xf8f8],
      DCBA: [0xf8f8, 0xf9fa, 0xfbfc, 0xfdfe],
    },
  },
  {
    type: 'uint64',
    value: 0x0001020304050607,
    words: {
      ABCD: [0x0001, 0x0203, 0x0405, 0x0607],
      CDAB: [0x0607, 0x0405, 0x0203, 0x0001],
      BADC: [0x0100, 0x0302, 0x0504, 0x0706],
      DCBA: [0x0706, 0x0504, 0x0302, 0x0100],
    },
  },
  { type: 'int16', value: -32767, words: { ABCD: [0x8001], CDAB: [0x8001], BADC: [0x0180], DCBA: [0x0180] } },
  { type: 'uint16', value: 258, words: { ABCD: [0x0102], CDAB: [0x0102], BADC: [0x0201], DCBA: [0x0201] } },
];

const ALIAS: Record<string, 'ABCD' | 'CDAB' | 'BADC' | 'DCBA'> = { ABCDEFGH: 'ABCD', GHEFCDAB: 'CDAB', BADCFEHG: 'BADC', HGFEDCBA: 'DCBA' };

describe('compileDecoder: known vectors', () => {
  for (const v of VECTORS) {
    for (const order of ORDERS) {
      const words = v.words[ALIAS[order] ?? (order as 'ABCD')];
      it(`${v.type} ${order}`, () => {
        expect(decode(spec(v.type, order), words)).toBe(v.value);
        // Read from the middle of a response too.
        expect(decode(spec(v.type, order), [0xdead, 0xbeef, ...words], 2)).toBe(v.value);
        expect(encodeValue(spec(v.type, order), v.exact ?? v.value)).toEqual(words);
      });
    }
  }

  it('int16 -1, int64 -1, uint64 max (rounds to 2^64)', () => {
    expect(decode(spec('int16'), [0xffff])).toBe(-1);
    expect(decode(spec('uint16'), [0xffff])).toBe(65535);
    expect(decode(spec('int64', 'DCBA'), [0xffff, 0xffff, 0xffff, 0xffff])).toBe(-1);
    expect(decode(spec('uint64'), [0xffff, 0xffff, 0xffff, 0xffff])).toBe(2 ** 64);
    expect(decode(spec('int64'), [0x8000, 0, 0, 0])).toBe(-(2 ** 63));
    expect(decode(spec('int64'), [0x0020, 0, 0, 1])).toBe(2 ** 53); // 2^53 + 1 rounds to even
  });

  it('64-bit integers match Number(BigInt) for any registers and order', () => {
    const view = new DataView(new ArrayBuffer(8));
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 0xffff }), { minLength: 4, maxLength: 4 }), fc.constantFrom(...ORDERS), (words, order) => {
        const c = ALIAS[order] ?? order;
        let be = c === 'CDAB' || c === 'DCBA' ? [...words].reverse() : [...words];
        if (c === 'BADC' || c === 'DCBA') be = be.map((w) => ((w & 0xff) << 8) | (w >> 8));
        be.forEach((w, i) => view.setUint16(i * 2, w));
        expect(decode(spec('int64', order), words)).toBe(Number(view.getBigInt64(0)));
        expect(decode(spec('uint64', order), words)).toBe(Number(view.getBigUint64(0)));
      }),
      { numRuns: 2000 },
    );
  });

  it('bits 0 and 15, in the order-adjusted word', () => {
    expect(decode(spec('bool', 'ABCD', { bit: 0 }), [0x8001])).toBe(true);
    expect(decode(spec('bool', 'ABCD', { bit: 15 }), [0x8001])).toBe(true);
    expect(decode(spec('bool', 'ABCD', { bit: 1 }), [0x8001])).toBe(false);
    expect(decode(spec('bool', 'CDAB', { bit: 15 }), [0x8000])).toBe(true);
    expect(decode(spec('bool', 'BADC', { bit: 0 }), [0x0100])).toBe(true);
    expect(decode(spec('bool', 'BADC', { bit: 8 }), [0x0100])).toBe(false);
    expect(decode(spec('bool', 'DCBA', { bit: 15 }), [0x0080])).toBe(true);
    // bit wins over the type: a bit of a uint16 status word.
    expect(decode(spec('uint16', 'ABCD', { bit: 3 }), [0x0008])).toBe(true);
  });

  it('bool registers and coils', () => {
    expect(decode(spec('bool'), [0])).toBe(false);
    expect(decode(spec('bool'), [0x0100])).toBe(true);
    expect(decode({ ...spec('bool'), fc: 1 }, [false, true, false], 1)).toBe(true);
    expect(decode({ ...spec('bool'), fc: 2 }, [false, true, false], 2)).toBe(false);
  });

  it('strings: high byte first, swapped pairs, NUL end, trailing spaces, non-printable bytes', () => {
    const s = (order: Order, words: number[], length = words.length) => decode(spec('string', order, { length }), words);
    expect(s('ABCD', [0x4845, 0x4c4c, 0x4f00])).toBe('HELLO');
    expect(s('CDAB', [0x4845, 0x4c4c, 0x4f00])).toBe('HELLO');
    expect(s('BADC', [0x4548, 0x4c4c, 0x004f])).toBe('HELLO');
    expect(s('DCBA', [0x4548, 0x4c4c, 0x004f])).toBe('HELLO');
    expect(s('ABCD', [0x4142, 0x2020])).toBe('AB');
    expect(s('ABCD', [0x2041, 0x2000])).toBe(' A');
    expect(s('ABCD', [0x4100, 0x4242])).toBe('A');
    expect(s('ABCD', [0x0000])).toBe('');
    expect(s('ABCD', [0x4101, 0xff43])).toBe('A\uFFFD\uFFFDC');
    expect(s('ABCD', [0x4142, 0x4344], 1)).toBe('AB');
  });

  it('scale and offset apply to numbers only; NaN and Infinity pass through', () => {
    expect(decode(spec('uint16', 'ABCD', { scale: 0.1, offset: -40 }), [1000])).toBe(60);
    expect(decode(spec('int16', 'ABCD', { scale: 2, offset: 1 }), [0xffff])).toBe(-1);
    expect(decode(spec('int32', 'CDAB', { scale: 0.001 }), [0x86a0, 0x0001])).toBeCloseTo(100, 12);
    expect(decode(spec('float32', 'ABCD', { scale: 2 }), [0x7fc0, 0])).toBeNaN();
    expect(decode(spec('float32', 'ABCD', { scale: -1, offset: 5 }), [0x7f80, 0])).toBe(Infinity);
    expect(decode(spec('float64', 'ABCD', { scale: -1 }), [0xfff0, 0, 0, 0])).toBe(-Infinity);
    expect(decode(spec('bool', 'ABCD', { scale: 10, offset: 3 }), [1])).toBe(true);
    expect(decode(spec('string', 'ABCD', { scale: 10, offset: 3, length: 1 }), [0x4142])).toBe('AB');
  });
});

describe('encodeValue', () => {
  it('range-checks with a clear message', () => {
    expect(() => encodeValue(spec('int16'), 300000)).toThrow(new RangeError('300000 does not fit int16 (-32768..32767)'));
    expect(() => encodeValue(spec('uint16'), -1)).toThrow(RangeError);
    expect(() => encodeValue(spec('uint32'), 2 ** 32)).toThrow(/does not fit uint32/);
    expect(() => encodeValue(spec('int64'), 2 ** 63)).toThrow(/does not fit int64/);
    expect(() => encodeValue(spec('uint64'), 2 ** 64)).toThrow(/does not fit uint64/);
    expect(() => encodeValue(spec('float32'), 1e39)).toThrow(/does not fit float32/);
    expect(() => encodeValue(spec('uint16', 'ABCD', { scale: 0.1 }), 7000)).toThrow('7000 (raw 70000) does not fit uint16');
    expect(() => encodeValue(spec('float64'), NaN)).toThrow(/only finite/);
    expect(() => encodeValue(spec('int16', 'ABCD', { scale: 0 }), 1)).toThrow(/scale 0/);
    expect(() => encodeValue(spec('int16'), 'abc')).toThrow(TypeError);
    expect(() => encodeValue(spec('string', 'ABCD', { length: 1 }), 'ABC')).toThrow(/holds 2/);
    expect(() => encodeValue(spec('string', 'ABCD', { length: 2 }), 'Aé')).toThrow(/printable ASCII/);
    expect(() => encodeValue(spec('bool'), 2)).toThrow(TypeError);
  });

  it('writes 64-bit integers exactly from bigint or decimal strings', () => {
    expect(encodeValue(spec('uint64'), '18446744073709551615')).toEqual([0xffff, 0xffff, 0xffff, 0xffff]);
    expect(encodeValue(spec('int64', 'HGFEDCBA'), -(2n ** 63n))).toEqual([0x0000, 0x0000, 0x0000, 0x0080]);
    expect(encodeValue(spec('int64'), 9007199254740993n)).toEqual([0x0020, 0, 0, 1]);
    expect(() => encodeValue(spec('uint64'), '-1')).toThrow('-1 does not fit uint64 (0..18446744073709551615)');
  });

  it('rounds integer types to the nearest raw count', () => {
    expect(encodeValue(spec('uint16', 'ABCD', { scale: 0.01 }), 12.34)).toEqual([1234]);
    expect(encodeValue(spec('int16', 'ABCD', { scale: 0.1, offset: -40 }), -45)).toEqual([0xffce]);
    expect(encodeValue(spec('int32'), 1.6)).toEqual([0, 2]);
  });

  it('undoes scale and offset before rounding, without the division\'s float noise', () => {
    // 2.345 / 0.01 is 234.49999999999997 in doubles; the value means 234.5 counts, which rounds to 235.
    expect(encodeValue(spec('uint16', 'ABCD', { scale: 0.01 }), 2.345)).toEqual([235]);
    expect(encodeValue(spec('uint16', 'ABCD', { scale: 0.01 }), 1.15)).toEqual([115]);
    expect(encodeValue(spec('int16', 'ABCD', { scale: 0.1 }), -4.35)).toEqual([0x10000 - 44]);
    // Offset first, then scale: raw = (value - offset) / scale.
    expect(encodeValue(spec('uint16', 'ABCD', { scale: 0.5, offset: 10 }), 12)).toEqual([4]);
    expect(encodeValue(spec('int16', 'ABCD', { scale: -0.5 }), 3)).toEqual([0x10000 - 6]);
    expect(encodeValue(spec('uint32', 'CDAB', { scale: 0.001, offset: -100 }), 4294867.295)).toEqual([0xffff, 0xffff]);
  });

  it('rounds halves away from zero, alike for both signs', () => {
    expect(encodeValue(spec('int16'), 2.5)).toEqual([3]);
    expect(encodeValue(spec('int16'), -2.5)).toEqual([0x10000 - 3]);
    expect(encodeValue(spec('int16'), -0.4)).toEqual([0]);
    expect(encodeValue(spec('int32'), -1.5)).toEqual([0xffff, 0xfffe]);
    expect(encodeValue(spec('int64'), -2.5)).toEqual([0xffff, 0xffff, 0xffff, 0xfffd]);
  });

  it('every decimal on a scaled register\'s grid encodes to its own count and decodes back to itself', () => {
    fc.assert(
      fc.property(fc.integer({ min: -32768, max: 32767 }), fc.constantFrom(0.1, 0.01, 0.001, 0.05, 0.25), fc.constantFrom(0, -40, 273.15), (count, scale, offset) => {
        const s = spec('int16', 'ABCD', { scale, offset });
        const decimals = Math.max(String(scale).split('.')[1]?.length ?? 0, String(offset).split('.')[1]?.length ?? 0);
        // The value as an operator types it: the decimal the count means.
        const value = Number((count * scale + offset).toFixed(decimals));
        const words = encodeValue(s, value) as number[];
        expect(words).toEqual([count < 0 ? count + 0x10000 : count]);
        expect(decode(s, words)).toBe(value);
      }),
      { numRuns: 3000 },
    );
  });

  it('coils, bool registers and bits (merged into the current register)', () => {
    expect(encodeValue({ ...spec('bool'), fc: 1 }, true)).toEqual([true]);
    expect(encodeValue({ ...spec('bool'), fc: 1 }, 'off')).toEqual([false]);
    expect(encodeValue(spec('bool'), true)).toEqual([1]);
    expect(encodeValue(spec('bool', 'ABCD', { bit: 15 }), true)).toEqual([0x8000]);
    expect(encodeValue(spec('bool', 'BADC', { bit: 0 }), true)).toEqual([0x0100]);
    expect(encodeValue(spec('bool', 'ABCD', { bit: 2 }), true, [0x1001])).toEqual([0x1005]);
    expect(encodeValue(spec('bool', 'ABCD', { bit: 0 }), false, [0xffff])).toEqual([0xfffe]);
  });

  it('strings pad with NULs', () => {
    expect(encodeValue(spec('string', 'ABCD', { length: 3 }), 'HELLO')).toEqual([0x4845, 0x4c4c, 0x4f00]);
    expect(encodeValue(spec('string', 'DCBA', { length: 2 }), 'A')).toEqual([0x0041, 0x0000]);
  });
});

describe('encode then decode round trip, every type and order', () => {
  const order = fc.constantFrom(...ORDERS);
  const roundTrip = (s: ValueSpec, value: WriteValue) => decode(s, encodeValue(s, value));
  /** Equal, with 0 and -0 counted as the same reading. */
  const same = (a: unknown, b: unknown): void => {
    expect(a === b, `${String(a)} !== ${String(b)}`).toBe(true);
  };
  const runs = { numRuns: 1000 };

  const ints: Array<[PointType, number, number]> = [
    ['int16', -32768, 32767],
    ['uint16', 0, 65535],
    ['int32', -(2 ** 31), 2 ** 31 - 1],
    ['uint32', 0, 2 ** 32 - 1],
    ['int64', Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
    ['uint64', 0, Number.MAX_SAFE_INTEGER],
  ];
  for (const [type, min, max] of ints) {
    it(type, () => fc.assert(fc.property(order, fc.integer({ min, max }), (o, v) => same(roundTrip(spec(type, o), v), v)), runs));
  }

  it('int64 and uint64 over the whole range (bigint in, nearest double out)', () => {
    fc.assert(
      fc.property(order, fc.bigInt(-(2n ** 63n), 2n ** 63n - 1n), fc.bigInt(0n, 2n ** 64n - 1n), (o, i, u) => {
        same(roundTrip(spec('int64', o), i), Number(i));
        same(roundTrip(spec('uint64', o), u), Number(u));
      }),
      runs,
    );
  });

  it('float32 and float64', () => {
    fc.assert(
      fc.property(order, fc.float({ noNaN: true, noDefaultInfinity: true }), fc.double({ noNaN: true, noDefaultInfinity: true }), (o, f, d) => {
        // The decoder returns the shortest decimal of the float32: the same float32, fewer digits.
        same(Math.fround(roundTrip(spec('float32', o), f) as number), f);
        same(roundTrip(spec('float64', o), d), d);
      }),
      runs,
    );
  });

  it('strings (trailing spaces are cut on read)', () => {
    fc.assert(
      fc.property(order, fc.integer({ min: 1, max: 6 }), fc.string({ unit: 'grapheme-ascii', maxLength: 12 }), (o, length, text) => {
        const s = text.slice(0, length * 2);
        same(roundTrip(spec('string', o, { length }), s), s.replace(/ +$/, ''));
      }),
      runs,
    );
  });

  it('bools, bits and coils', () => {
    fc.assert(
      fc.property(order, fc.boolean(), fc.integer({ min: 0, max: 15 }), fc.integer({ min: 0, max: 0xffff }), (o, b, bit, current) => {
        same(roundTrip(spec('bool', o), b), b);
        same(roundTrip({ ...spec('bool', o), fc: 1 }, b), b);
        same(roundTrip({ ...spec('bool', o), fc: 2 }, b), b);
        const s = spec('bool', o, { bit });
        const word = encodeValue(s, b, [current]) as number[];
        same(decode(s, word), b);
        // The other 15 bits are kept.
        expect(bitCount(word[0] ^ current)).toBe(decode(s, [current]) === b ? 0 : 1);
      }),
      runs,
    );
  });

  it('any register image decodes and re-encodes to itself (integer types, with scale and offset)', () => {
    fc.assert(
      fc.property(
        order,
        fc.constantFrom<PointType>('int16', 'uint16', 'int32', 'uint32'),
        fc.array(fc.integer({ min: 0, max: 0xffff }), { minLength: 2, maxLength: 2 }),
        fc.constantFrom(1, 0.1, 0.01, 2, -0.5),
        fc.constantFrom(0, -40, 273.15),
        (o, type, words, scale, offset) => {
          const s = spec(type, o, { scale, offset });
          const width = type === 'int16' || type === 'uint16' ? 1 : 2;
          const image = words.slice(0, width);
          expect(encodeValue(s, decode(s, image) as number)).toEqual(image);
        },
      ),
      { numRuns: 2000 },
    );
  });
});

function bitCount(x: number): number {
  let n = 0;
  for (let v = x; v; v &= v - 1) n++;
  return n;
}

describe('registersToHex', () => {
  it('prints 4-digit uppercase words', () => {
    expect(registersToHex([0x42f6, 0xe979, 1])).toBe('42F6 E979 0001');
    expect(registersToHex([])).toBe('');
  });
});

describe('readable numbers', () => {
  it('scaled integers read as the decimal they mean', () => {
    expect(decode(spec('int16', 'ABCD', { scale: 0.1 }), [3])).toBe(0.3);
    expect(decode(spec('int16', 'ABCD', { scale: 0.1 }), [0xffff])).toBe(-0.1);
    expect(decode(spec('uint16', 'ABCD', { scale: 0.001, offset: 4 }), [12345])).toBe(16.345);
  });
  it('float32 reads as its shortest decimal, also scaled', () => {
    expect(decode(spec('float32'), [0x42f6, 0xe979])).toBe(123.456);
    expect(decode(spec('float32', 'ABCD', { scale: 0.5, offset: 1.1 }), [0x42f6, 0xe979])).toBe(62.828);
    expect(Number.isNaN(decode(spec('float32'), [0x7fc0, 0]))).toBe(true);
  });
});

describe('compileDecoder: shared decoders', () => {
  it('points with the same spec share one decoder; any difference in the spec gets its own', () => {
    const base: ValueSpec = { fc: 3, type: 'uint32', order: 'CDAB', scale: 0.1, offset: 2, length: undefined };
    expect(compileDecoder({ ...base })).toBe(compileDecoder({ ...base }));
    const variants: ValueSpec[] = [
      { ...base, fc: 4 },
      { ...base, type: 'int32' },
      { ...base, order: 'ABCD' },
      { ...base, scale: 1 },
      { ...base, offset: 0 },
      { ...base, type: 'uint16', bit: 3 },
      { ...base, type: 'string', length: 4 },
    ];
    const decoders = new Set([compileDecoder(base), ...variants.map((v) => compileDecoder(v))]);
    expect(decoders.size).toBe(variants.length + 1);
    // Each still decodes by its own spec.
    expect(compileDecoder(base)([1, 0], 0)).toBe(2.1);
    expect(compileDecoder({ ...base, order: 'ABCD' })([0, 1], 0)).toBe(2.1);
    expect(compileDecoder({ ...base, scale: 1 })([1, 0], 0)).toBe(3);
  });

  it('a spec that cannot compile throws every time, and is not remembered', () => {
    const bad: ValueSpec = { fc: 3, type: 'uint16', order: 'ABCD', bit: 16, scale: 1, offset: 0 };
    expect(() => compileDecoder(bad)).toThrow(/bit 16/);
    expect(() => compileDecoder(bad)).toThrow(/bit 16/);
  });
});
