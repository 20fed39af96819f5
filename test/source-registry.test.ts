/**
 * The source driver registry: each transport builds its kind's source, a driver's module is imported only when
 * a bus of its kind is loaded, and a transport without a driver is refused by name. The tests share the
 * registry's state and run in order: nothing loaded, then Modbus alone, then line, then a gateway.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { transportKind } from '../src/config/kinds.js';
import { startGateway } from '../src/gateway.js';
import { createSource, loadDrivers, loadingSource } from '../src/sources/index.js';
import { driverFor, loadedKinds, SOURCE_DRIVERS, TRANSPORTS } from '../src/sources/registry.js';
import { config, recordingLogger } from './helpers/gateway.js';

// Which driver modules have been evaluated, seen from the module graph rather than the registry's own account.
const imported = vi.hoisted(() => new Set<string>());
vi.mock('../src/sources/modbus/bus.js', async (original) => (imported.add('modbus'), original()));
vi.mock('../src/sources/line/bus.js', async (original) => (imported.add('line'), original()));

const BUSES = [
  { id: 'rs485', transport: 'rtu', port: '/dev/ttyUSB0' },
  { id: 'plc', transport: 'tcp', host: '127.0.0.1' },
  { id: 'nport', transport: 'rtu-over-tcp', host: '127.0.0.1' },
  { id: 'gas', transport: 'line', port: '/dev/ttyUSB1' },
];
const cfg = config({ gateway: { id: 'g' }, buses: BUSES, devices: [] });
const busOf = (transport: string) => cfg.buses.find((b) => b.transport === transport)!;
const build = (transport: string) => createSource(busOf(transport), [], { logger: recordingLogger().logger, sink: () => {} });

/** A gateway with one Modbus TCP bus to port 1, which refuses at once: the bus only has to start, not to poll. */
function gatewayOnPort1(points: unknown[]) {
  const dir = mkdtempSync(join(tmpdir(), 'fieldgate-registry-'));
  const gw = startGateway(
    config({
      gateway: { id: 'gw-registry', dataDir: join(dir, 'data'), clock: { trust: 'always' } },
      buses: [{ id: 'plc', transport: 'tcp', host: '127.0.0.1', port: 1, reconnectMinMs: 1000 }],
      devices: [{ id: 'pump', bus: 'plc', unit: 1, points }],
    }),
    recordingLogger().logger,
  );
  return { dir, gw };
}

describe('source driver registry', () => {
  it('has one driver per kind, each with the transports config/kinds.ts gives that kind', () => {
    expect(SOURCE_DRIVERS.map((d) => [d.kind, d.transports])).toEqual([
      ['modbus', ['rtu', 'tcp', 'rtu-over-tcp']],
      ['line', ['line']],
    ]);
    for (const t of TRANSPORTS) expect(driverFor({ id: 'b', transport: t }).kind).toBe(transportKind(t));
  });

  it('imports no driver until asked, and refuses to build from one not loaded', () => {
    expect(loadedKinds()).toEqual([]);
    expect(imported.size).toBe(0);
    expect(() => build('tcp')).toThrow('bus plc: the modbus source driver is not loaded (loadDrivers first)');
  });

  it('loads only the Modbus driver for Modbus buses, and builds a ModbusBus for each Modbus transport', async () => {
    await loadDrivers(cfg.buses.filter((b) => b.transport !== 'line'));
    expect(loadedKinds()).toEqual(['modbus']);
    expect([...imported]).toEqual(['modbus']);
    const { ModbusBus } = await import('../src/sources/modbus/bus.js');
    for (const t of ['rtu', 'tcp', 'rtu-over-tcp']) {
      const source = build(t);
      expect(source).toBeInstanceOf(ModbusBus);
      expect(source.id).toBe(busOf(t).id);
    }
    expect(() => build('line')).toThrow('bus gas: the line source driver is not loaded');
  });

  it('loads the line driver for a line bus, once', async () => {
    const line = SOURCE_DRIVERS.find((d) => d.kind === 'line')!;
    const [first, again] = await Promise.all([line.load(), line.load()]);
    expect(again).toBe(first);
    await loadDrivers([busOf('line')]);
    expect(await line.load()).toBe(first);
    expect(loadedKinds().sort()).toEqual(['line', 'modbus']);
    const { LineBus } = await import('../src/sources/line/bus.js');
    const source = build('line');
    expect(source).toBeInstanceOf(LineBus);
    expect(source.id).toBe('gas');
  });

  it('names the bus and the transport when no driver has it', async () => {
    const odd = { id: 'canbus', transport: 'can' };
    const message = 'bus canbus: no source driver for transport "can" (known: rtu, tcp, rtu-over-tcp, line)';
    expect(() => driverFor(odd)).toThrow(message);
    await expect(loadDrivers([odd])).rejects.toThrow(message);
    expect(() => createSource(odd as never, [], { logger: recordingLogger().logger, sink: () => {} })).toThrow(message);
  });

  it('lists a stand-in for a bus whose driver is loading: link down, its devices not polled yet', async () => {
    const stand = loadingSource({ id: 'gas' }, [{ id: 'o2' }]);
    expect([stand.id, stand.linkState, stand.write, stand.tool]).toEqual(['gas', 'disconnected', undefined, undefined]);
    expect(stand.health()).toEqual([{ device: 'o2', state: 'unknown', requests: 0, errors: {}, backoffMs: 0 }]);
    await expect(stand.stop()).resolves.toBeUndefined();
  });

  it('a gateway lists every bus at once and replaces the stand-ins by started sources', async () => {
    const { dir, gw } = gatewayOnPort1([{ id: 'p', fc: 3, address: 0 }]);
    try {
      expect(gw.buses.map((b) => b.id)).toEqual(['plc']);
      const { ModbusBus } = await import('../src/sources/modbus/bus.js');
      await vi.waitFor(() => expect(gw.buses[0]).toBeInstanceOf(ModbusBus));
    } finally {
      await gw.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a command that arrives while the drivers load waits for its bus instead of being refused', async () => {
    const { dir, gw } = gatewayOnPort1([{ id: 'sp', fc: 3, address: 0, write: true }]);
    try {
      expect(gw.buses[0]!.write).toBeUndefined(); // still the stand-in
      const result = await gw.commands.handle({ kind: 'write', id: 'early-1', device: 'pump', point: 'sp', value: 5, expiresAt: Date.now() + 30_000, origin: 'local' });
      // Port 1 refuses the connection: the bus's own answer, not "takes no writes" from the stand-in.
      expect(result).toMatchObject({ status: 'failed', reason: 'bus plc disconnected' });
    } finally {
      await gw.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
