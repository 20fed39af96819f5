/**
 * What every bus is around its link loop and its devices' schedule: the state, counters and health the
 * gateway reads, and start. Each bus (modbus/bus.ts, line/bus.ts) adds how it polls and how it stops.
 */
import { EventEmitter } from 'node:events';
import type { LinkLoop } from './link-loop.js';
import type { ScheduledRun } from './schedule.js';
import type { DeviceHealth, LinkState } from './types.js';

export abstract class LoopedBus<R extends ScheduledRun> extends EventEmitter {
  protected abstract readonly loop: LinkLoop;
  protected abstract readonly runs: readonly R[];

  get linkState(): LinkState {
    return this.loop.linkState;
  }

  /** Successful opens of the link since start. */
  get reconnects(): number {
    return this.loop.opens;
  }

  /** The base of the next reconnect delay: grows with each failed open or lost link, back to the minimum on a valid reply. */
  get reconnectDelayMs(): number {
    return this.loop.reconnectDelayMs;
  }

  health(): DeviceHealth[] {
    return this.runs.map((r) => ({ ...r.health, errors: { ...r.health.errors } }));
  }

  start(): void {
    this.loop.start();
  }

  abstract stop(): Promise<void>;
}
