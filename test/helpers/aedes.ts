/**
 * An in-process MQTT 3.1.1 broker (aedes) on 127.0.0.1, so uplink tests run with plain `npm test`. A broker
 * "restart" is a new aedes on the same port sharing the old one's persistence: retained messages, persistent
 * sessions and their queued QoS 1 messages survive, as with a broker that persists to disk.
 */
import { createServer, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { Aedes, type AedesOptions } from 'aedes';

export interface AedesBroker {
  url: string;
  port: number;
  broker: Aedes;
  /** Pass to startAedes({ persistence }) to restart with the same retained messages and sessions. */
  persistence: unknown;
  /** Drops every connection at once (as a crashed broker would) and frees the port. Safe to call twice. */
  stop(): Promise<void>;
}

export interface AedesStartOptions extends Omit<AedesOptions, 'persistence'> {
  /** 0 (default) picks a free port. */
  port?: number;
  persistence?: unknown;
}

export async function startAedes(options: AedesStartOptions = {}): Promise<AedesBroker> {
  const { port: wanted = 0, persistence, ...opts } = options;
  const broker = await Aedes.createBroker({ ...opts, ...(persistence ? { persistence } : {}) });
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    broker.handle(socket);
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(wanted, '127.0.0.1', () => resolve());
    });
  } catch (err) {
    await new Promise<void>((resolve) => broker.close(() => resolve()));
    throw err;
  }
  const port = (server.address() as AddressInfo).port;
  let stopping: Promise<void> | undefined;
  return {
    url: `mqtt://127.0.0.1:${port}`,
    port,
    broker,
    persistence: (broker as unknown as { persistence: unknown }).persistence,
    stop() {
      stopping ??= (async () => {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        for (const s of sockets) s.destroy();
        await new Promise<void>((resolve) => broker.close(() => resolve()));
        await closed;
      })();
      return stopping;
    },
  };
}

/** A port that was free a moment ago: for a gateway that must start while its broker is still down. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
