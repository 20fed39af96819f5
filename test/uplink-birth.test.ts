/**
 * The retained birth is not sent again when nothing in it changed and the broker provably still holds it: a
 * reconnect within the will delay resumes the MQTT 5 session (sessionPresent), the will was not published,
 * the status stays the first connect's birth. A link down for longer than the delay lets the will (offline)
 * go, and the birth is sent again. A reload with the same context sends nothing; a changed one sends it.
 */
import net from 'node:net';
import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { uplinkSchema } from '../src/config/schema.js';
import type { StoredEvent } from '../src/outbox/types.js';
import type { BirthContext, StoredRow } from '../src/uplink/profile.js';
import { fieldgateProfile } from '../src/uplink/profiles/fieldgate/index.js';
import { MqttSession } from '../src/uplink/session.js';
import { Uplink, type UplinkOutbox } from '../src/uplink/uplink.js';
import { needPeers, startMosquitto } from './helpers/peers.js';
import { until } from './helpers/until.js';

const skip = needPeers('mosquitto');
const GW = 'gw-birth';
const EP = '0123456789abcdef';
// Also the will delay and the session expiry: a reconnect after 200-400 ms is well within it.
const KEEPALIVE_S = 3;

/** A TCP proxy that can cut every connection and refuse new ones for a while. */
async function cutter(port: number) {
  const sockets = new Set<net.Socket>();
  let refusing = false;
  const server = net.createServer((c) => {
    if (refusing) return c.destroy();
    const b = net.connect(port, '127.0.0.1');
    sockets.add(c).add(b);
    c.pipe(b).pipe(c);
    const end = () => (c.destroy(), b.destroy(), sockets.delete(c), sockets.delete(b));
    c.on('close', end).on('error', end);
    b.on('close', end).on('error', end);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `mqtt://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    cut: () => {
      for (const s of sockets) s.destroy();
    },
    refuse: (on: boolean) => {
      refusing = on;
    },
    close: () => new Promise((r) => (server.close(r), [...sockets].forEach((s) => s.destroy()))),
  };
}

function outbox(): UplinkOutbox {
  return {
    epoch: EP,
    read: (): StoredRow[] => [],
    readEvents: (): StoredEvent[] => [],
    maxSeq: () => null,
    ack: () => 0,
    droppedRanges: () => [],
    markDroppedReported: () => {},
    onCommit: () => () => {},
    series: () => [{ id: 1 }, { id: 2 }],
  };
}

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
});

describe.skipIf(skip)('a birth that is not resent when nothing changed', () => {
  async function setup(protocolVersion: 4 | 5) {
    const broker = await startMosquitto();
    cleanups.push(() => broker.stop());
    const proxy = await cutter(broker.port);
    cleanups.push(() => proxy.close());
    const statuses: Array<Record<string, unknown>> = [];
    const watcher = mqtt.connect(broker.url, { clientId: 'watcher', protocolVersion: 5, reconnectPeriod: 0 });
    cleanups.push(() => watcher.endAsync(true));
    watcher.on('message', (_t, p) => statuses.push(JSON.parse(p.toString()) as Record<string, unknown>));
    await new Promise((r) => watcher.once('connect', r));
    await watcher.subscribeAsync(`fieldgate/${GW}/status`, { qos: 1 });
    const profile = fieldgateProfile({ gatewayId: GW, topicPrefix: 'fieldgate', format: 'compact' });
    const logger = pino({ level: 'silent' });
    const session = new MqttSession({
      url: proxy.url, clientId: `fieldgate-${GW}`, insecure: false, protocolVersion, keepaliveS: KEEPALIVE_S, connectTimeoutMs: 3000,
      reconnectMinMs: 200, reconnectMaxMs: 400, will: () => profile.will(), ...(profile.retainedBirth ? { willDelayS: KEEPALIVE_S } : {}),
    }, logger);
    let ctx: BirthContext = { epoch: EP, version: '0.1.0', configHash: 'c0ffee', points: [{ index: 1, device: 'pump', point: 'p' }, { index: 2, device: 'pump', point: 'q', unit: 'bar' }] };
    const uplink = new Uplink({ session, outbox: outbox(), config: uplinkSchema.parse({ url: proxy.url, protocolVersion }), gatewayId: GW, logger, profile, birth: () => ctx });
    cleanups.push(() => uplink.stop());
    uplink.start();
    await until('the first birth', () => statuses.some((s) => s.state === 'online'));
    return { session, uplink, proxy, statuses, setCtx: (c: BirthContext) => (ctx = c), ctx: () => ctx };
  }

  it('keeps the retained birth across a quick reconnect (MQTT 5 session resumed, will unsent) and sends it after the will went', async () => {
    const { session, uplink, proxy, statuses, setCtx, ctx } = await setup(5);
    const first = statuses.find((s) => s.state === 'online')!;
    expect(uplink.stats.births).toEqual({ sent: 1, kept: 0 });

    // A reset link: the gateway redials within a fraction of the will delay.
    for (let i = 0; i < 3; i++) {
      const generation = session.generation;
      proxy.cut();
      await until('the reconnect', () => session.connected && session.generation > generation);
      expect(session.resumed).toBe(true);
    }
    await until('the births kept', () => uplink.stats.births?.kept === 3);
    await new Promise((r) => setTimeout(r, (KEEPALIVE_S + 2) * 1000));
    // No offline, no second birth: the broker's retained status is still the first connect's.
    expect(statuses).toEqual([first]);
    expect(uplink.stats.births).toEqual({ sent: 1, kept: 3 });

    // A reload that changed nothing sends nothing; one that changed the configuration sends the birth.
    uplink.refreshBirth();
    expect(uplink.stats.births).toEqual({ sent: 1, kept: 4 });
    setCtx({ ...ctx(), configHash: 'decade' });
    uplink.refreshBirth();
    await until('the new birth', () => statuses.length === 2);
    expect(statuses[1]).toMatchObject({ state: 'online', configHash: 'decade', ep: EP });

    // Down for longer than the will delay: the broker publishes the will, the session is gone, the birth goes again.
    const generation = session.generation;
    proxy.refuse(true);
    proxy.cut();
    await until('the will', () => statuses.some((s) => s.state === 'offline'), (KEEPALIVE_S + 10) * 1000);
    expect(statuses[2]).toEqual({ v: 1, state: 'offline', reason: 'lost' });
    proxy.refuse(false);
    await until('the reconnect', () => session.connected && session.generation > generation);
    expect(session.resumed).toBe(false);
    await until('the birth again', () => statuses.length === 4);
    expect(statuses[3]).toMatchObject({ state: 'online', configHash: 'decade' });
    expect(uplink.stats.births).toEqual({ sent: 3, kept: 4 });
  }, 60_000);

  it('sends the birth at every connect on MQTT 3.1.1 (no will delay: a lost connection fires the will)', async () => {
    const { session, uplink, proxy, statuses } = await setup(4);
    const generation = session.generation;
    proxy.cut();
    await until('the reconnect', () => session.connected && session.generation > generation);
    expect(session.resumed).toBe(false);
    await until('the second birth', () => statuses.filter((s) => s.state === 'online').length === 2);
    expect(uplink.stats.births?.kept).toBe(0);
  }, 60_000);
});
