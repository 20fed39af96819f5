/**
 * Modbus RTU over a real serial line (a socat pty pair): the gateway on one end, the simulator on the other.
 * Pulling the line away (socat killed, like a USB adapter unplugged) must not kill the daemon, and polling
 * must resume by itself once the port is back.
 */
import type { ModbusBusConfig } from '../src/config/schema.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ModbusBus } from '../src/sources/modbus/bus.js';
import { compileDevice } from '../src/sources/modbus/device.js';
import { startSimulator, type RunningSimulator } from '../src/sim/server.js';
import { needPeers, startSocatPair, type SocatPair } from './helpers/peers.js';
import { config, recordingLogger, SampleLog } from './helpers/gateway.js';

const skip = needPeers('socat');

describe.skipIf(skip)('Modbus RTU over a socat pty pair', () => {
  let line: SocatPair;
  let sim: RunningSimulator | undefined;
  let bus: ModbusBus | undefined;
  const startSim = async () => {
    sim = await startSimulator({ scenario: 'tunnel', serial: { path: line.b, baudRate: 19200, parity: 'even' }, seed: 2 });
  };

  beforeAll(async () => {
    line = await startSocatPair();
    await startSim();
  });
  afterAll(async () => {
    await bus?.stop();
    await sim?.close();
    await line?.stop();
  });

  it('polls over RTU, survives the port vanishing and resumes when it returns', async () => {
    const cfg = config({
      gateway: { id: 'tunnel-test' },
      buses: [{ id: 'rs485', transport: 'rtu', port: line.a, baudRate: 19200, parity: 'even', timeoutMs: 300, retries: 1, requestPauseMs: 5, reconnectMinMs: 200, reconnectMaxMs: 800 }],
      devices: [
        { id: 'face_climate', bus: 'rs485', unit: 1, pollIntervalMs: 100, points: [
          { id: 'temperature', fc: 4, address: 0, type: 'int16', scale: 0.1, unit: '°C' },
          { id: 'humidity', fc: 4, address: 1, scale: 0.1, unit: '%' },
        ] },
        { id: 'inflow', bus: 'rs485', unit: 2, pollIntervalMs: 100, points: [{ id: 'water', fc: 3, address: 0, type: 'float32', unit: 'm3/h' }] },
        { id: 'gas', bus: 'rs485', unit: 3, pollIntervalMs: 100, points: [
          { id: 'ch4', fc: 4, address: 0, scale: 0.01, unit: '%vol' },
          { id: 'o2', fc: 4, address: 3, scale: 0.1, unit: '%vol' },
        ] },
      ],
    });
    const samples = new SampleLog();
    const rec = recordingLogger();
    bus = new ModbusBus(cfg.buses[0] as ModbusBusConfig, cfg.devices.map(compileDevice), { logger: rec.logger, sink: samples.sink });
    bus.start();
    await samples.until((all) => ['face_climate', 'inflow', 'gas'].every((d) => all.some((s) => s.device === d && s.quality === 'good')));
    const o2 = samples.all.find((s) => s.point === 'o2' && s.quality === 'good')!;
    expect(o2.value as number).toBeGreaterThan(19);
    expect(o2.value as number).toBeLessThan(22);
    const temp = samples.all.find((s) => s.point === 'temperature')!;
    expect(temp.value as number).toBeGreaterThan(0);

    // Pull the adapter: both ends of the line vanish.
    await sim!.close();
    sim = undefined;
    await line.stop();
    await samples.until((all) => all.some((s) => s.reason === 'bus rs485 disconnected'), 15_000, 'the loss to be reported');
    await new Promise((r) => setTimeout(r, 1500));
    expect(bus.linkState).not.toBe('connected');
    // One warning for the loss, one for the failing reopen: not one per attempt.
    expect(rec.warnings(/cannot connect/).length).toBeLessThanOrEqual(1);

    // Plug it back in.
    await line.restart();
    await startSim();
    const back = Date.now();
    await samples.until((all) => all.some((s) => s.device === 'gas' && s.quality === 'good' && s.ts > back), 20_000, 'polling to resume');
    expect(bus.linkState).toBe('connected');
  });
});
