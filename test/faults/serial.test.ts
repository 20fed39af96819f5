/**
 * Scenario 4: a serial port that disappears and comes back (the socat pair and the simulator behind it
 * restarted, like a USB adapter pulled and plugged in) while a Modbus TCP device keeps polling; then a storm
 * of timeouts from one dead unit on the serial line while the other units keep their poll rate. Polls are
 * counted per device per second from the samples delivered (one point per device: one sample per poll).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startSimulator, type RunningSimulator } from '../../src/sim/server.js';
import { runGateway } from '../helpers/gw-process.js';
import { needPeers, startMosquitto, startSocatPair, tempDir, type SocatPair } from '../helpers/peers.js';
import { drained, faultConfig, finish, Ledger, SOAK, sleep, summary, until, villageDevices } from './helpers.js';

const skip = needPeers('mosquitto', 'socat');
const SERIAL_POLL_MS = 200;
const TCP_POLL_MS = 100;
/** The point that stands for each device's polls. */
const PROBES: Record<string, string> = { face_climate: 'temperature', inflow: 'water', gas: 'ch4', pump_house: 'inlet_pressure' };

describe.skipIf(skip)('faults: a serial port that vanishes, a unit that stops answering', () => {
  let line: SocatPair;
  let serialSim: RunningSimulator | undefined;
  let tcpSim: RunningSimulator;
  const cleanups: Array<() => Promise<unknown>> = [];
  const startSerialSim = async () => {
    serialSim = await startSimulator({ scenario: 'tunnel', serial: { path: line.b, baudRate: 19200, parity: 'even' }, seed: 14 });
  };
  beforeAll(async () => {
    line = await startSocatPair();
    await startSerialSim();
    tcpSim = await startSimulator({ scenario: 'village-water', tcp: { host: '127.0.0.1', port: 0 }, seed: 15 });
  });
  afterAll(async () => {
    await serialSim?.close();
    await line?.stop();
    await tcpSim?.close();
  });
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
  });

  it('keeps the other bus and the other units at their poll rate, and loses nothing', async () => {
    const t0 = Date.now();
    const polls = new Map<string, Array<{ ts: number; good: boolean }>>();
    const broker = await startMosquitto();
    cleanups.push(() => broker.stop());
    const ledger = new Ledger(broker.url, 'ledger-serial', (s) => {
      if (PROBES[s.device] !== s.point) return;
      const list = polls.get(s.device) ?? [];
      list.push({ ts: s.ts, good: s.quality === 'good' });
      polls.set(s.device, list);
    });
    cleanups.push(() => ledger.close());
    await until('the subscriber', () => ledger.client.connected);
    const file = faultConfig(tempDir('faults-serial'), {
      buses: [
        { id: 'rs485', transport: 'rtu', port: line.a, baudRate: 19200, parity: 'even', timeoutMs: 200, retries: 1, requestPauseMs: 5,
          reconnectMinMs: 200, reconnectMaxMs: 800, unitBackoffMinMs: 2000, unitBackoffMaxMs: 5000 },
        { id: 'sim', transport: 'tcp', host: '127.0.0.1', port: tcpSim.tcpPort, reconnectMinMs: 200 },
      ],
      devices: [
        { id: 'face_climate', bus: 'rs485', unit: 1, pollIntervalMs: SERIAL_POLL_MS, points: [{ id: 'temperature', fc: 4, address: 0, type: 'int16', scale: 0.1 }] },
        { id: 'inflow', bus: 'rs485', unit: 2, pollIntervalMs: SERIAL_POLL_MS, points: [{ id: 'water', fc: 3, address: 0, type: 'float32' }] },
        { id: 'gas', bus: 'rs485', unit: 3, pollIntervalMs: SERIAL_POLL_MS, points: [{ id: 'ch4', fc: 4, address: 0, scale: 0.01 }] },
        ...villageDevices('sim', TCP_POLL_MS).slice(0, 1),
      ],
      uplink: { url: broker.url },
    });
    const start = () => {
      const gw = runGateway(file);
      cleanups.push(() => gw.stop('SIGKILL'));
      return gw;
    };
    const gw = start();
    const goodSince = (device: string, t: number) => (polls.get(device) ?? []).some((p) => p.good && p.ts > t);
    await until('every device polled', () => Object.keys(PROBES).every((d) => goodSince(d, 0)), 30_000);

    /** Polls a second of `device` with ts in [from, to]. */
    const rate = (device: string, from: number, to: number) => (polls.get(device) ?? []).filter((p) => p.ts >= from && p.ts <= to).length / ((to - from) / 1000);

    // The serial port vanishes and comes back; the TCP device goes on.
    const pulls = SOAK ? 10 : 2;
    const tcpRates: number[] = [];
    const backMs: number[] = [];
    for (let i = 0; i < pulls; i++) {
      const gone = Date.now();
      await serialSim!.close();
      serialSim = undefined;
      await line.stop();
      await sleep(4000);
      await line.restart();
      await startSerialSim();
      const back = Date.now();
      backMs.push(await until(`serial polling after pull ${i + 1}`, () => ['face_climate', 'inflow', 'gas'].every((d) => goodSince(d, back)), 30_000));
      tcpRates.push(rate('pump_house', gone + 500, back));
      await sleep(1000);
    }

    // One unit dead: every poll of it is a timeout (then backoff); the other two keep their rate.
    const deadFrom = Date.now();
    serialSim!.setUnitMode(2, 'dead');
    await sleep(SOAK ? 60_000 : 8000);
    const deadTo = Date.now();
    serialSim!.setUnitMode(2, 'normal');
    const during = (d: string) => rate(d, deadFrom + 1000, deadTo);
    const timeouts = (polls.get('inflow') ?? []).filter((p) => !p.good && p.ts >= deadFrom && p.ts <= deadTo + 1000).length;
    await until('the dead unit back', () => goodSince('inflow', deadTo), 30_000);

    const drainMs = await drained(ledger, file);
    const { exitCode, stats, tally } = await finish(gw, start, file, ledger);
    const f1 = (x: number) => x.toFixed(1);
    summary(`serial port pulled x${pulls} beside a TCP bus, then one unit dead ${Math.round((deadTo - deadFrom) / 1000)} s`, tally, (Date.now() - t0) / 1000, {
      'TCP device polls/s while the port was gone': tcpRates.map(f1).join(' '),
      'ms to serial polling after the port came back': backMs.join(' '),
      'polls/s of units 1 and 3 beside the dead unit': `${f1(during('face_climate'))} ${f1(during('gas'))}`,
      'bad samples from the dead unit': timeouts,
      'backlog drained within ms': drainMs,
      'nominal polls/s': `TCP ${1000 / TCP_POLL_MS}, serial ${1000 / SERIAL_POLL_MS}`,
    });
    expect(exitCode).toBe(0);
    expect(stats.samples + stats.events).toBe(0);
    expect(tally.missing).toEqual([]);
    expect(tally.lost).toBe(0);
    // Generous bounds on a shared 2-core machine: half the nominal rate.
    for (const r of tcpRates) expect(r).toBeGreaterThanOrEqual((1000 / TCP_POLL_MS) * 0.5);
    expect(during('face_climate')).toBeGreaterThanOrEqual((1000 / SERIAL_POLL_MS) * 0.5);
    expect(during('gas')).toBeGreaterThanOrEqual((1000 / SERIAL_POLL_MS) * 0.5);
    expect(timeouts).toBeGreaterThan(0);
  });
});
