/**
 * The register image of one simulated unit: points laid out on the four Modbus tables, encoded to 16-bit
 * words on demand at a given time, so every read sees values computed for the instant it arrived.
 */

export type Table = 'coil' | 'discrete' | 'holding' | 'input';
export type SimType = 'bool' | 'int16' | 'uint16' | 'int32' | 'uint32' | 'float32';
/** Word orders the simulated devices use: ABCD high word first, CDAB low word first. */
export type SimOrder = 'ABCD' | 'CDAB';

/** Function code that reads each table, for printing and for matching gateway configs. */
export const TABLE_FC: Record<Table, 1 | 2 | 3 | 4> = { coil: 1, discrete: 2, holding: 3, input: 4 };

/** Exception codes the simulator answers with. */
export const EX_ILLEGAL_ADDRESS = 2;
export const EX_ILLEGAL_VALUE = 3;
export const EX_BUSY = 6;

export interface SimPoint {
  /** The point id the shipped gateway config uses for it. */
  id: string;
  table: Table;
  address: number;
  type: SimType;
  order?: SimOrder;
  /** Engineering value = raw × scale + offset (the gateway config's convention). */
  scale?: number;
  offset?: number;
  /** Engineering unit after scaling. */
  unit?: string;
  description: string;
  /** Raw value at `now`: register counts (before scale/offset) or a bit. */
  read(now: number): number | boolean;
  /** Writable points only; return an exception code to refuse the value. */
  write?(value: number | boolean, now: number): number | void;
}

export function pointWords(type: SimType): number {
  return type === 'int32' || type === 'uint32' || type === 'float32' ? 2 : 1;
}

function clampInt(value: number, min: number, max: number): number {
  if (!Number.isFinite(value)) return 0;
  return Math.min(max, Math.max(min, Math.round(value)));
}

/** Encodes a raw value into register words (high word first for ABCD, low word first for CDAB). */
export function encodeWords(type: SimType, order: SimOrder, value: number | boolean): number[] {
  const v = typeof value === 'boolean' ? Number(value) : value;
  let hi: number;
  let lo: number;
  switch (type) {
    case 'bool':
      return [v ? 1 : 0];
    case 'uint16':
      return [clampInt(v, 0, 0xffff)];
    case 'int16':
      return [clampInt(v, -0x8000, 0x7fff) & 0xffff];
    case 'uint32': {
      const n = clampInt(v, 0, 0xffffffff);
      hi = Math.floor(n / 0x10000);
      lo = n % 0x10000;
      break;
    }
    case 'int32': {
      const n = clampInt(v, -0x80000000, 0x7fffffff) >>> 0;
      hi = n >>> 16;
      lo = n & 0xffff;
      break;
    }
    case 'float32': {
      const buf = Buffer.alloc(4);
      buf.writeFloatBE(v, 0);
      hi = buf.readUInt16BE(0);
      lo = buf.readUInt16BE(2);
      break;
    }
  }
  return order === 'CDAB' ? [lo, hi] : [hi, lo];
}

/** Outcome of one request against a unit: values, or an exception code. */
export type MapResult = { ok: true; values: number[] } | { ok: false; code: number };

interface Cell {
  point: SimPoint;
  /** Index of this address's word inside the point. */
  word: number;
}

export class UnitMap {
  private readonly cells: Record<Table, Map<number, Cell>> = {
    coil: new Map(),
    discrete: new Map(),
    holding: new Map(),
    input: new Map(),
  };

  constructor(readonly points: readonly SimPoint[]) {
    for (const point of points) {
      const isBitTable = point.table === 'coil' || point.table === 'discrete';
      if (isBitTable !== (point.type === 'bool')) throw new Error(`sim point ${point.id}: type ${point.type} on ${point.table}`);
      for (let word = 0; word < pointWords(point.type); word++) {
        const address = point.address + word;
        const other = this.cells[point.table].get(address);
        if (other) throw new Error(`sim points ${other.point.id} and ${point.id} overlap at ${point.table} ${address}`);
        this.cells[point.table].set(address, { point, word });
      }
    }
  }

  /** Reads `count` consecutive addresses; any unmapped address makes the whole request exception 2. */
  read(table: Table, address: number, count: number, now: number): MapResult {
    const values: number[] = [];
    // One encoding per point per request, so both words of a float come from the same instant.
    const encoded = new Map<SimPoint, number[]>();
    for (let i = 0; i < count; i++) {
      const cell = this.cells[table].get(address + i);
      if (!cell) return { ok: false, code: EX_ILLEGAL_ADDRESS };
      let words = encoded.get(cell.point);
      if (!words) {
        words = encodeWords(cell.point.type, cell.point.order ?? 'ABCD', cell.point.read(now));
        encoded.set(cell.point, words);
      }
      values.push(words[cell.word]);
    }
    return { ok: true, values };
  }

  /** Writes one coil or one single-word holding register. */
  write(table: 'coil' | 'holding', address: number, value: number | boolean, now: number): MapResult {
    const cell = this.cells[table].get(address);
    if (!cell || !cell.point.write) return { ok: false, code: EX_ILLEGAL_ADDRESS };
    if (pointWords(cell.point.type) !== 1) return { ok: false, code: EX_ILLEGAL_ADDRESS };
    const refused = cell.point.write(value, now);
    if (typeof refused === 'number') return { ok: false, code: refused };
    return { ok: true, values: [] };
  }
}
