/**
 * Line sensors over a real serial line (a socat pty pair): the simulators on one end, the gateway's line bus
 * on the other. Every parse mode and checksum, noise on the line, a device that stops answering, and the
 * adapter pulled out and plugged back in.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { LineBusConfig } from '../src/config/schema.js';
import { LineBus } from '../src/sources/line/bus.js';
import { startLineSimulator, type LineSimulatorOptions, type RunningLineSimulator } from '../src/sim/line/server.js';
import { needPeers, startSocatPair, type SocatPair } from './helpers/peers.js';
import { config, recordingLogger, SampleLog } from './helpers/gateway.js';

const skip = needPeers('socat');

let cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup = [];
});

async function rig(sim: Omit<LineSimulatorOptions, 'serial'>, bus: Record<string, unknown>, devices: Record<string, unknown>[]) {
  const line: SocatPair = await startSocatPair();
  cleanup.push(() => line.stop());
  let running: RunningLineSimulator | undefined;
  const startSim = async () => {
    running = await startLineSimulator({ ...sim, serial: { path: line.b, baudRate: 38400 } });
  };
  await startSim();
  cleanup.push(async () => running?.close());
  const cfg = config({
    gateway: { id: 'g' },
    buses: [{ id: 'rs232', transport: 'line', port: line.a, baudRate: 38400, reconnectMinMs: 100, reconnectMaxMs: 400, ...bus }],
    devices: devices.map((d) => ({ bus: 'rs232', ...d })),
  });
  const samples = new SampleLog();
  const rec = recordingLogger();
  const lineBus = new LineBus(cfg.buses[0] as LineBusConfig, cfg.devices, { logger: rec.logger, sink: samples.sink });
  lineBus.start();
  cleanup.push(() => lineBus.stop());
  return {
    line,
    bus: lineBus,
    samples,
    rec,
    get sim() {
      return running!;
    },
    startSim,
  };
}

const good = (s: { quality: string }) => s.quality === 'good';

describe.skipIf(skip)('line sensors over a socat pty pair', () => {
  it('listens to the gas detector with kv and regex parsing of NMEA sentences, and follows an excursion', async () => {
    let offset = 0;
    const r = await rig({ device: 'gas', intervalMs: 100, clock: () => Date.now() + offset }, {}, [
      { id: 'gas_kv', checksum: 'nmea', parse: { kv: {} }, points: [{ id: 'ch4', field: 'CH4', unit: '%vol' }, { id: 'co', field: 'CO' }, { id: 'o2', field: 'O2' }] },
      {
        id: 'gas_re',
        checksum: 'nmea',
        parse: { regex: '^\\$GAS,CH4=(?<ch4>[\\d.]+),CO=(?<co>\\d+),H2S=(?<h2s>[\\d.]+)' },
        points: [{ id: 'ch4_ppm', field: 'ch4', scale: 10_000 }, { id: 'h2s' }],
      },
    ]);
    await r.samples.until((all) => all.filter(good).length >= 10);
    const first = r.samples.of('gas_kv', 'ch4').find(good)!;
    expect(first.value as number).toBeLessThan(0.1);
    expect(r.samples.of('gas_kv', 'o2').find(good)!.value as number).toBeGreaterThan(20);
    const ppm = r.samples.of('gas_re', 'ch4_ppm').find(good)!;
    expect(Number.isInteger(ppm.value)).toBe(true);
    expect(r.samples.all.every(good)).toBe(true);
    // Readings are stamped at reception.
    expect(Math.abs(first.ts - Date.now())).toBeLessThan(10_000);

    r.sim.trigger('gas');
    offset += 65_000;
    await r.samples.until((all) => all.some((s) => s.device === 'gas_kv' && s.point === 'ch4' && (s.value as number) > 1.0), 5000, 'methane past 1.0 %vol');
    expect(r.bus.health().map((h) => h.errors)).toEqual([{}, {}]);
  });

  it('queries the gas detector with #01 and reads the reply', async () => {
    const r = await rig({ device: 'gas', intervalMs: 0 }, { timeoutMs: 300 }, [
      { id: 'gas', query: '#01\r', pollIntervalMs: 100, checksum: 'nmea', parse: { kv: {} }, points: [{ id: 'ch4', field: 'CH4' }] },
    ]);
    await r.samples.until((all) => all.filter(good).length >= 3);
    expect(r.sim.stats.queries).toBeGreaterThanOrEqual(3);
    expect(r.samples.all.every(good)).toBe(true);
  });

  it.each([
    { checksum: 'none', query: 'D\r\n', parse: { regex: '^D,(?<distance>[-\\d.]+),mm' }, points: [{ id: 'distance', unit: 'mm' }] },
    { checksum: 'sum8', query: 'DT\r\n', parse: { csv: { columns: ['distance', 'temperature'] } }, points: [{ id: 'distance' }, { id: 'temperature' }] },
    { checksum: 'crc16-modbus', query: 'J\r', parse: { json: true }, points: [{ id: 'distance', field: 'distance.value' }, { id: 'temperature' }] },
  ] as const)('polls the laser meter: checksum $checksum, query $query', async ({ checksum, query, parse, points }) => {
    const r = await rig({ device: 'laser', checksum }, { timeoutMs: 300, requestPauseMs: 10 }, [
      { id: 'laser', query, pollIntervalMs: 100, checksum, parse, points },
    ]);
    await r.samples.until((all) => all.filter(good).length >= 3 * points.length);
    expect(r.samples.all.every(good)).toBe(true);
    const d = r.samples.of('laser', 'distance')[0]!.value as number;
    expect(d).toBeGreaterThan(4820);
    expect(d).toBeLessThan(4825);
    if (points.length > 1) expect(r.samples.of('laser', 'temperature')[0]!.value as number).toBeGreaterThan(10);
  });

  it('counts noise on the line while good lines still give good samples', async () => {
    const r = await rig({ device: 'gas', intervalMs: 50, noise: { on: true, rate: 0.4, overlongBytes: 1500, seed: 4 } }, {}, [
      { id: 'gas', checksum: 'nmea', parse: { kv: {} }, points: [{ id: 'ch4', field: 'CH4' }, { id: 'o2', field: 'O2' }] },
    ]);
    await r.samples.until(() => Object.values(r.sim.stats.noise).every((n) => n >= 2) && r.samples.all.filter(good).length >= 40, 15_000, 'noise of every kind');
    r.sim.setNoise(false);
    await new Promise((res) => setTimeout(res, 200));
    const errors = r.bus.health()[0]!.errors;
    expect(errors.binary).toBeGreaterThanOrEqual(1);
    expect(errors.checksum).toBeGreaterThanOrEqual(1);
    expect(errors.overlong).toBeGreaterThanOrEqual(1);
    // A cut-off sentence runs into the next one; the sentence after the last $ still verifies.
    const sent = r.sim.stats.noise;
    expect((errors.binary ?? 0) + (errors.checksum ?? 0) + (errors.overlong ?? 0)).toBeLessThanOrEqual(sent.garbage + sent.checksum + sent.overlong);
    const bad = r.samples.all.filter((s) => !good(s));
    expect(bad.every((s) => /checksum mismatch|binary noise|longer than 512 bytes|no NMEA checksum/.test(s.reason ?? ''))).toBe(true);
    expect(r.samples.all.filter(good).length).toBeGreaterThan(bad.length);
    // Logged at a bounded rate: one line per kind at most within the minute.
    expect(r.rec.warnings().length).toBeLessThanOrEqual(4);
    expect(r.bus.linkState).toBe('connected');
  });

  it('reports a device that stops answering, and resumes when it answers again', async () => {
    const r = await rig({ device: 'laser' }, { timeoutMs: 150, retries: 0, unitBackoffMinMs: 200, unitBackoffMaxMs: 400 }, [
      { id: 'laser', query: 'D\r\n', pollIntervalMs: 100, parse: { regex: '^D,(?<d>[\\d.]+),mm' }, points: [{ id: 'd' }] },
    ]);
    await r.samples.until((all) => all.some(good));
    r.sim.setSilent(true);
    await r.samples.until((all) => all.some((s) => s.reason === 'no reply within 150 ms'));
    await r.samples.until(() => r.bus.health()[0]!.state === 'failing');
    r.sim.setSilent(false);
    const back = Date.now();
    await r.samples.until((all) => all.some((s) => good(s) && s.ts > back), 5000, 'replies to resume');
    expect(r.bus.health()[0]!.errors.timeout).toBeGreaterThanOrEqual(1);
  });

  it('survives the adapter pulled out and resumes when it is plugged back in', async () => {
    const r = await rig({ device: 'gas', intervalMs: 100 }, {}, [
      { id: 'gas', checksum: 'nmea', parse: { kv: {} }, points: [{ id: 'ch4', field: 'CH4' }] },
    ]);
    await r.samples.until((all) => all.some(good));
    await r.sim.close();
    await r.line.stop();
    await r.samples.until((all) => all.some((s) => s.reason === 'bus rs232 disconnected'), 10_000, 'the loss to be reported');
    await new Promise((res) => setTimeout(res, 1000));
    expect(r.bus.linkState).not.toBe('connected');
    expect(r.rec.warnings(/cannot connect/).length).toBeLessThanOrEqual(1);
    expect(r.rec.warnings(/link lost/)).toHaveLength(1);

    await r.line.restart();
    await r.startSim();
    const back = Date.now();
    await r.samples.until((all) => all.some((s) => good(s) && s.ts > back), 15_000, 'listening to resume');
    expect(r.bus.linkState).toBe('connected');
  });
});
