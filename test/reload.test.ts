/**
 * SIGHUP reload of a running gateway process: a valid file is applied without dropping the MQTT session or a
 * sample; an invalid one is refused with its errors and the old configuration keeps running.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { startSimulator, type RunningSimulator } from '../src/sim/server.js';
import { startAedes, type AedesBroker } from './helpers/aedes.js';
import { Collector, lastSeq, runGateway } from './helpers/gw-process.js';
import { tempDir } from './helpers/peers.js';

describe('SIGHUP reload', () => {
  let sim: RunningSimulator;
  let broker: AedesBroker;
  beforeAll(async () => {
    sim = await startSimulator({ scenario: 'village-water', tcp: { host: '127.0.0.1', port: 0 }, seed: 4 });
    broker = await startAedes();
  });
  afterAll(async () => {
    await broker?.stop();
    await sim?.close();
  });

  it('applies a new point list in place, refuses a broken file, and loses nothing', async () => {
    const dir = tempDir('reload');
    const file = join(dir, 'gw.yaml');
    const base = (points: unknown[]) => ({
      gateway: { id: 'reload-gw', dataDir: join(dir, 'data'), clock: { trust: 'always' } },
      buses: [{ id: 'sim', transport: 'tcp', host: '127.0.0.1', port: sim.tcpPort }],
      devices: [{ id: 'pump_house', bus: 'sim', unit: 1, pollIntervalMs: 100, points }],
      uplink: { url: broker.url, protocolVersion: 4, batch: { maxDelayMs: 100 } },
      buffer: { commitIntervalMs: 50 },
    });
    const inlet = { id: 'inlet_pressure', fc: 4, address: 0, scale: 0.000625, offset: -2.5, unit: 'bar' };
    writeFileSync(file, stringify(base([inlet])));
    const sub = new Collector(broker.url, { protocolVersion: 4 });
    const gw = runGateway(file);
    try {
      await sub.until(() => sub.samples.some((s) => s.point === 'inlet_pressure'));

      writeFileSync(file, stringify(base([inlet, { id: 'tank_level', fc: 4, address: 1, scale: 0.0003125, offset: -1.25, unit: 'm' }])));
      gw.child.kill('SIGHUP');
      await sub.until(() => sub.samples.some((s) => s.point === 'tank_level'), 10_000, 'the new point');
      expect(gw.log()).toContain('configuration reloaded');
      // The birth was republished with the new point; the MQTT session was not dropped.
      expect(sub.statuses.filter((s) => s.state === 'online').length).toBeGreaterThanOrEqual(2);
      expect(gw.log().match(/MQTT connected/g)).toHaveLength(1);

      writeFileSync(file, 'gateway:\n  id: reload-gw\n  dataDir: [oops\n');
      gw.child.kill('SIGHUP');
      const before = sub.seqs.count;
      await sub.until(() => /reload refused/.test(gw.log()), 10_000, 'the refusal');
      await sub.until(() => sub.seqs.count > before + 10, 10_000, 'polling to go on');
      expect(gw.log()).toMatch(/gw\.yaml:\d+:\d+ gateway\.dataDir.*YAML syntax/);

      expect(await gw.stop()).toBe(0);
      writeFileSync(file, stringify(base([inlet])));
      const last = await lastSeq(file);
      await sub.until(() => sub.complete(last), 10_000, `every seq 1..${last}`);
    } finally {
      await gw.stop();
      await sub.close();
    }
  });
});
