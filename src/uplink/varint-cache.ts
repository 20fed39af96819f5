/**
 * mqtt-packet (what mqtt.js writes packets with) caches the encoding of every remaining length below 16,384 it
 * writes, each a 1-2 byte slice of Node's 8 KiB Buffer pool, and never lets one go. A slice keeps its whole pool
 * block alive, so entries made one at a time as message sizes vary, between other allocations, pin a block each:
 * up to 128 MiB, growing for as long as new sizes come (mqttjs/mqtt-packet#163, open). Writing every length from 3
 * on once, in one tight loop before the first real packet, packs the cache into a few contiguous blocks instead
 * (0-2, the sizes of acks and pings, are a few entries more, made as they come).
 */
import type { Writable } from 'node:stream';
import mqttPacket from 'mqtt-packet';

/** mqtt-packet caches the lengths below this. */
export const CACHED_LENGTHS = 16_384;
/** A QoS 0 PUBLISH of topic `x` has a remaining length of 3 + its payload (2 bytes of topic length, the topic). */
const PUBLISH_OVERHEAD = 3;

let packed = false;

/** A stream that takes every write and keeps none (only what writeToStream calls). */
const sink = { write: () => true, cork() {}, uncork() {}, destroy() {} } as unknown as Writable;

/** Fills mqtt-packet's length cache at once; later calls do nothing. 16,381 packets to nowhere: about 0.1 s, once. */
export function packVarIntCache(): void {
  if (packed) return;
  packed = true;
  // What the session's `writeCache: false` sets, before its first packet builds the other table: 65,536 two-byte
  // Buffers for packet ids and string lengths, about 10 MiB of heap.
  mqttPacket.writeToStream.cacheNumbers = false;
  const payload = Buffer.alloc(CACHED_LENGTHS);
  for (let length = PUBLISH_OVERHEAD; length < CACHED_LENGTHS; length++) {
    mqttPacket.writeToStream({ cmd: 'publish', topic: 'x', payload: payload.subarray(0, length - PUBLISH_OVERHEAD), qos: 0, dup: false, retain: false }, sink);
  }
}
