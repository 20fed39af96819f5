import { fromBinary, toBinary, create } from '@bufbuild/protobuf';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DataType, datatypeOf, metric, valueFrom } from '../src/uplink/profiles/sparkplug/metrics.js';
import { PayloadSchema } from '../src/uplink/profiles/sparkplug/sparkplug_b_pb.js';

/** Through the wire and back, as a host would read it. */
function roundTrip(datatype: number, value: unknown) {
  const bytes = toBinary(PayloadSchema, create(PayloadSchema, { metrics: [metric({ alias: 1, datatype, as: datatype, ts: 5, value })] }));
  return fromBinary(PayloadSchema, bytes).metrics[0]!;
}

const RANGES: Array<[string, number, number, number]> = [
  ['int16', DataType.Int16, -32768, 32767],
  ['uint16', DataType.UInt16, 0, 65535],
  ['int32', DataType.Int32, -(2 ** 31), 2 ** 31 - 1],
  ['uint32', DataType.UInt32, 0, 2 ** 32 - 1],
  ['int64', DataType.Int64, Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  ['uint64', DataType.UInt64, 0, Number.MAX_SAFE_INTEGER],
];

describe('Sparkplug metrics', () => {
  it('maps every point type to its datatype, Double otherwise', () => {
    expect(['float32', 'float64', 'int16', 'uint16', 'int32', 'uint32', 'int64', 'uint64', 'bool', 'string', undefined, 'other'].map(datatypeOf)).toEqual([9, 10, 2, 6, 3, 7, 4, 8, 11, 12, 10, 10]);
  });

  for (const [type, dt, min, max] of RANGES) {
    it(`carries every ${type} exactly, signed ones as two's complement`, () => {
      for (const v of [min, max, 0, 1, -1].filter((x) => x >= min && x <= max)) expect(valueFrom(roundTrip(dt, v))).toBe(v);
      fc.assert(fc.property(fc.integer({ min: Math.max(min, Number.MIN_SAFE_INTEGER), max }), (v) => valueFrom(roundTrip(dt, v)) === v));
    });
  }

  it('carries doubles, floats to float precision, booleans and strings', () => {
    fc.assert(fc.property(fc.double({ noNaN: true }), (v) => Object.is(valueFrom(roundTrip(DataType.Double, v)), v)));
    fc.assert(fc.property(fc.float({ noNaN: true }), (v) => Object.is(valueFrom(roundTrip(DataType.Float, v)), Math.fround(v))));
    expect(valueFrom(roundTrip(DataType.Boolean, true))).toBe(true);
    expect(valueFrom(roundTrip(DataType.Boolean, false))).toBe(false);
    expect(valueFrom(roundTrip(DataType.String, 'Ü ok'))).toBe('Ü ok');
  });

  it('sends a value that cannot be its datatype, or none, as is_null', () => {
    for (const [dt, v] of [[DataType.Int16, 1.5], [DataType.Int32, 'x'], [DataType.Boolean, 2], [DataType.String, 3], [DataType.Double, null], [DataType.UInt64, Number.NaN]] as const) {
      const m = roundTrip(dt, v);
      expect(m.isNull).toBe(true);
      expect(valueFrom(m)).toBeNull();
    }
  });

  it('puts the range as engLow/engHigh (Double) and readOnly (Boolean) in a birth metric\'s properties', () => {
    const m = fromBinary(PayloadSchema, toBinary(PayloadSchema, create(PayloadSchema, { metrics: [metric({ name: 'p', as: DataType.Double, ts: 9, value: 1, unit: 'bar', engRange: [0, 10], readOnly: false })] }))).metrics[0]!;
    expect(m.properties!.keys).toEqual(['engUnit', 'engLow', 'engHigh', 'readOnly']);
    expect(m.properties!.values.map((v) => [v.type, v.value.value])).toEqual([[12, 'bar'], [10, 0], [10, 10], [11, false]]);
  });

  it('puts Quality (Int32 0/192/500), engUnit and Reason in the properties, historical when asked', () => {
    const m = fromBinary(PayloadSchema, toBinary(PayloadSchema, create(PayloadSchema, { metrics: [metric({ alias: 2, as: DataType.Double, ts: 9, value: 1, quality: 'uncertain', unit: 'bar', reason: 'clamped', historical: true })] }))).metrics[0]!;
    expect(m.properties!.keys).toEqual(['Quality', 'engUnit', 'Reason']);
    expect(m.properties!.values.map((v) => [v.type, v.value.value])).toEqual([[3, 500], [12, 'bar'], [12, 'clamped']]);
    expect(m.isHistorical).toBe(true);
    for (const [q, code] of [['good', 192], ['bad', 0]] as const) {
      expect(metric({ as: DataType.Double, ts: 0, value: 1, quality: q }).properties!.values[0]!.value.value).toBe(code);
    }
    // Without quality, unit or reason: no properties, and no historical flag on the wire.
    const plain = roundTrip(DataType.Double, 1);
    expect(plain.properties).toBeUndefined();
    expect(plain.isHistorical).toBe(false);
  });
});
