/**
 * No secret leaves the gateway: with a broker user and password (passwordFile) and a status token, none of
 * their values appears in a log line, the status page and its API, /metrics, or any MQTT message ('#').
 */
import { writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { connect } from 'node:net';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { startSimulator } from '../src/sim/server.js';
import { runGateway, writeConfig } from './helpers/gw-process.js';
import { freePort, needPeers, startMosquitto, tempDir } from './helpers/peers.js';

const skip = needPeers('mosquitto');
const USER = 'gw-user-4d2a';
const PASSWORD = 'pw-9f3c1e77b2';
const TOKEN = 'tok-5a8e0c3d61f2';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function get(url: string, headers: Record<string, string> = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve(`${res.statusCode} ${JSON.stringify(res.headers)} ${body}`));
    });
    req.on('error', reject);
    req.end();
  });
}

describe.skipIf(skip)('secrets', () => {
  const cleanups: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
  });

  it('never shows the broker password, user or the status token', { timeout: 60_000 }, async () => {
    const sim = await startSimulator({ scenario: 'village-water', tcp: { host: '127.0.0.1', port: 0 }, seed: 3 });
    cleanups.push(() => sim.close());
    const broker = await startMosquitto({ passwordFile: { user: USER, password: PASSWORD } });
    cleanups.push(() => broker.stop());
    const dir = tempDir('secrets');
    writeFileSync(join(dir, 'mqtt.pass'), `${PASSWORD}\n`);
    const port = await freePort();
    const file = writeConfig(dir, {
      gateway: { id: 'gw-secrets', dataDir: join(dir, 'data') },
      buses: [{ id: 'sim', transport: 'tcp', host: '127.0.0.1', port: sim.tcpPort }],
      devices: [{ id: 'pump_house', bus: 'sim', unit: 1, pollIntervalMs: 100, points: [{ id: 'inlet_pressure', fc: 4, address: 0 }] }],
      uplink: { url: broker.url, username: USER, passwordFile: join(dir, 'mqtt.pass'), batch: { maxDelayMs: 100 } },
      status: { listen: `127.0.0.1:${port}`, token: TOKEN },
    });
    const seen: string[] = [];
    const sub = mqtt.connect(broker.url, { username: USER, password: PASSWORD, reconnectPeriod: 300 });
    sub.on('error', () => {});
    sub.on('connect', () => sub.subscribe('#', { qos: 1 }));
    sub.on('message', (topic, payload) => seen.push(`${topic} ${payload.toString()}`));
    cleanups.push(() => new Promise<void>((resolve) => sub.end(true, {}, () => resolve())));
    const gw = runGateway(file);
    cleanups.push(() => gw.stop());
    const end = Date.now() + 20_000;
    while (!seen.some((m) => m.includes('/telemetry')) && Date.now() < end) await sleep(50);
    expect(seen.some((m) => m.includes("/telemetry")), gw.log().slice(-2000)).toBe(true);
    const base = `http://127.0.0.1:${port}`;
    const auth = { authorization: `Bearer ${TOKEN}` };
    const pages = [
      await get(`${base}/`, auth), await get(`${base}/api/status`, auth), await get(`${base}/api/history`, auth),
      await get(`${base}/metrics`, auth), await get(`${base}/healthz`), await get(`${base}/`),
    ];
    // A malformed request carrying the token in its query must not put it in the log.
    const answer = await new Promise<string>((resolve) => {
      let got = '';
      const s = connect(port, '127.0.0.1', () => s.write(`GET http://[/x?token=${TOKEN} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`));
      s.on('data', (d) => {
        got += d;
        s.destroy();
        resolve(got);
      });
      s.on('error', () => resolve(got));
    });
    expect(answer).toMatch(/^HTTP\/1\.1 400/);
    pages.push(answer);
    expect(await gw.stop('SIGTERM')).toBe(0);
    await sleep(300);
    for (const secret of [PASSWORD, TOKEN, USER]) {
      expect(gw.log(), secret).not.toContain(secret);
      for (const p of pages) expect(p, secret).not.toContain(secret);
      for (const m of seen) expect(m, secret).not.toContain(secret);
    }
  });
});
