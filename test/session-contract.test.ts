/**
 * One contract for every Session (src/uplink/types.ts): the real MqttSession against an embedded broker and
 * the recording fake the uplink's tests run on. What the uplink relies on is checked on both, so a test that
 * passes on the fake means the same on the wire.
 */
import mqtt from 'mqtt';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { MqttSession } from '../src/uplink/session.js';
import type { Session, SessionState } from '../src/uplink/types.js';
import { startAedes, type AedesBroker } from './helpers/aedes.js';
import { RecordingSession } from './helpers/recording-session.js';

interface Harness {
  session: Session;
  /** Resolves once the session is connected. */
  up(): Promise<void>;
  /** The broker loses the connection; resolves once the session is connected again. */
  bounce(): Promise<void>;
  /** Another client publishes to the session's subscriptions. */
  deliver(topic: string, payload: string): Promise<void>;
  /** What reached the broker from the session, in order. */
  received(): Array<{ topic: string; payload: string; retain: boolean }>;
  end(): Promise<void>;
}

const until = async (cond: () => boolean, what: string, ms = 5000) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
};

function waitState(session: Session, want: SessionState): Promise<void> {
  return new Promise((resolve) => {
    const on = (s: SessionState) => {
      if (s === want) resolve();
    };
    session.on('state', on);
  });
}

async function realHarness(): Promise<Harness> {
  const broker: AedesBroker = await startAedes();
  // What reached the broker from the session, retain flag as published (a live subscriber would see it cleared).
  const seen: Array<{ topic: string; payload: string; retain: boolean }> = [];
  broker.broker.on('publish', (packet, client) => {
    if (client?.id === 'contract-1') seen.push({ topic: packet.topic, payload: packet.payload.toString(), retain: packet.retain });
  });
  const watcher = mqtt.connect(broker.url, { protocolVersion: 4, reconnectPeriod: 0 });
  await new Promise<void>((resolve) => watcher.on('connect', () => resolve()));
  let dials = 0;
  const session = new MqttSession(
    {
      url: broker.url,
      clientId: 'contract-1',
      insecure: false,
      protocolVersion: 4,
      keepaliveS: 30,
      connectTimeoutMs: 2000,
      reconnectMinMs: 20,
      reconnectMaxMs: 100,
      will: () => ({ topic: 'out/will', payload: `lost after dial ${++dials}` }),
    },
    pino({ level: 'silent' }),
  );
  return {
    session,
    async up() {
      const connected = waitState(session, 'connected');
      session.start();
      await connected;
    },
    async bounce() {
      const again = waitState(session, 'connected');
      const client = (broker.broker as unknown as { clients: Record<string, { conn: { destroy(): void } }> }).clients['contract-1'];
      client!.conn.destroy();
      await again;
    },
    deliver: (topic, payload) => new Promise((resolve) => watcher.publish(topic, payload, { qos: 1 }, () => resolve())),
    received: () => seen,
    async end() {
      await session.close();
      await new Promise<void>((resolve) => watcher.end(true, {}, () => resolve()));
      await broker.stop();
    },
  };
}

async function fakeHarness(): Promise<Harness> {
  const session = new RecordingSession();
  return {
    session,
    async up() {
      session.start();
    },
    async bounce() {
      session.drop();
      session.connect();
    },
    async deliver(topic, payload) {
      session.deliver(topic, payload);
    },
    received: () => session.published.map((p) => ({ topic: p.topic, payload: p.payload, retain: p.retain })),
    end: () => session.close(),
  };
}

