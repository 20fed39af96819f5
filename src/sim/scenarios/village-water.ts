/**
 * Village water supply: a pump house with a 5 m storage tank and a booster pump feeding the village main,
 * a pressure point at the highest house, and a flow meter on the main at the pump house outlet. About
 * 800 people: ~80 m3 a day, ~1 m3/h at night (use plus background leakage), ~9 m3/h at the morning peak.
 */
import { Ramp, bump, hourOfDay, noise, rise } from '../physics.js';
import { bit, floatRegister, loopInput, scaledRegister, writableCoil } from '../points.js';
import { UnitMap, type SimPoint } from '../registers.js';
import { TRIGGER_COIL, type Scenario, type SimUnit } from '../simulator.js';

/** Flow meter status word bits (holding register 4 of unit 3). */
export const METER_STATUS = {
  /** Measuring normally. */
  MEASURING: 1 << 0,
  /** Empty pipe detected (electrodes dry). */
  EMPTY_PIPE: 1 << 1,
  /** Flow above the high limit (12 m3/h). */
  FLOW_HIGH: 1 << 2,
  /** Flow in reverse direction. */
  REVERSE: 1 << 3,
} as const;

const FLOW_HIGH_LIMIT = 12;
/** Mean of the demand factor is ~0.85, so the daily mean flow is ~3.2 m3/h (~77 m3/day). */
const FLOW_SCALE = 3.8;
/** Extra flow out of a burst main, m3/h. */
const BURST_FLOW = 6.5;
/** Pressure lost at the burst's full development, bar. */
const BURST_DROP_INLET = 0.45;
const BURST_DROP_HIGH = 0.7;
/** Starting value of the flow meter's totaliser, litres. */
const TOTAL_START_L = 48_213_500;

/**
 * Demand relative to the daily mean: night ~0.3, a morning peak (6-8 h) ~2.4 and an evening peak
 * (18-21 h) ~2.0, with a daytime plateau between them.
 */
export function demandFactor(hour: number): number {
  const day = rise(hour, 8.5, 0.5) * (1 - rise(hour, 17.5, 0.7));
  return 0.3 + 0.55 * day + 2.0 * bump(hour, 7, 0.7) + 1.7 * bump(hour, 19.5, 1.0);
}

export interface VillageOptions {
  seed?: number;
}

