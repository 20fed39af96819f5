/**
 * The technician's way into the running gateway on site, with no link: a Unix socket in the data directory
 * (mode 0600: only the service's user and root), one JSON request per line and one JSON answer. Commands
 * sent here go through the same parser, guard and audit as the cloud's (origin "local"), so what a
 * technician does on site is what the cloud could do. Used by `fieldgate command` and `fieldgate alarms`.
 */
import { chmodSync, lstatSync, unlinkSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import type { Logger } from '../log.js';
import { COMMAND_ID, parseAlarm, parseWrite } from '../uplink/profiles/fieldgate/commands.js';
import type { Command, CommandResult } from './types.js';

export const CONTROL_SOCKET = 'control.sock';
const MAX_REQUEST_BYTES = 16 * 1024;
const IDLE_MS = 10_000;
const MAX_CLIENTS = 8;

export type ControlRequest =
  | { op: 'command'; kind: 'write' | 'alarm'; command: Record<string, unknown> }
  | { op: 'alarms' }
  | { op: 'config-rollback'; version: number };

export type ControlAnswer = { ok: true; result?: CommandResult; alarms?: unknown[]; report?: unknown } | { ok: false; error: string };

export interface ControlHandlers {
  command(command: Command): Promise<CommandResult>;
  alarms(): unknown[];
  now(): number;
  /** `fieldgate config rollback`: absent when remote configuration is not enabled. */
  configRollback?(version: number): Promise<unknown>;
}

export function controlSocketPath(dataDir: string): string {
  return join(dataDir, CONTROL_SOCKET);
}

/** Answers one request line; never throws. */
export async function answer(line: string, h: ControlHandlers): Promise<ControlAnswer> {
  let req: ControlRequest;
  try {
    req = JSON.parse(line) as ControlRequest;
  } catch {
    return { ok: false, error: 'the request is not JSON' };
  }
  if (typeof req !== 'object' || req === null) return { ok: false, error: 'the request is not a JSON object' };
  if (req.op === 'alarms') return { ok: true, alarms: h.alarms() };
  if (req.op === 'config-rollback') {
    if (!h.configRollback) return { ok: false, error: 'remote configuration is not enabled on this gateway (remoteConfig.enabled)' };
    if (!Number.isSafeInteger(req.version) || req.version < 0) return { ok: false, error: 'version must be a whole number (0: the file on the device)' };
    return { ok: true, report: await h.configRollback(req.version) };
  }
  if (req.op !== 'command') return { ok: false, error: `unknown op ${JSON.stringify((req as { op?: unknown }).op)}: takes command, alarms, config-rollback` };
  if (typeof req.command !== 'object' || req.command === null || (req.kind !== 'write' && req.kind !== 'alarm')) {
    return { ok: false, error: 'a command request needs "kind" (write or alarm) and a "command" object' };
  }
  if (typeof req.command.id !== 'string' || !COMMAND_ID.test(req.command.id)) return { ok: false, error: '"id" must be 1-128 printable characters' };
  let command: Command;
  try {
    command = req.kind === 'write' ? parseWrite(req.command, h.now()) : parseAlarm(req.command, h.now());
  } catch (err) {
    return { ok: false, error: (err as Error).message };
  }
  command.origin = 'local';
  return { ok: true, result: await h.command(command) };
}

/** Listens on the socket; a stale socket file from a killed run is replaced. */
export async function startControl(path: string, h: ControlHandlers, log: Logger): Promise<Server> {
  try {
    if (lstatSync(path).isSocket()) unlinkSync(path);
  } catch {
    // Nothing there.
  }
  const server = createServer({ allowHalfOpen: false }, (socket) => serve(socket, h, log));
  server.maxConnections = MAX_CLIENTS;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => {
      server.off('error', reject);
      resolve();
    });
  });
  chmodSync(path, 0o600);
  server.on('error', (err) => log.warn({ err: err.message, path }, 'control socket error'));
  return server;
}

export function stopControl(server: Server, path: string): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => {
      try {
        unlinkSync(path);
      } catch {
        // Already gone.
      }
      resolve();
    });
  });
}

function serve(socket: Socket, h: ControlHandlers, log: Logger): void {
  let buf = '';
  socket.setEncoding('utf8');
  socket.setTimeout(IDLE_MS, () => socket.destroy());
  socket.on('error', () => socket.destroy());
  socket.on('data', (chunk: string) => {
    buf += chunk;
    if (buf.length > MAX_REQUEST_BYTES) {
      socket.end(`${JSON.stringify({ ok: false, error: `request over ${MAX_REQUEST_BYTES} bytes` })}\n`);
      return;
    }
    const nl = buf.indexOf('\n');
    if (nl < 0) return;
    const line = buf.slice(0, nl);
    buf = '';
    socket.pause();
    void answer(line, h)
      .catch((err: Error) => {
        log.error({ err }, 'control request failed');
        return { ok: false, error: 'internal error' } as ControlAnswer;
      })
      .then((a) => socket.end(`${JSON.stringify(a)}\n`));
  });
}

/** The CLI's side: one request, one answer; clear errors when the gateway is not running. */
export function controlRequest(path: string, req: ControlRequest, timeoutMs = 30_000): Promise<ControlAnswer> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(path);
    let buf = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer from the gateway within ${timeoutMs / 1000} s (${path})`));
    }, timeoutMs);
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write(`${JSON.stringify(req)}\n`));
    socket.on('data', (c: string) => (buf += c));
    socket.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      const why = err.code === 'ENOENT' || err.code === 'ECONNREFUSED' ? 'is the gateway running with this configuration?' : err.code === 'EACCES' ? 'permission denied: run as the service user or root' : err.message;
      reject(new Error(`cannot reach the gateway at ${path}: ${why}`));
    });
    socket.on('end', () => {
      clearTimeout(timer);
      try {
        resolve(JSON.parse(buf.trim()) as ControlAnswer);
      } catch {
        reject(new Error(`the gateway's answer is not JSON: ${buf.slice(0, 80)}`));
      }
    });
  });
}
