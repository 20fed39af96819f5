/**
 * What the MQTT session tells the technician against a real Mosquitto: a password over plain mqtt:// is
 * warned about once at start (never shown); and, against a scripted MQTT 5 broker, a session the broker hands
 * to another client with the same clientId (reason code 142) is named as such, not as a bare lost connection.
 */
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { MqttSession, type SessionOptions } from '../src/uplink/session.js';
import { recordingLogger, type RecordingLogger } from './helpers/gateway.js';
import { needPeers, startMosquitto } from './helpers/peers.js';

const skip = needPeers('mosquitto');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

describe('MQTT session: what it tells the technician', () => {
  const cleanups: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
  });

  function session(url: string, extra: Partial<SessionOptions> = {}): { session: MqttSession; log: RecordingLogger } {
    const log = recordingLogger();
    const s = new MqttSession({
      url, clientId: 'gw-session', insecure: false, protocolVersion: 5, keepaliveS: 30, connectTimeoutMs: 5000, reconnectMinMs: 200,
      reconnectMaxMs: 1000, will: { topic: 'fieldgate/gw-session/status', payload: '{}' }, ...extra,
    }, log.logger);
    cleanups.push(() => s.close());
    return { session: s, log };
  }

  it.skipIf(skip)('warns once at start that a password goes in clear over mqtt://, and never shows it', async () => {
    const broker = await startMosquitto({ passwordFile: { user: 'gw01', password: 'plain-pw-5678' } });
    cleanups.push(() => broker.stop());
    const { session: s, log } = session(broker.url, { username: 'gw01', password: 'plain-pw-5678' });
    s.start();
    await until('connected', () => s.connected);
    // A reconnect is not a new start: still one warning.
    await broker.restart();
    await until('reconnected', () => log.lines.filter((l) => l.msg === 'MQTT connected').length >= 2, 15_000);
    const warned = log.warnings(/in clear/);
    expect(warned).toHaveLength(1);
    expect(warned[0]).toMatch(/^MQTT password sent in clear over mqtt:\/\/ \(uplink\.url\).*use mqtts:\/\/ or wss:\/\//);
    expect(JSON.stringify(log.lines)).not.toContain('plain-pw-5678');
  });

  it.skipIf(skip)('does not warn without a password', async () => {
    const broker = await startMosquitto();
    cleanups.push(() => broker.stop());
    const { session: s, log } = session(broker.url);
    s.start();
    await until('connected', () => s.connected);
    expect(log.warnings(/in clear/)).toEqual([]);
  });

  it('names a session taken over by another client with the same clientId (reason code 142)', async () => {
    // Mosquitto 2.0.11 closes a taken-over session without saying why; newer brokers send DISCONNECT 142.
    // A scripted MQTT 5 broker: CONNACK (accepted), then DISCONNECT 142 (session taken over) and close.
    const connections = new Set<Socket>();
    const server = createServer((socket) => {
      connections.add(socket);
      socket.on('close', () => connections.delete(socket));
      socket.on('error', () => {});
      socket.once('data', () => {
        socket.write(Buffer.from([0x20, 0x03, 0x00, 0x00, 0x00]));
        setTimeout(() => socket.end(Buffer.from([0xe0, 0x02, 0x8e, 0x00])), 100);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    cleanups.push(async () => {
      for (const c of connections) c.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    });
    const { session: s, log } = session(`mqtt://127.0.0.1:${(server.address() as AddressInfo).port}`, { clientId: 'gw-twin' });
    s.start();
    await until('the takeover logged', () => log.warnings(/taken over/).length > 0);
    const line = log.warnings(/taken over/)[0]!;
    expect(line).toMatch(/^MQTT disconnected by the broker: session taken over by another client with the same clientId "gw-twin"/);
    expect(line).toMatch(/uplink\.clientId/);
    expect(log.warnings(/^MQTT connection lost/)).toEqual([]);
  });
});
