/** What read, write and scan share: the TARGET argument, serial and timing flags, and opening the link. */
import { Option, type Command } from 'commander';
import { UserError } from '../errors.js';
import type { ModbusError } from '../sources/modbus/errors.js';
import { ModbusLink, type Target } from '../sources/modbus/link.js';
import { ORDERS, POINT_TYPES, type Order, type PointType } from '../sources/modbus/types.js';

export interface LinkFlags {
  baud: string;
  parity: string;
  dataBits: string;
  stopBits: string;
  timeout: string;
}

export const TARGET_HELP = 'tcp://HOST[:PORT], rtu-over-tcp://HOST[:PORT], or a serial device path (/dev/ttyUSB0)';

export function addLinkOptions(cmd: Command, timeoutDefault = '1000'): Command {
  return cmd
    .option('--baud <rate>', 'serial: baud rate', '9600')
    .addOption(new Option('--parity <parity>', 'serial: parity').choices(['none', 'even', 'odd']).default('none'))
    .addOption(new Option('--data-bits <bits>', 'serial: data bits').choices(['7', '8']).default('8'))
    .addOption(new Option('--stop-bits <bits>', 'serial: stop bits').choices(['1', '2']).default('1'))
    .option('--timeout <ms>', 'response timeout in milliseconds', timeoutDefault);
}

export function addValueOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--type <type>', 'value type').choices([...POINT_TYPES]).default('uint16'))
    .addOption(new Option('--order <order>', 'byte/word order').choices([...ORDERS]).default('ABCD'))
    .option('--length <registers>', 'string length in registers (type string)', '1');
}

/** An integer flag in range, or a one-line error naming the flag. */
export function intFlag(name: string, raw: string, min: number, max: number): number {
  const n = Number(raw);
  if (!/^-?\d+$/.test(raw.trim()) || n < min || n > max) throw new UserError(`--${name} must be an integer ${min}-${max}, got "${raw}"`, 2);
  return n;
}

export function parseTarget(raw: string, flags: LinkFlags): Target {
  const m = /^(tcp|rtu-over-tcp):\/\/(\[[^\]]+\]|[^:/]+)(?::(\d+))?\/?$/.exec(raw);
  if (m) {
    const host = m[2]!.replace(/^\[|\]$/g, '');
    return { transport: m[1] as 'tcp' | 'rtu-over-tcp', host, port: m[3] ? intFlag('port', m[3], 1, 65535) : 502 };
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(raw)) {
    throw new UserError(`unknown target "${raw}": use ${TARGET_HELP}`, 2);
  }
  return {
    transport: 'rtu',
    port: raw,
    baudRate: intFlag('baud', flags.baud, 300, 4_000_000),
    parity: flags.parity as 'none' | 'even' | 'odd',
    dataBits: Number(flags.dataBits) as 7 | 8,
    stopBits: Number(flags.stopBits) as 1 | 2,
  };
}

export async function openLink(target: Target, flags: LinkFlags): Promise<ModbusLink> {
  const link = new ModbusLink(target, intFlag('timeout', flags.timeout, 10, 60_000));
  try {
    await link.open();
  } catch (err) {
    throw new UserError(`${(err as Error).message}; check the address, cable and that nothing else holds the port`);
  }
  return link;
}

export function valueSpec(flags: { type: string; order: string; length: string }, fc: number) {
  const length = intFlag('length', flags.length, 1, 125);
  return { fc: fc as 1 | 2 | 3 | 4, type: flags.type as PointType, order: flags.order as Order, length, scale: 1, offset: 0 };
}

/** One line for a failed transaction: where, and what the device or the line said. */
export function transactionError(what: string, err: unknown): UserError {
  const e = err as ModbusError;
  const hint =
    e.kind === 'timeout' ? ': no answer; check unit id, baud rate, parity, A/B wiring and termination'
    : e.kind === 'crc' ? ': check baud rate, parity and wiring noise'
    : '';
  return new UserError(`${what}: ${e.message}${hint}`);
}

/** A --value as the point's type reads it (fieldgate write and command): "1"/"on" for a bool, a number for numeric points. */
export function valueFlag(raw: string, type: string): number | boolean | string {
  if (type === 'string') return raw;
  if (type === 'bool') {
    if (/^(1|true|on)$/i.test(raw)) return true;
    if (/^(0|false|off)$/i.test(raw)) return false;
    throw new UserError(`--value "${raw}" is not a bool: use 1/0, true/false or on/off`, 2);
  }
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(n)) throw new UserError(`--value "${raw}" is not a number`, 2);
  return n;
}
