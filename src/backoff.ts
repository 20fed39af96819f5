/**
 * The one reconnect backoff of every link (Modbus, line sensors, MQTT): capped exponential delay with jitter,
 * so a fleet of gateways or a bus of links that lost their peer together do not redial in step. Pure: the
 * caller sleeps. A link calls `reset()` only once it has proved healthy (a good reply, a stable session), not
 * merely on a successful open: a peer that accepts and then closes must still back off.
 */
export interface BackoffPolicy {
  minMs: number;
  maxMs: number;
  /** Spread of the jitter around the delay: 0.2 draws from [0.8, 1.2] x the delay. */
  jitter?: number;
}

export class Backoff {
  private delay: number;
  /** Delays handed out since the last reset. */
  attempts = 0;

  constructor(
    private readonly policy: BackoffPolicy,
    private readonly random: () => number = Math.random,
  ) {
    this.delay = policy.minMs;
  }

  /** The delay to wait before the next attempt, in ms; each call doubles the base up to maxMs. */
  next(): number {
    const spread = this.policy.jitter ?? 0.2;
    const wait = this.delay * (1 - spread + this.random() * 2 * spread);
    this.delay = Math.min(this.delay * 2, this.policy.maxMs);
    this.attempts++;
    return Math.max(0, Math.round(wait));
  }

  /** The base of the next delay, without jitter (for logs and the status page). */
  get peek(): number {
    return this.delay;
  }

  reset(): void {
    this.delay = this.policy.minMs;
    this.attempts = 0;
  }
}
