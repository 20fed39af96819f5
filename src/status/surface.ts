/**
 * The status surface as the daemon runs it: one StatusState for the whole life of the process (a
 * restart-reload replaces the Gateway, not what the page remembers), the hooks the gateway feeds it through,
 * and the server, restarted only when the `status` section of the configuration changes. The page is never
 * allowed to stop acquisition: a port that cannot be bound is a warning, and the gateway runs without it.
 */
import type { StatusConfig } from '../config/schema.js';
import type { LastValues } from '../last-values.js';
import type { Logger } from '../log.js';
import type { Sample } from '../sample.js';
import type { AlarmEvent } from '../processing/types.js';
import { startStatusServer, type StatusServer } from './server.js';
import { StatusState } from './state.js';
import type { GatewayRef } from './types.js';

export const DEFAULT_STATUS_LISTEN = '127.0.0.1:8080';

export interface StatusHooks {
  onSamples(samples: Sample[]): void;
  onAlarm(alarm: AlarmEvent): void;
  onPuback(ms: number): void;
}

export interface StatusSurfaceOptions {
  gateway: GatewayRef;
  logger: Logger;
  /** When the configured port is taken, listen on a free one instead of running without a page (the demo). */
  anyPortIfTaken?: boolean;
  /** The core's last-value cache, which the gateways feed; without it the state keeps its own from the hooks. */
  lastValues?: LastValues;
}

export class StatusSurface {
  /** Replaced by an empty one when the page is turned off: what it keeps (its plots, up to 8 MiB) is let go. */
  state: StatusState;
  readonly hooks: StatusHooks = {
    // With the page off nothing is kept (the plots' history alone is up to 8 MiB).
    onSamples: (samples) => this.serving !== 'off' && this.state.observe(samples),
    onAlarm: (alarm) => this.serving !== 'off' && this.state.observeAlarm(alarm),
    onPuback: (ms) => this.serving !== 'off' && this.state.observePuback(ms),
  };
  private server: StatusServer | undefined;
  /** What the server was last set up for ('off' when disabled); null before the first apply and after close. */
  private serving: string | null = null;
  private readonly log: Logger;

  constructor(private readonly options: StatusSurfaceOptions) {
    this.log = options.logger.child({ stage: 'status' });
    this.state = this.newState();
  }

  /** http://HOST:PORT of the running page, or undefined when it is off or could not start. */
  get url(): string | undefined {
    return this.server?.url;
  }

  /** Starts, restarts or stops the server so it matches `config`; a no-op when that section did not change. */
  async apply(config: StatusConfig | undefined): Promise<void> {
    const wanted = config ?? { enabled: true, listen: DEFAULT_STATUS_LISTEN };
    const key = wanted.enabled ? JSON.stringify([wanted.listen, wanted.token ?? null]) : 'off';
    if (key === this.serving) return;
    await this.server?.close();
    this.server = undefined;
    this.serving = key;
    if (!wanted.enabled) {
      this.state = this.newState();
      this.log.info('status page disabled (status.enabled: false)');
      return;
    }
    const start = (listen: string) =>
      startStatusServer({ listen, token: wanted.token, state: this.state, gateway: this.options.gateway, logger: this.log });
    try {
      this.server = await start(wanted.listen);
    } catch (err) {
      const reason = describeListenError(err, wanted.listen);
      if (this.options.anyPortIfTaken && (err as NodeJS.ErrnoException).code === 'EADDRINUSE') {
        this.server = await start(wanted.listen.replace(/:\d+$/, ':0')).catch(() => undefined);
        if (this.server) return;
      }
      this.log.warn(`status page not started: ${reason}; the gateway runs without it (set status.listen to a free HOST:PORT and reload)`);
    }
  }

  private newState(): StatusState {
    return new StatusState({ values: this.options.lastValues });
  }

  async close(): Promise<void> {
    await this.server?.close();
    this.server = undefined;
    this.serving = null;
  }
}

function describeListenError(err: unknown, listen: string): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'EADDRINUSE') return `${listen} is in use by another program`;
  if (code === 'EADDRNOTAVAIL') return `${listen}: this machine has no such address`;
  if (code === 'EACCES') return `${listen}: not allowed to listen there (ports below 1024 need privileges)`;
  return err instanceof Error ? err.message : String(err);
}
