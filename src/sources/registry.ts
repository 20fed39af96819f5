/**
 * Which driver builds the source of a bus: one entry per source kind, the kind of a transport decided by
 * config/kinds.ts alone (transportKind), so the configuration and the sources cannot disagree. A driver's module
 * is imported only when a bus of its kind is configured: a gateway with only Modbus buses never loads the line
 * driver (nor serialport through it), and the reverse; the bundle (esbuild --splitting) gives each its own chunk.
 *
 * A new source kind: its keys in config/kinds.ts (SourceKind, transportKind, KIND_KEYS), its bus schema in
 * config/, its folder beside modbus/ and line/ with a class implementing Source (types.ts), and here its loader
 * in LOADERS and its transports in TRANSPORTS.
 */
import { transportKind, type SourceKind } from '../config/kinds.js';
import type { BusConfig, DeviceConfig, LineBusConfig, ModbusBusConfig } from '../config/schema.js';
import type { Source, SourceDeps } from './types.js';

export type Transport = BusConfig['transport'];
export type SourceFactory = (bus: BusConfig, devices: DeviceConfig[], deps: SourceDeps) => Source;

export interface SourceDriver {
  readonly kind: SourceKind;
  readonly transports: readonly Transport[];
  /** Imports the driver's module the first time; later calls get the same factory. */
  load(): Promise<SourceFactory>;
}

/** Every transport the bus schema takes: `satisfies` fails the type check when the schema gains or drops one. */
export const TRANSPORTS = Object.keys({ rtu: 0, tcp: 0, 'rtu-over-tcp': 0, line: 0 } satisfies Record<Transport, 0>) as Transport[];

// A factory is only handed buses of its own kind (driverFor chose it by the transport), hence the casts.
const LOADERS: Record<SourceKind, () => Promise<SourceFactory>> = {
  modbus: async () => {
    const [{ ModbusBus }, { compileDevice }] = await Promise.all([import('./modbus/bus.js'), import('./modbus/device.js')]);
    // ModbusBus keeps its bus as `config` only; the gateway and the status page find a source by its id.
    return (bus, devices, deps) => Object.assign(new ModbusBus(bus as ModbusBusConfig, devices.map(compileDevice), deps), { id: bus.id });
  },
  line: async () => {
    const { LineBus } = await import('./line/bus.js');
    return (bus, devices, deps) => new LineBus(bus as LineBusConfig, devices, deps);
  },
};

/** Asked for (import started) and loaded (factory ready), by kind. */
const pending = new Map<SourceKind, Promise<SourceFactory>>();
const factories = new Map<SourceKind, SourceFactory>();

function load(kind: SourceKind): Promise<SourceFactory> {
  let loading = pending.get(kind);
  if (!loading) {
    loading = LOADERS[kind]().then(
      (factory) => (factories.set(kind, factory), factory),
      (err: unknown) => {
        // A failed import is not cached: the next start or reload tries again.
        pending.delete(kind);
        throw err;
      },
    );
    pending.set(kind, loading);
  }
  return loading;
}

export const SOURCE_DRIVERS: readonly SourceDriver[] = (Object.keys(LOADERS) as SourceKind[]).map((kind) => ({
  kind,
  transports: TRANSPORTS.filter((t) => transportKind(t) === kind),
  load: () => load(kind),
}));

/** The driver of a bus; validation refuses unknown transports, but a bus built in code may still carry one. */
export function driverFor(bus: { id: string; transport: unknown }): SourceDriver {
  const kind = transportKind(bus.transport);
  const driver = SOURCE_DRIVERS.find((d) => d.kind === kind);
  if (!driver) throw new Error(`bus ${bus.id}: no source driver for transport ${JSON.stringify(bus.transport)} (known: ${TRANSPORTS.join(', ')})`);
  return driver;
}

/** Loads the drivers these buses need, and no other: call before createSource, which is synchronous. */
export async function loadDrivers(buses: readonly { id: string; transport: unknown }[]): Promise<void> {
  const kinds = new Set(buses.map((b) => driverFor(b).kind));
  await Promise.all([...kinds].map(load));
}

/** The loaded factory of a bus's kind; throws, naming the bus, when loadDrivers did not load it. */
export function factoryFor(bus: { id: string; transport: unknown }): SourceFactory {
  const { kind } = driverFor(bus);
  const factory = factories.get(kind);
  if (!factory) throw new Error(`bus ${bus.id}: the ${kind} source driver is not loaded (loadDrivers first)`);
  return factory;
}

/**
 * Stands in for a bus's source while its driver loads (once per kind, a few ms), so the gateway lists every bus
 * from the start as a bus built but not yet connected would be: link down, its devices not polled yet.
 */
export function loadingSource(bus: { id: string }, devices: readonly { id: string }[]): Source {
  return {
    id: bus.id,
    linkState: 'disconnected',
    health: () => devices.map((d) => ({ device: d.id, state: 'unknown', requests: 0, errors: {}, backoffMs: 0 })),
    start: () => {},
    stop: async () => {},
  };
}

/** Kinds whose driver module has been imported: what the tests check to see that loading is lazy. */
export function loadedKinds(): SourceKind[] {
  return [...factories.keys()];
}
