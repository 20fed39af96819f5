import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ModbusSerial from 'modbus-serial';
import type { ModbusRTU } from 'modbus-serial/ModbusRTU.js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { configSchema } from '../src/config/schema.js';
import { TABLE_FC } from '../src/sim/registers.js';
import { createScenario, SCENARIO_NAMES } from '../src/sim/scenarios/index.js';
import { startSimulator, type RunningSimulator } from '../src/sim/server.js';
import { cliEntry } from './helpers/cli-bundle.js';

const ModbusClient = ModbusSerial as unknown as new () => ModbusRTU;
const root = new URL('..', import.meta.url).pathname;

/** Local time: the scenarios follow the site's time of day. */
const at = (hour: number, minute = 0) => new Date(2026, 5, 10, hour, minute).getTime();
const loop = (ua: number, low: number, high: number) => low + ((ua - 4000) * (high - low)) / 16000;
const floatCDAB = (w: number[]) => Buffer.from([w[1] >> 8, w[1] & 0xff, w[0] >> 8, w[0] & 0xff]).readFloatBE(0);
const floatABCD = (w: number[]) => Buffer.from([w[0] >> 8, w[0] & 0xff, w[1] >> 8, w[1] & 0xff]).readFloatBE(0);

async function client(port: number, timeoutMs = 500): Promise<ModbusRTU> {
  const c = new ModbusClient();
  await c.connectTCP('127.0.0.1', { port });
  c.setTimeout(timeoutMs);
  return c;
}

function closeClient(c: ModbusRTU | undefined): Promise<void> {
  return new Promise((resolve) => (c?.isOpen ? c.close(() => resolve()) : resolve()));
}

async function village(c: ModbusRTU) {
  c.setID(1);
  const [inletUa, tankUa] = (await c.readInputRegisters(0, 2)).data;
  c.setID(2);
  const [highUa] = (await c.readInputRegisters(0, 1)).data;
  c.setID(3);
  const hr = (await c.readHoldingRegisters(0, 5)).data;
  return {
    inlet: loop(inletUa, 0, 10),
    tank: loop(tankUa, 0, 5),
    high: loop(highUa, 0, 6),
    flow: floatCDAB(hr.slice(0, 2)),
    totalL: hr[2] + hr[3] * 0x10000,
    status: hr[4],
  };
}

async function modbusError(p: Promise<unknown>): Promise<{ modbusCode?: number; errno?: string }> {
  try {
    await p;
  } catch (err) {
    return err as { modbusCode?: number; errno?: string };
  }
  throw new Error('expected the request to fail');
}

describe('shipped configs', () => {
  for (const name of SCENARIO_NAMES) {
    it(`config/${name}.yaml fits the schema and reads every simulated point as the simulator encodes it`, () => {
      const config = configSchema.parse(parse(readFileSync(join(root, 'config', `${name}.yaml`), 'utf8')));
      expect(config.buses[0]).toEqual(expect.objectContaining({ id: 'sim', transport: 'tcp', host: '127.0.0.1', port: 1502 }));
      const scenario = createScenario(name);
      // The Modbus side only: the tunnel's gas detector is read over its line protocol instead of unit 3.
      const configured = config.devices.filter((d) => d.bus === 'sim').flatMap((d) => d.points.map((p) => ({ ...p, slave: d.unit })));
      const units = new Set(configured.map((p) => p.slave));
      const simulated = scenario.units.filter((u) => units.has(u.id)).flatMap((u) => u.map.points.map((p) => ({ unit: u.id, p })));
      expect(configured.map((p) => `${p.slave}/${p.id}`).sort()).toEqual(simulated.map(({ unit, p }) => `${unit}/${p.id}`).sort());
      for (const { unit, p } of simulated) {
        const c = configured.find((x) => x.slave === unit && x.id === p.id)!;
        expect({ fc: c.fc, address: c.address, type: c.type ?? (c.fc <= 2 ? 'bool' : 'uint16') }, p.id).toEqual({
          fc: TABLE_FC[p.table],
          address: p.address,
          type: p.type,
        });
        if (p.type === 'float32' || p.type === 'uint32') expect(c.order, p.id).toBe(p.order);
        // scale/offset then range: one linear map, which must equal the simulator's encoding.
        const k = c.range ? (c.range.eng[1] - c.range.eng[0]) / (c.range.raw[1] - c.range.raw[0]) : 1;
        const slope = c.scale * k;
        const intercept = c.range ? c.range.eng[0] + (c.offset - c.range.raw[0]) * k : c.offset;
        expect(slope, p.id).toBeCloseTo(p.scale ?? 1, 9);
        expect(intercept, p.id).toBeCloseTo(p.offset ?? 0, 9);
        if (p.unit) expect(c.unit, p.id).toBe(p.unit);
      }
    });
  }
});

