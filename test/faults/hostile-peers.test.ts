/**
 * Scenario 7: hostile Modbus TCP peers on buses of their own, beside a good one (village water), with a real
 * broker. (a) A peer that floods zeros, and one that trickles a byte every 50 ms and ignores our FIN: the
 * gateway must let the flood go instead of reading it (CPU bounded), close the old sockets on a reload, and
 * exit promptly on SIGTERM while both keep sending. (b) A peer that closes mid-reply and one that closes at
 * once, with the default reconnect settings: dials bounded by the backoff, a bounded log, the devices shown
 * failing. The good bus must lose nothing in either.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { startSimulator, type RunningSimulator } from '../../src/sim/server.js';
import { runGateway, type GatewayProcess } from '../helpers/gw-process.js';
import { freePort, needPeers, startMosquitto, tempDir } from '../helpers/peers.js';
import { startScriptedModbusPeer, type PeerMode, type ScriptedModbusPeer } from '../helpers/scripted-modbus.js';
import { drained, faultConfig, finish, Ledger, sleep, summary, until, villageDevices } from './helpers.js';

const skip = needPeers('mosquitto');
const TICKS_PER_S = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

/** CPU seconds (user + system) a process has used, from /proc/PID/stat. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // Fields 14 and 15 of stat(5), counted from the state (field 3) here.
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_S;
}

/** Share of one core the process used over `ms`. */
async function cpuShare(pid: number, ms: number): Promise<number> {
  const c0 = cpuSeconds(pid);
  const t0 = performance.now();
  await sleep(ms);
  return (cpuSeconds(pid) - c0) / ((performance.now() - t0) / 1000);
}

const hostileDevice = (id: string, bus: string) => ({ id, bus, unit: 1, pollIntervalMs: 1000, points: [{ id: 'value', fc: 4, address: 0 }] });

