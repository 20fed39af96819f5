/**
 * Peers for benchmarks: a private Mosquitto on a random 127.0.0.1 port and child processes, each stopped by
 * its pid. Kept apart from test/helpers so a benchmark never depends on test code.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of live) if (c.pid && c.exitCode === null) process.kill(c.pid, 'SIGKILL');
});

export function which(cmd: string): string | undefined {
  for (const dir of [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/usr/local/sbin']) {
    try {
      accessSync(join(dir, cmd), constants.X_OK);
      return join(dir, cmd);
    } catch {
      // not here
    }
  }
  return undefined;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer().once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ port, host: '127.0.0.1' });
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.once('connect', () => done(true)).once('error', () => done(false));
  });
}

/** A child whose output is kept (last 8 KiB) for error messages. */
export interface Child {
  readonly proc: ChildProcess;
  readonly pid: number;
  readonly exited: Promise<number | string>;
  output(): string;
  stop(): Promise<void>;
}

export function spawnChild(cmd: string, args: string[], stdout: 'pipe' | 'keep' = 'keep', env?: Record<string, string>): Child {
  const proc = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: env ? { ...process.env, ...env } : process.env });
  live.add(proc);
  let tail = '';
  const keep = (b: Buffer) => (tail = (tail + b.toString()).slice(-8192));
  if (stdout === 'keep') proc.stdout!.on('data', keep);
  proc.stderr!.on('data', keep);
  const exited = new Promise<number | string>((resolve) => {
    proc.once('exit', (code, sig) => {
      live.delete(proc);
      resolve(code ?? sig ?? 'unknown');
    });
    proc.once('error', (err) => resolve(`spawn failed: ${err.message}`));
  });
  return {
    proc,
    pid: proc.pid ?? -1,
    exited,
    output: () => tail,
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null || !proc.pid) return;
      process.kill(proc.pid, 'SIGTERM');
      const timer = setTimeout(() => proc.pid && proc.exitCode === null && process.kill(proc.pid, 'SIGKILL'), 3000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Peak resident set (VmHWM) of a live process, MiB; undefined once it is gone. */
export function peakRssMiB(pid: number): number | undefined {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

export interface Broker {
  url: string;
  pid: number;
  stop(): Promise<void>;
}

/**
 * Mosquitto on a random port. `max_queued_messages 0` (no limit): a subscriber slower than the drain must
 * receive every message late rather than have the broker drop the excess, which would void the count.
 */
export async function startMosquitto(extra: readonly string[] = []): Promise<Broker> {
  const exe = which('mosquitto');
  if (!exe) throw new Error('mosquitto not found on PATH (Debian package mosquitto)');
  const dir = mkdtempSync(join(tmpdir(), 'fieldgate-bench-mosquitto-'));
  const conf = join(dir, 'mosquitto.conf');
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const lines = ['persistence false', 'max_queued_messages 0', 'log_dest stderr', 'log_type error', 'log_type warning', ...extra];
    if (process.getuid?.() === 0) lines.push(`user ${userInfo().username}`);
    lines.push(`listener ${port} 127.0.0.1`, 'allow_anonymous true');
    writeFileSync(conf, `${lines.join('\n')}\n`);
    const child = spawnChild(exe, ['-c', conf]);
    const deadline = Date.now() + 5000;
    while (child.proc.exitCode === null && !(await canConnect(port)) && Date.now() < deadline) await sleep(25);
    if (child.proc.exitCode === null && (await canConnect(port))) {
      return {
        url: `mqtt://127.0.0.1:${port}`,
        pid: child.pid,
        async stop() {
          await child.stop();
          rmSync(dir, { recursive: true, force: true });
        },
      };
    }
    await child.stop();
    // Another process may have taken the port between freePort() and the bind.
    if (attempt === 4) throw new Error(`mosquitto did not start: ${child.output()}`);
  }
}
