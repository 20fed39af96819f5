import { Option, type Command } from 'commander';
import { loadConfig } from '../config/load.js';
import { UserError } from '../errors.js';
import { startGateway, type Gateway, type GatewayOptions } from '../gateway.js';
import { createLogger, type Logger } from '../log.js';
import { StatusSurface } from '../status/surface.js';
import { systemdNotifier } from '../systemd.js';

/** SIGHUP: validate first; keep the running configuration on any error; else apply in place or restart. */
async function reload(file: string, current: Gateway, logger: Logger, hooks: GatewayOptions): Promise<Gateway> {
  let next;
  try {
    next = loadConfig(file);
  } catch (err) {
    if (!(err instanceof UserError)) throw err;
    logger.error({ errors: err.details }, `reload refused, still running the previous configuration: ${err.message}`);
    for (const line of err.details) logger.error(line);
    return current;
  }
  if ((await current.reload(next)) === 'applied') return current;
  // The identity, the outbox or the MQTT session changed: a clean stop (nothing committed is lost) and a start.
  logger.info('uplink, buffer or gateway settings changed: restarting the gateway with the new configuration');
  await current.stop();
  return startGateway(next, logger, hooks);
}

export function register(program: Command): void {
  program
    .command('run')
    .summary('run the gateway on a configuration file')
    .requiredOption('-c, --config <file>', 'configuration file (YAML)')
    .addOption(new Option('--log-level <level>', 'log level').choices(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'))
    .addHelpText(
      'after',
      `
The file is validated first; an invalid file is refused with every error listed (exit 2).
The status page, /healthz and /metrics are served on status.listen (default http://127.0.0.1:8080).
Signals: SIGTERM/SIGINT stop cleanly (exit 0); SIGHUP reloads the file (an invalid one is refused and the
running configuration kept). Under systemd it reports readiness and pings the watchdog.

Example:
  fieldgate run -c /etc/fieldgate/config.yaml`,
    )
    .action(async (flags: { config: string; logLevel: string }) => {
      const config = loadConfig(flags.config);
      const logger = createLogger(flags.logLevel as 'info');
      // A port, socket or device must never take the daemon down: log what escaped and keep polling.
      process.on('unhandledRejection', (err) => logger.error({ err }, 'unhandled rejection (kept running)'));
      process.on('uncaughtException', (err) => logger.error({ err }, 'uncaught exception (kept running)'));
      const notify = systemdNotifier(logger);
      const status = new StatusSurface({ gateway: () => gateway, logger });
      let gateway = startGateway(config, logger, status.hooks);
      let reloading = Promise.resolve();
      // Signal handlers before anything is awaited: a SIGTERM during start-up must still stop cleanly.
      const stopped = new Promise<void>((resolve) => {
        const stop = (signal: string) => {
          logger.info({ signal }, 'stopping');
          notify.stopping();
          // The page goes first: it must not report a gateway that is closing its outbox.
          void reloading
            .then(() => status.close())
            .then(() => gateway.stop())
            .then(resolve);
        };
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
      process.on('SIGHUP', () => {
        logger.info({ file: flags.config }, 'SIGHUP: reloading the configuration');
        reloading = reloading.then(async () => {
          gateway = await reload(flags.config, gateway, logger, status.hooks);
          await status.apply(gateway.config.status);
        });
      });
      reloading = reloading.then(() => status.apply(config.status));
      await reloading;
      notify.ready(`polling ${config.devices.length} devices on ${config.buses.length} buses`);
      await stopped;
      notify.close();
      logger.flush();
    });
}
