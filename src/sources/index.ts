/**
 * A source is one bus with its devices: it emits samples into a sink and never throws to its caller. The
 * gateway only knows this interface; each transport family has its own scheduler.
 */
import type { BusConfig, DeviceConfig } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { Sample } from '../sample.js';
import { ModbusBus, type DeviceHealth, type LinkState } from './bus.js';
import { compileDevice } from './modbus/device.js';
import { LineBus } from './line/bus.js';

export interface Source {
  readonly id: string;
  readonly linkState: LinkState;
  health(): DeviceHealth[];
  start(): void;
  stop(): Promise<void>;
}

export interface SourceDeps {
  logger: Logger;
  sink: (samples: Sample[]) => void;
}

export function createSource(bus: BusConfig, devices: DeviceConfig[], deps: SourceDeps): Source {
  if (bus.transport === 'line') return new LineBus(bus, devices, deps);
  const source = new ModbusBus(bus, devices.map(compileDevice), deps);
  return Object.assign(source, { id: bus.id });
}
