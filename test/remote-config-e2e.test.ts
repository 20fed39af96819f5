/**
 * Remote configuration end to end: the gateway as a real process, Mosquitto as the broker, the village
 * simulator as the devices, the office's side through `fieldgate config push`. A signed change that adds a
 * point is applied in place with no sample lost; an invalid one is rejected with key paths; a forged and an
 * unsigned one are rejected; an uplink change to a dead broker rolls back by itself and says so; a SIGKILL
 * while a change is on probation comes back on a consistent version and finishes it; a version pushed while
 * the gateway was offline is applied when it connects.
 */
import { generateKeyPairSync, sign } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import mqtt, { type MqttClient } from 'mqtt';
import { stringify } from 'yaml';
import { startSimulator, type RunningSimulator } from '../src/sim/server.js';
import { ConfigStore } from '../src/supervisor/config-store.js';
import { fieldgate } from './helpers/cli.js';
import { Collector, lastSeq, runGateway, type GatewayProcess } from './helpers/gw-process.js';
import { freePort, needPeers, startMosquitto, tempDir, type MosquittoPeer } from './helpers/peers.js';

const skip = needPeers('mosquitto');
const PREFIX = 'fleet';
const GW = 'village-7';
const BASE = `${PREFIX}/${GW}/config`;

describe.skipIf(skip)('remote configuration against Mosquitto', () => {
  let broker: MosquittoPeer;
  let sim: RunningSimulator;
  let gw: GatewayProcess;
  let collector: Collector;
  let office: MqttClient;
  let dir: string;
  let file: string;
  let keyFile: string;
  const reports: Array<Record<string, unknown>> = [];
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const forger = generateKeyPairSync('ed25519');

  const configOf = (points: string[], uplinkUrl = broker.url) => ({
    gateway: { id: GW, dataDir: join(dir, 'data'), clock: { trust: 'always' } },
    remoteConfig: { enabled: true, publicKeyFile: join(dir, 'config.pub'), confirmS: 10 },
    buses: [{ id: 'plc', transport: 'tcp', host: '127.0.0.1', port: sim.tcpPort }],
    devices: [{ id: 'pump_house', bus: 'plc', unit: 1, pollIntervalMs: 250, points: points.map((id, i) => ({ id, fc: 4, address: i })) }],
    uplink: { url: uplinkUrl, topicPrefix: PREFIX, batch: { maxDelayMs: 200 }, reconnectMinMs: 200, reconnectMaxMs: 1000 },
    status: { enabled: false },
  });

  const pushFile = async (version: number, config: unknown) => {
    const f = join(dir, `push-${version}.yaml`);
    writeFileSync(f, stringify(config));
    const r = await fieldgate(['config', 'push', broker.url, f, '--gateway', GW, '--prefix', PREFIX, '--key', keyFile, '--config-version', String(version)]);
    expect(r.code, r.stderr).toBe(0);
  };
  const pushRaw = (envelope: unknown) => office.publishAsync(`${BASE}/desired`, JSON.stringify(envelope), { qos: 1, retain: true });
  const report = (version: number, state?: string) => reports.find((r) => r.version === version && (state === undefined || r.state === state));
  const until = (cond: () => boolean, what: string, ms = 30_000) => collector.until(cond, ms, what);

  beforeAll(async () => {
    broker = await startMosquitto();
    sim = await startSimulator({ scenario: 'village-water', tcp: { host: '127.0.0.1', port: 0 } });
    dir = tempDir('remote-config');
    keyFile = join(dir, 'config.key');
    writeFileSync(keyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }));
    writeFileSync(join(dir, 'config.pub'), publicKey.export({ type: 'spki', format: 'pem' }));
    file = join(dir, 'gateway.yaml');
    writeFileSync(file, stringify(configOf(['inlet_pressure'])));
    collector = new Collector(broker.url, {}, PREFIX);
    office = mqtt.connect(broker.url, { clientId: 'office', reconnectPeriod: 300 });
    office.on('message', (topic, payload) => {
      if (topic === `${BASE}/reported` && payload.length > 0) reports.push(JSON.parse(payload.toString()));
    });
    await new Promise<void>((resolve) => office.on('connect', () => office.subscribe(`${BASE}/reported`, { qos: 1 }, () => resolve())));
    gw = runGateway(file);
    await gw.running();
    await until(() => collector.statuses.some((s) => s.state === 'online'), 'birth');
  }, 60_000);

  afterAll(async () => {
    if (process.env.FIELDGATE_TEST_DUMP) writeFileSync(process.env.FIELDGATE_TEST_DUMP, gw?.log() ?? '');
    await gw?.stop();
    await office?.publishAsync(`${BASE}/desired`, '', { qos: 1, retain: true }).catch(() => {});
    await office?.endAsync();
    await collector?.close();
    await sim?.close();
    await broker?.stop();
  });

  it('applies a signed change that adds a point, in place, and its birth carries the reported hash', async () => {
    await pushFile(10, configOf(['inlet_pressure', 'tank_level']));
    await until(() => report(10, 'applied') !== undefined, 'version 10 applied');
    expect(report(10, 'pending')).toBeDefined();
    await until(() => collector.samples.some((s) => s.point === 'tank_level'), 'samples of the new point');
    const birth = collector.statuses.filter((s) => s.state === 'online').at(-1)!;
    expect(birth.configHash).toBe(report(10, 'applied')!.hash);
    expect(gw.log()).not.toMatch(/restarting the gateway/);
  });

  it('rejects an invalid file with its key paths, a forged one and an unsigned one; nothing changes', async () => {
    const bad = configOf(['inlet_pressure', 'tank_level']) as { devices: Array<{ points: Array<Record<string, unknown>> }> };
    bad.devices[0]!.points[1]!.fc = 9;
    // `fieldgate config push` refuses to sign an invalid file; a hand-made envelope gets it to the gateway.
    const f = join(dir, 'bad.yaml');
    writeFileSync(f, stringify(bad));
    const refused = await fieldgate(['config', 'push', broker.url, f, '--gateway', GW, '--prefix', PREFIX, '--key', keyFile, '--config-version', '11']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/devices\[0\]\.points\[1\]\.fc/);
    const badText = stringify(bad);
    await pushRaw({ v: 1, version: 11, config: badText, sig: sign(null, Buffer.from(badText), privateKey).toString('base64') });
    await until(() => report(11) !== undefined, 'version 11 judged');
    expect(report(11)).toMatchObject({ state: 'rejected', errors: [{ path: 'devices[0].points[1].fc' }] });
    const text = stringify(configOf(['inlet_pressure']));
    await pushRaw({ v: 1, version: 12, config: text, sig: sign(null, Buffer.from(text), forger.privateKey).toString('base64') });
    await until(() => report(12) !== undefined, 'version 12 judged');
    expect(report(12)).toMatchObject({ state: 'rejected', reason: expect.stringMatching(/signature does not match/) });
    await pushRaw({ v: 1, version: 13, config: text });
    await until(() => report(13) !== undefined, 'version 13 judged');
    expect(report(13)).toMatchObject({ state: 'rejected', reason: expect.stringMatching(/not signed/) });
    const history = JSON.parse((await fieldgate(['config', 'history', '-c', file, '--json'])).stdout);
    expect(history.versions.find((v: { running: boolean }) => v.running)).toMatchObject({ version: 10 });
  });

  it('rolls back by itself an uplink change to a dead broker, and reports it once connected again', async () => {
    const dead = `mqtt://127.0.0.1:${await freePort()}`;
    await pushFile(20, configOf(['inlet_pressure', 'tank_level'], dead));
    await until(() => report(20, 'rolled-back') !== undefined, 'version 20 rolled back', 60_000);
    expect(report(20, 'rolled-back')!.reason).toMatch(/uplink did not connect within 10 s: back to version 10/);
    const history = JSON.parse((await fieldgate(['config', 'history', '-c', file, '--json'])).stdout);
    expect(history.versions.find((v: { running: boolean }) => v.running)).toMatchObject({ version: 10 });
  }, 90_000);

  it('comes back after a SIGKILL during probation on the staged version, and confirms it', async () => {
    const store = ConfigStore.forDataDir(join(dir, 'data'));
    await pushFile(30, configOf(['inlet_pressure', 'tank_level', 'pump_running']));
    // Killed as soon as the change is staged (or, on a fast run, just after it was confirmed: still consistent).
    await until(() => store.readState()?.pending?.version === 30 || report(30) !== undefined, 'version 30 staged', 60_000);
    await gw.stop('SIGKILL');
    gw = runGateway(file);
    await gw.running();
    await until(() => report(30, 'applied') !== undefined, 'version 30 confirmed after the restart', 60_000);
    expect(store.readState()).toMatchObject({ applied: { version: 30 } });
    expect(store.readState()?.pending).toBeUndefined();
  }, 90_000);

  it('runs a kept version again on the technician\'s word, on probation, through the running gateway', async () => {
    const before = reports.filter((r) => r.version === 10 && r.state === 'applied').length;
    const r = await fieldgate(['config', 'rollback', '-c', file, '--to', '10'], 60_000);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^pending/);
    await until(() => reports.filter((x) => x.version === 10 && x.state === 'applied').length > before, 'version 10 confirmed again');
    const missing = await fieldgate(['config', 'rollback', '-c', file, '--to', '999']);
    expect(missing.code).toBe(1);
    expect(missing.stdout).toMatch(/version 999 is not kept/);
  }, 90_000);

  it('applies the retained version pushed while the gateway was offline, with no sample lost', async () => {
    await gw.stop();
    await pushFile(40, configOf(['inlet_pressure', 'tank_level']));
    gw = runGateway(file);
    await gw.running();
    await until(() => report(40, 'applied') !== undefined, 'version 40 applied after connecting', 60_000);
    expect(await gw.stop()).toBe(0);
    const last = await lastSeq(file);
    await until(() => collector.complete(last), `every seq 1..${last}`);
  }, 90_000);
});
