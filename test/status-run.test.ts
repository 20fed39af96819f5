/**
 * The status surface as `fieldgate run` serves it: the page comes up with the gateway, is fed by it (readings,
 * PUBACK latency), moves when `status` changes on SIGHUP without touching the MQTT session, survives a
 * restart-reload with what it remembers, and never stops acquisition when its port is taken.
 */
import { writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { startSimulator, type RunningSimulator } from '../src/sim/server.js';
import { StatusSurface } from '../src/status/surface.js';
import { startAedes, type AedesBroker } from './helpers/aedes.js';
import { recordingLogger } from './helpers/gateway.js';
import { Collector, runGateway } from './helpers/gw-process.js';
import { freePort, tempDir } from './helpers/peers.js';

async function getJson(url: string): Promise<{ status: number; body: any }> {
  const res = await fetch(url);
  return { status: res.status, body: await res.json() };
}

async function eventually<T>(fn: () => Promise<T | undefined>, what: string, timeoutMs = 15_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const pointValue = (snap: any, device: string, point: string) =>
  snap.buses.flatMap((b: any) => b.devices).find((d: any) => d.id === device)?.points.find((p: any) => p.id === point)?.value;

describe('fieldgate run serves the status page', () => {
  let sim: RunningSimulator;
  let broker: AedesBroker;
  let blocker: Server;
  let takenPort: number;
  beforeAll(async () => {
    sim = await startSimulator({ scenario: 'village-water', tcp: { host: '127.0.0.1', port: 0 }, seed: 9 });
    broker = await startAedes();
    blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
    takenPort = (blocker.address() as { port: number }).port;
  });
  afterAll(async () => {
    await new Promise((r) => blocker?.close(r));
    await broker?.stop();
    await sim?.close();
  });

  it('starts with the gateway, follows reloads, keeps its memory over a restart, and yields a taken port', async () => {
    const dir = tempDir('status-run');
    const file = join(dir, 'gw.yaml');
    const config = (listen: string, maxDelayMs = 100) => ({
      gateway: { id: 'status-gw', dataDir: join(dir, 'data'), clock: { trust: 'always' } },
      buses: [{ id: 'sim', transport: 'tcp', host: '127.0.0.1', port: sim.tcpPort }],
      devices: [
        { id: 'pump_house', bus: 'sim', unit: 1, pollIntervalMs: 200, points: [{ id: 'inlet_pressure', fc: 4, address: 0, scale: 0.000625, offset: -2.5, unit: 'bar' }] },
      ],
      uplink: { url: broker.url, protocolVersion: 4, batch: { maxDelayMs } },
      buffer: { commitIntervalMs: 50 },
      status: { listen },
    });
    const first = await freePort();
    writeFileSync(file, stringify(config(`127.0.0.1:${first}`)));
    const sub = new Collector(broker.url, { protocolVersion: 4 });
    const gw = runGateway(file);
    try {
      let base = `http://127.0.0.1:${first}`;
      const health = await eventually(async () => {
        const h = await getJson(`${base}/healthz`);
        return h.status === 200 ? h : undefined;
      }, 'healthz 200');
      expect(health.body.status).toMatch(/ok|degraded/);
      const snap = await eventually(async () => {
        const s = (await getJson(`${base}/api/status`)).body;
        return typeof pointValue(s, 'pump_house', 'inlet_pressure') === 'number' && s.uplink.state === 'connected' ? s : undefined;
      }, 'a reading and a connected uplink on /api/status');
      expect(snap.gateway.id).toBe('status-gw');
      // Fed with every PUBACK (about 5 a second here), not only sampled once a second by the page's tick.
      const pubackCount = async () => Number(/^fieldgate_uplink_puback_seconds_count\s+(\d+)/m.exec(await (await fetch(`${base}/metrics`)).text())?.[1] ?? 0);
      const c0 = await pubackCount();
      await new Promise((r) => setTimeout(r, 3000));
      expect((await pubackCount()) - c0).toBeGreaterThanOrEqual(8);

      // A taken port: one warning, and acquisition goes on.
      writeFileSync(file, stringify(config(`127.0.0.1:${takenPort}`)));
      gw.child.kill('SIGHUP');
      await sub.until(() => /status page not started: 127\.0\.0\.1:\d+ is in use/.test(gw.log()), 10_000, 'the warning');
      await expect(fetch(`${base}/healthz`)).rejects.toThrow();
      const before = sub.seqs.count;
      await sub.until(() => sub.seqs.count > before + 5, 10_000, 'polling to go on without a page');

      // A free port again: the page moves; the MQTT session was never dropped for it.
      const second = await freePort();
      writeFileSync(file, stringify(config(`127.0.0.1:${second}`)));
      gw.child.kill('SIGHUP');
      base = `http://127.0.0.1:${second}`;
      await eventually(async () => ((await getJson(`${base}/healthz`)).status === 200 ? true : undefined), 'the page on its new port');
      expect(gw.log().match(/MQTT connected/g)).toHaveLength(1);
      const historyBefore = (await getJson(`${base}/api/history?device=pump_house&point=inlet_pressure`)).body;
      expect(historyBefore.t.length).toBeGreaterThan(0);

      // An uplink change restarts the gateway; the page stays and remembers the readings it had.
      writeFileSync(file, stringify(config(`127.0.0.1:${second}`, 200)));
      gw.child.kill('SIGHUP');
      await sub.until(() => (gw.log().match(/MQTT connected/g) ?? []).length === 2, 15_000, 'the restarted uplink');
      const after = await eventually(async () => {
        const s = (await getJson(`${base}/api/status`)).body;
        return s.uplink.state === 'connected' ? s : undefined;
      }, 'the page to follow the new gateway');
      expect(typeof pointValue(after, 'pump_house', 'inlet_pressure')).toBe('number');
      const historyAfter = (await getJson(`${base}/api/history?device=pump_house&point=inlet_pressure`)).body;
      expect(historyAfter.t[0]).toBeLessThanOrEqual(historyBefore.t[0]);

      expect(await gw.stop()).toBe(0);
      await expect(fetch(`${base}/healthz`)).rejects.toThrow();
    } finally {
      await gw.stop('SIGKILL');
      await sub.close();
    }
  }, 90_000);
});

describe('StatusSurface', () => {
  it('serves nothing with status.enabled false, and moves only when its section changes', async () => {
    const { logger, lines } = recordingLogger();
    const gateway = { config: { gateway: { id: 'g' } }, buses: [], outbox: { stats: () => ({}) } } as never;
    const surface = new StatusSurface({ gateway, logger });
    await surface.apply({ enabled: false, listen: '127.0.0.1:0' });
    expect(surface.url).toBeUndefined();
    expect(lines.map((l) => l.msg)).toContain('status page disabled (status.enabled: false)');
    await surface.apply({ enabled: true, listen: '127.0.0.1:0' });
    const url = surface.url;
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    await surface.apply({ enabled: true, listen: '127.0.0.1:0' });
    expect(surface.url).toBe(url);
    await surface.close();
    expect(surface.url).toBeUndefined();
  });
});
