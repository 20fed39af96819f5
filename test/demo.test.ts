/**
 * `npm start` (fieldgate demo) as a newcomer runs it: the simulators, the embedded broker, the gateway and the
 * status page all come up, the printed addresses and commands work, and Ctrl-C stops everything with exit 0.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Collector } from './helpers/gw-process.js';
import { fieldgate } from './helpers/cli.js';
import { tempDir } from './helpers/peers.js';

const ROOT = new URL('..', import.meta.url).pathname;

describe('fieldgate demo', () => {
  it('runs the whole site on one machine and stops cleanly on Ctrl-C', async () => {
    const dir = tempDir('demo');
    const child = spawn(process.execPath, ['bin/fieldgate.js', 'demo', '--data-dir', join(dir, 'data'), '--mqtt-port', '0', '--status', '127.0.0.1:0'], {
      cwd: ROOT,
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    let sub: Collector | undefined;
    try {
      const until = async (cond: () => boolean | Promise<boolean>, what: string, ms = 30_000) => {
        const end = Date.now() + ms;
        while (!(await cond())) {
          if (Date.now() > end) throw new Error(`timed out waiting for ${what}\nstdout: ${out}\nstderr: ${err.slice(-2000)}`);
          await new Promise((r) => setTimeout(r, 200));
        }
      };
      await until(() => out.includes('Ctrl-C'), 'the banner');
      const page = /status page\s+(http:\/\/127\.0\.0\.1:\d+)\//.exec(out)?.[1];
      const brokerUrl = /MQTT broker\s+(mqtt:\/\/127\.0\.0\.1:\d+)/.exec(out)?.[1];
      const tunnelPort = /tunnel on tcp:\/\/127\.0\.0\.1:(\d+)/.exec(out)?.[1];
      expect(page, out).toBeDefined();
      expect(brokerUrl, out).toBeDefined();
      expect(tunnelPort, out).toBeDefined();

      sub = new Collector(brokerUrl!, { protocolVersion: 4 });
      const devicesWithReadings = async () => {
        const snap = (await (await fetch(`${page}/api/status`)).json()) as { buses: Array<{ devices: Array<{ id: string; points: Array<{ value?: unknown }> }> }> };
        return snap.buses.flatMap((b) => b.devices).filter((d) => d.points.some((p) => p.value !== undefined && p.value !== null)).map((d) => d.id);
      };
      // Both sites, Modbus and line sensors, reach the page and the broker.
      await until(async () => {
        const ids = await devicesWithReadings();
        return ['pump_house', 'flow_meter', 'face_gas', 'convergence', 'face_climate'].every((id) => ids.includes(id));
      }, 'readings from both sites on the status page');
      await sub.until(() => new Set(sub!.samples.map((s) => s.device)).size >= 5, 30_000, 'telemetry from both sites');
      expect((await fetch(`${page}/healthz`)).status).toBe(200);

      // The banner's "gas alarm" command, as printed, reaches the tunnel site (its coil reads back set). That the
      // excursion it starts raises the methane alarms on MQTT is e2e-shipped's tunnel test; the page's alarm list,
      // status-browser's.
      const wrote = await fieldgate(['write', `tcp://127.0.0.1:${tunnelPort}`, '--unit', '1', '--fc', '5', '--address', '100', '--value', '1']);
      expect(wrote.code, wrote.stderr).toBe(0);
      const coil = await fieldgate(['read', `tcp://127.0.0.1:${tunnelPort}`, '--unit', '1', '--fc', '1', '--address', '100', '--type', 'bool', '--json']);
      expect(coil.code, coil.stderr).toBe(0);
      expect(JSON.parse(coil.stdout)).toMatchObject({ values: [true] });

      // The banner's "stop pump" command, as printed: through the guard, written and read back.
      const line = /stop pump\s+npx (fieldgate command .*?)\s+\(/.exec(out)?.[1];
      expect(line, out).toBeDefined();
      const stopped = await fieldgate(line!.split(/\s+/).slice(1));
      expect(stopped.code, stopped.stderr + stopped.stdout).toBe(0);
      expect(stopped.stdout).toMatch(/^done: value false, read back false/);
      const alarms = await fieldgate(['alarms', 'list', '--data-dir', join(dir, 'data'), '--json']);
      expect(alarms.code, alarms.stderr).toBe(0);
      expect(JSON.parse(alarms.stdout).some((a: { alarm: string }) => a.alarm === 'burst')).toBe(true);

      child.kill('SIGINT');
      expect(await exited).toBe(0);
      expect(out).toContain('stopping...');
      await expect(fetch(`${page}/healthz`)).rejects.toThrow();
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await sub?.close();
    }
  }, 120_000);
});