describe('village-water over Modbus TCP', () => {
  let now = at(3);
  let sim: RunningSimulator;
  let c: ModbusRTU;
  beforeAll(async () => {
    sim = await startSimulator({ scenario: 'village-water', tcp: { host: '127.0.0.1', port: 0 }, clock: () => now });
    c = await client(sim.tcpPort!, 300);
  });
  afterAll(async () => {
    await closeClient(c);
    await sim?.close();
  });
  afterEach(() => {
    sim.trigger('clear');
    for (const unit of [1, 2, 3]) sim.setUnitMode(unit, 'normal');
  });

  it('serves realistic values through the day, sagging at the demand peaks', async () => {
    const day: Array<{ h: number } & Awaited<ReturnType<typeof village>>> = [];
    for (let h = 0; h < 24; h += 0.5) {
      now = at(Math.floor(h), (h % 1) * 60);
      const v = await village(c);
      expect(v.inlet).toBeGreaterThan(3);
      expect(v.inlet).toBeLessThan(6);
      expect(v.high).toBeGreaterThan(1);
      expect(v.high).toBeLessThan(3);
      expect(v.tank).toBeGreaterThan(0.5);
      expect(v.tank).toBeLessThan(5);
      expect(v.flow).toBeGreaterThan(0.5);
      expect(v.flow).toBeLessThan(10);
      expect(v.status & 1).toBe(1);
      day.push({ h, ...v });
    }
    const byHour = (h: number) => day.find((d) => d.h === h)!;
    for (const peak of [7, 19.5]) {
      expect(byHour(peak).inlet).toBeLessThan(byHour(3).inlet - 0.8);
      // The highest house loses more than the pump house.
      expect(byHour(3).high - byHour(peak).high).toBeGreaterThan(byHour(3).inlet - byHour(peak).inlet);
      expect(byHour(peak).flow).toBeGreaterThan(3 * byHour(3).flow);
    }
    // The totaliser only counts up, about 80 m3 a day.
    const total = day.map((d) => d.totalL);
    expect(total).toEqual([...total].sort((a, b) => a - b));
    expect(total.at(-1)! - total[0]).toBeGreaterThan(60_000);
    expect(total.at(-1)! - total[0]).toBeLessThan(100_000);
  });

  it('a burst started by coil 100 drops both pressures within a minute and raises the flow until cleared', async () => {
    now = at(3, 10);
    const before = await village(c);
    c.setID(1);
    await c.writeCoil(100, true);
    expect((await c.readCoils(100, 1)).data[0]).toBe(true);
    now += 60_000;
    const after = await village(c);
    expect(before.inlet - after.inlet).toBeGreaterThan(0.3);
    expect(before.inlet - after.inlet).toBeLessThan(1);
    expect(before.high - after.high).toBeGreaterThan(0.4);
    expect(after.flow - before.flow).toBeGreaterThan(5);
    now += 30 * 60_000;
    const later = await village(c);
    expect(before.inlet - later.inlet).toBeGreaterThan(0.3);
    c.setID(1);
    await c.writeCoil(100, false);
    now += 5 * 60_000;
    const cleared = await village(c);
    expect(Math.abs(cleared.inlet - before.inlet)).toBeLessThan(0.1);
    expect(Math.abs(cleared.flow - before.flow)).toBeLessThan(0.5);
  });

  it('sim.trigger starts and clears the burst too', async () => {
    now = at(14);
    const before = await village(c);
    sim.trigger('burst');
    now += 2 * 60_000;
    expect((await village(c)).inlet).toBeLessThan(before.inlet - 0.3);
    expect(() => sim.trigger('gas')).toThrow(/no "gas" event/);
  });

  it('answers exception 2 for unmapped addresses, 6 when busy, 11 for unknown units, and nothing when dead', async () => {
    c.setID(2);
    expect((await modbusError(c.readInputRegisters(1, 1))).modbusCode).toBe(2);
    expect((await modbusError(c.readHoldingRegisters(0, 1))).modbusCode).toBe(2);
    c.setID(3);
    expect((await modbusError(c.readHoldingRegisters(0, 6))).modbusCode).toBe(2);
    c.setID(1);
    expect((await modbusError(c.writeCoil(5, true))).modbusCode).toBe(2);

    sim.setUnitMode(2, 'busy');
    c.setID(2);
    expect((await modbusError(c.readInputRegisters(0, 1))).modbusCode).toBe(6);
    sim.setUnitMode(2, 'dead');
    expect((await modbusError(c.readInputRegisters(0, 1))).errno).toBe('ETIMEDOUT');
    sim.setUnitMode(2, 'normal');
    // The late silence must not confuse the next transaction.
    expect((await c.readInputRegisters(0, 1)).data).toHaveLength(1);

    c.setID(9);
    expect((await modbusError(c.readInputRegisters(0, 1))).modbusCode).toBe(11);
  });

  it('stopping the pump through its enable coil drops the pressure', async () => {
    now = at(12);
    c.setID(1);
    await c.writeCoil(0, false);
    now += 30_000;
    const v = await village(c);
    c.setID(1);
    expect((await c.readDiscreteInputs(0, 2)).data.slice(0, 2)).toEqual([false, false]);
    await c.writeCoil(0, true);
    expect(v.inlet).toBeLessThan(1);
    expect(v.high).toBeLessThan(0.1);
  });
});

