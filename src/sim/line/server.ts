/**
 * Serves a line-protocol instrument (models.ts) on a serial path and/or over TCP like a serial device server
 * in raw mode: queries come in as lines ending in CR or LF, replies and periodic lines go out with the
 * delimiter. Noise (noise.ts) can be switched on to exercise the gateway's line handling.
 */
import net, { type AddressInfo } from 'node:net';
import { SerialPort } from 'serialport';
import { LineFramer } from '../../sources/line/framing.js';
import type { Clock } from '../simulator.js';
import { createLineModel, type LaserChecksum, type LineDeviceKind, type LineDeviceModel, type LineSimEvent } from './models.js';
import { NoiseSource, type NoiseKind, type NoiseOptions } from './noise.js';

export interface LineSimulatorOptions {
  device: LineDeviceKind;
  serial?: { path: string; baudRate?: number; parity?: 'none' | 'even' | 'odd'; dataBits?: 7 | 8; stopBits?: 1 | 2 };
  /** port 0 (the default) picks a free port; `tcpPort` reports it. Host default 127.0.0.1. */
  tcp?: { host?: string; port?: number };
  clock?: Clock;
  seed?: number;
  /** Unprompted lines every this many ms; 0 = only replies. Default 1000 for the gas detector, 0 for the laser. */
  intervalMs?: number;
  /** Device turnaround before a reply, ms (default 20). */
  replyDelayMs?: number;
  /** What ends every line sent (default "\r\n"). */
  delimiter?: string;
  /** Gas detector bus address answered in `#NN` (default 1). */
  address?: number;
  /** Laser reply checksum (default none). */
  checksum?: LaserChecksum;
  /** Noise settings; noise starts switched off unless `on` is true. */
  noise?: NoiseOptions & { on?: boolean };
}

export interface LineSimulatorStats {
  /** Good lines sent (replies and periodic). */
  lines: number;
  queries: number;
  /** Noise items sent, by kind. */
  noise: Record<NoiseKind, number>;
}

export interface RunningLineSimulator {
  readonly device: LineDeviceKind;
  readonly model: LineDeviceModel;
  readonly serialPath?: string;
  readonly tcpHost?: string;
  readonly tcpPort?: number;
  readonly stats: LineSimulatorStats;
  /** 'gas' (gas detector) or 'creep' (laser) starts the event, 'clear' ends it. */
  trigger(event: LineSimEvent): void;
  setNoise(on: boolean, rate?: number): void;
  /** A silent device neither answers nor talks: the gateway sees timeouts. */
  setSilent(on: boolean): void;
  /** Frees the TCP port and the serial device. Safe to call twice. */
  close(): Promise<void>;
}

/** Where the simulator writes: the serial port, or every connected TCP client. */
type Write = (bytes: Buffer) => void;

