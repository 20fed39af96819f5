import { Option, type Command } from 'commander';
import { loadConfig } from '../config/load.js';
import { UserError } from '../errors.js';
import { startGateway, type Gateway, type GatewayOptions } from '../gateway.js';
import { createLogger, type Logger } from '../log.js';
import { OutboxError } from '../outbox/index.js';
import { StatusSurface } from '../status/surface.js';
import { systemdNotifier } from '../systemd.js';

/** Exit code of a runtime failure the daemon cannot continue after (README: 1, the operation failed). */
const FATAL_EXIT = 1;

/** Outbox failures no retry can heal in this process: the service manager restarts it (open checks the file). */
function isFatal(err: unknown): err is OutboxError {
  return err instanceof OutboxError && (err.code === 'OUTBOX_CORRUPT' || err.code === 'OUTBOX_OPEN_FAILED');
}

/** An outbox that cannot be opened is one line and exit 1, not a stack: the cause is the disk or its rights. */
export function startChecked(config: Parameters<typeof startGateway>[0], logger: Logger, hooks: GatewayOptions): Gateway {
  try {
    return startGateway(config, logger, hooks);
  } catch (err) {
    if (err instanceof OutboxError && err.code === 'OUTBOX_OPEN_FAILED') throw new UserError(err.message, FATAL_EXIT);
    throw err;
  }
}

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
  return startChecked(next, logger, hooks);
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
An outbox that cannot be opened, or is found corrupt while running, ends it with one line (exit 1); a
deleted outbox file is recreated with a new epoch.

Example:
  fieldgate run -c /etc/fieldgate/config.yaml`,
    )
    .action(async (flags: { config: string; logLevel: string }) => {
      const config = loadConfig(flags.config);
      const logger = createLogger(flags.logLevel as 'info');
      let fatal: ((err: OutboxError) => void) | undefined;
      // A port, socket or device must never take the daemon down: log what escaped and keep polling. A fatal
      // outbox error is the exception: it ends the process (below), it is not "kept running".
      const escaped = (what: string) => (err: unknown) => {
        if (isFatal(err) && fatal) fatal(err);
        else logger.error({ err }, `${what} (kept running)`);
      };
      process.on('unhandledRejection', escaped('unhandled rejection'));
      process.on('uncaughtException', escaped('uncaught exception'));
      const notify = systemdNotifier(logger);
      const status = new StatusSurface({ gateway: () => gateway, logger });
      let gateway = startChecked(config, logger, status.hooks);
      let reloading = Promise.resolve();
      let exitCode = 0;
      let stopping = false;
      // Signal handlers before anything is awaited: a SIGTERM during start-up must still stop cleanly.
      const stopped = new Promise<void>((resolve) => {
        const stop = (signal: string) => {
          if (stopping) return;
          stopping = true;
          logger.info({ signal }, 'stopping');
          notify.stopping();
          // The page goes first: it must not report a gateway that is closing its outbox.
          void reloading
            .catch(() => {})
            .then(() => status.close())
            .then(() => gateway.stop())
            .catch((err: unknown) => logger.error({ err }, 'stop failed'))
            .then(resolve);
        };
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
        fatal = (err) => {
          if (stopping) return;
          // One line (`systemctl status` shows it); the clean stop still delivers what the link takes.
          logger.fatal({ code: err.code }, `${err.message}; stopping (exit ${FATAL_EXIT})`);
          exitCode = FATAL_EXIT;
          stop('fatal');
        };
      });
      // A restart that cannot open its outbox ends the daemon like a failed start; anything else is logged.
      const failed = (what: string) => (e: unknown) => {
        if (isFatal(e)) fatal?.(e);
        else if (e instanceof UserError) fatal?.(new OutboxError('OUTBOX_OPEN_FAILED', e.message));
        else logger.error({ err: e }, `${what} failed`);
      };
      const onOutbox = (g: Gateway) =>
        g.outbox.onUnusable((err) => {
          if (err.code !== 'OUTBOX_DELETED') return fatal?.(err);
          // Deleted under us: a clean stop drains what the link takes from the unlinked file, the new start recreates it.
          if (stopping || g !== gateway) return;
          reloading = reloading.then(async () => {
            if (stopping) return;
            await g.stop();
            gateway = startChecked(g.config, logger, status.hooks);
            onOutbox(gateway);
          }).catch(failed('recreating the outbox'));
        });
      onOutbox(gateway);
      process.on('SIGHUP', () => {
        logger.info({ file: flags.config }, 'SIGHUP: reloading the configuration');
        reloading = reloading.then(async () => {
          const before = gateway;
          gateway = await reload(flags.config, gateway, logger, status.hooks);
          if (gateway !== before) onOutbox(gateway);
          await status.apply(gateway.config.status);
        }).catch(failed('reload'));
      });
      reloading = reloading.then(() => status.apply(config.status));
      await reloading;
      if (!stopping) notify.ready(`polling ${config.devices.length} devices on ${config.buses.length} buses`);
      await stopped;
      notify.close();
      if (exitCode === 0) return logger.flush();
      // The fatal line must reach the journal before the exit (the log is written asynchronously).
      await new Promise<void>((resolve) => logger.flush(() => resolve()));
      process.exit(exitCode);
    });
}
