/**
 * The page's register tools on a live RS-485 line: a socat pty pair with the scripted RTU peer
 * (test/helpers/status-rtu-peer.ts) on its far end, the bus polling a unit all along. A scan of units 1-247
 * finds exactly the units that answer (an exception is an answer; a garbled reply and silence are not) while
 * the polls go on; a read decodes a float in two word orders; at most one tool request runs per bus; a scan is
 * cancelled between two units. The link is wrapped to count transactions in flight: never more than one.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ModbusBusConfig } from '../src/config/schema.js';
import { ModbusBus, busTarget } from '../src/sources/modbus/bus.js';
import { compileDevice } from '../src/sources/modbus/device.js';
import { ModbusLink } from '../src/sources/modbus/link.js';
import type { ScanProgress, ScanResult, ReadResult } from '../src/sources/modbus/tools.js';
import type { ReadFc, WriteFc } from '../src/sources/modbus/types.js';
import { config, recordingLogger, SampleLog } from './helpers/gateway.js';
import { needPeers, startSocatPair, tempDir, type SocatPair } from './helpers/peers.js';
import { startRtuPeerOnSerial, type RtuPeer } from './helpers/status-rtu-peer.js';

/** The real link, counting the transactions it has on the wire at once and every unit it was asked. */
class CountingLink extends ModbusLink {
  inFlight = 0;
  maxInFlight = 0;
  readonly asked: number[] = [];
  private async counted<T>(unit: number, run: () => Promise<T>): Promise<T> {
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    this.asked.push(unit);
    try {
      return await run();
    } finally {
      this.inFlight--;
    }
  }
  override read(unit: number, fc: ReadFc, address: number, count: number, timeoutMs?: number) {
    return this.counted(unit, () => super.read(unit, fc, address, count, timeoutMs));
  }
  override write(unit: number, fc: WriteFc, address: number, values: number[] | boolean[]) {
    return this.counted(unit, () => super.write(unit, fc, address, values));
  }
}