export async function startLineSimulator(opts: LineSimulatorOptions): Promise<RunningLineSimulator> {
  if (!opts.serial && !opts.tcp) throw new Error('startLineSimulator needs serial: or tcp: (or both)');
  const clock = opts.clock ?? Date.now;
  const model = createLineModel(opts.device, clock(), { seed: opts.seed, address: opts.address, checksum: opts.checksum });
  const delimiter = opts.delimiter ?? '\r\n';
  const replyDelayMs = opts.replyDelayMs ?? 20;
  const noise = new NoiseSource(opts.noise);
  let noiseOn = opts.noise?.on === true;
  let silent = false;
  let closed = false;
  const stats: LineSimulatorStats = { lines: 0, queries: 0, noise: noise.sent };
  const timers = new Set<NodeJS.Timeout>();

  /** One noise decision per line, so every transport carries the same stream. */
  const send = (writes: readonly Write[], line: string) => {
    if (closed) return;
    const junk = noiseOn ? noise.before(line, delimiter) : undefined;
    const bytes = Buffer.from(line + delimiter);
    for (const write of writes) {
      if (junk) write(junk);
      write(bytes);
    }
    stats.lines++;
  };

  /** Queries arrive as lines ending in CR and/or LF; a stream of junk without one is dropped, bounded. */
  const queryReader = (write: Write) => {
    const framer = new LineFramer('\r', 256);
    const events = {
      line: (raw: Buffer) => {
        const query = raw.toString('latin1').replace(/^[\r\n]+|[\r\n]+$/g, '').trim();
        if (query === '' || silent) return;
        stats.queries++;
        const reply = model.answer(query, clock());
        if (reply === undefined) return;
        const t = setTimeout(() => {
          timers.delete(t);
          send([write], reply);
        }, replyDelayMs);
        timers.add(t);
      },
      overlong: () => {},
    };
    // A lone LF ends a query too: treat it as CR.
    return (chunk: Buffer) => framer.push(Buffer.from(chunk.toString('latin1').replace(/\n/g, '\r'), 'latin1'), events);
  };

  const writers: Write[] = [];
  let port: SerialPort | undefined;
  let server: net.Server | undefined;
  const sockets = new Set<net.Socket>();

  if (opts.serial) {
    const s = opts.serial;
    const p = new SerialPort({ path: s.path, baudRate: s.baudRate ?? 9600, parity: s.parity ?? 'none', dataBits: s.dataBits ?? 8, stopBits: s.stopBits ?? 1, autoOpen: false });
    p.on('error', () => {}); // the line vanishing (socat stopped) is the test's business, not a crash
    await new Promise<void>((resolve, reject) => p.open((err) => (err ? reject(new Error(`cannot open ${s.path}: ${err.message}`)) : resolve())));
    port = p;
    const write: Write = (bytes) => {
      if (p.isOpen) p.write(bytes, () => {});
    };
    p.on('data', queryReader(write));
    writers.push(write);
  }

  if (opts.tcp) {
    const srv = net.createServer((socket) => {
      sockets.add(socket);
      socket.on('error', () => {});
      socket.on('close', () => sockets.delete(socket));
      const write: Write = (bytes) => {
        if (!socket.destroyed) socket.write(bytes);
      };
      socket.on('data', queryReader(write));
    });
    await new Promise<void>((resolve, reject) => {
      srv.once('error', reject);
      srv.listen(opts.tcp!.port ?? 0, opts.tcp!.host ?? '127.0.0.1', () => {
        srv.off('error', reject);
        resolve();
      });
    });
    server = srv;
    writers.push((bytes) => {
      for (const s of sockets) if (!s.destroyed) s.write(bytes);
    });
  }

  const intervalMs = opts.intervalMs ?? (opts.device === 'gas' ? 1000 : 0);
  const periodic =
    intervalMs > 0
      ? setInterval(() => {
          if (silent || closed) return;
          send(writers, model.periodic(clock()));
        }, intervalMs)
      : undefined;

  const addr = server?.address() as AddressInfo | undefined;
  return {
    device: opts.device,
    model,
    serialPath: opts.serial?.path,
    tcpHost: addr?.address,
    tcpPort: addr?.port,
    stats,
    trigger: (event) => model.trigger(event, clock()),
    setNoise(on, rate) {
      noiseOn = on;
      if (rate !== undefined) noise.rate = rate;
    },
    setSilent(on) {
      silent = on;
    },
    async close() {
      if (closed) return;
      closed = true;
      if (periodic) clearInterval(periodic);
      for (const t of timers) clearTimeout(t);
      timers.clear();
      for (const s of sockets) s.destroy();
      await Promise.all([
        server ? new Promise<void>((resolve) => server!.close(() => resolve())) : undefined,
        port?.isOpen ? closePort(port) : undefined,
      ]);
    },
  };
}

/** A port whose line is already gone may never call back. */
function closePort(port: SerialPort): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, 500);
    timer.unref();
    port.close(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}
