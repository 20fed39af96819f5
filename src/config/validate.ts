/**
 * Cross-field rules the schema cannot express: points that do not fit the Modbus data model or overlap, line
 * devices and buses, processing keys, the status address. Pure: takes a config the schema accepted and returns
 * every problem with the path of the key to blame; the loader turns paths into line and column. The references
 * between sections and the keys each source kind requires or refuses are checked on the raw document
 * (raw-rules.ts), so they are reported in the same pass as schema errors; `partialIssues` runs these rules on
 * the parts of a refused document the schema accepts on their own.
 */
import { busSchema, deviceSchema, statusSchema, uplinkSchema, type BusConfig, type Config, type DeviceConfig, type PointConfig, type UplinkConfig } from './schema.js';
import { isBitFc } from './modbus-model.js';
import { resolvedType, resolvedWidth, SIXTY_FOUR_BIT_TYPES } from './points.js';
import type { IssuePath, RuleIssue } from './issues.js';
import { deviceKinds, isRaw, listOf, type SourceKind } from './kinds.js';
import { referenceIssues } from './raw-rules.js';
import { checkLineBus, checkLineDevice, checkProcessing } from './validate-line.js';
import { checkStatusConfig } from './listen.js';
import { checkWrite } from './validate-write.js';

export { resolvedType, resolvedWidth } from './points.js';
export type { IssuePath, RuleIssue } from './issues.js';

const SIXTEEN_BIT_TYPES = new Set(['bool', 'int16', 'uint16']);
const EIGHT_LETTER_ORDERS = new Set(['ABCDEFGH', 'GHEFCDAB', 'BADCFEHG', 'HGFEDCBA']);

export function validateConfig(config: Config): RuleIssue[] {
  const issues = referenceIssues(config);
  const kindOf = deviceKinds(config);
  config.buses.forEach((bus, b) => checkBus(bus, ['buses', b], issues));
  config.devices.forEach((device, d) => checkDevice(device, kindOf(device), ['devices', d], issues));
  checkStatusConfig(config.status, issues);
  if (config.uplink) checkUplink(config.uplink, issues);
  const rc = config.remoteConfig;
  if (rc?.enabled && rc.publicKeyFile === undefined) issues.push({ path: ['remoteConfig', 'publicKeyFile'], message: 'is required with enabled: true (the Ed25519 public key that checks every pushed file)' });
  if (rc?.enabled && config.uplink?.profile === 'sparkplug') issues.push({ path: ['remoteConfig', 'enabled'], message: 'remote configuration comes over the fieldgate profile only; with uplink.profile: sparkplug push the file another way' });
  return issues;
}

/** The sparkplug block goes with profile: sparkplug, and only with it. */
function checkUplink(uplink: UplinkConfig, issues: RuleIssue[]): void {
  if (uplink.profile === 'sparkplug' && !uplink.sparkplug) issues.push({ path: ['uplink', 'sparkplug'], message: 'is required with profile: sparkplug (at least groupId)' });
  if (uplink.profile !== 'sparkplug' && uplink.sparkplug) issues.push({ path: ['uplink', 'sparkplug'], message: 'applies only with profile: sparkplug' });
}

/**
 * The rules of a document the schema refused, so one pass lists them with the schema errors: references on
 * its raw ids, the rest on each bus, device and status section the schema accepts on its own.
 */
export function partialIssues(data: unknown): RuleIssue[] {
  const issues = referenceIssues(data);
  const doc = isRaw(data) ? data : {};
  const kindOf = deviceKinds(doc);
  listOf(doc.buses).forEach((raw, b) => {
    const bus = busSchema.safeParse(raw);
    if (bus.success) checkBus(bus.data, ['buses', b], issues);
  });
  listOf(doc.devices).forEach((raw, d) => {
    const device = deviceSchema.safeParse(raw);
    if (device.success) checkDevice(device.data, kindOf(raw), ['devices', d], issues);
  });
  const status = doc.status === undefined ? undefined : statusSchema.safeParse(doc.status);
  if (status?.success) checkStatusConfig(status.data, issues);
  const uplink = doc.uplink === undefined ? undefined : uplinkSchema.safeParse(doc.uplink);
  if (uplink?.success) checkUplink(uplink.data, issues);
  return issues;
}

function checkBus(bus: BusConfig, at: IssuePath, issues: RuleIssue[]): void {
  if (bus.transport === 'line') checkLineBus(bus, at, issues);
  // A line bus backs off a silent device with the same schedule as a Modbus bus (sources/schedule.ts).
  for (const [min, max] of [['reconnectMinMs', 'reconnectMaxMs'], ['unitBackoffMinMs', 'unitBackoffMaxMs']] as const) {
    if (bus[min] > bus[max]) issues.push({ path: [...at, min], message: `${min} (${bus[min]}) must not exceed ${max} (${bus[max]})` });
  }
}

/** A device on an unknown bus has no kind: only its processing keys are checked (the bus is reported). */
function checkDevice(device: DeviceConfig, kind: SourceKind | undefined, at: IssuePath, issues: RuleIssue[]): void {
  if (kind === 'line') checkLineDevice(device, at, issues);
  else if (kind === 'modbus') checkPoints(device, at, issues);
  device.points.forEach((point, p) => checkProcessing(point, [...at, 'points', p], issues));
}

function checkPoints(device: DeviceConfig, devicePath: IssuePath, issues: RuleIssue[]): void {
  const readers = new FirstReaders();
  device.points.forEach((point, p) => {
    const at = (key: string): IssuePath => [...devicePath, 'points', p, key];
    if (point.address === undefined) return; // reported with the schema errors (requiredByTransport)
    for (const { key, message } of pointShapeProblems(point, device)) issues.push({ path: at(key), message });
    checkWrite(point, [...devicePath, 'points', p], issues);

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
