/** Modbus wire-level constants shared by the decoder, the planner and the CLI; the data model is in config/modbus-model.ts. */

// The configuration's vocabulary (function codes, types, orders, widths) is defined with the schema.
export { isBitFc, ORDERS, POINT_TYPES, pointWidth, type Order, type PointType, type ReadFc } from '../../config/modbus-model.js';

export type WriteFc = 5 | 6 | 15 | 16;

export const MAX_REGISTERS_PER_READ = 125;
export const MAX_BITS_PER_READ = 2000;

/** Exception codes by their names in the Modbus application protocol specification. */
export const EXCEPTION_NAMES: Record<number, string> = {
  1: 'illegal function',
  2: 'illegal data address',
  3: 'illegal data value',
  4: 'slave device failure',
  5: 'acknowledge',
  6: 'slave device busy',
  8: 'memory parity error',
  10: 'gateway path unavailable',
  11: 'gateway target device failed to respond',
};