export function villageWater(options: VillageOptions = {}): Scenario {
  const seed = options.seed ?? 1;
  // A burst develops within a minute (4 × 15 s) and the tank drains over the following hours.
  const burst = new Ramp(15_000, 20_000);
  const burstTank = new Ramp(30 * 60_000, 2 * 3600_000);
  // The booster pump spins up or down in a few seconds after its enable coil changes.
  const pump = new Ramp(3_000, 3_000, true);
  let totalLitres = TOTAL_START_L;
  let totalAt: number | undefined;

  const hour = (now: number) => hourOfDay(now);
  const demand = (now: number) => FLOW_SCALE * demandFactor(hour(now));
  /** Flow through the meter without noise: what the totaliser integrates. */
  const trueFlow = (now: number) => demand(now) * (0.3 + 0.7 * pump.level(now)) + BURST_FLOW * burst.level(now);
  const flow = (now: number) => Math.max(0, trueFlow(now) * (1 + 0.01 * noise(seed, 30, now, 250)));

  const tankLevel = (now: number) => {
    const h = hour(now);
    // Refills overnight (full around 04:30), drawn down by both peaks, lowest after the evening peak.
    const level = 3.4 + 0.9 * Math.cos((2 * Math.PI * (h - 4.5)) / 24) - 0.35 * bump(h, 8.5, 1.5) - 0.45 * bump(h, 21, 1.5);
    return Math.max(0, level - 1.5 * burstTank.level(now) + 0.005 * noise(seed, 11, now));
  };

  const inletPressure = (now: number) => {
    const q = demand(now);
    const pumped = 5.5 - 0.02 * q * q;
    // With the pump stopped only the tank's own head remains at the outlet.
    const head = tankLevel(now) * 0.098;
    const p = head + (pumped - head) * pump.level(now) - BURST_DROP_INLET * burst.level(now);
    return Math.max(0, p + 0.01 * noise(seed, 10, now));
  };

  const highPressure = (now: number) => {
    const q = demand(now);
    // Friction losses grow with the square of the flow, so the far, high end of the main sags most.
    const pumped = 2.95 - 0.022 * q * q;
    const p = pumped * pump.level(now) - BURST_DROP_HIGH * burst.level(now);
    return Math.max(0, p + 0.01 * noise(seed, 20, now));
  };

  /** Integrates the flow up to `now` in steps of at most a minute; a clock moved backwards only re-bases. */
  const totaliser = (now: number) => {
    if (totalAt === undefined || now < totalAt) totalAt = now;
    const stepMs = 60_000;
    // Bound the work after a huge jump of an injected clock: beyond a year, count the rest at the mean.
    const maxSteps = 366 * 24 * 60;
    let steps = 0;
    while (totalAt < now) {
      const dt = Math.min(stepMs, now - totalAt);
      const q = steps < maxSteps ? trueFlow(totalAt + dt / 2) : FLOW_SCALE * 0.85;
      totalLitres += (q * 1000 * dt) / 3_600_000;
      totalAt += dt;
      steps++;
    }
    return Math.floor(totalLitres) % 0x100000000;
  };

  const status = (now: number) => {
    let word = METER_STATUS.MEASURING;
    if (flow(now) > FLOW_HIGH_LIMIT) word |= METER_STATUS.FLOW_HIGH;
    return word;
  };

  const setEvent = (active: boolean, now: number) => {
    totaliser(now);
    burst.set(active, now);
    burstTank.set(active, now);
  };

  const pumpHouse: SimPoint[] = [
    loopInput('inlet_pressure', 0, { low: 0, high: 10, unit: 'bar' }, 'Pressure on the main at the pump house outlet', inletPressure),
    loopInput('tank_level', 1, { low: 0, high: 5, unit: 'm' }, 'Storage tank level (hydrostatic transmitter)', tankLevel),
    bit('pump_running', 'discrete', 0, 'Booster pump running (contactor feedback)', (now) => pump.level(now) > 0.5),
    bit('tank_low', 'discrete', 1, 'Tank low-level float switch (dry-run protection), 1 below 0.5 m', (now) => tankLevel(now) < 0.5),
    writableCoil('pump_enable', 0, 'Booster pump enable relay (write 0 to stop the pump)', () => pump.active, (on, now) => {
      totaliser(now);
      pump.set(on, now);
    }),
    writableCoil('burst_sim', TRIGGER_COIL, 'Simulation only: 1 starts a pipe burst, 0 clears it', () => burst.active, setEvent),
  ];
  const highestHouse: SimPoint[] = [
    loopInput('high_pressure', 0, { low: 0, high: 6, unit: 'bar' }, 'Pressure at the highest house in the village', highPressure),
  ];
  const flowMeter: SimPoint[] = [
    floatRegister('inlet_flow', 0, 'CDAB', 'm3/h', 'Flow into the village main (electromagnetic meter)', flow),
    scaledRegister('inlet_total', 'holding', 2, 'uint32', 0.001, 'm3', 'Forward totaliser, litres', (now) => totaliser(now) * 0.001, 'CDAB'),
    {
      id: 'meter_status',
      table: 'holding',
      address: 4,
      type: 'uint16',
      description: 'Status bits: 0 measuring, 1 empty pipe, 2 flow above 12 m3/h, 3 reverse flow',
      read: status,
    },
  ];
  const units: SimUnit[] = [
    { id: 1, name: 'Pump house: 4-20 mA analog input module with relay output', map: new UnitMap(pumpHouse) },
    { id: 2, name: 'Highest house: 4-20 mA analog input module', map: new UnitMap(highestHouse) },
    { id: 3, name: 'Inlet flow meter (electromagnetic, Modbus RTU)', map: new UnitMap(flowMeter) },
  ];
  return {
    name: 'village-water',
    title: 'Village water supply: pump house, highest house, inlet flow meter',
    notes: [
      'Demand follows the local time of day: peaks 6-8 h and 18-21 h sag both pressures, most at the highest house.',
      'Analog modules report 4-20 mA loop current in µA (4 mA = 4000, 20 mA = 20000, open loop ≈ 0).',
      'Unit 3 (flow meter) uses CDAB word order for its float32 flow and uint32 totaliser (litres).',
    ],
    event: 'burst',
    eventDescription: 'pipe burst: both pressures drop by tenths of a bar within a minute, inlet flow rises ~6.5 m3/h',
    units,
    get eventActive() {
      return burst.active;
    },
    setEvent,
  };
}
