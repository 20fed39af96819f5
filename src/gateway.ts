/**
 * The daemon's wiring: sources -> processing -> outbox -> uplink. It owns start and stop order and nothing
 * else; each stage lives in its own folder.
 */
import type { Config } from './config/schema.js';
import type { Logger } from './log.js';
import type { Sample } from './sample.js';
import { ModbusBus } from './sources/bus.js';
import { compileDevice } from './sources/modbus/device.js';

export interface Gateway {
  buses: ModbusBus[];
  stop(): Promise<void>;
}

export interface GatewayOptions {
  /** Where samples go; until the outbox takes them, the daemon logs them. */
  sink?: (samples: Sample[]) => void;
}

export function startGateway(config: Config, logger: Logger, options: GatewayOptions = {}): Gateway {
  const sink = options.sink ?? ((samples: Sample[]) => logger.info({ samples }, 'samples'));
  const buses = config.buses.map((bus) => {
    const devices = config.devices.filter((d) => d.bus === bus.id).map(compileDevice);
    const b = new ModbusBus(bus, devices, { logger, sink });
    b.start();
    return b;
  });
  logger.info({ gateway: config.gateway.id, buses: buses.length, devices: config.devices.length }, 'gateway started');
  let stopping: Promise<void> | undefined;
  return {
    buses,
    stop() {
      stopping ??= Promise.all(buses.map((b) => b.stop())).then(() => logger.info('gateway stopped'));
      return stopping;
    },
  };
}
