/**
 * mqtt-packet's cache of remaining-length encodings, packed before the first packet: later packets of every size
 * reuse entries that share a few Buffer pool blocks, instead of pinning a block each (mqttjs/mqtt-packet#163).
 * In the isolated project: the module's cache must be fresh, as in a starting daemon.
 */
import type { Writable } from 'node:stream';
import mqttPacket from 'mqtt-packet';
import { describe, expect, it } from 'vitest';
import { MqttSession } from '../src/uplink/session.js';
import { CACHED_LENGTHS } from '../src/uplink/varint-cache.js';
import { recordingLogger } from './helpers/gateway.js';

/** The buffer a packet's remaining length was written from: the write after its fixed header byte. */
function lengthBuffer(payloadBytes: number): Buffer {
  const writes: Buffer[] = [];
  const stream = { write: (b: Buffer) => (writes.push(b), true), cork() {}, uncork() {} } as unknown as Writable;
  mqttPacket.writeToStream({ cmd: 'publish', topic: 'x', payload: Buffer.alloc(payloadBytes), qos: 0, dup: false, retain: false }, stream);
  return writes[1]!;
}

/** MQTT's variable byte integer. */
function decode(b: Buffer): number {
  let n = 0;
  for (let i = b.length - 1; i >= 0; i--) n = n * 128 + (b[i]! & 0x7f);
  return n;
}

describe('mqtt-packet length cache', () => {
  it('is packed when a session starts: packets of every size then share a few pool blocks', async () => {
    const session = new MqttSession(
      {
        url: 'mqtt://127.0.0.1:1', clientId: 'gw-varint', insecure: false, protocolVersion: 5, keepaliveS: 60, connectTimeoutMs: 1000,
        reconnectMinMs: 60_000, reconnectMaxMs: 60_000, will: { topic: 'fieldgate/gw-varint/status', payload: '{}' },
      },
      recordingLogger().logger,
    );
    session.start();
    await session.close();
    const blocks = new Set<ArrayBufferLike>();
    for (let length = 3; length < CACHED_LENGTHS; length += 5) {
      // Other small allocations between two packets, as in a running gateway: each would get its own block otherwise.
      Buffer.allocUnsafe(512);
      const b = lengthBuffer(length - 3);
      expect(decode(b)).toBe(length);
      blocks.add(b.buffer);
    }
    // 16,381 entries of 8 bytes each, between the topic lengths of their packets, fill 32 blocks of 8 KiB; unpacked,
    // these 3,276 sizes pin a block for every few of them (219 measured).
    expect(blocks.size).toBeLessThanOrEqual(40);
    // Without the table of 65,536 two-byte numbers (about 10 MiB of heap) the session's writeCache: false turns off.
    expect(mqttPacket.writeToStream.cacheNumbers).toBe(false);
  });
});
