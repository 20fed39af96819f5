/**
 * The shipped configurations end to end: simulated site -> `fieldgate run` -> Mosquitto -> subscriber, with
 * every time constant compressed 10x (the simulator's clock runs 10x, poll intervals, delays and windows are
 * divided by 10) so a burst and a gas excursion fire their alarms within seconds. Checks the alarm events,
 * that report-by-exception cuts the samples sent, and that nothing committed is lost.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, type TestContext } from 'vitest';
import { parse } from 'yaml';
import { startSite, type RunningSite } from '../src/sim/site.js';
import { cleanupsOf } from './helpers/cleanup.js';
import { needPeers, startMosquitto, tempDir } from './helpers/peers.js';
import { Collector, lastSeq, runGateway, writeConfig } from './helpers/gw-process.js';
import { fieldgate } from './helpers/cli.js';

/** The technician acknowledges an alarm on site, through the running gateway's control socket. */
async function ack(file: string, device: string, point: string, alarm: string): Promise<void> {
  const r = await fieldgate(['alarms', 'ack', '-c', file, '--device', device, '--point', point, '--alarm', alarm, '--by', 'e2e']);
  expect(r.code, r.stdout + r.stderr).toBe(0);
}

const ROOT = new URL('..', import.meta.url).pathname;
const SPEED = 10;

type Raw = Record<string, unknown>;
const scaleS = (v: unknown, min = 0) => (typeof v === 'number' ? Math.max(min, v / SPEED) : v);

/** The shipped file, pointed at the test's site and broker, with every duration divided by SPEED. */
function compressed(file: string, site: RunningSite, brokerUrl: string, dir: string): Raw {
  const raw = parse(readFileSync(join(ROOT, 'config', file), 'utf8')) as Raw;
  const ports: Record<string, number | undefined> = { sim: site.modbus.tcpPort, gas: site.lines.gas?.tcpPort, laser: site.lines.laser?.tcpPort };
  const buses = (raw.buses as Raw[]).map((b) => ({ ...b, port: ports[String(b.id)] ?? b.port }));
  const devices = (raw.devices as Raw[]).map((d) => ({
    ...d,
    ...(d.pollIntervalMs ? { pollIntervalMs: Math.max(50, Number(d.pollIntervalMs) / SPEED) } : {}),
    points: (d.points as Raw[]).map((p) => ({
      ...p,
      ...(p.maxIntervalS ? { maxIntervalS: scaleS(p.maxIntervalS) } : {}),
      ...(p.aggregate ? { aggregate: { ...(p.aggregate as Raw), windowS: Math.max(1, Math.round(Number((p.aggregate as Raw).windowS) / SPEED)) } } : {}),
      ...(p.alarms
        ? { alarms: (p.alarms as Raw[]).map((a) => ({ ...a, ...(a.delayS ? { delayS: scaleS(a.delayS) } : {}), ...(a.perS ? { perS: scaleS(a.perS) } : {}), ...(a.afterS ? { afterS: scaleS(a.afterS) } : {}) })) }
        : {}),
    })),
  }));
  return {
    gateway: { ...(raw.gateway as Raw), dataDir: join(dir, 'data'), clock: { trust: 'always' } },
    buses,
    devices,
    uplink: { url: brokerUrl, batch: { maxDelayMs: 200 } },
    buffer: { commitIntervalMs: 50 },
  };
}

type Alarm = { state: string; device: string; point: string; alarm: string; severity: string; value: number | null; limit: number | null; seq: number };
const alarms = (sub: Collector): Alarm[] => sub.events.filter((e) => e.topic.endsWith('/alarms')).map((e) => e.msg as unknown as Alarm);

const skip = needPeers('mosquitto');

