/** The technician commands as written in the contract: read, write, scan and ports, against the simulator. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSimulator, type RunningSimulator } from '../src/sim/server.js';
import { fieldgate } from './helpers/cli.js';

describe('technician CLI against the simulator', () => {
  let sim: RunningSimulator;
  let target: string;
  beforeAll(async () => {
    sim = await startSimulator({ scenario: 'village-water', tcp: { host: '127.0.0.1', port: 0 }, seed: 3 });
    target = `tcp://127.0.0.1:${sim.tcpPort}`;
  });
  afterAll(async () => {
    await sim?.close();
  });

  it('read --json gives decoded values and raw registers', async () => {
    const r = await fieldgate(['read', target, '--unit', '3', '--address', '0', '--type', 'float32', '--order', 'CDAB', '--json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.values).toHaveLength(1);
    expect(out.values[0]).toBeGreaterThan(0);
    expect(out.registers).toHaveLength(2);
    expect(out.registers.every((w: number) => Number.isInteger(w) && w >= 0 && w <= 0xffff)).toBe(true);
  });

  it('read --count reads that many values one after another, in readable form', async () => {
    const r = await fieldgate(['read', target, '--unit', '1', '--fc', '4', '--address', '0', '--count', '2']);
    expect(r.code).toBe(0);
    const rows = r.stdout.trim().split('\n');
    expect(rows[0]).toContain('unit 1 fc 4 2 x uint16');
    expect(rows).toHaveLength(3);
    expect(rows[1]).toMatch(/^\s+0\s+\d+\s+\[0x[0-9a-f]{4}\]$/);
  });

  it('read of bits (fc 2)', async () => {
    const r = await fieldgate(['read', target, '--unit', '1', '--fc', '2', '--address', '0', '--count', '2', '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).values.every((v: unknown) => typeof v === 'boolean')).toBe(true);
  });

  it('a Modbus exception is one line with its name, exit 1', async () => {
    const r = await fieldgate(['read', target, '--unit', '1', '--fc', '3', '--address', '5000']);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain('exception 2 (illegal data address)');
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('a unit that does not answer is a timeout with how long, exit 1', async () => {
    sim.setUnitMode(2, 'dead');
    try {
      const r = await fieldgate(['read', target, '--unit', '2', '--fc', '4', '--address', '0', '--timeout', '300']);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain('timeout after 300 ms');
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    } finally {
      sim.setUnitMode(2, 'normal');
    }
  });

  it('an unreachable target is one clear line', async () => {
    const r = await fieldgate(['read', 'tcp://127.0.0.1:1', '--unit', '1', '--address', '0']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^fieldgate: cannot open tcp:\/\/127\.0\.0\.1:1: .+\n$/);
  });

  it('bad flags are refused with exit 2', async () => {
    const r = await fieldgate(['read', target, '--unit', 'x', '--address', '0']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--unit must be an integer');
    const t = await fieldgate(['read', 'ftp://x', '--unit', '1', '--address', '0']);
    expect(t.code).toBe(2);
    expect(t.stderr).toContain('unknown target');
  });

  it('write a coil that starts a burst, and one that clears it', async () => {
    const coil = await fieldgate(['write', target, '--unit', '1', '--fc', '5', '--address', '100', '--value', '1']);
    expect(coil.code).toBe(0);
    expect(sim.simulator.scenario.eventActive).toBe(true);
    const off = await fieldgate(['write', target, '--unit', '1', '--fc', '5', '--address', '100', '--value', '0']);
    expect(off.code).toBe(0);
    expect(sim.simulator.scenario.eventActive).toBe(false);
  });

  it('write refuses a value that does not fit, exit 2', async () => {
    const r = await fieldgate(['write', target, '--unit', '3', '--address', '0', '--value', '70000']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('does not fit uint16');
  });

  it('scan lists the units that answer', async () => {
    const r = await fieldgate(['scan', target, '--units', '1-5', '--fc', '4', '--timeout', '200']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^unit 1: answers/m);
    expect(r.stdout).toMatch(/^unit 2: answers/m);
    // Unit 3 has no input registers: it answers with an exception, so it is there.
    expect(r.stdout).toMatch(/^unit 3: answers with exception 2/m);
    expect(r.stdout).not.toMatch(/^unit [45]/m);
    expect(r.stderr).toContain('3 of 5 units answered (1, 2, 3)');
  });

  it('ports works without udev', async () => {
    const r = await fieldgate(['ports', '--json']);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(Array.isArray(out.ports)).toBe(true);
  });
});
