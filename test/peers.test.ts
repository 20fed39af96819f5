// The interop peers themselves: if these fail, every test built on them is suspect.
import { execFile } from 'node:child_process';
import { existsSync, readFileSync as readPem } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import ModbusSerial from 'modbus-serial';
import type { ModbusRTU } from 'modbus-serial/ModbusRTU.js';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { SerialPort } from 'serialport';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  HIDE_PEERS_ENV, chromiumPath, freePort, makeTlsFiles, needPeers, peerMissing, startMosquitto, startPymodbus,
  startSocatPair, tempDir, which, type MosquittoPeer, type PymodbusPeer, type SocatPair, type TlsFiles,
} from './helpers/peers.ts';

const run = promisify(execFile);
const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function withEnv(vars: Record<string, string | undefined>, fn: () => void): void {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  const set = (v: Record<string, string | undefined>) => {
    for (const [k, val] of Object.entries(v)) {
      if (val === undefined) delete process.env[k];
      else process.env[k] = val;
    }
  };
  set(vars);
  try {
    fn();
  } finally {
    set(saved);
  }
}

describe('peer detection', () => {
  it('reports a hidden peer as missing, skips locally and fails under CI=true', () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    withEnv({ [HIDE_PEERS_ENV]: 'socat,mbpoll', CI: undefined }, () => {
      expect(peerMissing('socat')).toMatch(/socat hidden by FIELDGATE_TEST_HIDE_PEERS/);
      expect(needPeers('mbpoll', 'socat')).toBe(`mbpoll hidden by ${HIDE_PEERS_ENV}; socat hidden by ${HIDE_PEERS_ENV}`);
      expect(needPeers('mbpoll', 'socat')).toBeTruthy();
    });
    // Each reason is printed once per file, however many suites skip for it.
    expect(warn.mock.calls.length).toBeLessThanOrEqual(1);
    warn.mockRestore();
    withEnv({ [HIDE_PEERS_ENV]: 'socat', CI: 'true' }, () => {
      expect(() => needPeers('socat')).toThrow(/CI=true: socat hidden/);
    });
  });

  it('freePort returns a bindable loopback port', async () => {
    const port = await freePort();
    expect(port).toBeGreaterThan(0);
    expect(port).toBeLessThan(65536);
  });
});

async function openPort(path: string): Promise<SerialPort> {
  const port = new SerialPort({ path, baudRate: 9600, autoOpen: false });
  await new Promise<void>((resolve, reject) => port.open((e) => (e ? reject(e) : resolve())));
  return port;
}

const closePort = (port: SerialPort) =>
  new Promise<void>((resolve) => (port.isOpen ? port.close(() => resolve()) : resolve()));

function receive(port: SerialPort, bytes: number): Promise<Buffer> {
  return new Promise((resolve) => {
    let got = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      got = Buffer.concat([got, chunk]);
      if (got.length >= bytes) {
        port.off('data', onData);
        resolve(got);
      }
    };
    port.on('data', onData);
  });
}

async function exchange(pair: SocatPair, tag: number): Promise<void> {
  const a = await openPort(pair.a);
  const b = await openPort(pair.b);
  try {
    const atB = receive(b, 4);
    a.write(Buffer.from([1, 2, 3, tag]));
    expect([...(await atB)]).toEqual([1, 2, 3, tag]);
    const atA = receive(a, 3);
    b.write(Buffer.from('ok\n'));
    expect((await atA).toString()).toBe('ok\n');
  } finally {
    await closePort(a);
    await closePort(b);
  }
}

describe.skipIf(needPeers('socat'))('socat pty pair', () => {
  it('passes bytes both ways, and restart brings back the same paths', async () => {
    const pair = await startSocatPair();
    cleanups.push(() => pair.stop());
    await exchange(pair, 0);
    const oldPid = pair.pid;
    await pair.stop();
    expect(existsSync(pair.a) || existsSync(pair.b)).toBe(false);
    await pair.restart();
    expect(pair.pid).not.toBe(oldPid);
    await exchange(pair, 1);
  });
});

const MAP = { holding: [11, 22, 33, 0xffff], input: [101, 102], coils: [true, false, true], discrete: [false, true] };

type Client = ModbusRTU;
// modbus-serial is CommonJS; under NodeNext its typed default is the module, not the class.
const ModbusClient = ModbusSerial as unknown as new () => Client;
function modbusClient(): Client {
  const client = new ModbusClient();
  client.setID(1);
  client.setTimeout(400);
  cleanups.push(() => client.isOpen && new Promise((r) => client.close(() => r(undefined))));
  return client;
}