// The two sites run at the same time, each with a broker of its own (a subscriber takes every gateway's topics).
describe.skipIf(skip).concurrent('shipped configurations end to end (time compressed 10x)', () => {
  async function setUp(ctx: TestContext, scenario: 'village-water' | 'tunnel') {
    const cleanup = cleanupsOf(ctx, true);
    const broker = await startMosquitto();
    cleanup(() => broker.stop());
    const t0 = Date.now();
    const site = await startSite({ scenario, tcpPort: 0, linePorts: { gas: 0, laser: 0 }, clock: () => t0 + (Date.now() - t0) * SPEED, seed: 11 });
    cleanup(() => site.close());
    const dir = tempDir(`e2e-${scenario}`);
    const file = writeConfig(dir, compressed(`${scenario}.yaml`, site, broker.url, dir));
    const sub = new Collector(broker.url);
    cleanup(() => sub.close());
    await sub.until(() => sub.client.connected);
    const gw = runGateway(file);
    cleanup(() => gw.stop());
    return { site, sub, gw, file };
  }

  it('village-water: a pipe burst raises the latched burst alarms, which return and clear when acknowledged; deadband cuts the samples', async (ctx) => {
    const { site, sub, gw, file } = await setUp(ctx, 'village-water');
    const started = Date.now();
    await sub.until(() => sub.samples.some((s) => s.point === 'inlet_pressure' && s.quality === 'good'), 15_000, 'first samples');
    await new Promise((r) => setTimeout(r, 7000)); // the rate window (6 s) fills with normal readings
    site.trigger('start');
    await sub.until(() => alarms(sub).some((a) => a.alarm === 'burst' && a.state === 'raised'), 25_000, 'a burst alarm');
    const raised = alarms(sub).find((a) => a.alarm === 'burst' && a.state === 'raised')!;
    expect(raised).toMatchObject({ severity: 'critical', limit: -0.3 });
    expect(['inlet_pressure', 'high_pressure']).toContain(raised.point);
    expect(raised.value).toBeTypeOf('number');
    site.trigger('clear');
    // Latched: the pressure recovering does not clear it; the technician's acknowledgement does.
    await sub.until(() => alarms(sub).some((a) => a.alarm === 'burst' && a.state === 'returned' && a.point === raised.point), 30_000, 'the burst alarm to return');
    expect(alarms(sub).some((a) => a.alarm === 'burst' && a.state === 'cleared')).toBe(false);
    await ack(file, raised.device as string, raised.point as string, 'burst');
    await sub.until(() => alarms(sub).some((a) => a.alarm === 'burst' && a.state === 'cleared' && a.point === raised.point), 15_000, 'the burst alarm to clear at the ack');
    expect(alarms(sub).find((a) => a.alarm === 'burst' && a.state === 'cleared' && a.point === raised.point)).toMatchObject({ by: 'e2e', alarmState: 'normal' });

    // Report-by-exception: the tank level moves slowly, so far fewer samples than polls are sent.
    const elapsedS = (Date.now() - started) / 1000;
    const polls = elapsedS / 0.5;
    const tank = sub.samples.filter((s) => s.point === 'tank_level').length;
    expect(tank).toBeGreaterThan(0);
    expect(tank).toBeLessThan(polls * 0.5);
    expect(await gw.stop()).toBe(0);
    const last = await lastSeq(file);
    await sub.until(() => sub.complete(last), 15_000, `every seq 1..${last}`);
  });

  it('tunnel: a gas excursion raises the methane alarms in order on the line-protocol detector; the latched one clears only when acknowledged', async (ctx) => {
    const { site, sub, gw, file } = await setUp(ctx, 'tunnel');
    await sub.until(() => sub.samples.some((s) => s.device === 'face_gas' && s.point === 'ch4' && s.quality === 'good'), 15_000, 'gas readings');
    await sub.until(() => sub.samples.some((s) => s.device === 'convergence' && s.point === 'span' && s.quality === 'good'), 15_000, 'laser readings');
    site.trigger('start');
    await sub.until(() => alarms(sub).some((a) => a.alarm === 'stop_drilling' && a.state === 'raised'), 30_000, 'the 1.0 %vol alarm');
    const raisedOrder = alarms(sub).filter((a) => a.point === 'ch4' && a.state === 'raised').map((a) => a.alarm);
    expect(raisedOrder.slice(0, 2)).toEqual(['ventilate', 'stop_drilling']);
    expect(alarms(sub).find((a) => a.alarm === 'stop_drilling')).toMatchObject({ device: 'face_gas', severity: 'critical', limit: 1 });
    site.trigger('clear');
    await sub.until(() => alarms(sub).some((a) => a.alarm === 'ventilate' && a.state === 'cleared') && alarms(sub).some((a) => a.alarm === 'stop_drilling' && a.state === 'returned'), 40_000, 'ventilate to clear and stop_drilling to return');
    await ack(file, 'face_gas', 'ch4', 'stop_drilling');
    await sub.until(() => alarms(sub).some((a) => a.alarm === 'stop_drilling' && a.state === 'cleared'), 15_000, 'stop_drilling to clear at the ack');
    expect(await gw.stop()).toBe(0);
    const last = await lastSeq(file);
    await sub.until(() => sub.complete(last), 15_000, `every seq 1..${last}`);
  });
});
