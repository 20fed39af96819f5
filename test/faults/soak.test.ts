/**
 * Scenario 6: a soak. 1,000 points at 1 Hz (the benchmark's synthetic map: four units answering any address)
 * into Mosquitto for 60 s, or 10 minutes with FIELDGATE_SOAK=1. The gateway's RSS is read every second from
 * /proc/PID/status into test-output/soak-rss.csv; the suite fails when the second half's RSS grows past a
 * generous bound over the first half's (after a warm-up), or when any committed sample is missing.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startSimulator } from '../../src/sim/server.js';
import { syntheticDevices, syntheticScenario } from '../../bench/modbus-tcp.js';
import { runGateway } from '../helpers/gw-process.js';
import { needPeers, startMosquitto, tempDir } from '../helpers/peers.js';
import { drained, faultConfig, finish, Ledger, ROOT, rssKiB, SOAK, sleep, summary, until } from './helpers.js';

const skip = needPeers('mosquitto');
const DURATION_S = SOAK ? 600 : 60;
/** Start-up and the first batches settle in this share of the run; it belongs to neither half. */
const WARMUP = 0.1;
/** The second half's peak may exceed the first half's by this much before it counts as growth. */
const BOUND = { share: 0.2, mib: 16 };

describe.skipIf(skip)('faults: soak', () => {
  const cleanups: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
  });

  it(`1,000 points at 1 Hz for ${DURATION_S} s: nothing lost, RSS flat`, async () => {
    const t0 = Date.now();
    const sim = await startSimulator({ scenario: syntheticScenario(), tcp: { host: '127.0.0.1', port: 0 } });
    cleanups.push(() => sim.close());
    const broker = await startMosquitto();
    cleanups.push(() => broker.stop());
    const ledger = new Ledger(broker.url, 'ledger-soak');
    cleanups.push(() => ledger.close());
    await until('the subscriber', () => ledger.client.connected);
    const file = faultConfig(tempDir('faults-soak'), {
      buses: [{ id: 'synth', transport: 'tcp', host: '127.0.0.1', port: sim.tcpPort, reconnectMinMs: 200 }],
      devices: syntheticDevices('synth', 1000),
      uplink: { url: broker.url, batch: { maxSamples: 500, maxDelayMs: 1000 } },
      buffer: { commitIntervalMs: 250 },
    });
    const start = () => {
      const gw = runGateway(file);
      cleanups.push(() => gw.stop('SIGKILL'));
      return gw;
    };
    const gw = start();
    const pid = gw.child.pid!;
    const received = () => [...ledger.seqs.values()].reduce((n, s) => n + s.count, 0);
    const curve: Array<[number, number, number]> = [];
    const began = Date.now();
    for (let s = 1; s <= DURATION_S; s++) {
      await sleep(began + s * 1000 - Date.now());
      const rss = rssKiB(pid);
      expect(rss, `the gateway exited: ${gw.log().slice(-800)}`).toBeDefined();
      curve.push([s, rss!, received()]);
    }
    mkdirSync(join(ROOT, 'test-output'), { recursive: true });
    writeFileSync(join(ROOT, 'test-output', 'soak-rss.csv'), `seconds,rss_kib,samples_delivered\n${curve.map((r) => r.join(',')).join('\n')}\n`);

    const drainMs = await drained(ledger, file);
    const { exitCode, stats, tally } = await finish(gw, start, file, ledger);
    const from = Math.ceil(curve.length * WARMUP);
    const mid = from + Math.floor((curve.length - from) / 2);
    const peak = (rows: typeof curve) => Math.max(...rows.map((r) => r[1])) / 1024;
    const first = peak(curve.slice(from, mid));
    const second = peak(curve.slice(mid));
    const limit = first * (1 + BOUND.share) + BOUND.mib;
    const rate = (curve.at(-1)![2] - curve[from]![2]) / (curve.length - from);
    summary(`soak: 1,000 points at 1 Hz for ${DURATION_S} s`, tally, (Date.now() - t0) / 1000, {
      'samples/s delivered': Math.round(rate), 'RSS MiB peak, first half': first.toFixed(1), 'second half': second.toFixed(1),
      'bound': limit.toFixed(1), 'backlog drained within ms': drainMs,
    });
    expect(exitCode).toBe(0);
    expect(stats.samples + stats.events).toBe(0);
    expect(tally.missing).toEqual([]);
    expect(tally.lost).toBe(0);
    expect(rate).toBeGreaterThan(900);
    expect(second, `RSS peak in the second half (MiB) vs ${first.toFixed(1)} in the first`).toBeLessThanOrEqual(limit);
  });
});
