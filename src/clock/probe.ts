/**
 * Asking the OS whether NTP has synchronised the clock, cheaply enough to ask every second:
 * - systemd-timesyncd touches /run/systemd/timesync/synchronized at its first sync after boot: one stat;
 * - otherwise `timedatectl` (the kernel's sync flag, kept by timesyncd, chrony or ntpd alike), then `chronyc`,
 *   run in the background at most once a minute; the last answer stands in between.
 * A command that is not installed is not tried again; when none answers, the status is `unknown`.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { SyncStatus } from './core.js';

export interface SyncProbe {
  /** Never blocks; may start a background refresh. */
  status(): SyncStatus;
}

export const TIMESYNCD_FILE = '/run/systemd/timesync/synchronized';

export type RunCommand = (cmd: string, args: readonly string[]) => Promise<string>;

export interface OsProbeOptions {
  /** Default TIMESYNCD_FILE. */
  syncFile?: string;
  /** Minimum interval between command runs. Default 60 s. */
  refreshMs?: number;
  exists?: (path: string) => boolean;
  run?: RunCommand;
  /** For the refresh interval only. Default performance.now. */
  now?: () => number;
  platform?: NodeJS.Platform;
}

interface Command {
  cmd: string;
  args: readonly string[];
  parse(out: string): SyncStatus | null;
}

const COMMANDS: readonly Command[] = [
  {
    cmd: 'timedatectl',
    args: ['show', '-p', 'NTPSynchronized', '--value'],
    parse: (out) => ({ yes: 'synced', no: 'unsynced' } as const)[out.trim()] ?? null,
  },
  {
    cmd: 'chronyc',
    args: ['-n', 'tracking'],
    parse: (out) => {
      const leap = /^Leap status\s*:\s*(.+)$/m.exec(out)?.[1]?.trim();
      if (leap === undefined) return null;
      return leap === 'Not synchronised' ? 'unsynced' : 'synced';
    },
  },
];

const runCommand: RunCommand = (cmd, args) =>
  new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: 5000, env: { ...process.env, LC_ALL: 'C' } }, (err, stdout) => (err ? reject(err) : resolve(stdout)));
  });

export function osSyncProbe(options: OsProbeOptions = {}): SyncProbe {
  if ((options.platform ?? process.platform) !== 'linux') return { status: () => 'unknown' };
  const syncFile = options.syncFile ?? TIMESYNCD_FILE;
  const refreshMs = options.refreshMs ?? 60_000;
  const exists = options.exists ?? existsSync;
  const run = options.run ?? runCommand;
  const now = options.now ?? (() => performance.now());
  const missing = new Set<string>();
  let last: SyncStatus = 'pending';
  let lastRun = -Infinity;
  let running = false;

  const refresh = async (): Promise<void> => {
    running = true;
    let answer: SyncStatus = 'unknown';
    try {
      for (const c of COMMANDS) {
        if (missing.has(c.cmd)) continue;
        try {
          const parsed = c.parse(await run(c.cmd, c.args));
          if (parsed) {
            answer = parsed;
            break;
          }
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOENT') missing.add(c.cmd);
          // Installed but failing (no D-Bus in a container, chronyd not running): ask the next one.
        }
      }
    } finally {
      last = answer;
      lastRun = now();
      running = false;
    }
  };

  return {
    status() {
      if (exists(syncFile)) return 'synced';
      if (missing.size === COMMANDS.length) return 'unknown';
      if (!running && now() - lastRun >= refreshMs) void refresh();
      return last;
    },
  };
}
