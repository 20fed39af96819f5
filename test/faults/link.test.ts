/**
 * Scenario 2: the link between gateway and broker cut by a TCP proxy. (a) Connections reset (RST) again and
 * again, and refused for a while; (b) black-holed: nothing forwarded either way and nothing closed, the
 * half-open link a 4G modem leaves behind. MQTT keepalive (uplink.keepaliveS: 5) must detect it; the gateway
 * must dial again, not hang, and lose nothing.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startSimulator, type RunningSimulator } from '../../src/sim/server.js';
import { runGateway, type GatewayProcess } from '../helpers/gw-process.js';
import { needPeers, startMosquitto, tempDir } from '../helpers/peers.js';
import { drained, faultConfig, finish, Ledger, SOAK, sleep, summary, until, villageDevices } from './helpers.js';
import { startProxy } from './link-proxy.js';

const skip = needPeers('mosquitto');
const KEEPALIVE_S = 5;

describe.skipIf(skip)('faults: the link cut between gateway and broker', () => {
  let sim: RunningSimulator;
  const cleanups: Array<() => Promise<unknown>> = [];
  beforeAll(async () => {
    sim = await startSimulator({ scenario: 'village-water', tcp: { host: '127.0.0.1', port: 0 }, seed: 12 });
  });
  afterAll(async () => {
    await sim?.close();
  });
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
  });

  async function setup(name: string) {
    const broker = await startMosquitto();
    cleanups.push(() => broker.stop());
    const proxy = await startProxy(broker.port);
    cleanups.push(() => proxy.close());
    const ledger = new Ledger(broker.url, `ledger-${name}`);
    cleanups.push(() => ledger.close());
    await until('the subscriber', () => ledger.client.connected);
    const file = faultConfig(tempDir(`faults-${name}`), {
      buses: [{ id: 'sim', transport: 'tcp', host: '127.0.0.1', port: sim.tcpPort, reconnectMinMs: 200 }],
      devices: villageDevices('sim', 50),
      uplink: { url: proxy.url, keepaliveS: KEEPALIVE_S, connectTimeoutMs: 3000 },
    });
    const start = () => {
      const gw = runGateway(file);
      cleanups.push(() => gw.stop('SIGKILL'));
      return gw;
    };
    const gw = start();
    await until('first samples', () => received(ledger) >= 20, 30_000);
    return { proxy, ledger, file, gw, start, acked: (ep: string) => proxy.acked.get(ep) };
  }

  const received = (l: Ledger) => [...l.seqs.values()].reduce((n, s) => n + s.count, 0);
  const losses = (gw: GatewayProcess) => (gw.log().match(/MQTT connection lost/g) ?? []).length;
  const ms = (xs: number[]) => `${Math.round(Math.min(...xs))}-${Math.round(Math.max(...xs))} (mean ${Math.round(xs.reduce((a, b) => a + b, 0) / xs.length)})`;

  it(`loses nothing through ${SOAK ? 100 : 20} connection resets and a refused spell`, async () => {
    const t0 = Date.now();
    const { proxy, ledger, file, gw, start, acked } = await setup('link-rst');
    const cuts = SOAK ? 100 : 20;
    const recover: number[] = [];
    for (let i = 0; i < cuts; i++) {
      await sleep(200 + Math.random() * 1300);
      const seen = received(ledger);
      proxy.cut();
      recover.push(await until(`delivery after reset ${i + 1}`, () => received(ledger) >= seen + 10, 20_000));
    }
    // Refused for a few seconds: every dial is reset at once, a backlog builds.
    proxy.setMode('refuse');
    proxy.cut();
    await sleep(SOAK ? 30_000 : 4000);
    proxy.setMode('pass');
    const drainMs = await drained(ledger, file, acked);
    const { exitCode, stats, tally, redrains } = await finish(gw, start, file, ledger, acked);
    summary(`link reset (RST) x${cuts}, then refused ${SOAK ? 30 : 4} s`, tally, (Date.now() - t0) / 1000, {
      'ms from reset to new deliveries': ms(recover), 'backlog drained within ms of the refusal': drainMs, redrains, connections: proxy.accepted,
    });
    expect(exitCode).toBe(0);
    expect(stats.samples + stats.events).toBe(0);
    expect(tally.missing).toEqual([]);
    expect(tally.lost + tally.brokerLost).toBe(0);
    expect(proxy.tapErrors).toEqual([]);
  });

  it(`detects a black-holed link by keepalive (${KEEPALIVE_S} s) and recovers, ${SOAK ? 10 : 2} times`, async () => {
    const t0 = Date.now();
    const { proxy, ledger, file, gw, start, acked } = await setup('link-hole');
    const holes = SOAK ? 10 : 2;
    const detect: number[] = [];
    const recover: number[] = [];
    for (let i = 0; i < holes; i++) {
      await sleep(1000 + Math.random() * 2000);
      const lost = losses(gw);
      const wills = ledger.statuses.filter((s) => s.reason === 'lost').length;
      proxy.setMode('blackhole');
      const holeAt = Date.now();
      // mqtt.js closes after a keepalive without an answer to its ping: about 1.5 keepalives at most.
      detect.push(await until(`the gateway to notice black hole ${i + 1}`, () => losses(gw) > lost, KEEPALIVE_S * 3000, () => gw.log().slice(-800)));
      // Stay black-holed until the broker has given up on its side too (its own 1.5 keepalives), so the will goes out.
      await until('the broker to publish the will', () => ledger.statuses.filter((s) => s.reason === 'lost').length > wills, KEEPALIVE_S * 3000);
      await sleep(Math.max(0, holeAt + KEEPALIVE_S * 2400 - Date.now()));
      expect(gw.child.exitCode, 'the gateway is still running').toBeNull();
      const seen = received(ledger);
      proxy.setMode('pass');
      recover.push(await until(`delivery after black hole ${i + 1}`, () => received(ledger) >= seen + 10, 30_000));
    }
    const drainMs = await drained(ledger, file, acked);
    const { exitCode, stats, tally, redrains } = await finish(gw, start, file, ledger, acked);
    summary(`link black-holed x${holes} (keepalive ${KEEPALIVE_S} s)`, tally, (Date.now() - t0) / 1000, {
      'ms to detect': ms(detect), 'ms from heal to new deliveries': ms(recover), 'backlog drained within ms': drainMs, redrains,
    });
    expect(exitCode).toBe(0);
    expect(stats.samples + stats.events).toBe(0);
    expect(tally.missing).toEqual([]);
    expect(tally.lost + tally.brokerLost).toBe(0);
    expect(Math.max(...detect)).toBeLessThanOrEqual(KEEPALIVE_S * 2000 + 1000);
  });
});
