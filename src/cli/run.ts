import { Option, type Command } from 'commander';
import { loadConfig } from '../config/load.js';
import { startGateway } from '../gateway.js';
import { createLogger } from '../log.js';

export function register(program: Command): void {
  program
    .command('run')
    .summary('run the gateway on a configuration file')
    .requiredOption('-c, --config <file>', 'configuration file (YAML)')
    .addOption(new Option('--log-level <level>', 'log level').choices(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'))
    .addHelpText('after', '\nThe file is validated first; an invalid file is refused with every error listed (exit 2).\n\nExample:\n  fieldgate run -c /etc/fieldgate/config.yaml')
    .action(async (flags: { config: string; logLevel: string }) => {
      const config = loadConfig(flags.config);
      const logger = createLogger(flags.logLevel as 'info');
      // A port, socket or device must never take the daemon down: log what escaped and keep polling.
      process.on('unhandledRejection', (err) => logger.error({ err }, 'unhandled rejection (kept running)'));
      process.on('uncaughtException', (err) => logger.error({ err }, 'uncaught exception (kept running)'));
      const gateway = startGateway(config, logger);
      await new Promise<void>((resolve) => {
        const stop = (signal: string) => {
          logger.info({ signal }, 'stopping');
          void gateway.stop().then(resolve);
        };
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
      logger.flush();
    });
}
