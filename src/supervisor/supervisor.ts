/**
 * The owner of the gateway's lifecycle, used by `fieldgate run` and the demo alike: start, reload in place,
 * restart inside the process (identity, outbox or session changed; an outbox file deleted under us), stop, and
 * the fatal errors that end the process with an exit code for the service manager. Everything that changes the
 * running gateway goes through one queue, so a SIGHUP during a restart or a stop during a reload cannot
 * interleave. The gateway itself (gateway.ts) is only wiring.
 */
import type { Config } from '../config/schema.js';
import { UserError } from '../errors.js';
import { startGateway, type Gateway, type GatewayOptions } from '../gateway.js';
import { LastValues } from '../last-values.js';
import type { Logger } from '../log.js';
import { OutboxError } from '../outbox/index.js';

/** Exit code of a runtime failure the daemon cannot continue after (README: 1, the operation failed). */
export const FATAL_EXIT = 1;

/** Outbox failures no retry can heal in this process: the service manager restarts it (open checks the file). */
export function isFatal(err: unknown): err is OutboxError {
  return err instanceof OutboxError && (err.code === 'OUTBOX_CORRUPT' || err.code === 'OUTBOX_OPEN_FAILED');
}

/** An outbox that cannot be opened is one line and exit 1, not a stack: the cause is the disk or its rights. */
export function startChecked(config: Config, logger: Logger, hooks: GatewayOptions): Gateway {
  try {
    return startGateway(config, logger, hooks);
  } catch (err) {
    if (err instanceof OutboxError && err.code === 'OUTBOX_OPEN_FAILED') throw new UserError(err.message, FATAL_EXIT);
    throw err;
  }
}

export interface SupervisorOptions {
  logger: Logger;
  hooks: GatewayOptions;
  /** Reads and validates the configuration again (SIGHUP); without it reload() is refused. */
  load?: () => Config;
  /** Runs first at every stop (the status page: it must not report a gateway closing its outbox). */
  beforeStop?: () => Promise<void>;
  /** After every configuration change that was applied (the status page follows its section). */
  afterChange?: (config: Config) => Promise<void>;
  /** The last-value cache the status page reads too. Default a new one. */
  lastValues?: LastValues;
}

export class Supervisor {
  private current: Gateway;
  private queue: Promise<void> = Promise.resolve();
  private stopping: Promise<void> | undefined;
  private exitCode = 0;
  private resolveDone!: (code: number) => void;
  /** Resolves with the process's exit code once the gateway has stopped: 0 after a clean stop. */
  readonly done = new Promise<number>((resolve) => (this.resolveDone = resolve));
  /** A daemon stays up until told to stop, even with nothing to poll, send or serve. */
  private readonly hold = setInterval(() => {}, 2 ** 30);
  private readonly log: Logger;
  /** One for every gateway this starts: a restart keeps the latest values for the page and the next birth. */
  readonly lastValues: LastValues;

  /** Starts the gateway; throws a UserError (exit 1) when its outbox cannot be opened. */
  constructor(
    config: Config,
    private readonly options: SupervisorOptions,
  ) {
    this.log = options.logger;
    this.lastValues = options.lastValues ?? new LastValues();
    try {
      this.current = this.startWatched(config);
    } catch (err) {
      clearInterval(this.hold);
      throw err;
    }
  }

  get gateway(): Gateway {
    return this.current;
  }

  get stopped(): boolean {
    return this.stopping !== undefined;
  }

  /**
   * Queues a change of the running gateway, or work that must finish before the daemon counts as started (the
   * status page binding); one that fails fatally ends the daemon, anything else is logged.
   */
  enqueue(what: string, change: () => Promise<void>): Promise<void> {
    this.queue = this.queue
      .then(() => (this.stopping ? undefined : change()))
      .catch((err: unknown) => {
        if (isFatal(err)) this.fatal(err);
        else if (err instanceof UserError) this.fatal(new OutboxError('OUTBOX_OPEN_FAILED', err.message));
        else this.log.error({ err }, `${what} failed`);
      });
    return this.queue;
  }

  /** SIGHUP: validate first; keep the running configuration on any error; else apply in place or restart. */
  reload(): Promise<void> {
    return this.enqueue('reload', async () => {
      const load = this.options.load;
      if (!load) return;
      let next: Config;
      try {
        next = load();
      } catch (err) {
        if (!(err instanceof UserError)) throw err;
        // One headline, then one journal line per error: readable in `journalctl`, bounded by the loader's cap.
        this.log.error(`reload refused, still running the previous configuration: ${err.message}`);
        for (const line of err.details) this.log.error(line);
        return;
      }
      await this.apply(next);
    });
  }

  /**
   * Runs a configuration: in place when only acquisition and processing changed, else a restart inside the
   * process. Call it from inside enqueue() (a reload, a pushed change), never beside it.
   */
  async apply(next: Config): Promise<void> {
    if ((await this.current.reload(next)) !== 'applied') {
      // The identity, the outbox or the MQTT session changed: a clean stop (nothing committed is lost) and a start.
      this.log.info('uplink, buffer or gateway settings changed: restarting the gateway with the new configuration');
      await this.current.stop();
      this.current = this.startWatched(next);
    }
    await this.options.afterChange?.(next);
  }

  /** Idempotent; resolves once everything is closed (a queued reload finishes first). */
  stop(reason: string): Promise<void> {
    this.stopping ??= (async () => {
      this.log.info({ signal: reason }, 'stopping');
      await this.queue.catch(() => {});
      try {
        await this.options.beforeStop?.();
        await this.current.stop();
      } catch (err) {
        this.log.error({ err }, 'stop failed');
      }
      clearInterval(this.hold);
      this.resolveDone(this.exitCode);
    })();
    return this.stopping;
  }

  /** Errors that escaped every handler: fatal outbox errors end the daemon; anything else is kept running. */
  escaped(what: string, err: unknown): void {
    if (isFatal(err)) this.fatal(err);
    else this.log.error({ err }, `${what} (kept running)`);
  }

  private fatal(err: { code: string; message: string }): void {
    if (this.stopping) return;
    // One line (`systemctl status` shows it); the clean stop still delivers what the link takes.
    this.log.fatal({ code: err.code }, `${err.message}; stopping (exit ${FATAL_EXIT})`);
    this.exitCode = FATAL_EXIT;
    void this.stop('fatal');
  }

  private startWatched(config: Config): Gateway {
    const gateway = startChecked(config, this.log, { ...this.options.hooks, lastValues: this.lastValues });
    gateway.started.catch((err: unknown) => {
      const why = err instanceof Error ? err.message : String(err);
      this.fatal({ code: 'SOURCES_NOT_STARTED', message: `the sources could not be started (${why}), so no bus would be polled` });
    });
    gateway.outbox.onUnusable((err) => {
      if (err.code !== 'OUTBOX_DELETED') return this.fatal(err);
      // Deleted under us: a clean stop drains what the link takes from the unlinked file; the new start recreates it.
      if (gateway !== this.current) return;
      void this.enqueue('recreating the outbox', async () => {
        if (gateway !== this.current) return;
        await gateway.stop();
        this.current = this.startWatched(gateway.config);
      });
    });
    return gateway;
  }
}
