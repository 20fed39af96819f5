/**
 * Rules run on the raw parsed document, beside the schema, so their problems are listed in the same pass as
 * every schema error: which keys a device's kind requires and refuses, and the references between sections
 * (unique ids, the bus a device names, one unit id per bus, one bus per serial port). They read only values
 * of the right type and skip the rest, which the schema reports.
 */
import type { RuleIssue } from './issues.js';
import { deviceKinds, isRaw, KIND_KEYS, listOf, type SourceKind } from './kinds.js';

/** A Modbus device needs `unit` and its points `address`; a line device needs neither. */
export function requiredByTransport(data: unknown): RuleIssue[] {
  const issues: RuleIssue[] = [];
  const kindOf = deviceKinds(data);
  listOf(isRaw(data) ? data.devices : undefined).forEach((device, d) => {
    // An unknown bus is reported by referenceIssues; without a kind nothing more is required.
    if (!isRaw(device) || kindOf(device) !== 'modbus') return;
    if (device.unit === undefined) issues.push({ path: ['devices', d, 'unit'], message: 'is required: the Modbus unit id (1-247)' });
    listOf(device.points).forEach((point, p) => {
      if (isRaw(point) && point.address === undefined) issues.push({ path: ['devices', d, 'points', p, 'address'], message: 'is required' });
    });
  });
  return issues;
}

const DEVICE_COMMON = 'besides id, bus, pollIntervalMs and points';
const POINT_COMMON = 'type, scale, offset, unit, description and the processing keys';

/** Why a key of the other kind is refused, in the words of the kind the device is. */
function foreignMessage(kind: SourceKind, level: 'device' | 'point', key: string): string {
  if (kind === 'line' && level === 'device') {
    if (key === 'unit') return 'unit is a Modbus unit id; a device on a line bus has none';
    return `${key} is a Modbus key; a line-sensor device takes ${KIND_KEYS.line.device.join(', ')} (${DEVICE_COMMON})`;
  }
  if (kind === 'line') {
    if (key === 'write') return 'write applies to Modbus coils and holding registers; a line sensor only reports its readings';
    if (key === 'fc' || key === 'order') return `${key} is a Modbus key; a line-sensor point takes field, ${POINT_COMMON}`;
    return `${key} applies to Modbus points; a line point is read from its field`;
  }
  if (level === 'device') return `${key} is a line-sensor key; a Modbus device takes ${KIND_KEYS.modbus.device.join(', ')} (${DEVICE_COMMON})`;
  return `${key} applies to line-sensor points; a Modbus point is read by fc and address`;
}

/** Keys of the other kind on a device or its points: each kind owns its keys and refuses the other's. */
export function foreignKeyIssues(data: unknown): RuleIssue[] {
  const issues: RuleIssue[] = [];
  const kindOf = deviceKinds(data);
  listOf(isRaw(data) ? data.devices : undefined).forEach((device, d) => {
    const kind = kindOf(device);
    if (!isRaw(device) || kind === undefined) return;
    const other = KIND_KEYS[kind === 'line' ? 'modbus' : 'line'];
    for (const key of other.device) if (key in device) issues.push({ path: ['devices', d, key], message: foreignMessage(kind, 'device', key) });
    listOf(device.points).forEach((point, p) => {
      if (!isRaw(point)) return;
      for (const key of other.point) if (key in point) issues.push({ path: ['devices', d, 'points', p, key], message: foreignMessage(kind, 'point', key) });
    });
  });
  return issues;
}

/** Unique bus, device and point ids, the bus each device names, one unit id per Modbus bus, one bus per serial port. */
export function referenceIssues(data: unknown): RuleIssue[] {
  const issues: RuleIssue[] = [];
  const doc = isRaw(data) ? data : {};
  const busIds = new Map<string, number>();
  const serialPorts = new Map<string, string>();
  listOf(doc.buses).forEach((bus, b) => {
    if (!isRaw(bus) || typeof bus.id !== 'string') return;
    const first = busIds.get(bus.id);
    if (first !== undefined) issues.push({ path: ['buses', b, 'id'], message: `duplicate bus id "${bus.id}" (also buses[${first}])` });
    else busIds.set(bus.id, b);
    if (bus.transport !== 'rtu' || typeof bus.port !== 'string' || bus.port === '') return;
    const owner = serialPorts.get(bus.port);
    if (owner !== undefined) issues.push({ path: ['buses', b, 'port'], message: `serial port ${JSON.stringify(bus.port)} is already used by bus "${owner}"` });
    else serialPorts.set(bus.port, bus.id);
  });

  const kindOf = deviceKinds(doc);
  const ids = new Map<string, number>();
  const units = new Map<string, string>();
  listOf(doc.devices).forEach((device, d) => {
    if (!isRaw(device)) return;
    if (typeof device.id === 'string') {
      const first = ids.get(device.id);
      if (first !== undefined) issues.push({ path: ['devices', d, 'id'], message: `duplicate device id "${device.id}" (also devices[${first}])` });
      else ids.set(device.id, d);
    }
    const pointIds = new Map<string, number>();
    listOf(device.points).forEach((point, p) => {
      if (!isRaw(point) || typeof point.id !== 'string') return;
      const first = pointIds.get(point.id);
      if (first !== undefined) issues.push({ path: ['devices', d, 'points', p, 'id'], message: `duplicate point id "${point.id}" (also points[${first}])` });
      else pointIds.set(point.id, p);
    });
    if (typeof device.bus !== 'string') return; // the schema reports a missing or malformed bus
    if (!busIds.has(device.bus)) {
      const known = busIds.size ? `defined buses: ${[...busIds.keys()].join(', ')}` : 'no buses are defined';
      issues.push({ path: ['devices', d, 'bus'], message: `no bus "${device.bus}"; ${known}` });
      return;
    }
    // A unit the schema refuses (300, "1") is reported there; on a line bus a unit is refused by kind.
    const unit = device.unit;
    if (kindOf(device) !== 'modbus' || typeof unit !== 'number' || !Number.isInteger(unit) || unit < 1 || unit > 247) return;
    const key = `${device.bus}\u0000${unit}`;
    const owner = units.get(key);
    if (owner !== undefined) issues.push({ path: ['devices', d, 'unit'], message: `unit ${unit} on bus "${device.bus}" is already used by device "${owner}"` });
    else if (typeof device.id === 'string') units.set(key, device.id);
  });
  return issues;
}