async function until(cond: () => boolean, what: string, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const skip = needPeers('socat');

describe.skipIf(skip)('register tools on a live RTU line (socat pty, scripted peer)', () => {
  let line: SocatPair;
  let peer: RtuPeer;
  let bus: ModbusBus;
  let link: CountingLink;
  const samples = new SampleLog();

  beforeAll(async () => {
    line = await startSocatPair(join(tempDir('status-tools-bus'), 'rs485'));
    // 1 and 9 answer, 3 answers with exception 2, 4 garbles its CRC, everything else is silent.
    peer = await startRtuPeerOnSerial(line.b, { 1: 'good', 3: 'exception-2', 4: 'bad-crc', 9: 'good' });
    const cfg = config({
      gateway: { id: 'gw' },
      buses: [{ id: 'rs485', transport: 'rtu', port: line.a, baudRate: 19200, timeoutMs: 400, retries: 0, requestPauseMs: 2 }],
      devices: [{ id: 'booster', bus: 'rs485', unit: 1, pollIntervalMs: 100, points: [{ id: 'discharge', fc: 3, address: 0, type: 'float32', unit: 'bar' }] }],
    });
    const busConfig = cfg.buses[0] as ModbusBusConfig;
    link = new CountingLink(busTarget(busConfig), busConfig.timeoutMs);
    bus = new ModbusBus(busConfig, cfg.devices.map(compileDevice), { logger: recordingLogger().logger, sink: samples.sink, link });
    bus.start();
    await samples.until((all) => all.some((s) => s.quality === 'good'), 20_000, 'the first good poll');
  }, 60_000);

  afterAll(async () => {
    await bus?.stop();
    await peer?.close();
    await line?.stop();
  });

  it('scans units 1-247 with a short timeout and finds the answering units while the polls go on', async () => {
    const polledBefore = samples.of('booster', 'discharge').length;
    const progress: ScanProgress[] = [];
    const outcome = await bus.tool({ kind: 'scan', from: 1, to: 247, fc: 3, address: 0, timeoutMs: 60 }, { progress: (p) => progress.push(p) });
    expect(outcome.status, JSON.stringify(outcome)).toBe('done');
    const scan = (outcome as { result: ScanResult }).result;
    expect(scan).toMatchObject({ kind: 'scan', tried: 247, total: 247, cancelled: false });
    expect(scan.found.map((f) => f.unit)).toEqual([1, 3, 9]);
    expect(scan.found[0]).toMatchObject({ unit: 1, value: 0x3fc0 });
    expect(scan.found[1]).toMatchObject({ unit: 3, exception: 2, message: expect.stringMatching(/illegal data address/) });
    // Progress after every unit, in order.
    expect(progress.map((p) => p.tried)).toEqual(Array.from({ length: 247 }, (_, i) => i + 1));
    expect(progress.at(-1)!.found.map((f) => f.unit)).toEqual([1, 3, 9]);
    // Every unit was asked once by the scan; unit 1 also by the polls, which went on meanwhile.
    for (const u of [2, 5, 100, 247]) expect(peer.requests.get(u)).toBe(1);
    const polledDuring = samples.of('booster', 'discharge').length - polledBefore;
    expect(polledDuring).toBeGreaterThan(5);
    expect(samples.of('booster', 'discharge').slice(polledBefore).every((s) => s.quality === 'good')).toBe(true);
    // Polls and scan requests took turns on the wire, never two at once.
    expect(link.maxInFlight).toBe(1);
    const scanOrder = link.asked.filter((u) => u !== 1);
    expect(scanOrder.slice(0, 5)).toEqual([2, 3, 4, 5, 6]);
  }, 120_000);

  it('reads a float in two word orders and says why a read failed', async () => {
    const abcd = await bus.tool({ kind: 'read', unit: 9, fc: 3, address: 0, count: 2, type: 'float32', order: 'ABCD' });
    expect(abcd).toMatchObject({ status: 'done', result: { values: [1.5, 1.5], registers: [0x3fc0, 0, 0x3fc0, 0] } });
    const cdab = await bus.tool({ kind: 'read', unit: 9, fc: 3, address: 1, count: 1, type: 'float32', order: 'CDAB' });
    expect((cdab as { result: ReadResult }).result.values).toEqual([1.5]);
    const silent = await bus.tool({ kind: 'read', unit: 20, fc: 3, address: 0, count: 1, type: 'uint16', order: 'ABCD' });
    expect(silent).toMatchObject({ status: 'failed', reason: expect.stringMatching(/^unit 20 fc 3 address 0: timeout after 400 ms: no answer; check the unit id, baud rate/) });
    const ex = await bus.tool({ kind: 'read', unit: 3, fc: 3, address: 40001, count: 1, type: 'uint16', order: 'ABCD' });
    expect(ex).toMatchObject({ status: 'failed', reason: expect.stringMatching(/illegal data address.*40001/) });
    expect(link.maxInFlight).toBe(1);
  }, 30_000);

  it('runs one tool request at a time and cancels a scan between two units', async () => {
    const controller = new AbortController();
    let tried = 0;
    const scan = bus.tool({ kind: 'scan', from: 100, to: 247, fc: 3, address: 0, timeoutMs: 60 }, { signal: controller.signal, progress: (p) => (tried = p.tried) });
    await until(() => tried >= 3, 'the scan under way');
    const second = await bus.tool({ kind: 'read', unit: 1, fc: 3, address: 0, count: 1, type: 'uint16', order: 'ABCD' });
    expect(second).toMatchObject({ status: 'failed', reason: expect.stringMatching(/^busy: a scan of units 100-247 \(\d+\/148\) is running on bus rs485/) });
    controller.abort();
    const outcome = await scan;
    expect(outcome).toMatchObject({ status: 'done', result: { cancelled: true } });
    const result = (outcome as { result: ScanResult }).result;
    expect(result.tried).toBeLessThan(148);
    // The bus takes the next request once the scan ended.
    expect(await bus.tool({ kind: 'read', unit: 1, fc: 3, address: 0, count: 1, type: 'uint16', order: 'ABCD' })).toMatchObject({ status: 'done' });
    expect(link.maxInFlight).toBe(1);
  }, 60_000);
});
