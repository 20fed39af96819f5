import { Option, type Command } from 'commander';
import { loadConfig } from '../config/load.js';
import { readConfigText } from '../config/read.js';
import type { Config } from '../config/schema.js';
import { RemoteConfig } from '../supervisor/remote-config.js';
import type { Gateway } from '../gateway.js';
import { createLogger } from '../log.js';
import { StatusSurface } from '../status/surface.js';
import { Supervisor } from '../supervisor/supervisor.js';
import { LastValues } from '../last-values.js';
import { systemdNotifier } from '../systemd.js';

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
An outbox that cannot be opened or is found corrupt while running, or a source driver missing from the install,
ends it with one line (exit 1); a deleted outbox file is recreated with a new epoch.

Example:
  fieldgate run -c /etc/fieldgate/config.yaml`,
    )
    .action(async (flags: { config: string; logLevel: string }) => {
      const local = loadConfig(flags.config);
      const logger = createLogger(flags.logLevel as 'info');
      const notify = systemdNotifier(logger);
      // One last-value cache for the process: the gateways feed it, the page and the births read it.
      const lastValues = new LastValues();
      const status: StatusSurface = new StatusSurface({ gateway: (): Gateway => supervisor.gateway, logger, lastValues });
      // Pushed configurations (remoteConfig.enabled): the version that ran last starts, unless this file changed.
      let remote: RemoteConfig | undefined;
      if (local.remoteConfig?.enabled) {
        remote = new RemoteConfig({
          localFile: flags.config,
          local,
          localText: readConfigText(flags.config),
          log: logger.child({ stage: 'remote-config' }),
          enqueue: (what, change) => supervisor.enqueue(what, change),
          apply: (next) => supervisor.apply(next),
          gateway: () => supervisor.gateway,
        });
      }
      const config: Config = remote ? remote.startup() : local;
      const supervisor: Supervisor = new Supervisor(config, {
        logger,
        lastValues,
        hooks: remote ? { ...status.hooks, onConfigDesired: (payload) => remote.desired(payload), onConfigRollback: (v) => remote.rollbackTo(v) } : status.hooks,
        load: () => (remote ? remote.reloaded(loadConfig(flags.config), readConfigText(flags.config)) : loadConfig(flags.config)),
        beforeStop: async () => {
          remote?.stop();
          await status.close();
        },
        afterChange: (next) => status.apply(next.status),
      });
      // A port, socket or device must never take the daemon down: log what escaped and keep polling, unless
      // it is a fatal outbox error. Signal handlers before anything is awaited: a SIGTERM during start-up must
      // still stop cleanly.
      process.on('unhandledRejection', (err) => supervisor.escaped('unhandled rejection', err));
      process.on('uncaughtException', (err) => supervisor.escaped('uncaught exception', err));
      const stop = (signal: string) => {
        notify.stopping();
        void supervisor.stop(signal);
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      process.on('SIGHUP', () => {
        logger.info({ file: flags.config }, 'SIGHUP: reloading the configuration');
        void supervisor.reload();
      });
      await supervisor.enqueue('starting the status page', () => status.apply(config.status));
      if (!supervisor.stopped) notify.ready(`polling ${config.devices.length} devices on ${config.buses.length} buses`);
      const exitCode = await supervisor.done;
      notify.close();
      if (exitCode === 0) return logger.flush();
      // The fatal line must reach the journal before the exit (the log is written asynchronously).
      await new Promise<void>((resolve) => logger.flush(() => resolve()));
      process.exit(exitCode);
    });
}
