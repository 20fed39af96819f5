/**
 * The commissioning view of a bus: for every unit what it was asked, what came back and how fast, and the
 * likely cause in words: the README's troubleshooting table applied to the counters the buses keep. Pure
 * functions over DeviceHealth, so each rule is tested on numbers alone.
 */
import type { BusConfig, Config } from '../config/schema.js';
import type { DeviceHealth } from '../sources/types.js';
import type { StatusSource } from './types.js';

export interface UnitCommissioning {
  device: string;
  unit?: number;
  requests: number;
  replies: number;
  timeouts: number;
  crc: number;
  /** Replies that were not a valid frame for the request (wrong unit, function code or length). */
  frame: number;
  exceptions: Record<string, number>;
  lastResponseMs: number | null;
  p95ResponseMs: number | null;
  /** Line sensors: bad checksums, overlong lines, lines that did not parse. */
  checksum: number;
  overlong: number;
  parse: number;
  /** What the counters point to, in words; empty when nothing is wrong. */
  causes: string[];
}

export interface LineBusCounters {
  lines: number;
  errors: Record<string, number>;
  lastLine?: { text: string; ts: number };
}

const MODBUS_EXCEPTION_CAUSES: Record<string, string> = {
  '1': 'exception 1 (illegal function): the device has no such table; try fc 4 instead of 3, or the reverse',
  '2': 'exception 2 (illegal data address): the register does not exist; manuals often number registers from 1 or as 40001, fieldgate addresses are 0-based (40001 is fc 3 address 0)',
  '3': 'exception 3 (illegal data value): the count or value is out of range for the device; read fewer registers at once',
  '6': "exception 6 (slave device busy): the device needs a pause; set the bus's requestPauseMs (e.g. 50)",
  '10': "exception 10: a TCP gateway cannot reach the serial unit behind it; check the unit id and the gateway's serial side",
  '11': "exception 11: a TCP gateway cannot reach the serial unit behind it; check the unit id and the gateway's serial side",
};

export const BUS_SILENT_CAUSE = 'no unit answers: wrong baud rate or parity, A and B swapped, no common ground, or the wrong port (fieldgate ports)';
export const UNIT_SILENT_CAUSE = 'only this unit is silent: wrong unit id (scan the bus), the unit is unpowered, or its address switch changed';
export const CRC_CAUSE = 'CRC errors: baud or parity mismatch, a missing 120 Ω terminator at the line ends, a long stub, or noise from a VFD cable alongside';

/** The 95th percentile of a window, nearest rank; null for an empty one. */
export function p95(values: readonly number[] | undefined): number | null {
  if (!values || values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(0.95 * sorted.length) - 1)]!;
}

/** Silent: asked, and never a reply (data or exception), only timeouts. */
const silent = (h: DeviceHealth) => h.requests > 0 && (h.replies ?? 0) === 0 && (h.errors.timeout ?? 0) > 0 && !(h.errors.crc || h.errors.frame || h.errors.exception);

/** Every unit of one bus; `serial` says whether wiring and baud rate can be the cause (an RS-485 line). */
export function commissionBus(health: readonly DeviceHealth[], units: ReadonlyMap<string, number>, kind: 'modbus' | 'line'): { units: UnitCommissioning[]; cause?: string } {
  const allSilent = health.length > 1 && health.every(silent);
  const rows = health.map((h): UnitCommissioning => {
    const e = h.errors;
    const row: UnitCommissioning = {
      device: h.device,
      ...(units.has(h.device) ? { unit: units.get(h.device)! } : {}),
      requests: h.requests,
      // A line device has no reply counter: every line it took that had no fault is a good one.
      replies: kind === 'line' ? Math.max(0, h.requests - sum(e, 'timeout', 'checksum', 'binary', 'overlong', 'parse', 'field')) : (h.replies ?? 0),
      timeouts: e.timeout ?? 0,
      crc: e.crc ?? 0,
      frame: e.frame ?? 0,
      exceptions: { ...(h.exceptions ?? {}) },
      lastResponseMs: h.lastResponseMs ?? null,
      p95ResponseMs: p95(h.recentResponseMs),
      checksum: e.checksum ?? 0,
      overlong: e.overlong ?? 0,
      parse: (e.parse ?? 0) + (e.field ?? 0),
      causes: [],
    };
    row.causes = causesOf(row, silent(h), allSilent || health.length === 1, kind);
    return row;
  });
  return allSilent ? { units: rows, cause: BUS_SILENT_CAUSE } : { units: rows };
}

function causesOf(r: UnitCommissioning, isSilent: boolean, busWide: boolean, kind: 'modbus' | 'line'): string[] {
  const out: string[] = [];
  if (r.requests === 0) return ['not asked yet'];
  if (isSilent) {
    if (kind === 'line') out.push('no reply to the query: wrong baud rate or parity, A and B swapped, the wrong port, or the sensor is unpowered');
    else out.push(busWide ? BUS_SILENT_CAUSE : UNIT_SILENT_CAUSE);
  }
  if (r.crc > 0) out.push(CRC_CAUSE);
  if (r.frame > 0) out.push('replies that do not fit the request (wrong unit or function code): two masters on one line, or a unit id used twice');
  for (const code of Object.keys(r.exceptions).sort((a, b) => +a - +b)) out.push(MODBUS_EXCEPTION_CAUSES[code] ?? `exception ${code} from the unit`);
  if (r.checksum > 0) out.push("bad checksums: baud or parity mismatch or noise on the line; check the device's checksum setting");
  if (r.overlong > 0) out.push('lines longer than maxLineBytes: a wrong line ending (eol) or baud rate');
  if (r.parse > 0) out.push("lines that do not parse: compare the device's parse settings with the last line received");
  return out;
}

const sum = (e: Record<string, number>, ...kinds: string[]) => kinds.reduce((a, k) => a + (e[k] ?? 0), 0);

/** Control characters and the like made visible (\r as \x0d), so a raw line shows what really came. */
export function visible(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f\ufffd]/g, (c) => (c === '\ufffd' ? '\\ufffd' : `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`));
}

/** A bus's commissioning view from what its source counts; the unit ids from the configuration. */
export function busCommissioning(bc: BusConfig, config: Config, source: StatusSource | undefined, health: readonly DeviceHealth[]) {
  const kind = bc.transport === 'line' ? 'line' : 'modbus';
  const units = new Map<string, number>();
  for (const d of config.devices) if (d.bus === bc.id && 'unit' in d && typeof d.unit === 'number') units.set(d.id, d.unit);
  const view: { units: UnitCommissioning[]; cause?: string; line?: LineBusCounters } = commissionBus(health, units, kind);
  const bh = source?.busHealth?.();
  if (bh) {
    const errors: Record<string, number> = {};
    for (const [k, n] of Object.entries(bh.errors)) if (n) errors[k] = n;
    const last = source?.lastLine?.();
    view.line = { lines: bh.lines, errors, ...(last ? { lastLine: { text: visible(last.text), ts: last.ts } } : {}) };
  }
  return view;
}
