/**
 * The bus scheduler against the village-water simulator over Modbus TCP: polling, a dead unit that must not
 * stall the others, busy retries, exceptions named per request, and a peer that goes away and comes back.
 */
import type { ModbusBusConfig } from '../src/config/schema.js';
import { afterEach, describe, expect, it } from 'vitest';
import { ModbusBus } from '../src/sources/modbus/bus.js';
import { compileDevice } from '../src/sources/modbus/device.js';
import { startSimulator, type RunningSimulator } from '../src/sim/server.js';
import { config, recordingLogger, SampleLog } from './helpers/gateway.js';

let sim: RunningSimulator | undefined;
let bus: ModbusBus | undefined;

afterEach(async () => {
  await bus?.stop();
  await sim?.close();
  bus = undefined;
  sim = undefined;
});

function villageConfig(port: number, busExtra: Record<string, unknown> = {}, pollIntervalMs = 100) {
  return config({
    gateway: { id: 'test-gw' },
    buses: [{ id: 'sim', transport: 'tcp', host: '127.0.0.1', port, timeoutMs: 150, retries: 1, reconnectMinMs: 100, reconnectMaxMs: 400, unitBackoffMinMs: 1000, unitBackoffMaxMs: 4000, ...busExtra }],
    devices: [
      { id: 'pump_house', bus: 'sim', unit: 1, pollIntervalMs, points: [
        { id: 'inlet_pressure', fc: 4, address: 0, scale: 0.000625, offset: -2.5, unit: 'bar' },
        { id: 'tank_level', fc: 4, address: 1, scale: 0.0003125, offset: -1.25, unit: 'm' },
        { id: 'pump_running', fc: 2, address: 0 },
      ] },
      { id: 'highest_house', bus: 'sim', unit: 2, pollIntervalMs, points: [
        { id: 'pressure', fc: 4, address: 0, scale: 0.000375, offset: -1.5, unit: 'bar' },
      ] },
      { id: 'flow_meter', bus: 'sim', unit: 3, pollIntervalMs, points: [
        { id: 'flow', fc: 3, address: 0, type: 'float32', order: 'CDAB', unit: 'm3/h' },
        { id: 'total', fc: 3, address: 2, type: 'uint32', order: 'CDAB' },
        { id: 'measuring', fc: 3, address: 4, bit: 0 },
        // Nothing is mapped here: the unit answers exception 2 for this request only.
        { id: 'missing', fc: 3, address: 300 },
      ] },
    ],
  });
}

async function start(busExtra: Record<string, unknown> = {}, pollIntervalMs = 100) {
  sim = await startSimulator({ scenario: 'village-water', tcp: { host: '127.0.0.1', port: 0 }, seed: 1 });
  const cfg = villageConfig(sim.tcpPort!, busExtra, pollIntervalMs);
  const samples = new SampleLog();
  const rec = recordingLogger();
  bus = new ModbusBus(cfg.buses[0] as ModbusBusConfig, cfg.devices.map(compileDevice), { logger: rec.logger, sink: samples.sink });
  bus.start();
  return { samples, rec, cfg };
}

