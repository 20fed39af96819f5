/** What a configured point really reads, once the defaults and the `bit` shorthand are resolved. */
import { isBitFc, pointWidth, type PointType, type ReadFc } from './modbus-model.js';

export interface PointShape {
  fc: ReadFc;
  type?: PointType;
  bit?: number;
  length?: number;
}

/** `bool` for coils, discrete inputs and single bits of a register; otherwise the type, uint16 by default. */
export function resolvedType(point: Pick<PointShape, 'fc' | 'type' | 'bit'>): PointType {
  if (isBitFc(point.fc) || point.bit !== undefined) return 'bool';
  return point.type ?? 'uint16';
}

/** Registers (fc 3/4) or bits (fc 1/2) the point occupies; a bit of a register occupies that one register. */
export function resolvedWidth(point: PointShape): number {
  if (point.bit !== undefined) return 1;
  return pointWidth(point.fc, resolvedType(point), point.length);
}

export const SIXTY_FOUR_BIT_TYPES: readonly PointType[] = ['int64', 'uint64', 'float64'];
