/**
 * Sparkplug B metrics from fieldgate's points and samples, and back: datatypes, values, quality and the
 * properties hosts read. Pure. The protobuf encoding itself is @bufbuild/protobuf's, generated from
 * sparkplug_b.proto (sparkplug_b_pb.ts); nothing here writes bytes by hand.
 */
import { create, type MessageInitShape } from '@bufbuild/protobuf';
import type { Quality } from '../../../sample.js';
import { Payload_MetricSchema, type Payload_Metric } from './sparkplug_b_pb.js';

/** Sparkplug 3.0 6.4.16 datatype codes. */
export const DataType = {
  Int8: 1,
  Int16: 2,
  Int32: 3,
  Int64: 4,
  UInt8: 5,
  UInt16: 6,
  UInt32: 7,
  UInt64: 8,
  Float: 9,
  Double: 10,
  Boolean: 11,
  String: 12,
} as const;

/** Sparkplug's quality codes (6.4.8): 0 bad, 192 good, 500 stale. */
export const QUALITY_CODE: Record<Quality, number> = { good: 192, uncertain: 500, bad: 0 };

const BY_POINT_TYPE: Record<string, number> = {
  int16: DataType.Int16,
  uint16: DataType.UInt16,
  int32: DataType.Int32,
  uint32: DataType.UInt32,
  int64: DataType.Int64,
  uint64: DataType.UInt64,
  float32: DataType.Float,
  float64: DataType.Double,
  bool: DataType.Boolean,
  string: DataType.String,
};

/** The datatype of a point of fieldgate type `type` (aggregates and untyped series are Double). */
export function datatypeOf(type: string | undefined): number {
  return (type && BY_POINT_TYPE[type]) || DataType.Double;
}

/** The datatype of a scaled point: a register's integer becomes a fraction (Double); a float keeps its datatype. */
export function engineeringDatatype(type: string | undefined): number {
  const d = datatypeOf(type);
  return d === DataType.Float || d === DataType.Double || d === DataType.Boolean || d === DataType.String ? d : DataType.Double;
}

type MetricInit = MessageInitShape<typeof Payload_MetricSchema>;
type MetricValue = NonNullable<MetricInit['value']>;

/** The value oneof for `v` as `datatype`; undefined when v cannot be one (sent as is_null). */
export function valueOf(datatype: number, v: unknown): MetricValue | undefined {
  switch (datatype) {
    case DataType.Boolean:
      if (typeof v === 'boolean') return { case: 'booleanValue', value: v };
      if (typeof v === 'number' && (v === 0 || v === 1)) return { case: 'booleanValue', value: v === 1 };
      return undefined;
    case DataType.String:
      return typeof v === 'string' ? { case: 'stringValue', value: v } : undefined;
    case DataType.Float:
      return typeof v === 'number' ? { case: 'floatValue', value: v } : undefined;
    case DataType.Double:
      if (typeof v === 'number') return { case: 'doubleValue', value: v };
      if (typeof v === 'boolean') return { case: 'doubleValue', value: v ? 1 : 0 };
      return undefined;
    case DataType.Int64:
    case DataType.UInt64:
      if (typeof v !== 'number' || !Number.isInteger(v)) return undefined;
      // Signed values travel as their two's complement in the uint64 field (6.4.16).
      return { case: 'longValue', value: BigInt.asUintN(64, BigInt(v)) };
    default:
      if (typeof v !== 'number' || !Number.isInteger(v)) return undefined;
      // Int8..UInt32 use the uint32 field; signed ones as their two's complement.
      return { case: 'intValue', value: v >>> 0 };
  }
}

/** A metric value as a JavaScript value, reading a signed datatype's two's complement back. */
export function valueFrom(m: Pick<Payload_Metric, 'datatype' | 'value' | 'isNull'>): number | boolean | string | null {
  if (m.isNull) return null;
  const v = m.value;
  switch (v.case) {
    case 'intValue':
      if (m.datatype === DataType.Int8) return (v.value << 24) >> 24;
      if (m.datatype === DataType.Int16) return (v.value << 16) >> 16;
      if (m.datatype === DataType.Int32) return v.value | 0;
      return v.value;
    case 'longValue':
      return Number(m.datatype === DataType.Int64 ? BigInt.asIntN(64, v.value) : v.value);
    case 'floatValue':
    case 'doubleValue':
    case 'booleanValue':
    case 'stringValue':
      return v.value;
    default:
      return null;
  }
}

export interface MetricArgs {
  name?: string;
  alias?: number;
  datatype?: number;
  /** The datatype the value is encoded as (the birth's; DATA messages leave `datatype` out). */
  as: number;
  ts: number;
  value: unknown;
  quality?: Quality;
  historical?: boolean;
  /** Engineering unit: `engUnit`, the tag property Ignition and Cirrus Link's MQTT Engine read. */
  unit?: string;
  /** Engineering range: `engLow` / `engHigh`, as Ignition tags name them. */
  engRange?: readonly [number, number];
  /** `readOnly`: false for a point a DCMD may write (births only). */
  readOnly?: boolean;
  reason?: string;
}

/** One metric; quality and unit become properties (Quality only when asked: it is implied good otherwise). */
export function metric(a: MetricArgs): Payload_Metric {
  const value = a.value === null || a.value === undefined ? undefined : valueOf(a.as, a.value);
  const keys: string[] = [];
  const values: Array<{
    type: number;
    value: { case: 'intValue'; value: number } | { case: 'stringValue'; value: string } | { case: 'doubleValue'; value: number } | { case: 'booleanValue'; value: boolean };
  }> = [];
  if (a.quality !== undefined) {
    keys.push('Quality');
    values.push({ type: DataType.Int32, value: { case: 'intValue', value: QUALITY_CODE[a.quality] } });
  }
  if (a.unit !== undefined) {
    keys.push('engUnit');
    values.push({ type: DataType.String, value: { case: 'stringValue', value: a.unit } });
  }
  if (a.engRange !== undefined) {
    keys.push('engLow', 'engHigh');
    values.push({ type: DataType.Double, value: { case: 'doubleValue', value: a.engRange[0] } }, { type: DataType.Double, value: { case: 'doubleValue', value: a.engRange[1] } });
  }
  if (a.readOnly !== undefined) {
    keys.push('readOnly');
    values.push({ type: DataType.Boolean, value: { case: 'booleanValue', value: a.readOnly } });
  }
  if (a.reason !== undefined) {
    keys.push('Reason');
    values.push({ type: DataType.String, value: { case: 'stringValue', value: a.reason } });
  }
  return create(Payload_MetricSchema, {
    name: a.name,
    alias: a.alias === undefined ? undefined : BigInt(a.alias),
    timestamp: BigInt(Math.max(0, Math.round(a.ts))),
    datatype: a.datatype,
    isHistorical: a.historical ? true : undefined,
    isNull: value === undefined ? true : undefined,
    value,
    properties: keys.length > 0 ? { keys, values } : undefined,
  });
}
