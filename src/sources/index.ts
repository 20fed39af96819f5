/** Builds the source of each bus by its driver (registry.ts); the shared types are in types.ts. */
import type { BusConfig, DeviceConfig } from '../config/schema.js';
import { factoryFor } from './registry.js';

export type { DeviceHealth, LinkState, Source, SourceDeps, WriteOutcome, WriteRequest } from './types.js';
import type { Source, SourceDeps } from './types.js';
export { loadDrivers, loadingSource } from './registry.js';

/** Synchronous, so a reload swaps its sources between two awaits: `await loadDrivers(buses)` first. */
export function createSource(bus: BusConfig, devices: DeviceConfig[], deps: SourceDeps): Source {
  return factoryFor(bus)(bus, devices, deps);
}
