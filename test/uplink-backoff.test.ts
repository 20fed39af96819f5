/**
 * The MQTT session's reconnects go through the shared backoff against scripted brokers on 127.0.0.1: one that
 * accepts and closes, one that answers CONNACK and drops at once (a session that never proves stable must
 * still back off), and one that keeps each connection long enough to count as stable (back to the minimum).
 */
import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { MqttSession, type SessionOptions } from '../src/uplink/session.js';
import { cleanupsOf, type Cleanup } from './helpers/cleanup.js';
import { recordingLogger, type RecordingLogger } from './helpers/gateway.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** MQTT 3.1.1 CONNACK, session not present, accepted. */
const CONNACK = Buffer.from([0x20, 0x02, 0x00, 0x00]);

/** A TCP server that runs `onConnection` for each client and counts them. */
async function scripted(cleanup: (c: Cleanup) => void, onConnection: (socket: Socket) => void): Promise<{ url: string; connections: () => number }> {
  let count = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    count++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    onConnection(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  cleanup(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { url: `mqtt://127.0.0.1:${(server.address() as AddressInfo).port}`, connections: () => count };
}

function session(cleanup: (c: Cleanup) => void, url: string, extra: Partial<SessionOptions> = {}): { session: MqttSession; log: RecordingLogger } {
  const log = recordingLogger();
  const s = new MqttSession({
    url, clientId: 'gw-backoff', insecure: false, protocolVersion: 4, keepaliveS: 30, connectTimeoutMs: 2000,
    reconnectMinMs: 100, reconnectMaxMs: 10_000, will: { topic: 'fieldgate/gw-backoff/status', payload: '{}' },
    // No jitter: the delays are the backoff's base, so the test can read them from the log.
    random: () => 0.5,
    ...extra,
  }, log.logger);
  cleanup(() => s.close());
  return { session: s, log };
}

const delays = (log: RecordingLogger) => log.lines.filter((l) => /^MQTT (connect failed|connection lost|disconnected)/.test(l.msg)).map((l) => l.retryInMs as number);

// Each test has its own scripted broker and session, so they run at the same time.
describe.concurrent('MQTT session reconnect backoff', () => {
  it('backs off from a broker that accepts and closes at once', async (ctx) => {
    const cleanup = cleanupsOf(ctx);
    const broker = await scripted(cleanup, (socket) => socket.destroy());
    const { session: s, log } = session(cleanup, broker.url);
    s.start();
    await sleep(1600);
    // 100, 200, 400, 800 ms: 5 dials in 1.6 s; at the minimum delay it would be about 16.
    expect(broker.connections()).toBeLessThanOrEqual(8);
    expect(delays(log).slice(0, 4)).toEqual([100, 200, 400, 800]);
  });

  it('backs off from a broker that accepts the session and drops it at once (never stable)', async (ctx) => {
    const cleanup = cleanupsOf(ctx);
    const broker = await scripted(cleanup, (socket) => socket.once('data', () => socket.end(CONNACK, () => socket.destroy())));
    const { session: s, log } = session(cleanup, broker.url);
    let connects = 0;
    s.on('state', (state) => state === 'connected' && connects++);
    s.start();
    await sleep(1600);
    expect(connects).toBeGreaterThanOrEqual(2);
    expect(broker.connections()).toBeLessThanOrEqual(8);
    expect(delays(log).slice(0, 4)).toEqual([100, 200, 400, 800]);
    expect(log.warnings(/MQTT connection lost/).length).toBeGreaterThanOrEqual(2);
  });

  it('starts again from the minimum after a connection that proved stable', async (ctx) => {
    const cleanup = cleanupsOf(ctx);
    // Each session lives 400 ms, past stableMs, before the broker drops it.
    const broker = await scripted(cleanup, (socket) => socket.once('data', () => {
      socket.write(CONNACK);
      setTimeout(() => socket.destroy(), 400);
    }));
    const { session: s, log } = session(cleanup, broker.url, { stableMs: 200 });
    s.start();
    const end = Date.now() + 10_000;
    while (delays(log).length < 4 && Date.now() < end) await sleep(50);
    expect(delays(log).slice(0, 4)).toEqual([100, 100, 100, 100]);
  });
});