describe('tunnel over Modbus TCP', () => {
  let now = at(8);
  let sim: RunningSimulator;
  let c: ModbusRTU;
  beforeAll(async () => {
    sim = await startSimulator({ scenario: 'tunnel', tcp: { port: 0 }, clock: () => now });
    c = await client(sim.tcpPort!);
  });
  afterAll(async () => {
    await closeClient(c);
    await sim?.close();
  });

  const gas = async () => {
    c.setID(3);
    const [ch4, co, h2s, o2] = (await c.readInputRegisters(0, 4)).data;
    const alarms = (await c.readDiscreteInputs(0, 3)).data.slice(0, 3);
    return { ch4: ch4 / 100, co, h2s: h2s / 10, o2: o2 / 10, alarms };
  };

  it('serves climate, inflow and gas in realistic ranges, with CO after blasts', async () => {
    for (let h = 0; h < 24; h++) {
      now = at(h, 20);
      c.setID(1);
      const [t, rh, air] = (await c.readInputRegisters(0, 3)).data;
      const temp = (t << 16) >> 16;
      expect(temp / 10).toBeGreaterThan(10);
      expect(temp / 10).toBeLessThan(30);
      expect(rh / 10).toBeGreaterThan(60);
      expect(rh / 10).toBeLessThanOrEqual(100);
      expect(air / 100).toBeGreaterThan(0.5);
      expect(air / 100).toBeLessThan(2);
      c.setID(2);
      const inflow = floatABCD((await c.readHoldingRegisters(0, 2)).data);
      expect(inflow).toBeGreaterThan(1);
      expect(inflow).toBeLessThan(6);
      const g = await gas();
      expect(g.ch4).toBeLessThan(0.2);
      expect(g.co).toBeLessThan(24);
      expect(g.h2s).toBeLessThan(6.6);
      expect(g.o2).toBeGreaterThan(19.5);
      expect(g.alarms).toEqual([false, false, false]);
    }
    now = at(11, 5);
    const afterBlast = await gas();
    now = at(14);
    expect(afterBlast.co).toBeGreaterThan((await gas()).co + 5);
  });

  it('a gas excursion passes 0.5 and 1.0 %vol within a minute and falls back when cleared', async () => {
    now = at(15);
    sim.trigger('gas');
    now += 25_000;
    const early = await gas();
    expect(early.ch4).toBeGreaterThan(0.5);
    expect(early.ch4).toBeLessThan(1.0);
    expect(early.alarms).toEqual([true, false, false]);
    now += 40_000;
    const late = await gas();
    expect(late.ch4).toBeGreaterThan(1.0);
    expect(late.ch4).toBeLessThan(1.5);
    expect(late.alarms).toEqual([true, true, false]);
    c.setID(1);
    expect((await c.readCoils(100, 1)).data[0]).toBe(true);
    await c.writeCoil(100, false);
    now += 10 * 60_000;
    expect((await gas()).ch4).toBeLessThan(0.1);
  });

  it('alarm levels are writable within 1-500 (%vol × 100); others get exception 3', async () => {
    c.setID(3);
    await c.writeRegister(0, 30);
    expect((await c.readHoldingRegisters(0, 3)).data).toEqual([30, 100, 150]);
    expect((await modbusError(c.writeRegister(1, 900))).modbusCode).toBe(3);
    await c.writeRegister(0, 50);
  });
});

