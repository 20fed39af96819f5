/**
 * A failed Modbus transaction or connection, in the field's words. Its own module so that what only names errors
 * (the page's tools, the write queue) does not load modbus-serial, which link.ts wraps.
 */
import { EXCEPTION_NAMES } from './types.js';

export type ModbusErrorKind = 'exception' | 'timeout' | 'crc' | 'frame' | 'disconnected' | 'connect';

/** A failed transaction or connection, named in the field's words ("slave device busy", "timeout after 500 ms"). */
export class ModbusError extends Error {
  constructor(
    readonly kind: ModbusErrorKind,
    message: string,
    /** The exception code for kind 'exception'. */
    readonly code?: number,
  ) {
    super(message);
    this.name = 'ModbusError';
  }

  /** The link itself is gone: reconnect rather than blame the unit. */
  get linkLost(): boolean {
    return this.kind === 'disconnected' || this.kind === 'connect';
  }
}

export function exceptionName(code: number): string {
  return EXCEPTION_NAMES[code] ?? `exception ${code}`;
}
