/**
 * Cross-field rules the schema cannot express: ids that must be unique, references between sections, points
 * that do not fit the Modbus data model or overlap. Pure: takes a config the schema accepted and returns every
 * problem with the path of the key to blame; the loader turns paths into line and column.
 */
import type { BusConfig, Config, DeviceConfig, PointConfig } from './schema.js';
import { isBitFc } from './modbus-model.js';
import { resolvedType, resolvedWidth, SIXTY_FOUR_BIT_TYPES } from './points.js';
import type { IssuePath, RuleIssue } from './issues.js';
import { checkLineBus, checkLineDevice, checkProcessing } from './validate-line.js';
import { checkStatusConfig } from './listen.js';

export { resolvedType, resolvedWidth } from './points.js';

export type { IssuePath, RuleIssue } from './issues.js';

const SIXTEEN_BIT_TYPES = new Set(['bool', 'int16', 'uint16']);
const EIGHT_LETTER_ORDERS = new Set(['ABCDEFGH', 'GHEFCDAB', 'BADCFEHG', 'HGFEDCBA']);

export function validateConfig(config: Config): RuleIssue[] {
  const issues: RuleIssue[] = [];
  checkBuses(config.buses, issues);
  checkDevices(config, issues);
  const transports = new Map(config.buses.map((b) => [b.id, b.transport]));
  config.devices.forEach((device, d) => {
    const transport = transports.get(device.bus);
    if (transport === 'line' || (transport === undefined && device.parse !== undefined)) checkLineDevice(device, ['devices', d], issues);
    else checkPoints(device, ['devices', d], issues);
    device.points.forEach((point, p) => checkProcessing(point, ['devices', d, 'points', p], issues));
  });
  checkStatusConfig(config.status, issues);
  return issues;
}

function checkBuses(buses: BusConfig[], issues: RuleIssue[]): void {
  const ids = new Map<string, number>();
  const serialPorts = new Map<string, string>();
  buses.forEach((bus, b) => {
    const at = (key: string): IssuePath => ['buses', b, key];
    const first = ids.get(bus.id);
    if (first !== undefined) issues.push({ path: at('id'), message: `duplicate bus id "${bus.id}" (also buses[${first}])` });
    else ids.set(bus.id, b);

    if (bus.transport === 'line') checkLineBus(bus, ['buses', b], issues);
    if (bus.transport === 'rtu') {
      const owner = serialPorts.get(bus.port);
      if (owner !== undefined) {
        issues.push({ path: at('port'), message: `serial port ${JSON.stringify(bus.port)} is already used by bus "${owner}"` });
      } else serialPorts.set(bus.port, bus.id);
    }

    for (const [min, max] of [['reconnectMinMs', 'reconnectMaxMs'], ['unitBackoffMinMs', 'unitBackoffMaxMs']] as const) {
      if (bus.transport === 'line' && min === 'unitBackoffMinMs') continue;
      if (bus[min] > bus[max]) {
        issues.push({ path: at(min), message: `${min} (${bus[min]}) must not exceed ${max} (${bus[max]})` });
      }
    }
  });
}

function checkDevices(config: Config, issues: RuleIssue[]): void {
  const busIds = new Set(config.buses.map((bus) => bus.id));
  const lineBuses = new Set(config.buses.filter((bus) => bus.transport === 'line').map((bus) => bus.id));
  const ids = new Map<string, number>();
  const units = new Map<string, string>();
  config.devices.forEach((device, d) => {
    const at = (key: string): IssuePath => ['devices', d, key];
    const first = ids.get(device.id);
    if (first !== undefined) {
      issues.push({ path: at('id'), message: `duplicate device id "${device.id}" (also devices[${first}])` });
    } else ids.set(device.id, d);

    if (!busIds.has(device.bus)) {
      const known = busIds.size ? `defined buses: ${[...busIds].join(', ')}` : 'no buses are defined';
      issues.push({ path: at('bus'), message: `no bus "${device.bus}"; ${known}` });
      return;
    }
    if (lineBuses.has(device.bus)) return; // no unit ids on a line bus: validate-line.ts checks its devices
    if (device.unit === undefined) return; // reported with the schema errors (requiredByTransport)
    const key = `${device.bus}\u0000${device.unit}`;
    const owner = units.get(key);
    if (owner !== undefined) {
      issues.push({ path: at('unit'), message: `unit ${device.unit} on bus "${device.bus}" is already used by device "${owner}"` });
    } else units.set(key, device.id);
  });
}

function checkPoints(device: DeviceConfig, devicePath: IssuePath, issues: RuleIssue[]): void {
  const ids = new Map<string, number>();
  const readers = new FirstReaders();
  device.points.forEach((point, p) => {
    const at = (key: string): IssuePath => [...devicePath, 'points', p, key];
    const first = ids.get(point.id);
    if (first !== undefined) issues.push({ path: at('id'), message: `duplicate point id "${point.id}" (also points[${first}])` });
    else ids.set(point.id, p);

    if (point.address === undefined) return; // reported with the schema errors (requiredByTransport)
    if (point.field !== undefined) issues.push({ path: at('field'), message: 'field applies to line-sensor points; a Modbus point is read by fc and address' });
    for (const { key, message } of pointShapeProblems(point, device)) issues.push({ path: at(key), message });

    const q = readers.claim(point, p);
    if (q !== undefined) {
      const clash = overlap(device.points[q], point)!;
      issues.push({ path: at('address'), message: `${clash} point "${device.points[q].id}" (points[${q}])` });
    }
  });
}

