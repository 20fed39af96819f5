/**
 * One Modbus connection (a serial port, or a TCP socket to a device or a serial gateway), with every failure
 * turned into a ModbusError of a known kind. Thin by design: scheduling, retries and reconnects live in bus.ts.
 */
import { EventEmitter } from 'node:events';
import ModbusSerial from 'modbus-serial';
import type { ModbusRTU } from 'modbus-serial/ModbusRTU.js';
import { ModbusError, exceptionName } from './errors.js';
import type { ReadFc, WriteFc } from './types.js';

// The package's default export is the client class at run time; its typings declare it under another name.
const ModbusClient = ModbusSerial as unknown as new () => ModbusRTU;

export type Target =
  | { transport: 'tcp' | 'rtu-over-tcp'; host: string; port: number }
  | { transport: 'rtu'; port: string; baudRate: number; parity: 'none' | 'even' | 'odd'; dataBits: 7 | 8; stopBits: 1 | 2 };

/** Maps modbus-serial's errors (strings in messages, errno fields) to a ModbusError. */
export function classifyError(err: unknown, timeoutMs: number): ModbusError {
  if (err instanceof ModbusError) return err;
  const e = err as { message?: string; errno?: string; code?: string; modbusCode?: number };
  const message = e?.message ?? String(err);
  if (typeof e?.modbusCode === 'number') {
    return new ModbusError('exception', `exception ${e.modbusCode} (${exceptionName(e.modbusCode)})`, e.modbusCode);
  }
  if (e?.errno === 'ETIMEDOUT' || /timed out/i.test(message)) return new ModbusError('timeout', `timeout after ${timeoutMs} ms`);
  if (/CRC/i.test(message)) return new ModbusError('crc', 'CRC error in response');
  if (/length|Unexpected data/i.test(message)) return new ModbusError('frame', `bad response frame: ${message}`);
  if (e?.errno === 'ECONNREFUSED' || e?.code === 'ECONNREFUSED') return new ModbusError('connect', 'connection refused');
  if (/Port Not Open|closed|ECONNRESET|EPIPE|disconnected/i.test(message) || e?.errno === 'ECONNRESET') {
    return new ModbusError('disconnected', `link lost: ${message}`);
  }
  return new ModbusError('disconnected', message);
}

/** The largest Modbus frame is 260 bytes (TCP) or 256 (RTU); more than this waiting is never one reply. */
const MAX_PENDING_BYTES = 4096;
const KEEP_BYTES = 512;
/**
 * A Modbus TCP peer speaks only when asked: more than this since the last request went out (a late reply and
 * the current one are a few hundred bytes) is a flood or garbage, and the link is closed rather than drained.
 */
const MAX_UNASKED_TCP_BYTES = 4096;
/**
 * A serial device server only relays its line, which carries at most about 46 KB/s (460,800 baud); noise or
 * another master's traffic stays well below. More than this in one second is no serial line.
 */
const MAX_RELAYED_BYTES_PER_S = 64 * 1024;
/** How long past timeoutMs a transaction may stay unsettled before the link is declared stuck. */
const STUCK_GRACE_MS = 2000;

/** modbus-serial's port objects, by the private fields its ports use for their receive buffers. */
interface PortInternals extends EventEmitter {
  _client?: EventEmitter;
  /** RTUBufferedPort, TelnetPort. */
  _buffer?: Buffer;
  /** TcpPort. */
  _clientRcvData?: Buffer;
}

