/**
 * Line sensors behind a serial device server (raw TCP): the simulators serve TCP on a random 127.0.0.1 port,
 * the gateway's line bus connects to it. Listening and polling, noise, and the server restarted.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { LineBusConfig } from '../src/config/schema.js';
import { LineBus } from '../src/sources/line/bus.js';
import { startLineSimulator, type LineSimulatorOptions, type RunningLineSimulator } from '../src/sim/line/server.js';
import { config, recordingLogger, SampleLog } from './helpers/gateway.js';

let cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup = [];
});

async function rig(sim: Omit<LineSimulatorOptions, 'tcp'>, bus: Record<string, unknown>, devices: Record<string, unknown>[]) {
  let running = await startLineSimulator({ ...sim, tcp: { port: 0 } });
  const port = running.tcpPort!;
  cleanup.push(async () => running.close());
  const cfg = config({
    gateway: { id: 'g' },
    buses: [{ id: 'nport', transport: 'line', host: '127.0.0.1', port, reconnectMinMs: 100, reconnectMaxMs: 400, ...bus }],
    devices: devices.map((d) => ({ bus: 'nport', ...d })),
  });
  const samples = new SampleLog();
  const rec = recordingLogger();
  const lineBus = new LineBus(cfg.buses[0] as LineBusConfig, cfg.devices, { logger: rec.logger, sink: samples.sink });
  lineBus.start();
  cleanup.push(() => lineBus.stop());
  return {
    bus: lineBus,
    samples,
    rec,
    get sim(): RunningLineSimulator {
      return running;
    },
    restartSim: async () => {
      running = await startLineSimulator({ ...sim, tcp: { port } });
    },
  };
}

const good = (s: { quality: string }) => s.quality === 'good';

describe('line sensors over TCP (serial device server)', () => {
  it('listens to the gas detector, with noise, and resumes after the server restarts', async () => {
    const r = await rig({ device: 'gas', intervalMs: 50, noise: { rate: 0.3, seed: 2 } }, {}, [
      { id: 'gas', checksum: 'nmea', parse: { kv: {} }, points: [{ id: 'ch4', field: 'CH4' }, { id: 'co', field: 'CO', type: 'int16' }] },
    ]);
    await r.samples.until((all) => all.filter(good).length >= 6);
    r.sim.setNoise(true);
    await r.samples.until(() => Object.values(r.sim.stats.noise).every((n) => n >= 1) && r.samples.all.filter(good).length >= 40, 15_000, 'noise of every kind');
    const errors = r.bus.health()[0]!.errors;
    expect((errors.binary ?? 0) + (errors.checksum ?? 0) + (errors.overlong ?? 0)).toBeGreaterThanOrEqual(3);

    await r.sim.close();
    await r.samples.until((all) => all.some((s) => s.reason === 'bus nport disconnected'));
    await new Promise((res) => setTimeout(res, 500));
    expect(r.bus.linkState).not.toBe('connected');
    await r.restartSim();
    const back = Date.now();
    await r.samples.until((all) => all.some((s) => good(s) && s.ts > back), 10_000, 'listening to resume');
    expect(r.rec.warnings(/link lost/)).toHaveLength(1);
  });

  it('polls the laser meter with CSV replies, times out while it is silent, and resumes', async () => {
    const r = await rig({ device: 'laser', checksum: 'sum8' }, { timeoutMs: 150, retries: 0, unitBackoffMinMs: 200, unitBackoffMaxMs: 400 }, [
      { id: 'laser', query: 'DT\r\n', pollIntervalMs: 100, checksum: 'sum8', parse: { csv: { columns: ['distance', 'temperature'] } }, points: [{ id: 'distance', unit: 'mm' }, { id: 'temperature', unit: '°C' }] },
    ]);
    await r.samples.until((all) => all.filter(good).length >= 4);
    r.sim.setSilent(true);
    await r.samples.until((all) => all.some((s) => s.reason === 'no reply within 150 ms'));
    r.sim.setSilent(false);
    const back = Date.now();
    await r.samples.until((all) => all.some((s) => good(s) && s.ts > back), 5000);
    expect(r.rec.warnings(/not answering/)).toHaveLength(1);
  });

  it('waits for a server that is not there yet, logging it once', async () => {
    const r = await rig({ device: 'laser' }, { timeoutMs: 150 }, [
      { id: 'laser', query: 'D\r', pollIntervalMs: 100, parse: { regex: '^D,(?<d>[\\d.]+)' }, points: [{ id: 'd' }] },
    ]);
    await r.samples.until((all) => all.some(good));
    await r.sim.close();
    await new Promise((res) => setTimeout(res, 1200));
    expect(r.rec.warnings(/cannot connect: .*connection refused/)).toHaveLength(1);
    await r.restartSim();
    const back = Date.now();
    await r.samples.until((all) => all.some((s) => good(s) && s.ts > back), 5000);
  });
});