for (const [name, make] of [['MqttSession on an embedded broker', realHarness], ['RecordingSession', fakeHarness]] as const) {
  describe(`Session contract: ${name}`, () => {
    let h: Harness | undefined;
    afterEach(async () => {
      await h?.end();
      h = undefined;
    });

    it('refuses to publish before it is connected, then publishes with the QoS and retain asked', async () => {
      h = await make();
      await expect(h.session.publish('out/a', 'x', 1)).rejects.toThrow();
      expect(h.session.connected).toBe(false);
      await h.up();
      expect(h.session.connected).toBe(true);
      await h.session.publish('out/a', 'one', 1);
      await h.session.publish('out/b', Buffer.from('two'), 1, true);
      await until(() => h!.received().length === 2, 'both messages');
      expect(h.received()).toEqual([
        { topic: 'out/a', payload: 'one', retain: false },
        { topic: 'out/b', payload: 'two', retain: true },
      ]);
    });

    it('counts connections, and fails what is in flight when the link drops', async () => {
      h = await make();
      await h.up();
      const first = h.session.generation;
      await h.bounce();
      expect(h.session.generation).toBeGreaterThan(first);
      expect(h.session.connected).toBe(true);
    });

    it('keeps its subscriptions across reconnects and hands messages to its listeners', async () => {
      h = await make();
      const got: string[] = [];
      h.session.on('message', (topic, payload) => got.push(`${topic} ${payload.toString()}`));
      await h.session.subscribe('in/cmd/#', 1);
      await h.up();
      await h.deliver('in/cmd/write', 'a');
      await until(() => got.length === 1, 'the first command');
      await h.bounce();
      await h.deliver('in/cmd/write', 'b');
      await until(() => got.length === 2, 'a command after the reconnect');
      expect(got).toEqual(['in/cmd/write a', 'in/cmd/write b']);
    });

    it('fences: once fence() resolves, the broker has every QoS 0 publish sent before it; it fails when not connected', async () => {
      h = await make();
      await expect(h.session.fence()).rejects.toThrow();
      await h.up();
      const sent = Array.from({ length: 50 }, (_, i) => h!.session.publish('out/q0', `m${i}`, 0));
      await Promise.all(sent);
      await h.session.fence();
      // The broker took all 50 before it answered the fence; its subscriber sees them without loss.
      await until(() => h!.received().length === 50, 'every QoS 0 message');
      expect(h.received().map((m) => m.payload)).toEqual(Array.from({ length: 50 }, (_, i) => `m${i}`));
    });

    it('publishes a last message with the QoS and retain asked (a Sparkplug NDEATH is not retained)', async () => {
      h = await make();
      await h.up();
      await h.session.close({ topic: 'out/death', payload: Buffer.from([1, 2, 3]), qos: 1, retain: false });
      await until(() => h!.received().length === 1, 'the last message');
      expect(h.received()).toEqual([{ topic: 'out/death', payload: '\u0001\u0002\u0003', retain: false }]);
    });

    it('publishes the last message retained at close, once, and nothing after', async () => {
      h = await make();
      await h.up();
      await h.session.close({ topic: 'out/status', payload: 'offline' });
      await h.session.close({ topic: 'out/status', payload: 'again' });
      await until(() => h!.received().length === 1, 'the last message');
      expect(h.received()).toEqual([{ topic: 'out/status', payload: 'offline', retain: true }]);
      await expect(h.session.publish('out/a', 'late', 1)).rejects.toThrow();
    });
  });
}

describe('MqttSession will', () => {
  it('is asked again at every dial', async () => {
    const broker = await startAedes();
    const wills: string[] = [];
    const watcher = mqtt.connect(broker.url, { protocolVersion: 4, reconnectPeriod: 0 });
    await new Promise<void>((resolve) => watcher.on('connect', () => watcher.subscribe('out/will', { qos: 1 }, () => resolve())));
    watcher.on('message', (_t, payload) => wills.push(payload.toString()));
    let dials = 0;
    const session = new MqttSession(
      { url: broker.url, clientId: 'will-1', insecure: false, protocolVersion: 4, keepaliveS: 30, connectTimeoutMs: 2000, reconnectMinMs: 20, reconnectMaxMs: 100, will: () => ({ topic: 'out/will', payload: `dial ${++dials}` }) },
      pino({ level: 'silent' }),
    );
    try {
      const clients = (broker.broker as unknown as { clients: Record<string, { conn: { destroy(): void } }> }).clients;
      const up = waitState(session, 'connected');
      session.start();
      await up;
      for (let i = 0; i < 2; i++) {
        const again = waitState(session, 'connected');
        clients['will-1']!.conn.destroy();
        await until(() => wills.length === i + 1, `will ${i + 1}`);
        await again;
      }
      expect(wills).toEqual(['dial 1', 'dial 2']);
    } finally {
      await session.close();
      await new Promise<void>((resolve) => watcher.end(true, {}, () => resolve()));
      await broker.stop();
    }
  });
});