function portOf(client: ModbusRTU): PortInternals | undefined {
  return (client as unknown as { _port?: PortInternals })._port;
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no connection within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export function describeTarget(target: Target): string {
  if (target.transport === 'rtu') {
    const p = target.parity[0]!.toUpperCase();
    return `${target.port} ${target.baudRate} ${target.dataBits}${p}${target.stopBits}`;
  }
  return `${target.transport}://${target.host}:${target.port}`;
}

/** Emits 'close' (reason) once per open when the port or socket goes away, by itself or dropped for a flood. */
export class ModbusLink extends EventEmitter {
  private client: ModbusRTU | undefined;
  /** Bytes received since the last request went out (or since the open). */
  private unasked = 0;
  private windowStart = 0;
  private windowBytes = 0;

  constructor(
    readonly target: Target,
    readonly timeoutMs: number,
  ) {
    super();
  }

  get isOpen(): boolean {
    return this.client?.isOpen === true;
  }

  async open(): Promise<void> {
    await this.close();
    const client = new ModbusClient();
    // modbus-serial re-emits port errors; without a listener Node would throw them and kill the daemon.
    client.on('error', () => {});
    const t = this.target;
    try {
      if (t.transport === 'rtu') {
        await client.connectRTUBuffered(t.port, {
          baudRate: t.baudRate,
          parity: t.parity,
          dataBits: t.dataBits,
          stopBits: t.stopBits,
        });
      } else if (t.transport === 'tcp') {
        await client.connectTCP(t.host, { port: t.port, timeout: this.timeoutMs });
      } else {
        // Raw RTU frames (unit, PDU, CRC) over a TCP socket, as a serial device server in transparent mode relays
        // them: modbus-serial's TelnetPort. (Its TcpRTUBufferedPort speaks MBAP, i.e. Modbus TCP, despite the name.)
        await withTimeout(client.connectTelnet(t.host, { port: t.port }), Math.max(this.timeoutMs, 3000));
      }
    } catch (err) {
      this.release(client);
      const e = err as { message?: string };
      throw new ModbusError('connect', `cannot open ${describeTarget(t)}: ${e?.message ?? String(err)}`);
    }
    client.setTimeout(this.timeoutMs);
    this.client = client;
    client.on('close', () => {
      if (this.client === client) {
        this.client = undefined;
        this.emit('close', 'port or connection closed');
      }
    });
    this.unasked = 0;
    this.windowStart = performance.now();
    this.windowBytes = 0;
    this.watchSocket(client);
  }

  /**
   * TCP sockets can fail with 'error' before 'close'; serial ports too when the adapter is pulled. And the
   * receive buffers of modbus-serial's ports are bounded here: the RTU ports keep every byte until one matches
   * the pending request (line noise, another master's traffic), the TCP port waits for as many bytes as a
   * garbled MBAP header announces. Checked after the port's own handler has seen the data.
   */
  private watchSocket(client: ModbusRTU): void {
    const port = portOf(client);
    port?.on?.('error', () => {});
    port?._client?.on?.('error', () => {});
    // Counted before the port parses the chunk: a flood is let go at its first chunk past the bound.
    port?._client?.prependListener?.('data', (chunk: Buffer) => this.count(client, chunk.length));
    port?._client?.on?.('data', () => {
      if (port._buffer && port._buffer.length > MAX_PENDING_BYTES) port._buffer = port._buffer.subarray(-KEEP_BYTES);
      if (port._clientRcvData && port._clientRcvData.length > MAX_PENDING_BYTES) port._clientRcvData = Buffer.alloc(0);
    });
  }

  /** Drops the link to a peer that sends what no request asked for, instead of reading it forever. */
  private count(client: ModbusRTU, bytes: number): void {
    if (this.client !== client) return;
    const where = describeTarget(this.target);
    if (this.target.transport === 'tcp') {
      this.unasked += bytes;
      if (this.unasked > MAX_UNASKED_TCP_BYTES) this.drop(`${where} sent ${this.unasked} bytes no request asked for`);
      return;
    }
    // A serial port's own baud rate bounds what it can deliver.
    if (this.target.transport !== 'rtu-over-tcp') return;
    const now = performance.now();
    if (now - this.windowStart >= 1000) {
      this.windowStart = now;
      this.windowBytes = 0;
    }
    this.windowBytes += bytes;
    if (this.windowBytes > MAX_RELAYED_BYTES_PER_S) this.drop(`${where} sent more than ${MAX_RELAYED_BYTES_PER_S} bytes within a second, more than a serial line carries`);
  }

  /** Closes the link at once and reports it as lost: the bus reopens it through its backoff. */
  private drop(reason: string): void {
    const client = this.client;
    if (!client) return;
    this.client = undefined;
    this.release(client);
    this.emit('close', reason);
  }

  /**
   * Lets a client go without waiting for its peer: modbus-serial's close() of a TCP or telnet port only half-
   * closes the socket (end()), which a peer that keeps sending holds open, read, for as long as it likes.
   */
  private release(client: ModbusRTU): Promise<void> {
    return new Promise<void>((resolve) => {
      try {
        if (this.target.transport === 'rtu') client.close(() => resolve());
        else client.destroy(() => resolve());
      } catch {
        resolve();
      }
      // A serial port that is already gone may never call back.
      setTimeout(resolve, 500).unref();
    });
  }

  /**
   * One transaction at a time: bytes still waiting when a new one starts belong to an earlier one that failed
   * (a truncated frame, a reply after its timeout, noise). Left there, a partial MBAP frame would swallow every
   * later reply on the connection, and a stale RTU frame could be taken for the new reply.
   */
  private flushInput(client: ModbusRTU): void {
    this.unasked = 0;
    // modbus-serial keeps each finished transaction (its reply's registers and promise) until its id comes round
    // again, 256 transactions later: about 4 MiB at 20 connections. None is still waiting now, so they are let go;
    // a late reply to one of them then finds no transaction and is ignored, as it should be.
    const internals = client as unknown as { _transactions?: object };
    if (internals._transactions) internals._transactions = {};
    const port = portOf(client);
    if (port?._buffer?.length) port._buffer = Buffer.alloc(0);
    if (port?._clientRcvData?.length) port._clientRcvData = Buffer.alloc(0);
  }

  /** `timeoutMs`: this transaction's own timeout (a scan's short one) instead of the link's. */
  async read(unit: number, fc: ReadFc, address: number, count: number, timeoutMs = this.timeoutMs): Promise<number[] | boolean[]> {
    const client = this.requireOpen();
    client.setID(unit);
    this.flushInput(client);
    if (timeoutMs !== this.timeoutMs) client.setTimeout(timeoutMs);
    try {
      return await this.guarded(async () => {
        switch (fc) {
          case 1:
            return (await client.readCoils(address, count)).data.slice(0, count);
          case 2:
            return (await client.readDiscreteInputs(address, count)).data.slice(0, count);
          case 3:
            return (await client.readHoldingRegisters(address, count)).data;
          case 4:
            return (await client.readInputRegisters(address, count)).data;
        }
      });
    } catch (err) {
      throw this.failure(err, timeoutMs);
    } finally {
      if (timeoutMs !== this.timeoutMs) client.setTimeout(this.timeoutMs);
    }
  }

  async write(unit: number, fc: WriteFc, address: number, values: number[] | boolean[]): Promise<void> {
    const client = this.requireOpen();
    client.setID(unit);
    this.flushInput(client);
    try {
      await this.guarded(async () => {
        switch (fc) {
          case 5:
            await client.writeCoil(address, Boolean(values[0]));
            return;
          case 6:
            await client.writeRegister(address, Number(values[0]));
            return;
          case 15:
            await client.writeCoils(address, values.map(Boolean));
            return;
          case 16:
            await client.writeRegisters(address, values.map(Number));
            return;
        }
      });
    } catch (err) {
      throw this.failure(err);
    }
  }

  /**
   * A transaction always ends: when the port closes under it (an adapter pulled mid-request can leave
   * modbus-serial's promise pending for good), or when neither a reply nor the library's own timeout came
   * well after timeoutMs. Either way the link is dropped, so the bus reopens it instead of waiting forever.
   */
  private async guarded<T>(transaction: () => Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    let onClose: (() => void) | undefined;
    const stuck = new Promise<never>((_, reject) => {
      onClose = (reason?: string) => reject(new ModbusError('disconnected', `link to ${describeTarget(this.target)} closed during a request${reason ? ` (${reason})` : ''}`));
      this.once('close', onClose);
      timer = setTimeout(() => {
        void this.close();
        reject(new ModbusError('disconnected', `no answer and no timeout from ${describeTarget(this.target)} within ${this.timeoutMs + STUCK_GRACE_MS} ms; reopening`));
      }, this.timeoutMs + STUCK_GRACE_MS);
    });
    try {
      return await Promise.race([transaction(), stuck]);
    } finally {
      clearTimeout(timer);
      if (onClose) this.off('close', onClose);
    }
  }

  async close(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    if (client) await this.release(client);
  }

  private requireOpen(): ModbusRTU {
    if (!this.client?.isOpen) throw new ModbusError('disconnected', `link to ${describeTarget(this.target)} is not open`);
    return this.client;
  }

  private failure(err: unknown, timeoutMs = this.timeoutMs): ModbusError {
    const e = classifyError(err, timeoutMs);
    // A port that vanished mid-transaction shows up as a timeout or "Port Not Open": it is the link, not the unit.
    if (!this.client?.isOpen) {
      const client = this.client;
      if (client) {
        this.client = undefined;
        void this.release(client);
        this.emit('close', 'port or socket no longer open');
      }
      return e.linkLost ? e : new ModbusError('disconnected', `link to ${describeTarget(this.target)} lost`);
    }
    return e;
  }
}