async function expectMap(client: Client): Promise<void> {
  expect((await client.readHoldingRegisters(0, 4)).data).toEqual(MAP.holding);
  expect((await client.readInputRegisters(0, 2)).data).toEqual(MAP.input);
  expect((await client.readCoils(0, 3)).data.slice(0, 3)).toEqual(MAP.coils);
  expect((await client.readDiscreteInputs(0, 2)).data.slice(0, 2)).toEqual(MAP.discrete);
}

async function expectSilentAndBadAddress(client: Client): Promise<void> {
  client.setID(7);
  await expect(client.readHoldingRegisters(0, 1)).rejects.toMatchObject({ errno: 'ETIMEDOUT' });
  client.setID(1);
  await expect(client.readHoldingRegisters(3, 2)).rejects.toMatchObject({ modbusCode: 2 });
  await expect(client.readInputRegisters(50, 1)).rejects.toMatchObject({ modbusCode: 2 });
  await expect(client.readHoldingRegisters(0, 1)).resolves.toMatchObject({ data: [11] });
}

describe.skipIf(needPeers('pymodbus'))('pymodbus slave over TCP', () => {
  let slave: PymodbusPeer;
  beforeAll(async () => {
    slave = await startPymodbus({ unit: 1, ...MAP, units: [{ unit: 2, holding: [2002] }] });
  });
  afterAll(() => slave?.stop());

  it('serves the map at zero-based addresses, several units', async () => {
    const client = modbusClient();
    await client.connectTCP('127.0.0.1', { port: slave.port! });
    await expectMap(client);
    client.setID(2);
    expect((await client.readHoldingRegisters(0, 1)).data).toEqual([2002]);
  });

  it('leaves unknown units unanswered and answers exception 2 outside the map', async () => {
    const client = modbusClient();
    await client.connectTCP('127.0.0.1', { port: slave.port! });
    await expectSilentAndBadAddress(client);
  });

  it('set() changes values and restart() keeps the port', async () => {
    await slave.set('holding', 1, [4242]);
    await slave.set('coils', 0, [false]);
    const port = slave.port;
    await slave.restart();
    expect(slave.port).toBe(port);
    const client = modbusClient();
    await client.connectTCP('127.0.0.1', { port: slave.port! });
    // A restart reloads the original map.
    expect((await client.readHoldingRegisters(0, 2)).data).toEqual([11, 22]);
    await slave.set('holding', 1, [4242]);
    expect((await client.readHoldingRegisters(0, 2)).data).toEqual([11, 4242]);
    await slave.set('holding', 1, [22]);
  });
});

describe.skipIf(needPeers('pymodbus', 'socat'))('pymodbus slave over RTU on a socat pty', () => {
  let pair: SocatPair;
  let slave: PymodbusPeer;
  beforeAll(async () => {
    pair = await startSocatPair();
    slave = await startPymodbus({ ...MAP, serialPath: pair.a });
  });
  afterAll(async () => {
    await slave?.stop();
    await pair?.stop();
  });

  it('serves the map, stays silent for unknown units, answers exception 2', async () => {
    const client = modbusClient();
    await client.connectRTUBuffered(pair.b, { baudRate: 9600 });
    await expectMap(client);
    await expectSilentAndBadAddress(client);
  });

  it('answers again after the line is pulled and replugged', async () => {
    await pair.restart();
    const client = modbusClient();
    await client.connectRTUBuffered(pair.b, { baudRate: 9600 });
    // The slave reopens the path on its own, a fraction of a second later.
    let data: number[] | undefined;
    for (let i = 0; i < 20 && !data; i++) data = (await client.readHoldingRegisters(0, 2).catch(() => undefined))?.data;
    expect(data).toEqual([11, 22]);
  });
});

describe.skipIf(needPeers('pymodbus', 'mbpoll'))('mbpoll against pymodbus', () => {
  it('reads holding registers over TCP (-r is 1-based)', async () => {
    const slave = await startPymodbus(MAP);
    cleanups.push(() => slave.stop());
    const { stdout } = await run(which('mbpoll') ?? 'mbpoll',
      ['-m', 'tcp', '-p', String(slave.port), '-a', '1', '-r', '1', '-c', '2', '-1', '127.0.0.1']);
    const values = [...stdout.matchAll(/^\[(\d+)\]:\s+(-?\d+)/gm)].map((m) => [Number(m[1]), Number(m[2])]);
    expect(values).toEqual([[1, 11], [2, 22]]);
  });
});

