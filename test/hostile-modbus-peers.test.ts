/**
 * The Modbus bus against hostile or broken TCP peers (test/helpers/scripted-modbus.ts): a peer that floods
 * bytes is let go, not drained; stop() destroys the socket; a peer that closes mid-reply or at once is redialed
 * through the backoff with a bounded log; and only a good reply makes a device up, on the bus and on the
 * gateway's /healthz and /metrics.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ModbusBusConfig } from '../src/config/schema.js';
import { ModbusBus } from '../src/sources/modbus/bus.js';
import { compileDevice } from '../src/sources/modbus/device.js';
import { cleanupsOf, type Cleanup } from './helpers/cleanup.js';
import { config, recordingLogger, SampleLog } from './helpers/gateway.js';
import { runGateway, writeConfig } from './helpers/gw-process.js';
import { freePort, tempDir } from './helpers/peers.js';
import { startScriptedModbusPeer, type PeerMode, type ScriptedModbusPeer } from './helpers/scripted-modbus.js';

// Every test has its own peer and bus (or gateway), so all of them run at the same time.

const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await tick(20);
  }
}

async function rig(cleanup: (c: Cleanup) => void, mode: PeerMode, busExtra: Record<string, unknown> = {}) {
  const peer = await startScriptedModbusPeer(mode);
  cleanup(() => peer.close());
  const cfg = config({
    gateway: { id: 'g' },
    buses: [{ id: 'plc', transport: 'tcp', host: '127.0.0.1', port: peer.port, timeoutMs: 300, retries: 0, reconnectMinMs: 100, reconnectMaxMs: 1000, unitBackoffMinMs: 200, unitBackoffMaxMs: 400, ...busExtra }],
    devices: [{ id: 'meter', bus: 'plc', unit: 1, pollIntervalMs: 100, points: [{ id: 'a', fc: 4, address: 0 }, { id: 'b', fc: 4, address: 1 }] }],
  });
  const samples = new SampleLog();
  const rec = recordingLogger();
  const bus = new ModbusBus(cfg.buses[0] as ModbusBusConfig, cfg.devices.map(compileDevice), { logger: rec.logger, sink: samples.sink });
  bus.start();
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await bus.stop();
  };
  cleanup(stop);
  return { peer, bus, samples, rec, stop, device: () => bus.health()[0]! };
}

/** Info and above about the link (debug lines are off in the service). */
const linkLines = (rec: ReturnType<typeof recordingLogger>) => rec.lines.filter((l) => l.level >= 30 && /connect|link/.test(l.msg));

describe.concurrent('a peer that floods bytes', () => {
  it('is let go after a bounded read, redialed through the backoff, and the socket is gone after stop()', async (ctx) => {
    const { peer, rec, stop, device } = await rig(cleanupsOf(ctx), 'flood', { timeoutMs: 500 });
    await until('the gateway to let the flood go', () => peer.closedByGateway >= 1);
    await tick(3000);
    // Dialed through the backoff (100, 200, 400, 800 ms...), each connection dropped after a few KiB.
    expect(peer.connections).toBeLessThanOrEqual(8);
    expect(peer.closedByGateway).toBeGreaterThanOrEqual(peer.connections - 1);
    expect(rec.warnings(/sent \d+ bytes no request asked for/)).toHaveLength(1);
    expect(linkLines(rec).length).toBeLessThanOrEqual(4);
    expect(device().state).not.toBe('ok');
    await stop();
    await until('no socket left open', () => peer.open === 0, 2000);
  });

  it('stop() destroys the socket of a peer that keeps writing after our FIN', async (ctx) => {
    const { peer, stop } = await rig(cleanupsOf(ctx), 'trickle', { timeoutMs: 500 });
    await until('the connection', () => peer.connections === 1 && peer.open === 1);
    await tick(200);
    await stop();
    // A socket only half-closed (end()) would keep reading the trickle; a destroyed one makes the peer's writes fail.
    await until('the socket to be gone', () => peer.open === 0, 2000);
  });
});

describe.concurrent('a peer that closes mid-reply or at once', () => {
  for (const mode of ['mid-reply', 'close-at-once'] as const) {
    it(`${mode}: reconnects through the backoff, counts the error on the device, logs once`, async (ctx) => {
      const { peer, bus, rec, device } = await rig(cleanupsOf(ctx), mode);
      await tick(4000);
      // 100 + 200 + 400 + 800 + 1000 ms (±20 %) between dials: about 6 in 4 s; without a backoff, thousands.
      expect(peer.connections).toBeGreaterThanOrEqual(2);
      expect(peer.connections).toBeLessThanOrEqual(10);
      expect(bus.reconnects).toBeLessThanOrEqual(10);
      expect(device().state).not.toBe('ok');
      if (mode === 'mid-reply') {
        expect(device().state).toBe('failing');
        expect(device().errors.disconnected).toBeGreaterThanOrEqual(1);
        expect(device().lastError).toMatch(/closed during a request|link lost/);
      }
      expect(device().lastGoodTs).toBeUndefined();
      expect(linkLines(rec).length).toBeLessThanOrEqual(4);
      expect(rec.warnings().length).toBeLessThanOrEqual(3);
    });
  }

  it('a good reply resets the backoff: polling resumes, the device answers again', async (ctx) => {
    const { peer, bus, samples, rec, device } = await rig(cleanupsOf(ctx), 'mid-reply');
    await until('a few dials', () => peer.connections >= 3);
    // Opens did not reset the backoff: it grew with every cut-off connection.
    expect(bus.reconnectDelayMs).toBeGreaterThanOrEqual(400);
    peer.mode = 'good';
    const back = Date.now();
    await samples.until((all) => all.some((s) => s.quality === 'good' && s.ts >= back), 5000, 'a good reading');
    expect(device().state).toBe('ok');
    expect(bus.linkState).toBe('connected');
    expect(bus.reconnectDelayMs).toBe(100);
    expect(rec.lines.some((l) => /link steady again after \d+ connections/.test(l.msg))).toBe(true);
  });
});

