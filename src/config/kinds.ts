/**
 * Which kind of source a device is, and which keys each kind owns. The kind follows the transport of the bus
 * the device names (line -> line sensor; rtu, tcp, rtu-over-tcp -> Modbus), decided here only: guessing it
 * from the device's own keys (`parse:`) let a Modbus point on a line bus, or the reverse, pass half-checked.
 */
import { modbusDeviceKeys, modbusPointKeys, linePointKeys } from './schema.js';
import { lineDeviceKeys } from './processing-schema.js';

export type SourceKind = 'modbus' | 'line';

export function transportKind(transport: unknown): SourceKind | undefined {
  if (transport === 'line') return 'line';
  if (transport === 'rtu' || transport === 'tcp' || transport === 'rtu-over-tcp') return 'modbus';
  return undefined;
}

type Raw = Record<string, unknown>;
export const isRaw = (x: unknown): x is Raw => typeof x === 'object' && x !== null && !Array.isArray(x);
export const listOf = (x: unknown): unknown[] => (Array.isArray(x) ? x : []);

/**
 * The kind of every device of a configuration, or of a raw document the schema has not accepted. A device
 * naming a bus that does not exist (reported as such) still has a kind when every defined bus has the same
 * one: whichever bus it was meant for, its keys can be checked in the same pass. Otherwise, and for a bus
 * without a known transport, undefined. With duplicate bus ids (also reported) the first bus decides.
 * Build once per document: one map of the buses, then a lookup per device.
 */
export function deviceKinds(config: unknown): (device: unknown) => SourceKind | undefined {
  const kinds = new Map<unknown, SourceKind | undefined>();
  for (const bus of listOf(isRaw(config) ? config.buses : undefined)) {
    if (isRaw(bus) && !kinds.has(bus.id)) kinds.set(bus.id, transportKind(bus.transport));
  }
  const all = new Set(kinds.values());
  const only = all.size === 1 ? [...all][0] : undefined;
  return (device) => {
    if (!isRaw(device)) return undefined;
    return kinds.has(device.bus) ? kinds.get(device.bus) : only;
  };
}

export function deviceKind(config: unknown, device: unknown): SourceKind | undefined {
  return deviceKinds(config)(device);
}

/** Keys only one kind takes, at device and at point level; every other key is common to both. */
export const KIND_KEYS: Record<SourceKind, { device: readonly string[]; point: readonly string[] }> = {
  modbus: { device: Object.keys(modbusDeviceKeys), point: Object.keys(modbusPointKeys) },
  line: { device: Object.keys(lineDeviceKeys), point: Object.keys(linePointKeys) },
};