function connectMqtt(url: string, opts: IClientOptions = {}): Promise<MqttClient> {
  return new Promise((resolve, reject) => {
    const client = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 5000, ...opts });
    cleanups.push(() => client.endAsync(true));
    client.once('connect', () => resolve(client));
    client.once('error', reject);
    client.once('close', () => reject(new Error('closed before CONNACK')));
  });
}

async function roundTrip(client: MqttClient): Promise<string> {
  await client.subscribeAsync('fieldgate/test', { qos: 1 });
  const got = new Promise<string>((r) => client.once('message', (_t, payload) => r(payload.toString())));
  await client.publishAsync('fieldgate/test', 'hello', { qos: 1 });
  return got;
}

describe.skipIf(needPeers('mosquitto'))('mosquitto broker', () => {
  it('accepts anonymous clients, and restart keeps the port', async () => {
    const broker: MosquittoPeer = await startMosquitto();
    cleanups.push(() => broker.stop());
    expect(broker.url).toBe(`mqtt://127.0.0.1:${broker.port}`);
    expect(await roundTrip(await connectMqtt(broker.url))).toBe('hello');
    const oldPid = broker.pid;
    await broker.restart();
    expect(broker.pid).not.toBe(oldPid);
    expect(await roundTrip(await connectMqtt(broker.url))).toBe('hello');
  });

  it('checks a password file', async () => {
    const broker = await startMosquitto({ passwordFile: { user: 'gw', password: 's3cret' } });
    cleanups.push(() => broker.stop());
    expect(await roundTrip(await connectMqtt(broker.url, { username: 'gw', password: 's3cret' }))).toBe('hello');
    await expect(connectMqtt(broker.url, { username: 'gw', password: 'wrong' })).rejects.toMatchObject({ code: 5 });
    await expect(connectMqtt(broker.url)).rejects.toMatchObject({ code: 5 });
  });
});

describe.skipIf(needPeers('mosquitto', 'openssl'))('mosquitto over TLS', () => {
  let tls: TlsFiles;
  let otherCa: TlsFiles;
  beforeAll(async () => {
    const dir = tempDir('tls');
    [tls, otherCa] = await Promise.all([makeTlsFiles(join(dir, 'ok')), makeTlsFiles(join(dir, 'other'))]);
  });

  it('accepts a client trusting its CA and rejects one with another CA', async () => {
    const broker = await startMosquitto({
      tls: { caFile: tls.caFile, certFile: tls.serverCertFile, keyFile: tls.serverKeyFile },
    });
    cleanups.push(() => broker.stop());
    expect(broker.url).toMatch(/^mqtts:/);
    expect(await roundTrip(await connectMqtt(broker.url, { ca: readPem(tls.caFile) }))).toBe('hello');
    const byName = `mqtts://localhost:${broker.port}`;
    await connectMqtt(byName, { ca: readPem(tls.caFile) });
    await expect(connectMqtt(broker.url, { ca: readPem(otherCa.caFile) })).rejects.toThrow(/certificate/);
  });

  it('requires a client certificate when asked to', async () => {
    const broker = await startMosquitto({
      tls: { caFile: tls.caFile, certFile: tls.serverCertFile, keyFile: tls.serverKeyFile, requireCertificate: true },
    });
    cleanups.push(() => broker.stop());
    const ca = readPem(tls.caFile);
    const cert = readPem(tls.clientCertFile);
    const key = readPem(tls.clientKeyFile);
    expect(await roundTrip(await connectMqtt(broker.url, { ca, cert, key }))).toBe('hello');
    await expect(connectMqtt(broker.url, { ca })).rejects.toThrow();
    const strangerCert = { cert: readPem(otherCa.clientCertFile), key: readPem(otherCa.clientKeyFile) };
    await expect(connectMqtt(broker.url, { ca, ...strangerCert })).rejects.toThrow();
  });
});

describe.skipIf(needPeers('chromium'))('chromium', () => {
  it('renders a page headless (as root it needs --no-sandbox)', async () => {
    const { stdout } = await run(chromiumPath()!, [
      '--headless', '--no-sandbox', '--disable-gpu', `--user-data-dir=${tempDir('chromium')}`,
      '--dump-dom', 'data:text/html,<p id="x">ok</p>',
    ], { timeout: 20_000 });
    expect(stdout).toContain('<p id="x">ok</p>');
  });
});