describe.concurrent('only a good reply makes a device up', () => {
  for (const mode of ['wrong-unit', 'wrong-fc', 'short'] as const) {
    it(`${mode}: the device is failing and backed off, the error counted as a frame error`, async (ctx) => {
      const { peer, samples, rec, device } = await rig(cleanupsOf(ctx), mode);
      await until('replies', () => peer.requests >= 2);
      await tick(300);
      const h = device();
      expect(h.state).toBe('failing');
      expect(h.errors.frame).toBeGreaterThanOrEqual(1);
      expect(h.lastGoodTs).toBeUndefined();
      expect(h.backoffMs).toBeGreaterThan(0);
      expect(samples.all.length).toBeGreaterThan(0);
      expect(samples.all.every((s) => s.quality === 'bad')).toBe(true);
      expect(rec.warnings(/unit 1 gives no valid reply/)).toHaveLength(1);
      // Backed off: 200 then 400 ms, so a few polls in a second instead of ten.
      const before = peer.requests;
      await tick(1000);
      expect(peer.requests - before).toBeLessThanOrEqual(8);
      peer.mode = 'good';
      const back = Date.now();
      await samples.until((all) => all.some((s) => s.quality === 'good' && s.ts >= back), 3000, 'a good reading');
      expect(device().state).toBe('ok');
    });
  }

  it('a device no reply has reached yet is not up', async (ctx) => {
    const { device } = await rig(cleanupsOf(ctx), 'trickle', { timeoutMs: 2000 });
    await tick(200);
    expect(device().state).not.toBe('ok');
  });

  it('a good peer: ok, with its readings', async (ctx) => {
    const { samples, device } = await rig(cleanupsOf(ctx), 'good');
    await samples.until((all) => all.filter((s) => s.quality === 'good').length >= 4);
    expect(samples.of('meter', 'a')[0]).toMatchObject({ quality: 'good', value: 0x0102 });
    expect(samples.of('meter', 'b')[0]).toMatchObject({ quality: 'good', value: 0x0103 });
    expect(device()).toMatchObject({ state: 'ok', backoffMs: 0 });
  });
});

describe.concurrent('the gateway reports a device that only answers garbage as down', () => {
  it('wrong unit id: /healthz 503 and fieldgate_device_up 0 from the first polls, not after the stale rule', async (ctx) => {
    const peer = await startScriptedModbusPeer('wrong-unit');
    const cleanup = cleanupsOf(ctx);
    cleanup(() => peer.close());
    const dir = tempDir('hostile-status');
    const port = await freePort();
    const file = writeConfig(dir, {
      gateway: { id: 'hostile', dataDir: join(dir, 'data'), clock: { trust: 'always' } },
      buses: [{ id: 'plc', transport: 'tcp', host: '127.0.0.1', port: peer.port, timeoutMs: 300 }],
      devices: [{ id: 'meter', bus: 'plc', unit: 1, pollIntervalMs: 1000, points: [{ id: 'a', fc: 4, address: 0 }] }],
      status: { listen: `127.0.0.1:${port}` },
    });
    const gw = runGateway(file);
    cleanup(() => gw.stop('SIGKILL'));
    await gw.running();
    await until('a few replies', () => peer.requests >= 2, 10_000);
    const base = `http://127.0.0.1:${port}`;
    // Well inside the 30 s a device gets before "no good reading" applies: the bus itself says it is failing.
    let health: { status: number; body: { status: string; failing: string[] } } | undefined;
    for (let i = 0; i < 50 && health?.status !== 503; i++) {
      const res = await fetch(`${base}/healthz`);
      health = { status: res.status, body: await res.json() };
      if (health.status !== 503) await tick(100);
    }
    expect(health?.status).toBe(503);
    expect(health!.body.failing.join(' ')).toMatch(/meter/);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toMatch(/^fieldgate_device_up\{bus="plc",device="meter"\} 0$/m);
    expect(metrics).toMatch(/^fieldgate_device_errors_total\{bus="plc",device="meter",kind="frame"\} [1-9]/m);
    expect(gw.log()).toMatch(/unit 1 gives no valid reply \(bad response frame: Unexpected data error, expected address 1 got 2\)/);
    expect(await gw.stop('SIGTERM')).toBe(0);
  });
});
