/**
 * One byte stream to line sensors: a serial port, or a TCP socket to a serial device server. Emits 'data'
 * and, once per open, 'close' when the port or peer goes away by itself. Thin by design: framing, scheduling
 * and reconnects live in bus.ts.
 */
import { EventEmitter } from 'node:events';
import net from 'node:net';
import { SerialPort } from 'serialport';
import type { LineBusConfig } from '../../config/schema.js';

export type LineTarget =
  | { kind: 'serial'; path: string; baudRate: number; parity: 'none' | 'even' | 'odd'; dataBits: 7 | 8; stopBits: 1 | 2 }
  | { kind: 'tcp'; host: string; port: number };

export function lineTarget(bus: LineBusConfig): LineTarget {
  if (bus.host !== undefined) return { kind: 'tcp', host: bus.host, port: Number(bus.port) };
  return { kind: 'serial', path: String(bus.port), baudRate: bus.baudRate, parity: bus.parity, dataBits: bus.dataBits, stopBits: bus.stopBits };
}

export function describeLineTarget(t: LineTarget): string {
  if (t.kind === 'tcp') return `tcp://${t.host}:${t.port}`;
  return `${t.path} ${t.baudRate} ${t.dataBits}${t.parity[0]!.toUpperCase()}${t.stopBits}`;
}

interface LinkEvents {
  data: [chunk: Buffer];
  close: [reason: string];
}

type Stream = { kind: 'serial'; port: SerialPort } | { kind: 'tcp'; socket: net.Socket };

/** A TCP peer that dies without a FIN (power cut at the device server) is found by keepalive probes. */
const KEEPALIVE_MS = 10_000;

export class LineLink extends EventEmitter<LinkEvents> {
  private stream: Stream | undefined;

  constructor(
    readonly target: LineTarget,
    private readonly connectTimeoutMs: number,
  ) {
    super();
  }

  get isOpen(): boolean {
    return this.stream !== undefined;
  }

  describe(): string {
    return describeLineTarget(this.target);
  }

  async open(): Promise<void> {
    await this.close();
    const stream = this.target.kind === 'serial' ? await openSerial(this.target) : await openTcp(this.target, this.connectTimeoutMs);
    this.stream = stream;
    const lost = (reason: string) => {
      if (this.stream !== stream) return;
      this.stream = undefined;
      destroy(stream);
      this.emit('close', reason);
    };
    if (stream.kind === 'serial') {
      stream.port.on('data', (chunk: Buffer) => this.stream === stream && this.emit('data', chunk));
      stream.port.on('error', (err: Error) => lost(err.message));
      stream.port.on('close', (err?: Error | null) => lost(err?.message ?? 'port closed'));
    } else {
      stream.socket.on('data', (chunk: Buffer) => this.stream === stream && this.emit('data', chunk));
      stream.socket.on('error', (err: Error) => lost(err.message));
      stream.socket.on('close', () => lost('connection closed by the peer'));
    }
  }

  /** Resolves once the bytes are handed to the OS; rejects when the link is not open or the write fails. */
  write(bytes: Buffer): Promise<void> {
    const s = this.stream;
    if (!s) return Promise.reject(new Error(`${this.describe()} is not open`));
    return new Promise((resolve, reject) => {
      const done = (err?: Error | null) => (err ? reject(err) : resolve());
      if (s.kind === 'serial') s.port.write(bytes, done);
      else s.socket.write(bytes, done);
    });
  }

  async close(): Promise<void> {
    const s = this.stream;
    this.stream = undefined;
    if (!s) return;
    if (s.kind === 'tcp') {
      s.socket.destroy();
      return;
    }
    await new Promise<void>((resolve) => {
      // A port that is already gone may never call back.
      const timer = setTimeout(resolve, 500);
      timer.unref();
      try {
        s.port.close(() => {
          clearTimeout(timer);
          resolve();
        });
      } catch {
        clearTimeout(timer);
        resolve();
      }
    });
  }
}

function destroy(s: Stream): void {
  if (s.kind === 'tcp') {
    s.socket.destroy();
    return;
  }
  if (s.port.isOpen) s.port.close(() => {});
}

async function openSerial(t: Extract<LineTarget, { kind: 'serial' }>): Promise<Stream> {
  const port = new SerialPort({ path: t.path, baudRate: t.baudRate, parity: t.parity, dataBits: t.dataBits, stopBits: t.stopBits, autoOpen: false });
  // Errors after a failed open or during close must not reach Node's unhandled 'error' path.
  port.on('error', () => {});
  await new Promise<void>((resolve, reject) => port.open((err) => (err ? reject(new Error(`cannot open ${describeLineTarget(t)}: ${err.message}`)) : resolve())));
  return { kind: 'serial', port };
}

function openTcp(t: Extract<LineTarget, { kind: 'tcp' }>, timeoutMs: number): Promise<Stream> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: t.host, port: t.port });
    const fail = (message: string) => {
      socket.destroy();
      reject(new Error(`cannot connect to ${describeLineTarget(t)}: ${message}`));
    };
    const timer = setTimeout(() => fail(`no connection within ${timeoutMs} ms`), timeoutMs);
    socket.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      fail(err.code === 'ECONNREFUSED' ? 'connection refused' : err.message);
    });
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      socket.on('error', () => {}); // the link's own handler follows; never an unhandled 'error'
      socket.setNoDelay(true);
      socket.setKeepAlive(true, KEEPALIVE_MS);
      resolve({ kind: 'tcp', socket });
    });
  });
}
