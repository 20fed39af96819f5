/**
 * Scenario 3: the gateway SIGKILLed at random moments (during start-up, mid-commit, mid-publish) and started
 * again each time, as a watchdog or a power cut would. What had not been committed dies with the process and
 * never got a seq; every committed seq must arrive, in the one epoch (the outbox is never found corrupt).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startSimulator, type RunningSimulator } from '../../src/sim/server.js';
import { runGateway } from '../helpers/gw-process.js';
import { needPeers, startMosquitto, tempDir } from '../helpers/peers.js';
import { drained, faultConfig, finish, Ledger, SOAK, sleep, summary, until, villageDevices } from './helpers.js';
import { startProxy } from './link-proxy.js';

const skip = needPeers('mosquitto');
const KILLS = SOAK ? 200 : 50;

describe.skipIf(skip)('faults: the gateway SIGKILLed', () => {
  let sim: RunningSimulator;
  const cleanups: Array<() => Promise<unknown>> = [];
  beforeAll(async () => {
    sim = await startSimulator({ scenario: 'village-water', tcp: { host: '127.0.0.1', port: 0 }, seed: 13 });
  });
  afterAll(async () => {
    await sim?.close();
  });
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
  });

  it(`loses no committed seq through ${KILLS} SIGKILLs at random moments`, async () => {
    const t0 = Date.now();
    const broker = await startMosquitto();
    cleanups.push(() => broker.stop());
    const proxy = await startProxy(broker.port);
    cleanups.push(() => proxy.close());
    const ledger = new Ledger(broker.url, 'ledger-gw-kill');
    cleanups.push(() => ledger.close());
    await until('the subscriber', () => ledger.client.connected);
    const file = faultConfig(tempDir('faults-gw-kill'), {
      buses: [{ id: 'sim', transport: 'tcp', host: '127.0.0.1', port: sim.tcpPort, reconnectMinMs: 200 }],
      devices: villageDevices('sim', 20),
      uplink: { url: proxy.url },
    });
    const start = () => {
      const gw = runGateway(file);
      cleanups.push(() => gw.stop('SIGKILL'));
      return gw;
    };
    const lived: number[] = [];
    let gw = start();
    for (let i = 0; i < KILLS; i++) {
      // Start-up takes about a second: this spreads the kills over opening, polling, committing and publishing.
      const life = Math.random() * 3000;
      await sleep(life);
      lived.push(life);
      expect(gw.child.exitCode, `run ${i + 1} died by itself: ${gw.log().slice(-600)}`).toBeNull();
      await gw.stop('SIGKILL');
      gw = start();
    }
    const acked = (ep: string) => proxy.acked.get(ep);
    const drainMs = await drained(ledger, file, acked);
    const { exitCode, stats, tally, redrains } = await finish(gw, start, file, ledger, acked);
    summary(`gateway SIGKILLed x${KILLS} at random moments (0-3 s after each start)`, tally, (Date.now() - t0) / 1000, {
      'backlog drained within ms': drainMs, redrains, epochs: ledger.seqs.size,
    });
    expect(exitCode).toBe(0);
    expect(stats.samples + stats.events).toBe(0);
    expect(tally.missing).toEqual([]);
    expect(tally.lost + tally.brokerLost).toBe(0);
    expect([...ledger.seqs.keys()], 'one epoch: the outbox was never replaced').toEqual([stats.epoch]);
    expect(ledger.events.filter((e) => e.event === 'outbox-recreated')).toEqual([]);
  });
});
