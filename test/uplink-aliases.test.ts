/**
 * MQTT 5 topic aliases against Mosquitto: after the first PUBLISH of a topic names it, the next ones carry only
 * the alias; what a subscriber gets names the topic in full; after a reconnect (aliases are per connection) the
 * first PUBLISH names it again and the broker accepts it; the session's own byte count follows the smaller packets.
 */
import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { MqttSession } from '../src/uplink/session.js';
import { startCountingProxy } from '../bench/lib/counting-proxy.js';
import { needPeers, startMosquitto } from './helpers/peers.js';
import { until } from './helpers/until.js';

const skip = needPeers('mosquitto');
const TOPIC = 'fieldgate/gw-alias/telemetry';

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
});

describe.skipIf(skip)('MQTT 5 topic aliases', () => {
  it('saves the topic on every PUBLISH after the first of a connection, and names it again after a reconnect', async () => {
    const broker = await startMosquitto();
    cleanups.push(() => broker.stop());
    const got: string[] = [];
    const watcher = mqtt.connect(broker.url, { protocolVersion: 5, clientId: 'alias-watcher', reconnectPeriod: 0 });
    cleanups.push(() => watcher.endAsync(true));
    watcher.on('message', (t, p) => got.push(`${t} ${p}`));
    await new Promise((r) => watcher.once('connect', r));
    await watcher.subscribeAsync('fieldgate/#', { qos: 1 });

    const sent: Record<string, number> = {};
    for (const topicAliases of [false, true]) {
      const proxy = await startCountingProxy({ host: '127.0.0.1', port: broker.port });
      cleanups.push(() => proxy.close());
      const session = new MqttSession({
        url: `mqtt://127.0.0.1:${proxy.port}`, clientId: `alias-${topicAliases}`, insecure: false, protocolVersion: 5, keepaliveS: 60, connectTimeoutMs: 3000,
        reconnectMinMs: 100, reconnectMaxMs: 200, will: { topic: 'fieldgate/gw-alias/status', payload: 'lost' }, topicAliases,
      }, pino({ level: 'silent' }));
      cleanups.push(() => session.close());
      session.start();
      await until('connected', () => session.connected);
      session.takeBytes();
      proxy.reset();
      for (let i = 0; i < 20; i++) await session.publish(TOPIC, `${topicAliases ? 1 : 0}-${i}`, 1);
      sent[String(topicAliases)] = (proxy.up + proxy.down);
      // The session's count of its packets is what went on the wire (no pings in between).
      const d = session.takeBytes();
      expect(`${topicAliases} ${d.sent.telemetry + d.received.telemetry}`).toBe(`${topicAliases} ${(proxy.up + proxy.down)}`);

      if (topicAliases) {
        const generation = session.generation;
        proxy.cut();
        await until('the reconnect', () => session.connected && session.generation > generation);
        for (let i = 20; i < 23; i++) await session.publish(TOPIC, `${topicAliases ? 1 : 0}-${i}`, 1);
      }
    }
    // 19 of 20 PUBLISHes leave out the 28-byte topic for a 3-byte alias property; the first pays the property.
    expect(sent.false! - sent.true!).toBe(19 * (TOPIC.length - 3) - 3);
    // Every message arrives under its full topic (the cut fired the will on the status topic too).
    await until('every message', () => got.filter((g) => g.startsWith(`${TOPIC} `)).length === 43);
    expect(got.filter((g) => g.startsWith(`${TOPIC} 1-`))).toHaveLength(23);
    expect(got.filter((g) => !g.startsWith(`${TOPIC} `))).toEqual(['fieldgate/gw-alias/status lost']);
  }, 60_000);
});
