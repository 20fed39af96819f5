/**
 * Serves a simulator over Modbus TCP and/or Modbus RTU on a serial path, both answering for the same units.
 * modbus-serial's servers do the framing; this file adapts their callback vector to Simulator replies.
 */
import { ServerSerial, ServerTCP, type IServiceVector } from 'modbus-serial';
import type { AddressInfo } from 'node:net';
import { UserError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Table } from './registers.js';
import { createScenario, type ScenarioName } from './scenarios/index.js';
import { Simulator, type Clock, type Reply, type Scenario, type SimEvent, type UnitMode } from './simulator.js';

/** The simulator's documented default TCP port: unprivileged, next to Modbus's 502. */
export const DEFAULT_SIM_PORT = 1502;
/** A TCP endpoint for several units acts like a serial gateway: unknown units get "target failed to respond". */
const EX_GATEWAY_TARGET = 11;

export interface SerialOptions {
  path: string;
  baudRate?: number;
  parity?: 'none' | 'even' | 'odd';
  dataBits?: 7 | 8;
  stopBits?: 1 | 2;
}

export interface StartOptions {
  scenario: ScenarioName | Scenario;
  /** port 0 picks a free port; `tcpPort` reports it. */
  tcp?: { host?: string; port?: number };
  serial?: SerialOptions;
  clock?: Clock;
  /** Seed of the sensor noise, for reproducible runs. */
  seed?: number;
  log?: Logger;
}

export interface RunningSimulator {
  readonly simulator: Simulator;
  readonly tcpHost?: string;
  readonly tcpPort?: number;
  readonly serialPath?: string;
  trigger(event: SimEvent): void;
  setUnitMode(unit: number, mode: UnitMode): void;
  /** Frees the TCP port and the serial device. Safe to call twice. */
  close(): Promise<void>;
}

type Callback<T> = (err: Error | null, value: T) => void;

/** Calls back with the reply's values, with an exception, or never (a dead or missing unit). */
function answer<T>(reply: Reply, cb: Callback<T>, pick: (values: number[]) => T, onError: T): void {
  if (reply.kind === 'silent') return;
  if (reply.kind === 'exception') {
    cb(Object.assign(new Error(`exception ${reply.code}`), { modbusErrorCode: reply.code }), onError);
    return;
  }
  cb(null, pick(reply.values));
}

function vectorFor(sim: Simulator, unknownUnit: 'silent' | number): IServiceVector {
  const read = (unit: number, table: Table, address: number, count: number): Reply => {
    if (!sim.hasUnit(unit) && unknownUnit !== 'silent') return { kind: 'exception', code: unknownUnit };
    return sim.read(unit, table, address, count);
  };
  const write = (unit: number, table: 'coil' | 'holding', address: number, value: number | boolean): Reply => {
    if (!sim.hasUnit(unit) && unknownUnit !== 'silent') return { kind: 'exception', code: unknownUnit };
    return sim.write(unit, table, address, value);
  };
  const first = (values: number[]) => values[0];
  const all = (values: number[]) => values;
  // Arity matters: modbus-serial treats 3- and 4-argument functions as callback style, which lets a dead
  // unit stay silent. The error-path value is [] because the library indexes it even on errors.
  return {
    getCoil: (addr: number, unit: number, cb: Callback<boolean>) => answer(read(unit, 'coil', addr, 1), cb, (v) => v[0] === 1, false),
    getDiscreteInput: (addr: number, unit: number, cb: Callback<boolean>) =>
      answer(read(unit, 'discrete', addr, 1), cb, (v) => v[0] === 1, false),
    getHoldingRegister: (addr: number, unit: number, cb: Callback<number>) => answer(read(unit, 'holding', addr, 1), cb, first, 0),
    getInputRegister: (addr: number, unit: number, cb: Callback<number>) => answer(read(unit, 'input', addr, 1), cb, first, 0),
    getMultipleHoldingRegisters: (addr: number, len: number, unit: number, cb: Callback<number[]>) =>
      answer(read(unit, 'holding', addr, len), cb, all, []),
    getMultipleInputRegisters: (addr: number, len: number, unit: number, cb: Callback<number[]>) =>
      answer(read(unit, 'input', addr, len), cb, all, []),
    setCoil: (addr: number, value: boolean, unit: number, cb: (err: Error | null) => void) =>
      answer(write(unit, 'coil', addr, value), cb, () => undefined, undefined),
    setRegister: (addr: number, value: number, unit: number, cb: (err: Error | null) => void) =>
      answer(write(unit, 'holding', addr, value), cb, () => undefined, undefined),
    // Function 16: one answer for the whole request, stopping at the first refused register.
    setRegisterArray: (addr: number, values: number[], unit: number, cb: (err: Error | null) => void) => {
      let reply: Reply = { kind: 'ok', values: [] };
      for (let i = 0; i < values.length && reply.kind === 'ok'; i++) reply = write(unit, 'holding', addr + i, values[i]);
      answer(reply, cb, () => undefined, undefined);
    },
  };
}