describe.skipIf(skip)('faults: hostile Modbus TCP peers beside a good bus', () => {
  let sim: RunningSimulator;
  const cleanups: Array<() => Promise<unknown>> = [];
  beforeAll(async () => {
    sim = await startSimulator({ scenario: 'village-water', tcp: { host: '127.0.0.1', port: 0 }, seed: 17 });
  });
  afterAll(async () => {
    await sim?.close();
  });
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
  });

  async function setup(name: string, hostile: Record<string, PeerMode>, busExtra: Record<string, unknown>) {
    const broker = await startMosquitto();
    cleanups.push(() => broker.stop());
    const peers: Record<string, ScriptedModbusPeer> = {};
    for (const [id, mode] of Object.entries(hostile)) {
      peers[id] = await startScriptedModbusPeer(mode);
      cleanups.push(() => peers[id]!.close());
    }
    const ledger = new Ledger(broker.url, `ledger-${name}`);
    cleanups.push(() => ledger.close());
    await until('the subscriber', () => ledger.client.connected);
    const statusPort = await freePort();
    const file = faultConfig(tempDir(`faults-${name}`), {
      buses: [
        { id: 'sim', transport: 'tcp', host: '127.0.0.1', port: sim.tcpPort, reconnectMinMs: 200 },
        ...Object.entries(peers).map(([id, p]) => ({ id, transport: 'tcp', host: '127.0.0.1', port: p.port, ...busExtra })),
      ],
      devices: [...villageDevices('sim', 100), ...Object.keys(peers).map((id) => hostileDevice(`${id}_meter`, id))],
      uplink: { url: broker.url },
    });
    // faultConfig has no status section; the scenario reads the devices' state from the page's JSON.
    const config = parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    config.status = { listen: `127.0.0.1:${statusPort}` };
    writeFileSync(file, stringify(config));
    const start = () => {
      const gw = runGateway(file);
      cleanups.push(() => gw.stop('SIGKILL'));
      return gw;
    };
    const gw = start();
    await gw.running();
    await until('first samples', () => [...ledger.seqs.values()].reduce((n, s) => n + s.count, 0) >= 20, 30_000, () => gw.log().slice(-800));
    const devices = async () => {
      const snap = (await (await fetch(`http://127.0.0.1:${statusPort}/api/status`)).json()) as { buses: Array<{ devices: Array<{ id: string; state: string; errors: Record<string, number> }> }> };
      return new Map(snap.buses.flatMap((b) => b.devices).map((d) => [d.id, d]));
    };
    return { ledger, file, config, gw, start, peers, devices };
  }

  const busLines = (gw: GatewayProcess, bus: string) => gw.log().split('\n').filter((l) => l.includes(`"bus":"${bus}"`));

  it('lets a flooding peer go (CPU bounded), closes old sockets on a reload, and exits promptly on SIGTERM', async () => {
    const t0 = Date.now();
    const { ledger, file, config, gw, start, peers, devices } = await setup('hostile-flood', { flood: 'flood', trickle: 'trickle' }, { timeoutMs: 500 });
    const flood = peers.flood!;
    const trickle = peers.trickle!;
    await until('the flood to be let go', () => flood.closedByGateway >= 1, 10_000);
    const cpu = await cpuShare(gw.child.pid!, 8000);
    const floodDials = flood.connections;
    expect(cpu, 'share of a core the gateway used beside the flood').toBeLessThan(0.5);
    // Let go at the first chunk past 4 KiB and redialed through the backoff (1, 2, 4, 8 s): a handful of dials.
    expect(floodDials).toBeLessThanOrEqual(8);
    expect(busLines(gw, 'flood').filter((l) => /"level":(40|50)/.test(l)).length).toBeLessThanOrEqual(3);
    const state = await devices();
    expect(state.get('flood_meter')!.state).not.toBe('ok');

    // A reload that restarts the hostile buses: the trickling peer's old socket must be gone, not half-closed.
    await until('the trickle connection', () => trickle.open === 1, 10_000);
    const dialsBefore = trickle.connections;
    const buses = config.buses as Array<Record<string, unknown>>;
    for (const b of buses) if (b.id !== 'sim') b.timeoutMs = 600;
    writeFileSync(file, stringify(config));
    const reloadsBefore = (gw.log().match(/configuration reloaded/g) ?? []).length;
    gw.child.kill('SIGHUP');
    await until('the reload', () => (gw.log().match(/configuration reloaded/g) ?? []).length > reloadsBefore, 10_000);
    await until('the new trickle connection', () => trickle.connections > dialsBefore, 10_000);
    await until('the old trickle socket to be gone', () => trickle.open <= 1, 5000, () => `${trickle.open} open`);

    const drainMs = await drained(ledger, file);
    // SIGTERM while both peers keep sending: the process must not wait for them.
    await gw.running();
    const stopAt = Date.now();
    let exitMs = 0;
    void gw.exited.then(() => (exitMs = Date.now() - stopAt));
    const { exitCode, stats, tally, redrains } = await finish(gw, start, file, ledger);
    summary('Modbus TCP peers flooding and trickling beside a good bus', tally, (Date.now() - t0) / 1000, {
      'gateway CPU beside the flood': `${(cpu * 100).toFixed(1)} %`, 'flood dials in about 10 s': floodDials,
      'flood bytes offered': `${(flood.floodBytes / 1048576).toFixed(1)} MiB`, 'exit after SIGTERM ms': exitMs, 'backlog drained within ms': drainMs, redrains,
    });
    expect(exitCode).toBe(0);
    expect(exitMs).toBeLessThan(5000);
    expect(stats.samples + stats.events).toBe(0);
    expect(tally.missing).toEqual([]);
    expect(tally.lost).toBe(0);
  });

  it('redials peers that close mid-reply or at once through the backoff, logs once, shows them failing', async () => {
    const t0 = Date.now();
    // The default reconnect settings (1 s doubling to 30 s), as the storm had them.
    const { ledger, file, gw, start, peers, devices } = await setup('hostile-close', { midreply: 'mid-reply', hangup: 'close-at-once' }, {});
    const cpu = await cpuShare(gw.child.pid!, 20_000);
    const dials = { midreply: peers.midreply!.connections, hangup: peers.hangup!.connections };
    const state = await devices();
    const mid = state.get('midreply_meter')!;
    const hang = state.get('hangup_meter')!;
    const logLines = { midreply: busLines(gw, 'midreply').length, hangup: busLines(gw, 'hangup').length };
    const drainMs = await drained(ledger, file);
    const { exitCode, stats, tally, redrains } = await finish(gw, start, file, ledger);
    summary('Modbus TCP peers closing mid-reply and at once beside a good bus', tally, (Date.now() - t0) / 1000, {
      'dials in about 20 s (mid-reply, at once)': `${dials.midreply}, ${dials.hangup}`, 'log lines per bus': `${logLines.midreply}, ${logLines.hangup}`,
      'gateway CPU': `${(cpu * 100).toFixed(1)} %`, 'backlog drained within ms': drainMs, redrains,
    });
    // Delays of 1, 2, 4, 8, 16 s (±20 %): about 5 dials in 20 s; without the backoff, tens of thousands.
    expect(dials.midreply).toBeLessThanOrEqual(10);
    expect(dials.hangup).toBeLessThanOrEqual(10);
    expect(logLines.midreply).toBeLessThanOrEqual(6);
    expect(logLines.hangup).toBeLessThanOrEqual(6);
    expect(mid.state).toBe('failing');
    expect(mid.errors.disconnected).toBeGreaterThanOrEqual(1);
    expect(hang.state).not.toBe('ok');
    expect(cpu).toBeLessThan(0.5);
    expect(exitCode).toBe(0);
    expect(stats.samples + stats.events).toBe(0);
    expect(tally.missing).toEqual([]);
    expect(tally.lost).toBe(0);
  });
});
