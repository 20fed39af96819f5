/**
 * Broker failover (uplink.urls): which broker the next dial goes to after failed attempts and when the primary
 * answers again (pure), the session moving between two real Mosquitto brokers and saying which one it is on,
 * and end to end: a gateway process whose primary is killed and comes back, every seq arriving at one broker
 * or the other.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { createServer, type AddressInfo } from 'node:net';
import { BrokerChoice, brokerAddress, probeBroker } from '../src/uplink/failover.js';
import { MqttSession } from '../src/uplink/session.js';
import { configSchema } from '../src/config/schema.js';
import { startSimulator, type RunningSimulator } from '../src/sim/server.js';
import { SeqSet } from '../src/uplink/seqset.js';
import { recordingLogger } from './helpers/gateway.js';
import { freePort, needPeers, startMosquitto, tempDir } from './helpers/peers.js';
import { Collector, lastSeq, runGateway, writeConfig } from './helpers/gw-process.js';

const skip = needPeers('mosquitto');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, check: () => boolean, timeoutMs = 15_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

describe('BrokerChoice', () => {
  it('moves to the next broker after the bounded number of failed dials, and round to the primary', () => {
    const b = new BrokerChoice(['mqtt://a', 'mqtt://b', 'mqtt://c'], 3);
    expect([b.failed(), b.failed()]).toEqual([false, false]);
    expect(b.url).toBe('mqtt://a');
    expect(b.failed()).toBe(true);
    expect([b.url, b.index, b.onSecondary]).toEqual(['mqtt://b', 1, true]);
    for (let i = 0; i < 6; i++) b.failed();
    expect(b.url).toBe('mqtt://a');
    expect(b.switches).toBe(3);
  });

  it('a connection resets the count; back to the primary, one failure there moves on again', () => {
    const b = new BrokerChoice(['mqtt://a', 'mqtt://b'], 3);
    b.failed();
    b.failed();
    b.connected();
    expect(b.failed()).toBe(false);
    b.failed();
    b.failed();
    expect(b.index).toBe(1);
    b.backToPrimary();
    expect(b.index).toBe(0);
    expect(b.failed()).toBe(true);
    expect(b.index).toBe(1);
  });

  it('one broker never moves', () => {
    const b = new BrokerChoice(['mqtt://a'], 1);
    expect(b.failed()).toBe(false);
    expect(b.switches).toBe(0);
  });

  it('reads host and port, with each scheme default', () => {
    expect(brokerAddress('mqtts://broker.example:8884')).toEqual({ host: 'broker.example', port: 8884 });
    expect(brokerAddress('mqtt://10.0.0.1')).toEqual({ host: '10.0.0.1', port: 1883 });
    expect(brokerAddress('mqtts://[::1]')).toEqual({ host: '::1', port: 8883 });
    expect(brokerAddress('wss://h/mqtt')).toEqual({ host: 'h', port: 443 });
  });

  it('probes a port: open is true, closed is false', async () => {
    const server = createServer((s) => s.destroy());
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    expect(await probeBroker(`mqtt://127.0.0.1:${port}`, 1000)).toBe(true);
    await new Promise((r) => server.close(r));
    expect(await probeBroker(`mqtt://127.0.0.1:${port}`, 1000)).toBe(false);
    expect(await probeBroker('not a url', 1000)).toBe(false);
  });
});

describe('uplink.urls in the configuration', () => {
  const base = { gateway: { id: 'gw' } };
  it('takes url or urls, exactly one; url is the primary either way', () => {
    const one = configSchema.parse({ ...base, uplink: { url: 'mqtt://a' } }).uplink!;
    expect([one.url, one.urls]).toEqual(['mqtt://a', undefined]);
    const two = configSchema.parse({ ...base, uplink: { urls: ['mqtts://a', 'mqtts://b'] } }).uplink!;
    expect([two.url, two.urls, two.failover]).toEqual(['mqtts://a', ['mqtts://a', 'mqtts://b'], { attempts: 3, primaryCheckS: 60 }]);
    const issues = (uplink: unknown) => {
      const r = configSchema.safeParse({ ...base, uplink });
      return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    };
    expect(issues({ url: 'mqtt://a', urls: ['mqtt://b'] })).toEqual(['uplink.urls: goes instead of url, not with it: put the primary first in urls']);
    expect(issues({})).toEqual(['uplink.url: is required (or urls: a list of brokers, the primary first)']);
    expect(issues({ urls: [] })[0]).toMatch(/^uplink\.urls: /);
    expect(issues({ urls: ['mqtt://a', 'mqtt://u:p@b'] })[0]).toMatch(/^uplink\.urls\.1: must not hold a user name or password/);
  });
});

describe.skipIf(skip)('failover between two Mosquitto brokers', () => {
  const cleanups: Array<() => Promise<unknown>> = [];
  let sim: RunningSimulator;
  beforeAll(async () => {
    sim = await startSimulator({ scenario: 'village-water', tcp: { host: '127.0.0.1', port: 0 }, seed: 11 });
  });
  afterAll(async () => {
    await sim?.close();
  });
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
  });
  const track = <T extends { stop(): Promise<unknown> } | { close(): Promise<unknown> }>(x: T): T => {
    cleanups.push(() => ('stop' in x ? x.stop() : (x as { close(): Promise<unknown> }).close()));
    return x;
  };

  it('the session says which broker it is on: the secondary while the primary is down, the primary once it answers', async () => {
    const primary = track(await startMosquitto());
    const secondary = track(await startMosquitto());
    const dead = `mqtt://127.0.0.1:${await freePort()}`;
    const log = recordingLogger();
    const s = new MqttSession({
      url: dead, urls: [primary.url, secondary.url, dead], failoverAttempts: 2, primaryCheckMs: 300,
      clientId: 'gw-failover', insecure: false, protocolVersion: 5, keepaliveS: 30, connectTimeoutMs: 2000,
      reconnectMinMs: 50, reconnectMaxMs: 200, will: { topic: 'fieldgate/gw-failover/status', payload: '{}' },
    }, log.logger);
    cleanups.push(() => s.close());
    s.start();
    await until('connected to the primary', () => s.connected);
    expect(s.broker).toEqual({ url: primary.url, index: 0, switches: 0 });
    await primary.stop();
    await until('on the secondary', () => s.connected && s.broker.index === 1);
    expect(log.warnings(/failing over/)).toEqual([`MQTT broker ${primary.url} unreachable: failing over to ${secondary.url}`]);
    await primary.restart();
    await until('back on the primary', () => s.connected && s.broker.index === 0);
    expect(s.broker.switches).toBe(2);
    expect(log.lines.some((l) => l.msg === `MQTT primary broker ${primary.url} answers again: moving back from ${secondary.url}`)).toBe(true);
    // Still publishing where it is.
    await s.publish('fieldgate/gw-failover/x', 'ok', 1);
  });

  it('a gateway loses nothing: primary killed, traffic moves to the secondary, primary back, traffic returns', async () => {
    const primary = track(await startMosquitto({ persistence: true }));
    const secondary = track(await startMosquitto());
    const dir = tempDir('gw-failover');
    const file = writeConfig(dir, {
      gateway: { id: 'gw-fo', dataDir: join(dir, 'data') },
      buses: [{ id: 'sim', transport: 'tcp', host: '127.0.0.1', port: sim.tcpPort, reconnectMinMs: 200 }],
      devices: [
        { id: 'pump_house', bus: 'sim', unit: 1, pollIntervalMs: 50, points: [
          { id: 'inlet_pressure', fc: 4, address: 0, scale: 0.000625, offset: -2.5, unit: 'bar' },
          { id: 'tank_level', fc: 4, address: 1, scale: 0.0003125, offset: -1.25, unit: 'm' },
        ] },
      ],
      uplink: {
        urls: [primary.url, secondary.url], failover: { attempts: 2, primaryCheckS: 1 },
        batch: { maxSamples: 200, maxDelayMs: 100 }, reconnectMinMs: 100, reconnectMaxMs: 400,
      },
      buffer: { commitIntervalMs: 50 },
    });
    const onPrimary = track(new Collector(primary.url, { clientId: 'collector-primary' }));
    const onSecondary = track(new Collector(secondary.url, { clientId: 'collector-secondary' }));
    await until('collectors', () => onPrimary.client.connected && onSecondary.client.connected);
    const gw = track(runGateway(file));
    await onPrimary.until(() => onPrimary.seqs.count >= 40, 40_000, 'samples on the primary');
    expect(onSecondary.seqs.count).toBe(0);

    await primary.stop();
    await onSecondary.until(() => onSecondary.seqs.count >= 40, 30_000, 'samples on the secondary');
    expect(gw.log()).toContain('failing over to');
    const beforeReturn = onPrimary.seqs.max!;

    await primary.restart();
    await onPrimary.until(() => onPrimary.seqs.max! > beforeReturn + 40, 30_000, 'samples on the primary again');
    expect(gw.log()).toContain('answers again: moving back');
    const secondaryAtReturn = onSecondary.seqs.max!;
    await sleep(500);
    // Once back, nothing more goes to the secondary.
    expect(onSecondary.seqs.max).toBe(secondaryAtReturn);

    expect(await gw.stop('SIGTERM')).toBe(0);
    const last = await lastSeq(file);
    await until(`every seq 1..${last} at one broker or the other`, () => {
      const all = union(onPrimary.seqs, onSecondary.seqs);
      return all.min === 1 && (all.max ?? 0) >= last && all.gaps().length === 0;
    }, 20_000);
    // A sample goes to both brokers only when its PUBACK was lost with the primary; every copy has its seq.
    const both = [...seqsOf(onSecondary.seqs)].filter((q) => onPrimary.seqs.has(q)).length;
    expect(both).toBeLessThan(400);
    console.info(`failover: ${last} seqs, ${onPrimary.seqs.count} on the primary, ${onSecondary.seqs.count} on the secondary, ${both} on both`);
  }, 150_000);
});

function seqsOf(set: SeqSet): number[] {
  const out: number[] = [];
  if (set.min === undefined || set.max === undefined) return out;
  for (let q = set.min; q <= set.max; q++) if (set.has(q)) out.push(q);
  return out;
}

function union(a: SeqSet, b: SeqSet): SeqSet {
  const u = new SeqSet();
  for (const q of seqsOf(a)) u.add(q);
  for (const q of seqsOf(b)) u.add(q);
  return u;
}
