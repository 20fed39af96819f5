// Ports and child processes for interop tests: random loopback ports, readiness polling,
// and peer processes that are always stopped by pid (and killed on exit as a safety net).
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/** Listens on 127.0.0.1:0, closes, and returns the port the kernel picked. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => (port ? resolve(port) : reject(new Error('no port assigned'))));
    });
  });
}

/** True when something accepts a TCP connection on host:port right now. */
export function canConnect(port: number, host = '127.0.0.1', timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ port, host });
    const done = (ok: boolean) => {
      sock.removeAllListeners();
      sock.on('error', () => {});
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(timeoutMs, () => done(false));
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
  });
}

/**
 * Polls `check` until it returns true. `failed` is asked on every round so a peer that
 * died during start-up fails fast with its own reason instead of a timeout.
 */
export async function waitUntil(
  what: string,
  check: () => boolean | Promise<boolean>,
  opts: { timeoutMs?: number; intervalMs?: number; failed?: () => string | undefined } = {},
): Promise<void> {
  const deadline = Date.now() + (opts.timeoutMs ?? 10_000);
  for (;;) {
    const reason = opts.failed?.();
    if (reason) throw new Error(`${what}: ${reason}`);
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`${what}: not ready after ${opts.timeoutMs ?? 10_000} ms`);
    await sleep(opts.intervalMs ?? 25);
  }
}

export const waitForTcp = (port: number, what: string, failed?: () => string | undefined) =>
  waitUntil(`${what} on 127.0.0.1:${port}`, () => canConnect(port), { failed });

export const waitForPaths = (paths: string[], what: string, failed?: () => string | undefined) =>
  waitUntil(`${what} (${paths.join(', ')})`, () => paths.every((p) => existsSync(p)), { failed });

/** A started peer process: pid, exit state and the tail of its output for error messages. */
export interface PeerProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly exited: Promise<void>;
  exitCode(): number | string | undefined;
  output(): string;
}

const live = new Map<number, ChildProcess>();
const dirs = new Set<string>();
let safetyNetInstalled = false;

function killAllNow(): void {
  for (const pid of live.keys()) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  live.clear();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  dirs.clear();
}

// Vitest ends its fork workers with SIGTERM, which skips 'exit' handlers: catch the signal,
// clean up, then let it terminate the process as it would have.
function onSignal(signal: NodeJS.Signals): void {
  killAllNow();
  if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
}

function installSafetyNet(): void {
  if (safetyNetInstalled) return;
  safetyNetInstalled = true;
  process.once('exit', killAllNow);
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.once(signal, onSignal);
}

/** A private temp dir (configs, maps, pty links), removed when the test process exits. */
export function tempDir(prefix: string): string {
  installSafetyNet();
  const dir = mkdtempSync(join(tmpdir(), `fieldgate-${prefix}-`));
  dirs.add(dir);
  return dir;
}

/** Spawns a peer with piped output; stdout/stderr are kept (last 8 KiB) for diagnostics. */
export function spawnPeer(cmd: string, args: string[], opts: SpawnOptions = {}): PeerProcess {
  installSafetyNet();
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  let tail = '';
  let code: number | string | undefined;
  const keep = (chunk: Buffer) => {
    tail = (tail + chunk.toString('utf8')).slice(-8192);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<void>((resolve) => {
    child.once('exit', (c, sig) => {
      code = c ?? sig ?? 'unknown';
      if (child.pid) live.delete(child.pid);
      resolve();
    });
    child.once('error', (err) => {
      code = `spawn failed: ${err.message}`;
      resolve();
    });
  });
  if (child.pid) live.set(child.pid, child);
  return {
    child,
    pid: child.pid ?? -1,
    exited,
    exitCode: () => code,
    output: () => tail,
  };
}

/** Reason string when the process has exited, for `waitUntil({ failed })`. */
export function exitReason(p: PeerProcess, name: string): string | undefined {
  const code = p.exitCode();
  if (code === undefined) return undefined;
  const last = p.output().trim().split('\n').slice(-5).join(' | ');
  return `${name} exited (${code})${last ? `: ${last}` : ''}`;
}

/** SIGTERM by pid, SIGKILL after `graceMs`, and resolves only once the process has exited. */
export async function stopPeer(p: PeerProcess, graceMs = 3000): Promise<void> {
  if (p.exitCode() !== undefined || p.pid < 0) return;
  try {
    process.kill(p.pid, 'SIGTERM');
  } catch {
    // exited between the check and the kill
  }
  const grace = new AbortController();
  const timer = sleep(graceMs, 'timeout' as const, { signal: grace.signal }).catch(() => 'exited' as const);
  const outcome = await Promise.race([p.exited.then(() => 'exited' as const), timer]);
  grace.abort();
  if (outcome === 'timeout') {
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      // already gone
    }
    await p.exited;
  }
}
