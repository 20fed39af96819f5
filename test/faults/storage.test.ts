/**
 * Scenario 5: storage faults. (a) The disk fills up under the outbox (a small tmpfs and a filler file) while a
 * backlog waits for the link: the gateway holds new readings in memory, says so, recovers by itself when the
 * filler is deleted, and loses nothing committed. (b) A corrupt database at start: moved aside, a new epoch,
 * an `outbox-recreated` event at seq 1, and no crash loop.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startSimulator, type RunningSimulator } from '../../src/sim/server.js';
import { runGateway, type GatewayProcess } from '../helpers/gw-process.js';
import { needPeers, startMosquitto, tempDir } from '../helpers/peers.js';
import { bufferStats, drained, faultConfig, fillDisk, finish, Ledger, mountTmpfs, skipOrFail, sleep, summary, tally, until, villageDevices } from './helpers.js';
import { startProxy } from './link-proxy.js';

const skip = needPeers('mosquitto');

describe.skipIf(skip)('faults: storage', () => {
  let sim: RunningSimulator;
  const cleanups: Array<() => Promise<unknown> | unknown> = [];
  beforeAll(async () => {
    sim = await startSimulator({ scenario: 'village-water', tcp: { host: '127.0.0.1', port: 0 }, seed: 16 });
  });
  afterAll(async () => {
    await sim?.close();
  });
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await Promise.resolve().then(c).catch(() => {});
  });

  const bus = () => ({ id: 'sim', transport: 'tcp', host: '127.0.0.1', port: sim.tcpPort, reconnectMinMs: 200 });
  const logLines = (gw: GatewayProcess, re: RegExp) => gw.log().split('\n').filter((l) => re.test(l));

  it('holds readings in memory while the disk is full and recovers by itself', async (ctx) => {
    const t0 = Date.now();
    const fs = mountTmpfs(4);
    if (typeof fs === 'string') return ctx.skip(skipOrFail(fs));
    cleanups.push(() => fs.unmount());
    const broker = await startMosquitto();
    cleanups.push(() => broker.stop());
    const proxy = await startProxy(broker.port);
    cleanups.push(() => proxy.close());
    const ledger = new Ledger(broker.url, 'ledger-disk-full');
    cleanups.push(() => ledger.close());
    await until('the subscriber', () => ledger.client.connected);
    const file = faultConfig(tempDir('faults-disk-full'), { buses: [bus()], devices: villageDevices('sim', 20), uplink: { url: proxy.url }, dataDir: join(fs.dir, 'data') });
    const start = () => {
      const gw = runGateway(file);
      cleanups.push(() => gw.stop('SIGKILL'));
      return gw;
    };
    const gw = start();
    await until('first samples', () => (ledger.seqs.values().next().value?.count ?? 0) >= 20, 30_000);

    // The link goes down, so the outbox grows; then the disk fills up under it.
    proxy.setMode('refuse');
    proxy.cut();
    await sleep(2000);
    const filler = join(fs.dir, 'filler');
    const fillerBytes = fillDisk(filler);
    const fullAt = Date.now();
    const refuseMs = await until('the outbox to report a full disk', () => logLines(gw, /storage refuses writes/).length > 0, 60_000, () => gw.log().slice(-1000));
    await sleep(4000); // acquisition goes on into memory
    // The link comes back while the disk is still full: the backlog can be read and sent, not deleted.
    proxy.setMode('pass');
    await sleep(3000);
    expect(gw.child.exitCode, 'still running on a full disk').toBeNull();
    const fullFor = Date.now() - fullAt;
    rmSync(filler);
    const recoverMs = await until('the outbox to write again', () => logLines(gw, /writable again/).length > 0, 30_000, () => gw.log().slice(-1000));
    // Live information for the cloud: the state change is published once the link is up (checked every 5 s).
    await until('the outbox-state event', () => ledger.events.some((e) => e.event === 'outbox-state' && e.state === 'ok' && e.was === 'disk-full'), 15_000);
    const held = JSON.parse(logLines(gw, /storage refuses writes/)[0]!).pending as number;

    const drainMs = await drained(ledger, file);
    const { exitCode, stats, tally: t, redrains } = await finish(gw, start, file, ledger);
    summary('disk full (4 MiB tmpfs) under a backlog, then space freed', t, (Date.now() - t0) / 1000, {
      'filler bytes': fillerBytes, 'ms to detect': refuseMs, 'ms full': fullFor, 'readings in memory when detected': held,
      'ms to write again after the filler went': recoverMs, 'dropped from memory': stats.dropped.memoryQueueFull ?? 0, 'backlog drained within ms': drainMs, redrains,
    });
    expect(exitCode).toBe(0);
    expect(stats.samples + stats.events).toBe(0);
    expect(t.missing).toEqual([]);
    expect(t.lost).toBe(0);
    expect(stats.dropped.memoryQueueFull ?? 0).toBe(0);
    expect(logLines(gw, /moved aside/)).toEqual([]);
  });

  it('moves a corrupt database aside, starts a new epoch, says so, and does not crash-loop', async () => {
    const t0 = Date.now();
    const broker = await startMosquitto();
    cleanups.push(() => broker.stop());
    const ledger = new Ledger(broker.url, 'ledger-corrupt');
    cleanups.push(() => ledger.close());
    await until('the subscriber', () => ledger.client.connected);
    const dir = tempDir('faults-corrupt');
    const file = faultConfig(dir, { buses: [bus()], devices: villageDevices('sim', 50), uplink: { url: broker.url } });
    const start = () => {
      const gw = runGateway(file);
      cleanups.push(() => gw.stop('SIGKILL'));
      return gw;
    };
    let gw = start();
    await until('first samples', () => (ledger.seqs.values().next().value?.count ?? 0) >= 50, 30_000);
    await drained(ledger, file);
    expect(await gw.stop('SIGTERM')).toBe(0);
    const old = await bufferStats(file);
    await until('the old epoch', () => tally(ledger, old.epoch, old.lastSeq).lost === 0, 10_000);
    const oldTally = tally(ledger, old.epoch, old.lastSeq);

    // Garbage over the whole file, as a failing SD card might leave it.
    const db = join(dir, 'data', 'outbox.db');
    writeFileSync(db, randomBytes(Math.max(statSync(db).size, 65_536)));
    const restartedAt = Date.now();
    gw = start();
    await until('the outbox-recreated event', () => ledger.events.some((e) => e.event === 'outbox-recreated'), 30_000, () => gw.log().slice(-1000));
    const recreatedMs = Date.now() - restartedAt;
    const event = ledger.events.find((e) => e.event === 'outbox-recreated')!;
    expect(event).toMatchObject({ seq: 1, reason: 'corrupt', g: 'gw-faults' });
    expect(event.ep).not.toBe(old.epoch);
    expect(existsSync(event.movedTo as string), 'the corrupt file is kept for a technician').toBe(true);
    await sleep(3000);
    expect(gw.child.exitCode, 'running on the new database').toBeNull();
    // A second start opens the new database as it is: no second recreation.
    expect(await gw.stop('SIGTERM')).toBe(0);
    gw = start();
    await until('samples after the second start', async () => (await bufferStats(file)).lastSeq > 0 && gw.log().includes('outbox opened'), 20_000);
    await sleep(1500);
    expect(gw.log()).not.toMatch(/moved aside/);

    const drainMs = await drained(ledger, file);
    const { exitCode, stats, tally: t } = await finish(gw, start, file, ledger);
    summary('corrupt outbox.db at start (new epoch)', {
      ...t, produced: t.produced + oldTally.produced, delivered: t.delivered + oldTally.delivered, lost: t.lost + oldTally.lost, duplicated: t.duplicated + oldTally.duplicated,
    }, (Date.now() - t0) / 1000, {
      'old epoch produced/delivered': `${oldTally.produced}/${oldTally.delivered}`, 'new epoch produced/delivered': `${t.produced}/${t.delivered}`,
      'ms from start to the outbox-recreated event': recreatedMs, 'backlog drained within ms': drainMs,
    });
    expect(stats.epoch).toBe(event.ep);
    expect(exitCode).toBe(0);
    expect(stats.samples + stats.events).toBe(0);
    expect(t.missing).toEqual([]);
    expect(t.lost + oldTally.lost).toBe(0);
    expect(ledger.epoch(stats.epoch).has(1), 'the event counts as seq 1 of the new epoch').toBe(true);
  });
});
