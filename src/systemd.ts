/**
 * systemd integration without a native module: readiness and watchdog pings through `systemd-notify`, which
 * the unit allows with NotifyAccess=all. Pings come from a timer on the event loop, so a loop stalled long
 * enough (a hung driver, a runaway computation) stops them and systemd restarts the daemon.
 */
import { execFile } from 'node:child_process';
import type { Logger } from './log.js';

export interface Notifier {
  ready(status?: string): void;
  status(text: string): void;
  stopping(): void;
  close(): void;
}

const NOOP: Notifier = { ready() {}, status() {}, stopping() {}, close() {} };

export function systemdNotifier(logger: Logger, env: NodeJS.ProcessEnv = process.env, command = 'systemd-notify'): Notifier {
  if (!env.NOTIFY_SOCKET) return NOOP;
  const pid = String(process.pid);
  let warned = false;
  const send = (...args: string[]) => {
    execFile(command, [`--pid=${pid}`, ...args], (err) => {
      if (err && !warned) {
        warned = true;
        logger.warn({ err: err.message }, 'systemd-notify failed; readiness and watchdog pings are not reaching systemd');
      }
    });
  };
  const usec = Number(env.WATCHDOG_USEC);
  let timer: NodeJS.Timeout | undefined;
  if (Number.isFinite(usec) && usec > 0 && (!env.WATCHDOG_PID || env.WATCHDOG_PID === pid)) {
    // Half the watchdog interval, as systemd recommends.
    timer = setInterval(() => send('WATCHDOG=1'), Math.max(500, usec / 2000));
    timer.unref();
  }
  return {
    ready: (status) => send('--ready', ...(status ? [`--status=${status}`] : [])),
    status: (text) => send(`--status=${text}`),
    stopping: () => send('STOPPING=1'),
    close: () => clearInterval(timer),
  };
}
