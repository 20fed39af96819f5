/**
 * Drill-and-blast road tunnel face: a climate module, a water inflow meter and a gas detector. Three
 * blasts a day (03:00, 11:00, 19:00 local) bring fumes (CO) and warmth that the ventilation clears within
 * the hour. A gas excursion is methane from the rock rising through the 0.5 and 1.0 %vol alarm levels.
 */
import { Ramp, hourOfDay, noise } from '../physics.js';
import { bit, floatRegister, scaledRegister, setpointRegister, writableCoil } from '../points.js';
import { UnitMap, type SimPoint } from '../registers.js';
import { TRIGGER_COIL, type Scenario, type SimUnit } from '../simulator.js';

const BLAST_HOURS = [3, 11, 19];
/** Methane background and the height of an excursion, %vol: settles near 1.3, below evacuation (1.5). */
const CH4_BACKGROUND = 0.04;
const CH4_EXCURSION = 1.26;

export interface TunnelOptions {
  seed?: number;
}

/** Hours since the last blast (0 ≤ age < 8). */
function blastAge(now: number): number {
  const h = hourOfDay(now);
  let best = 24;
  for (const b of BLAST_HOURS) best = Math.min(best, (((h - b) % 24) + 24) % 24);
  return best;
}

export function tunnel(options: TunnelOptions = {}): Scenario {
  const seed = options.seed ?? 2;
  // Methane passes 0.5 %vol ~20 s and 1.0 %vol ~60 s after the excursion starts; clears in a few minutes.
  const gas = new Ramp(40_000, 90_000);
  const alarmSetpoints = [{ value: 50 }, { value: 100 }, { value: 150 }];

  /** Blast fumes: 1 right after a blast, decaying with the ventilation (30 min time constant). */
  const fumes = (now: number) => Math.exp((-blastAge(now) * 60) / 30);
  const ch4Clean = (now: number) => CH4_BACKGROUND + CH4_EXCURSION * gas.level(now);
  const ch4 = (now: number) => Math.max(0, ch4Clean(now) + 0.01 * noise(seed, 30, now, 500));

  const temperature = (now: number) => {
    const h = hourOfDay(now);
    // Rock temperature keeps the face near 17 °C; outside air and blasts add a little.
    return 17 + 1.2 * Math.sin((2 * Math.PI * (h - 9)) / 24) + 2.5 * Math.exp(-blastAge(now)) + 0.1 * noise(seed, 10, now);
  };
  const humidity = (now: number) => {
    const age = blastAge(now);
    // Wet drilling during hours 2-5 of each cycle raises humidity.
    const drilling = age > 2 && age < 5 ? 1 : 0;
    return Math.min(99.5, 80 + 8 * drilling + 4 * fumes(now) + 0.5 * noise(seed, 11, now));
  };
  const airSpeed = (now: number) => {
    // The gas-controlled fan speeds up as methane exceeds 0.4 %vol.
    const boost = Math.min(1, Math.max(0, (ch4Clean(now) - 0.4) / 0.6));
    return 0.9 + 0.6 * boost + 0.05 * noise(seed, 12, now);
  };
  const inflow = (now: number) => {
    // Inflow from the rock changes over days, with small fluctuations from the pumps.
    const slow = Math.sin((2 * Math.PI * now) / (3 * 86_400_000));
    return Math.max(0, 3.2 + 0.8 * slow + 0.15 * noise(seed, 20, now, 1000));
  };
  const co = (now: number) => Math.max(0, 3 + 12 * fumes(now) + 0.6 * noise(seed, 31, now, 500));
  const h2s = (now: number) => Math.max(0, 0.3 + 0.1 * noise(seed, 32, now, 500));
  // Methane displaces air, and the fumes consume a little oxygen.
  const o2 = (now: number) => 20.9 * (1 - ch4Clean(now) / 100) - 0.1 * fumes(now) + 0.05 * noise(seed, 33, now, 500);

  const setEvent = (active: boolean, now: number) => gas.set(active, now);

  const climate: SimPoint[] = [
    scaledRegister('face_temp', 'input', 0, 'int16', 0.1, '°C', 'Air temperature at the face, °C × 10', temperature),
    scaledRegister('face_humidity', 'input', 1, 'uint16', 0.1, '%', 'Relative humidity at the face, % × 10', humidity),
    scaledRegister('air_speed', 'input', 2, 'uint16', 0.01, 'm/s', 'Ventilation air speed at the face, m/s × 100', airSpeed),
    writableCoil('gas_sim', TRIGGER_COIL, 'Simulation only: 1 starts a methane excursion, 0 clears it', () => gas.active, setEvent),
  ];
  const water: SimPoint[] = [
    floatRegister('water_inflow', 0, 'ABCD', 'm3/h', 'Water inflow pumped from the face sump', inflow),
  ];
  const gasDetector: SimPoint[] = [
    scaledRegister('ch4', 'input', 0, 'uint16', 0.01, '%vol', 'Methane, %vol × 100', ch4),
    scaledRegister('co', 'input', 1, 'uint16', 1, 'ppm', 'Carbon monoxide, ppm', co),
    scaledRegister('h2s', 'input', 2, 'uint16', 0.1, 'ppm', 'Hydrogen sulphide, ppm × 10', h2s),
    scaledRegister('o2', 'input', 3, 'uint16', 0.1, '%vol', 'Oxygen, %vol × 10', o2),
    ...alarmSetpoints.map((cell, i) =>
      bit(`ch4_alarm${i + 1}`, 'discrete', i, `Methane alarm relay ${i + 1} (at holding register ${i})`, (now) => ch4(now) * 100 >= cell.value),
    ),
    ...alarmSetpoints.map((cell, i) =>
      setpointRegister(`ch4_alarm${i + 1}_sp`, i, 0.01, '%vol', `Methane alarm ${i + 1} level, %vol × 100 (1-500)`, { min: 1, max: 500 }, cell),
    ),
  ];
  const units: SimUnit[] = [
    { id: 1, name: 'Face climate module (temperature, humidity, air speed)', map: new UnitMap(climate) },
    { id: 2, name: 'Water inflow meter (float32, ABCD)', map: new UnitMap(water) },
    { id: 3, name: 'Gas detector, Modbus output (CH4, CO, H2S, O2)', map: new UnitMap(gasDetector) },
  ];
  return {
    name: 'tunnel',
    title: 'Tunnel face: climate, water inflow, gas detector',
    notes: [
      'Blasts at 03:00, 11:00 and 19:00 local time raise CO (to ~15 ppm), temperature and humidity for an hour.',
      'Gas alarm levels: CH4 0.5 %vol (more ventilation), 1.0 (stop drilling), 1.5 (evacuate); CO 24 ppm; H2S 6.6 ppm; O2 below 19.5 %vol.',
      'Unit 2 uses ABCD word order for its float32.',
    ],
    event: 'gas',
    eventDescription: 'methane excursion: CH4 rises through 0.5 %vol (~20 s) and 1.0 %vol (~60 s), falls back when cleared',
    units,
    get eventActive() {
      return gas.active;
    },
    setEvent,
  };
}
