/**
 * The connection loop of every bus (Modbus and line sensors): one link, opened by a single-flight loop that
 * runs the bus's work while the link is open. Every reopen, after a failed open or a lost link, first waits
 * out the shared Backoff, which only a good reply resets (`healthy()`), never a successful open: a peer that
 * accepts and closes at once, or closes mid-reply, is redialed at a falling rate, not in a storm.
 *
 * Logging stays bounded whatever the peer does: an open failure is logged once per distinct reason; a link
 * lost before any good reply is logged once and then nothing more (no "connected", no "lost") until a good
 * reply proves the link again; the loss of a link that had worked is logged at most once a minute; and
 * "connected" only follows a logged problem (or is the first), so a peer that drops after every good reply
 * costs at most a pair of lines a minute.
 */
import { EventEmitter } from 'node:events';
import { Backoff } from '../backoff.js';
import type { Logger } from '../log.js';
import { RateLimitedLog } from './ratelog.js';
import { monotonic } from './schedule.js';

import type { LinkState } from './types.js';

export type { LinkState };

/** What the loop needs of a link: a serial port or a socket, open or not. */
export interface LoopLink {
  readonly isOpen: boolean;
  open(): Promise<void>;
  close(): Promise<void>;
}

export interface LinkLoopOptions {
  log: Logger;
  link: LoopLink;
  /** Where the link goes, for the log (`tcp://10.0.0.5:502`, `/dev/ttyUSB0 9600 8N1`). */
  target: string;
  reconnectMinMs: number;
  reconnectMaxMs: number;
  /** A pause after each open before the first request (some serial servers drop the first bytes). */
  connectPauseMs: number;
  /** For tests: the jitter's random source. */
  random?: () => number;
  /** After each successful open. */
  onOpen?(): void;
  /** Once per loss of an open link, after the state changed: the bus reports its points. */
  onLost(reason: string): void;
  /** One step of the bus's work while the link is open: a poll, or a sleep until the next one is due. */
  step(): Promise<void>;
}

/** Emits 'state' (state, detail?) on every change. */
export class LinkLoop extends EventEmitter {
  private readonly backoff: Backoff;
  private readonly rate: RateLimitedLog;
  private state: LinkState = 'disconnected';
  private active = false;
  private loopDone: Promise<void> = Promise.resolve();
  private wakeUp: (() => void) | undefined;
  /** A good reply came since the last open. */
  private proven = false;
  /** Trouble was logged and nothing more is, until a good reply. */
  private quiet = false;
  private lastOpenError = '';
  /** The last line about the link was a problem (or there was none yet): the next open is worth a line. */
  private announce = true;
  /** Successful opens since start. */
  opens = 0;
  /** Opens since the link last proved healthy (for the line that says it is steady again). */
  private opensSinceHealthy = 0;

  constructor(private readonly opts: LinkLoopOptions) {
    super();
    this.backoff = new Backoff({ minMs: opts.reconnectMinMs, maxMs: opts.reconnectMaxMs }, opts.random);
    this.rate = new RateLimitedLog(opts.log, () => performance.now());
  }

  get linkState(): LinkState {
    return this.state;
  }

  get running(): boolean {
    return this.active;
  }

  /** The base of the next reconnect delay, ms (doubles per failed attempt, back to the minimum after a good reply). */
  get reconnectDelayMs(): number {
    return this.backoff.peek;
  }

  start(): void {
    if (this.active) return;
    this.active = true;
    this.loopDone = this.loop().catch((err) => this.opts.log.error({ err }, 'bus loop failed; this is a bug'));
  }

  /** Ends the loop between two steps and closes the link (a socket is destroyed, not half-closed). */
  async stop(): Promise<void> {
    this.active = false;
    this.wake();
    await this.loopDone;
    await this.opts.link.close();
    this.setState('stopped');
  }

  /**
   * Sleeps until the monotonic clock reaches `at` (the silence a bus keeps after a transaction), or the loop
   * stops. A timer can fire a little early against that clock (libuv starts it from its cached loop time), so
   * what is left is waited out again: on RS-485 a frame sent early is a frame the unit may not see.
   */
  async quietUntil(at: number): Promise<void> {
    while (this.active && at - monotonic() > 0) await this.sleep(at - monotonic());
  }

  /** Interruptible sleep, so stop() and a lost link never wait for a long poll interval or backoff. */
  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const done = () => {
        clearTimeout(timer);
        if (this.wakeUp === done) this.wakeUp = undefined;
        resolve();
      };
      timer = setTimeout(done, ms);
      this.wakeUp = done;
    });
  }

  wake(): void {
    this.wakeUp?.();
  }

  /** A good reply: the link works, so the next loss redials after the minimum delay again. */
  healthy(): void {
    this.backoff.reset();
    if (this.proven) return;
    this.proven = true;
    if (this.quiet) {
      this.opts.log.info({ target: this.opts.target, opens: this.opensSinceHealthy }, `link steady again after ${this.opensSinceHealthy} connection${this.opensSinceHealthy === 1 ? '' : 's'}`);
    }
    this.quiet = false;
    this.lastOpenError = '';
    this.opensSinceHealthy = 0;
  }

  /** The link went away: by itself (its 'close' event), or because the bus dropped it. */
  lost(reason: string): void {
    if (this.state !== 'connected') return;
    const target = this.opts.target;
    if (this.proven) {
      // One key for every reason: reasons can carry counts, and the limiter keeps one entry per key.
      if (this.rate.warn('', 'link-lost', { target }, `link lost: ${reason}; reconnecting`)) this.announce = true;
    } else if (!this.quiet) {
      this.quiet = true;
      this.opts.log.warn({ target, retryInMs: this.backoff.peek }, `link lost before any good reply: ${reason}; reconnecting with backoff (not logged again until a good reply)`);
    } else {
      this.opts.log.debug({ target }, `link lost: ${reason}`);
    }
    this.setState('disconnected', reason);
    this.opts.onLost(reason);
    this.wake();
  }

  private setState(state: LinkState, detail?: string): void {
    if (this.state === state) return;
    this.state = state;
    this.emit('state', state, detail);
  }

  private async loop(): Promise<void> {
    let first = true;
    while (this.active) {
      if (!this.opts.link.isOpen) {
        // A port can vanish without a 'close' event (a pulled USB adapter, seen by the library only as not open).
        if (this.state === 'connected') this.lost('the port or socket is no longer open');
        if (!first) await this.sleep(this.backoff.next());
        first = false;
        if (!this.active) break;
        await this.connect();
        continue;
      }
      await this.opts.step();
    }
  }

  private async connect(): Promise<void> {
    const { link, log, target } = this.opts;
    this.setState('connecting');
    try {
      await link.open();
    } catch (err) {
      const reason = (err as Error).message;
      if (reason !== this.lastOpenError) {
        log.warn({ target, retryInMs: this.backoff.peek }, `cannot connect: ${reason}; retrying with backoff`);
        this.lastOpenError = reason;
        this.announce = true;
      }
      this.setState('disconnected', reason);
      return;
    }
    // A stop() while the open was under way must not leave the link open behind it.
    if (!this.active) {
      await link.close();
      return;
    }
    this.opens++;
    this.opensSinceHealthy++;
    this.proven = false;
    if (!this.quiet && this.announce) log.info({ target }, 'connected');
    this.announce = false;
    this.setState('connected');
    this.opts.onOpen?.();
    if (this.opts.connectPauseMs > 0) await this.sleep(this.opts.connectPauseMs);
  }
}
