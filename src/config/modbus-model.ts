/**
 * The Modbus data model as the configuration names it: function codes, point types, byte orders and how many
 * registers a type spans. It lives with the configuration because the schema is written in these words; the
 * decoder, the planner and the CLI take them from here (through sources/modbus/types.ts).
 */

/** 1 coils, 2 discrete inputs, 3 holding registers, 4 input registers. */
export type ReadFc = 1 | 2 | 3 | 4;

export const POINT_TYPES = [
  'bool', 'int16', 'uint16', 'int32', 'uint32', 'int64', 'uint64', 'float32', 'float64', 'string',
] as const;
export type PointType = (typeof POINT_TYPES)[number];

/**
 * Byte/word orders. The 4-letter names apply to every width: ABCD is big-endian words and bytes (the Modbus
 * default), CDAB swaps words (low word first), BADC swaps bytes inside each word, DCBA is fully little-endian.
 * The 8-letter names are accepted as aliases for 64-bit types.
 */
export const ORDERS = ['ABCD', 'CDAB', 'BADC', 'DCBA', 'ABCDEFGH', 'GHEFCDAB', 'BADCFEHG', 'HGFEDCBA'] as const;
export type Order = (typeof ORDERS)[number];

export function isBitFc(fc: number): boolean {
  return fc === 1 || fc === 2;
}

/** Registers (fc 3/4) or bits (fc 1/2) that a point occupies. `length` is the string length in registers. */
export function pointWidth(fc: ReadFc, type: PointType, length?: number): number {
  if (isBitFc(fc)) return 1;
  switch (type) {
    case 'bool':
    case 'int16':
    case 'uint16':
      return 1;
    case 'int32':
    case 'uint32':
    case 'float32':
      return 2;
    case 'int64':
    case 'uint64':
    case 'float64':
      return 4;
    case 'string':
      return length ?? 1;
  }
}