const socatMissing = spawnSync('socat', ['-V']).error !== undefined;
const skipRtu = socatMissing && process.env.CI !== 'true';

describe.skipIf(skipRtu)(`Modbus RTU over a socat pty pair${skipRtu ? ' (skipped: socat is not installed)' : ''}`, () => {
  let socat: ChildProcess | undefined;
  let dir: string;
  beforeAll(async () => {
    if (socatMissing) throw new Error('socat is required when CI=true');
    dir = mkdtempSync(join(tmpdir(), 'fieldgate-sim-'));
    socat = spawn('socat', [`pty,raw,echo=0,link=${join(dir, 'sim')}`, `pty,raw,echo=0,link=${join(dir, 'gw')}`], { stdio: 'ignore' });
    for (let i = 0; i < 100 && !(existsSync(join(dir, 'sim')) && existsSync(join(dir, 'gw'))); i++) await new Promise((r) => setTimeout(r, 20));
  });
  afterAll(() => {
    if (socat?.pid) process.kill(socat.pid);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('serves the same units over RTU, stays silent when dead, and restarts on the same pty', async () => {
    const now = at(3);
    const serial = { path: join(dir, 'sim'), baudRate: 19200, parity: 'even' as const };
    for (let round = 0; round < 2; round++) {
      const sim = await startSimulator({ scenario: 'village-water', serial, clock: () => now });
      const c = new ModbusClient();
      try {
        await c.connectRTUBuffered(join(dir, 'gw'), { baudRate: 19200, parity: 'even' });
        c.setTimeout(300);
        c.setID(1);
        const [inletUa] = (await c.readInputRegisters(0, 2)).data;
        expect(loop(inletUa, 0, 10)).toBeGreaterThan(5);
        c.setID(3);
        expect(floatCDAB((await c.readHoldingRegisters(0, 2)).data)).toBeGreaterThan(0.5);
        expect((await modbusError(c.readHoldingRegisters(7, 1))).modbusCode).toBe(2);
        c.setID(9);
        expect((await modbusError(c.readHoldingRegisters(0, 1))).errno).toBe('ETIMEDOUT');
      } finally {
        await closeClient(c);
        await sim.close();
      }
    }
  });
});

describe('fieldgate simulate', () => {
  const children: ChildProcess[] = [];
  afterAll(() => {
    for (const child of children) if (child.pid && child.exitCode === null) process.kill(child.pid);
  });

  const cli = (args: string[]) => {
    const child = spawn(process.execPath, [cliEntry(), 'simulate', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let out = '';
    let err = '';
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (err += d));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    return { child, exited, out: () => out, err: () => err };
  };

  it('prints the unit map and port, starts the event on SIGUSR1, clears on SIGUSR2, exits 0 on SIGTERM', async () => {
    const run = cli(['--scenario', 'tunnel', '--tcp', '0']);
    for (let i = 0; i < 200 && !/Serving Modbus TCP on 127\.0\.0\.1:(\d+)/.test(run.out()); i++) await new Promise((r) => setTimeout(r, 50));
    const port = Number(/Serving Modbus TCP on 127\.0\.0\.1:(\d+)/.exec(run.out())?.[1]);
    expect(run.out()).toContain('fc4 input 0');
    expect(run.out()).toContain('coil 100');
    const c = await client(port);
    try {
      c.setID(1);
      run.child.kill('SIGUSR1');
      await new Promise((r) => setTimeout(r, 200));
      expect((await c.readCoils(100, 1)).data[0]).toBe(true);
      run.child.kill('SIGUSR2');
      await new Promise((r) => setTimeout(r, 200));
      expect((await c.readCoils(100, 1)).data[0]).toBe(false);
    } finally {
      await closeClient(c);
    }
    run.child.kill('SIGTERM');
    expect(await run.exited).toBe(0);
    expect(run.out()).toMatch(/gas started by signal[\s\S]*gas cleared by signal[\s\S]*stopped \(SIGTERM\)/);
  });

  it('rejects a bad flag with one error line and exit code 2', async () => {
    const run = cli(['--scenario', 'harbour']);
    expect(await run.exited).toBe(2);
    expect(run.err().split('\n')[0]).toMatch(/--scenario .*harbour.* invalid/);
  });
});
