/**
 * The status server's `listen` address: parsing, and the rule that anything reachable from outside the
 * gateway needs a token. Shared by the configuration check and the server (through status/listen.ts), so
 * both agree on "loopback"; it lives with the configuration, which must not depend on the server.
 */
import { isIP } from 'node:net';
import type { RuleIssue } from './issues.js';

export interface ListenAddress {
  host: string;
  port: number;
}

/** "HOST:PORT", "[IPV6]:PORT" or ":PORT" (all interfaces). Undefined when it is not one of these. */
export function parseListen(listen: string): ListenAddress | undefined {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^\s:[\]]*)):(\d{1,5})$/.exec(listen.trim());
  if (!m) return undefined;
  const port = Number(m[3]);
  if (port > 65535) return undefined;
  const host = m[1] ?? (m[2] || '0.0.0.0');
  if (m[1] !== undefined && isIP(host) !== 6) return undefined;
  return { host, port };
}

/** True only for addresses no other machine can reach: 127.0.0.0/8, ::1 and localhost. */
export function isLoopback(host: string): boolean {
  const h = host.toLowerCase();
  if (h === 'localhost' || h === '::1' || h === '0:0:0:0:0:0:0:1') return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  return /^::ffff:127\./.test(h);
}

export interface StatusConfigLike {
  enabled?: boolean;
  listen: string;
  token?: string;
}

/**
 * The configuration rule (called from validate.ts): a listen address other than loopback is
 * refused without a token, because the page and its API show the whole site to anyone on the network.
 */
export function checkStatusConfig(status: StatusConfigLike | undefined, issues: RuleIssue[]): void {
  if (!status || status.enabled === false) return;
  const addr = parseListen(status.listen);
  if (!addr) {
    issues.push({ path: ['status', 'listen'], message: `"${status.listen}" is not HOST:PORT (e.g. 127.0.0.1:8080, 0.0.0.0:8080, [::1]:8080)` });
    return;
  }
  if (!isLoopback(addr.host) && !status.token) {
    issues.push({
      path: ['status', 'token'],
      message: `status.listen ${status.listen} is reachable from the network: set status.token (any long random string), or listen on 127.0.0.1`,
    });
  }
}
