/**
 * buffer.maxBytes bounds the outbox's files, the WAL and its index included; a cap the outbox cannot honour is
 * refused by the schema; drops for the cap are logged, rate-limited.
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { Writable } from 'node:stream';
import { bufferSchema } from '../src/config/schema.js';
import { Outbox } from '../src/outbox/index.js';
import { MIN_MAX_BYTES } from '../src/outbox/limits.js';
import { tempDir } from './helpers/peers.js';

const dirBytes = (dir: string) => readdirSync(dir).reduce((n, f) => n + statSync(join(dir, f)).size, 0);

function capture() {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      for (const l of String(chunk).split('\n')) if (l) lines.push(JSON.parse(l));
      done();
    },
  });
  return { logger: pino({ level: 'info' }, stream), lines };
}

describe('buffer.maxBytes', () => {
  it.each([768 * 1024, MIN_MAX_BYTES])('keeps the data directory under a %i-byte cap under load, WAL included', (maxBytes) => {
    const dir = tempDir('cap');
    const { logger, lines } = capture();
    let now = Date.parse('2026-01-01T00:00:00Z');
    const ob = Outbox.open({ dir, maxBytes, logger, clock: () => now });
    let peak = 0;
    let acked = 0;
    for (let round = 0; round < 400; round++) {
      const batch = [];
      for (let i = 0; i < 500; i++) batch.push({ device: 'd', point: `p${i % 7}`, ts: now + i, value: round * 1000 + i, quality: 'good' as const });
      ob.append(batch);
      ob.commit();
      now += 1000;
      // An uplink that acks a little now and then, in the middle of the stored range.
      if (round % 10 === 0) {
        const min = ob.minSeq() ?? 1;
        acked += ob.ack([[min + 100, min + 600]]);
      }
      peak = Math.max(peak, dirBytes(dir));
    }
    expect(acked).toBeGreaterThan(0);
    expect(ob.stats().dropped.maxBytes).toBeGreaterThan(0);
    ob.close();
    expect(peak).toBeLessThanOrEqual(maxBytes);
    console.log(`cap ${maxBytes}: data directory peak ${peak} bytes`);
    // Logged, but not once per commit.
    const drops = lines.filter((l) => String(l.msg).includes('dropped the oldest samples to stay under buffer.maxBytes'));
    expect(drops.length).toBeGreaterThanOrEqual(1);
    expect(drops.length).toBeLessThan(20);
    expect(drops[0]).toMatchObject({ maxBytes });
  });

  it('refuses a cap it cannot honour, naming the minimum', () => {
    for (const v of [0, 1000, '100KiB']) {
      const r = bufferSchema.safeParse({ maxBytes: v });
      expect(r.success, String(v)).toBe(false);
      expect(r.error!.issues[0]!.message).toContain('at least 256 KiB');
    }
    expect(bufferSchema.parse({ maxBytes: '256KiB' }).maxBytes).toBe(MIN_MAX_BYTES);
  });
});
