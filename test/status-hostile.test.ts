/**
 * The status server against hostile and broken clients on raw sockets: malformed request lines, garbage,
 * more idle sockets than the cap, sockets that never send a request, headers dripped byte by byte.
 */
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { configSchema } from '../src/config/schema.js';
import { startStatusServer, type StatusServer, type StatusServerOptions } from '../src/status/server.js';
import { StatusState } from '../src/status/state.js';
import type { StatusGateway } from '../src/status/types.js';
import { recordingLogger, type RecordingLogger } from './helpers/gateway.js';

const TOKEN = 'hostile-token-7c1e4f0b';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function fakeGateway(): StatusGateway {
  const config = configSchema.parse({
    gateway: { id: 'gw-hostile' },
    buses: [{ id: 'b1', transport: 'tcp', host: '127.0.0.1', port: 1502 }],
    devices: [{ id: 'pump', bus: 'b1', unit: 1, points: [{ id: 'pressure', fc: 4, address: 0 }] }],
  });
  return {
    config,
    buses: [{ id: 'b1', linkState: 'connected', health: () => [] }],
    outbox: {
      stats: () => ({
        epoch: 'e', createdAt: 0, mode: 'writer', state: 'ok', samples: 0, events: 0, bytes: 0, maxBytes: 1 << 20, oldestTs: undefined,
        newestTs: undefined, minSeq: 0, maxSeq: 0, lastSeq: 0, dropped: { maxBytes: 0, maxAge: 0, memoryQueueFull: 0 }, pending: 0,
      }),
    },
  } as unknown as StatusGateway;
}

const servers: StatusServer[] = [];
const sockets: Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  for (const s of servers.splice(0)) await s.close();
});

async function start(extra: Partial<StatusServerOptions> = {}): Promise<{ server: StatusServer; log: RecordingLogger; port: number }> {
  const log = recordingLogger();
  const gw = fakeGateway();
  const server = await startStatusServer({ listen: '127.0.0.1:0', state: new StatusState({ processMetrics: false }), gateway: () => gw, logger: log.logger, ...extra });
  servers.push(server);
  return { server, log, port: Number(new URL(server.url).port) };
}

interface RawClient {
  socket: Socket;
  received(): string;
  closed: Promise<void>;
  isClosed(): boolean;
}

/** A raw TCP client: sends `text` (if any) and keeps what comes back. */
function raw(port: number, text?: string): Promise<RawClient> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    sockets.push(socket);
    let got = '';
    let closed = false;
    const closedP = new Promise<void>((r) => socket.once('close', () => ((closed = true), r())));
    socket.on('data', (d) => (got += d));
    socket.once('error', (e) => (closed ? undefined : (got += `\n[error ${(e as NodeJS.ErrnoException).code}]`)));
    socket.once('connect', () => {
      if (text) socket.write(text);
      resolve({ socket, received: () => got, closed: closedP, isClosed: () => closed });
    });
    socket.once('error', reject);
  });
}

/** One request on its own connection: resolves with the status line's code once the server closes it. */
async function statusOf(port: number, text: string): Promise<number> {
  const c = await raw(port, text);
  await Promise.race([c.closed, sleep(5000)]);
  c.socket.destroy();
  return Number(/^HTTP\/1\.1 (\d{3})/.exec(c.received())?.[1] ?? 0);
}

async function eventually(what: string, check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

describe('status server against hostile clients', () => {
  it('answers a malformed request line 400, logs one line for a flood of them, and never the query', async () => {
    const { port, log } = await start({ token: TOKEN });
    for (let i = 0; i < 200; i++) {
      expect(await statusOf(port, `GET http://[/x?token=${TOKEN} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`)).toBe(400);
    }
    // Not HTTP at all: node's parser refuses it ('clientError'); answered 400 and closed.
    expect(await statusOf(port, `BOGUS /?token=${TOKEN} HTTP/1.1\r\n\r\n`)).toBe(400);
    expect(await statusOf(port, '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n')).toBe(400);
    const text = log.lines.map((l) => JSON.stringify(l)).join('\n');
    expect(text).not.toContain(TOKEN);
    expect(log.lines.filter((l) => l.level >= 50)).toEqual([]);
    const malformed = log.lines.filter((l) => /malformed request/.test(l.msg));
    expect(malformed).toHaveLength(1);
    expect(malformed[0]!.level).toBe(40);
    expect(text.length).toBeLessThan(4000);
    // The server still serves after the flood.
    expect(await statusOf(port, 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n')).toBe(200);
  });

  it('caps connections: idle sockets beyond maxConnections are closed at once, the first ones are kept', async () => {
    const { port, log } = await start({ maxConnections: 4, idleTimeoutMs: 60_000, headersTimeoutMs: 60_000, requestTimeoutMs: 60_000 });
    const clients: RawClient[] = [];
    for (let i = 0; i < 10; i++) {
      clients.push(await raw(port));
      await sleep(20); // accepted in order, so the first four are the ones kept
    }
    await eventually('the 6 extra sockets closed', () => clients.filter((c) => c.isClosed()).length >= 6);
    await sleep(300);
    expect(clients.map((c) => c.isClosed())).toEqual([false, false, false, false, true, true, true, true, true, true]);
    expect(log.warnings(/connection refused/)).toHaveLength(1);
    // Closing the held sockets frees the server for real requests.
    for (const c of clients) c.socket.destroy();
    await sleep(100);
    expect(await statusOf(port, 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n')).toBe(200);
  });

  it('closes a socket that never sends a request after the idle timeout', async () => {
    const { port } = await start({ idleTimeoutMs: 300 });
    const idle = await raw(port);
    await eventually('the idle socket closed by the server', () => idle.isClosed(), 8000);
    expect(idle.received()).not.toMatch(/HTTP\/1\.1 200/);
  });

  it('cuts off a client that drips its headers, within the headers timeout', async () => {
    const { port } = await start({ headersTimeoutMs: 500, idleTimeoutMs: 60_000 });
    const slow = await raw(port, 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n');
    // One byte every 100 ms keeps the socket busy (no idle timeout) but never completes the headers.
    const drip = setInterval(() => !slow.isClosed() && slow.socket.write('X'), 100);
    try {
      await eventually('the dripping socket closed', () => slow.isClosed(), 10_000);
    } finally {
      clearInterval(drip);
    }
    expect(slow.received()).toMatch(/^HTTP\/1\.1 408/);
  });

  it('keeps a live page (/events) open past the idle timeout', async () => {
    const { port } = await start({ idleTimeoutMs: 200 });
    const page = await raw(port, 'GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    await eventually('the first snapshot', () => page.received().includes('data: '));
    await sleep(1200);
    expect(page.isClosed()).toBe(false);
  });
});
