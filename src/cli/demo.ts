import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../paths.js';
import { Option, type Command } from 'commander';
import { parse } from 'yaml';
import { configSchema, type Config } from '../config/schema.js';
import { Supervisor } from '../supervisor/supervisor.js';
import { LastValues } from '../last-values.js';
import { StatusSurface } from '../status/surface.js';
import type { Gateway } from '../gateway.js';
import { createLogger } from '../log.js';
import { startEmbeddedBroker } from '../sim/broker.js';
import { startSite, type RunningSite } from '../sim/site.js';

const CONFIG_DIR = join(PACKAGE_ROOT, 'config');

/** A shipped configuration pointed at the ports its simulated site really got; bus ids made unique. */
function shipped(file: string, prefix: string, site: RunningSite): Pick<Config, 'buses' | 'devices'> {
  const raw = parse(readFileSync(join(CONFIG_DIR, file), 'utf8')) as { buses: Array<Record<string, unknown>>; devices: Array<Record<string, unknown>> };
  const ports: Record<string, number | undefined> = { sim: site.modbus.tcpPort, gas: site.lines.gas?.tcpPort, laser: site.lines.laser?.tcpPort };
  return {
    buses: raw.buses.map((b) => ({ ...b, id: `${prefix}-${String(b.id)}`, host: '127.0.0.1', port: ports[String(b.id)] ?? b.port })) as Config['buses'],
    devices: raw.devices.map((d) => ({ ...d, bus: `${prefix}-${String(d.bus)}` })) as Config['devices'],
  };
}

/** The default ports when free, any free ones otherwise (a second demo, or a simulator already running). */
async function startDemoSite(scenario: 'village-water' | 'tunnel', port: number, linePorts?: { gas: number; laser: number }): Promise<RunningSite> {
  try {
    return await startSite({ scenario, tcpPort: port, linePorts });
  } catch {
    return startSite({ scenario, tcpPort: 0, linePorts: { gas: 0, laser: 0 } });
  }
}

export function register(program: Command): void {
  program
    .command('demo')
    .summary('run everything on this machine: simulators, an embedded MQTT broker and the gateway')
    .option('--data-dir <dir>', 'where the demo gateway keeps its outbox', './data/demo')
    .option('--mqtt-port <port>', 'embedded broker port (a free one if taken)', '1883')
    .option('--status <host:port>', 'status page address (a free port if taken)', '127.0.0.1:8080')
    .addOption(new Option('--log-level <level>', 'log level').choices(['trace', 'debug', 'info', 'warn', 'error']).default('info'))
    .addHelpText('after', '\nNo hardware needed. Watch the data from another terminal:\n  npx fieldgate tail mqtt://127.0.0.1:1883\n\nExample:\n  npm start')
    .action(async (flags: { dataDir: string; mqttPort: string; status: string; logLevel: string }) => {
      const logger = createLogger(flags.logLevel as 'info');
      const village = await startDemoSite('village-water', 1502);
      const tunnel = await startDemoSite('tunnel', 1503, { gas: 1510, laser: 1511 });
      const broker = await startEmbeddedBroker('127.0.0.1', Number(flags.mqttPort));
      const v = shipped('village-water.yaml', 'village', village);
      const t = shipped('tunnel.yaml', 'tunnel', tunnel);
      const config = configSchema.parse({
        gateway: { id: 'demo', dataDir: flags.dataDir },
        buses: [...v.buses, ...t.buses],
        devices: [...v.devices, ...t.devices],
        // The embedded broker (aedes) speaks MQTT 3.1.1.
        uplink: { url: broker.url, protocolVersion: 4 },
        status: { listen: flags.status },
      });
      // One last-value cache for the process: the gateways feed it, the page and the births read it.
      const lastValues = new LastValues();
      const status: StatusSurface = new StatusSurface({ gateway: (): Gateway => supervisor.gateway, logger, lastValues, anyPortIfTaken: true });
      const supervisor = new Supervisor(config, { logger, lastValues, hooks: status.hooks, beforeStop: () => status.close() });
      await supervisor.enqueue('starting the status page', () => status.apply(config.status));
      process.stdout.write(
        [
          '',
          'fieldgate demo is running',
          `  status page  ${status.url ? `${status.url}/   (health ${status.url}/healthz, metrics ${status.url}/metrics)` : 'not started: see the log above'}`,
          `  simulators   village-water on tcp://127.0.0.1:${village.modbus.tcpPort}; tunnel on tcp://127.0.0.1:${tunnel.modbus.tcpPort},`,
          `               its gas detector on :${tunnel.lines.gas?.tcpPort} and convergence laser on :${tunnel.lines.laser?.tcpPort} (line protocol)`,
          `  MQTT broker  ${broker.url}   (topics fieldgate/demo/#)`,
          `  watch        npx fieldgate tail ${broker.url}`,
          `  read         npx fieldgate read tcp://127.0.0.1:${village.modbus.tcpPort} --unit 3 --type float32 --order CDAB --address 0`,
          `  pipe burst   npx fieldgate write tcp://127.0.0.1:${village.modbus.tcpPort} --unit 1 --fc 5 --address 100 --value 1`,
          `  gas alarm    npx fieldgate write tcp://127.0.0.1:${tunnel.modbus.tcpPort} --unit 1 --fc 5 --address 100 --value 1`,
          `  stop pump    npx fieldgate command --data-dir ${flags.dataDir} --device pump_house --point pump_enable --value off   (through the guard and audit)`,
          `  alarms       npx fieldgate alarms list --data-dir ${flags.dataDir}   (ack a latched one: fieldgate alarms ack --data-dir ... --device D --point P --alarm A)`,
          '  stop         Ctrl-C',
          '',
        ].join('\n') + '\n',
      );
      const stop = () => {
        process.stdout.write('stopping...\n');
        void supervisor.stop('signal');
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      const exitCode = await supervisor.done;
      await Promise.all([broker.close(), village.close(), tunnel.close()]);
      logger.flush();
      if (exitCode !== 0) process.exit(exitCode);
    });
}
