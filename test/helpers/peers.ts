// Real protocol peers for interop tests: socat pty pairs, a pymodbus slave, a mosquitto broker.
// A missing peer skips the tests that need it with a one-line reason, except under CI=true,
// where it fails them: CI must never go green by skipping.
import { execFile, spawnSync } from 'node:child_process';
import { accessSync, constants, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { delimiter, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import {
  exitReason, freePort, spawnPeer, stopPeer, tempDir, waitForPaths, waitForTcp, waitUntil, type PeerProcess,
} from './ports.ts';

export { freePort, tempDir } from './ports.ts';

export type PeerName = 'mosquitto' | 'pymodbus' | 'socat' | 'mbpoll' | 'chromium' | 'openssl' | 'sparkplug-host';

/** Comma-separated peer names to report as missing, to exercise the skip path on a full machine. */
export const HIDE_PEERS_ENV = 'FIELDGATE_TEST_HIDE_PEERS';
export const PYTHON = process.env.FIELDGATE_PYTHON ?? '/usr/bin/python3';
const PYMODBUS_SCRIPT = fileURLToPath(new URL('../peers/pymodbus_server.py', import.meta.url));
const run = promisify(execFile);

/** Absolute path of an executable on PATH (plus sbin dirs, where Debian puts mosquitto). */
export function which(cmd: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/local/sbin', '/sbin'];
  for (const dir of dirs.filter(Boolean)) {
    try {
      accessSync(join(dir, cmd), constants.X_OK);
      return join(dir, cmd);
    } catch {
      // not here
    }
  }
  return undefined;
}

const bin = (cmd: string, pkg: string) => () =>
  which(cmd) ? undefined : `${cmd} not found on PATH (Debian package ${pkg})`;

function probePymodbus(): string | undefined {
  const code = 'import pymodbus, serial_asyncio; print(pymodbus.__version__)';
  const r = spawnSync(PYTHON, ['-c', code], { encoding: 'utf8', timeout: 15_000 });
  if (r.error) return `${PYTHON} not runnable (${r.error.message})`;
  if (r.status !== 0) return `pymodbus not importable by ${PYTHON} (Debian package python3-pymodbus)`;
  const version = r.stdout.trim();
  // The test server uses the 3.0 API; later 3.x releases renamed its entry points.
  return version.startsWith('3.0') ? undefined : `pymodbus ${version} under ${PYTHON}; the test server needs 3.0`;
}

/** The chromium executable for browser tests, if any. */
export const chromiumPath = (): string | undefined => which('chromium') ?? which('chromium-browser');

const probes: Record<PeerName, () => string | undefined> = {
  mosquitto: () => bin('mosquitto', 'mosquitto')() ?? bin('mosquitto_passwd', 'mosquitto')(),
  pymodbus: probePymodbus,
  socat: bin('socat', 'socat'),
  mbpoll: bin('mbpoll', 'mbpoll'),
  chromium: () => (chromiumPath() ? undefined : 'chromium not found on PATH (Debian package chromium)'),
  openssl: bin('openssl', 'openssl'),
  'sparkplug-host': () => {
    if (!which('protoc')) return 'protoc not found on PATH (Debian package protobuf-compiler)';
    const r = spawnSync(PYTHON, ['-c', 'import google.protobuf, paho.mqtt.client'], { encoding: 'utf8', timeout: 15_000 });
    return r.status === 0 ? undefined : `google.protobuf or paho.mqtt not importable by ${PYTHON} (Debian packages python3-protobuf, python3-paho-mqtt)`;
  },
};
const probed = new Map<PeerName, string | undefined>();

/** One-line reason when a peer is unavailable, undefined when it can be used. */
export function peerMissing(name: PeerName): string | undefined {
  const hidden = (process.env[HIDE_PEERS_ENV] ?? '').split(',').map((s) => s.trim());
  if (hidden.includes(name)) return `${name} hidden by ${HIDE_PEERS_ENV}`;
  if (!probed.has(name)) probed.set(name, probes[name]());
  return probed.get(name);
}

const announced = new Set<string>();

/**
 * For `describe.skipIf(needPeers('socat', 'pymodbus'))`: the skip reason, or undefined when all
 * peers are present. Each reason is printed once per test file. Under CI=true a missing peer
 * throws, failing the test file.
 */
export function needPeers(...names: PeerName[]): string | undefined {
  const reasons = names.map(peerMissing).filter((r): r is string => r !== undefined);
  if (reasons.length === 0) return undefined;
  const line = reasons.join('; ');
  if (process.env.CI === 'true') throw new Error(`test peer missing and CI=true: ${line}`);
  const fresh = reasons.filter((r) => !announced.has(r));
  if (fresh.length > 0) {
    for (const r of fresh) announced.add(r);
    console.warn(`skipped: ${fresh.join('; ')}`);
  }
  return line;
}

// ---------------------------------------------------------------- socat

export interface SocatPair {
  readonly a: string;
  readonly b: string;
  readonly pid: number;
  stop(): Promise<void>;
  /** Recreates the same two paths, like a USB adapter pulled and plugged back in. */
  restart(): Promise<void>;
}

/** A virtual serial line between `dir/ttyA` and `dir/ttyB`; the paths exist once socat is ready. */
export async function startSocatPair(dir?: string): Promise<SocatPair> {
  const base = dir ?? tempDir('pty');
  mkdirSync(base, { recursive: true });
  const a = join(base, 'ttyA');
  const b = join(base, 'ttyB');
  let proc: PeerProcess | undefined;
  const start = async () => {
    rmSync(a, { force: true });
    rmSync(b, { force: true });
    const p = spawnPeer(which('socat') ?? 'socat', [
      '-d', '-d', `pty,raw,echo=0,link=${a}`, `pty,raw,echo=0,link=${b}`,
    ]);
    proc = p;
    try {
      await waitForPaths([a, b], 'socat pty pair', () => exitReason(p, 'socat'));
      // The links appear just before socat enters its transfer loop; wait for that too.
      await waitUntil('socat transfer loop', () => p.output().includes('starting data transfer loop'), {
        failed: () => exitReason(p, 'socat'),
      });
    } catch (err) {
      await stopPeer(p);
      throw err;
    }
  };
  const stop = async () => {
    if (proc) await stopPeer(proc);
  };
  await start();
  return {
    a,
    b,
    get pid() {
      return proc?.pid ?? -1;
    },
    stop,
    restart: async () => {
      await stop();
      await start();
    },
  };
}

// ---------------------------------------------------------------- pymodbus

export interface ModbusUnitMap {
  unit?: number;
  holding?: number[];
  input?: number[];
  coils?: boolean[];
  discrete?: boolean[];
}

export interface PymodbusOptions extends ModbusUnitMap {
  /** More units beside the top-level one (which is unit 1 unless `unit` says otherwise). */
  units?: ModbusUnitMap[];
  /** TCP port to listen on; default: a random free one on 127.0.0.1. */
  tcpPort?: number;
  /** Serve RTU on this serial path instead of TCP. */
  serialPath?: string;
  baudRate?: number;
  /** On TCP, raw RTU frames instead of Modbus TCP (a serial device server in transparent mode). */
  rtuOverTcp?: boolean;
}

export type ModbusTable = 'holding' | 'input' | 'coils' | 'discrete';

export interface PymodbusPeer {
  /** TCP port (TCP mode only); kept across `restart`. */
  readonly port?: number;
  readonly pid: number;
  /** Changes values in the running slave's map. */
  set(table: ModbusTable, address: number, values: number[] | boolean[], unit?: number): Promise<void>;
  stop(): Promise<void>;
  restart(): Promise<void>;
}

/**
 * pymodbus 3.0 slave with the given map (address 0 = first value). Units not in the map never
 * answer (the request times out); an address outside a table answers exception 2.
 */
export async function startPymodbus(map: PymodbusOptions): Promise<PymodbusPeer> {
  const { units = [], tcpPort, serialPath, baudRate, rtuOverTcp, ...top } = map;
  const hasTop = units.length === 0 || Object.keys(top).length > 0;
  const spec = { units: hasTop ? [{ unit: 1, ...top }, ...units] : units, tcpPort, serialPath, baudRate, rtuOverTcp };
  const dir = tempDir('pymodbus');
  let proc: PeerProcess | undefined;
  let port: number | undefined;
  let seq = 0;
  const waiting = new Map<number, { resolve(): void; reject(e: Error): void }>();

  const start = async () => {
    const file = join(dir, 'map.json');
    writeFileSync(file, JSON.stringify({ ...spec, tcpPort: port ?? tcpPort ?? 0 }));
    const p = spawnPeer(PYTHON, ['-u', PYMODBUS_SCRIPT, file], { stdio: ['pipe', 'pipe', 'pipe'] });
    proc = p;
    p.child.stdin?.on('error', () => {}); // EPIPE if it died; the exit is reported elsewhere
    let ready: string | undefined;
    createInterface({ input: p.child.stdout! }).on('line', (line) => {
      const [word, arg, ...rest] = line.split(' ');
      if (word === 'READY') ready = rest[0] ?? '';
      const w = waiting.get(Number(arg));
      if (word === 'SET') w?.resolve();
      if (word === 'ERR') w?.reject(new Error(`pymodbus set failed: ${rest.join(' ')}`));
    });
    try {
      await waitUntil('pymodbus start', () => ready !== undefined, { failed: () => exitReason(p, 'pymodbus') });
      if (!serialPath) {
        port = Number(ready);
        await waitForTcp(port, 'pymodbus', () => exitReason(p, 'pymodbus'));
      }
    } catch (err) {
      await stopPeer(p);
      throw err;
    }
  };
  const stop = async () => {
    if (!proc) return;
    proc.child.stdin?.end(); // EOF is the script's own stop signal; stopPeer covers a hang
    await stopPeer(proc);
    for (const w of waiting.values()) w.reject(new Error('pymodbus stopped'));
    waiting.clear();
  };
  await start();
  return {
    get port() {
      return port;
    },
    get pid() {
      return proc?.pid ?? -1;
    },
    set: (table, address, values, unit = spec.units[0]?.unit ?? 1) => {
      const id = ++seq;
      if (!proc || proc.exitCode() !== undefined) return Promise.reject(new Error('pymodbus is not running'));
      return new Promise<void>((resolve, reject) => {
        waiting.set(id, {
          resolve: () => (waiting.delete(id), resolve()),
          reject: (e) => (waiting.delete(id), reject(e)),
        });
        proc?.child.stdin?.write(`${JSON.stringify({ seq: id, unit, table, address, values })}\n`);
      });
    },
    stop,
    restart: async () => {
      await stop();
      await start();
    },
  };
}

// ---------------------------------------------------------------- mosquitto

export interface MosquittoOptions {
  passwordFile?: { user: string; password: string };
  /** Keep sessions and queued QoS 1 messages across a stop/restart (saved at a clean stop). */
  persistence?: boolean;
  tls?: { caFile: string; certFile: string; keyFile: string; requireCertificate?: boolean };
}

export interface MosquittoPeer {
  readonly port: number;
  readonly pid: number;
  /** mqtt://127.0.0.1:port, or mqtts:// with TLS. */
  readonly url: string;
  stop(): Promise<void>;
  /** Starts again on the same port, e.g. after a broker killed mid-stream. */
  restart(): Promise<void>;
}

function mosquittoConf(port: number, dir: string, opts: MosquittoOptions): string {
  const lines = [
    ...(opts.persistence ? ['persistence true', `persistence_location ${dir}/`, 'max_queued_messages 0'] : ['persistence false']),
    'log_dest stderr', 'log_type error', 'log_type warning',
  ];
  // Run as root, mosquitto drops to user "mosquitto", which cannot read this private temp dir.
  if (process.getuid?.() === 0) lines.push(`user ${userInfo().username}`);
  lines.push(`listener ${port} 127.0.0.1`, `allow_anonymous ${opts.passwordFile ? 'false' : 'true'}`);
  if (opts.passwordFile) lines.push(`password_file ${join(dir, 'passwd')}`);
  if (opts.tls) {
    lines.push(`cafile ${opts.tls.caFile}`, `certfile ${opts.tls.certFile}`, `keyfile ${opts.tls.keyFile}`);
    lines.push(`require_certificate ${opts.tls.requireCertificate ? 'true' : 'false'}`);
  }
  return `${lines.join('\n')}\n`;
}

/** A private mosquitto broker on a random 127.0.0.1 port, accepting TCP when this resolves. */
export async function startMosquitto(opts: MosquittoOptions = {}): Promise<MosquittoPeer> {
  const exe = which('mosquitto') ?? 'mosquitto';
  const dir = tempDir('mosquitto');
  const conf = join(dir, 'mosquitto.conf');
  if (opts.passwordFile) {
    const { user, password } = opts.passwordFile;
    await run(which('mosquitto_passwd') ?? 'mosquitto_passwd', ['-c', '-b', join(dir, 'passwd'), user, password]);
  }
  let proc: PeerProcess | undefined;
  let port = 0;
  // Another worker may take the port between freePort() and mosquitto's bind: try again.
  const launch = async (fixedPort: boolean) => {
    let lastError: unknown;
    for (let attempt = 0; attempt < 5; attempt++) {
      if (!fixedPort) port = await freePort();
      writeFileSync(conf, mosquittoConf(port, dir, opts));
      const p = spawnPeer(exe, ['-c', conf]);
      proc = p;
      try {
        await waitForTcp(port, 'mosquitto', () => exitReason(p, 'mosquitto'));
        return;
      } catch (err) {
        lastError = err;
        await stopPeer(p);
        if (fixedPort) await new Promise((r) => setTimeout(r, 200));
      }
    }
    throw lastError;
  };
  await launch(false);
  return {
    get port() {
      return port;
    },
    get pid() {
      return proc?.pid ?? -1;
    },
    url: `${opts.tls ? 'mqtts' : 'mqtt'}://127.0.0.1:${port}`,
    stop: async () => {
      if (proc) await stopPeer(proc);
    },
    restart: async () => {
      if (proc) await stopPeer(proc);
      await launch(true);
    },
  };
}

// ---------------------------------------------------------------- TLS material

export interface TlsFiles {
  caFile: string;
  caKeyFile: string;
  /** Server certificate for localhost and 127.0.0.1 (subjectAltName). */
  serverCertFile: string;
  serverKeyFile: string;
  /** Client certificate (CN fieldgate-client) for require_certificate brokers. */
  clientCertFile: string;
  clientKeyFile: string;
}

/** A fresh CA with a server and a client certificate signed by it, written under `dir`. */
export async function makeTlsFiles(dir: string): Promise<TlsFiles> {
  mkdirSync(dir, { recursive: true });
  const f = (name: string) => join(dir, name);
  const openssl = (...args: string[]) => run(which('openssl') ?? 'openssl', args);
  const key = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await openssl('req', '-x509', ...key, '-keyout', f('ca.key'), '-out', f('ca.crt'), '-days', '3650',
    '-subj', '/CN=fieldgate test CA', '-addext', 'basicConstraints=critical,CA:TRUE',
    '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  const leaf = async (name: string, cn: string, ext: string) => {
    writeFileSync(f(`${name}.ext`), ext);
    await openssl('req', '-new', ...key, '-keyout', f(`${name}.key`), '-out', f(`${name}.csr`), '-subj', `/CN=${cn}`);
    await openssl('x509', '-req', '-in', f(`${name}.csr`), '-CA', f('ca.crt'), '-CAkey', f('ca.key'),
      '-CAcreateserial', '-out', f(`${name}.crt`), '-days', '3650', '-extfile', f(`${name}.ext`));
  };
  await leaf('server', 'localhost', 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  await leaf('client', 'fieldgate-client', 'extendedKeyUsage=clientAuth\n');
  return {
    caFile: f('ca.crt'),
    caKeyFile: f('ca.key'),
    serverCertFile: f('server.crt'),
    serverKeyFile: f('server.key'),
    clientCertFile: f('client.crt'),
    clientKeyFile: f('client.key'),
  };
}
