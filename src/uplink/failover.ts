/**
 * Which broker the session dials (`uplink.urls`, the first one the primary): a bounded number of failed dials
 * on one broker moves to the next, and a primary that answers again is where the next dial goes. Pure but for
 * `probeBroker`, a TCP connect that tells whether a broker's port answers.
 */
import { connect } from 'node:net';

export class BrokerChoice {
  private current = 0;
  /** Failed dials in a row on the current broker. */
  private failures = 0;
  /** Moves from one broker to another, back to the primary included. */
  switches = 0;

  constructor(
    readonly urls: readonly string[],
    /** Failed dials on one broker before the next is tried. */
    private readonly attempts: number,
  ) {
    if (urls.length === 0) throw new Error('no broker URL');
  }

  get index(): number {
    return this.current;
  }

  get url(): string {
    return this.urls[this.current]!;
  }

  /** True while a broker other than the primary is in use: the primary is checked now and then. */
  get onSecondary(): boolean {
    return this.current !== 0;
  }

  /** A dial failed before the session was up; true when the next dial goes to another broker. */
  failed(): boolean {
    if (this.urls.length < 2) return false;
    this.failures++;
    if (this.failures < this.attempts) return false;
    this.moveTo((this.current + 1) % this.urls.length);
    return true;
  }

  connected(): void {
    this.failures = 0;
  }

  /** The primary answered a probe: the next dial goes to it, and one failure there moves on again. */
  backToPrimary(): void {
    this.moveTo(0);
    this.failures = this.attempts - 1;
  }

  private moveTo(index: number): void {
    if (index !== this.current) this.switches++;
    this.current = index;
    this.failures = 0;
  }
}

const DEFAULT_PORT: Record<string, number> = { mqtt: 1883, mqtts: 8883, ws: 80, wss: 443 };

/** Host and port of a broker URL (the scheme's default port when it names none). */
export function brokerAddress(url: string): { host: string; port: number } {
  const u = new URL(url);
  const scheme = u.protocol.replace(/:$/, '').toLowerCase();
  const host = u.hostname.replace(/^\[(.*)\]$/, '$1');
  return { host, port: u.port ? Number(u.port) : (DEFAULT_PORT[scheme] ?? 1883) };
}

/**
 * True when the broker's port takes a TCP connection within timeoutMs. Costs a TCP handshake and its close
 * (about 400 bytes on the wire with IP headers), not an MQTT session: a second session with the gateway's
 * clientId would take the live one over, and one with another clientId needs its own ACL entry.
 */
export function probeBroker(url: string, timeoutMs: number): Promise<boolean> {
  let address: { host: string; port: number };
  try {
    address = brokerAddress(url);
  } catch {
    return Promise.resolve(false);
  }
  return new Promise((resolve) => {
    const socket = connect({ host: address.host, port: address.port });
    const done = (ok: boolean) => {
      clearTimeout(timer);
      socket.removeAllListeners();
      socket.on('error', () => {});
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    timer.unref();
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}
