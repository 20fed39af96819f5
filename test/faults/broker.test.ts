/**
 * Scenario 1: the broker killed and restarted during a drain. A backlog builds while it is down, acquisition
 * goes on, and the broker is restarted again and again while that backlog drains. With a clean stop and
 * persistence, the broker keeps what it queued for the subscriber, so every committed seq must arrive. A
 * SIGKILLed broker loses what it had PUBACKed but not yet delivered: that is counted as the broker's loss,
 * apart from the gateway's, using the PUBACKs seen by the proxy.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startSimulator, type RunningSimulator } from '../../src/sim/server.js';
import { runGateway } from '../helpers/gw-process.js';
import { needPeers, startMosquitto, tempDir, type MosquittoPeer } from '../helpers/peers.js';
import { drained, faultConfig, finish, Ledger, SOAK, sleep, summary, until, villageDevices } from './helpers.js';
import { startProxy } from './link-proxy.js';

const skip = needPeers('mosquitto');

describe.skipIf(skip)('faults: the broker killed during a drain', () => {
  let sim: RunningSimulator;
  const cleanups: Array<() => Promise<unknown>> = [];
  beforeAll(async () => {
    sim = await startSimulator({ scenario: 'village-water', tcp: { host: '127.0.0.1', port: 0 }, seed: 11 });
  });
  afterAll(async () => {
    await sim?.close();
  });
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
  });

  async function setup(name: string) {
    const broker = await startMosquitto({ persistence: true });
    cleanups.push(() => broker.stop());
    const proxy = await startProxy(broker.port);
    cleanups.push(() => proxy.close());
    const ledger = new Ledger(broker.url, `ledger-${name}`);
    cleanups.push(() => ledger.close());
    await until('the subscriber', () => ledger.client.connected);
    const file = faultConfig(tempDir(`faults-${name}`), {
      buses: [{ id: 'sim', transport: 'tcp', host: '127.0.0.1', port: sim.tcpPort, reconnectMinMs: 200 }],
      devices: villageDevices('sim', 20),
      // A capped drain, so the backlog is still draining through the restarts.
      uplink: { url: proxy.url, maxSamplesPerSecond: 300 },
    });
    const start = () => {
      const gw = runGateway(file);
      cleanups.push(() => gw.stop('SIGKILL'));
      return gw;
    };
    return { broker, proxy, ledger, file, gw: start(), start };
  }

  const received = (l: Ledger) => [...l.seqs.values()].reduce((n, s) => n + s.count, 0);

  /** Down for `outageMs` (the backlog), then `restarts` kills, each after the subscriber got more data. */
  async function drainThroughRestarts(broker: MosquittoPeer, ledger: Ledger, outageMs: number, restarts: number, kill: () => Promise<void>) {
    await until('first samples', () => received(ledger) >= 50, 30_000);
    await broker.stop();
    await sleep(outageMs);
    await broker.restart();
    let waited = 0;
    for (let i = 0; i < restarts; i++) {
      const seen = received(ledger);
      waited += await until(`delivery before kill ${i + 1}`, () => received(ledger) >= seen + 20, 30_000);
      await sleep(Math.random() * 600);
      await kill();
    }
    return waited / restarts;
  }

  it(`loses nothing through ${SOAK ? 100 : 20} clean broker restarts during a drain`, async () => {
    const t0 = Date.now();
    const { broker, proxy, ledger, file, gw, start } = await setup('broker-clean');
    const restarts = SOAK ? 100 : 20;
    const perRestart = await drainThroughRestarts(broker, ledger, SOAK ? 30_000 : 8000, restarts, () => broker.restart());
    const acked = (ep: string) => proxy.acked.get(ep);
    const drainMs = await drained(ledger, file, acked);
    const { exitCode, stats, tally, redrains } = await finish(gw, start, file, ledger, acked);
    summary(`broker restarted (clean, persistence) x${restarts} during a drain`, tally, (Date.now() - t0) / 1000, {
      'mean ms from restart to new deliveries': Math.round(perRestart), 'backlog drained within ms of the last restart': drainMs, redrains,
    });
    expect(exitCode).toBe(0);
    expect(stats.samples + stats.events, 'left in the outbox after a clean stop').toBe(0);
    expect(tally.missing, 'committed seqs never delivered').toEqual([]);
    expect(tally.lost).toBe(0);
    // A clean stop saves the subscriber's queue: the broker must not lose anything either.
    expect(tally.brokerLost).toBe(0);
    expect(ledger.errors).toEqual([]);
  });

  it(`counts a SIGKILLed broker's loss apart from the gateway's (${SOAK ? 50 : 10} kills)`, async () => {
    const t0 = Date.now();
    const { broker, proxy, ledger, file, gw, start } = await setup('broker-kill');
    await until('first samples', () => received(ledger) >= 20, 30_000);
    // One clean restart saves the subscriber's session, so a killed broker comes back knowing the subscription.
    await broker.restart();
    const kills = SOAK ? 50 : 10;
    const perKill = await drainThroughRestarts(broker, ledger, SOAK ? 30_000 : 5000, kills, async () => {
      process.kill(broker.pid, 'SIGKILL');
      await broker.restart();
    });
    const acked = (ep: string) => proxy.acked.get(ep);
    const drainMs = await drained(ledger, file, acked);
    const { exitCode, stats, tally, redrains } = await finish(gw, start, file, ledger, acked);
    summary(`broker SIGKILLed x${kills} during a drain`, tally, (Date.now() - t0) / 1000, {
      'mean ms from restart to new deliveries': Math.round(perKill), 'backlog drained within ms of the last kill': drainMs, redrains,
      'seqs PUBACKed through the proxy': acked(stats.epoch)?.count ?? 0,
    });
    expect(exitCode).toBe(0);
    expect(stats.samples + stats.events, 'left in the outbox after a clean stop').toBe(0);
    expect(tally.missing, 'committed seqs the broker never PUBACKed, never delivered').toEqual([]);
    expect(tally.lost).toBe(0);
    expect(proxy.tapErrors).toEqual([]);
    expect(acked(stats.epoch)?.count ?? 0, 'the proxy saw the PUBACKs').toBeGreaterThan(0);
  });
});
