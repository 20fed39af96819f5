/** Shorthands for the kinds of points field devices expose, so scenarios read like a device manual. */
import { loopMicroAmps } from './physics.js';
import { EX_ILLEGAL_VALUE, type SimOrder, type SimPoint, type Table } from './registers.js';

/**
 * A 4-20 mA transmitter on an analog input module that reports the loop current in µA (0-22000, so
 * 4 mA = 4000 and 20 mA = 20000). scale/offset map the counts straight to the transmitter's range.
 */
export function loopInput(
  id: string,
  address: number,
  range: { low: number; high: number; unit: string },
  description: string,
  value: (now: number) => number,
): SimPoint {
  const scale = (range.high - range.low) / 16000;
  return {
    id,
    table: 'input',
    address,
    type: 'uint16',
    scale,
    offset: range.low - 4000 * scale,
    unit: range.unit,
    description: `${description}; 4-20 mA = ${range.low}-${range.high} ${range.unit}, reported in µA`,
    read: (now) => loopMicroAmps(value(now), range.low, range.high),
  };
}

/** A register holding value / scale as an integer (e.g. °C × 10 with scale 0.1). */
export function scaledRegister(
  id: string,
  table: 'holding' | 'input',
  address: number,
  type: 'int16' | 'uint16' | 'int32' | 'uint32',
  scale: number,
  unit: string,
  description: string,
  value: (now: number) => number,
  order?: SimOrder,
): SimPoint {
  return { id, table, address, type, order, scale, unit, description, read: (now) => value(now) / scale };
}

export function floatRegister(
  id: string,
  address: number,
  order: SimOrder,
  unit: string,
  description: string,
  value: (now: number) => number,
): SimPoint {
  return { id, table: 'holding', address, type: 'float32', order, unit, description, read: value };
}

export function bit(id: string, table: Extract<Table, 'coil' | 'discrete'>, address: number, description: string, value: (now: number) => boolean): SimPoint {
  return { id, table, address, type: 'bool', description, read: value };
}

/** A coil the client may write: `apply` receives the new state. */
export function writableCoil(
  id: string,
  address: number,
  description: string,
  value: () => boolean,
  apply: (on: boolean, now: number) => void,
): SimPoint {
  return { id, table: 'coil', address, type: 'bool', description, read: value, write: (v, now) => apply(Boolean(v), now) };
}

/** A writable uint16 setpoint; values outside [min, max] are refused with exception 3 (illegal data value). */
export function setpointRegister(
  id: string,
  address: number,
  scale: number,
  unit: string,
  description: string,
  limits: { min: number; max: number },
  cell: { value: number },
): SimPoint {
  return {
    id,
    table: 'holding',
    address,
    type: 'uint16',
    scale,
    unit,
    description,
    read: () => cell.value,
    write: (v) => {
      const raw = Number(v);
      if (raw < limits.min || raw > limits.max) return EX_ILLEGAL_VALUE;
      cell.value = raw;
    },
  };
}
