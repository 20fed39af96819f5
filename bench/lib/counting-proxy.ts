/**
 * A TCP proxy that counts the bytes of the TCP streams both ways (TLS records and all), so what a link carries is
 * measured on the wire, not taken from the gateway's own counters. IP and TCP headers (40-60 bytes a segment) come
 * on top and depend on how the stacks pack segments.
 */
import net from 'node:net';

export interface CountingProxy {
  readonly port: number;
  /** Gateway to broker, and broker to gateway, since the start or the last reset(). */
  readonly up: number;
  readonly down: number;
  readonly connections: number;
  reset(): void;
  /** Drops every connection through it (a link cut), and keeps listening. */
  cut(): void;
  close(): Promise<void>;
}

export async function startCountingProxy(target: { host: string; port: number }): Promise<CountingProxy> {
  let up = 0;
  let down = 0;
  let connections = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    connections++;
    const broker = net.connect(target);
    sockets.add(client).add(broker);
    client.on('data', (d) => {
      up += d.length;
      broker.write(d);
    });
    broker.on('data', (d) => {
      down += d.length;
      client.write(d);
    });
    const end = () => {
      client.destroy();
      broker.destroy();
      sockets.delete(client);
      sockets.delete(broker);
    };
    client.on('close', end).on('error', end);
    broker.on('close', end).on('error', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    get up() {
      return up;
    },
    get down() {
      return down;
    },
    get connections() {
      return connections;
    },
    reset() {
      up = 0;
      down = 0;
    },
    cut: () => {
      for (const s of sockets) s.destroy();
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}