/**
 * The first point (lowest index) that reads each register or bit, per function code: finds the earliest
 * point a new one overlaps in time proportional to its width. Comparing every pair took seconds for a device
 * of 20,000 points. Same rules as overlap(): words by register range, bits by register and bit, never across.
 */
class FirstReaders {
  private readonly firsts = new Map<string, number>();

  /** Records the point's registers (or bit) and returns the earliest earlier point that reads any of them. */
  claim(point: PointConfig, index: number): number | undefined {
    const address = point.address!;
    const keys: string[] = [];
    if (isBitFc(point.fc)) keys.push(`${point.fc}:${address}`);
    else if (point.bit !== undefined) keys.push(`${point.fc}:${address}.${point.bit}`);
    else for (let r = address, end = address + resolvedWidth(point) - 1; r <= end; r++) keys.push(`${point.fc}:${r}`);
    let first: number | undefined;
    for (const key of keys) {
      const q = this.firsts.get(key);
      if (q === undefined) this.firsts.set(key, index);
      else if (first === undefined || q < first) first = q;
    }
    return first;
  }
}

/** Problems of one point on its own: fields that do not apply to its function code or type, and its extent. */
function pointShapeProblems(point: PointConfig, device: DeviceConfig): { key: string; message: string }[] {
  const out: { key: string; message: string }[] = [];
  const type = resolvedType(point);
  const bitFc = isBitFc(point.fc);

  if (bitFc && point.type !== undefined && point.type !== 'bool') {
    out.push({ key: 'type', message: `fc ${point.fc} reads single bits as bool; remove type or set it to bool, not ${point.type}` });
  }
  if (bitFc && point.bit !== undefined) {
    out.push({ key: 'bit', message: `bit selects one bit of a register (fc 3/4); fc ${point.fc} points are already single bits` });
  }
  if (!bitFc && point.bit !== undefined && point.type !== undefined && !SIXTEEN_BIT_TYPES.has(point.type)) {
    out.push({ key: 'bit', message: `a bit index needs a 16-bit register; ${point.type} is ${describeWidth(point.type)} (use bool, int16, uint16 or omit type)` });
  }
  if (point.type === 'string' && point.length === undefined && !bitFc && point.bit === undefined) {
    out.push({ key: 'length', message: 'type string needs length, the number of registers (two characters each)' });
  }
  if (point.length !== undefined && type !== 'string') {
    out.push({ key: 'length', message: `length applies only to type string, not ${type}` });
  }
  if (EIGHT_LETTER_ORDERS.has(point.order) && !SIXTY_FOUR_BIT_TYPES.includes(type)) {
    out.push({ key: 'order', message: `${point.order} is a 64-bit order; ${type} takes ABCD, CDAB, BADC or DCBA` });
  }

  const width = resolvedWidth(point);
  if (point.address! + width - 1 > 65535) {
    out.push({ key: 'address', message: `${type} at ${point.address} spans ${width} registers and runs past 65535` });
  }
  if (!bitFc && width > device.maxRegistersPerRequest) {
    out.push({
      key: type === 'string' ? 'length' : 'type',
      message: `${type} spans ${width} registers, more than the device's maxRegistersPerRequest (${device.maxRegistersPerRequest})`,
    });
  }
  return out;
}

function describeWidth(type: string): string {
  if (type === 'string') return 'text spanning registers';
  return SIXTY_FOUR_BIT_TYPES.includes(type as never) ? '64-bit' : '32-bit';
}

const FC_WORDS: Record<number, [string, string]> = {
  1: ['coil', 'coils'],
  2: ['discrete input', 'discrete inputs'],
  3: ['holding register', 'holding registers'],
  4: ['input register', 'input registers'],
};

/**
 * Why `later` reads data `earlier` already reads, or undefined. Words overlap when their register ranges
 * intersect; bits of registers when register and bit are equal. A bit and a word on one register do not
 * clash: a status word read whole and also split into named flags is the usual pattern.
 */
function overlap(earlier: PointConfig, later: PointConfig): string | undefined {
  if (earlier.fc !== later.fc) return undefined;
  const [one, many] = FC_WORDS[later.fc];
  if (isBitFc(later.fc)) {
    return earlier.address === later.address ? `${one} ${later.address} is also read by` : undefined;
  }
  const earlierBit = earlier.bit !== undefined;
  const laterBit = later.bit !== undefined;
  if (earlierBit !== laterBit) return undefined;
  if (laterBit) {
    return earlier.address === later.address && earlier.bit === later.bit
      ? `bit ${later.bit} of ${one} ${later.address} is also read by`
      : undefined;
  }
  // Only points with an address get here (checkPoints returns early otherwise).
  const a0 = earlier.address!;
  const a1 = a0 + resolvedWidth(earlier) - 1;
  const b0 = later.address!;
  const b1 = b0 + resolvedWidth(later) - 1;
  if (b0 > a1 || a0 > b1) return undefined;
  return `${many} ${range(b0, b1)} overlap ${range(a0, a1)}, read by`;
}

function range(from: number, to: number): string {
  return from === to ? `${from}` : `${from}-${to}`;
}
