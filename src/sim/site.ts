/**
 * A whole simulated site: the scenario's Modbus devices and, for the tunnel, its line-protocol instruments (a
 * gas detector talking NMEA sentences and a convergence laser answering queries) behind TCP ports, as serial
 * device servers would present them. The scenario's event (burst, gas excursion) reaches every device.
 */
import type { Logger } from '../log.js';
import { startLineSimulator, type RunningLineSimulator } from './line/server.js';
import { createScenario, type ScenarioName } from './scenarios/index.js';
import { startSimulator, type RunningSimulator, type SerialOptions } from './server.js';
import type { Clock } from './simulator.js';

export const DEFAULT_LINE_PORTS = { gas: 1510, laser: 1511 } as const;

export interface SiteOptions {
  scenario: ScenarioName;
  host?: string;
  /** Modbus TCP port (0: any free one); undefined: no TCP. */
  tcpPort?: number;
  serial?: SerialOptions;
  /** TCP ports of the tunnel's line instruments (0: any free one). */
  linePorts?: { gas: number; laser: number };
  clock?: Clock;
  seed?: number;
  log?: Logger;
}

export interface RunningSite {
  modbus: RunningSimulator;
  /** The tunnel's line instruments by kind (empty for village-water). */
  lines: Partial<Record<'gas' | 'laser', RunningLineSimulator>>;
  event: 'burst' | 'gas';
  trigger(event: 'start' | 'clear'): void;
  close(): Promise<void>;
}

export async function startSite(opts: SiteOptions): Promise<RunningSite> {
  const host = opts.host ?? '127.0.0.1';
  const scenario = createScenario(opts.scenario, { seed: opts.seed });
  const modbus = await startSimulator({
    scenario,
    tcp: opts.tcpPort === undefined ? undefined : { host, port: opts.tcpPort },
    serial: opts.serial,
    clock: opts.clock,
    log: opts.log,
  });
  const lines: RunningSite['lines'] = {};
  try {
    if (opts.scenario === 'tunnel') {
      const ports = opts.linePorts ?? DEFAULT_LINE_PORTS;
      lines.gas = await startLineSimulator({ device: 'gas', tcp: { host, port: ports.gas }, clock: opts.clock, seed: opts.seed });
      lines.laser = await startLineSimulator({ device: 'laser', tcp: { host, port: ports.laser }, clock: opts.clock, seed: opts.seed });
    }
  } catch (err) {
    await Promise.all([modbus.close(), ...Object.values(lines).map((l) => l.close())]);
    throw err;
  }
  // A coil write or a signal starts the event on the Modbus side; the line instruments follow it.
  modbus.simulator.on('event', (active) => lines.gas?.trigger(active ? 'gas' : 'clear'));
  return {
    modbus,
    lines,
    event: scenario.event as 'burst' | 'gas',
    trigger(event) {
      modbus.trigger(event === 'start' ? scenario.event : 'clear');
    },
    async close() {
      await Promise.all([modbus.close(), ...Object.values(lines).map((l) => l.close())]);
    },
  };
}
