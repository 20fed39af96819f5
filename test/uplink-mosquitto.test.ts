/**
 * Store-and-forward end to end against a real Mosquitto: the simulator feeds a gateway process whose samples
 * must all reach a subscriber (every committed seq, duplicates allowed and counted) through broker restarts,
 * a gateway SIGKILLed while the broker is down, passwords, TLS with client certificates and a wrong CA.
 */
import { afterAll, beforeAll, describe, expect, it, type TestContext } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startSimulator, type RunningSimulator } from '../src/sim/server.js';
import { cleanupsOf } from './helpers/cleanup.js';
import { makeTlsFiles, needPeers, startMosquitto, tempDir, type MosquittoPeer } from './helpers/peers.js';
import { Collector, lastSeq, runGateway, writeConfig, type GatewayProcess } from './helpers/gw-process.js';

const skip = needPeers('mosquitto', 'openssl');

// Each test has a broker of its own (the simulator is shared), so they run at the same time.
describe.skipIf(skip).concurrent('uplink to Mosquitto', () => {
  let sim: RunningSimulator;
  beforeAll(async () => {
    sim = await startSimulator({ scenario: 'village-water', tcp: { host: '127.0.0.1', port: 0 }, seed: 9 });
  });
  afterAll(async () => {
    await sim?.close();
  });

  function gatewayConfig(dir: string, uplink: Record<string, unknown>, id = 'gw-test') {
    return writeConfig(dir, {
      gateway: { id, dataDir: join(dir, 'data') },
      buses: [{ id: 'sim', transport: 'tcp', host: '127.0.0.1', port: sim.tcpPort, reconnectMinMs: 200 }],
      devices: [
        { id: 'pump_house', bus: 'sim', unit: 1, pollIntervalMs: 50, points: [
          { id: 'inlet_pressure', fc: 4, address: 0, scale: 0.000625, offset: -2.5, unit: 'bar' },
          { id: 'tank_level', fc: 4, address: 1, scale: 0.0003125, offset: -1.25, unit: 'm' },
        ] },
        { id: 'flow_meter', bus: 'sim', unit: 3, pollIntervalMs: 50, points: [
          { id: 'flow', fc: 3, address: 0, type: 'float32', order: 'CDAB', unit: 'm3/h' },
        ] },
      ],
      uplink: { batch: { maxSamples: 200, maxDelayMs: 100 }, reconnectMinMs: 200, reconnectMaxMs: 1000, ...uplink },
      buffer: { commitIntervalMs: 50 },
    });
  }

  /** The test's `track(x)`: x is stopped (or closed) at its end. */
  const trackerIn = (ctx: TestContext) => {
    const cleanup = cleanupsOf(ctx, true);
    return <T extends { stop(): Promise<unknown> } | { close(): Promise<unknown> }>(x: T): T => {
      cleanup(() => ('stop' in x ? x.stop() : (x as { close(): Promise<unknown> }).close()));
      return x;
    };
  };

  it('delivers every committed seq, says online with the point list, and offline on SIGTERM', async (ctx) => {
    const track = trackerIn(ctx);
    const broker = track(await startMosquitto());
    const dir = tempDir('gw');
    const file = gatewayConfig(dir, { url: broker.url });
    const sub = track(new Collector(broker.url));
    await sub.until(() => sub.client.connected);
    const gw = track(runGateway(file));
    await sub.until(() => sub.seqs.count >= 60, 15_000, '60 samples');
    const birth = sub.statuses.find((s) => s.state === 'online')!;
    expect(birth.version).toBe('0.1.0');
    expect(birth.configHash).toMatch(/^[0-9a-f]{12}$/);
    expect(birth.points).toEqual(expect.arrayContaining([[expect.any(Number), 'pump_house', 'inlet_pressure', 'bar', 'uint16'], [expect.any(Number), 'flow_meter', 'flow', 'm3/h', 'float32']]));
    const s = sub.samples.find((x) => x.point === 'inlet_pressure')!;
    expect(s.device).toBe('pump_house');
    expect(s.quality).toBe('good');
    expect(s.value as number).toBeGreaterThan(3);
    expect(await gw.stop('SIGTERM')).toBe(0);
    const last = await lastSeq(file);
    await sub.until(() => sub.complete(last), 10_000, `seq 1..${last}`);
    await sub.until(() => sub.statuses.at(-1)?.state === 'offline', 5000, 'offline status');
    expect(sub.statuses.at(-1)).toMatchObject({ state: 'offline', reason: 'shutdown' });
    expect(gw.log()).not.toMatch(/"level":50/);
  });

  it('loses nothing through broker restarts and a gateway SIGKILLed while the broker is down', async (ctx) => {
    const track = trackerIn(ctx);
    const broker = track(await startMosquitto({ persistence: true }));
    const dir = tempDir('gw');
    const file = gatewayConfig(dir, { url: broker.url, protocolVersion: 4 });
    const sub = track(new Collector(broker.url, { clientId: 'collector-outage', protocolVersion: 4 }));
    await sub.until(() => sub.client.connected);
    let gw: GatewayProcess = track(runGateway(file));
    await sub.until(() => sub.seqs.count >= 40);
    for (let i = 0; i < 2; i++) {
      const seen = sub.seqs.max!;
      await broker.restart();
      await sub.until(() => sub.seqs.max! > seen + 10, 15_000, `delivery after broker restart ${i + 1}`);
    }
    const before = sub.seqs.max!;
    await sub.until(() => sub.seqs.max! > before + 20, 15_000, 'delivery after restarts');
    // Broker down; the gateway keeps acquiring into the outbox, then is killed without warning.
    await broker.stop();
    await new Promise((r) => setTimeout(r, 800));
    await gw.stop('SIGKILL');
    gw = track(runGateway(file));
    await new Promise((r) => setTimeout(r, 1500));
    await broker.restart();
    await sub.until(() => sub.seqs.max! > before + 100, 20_000, 'the backlog after the outage');
    expect(await gw.stop('SIGTERM')).toBe(0);
    const last = await lastSeq(file);
    await sub.until(() => sub.complete(last), 20_000, `every seq 1..${last}`);
    expect(sub.seqs.gaps()).toEqual([]);
    // Duplicates are allowed (a PUBACK lost with the broker), and counted.
    expect(sub.seqs.duplicates).toBeGreaterThanOrEqual(0);
  });

  it('logs in with a password file, and refuses to log a wrong password', async (ctx) => {
    const track = trackerIn(ctx);
    const broker = track(await startMosquitto({ passwordFile: { user: 'gw01', password: 's3cret-pw' } }));
    const dir = tempDir('gw');
    const pass = join(dir, 'mqtt.pass');
    writeFileSync(pass, 's3cret-pw\n');
    const good = track(runGateway(gatewayConfig(dir, { url: broker.url, username: 'gw01', passwordFile: pass })));
    const sub = track(new Collector(broker.url, { username: 'gw01', password: 's3cret-pw' }));
    await sub.until(() => sub.seqs.count >= 10);
    await good.stop();

    const dir2 = tempDir('gw');
    const bad = track(runGateway(gatewayConfig(dir2, { url: broker.url, username: 'gw01', reconnectMinMs: 200 }, 'gw-bad'), { FIELDGATE_MQTT_PASSWORD: 'wrong-pw-123' }));
    const end = Date.now() + 10_000;
    while ((bad.log().match(/refused the credentials/g) ?? []).length < 2 && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
    expect((bad.log().match(/refused the credentials/g) ?? []).length).toBeGreaterThanOrEqual(2);
    expect(bad.child.exitCode).toBeNull();
    expect(bad.log()).not.toContain('wrong-pw-123');
    expect(good.log()).not.toContain('s3cret-pw');
    expect(await bad.stop()).toBe(0);
  });

  it('connects with mutual TLS, and refuses a broker signed by another CA', async (ctx) => {
    const track = trackerIn(ctx);
    const tlsDir = tempDir('tls');
    const tls = await makeTlsFiles(tlsDir);
    const broker = track(await startMosquitto({ tls: { caFile: tls.caFile, certFile: tls.serverCertFile, keyFile: tls.serverKeyFile, requireCertificate: true } }));
    const dir = tempDir('gw');
    const gw = track(runGateway(gatewayConfig(dir, { url: broker.url, ca: tls.caFile, cert: tls.clientCertFile, key: tls.clientKeyFile })));
    const sub = track(new Collector(broker.url, { ca: [readFileSync(tls.caFile)], cert: readFileSync(tls.clientCertFile), key: readFileSync(tls.clientKeyFile) }));
    await sub.until(() => sub.seqs.count >= 10, 15_000, 'samples over TLS');
    await gw.stop();

    const other = await makeTlsFiles(tempDir('tls-other'));
    const dir2 = tempDir('gw');
    const bad = track(runGateway(gatewayConfig(dir2, { url: broker.url, ca: other.caFile, cert: tls.clientCertFile, key: tls.clientKeyFile }, 'gw-wrong-ca')));
    const end = Date.now() + 10_000;
    while (!/certificate is not trusted/.test(bad.log()) && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
    expect(bad.log()).toMatch(/TLS: the broker's certificate is not trusted/);
    expect(bad.child.exitCode).toBeNull();
    expect(await bad.stop()).toBe(0);
  });
});