async function startTcp(vector: IServiceVector, host: string, port: number, log?: Logger): Promise<{ server: ServerTCP; port: number }> {
  // The library treats a numeric 0 as "use 502"; the string "0" still reaches net.listen as "any free port".
  const server = new ServerTCP(vector, { host, port: String(port) as unknown as number, unitID: 255 });
  server.on('socketError', (err) => log?.debug({ err }, 'simulator: client socket error'));
  server.on('error', (err) => log?.warn({ err }, 'simulator: could not send a response'));
  await new Promise<void>((resolve, reject) => {
    server.once('initialized', () => resolve());
    server.once('serverError', (err: NodeJS.ErrnoException) => {
      const why = err.code === 'EADDRINUSE' ? 'address in use' : err.message;
      reject(new UserError(`cannot listen on ${host}:${port}: ${why}`));
    });
  });
  const address = (server as unknown as { _server: { address(): AddressInfo } })._server.address();
  return { server, port: address.port };
}

type SerialServerCtor = new (
  vector: IServiceVector,
  options: { path: string; baudRate: number; parity: string; unitID: number; openCallback: (err: Error | null) => void },
  // A third argument reaches the serial port as-is; the typings omit it.
  serialportOptions: { dataBits: number; stopBits: number },
) => ServerSerial;

async function startSerial(vector: IServiceVector, opts: SerialOptions, log?: Logger): Promise<ServerSerial> {
  let server: ServerSerial | undefined;
  await new Promise<void>((resolve, reject) => {
    const openCallback = (err: Error | null) => {
      if (err) reject(new UserError(`cannot open serial port ${opts.path}: ${err.message}`));
      else resolve();
    };
    server = new (ServerSerial as unknown as SerialServerCtor)(
      vector,
      { path: opts.path, baudRate: opts.baudRate ?? 9600, parity: opts.parity ?? 'none', unitID: 255, openCallback },
      { dataBits: opts.dataBits ?? 8, stopBits: opts.stopBits ?? 1 },
    );
    server.on('error', (err) => log?.warn({ err }, 'simulator: serial error'));
    server.on('socketError', (err) => log?.warn({ err }, 'simulator: serial error'));
  });
  return server!;
}

function closeServer(server: ServerTCP | ServerSerial | undefined): Promise<void> {
  if (!server) return Promise.resolve();
  // Errors here mean "already closed"; closing must not fail a shutdown.
  return new Promise((resolve) => {
    try {
      server.close(() => resolve());
    } catch {
      resolve();
    }
  });
}

export async function startSimulator(options: StartOptions): Promise<RunningSimulator> {
  const scenario = typeof options.scenario === 'string' ? createScenario(options.scenario, { seed: options.seed }) : options.scenario;
  const simulator = new Simulator(scenario, options.clock ?? Date.now);
  const log = options.log;
  let tcp: { server: ServerTCP; port: number } | undefined;
  let serial: ServerSerial | undefined;
  const host = options.tcp?.host ?? '127.0.0.1';
  try {
    if (options.tcp) tcp = await startTcp(vectorFor(simulator, EX_GATEWAY_TARGET), host, options.tcp.port ?? DEFAULT_SIM_PORT, log);
    // On a serial line an absent unit is simply silent.
    if (options.serial) serial = await startSerial(vectorFor(simulator, 'silent'), options.serial, log);
  } catch (err) {
    await closeServer(tcp?.server);
    throw err;
  }
  let closing: Promise<void> | undefined;
  return {
    simulator,
    tcpHost: tcp ? host : undefined,
    tcpPort: tcp?.port,
    serialPath: serial ? options.serial?.path : undefined,
    trigger: (event) => simulator.trigger(event),
    setUnitMode: (unit, mode) => simulator.setUnitMode(unit, mode),
    close() {
      closing ??= Promise.all([closeServer(tcp?.server), closeServer(serial)]).then(() => undefined);
      return closing;
    },
  };
}
