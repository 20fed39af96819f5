/**
 * Compiles a device's configuration once into request plans with a decoder per point, so the poll loop only
 * executes plans (no per-poll switching on types or re-planning).
 */
import type { DeviceConfig } from '../../config/schema.js';
import { resolvedType } from '../../config/points.js';
import type { Sample } from '../../sample.js';
import { compileDecoder } from './decode.js';
import { planRequests } from './planner.js';
import { compileWrite, type WritePlan } from './writes.js';
import { pointWidth, type ReadFc } from './types.js';

export type Decoder = ReturnType<typeof compileDecoder>;

export interface CompiledPoint {
  id: string;
  offset: number;
  decode: Decoder;
}

export interface CompiledRequest {
  fc: ReadFc;
  address: number;
  count: number;
  points: CompiledPoint[];
}

export interface CompiledDevice {
  id: string;
  bus: string;
  unit: number;
  pollIntervalMs: number;
  requests: CompiledRequest[];
  /** Every point's id, so a write to a read-only point is told apart from one to no point at all. */
  pointIds: ReadonlySet<string>;
  /** The points the configuration marks `write`, by id. */
  writes: ReadonlyMap<string, WritePlan>;
}

/** Compiles a device the config validator accepted: Modbus devices there always have a unit and addresses. */
export function compileDevice(device: DeviceConfig): CompiledDevice {
  const specs = device.points.map((p) => {
    const type = resolvedType(p);
    return { point: p, type, fc: p.fc as ReadFc, address: p.address!, width: pointWidth(p.fc as ReadFc, type, p.length) };
  });
  const plan = planRequests(specs, {
    maxRegisters: device.maxRegistersPerRequest,
    maxBits: device.maxBitsPerRequest,
    maxGap: device.maxGap,
    mode: device.requests,
  });
  return {
    id: device.id,
    bus: device.bus,
    unit: device.unit!,
    pollIntervalMs: device.pollIntervalMs,
    pointIds: new Set(device.points.map((p) => p.id)),
    writes: new Map(device.points.flatMap((p) => {
      const plan = compileWrite(p);
      return plan ? [[p.id, plan] as const] : [];
    })),
    requests: plan.map((r) => ({
      fc: r.fc,
      address: r.address,
      count: r.count,
      points: r.points.map(({ index, offset }) => {
        const s = specs[index]!;
        const p = s.point;
        return {
          id: p.id,
          offset,
          decode: compileDecoder({ fc: s.fc, type: s.type, order: p.order, bit: p.bit, length: p.length, scale: p.scale, offset: p.offset }),
        };
      }),
    })),
  };
}

/** Samples for one answered request. A float register holding NaN or Infinity is a sensor fault, not a value. */
export function decodeResponse(device: CompiledDevice, request: CompiledRequest, data: ArrayLike<number> | ArrayLike<boolean>, ts: number): Sample[] {
  const out: Sample[] = [];
  for (const p of request.points) {
    let value: number | boolean | string;
    try {
      value = p.decode(data, p.offset);
    } catch (err) {
      out.push({ device: device.id, point: p.id, ts, value: null, quality: 'bad', reason: `cannot decode: ${(err as Error).message}` });
      continue;
    }
    if (typeof value === 'number' && !Number.isFinite(value)) {
      out.push({ device: device.id, point: p.id, ts, value: null, quality: 'bad', reason: `register holds ${value}` });
    } else {
      out.push({ device: device.id, point: p.id, ts, value, quality: 'good' });
    }
  }
  return out;
}

/** Bad samples for every point of a request that failed. */
export function failedRequest(device: CompiledDevice, request: CompiledRequest, ts: number, reason: string): Sample[] {
  return request.points.map((p) => ({ device: device.id, point: p.id, ts, value: null, quality: 'bad' as const, reason }));
}
