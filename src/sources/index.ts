/** Builds the source of each bus by its transport; the shared types are in types.ts. */
import type { BusConfig, DeviceConfig } from '../config/schema.js';
import { ModbusBus } from './modbus/bus.js';
import { compileDevice } from './modbus/device.js';
import { LineBus } from './line/bus.js';

export type { DeviceHealth, LinkState, Source, SourceDeps, WriteOutcome, WriteRequest } from './types.js';
import type { Source, SourceDeps } from './types.js';

export function createSource(bus: BusConfig, devices: DeviceConfig[], deps: SourceDeps): Source {
  if (bus.transport === 'line') return new LineBus(bus, devices, deps);
  const source = new ModbusBus(bus, devices.map(compileDevice), deps);
  return Object.assign(source, { id: bus.id });
}