describe('bus scheduling over Modbus TCP', () => {
  it('polls every device and decodes realistic values', async () => {
    const { samples } = await start();
    await samples.until((all) => ['pump_house', 'highest_house', 'flow_meter'].every((d) => all.some((s) => s.device === d)));
    const inlet = samples.of('pump_house', 'inlet_pressure')[0]!;
    expect(inlet.quality).toBe('good');
    expect(inlet.value as number).toBeGreaterThan(3);
    expect(inlet.value as number).toBeLessThan(6.5);
    expect(Math.abs(inlet.ts - Date.now())).toBeLessThan(5000);
    expect(samples.of('pump_house', 'pump_running')[0]!.value).toBeTypeOf('boolean');
    const flow = samples.of('flow_meter', 'flow')[0]!;
    expect(flow.quality).toBe('good');
    expect(flow.value as number).toBeGreaterThan(0);
    expect(samples.of('flow_meter', 'measuring')[0]!.value).toBeTypeOf('boolean');
  });

  it('at pollIntervalMs 1 polls back to back, one transaction at a time, with every sample good', async () => {
    const { samples } = await start({}, 1);
    await samples.until((all) => all.filter((s) => s.point === 'inlet_pressure').length >= 50, 15_000);
    const inlet = samples.of('pump_house', 'inlet_pressure');
    expect(inlet.every((s) => s.quality === 'good')).toBe(true);
    // Back to back: each poll waits for the one before, so acquisition times never go backwards or bunch up at once.
    for (let i = 1; i < inlet.length; i++) expect(inlet[i]!.ts).toBeGreaterThanOrEqual(inlet[i - 1]!.ts);
    expect(samples.of('flow_meter', 'flow').every((s) => s.quality === 'good')).toBe(true);
  });

  it("hands each request's samples to the sink as its reply is decoded, inside the poll cycle", async () => {
    sim = await startSimulator({ scenario: 'village-water', tcp: { host: '127.0.0.1', port: 0 }, seed: 1 });
    const cfg = villageConfig(sim.tcpPort!, {}, 200);
    const calls: Array<string[] | 'busy' | 'idle'> = [];
    const rec = recordingLogger();
    const flow = cfg.devices.map(compileDevice).filter((d) => d.id === 'flow_meter');
    expect(flow[0]!.requests.length).toBe(2);
    bus = new ModbusBus(cfg.buses[0] as ModbusBusConfig, flow, {
      logger: rec.logger,
      sink: (samples) => calls.push(samples.map((s) => `${s.point}:${s.quality}`)),
      cycle: (busy) => calls.push(busy ? 'busy' : 'idle'),
    });
    bus.start();
    const end = Date.now() + 10_000;
    while (calls.filter((c) => c === 'idle').length < 2 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    // One poll: busy, then one sink call per request (the answered one, then the exception), then idle.
    const first = calls.indexOf('busy');
    expect(calls.slice(first, first + 4)).toEqual(['busy', ['flow:good', 'total:good', 'measuring:good'], ['missing:bad'], 'idle']);
  });

  it('names a Modbus exception on the affected request only', async () => {
    const { samples, rec } = await start();
    await samples.until((all) => all.filter((s) => s.point === 'missing').length >= 3);
    const missing = samples.of('flow_meter', 'missing');
    expect(missing.every((s) => s.quality === 'bad' && s.value === null)).toBe(true);
    expect(missing[0]!.reason).toBe('exception 2 (illegal data address)');
    expect(samples.of('flow_meter', 'flow').every((s) => s.quality === 'good')).toBe(true);
    // Logged once per state change, not once per poll.
    expect(rec.warnings(/illegal data address/)).toHaveLength(1);
  });

  it('a dead unit costs only its own timeout and is backed off; the others keep their rate', async () => {
    const { samples, rec } = await start();
    await samples.until((all) => all.some((s) => s.device === 'highest_house'));
    sim!.setUnitMode(2, 'dead');
    const t0 = Date.now();
    const before = samples.of('pump_house').length;
    await new Promise((r) => setTimeout(r, 2500));
    // A poll already in flight when the unit died may still answer: judge what came after it.
    const dead = samples.of('highest_house').filter((s) => s.ts >= t0 + 300);
    // Not stalled: while unit 2 is backed off (1 s, then 2 s) pump_house goes on being polled between its
    // attempts (every 100 ms), by order of events rather than by a rate in wall-clock time.
    expect(samples.of('pump_house').length).toBeGreaterThan(before);
    const between = samples.of('pump_house').filter((s) => s.point === 'inlet_pressure' && s.ts > dead[0]!.ts && s.ts < (dead[1]?.ts ?? Infinity));
    expect(between.length).toBeGreaterThanOrEqual(2);
    expect(dead.length).toBeGreaterThan(0);
    expect(dead.every((s) => s.quality === 'bad' && /timeout after 150 ms/.test(s.reason ?? ''))).toBe(true);
    // Backed off: 1 s then 2 s, so at most a few attempts in 2.5 s instead of 25.
    expect(dead.length).toBeLessThanOrEqual(4);
    expect(rec.warnings(/unit 2 not answering/)).toHaveLength(1);
    const health = bus!.health().find((h) => h.device === 'highest_house')!;
    expect(health.state).toBe('failing');
    sim!.setUnitMode(2, 'normal');
    await samples.until((all) => all.some((s) => s.device === 'highest_house' && s.quality === 'good' && s.ts > t0), 8000, 'unit 2 to answer again');
    expect(rec.lines.some((l) => /unit 2 answers again/.test(l.msg))).toBe(true);
  });

  it('retries a busy unit after a wait, then marks it bad with the exception name', async () => {
    const { samples } = await start({ busyRetryMs: 50, retries: 2 });
    await samples.until((all) => all.some((s) => s.device === 'flow_meter'));
    const flowHealth = () => bus!.health().find((h) => h.device === 'flow_meter')!;
    const requestsBefore = flowHealth().requests;
    sim!.setUnitMode(3, 'busy');
    const t0 = Date.now();
    const busy = (all: readonly { device: string; ts: number; reason?: string }[]) => all.filter((s) => s.device === 'flow_meter' && s.ts > t0 && s.reason === 'exception 6 (slave device busy)');
    await samples.until((all) => new Set(busy(all).map((s) => s.ts)).size >= 2);
    const health = flowHealth();
    // Every request that ended busy was tried 1 + retries = 3 times: each gives one failed result (one ts).
    const busyRequests = new Set(busy(samples.all).map((s) => s.ts)).size;
    expect(health.requests - requestsBefore).toBeGreaterThanOrEqual(3 * busyRequests);
    expect(health.errors.exception).toBeGreaterThan(0);
    sim!.setUnitMode(3, 'normal');
    const t1 = Date.now();
    await samples.until((all) => all.some((s) => s.point === 'flow' && s.quality === 'good' && s.ts > t1));
  });

  it('reconnects with backoff when the TCP peer goes away, logging once per state change', async () => {
    const { samples, rec, cfg } = await start();
    await samples.until((all) => all.length > 10);
    const port = cfg.buses[0]!.transport === 'tcp' ? cfg.buses[0]!.port : 0;
    await sim!.close();
    await samples.until((all) => all.some((s) => s.reason === 'bus sim disconnected'), 5000, 'disconnect to be reported');
    await new Promise((r) => setTimeout(r, 1200)); // several reconnect attempts fail meanwhile
    expect(bus!.linkState).not.toBe('connected');
    expect(rec.warnings(/cannot connect/).length).toBe(1);
    sim = await startSimulator({ scenario: 'village-water', tcp: { host: '127.0.0.1', port }, seed: 1 });
    const t1 = Date.now();
    await samples.until((all) => all.some((s) => s.device === 'pump_house' && s.quality === 'good' && s.ts > t1), 5000, 'polling to resume');
    expect(bus!.linkState).toBe('connected');
  });
});
