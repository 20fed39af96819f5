/**
 * Loss is never over-reported: when buffer.maxBytes forces a drop while samples are published and not yet
 * acknowledged, the drop skips them. Every PUBACKed sample is then still in the outbox when its ack comes,
 * and every dropped run names only samples that were never published.
 */
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { uplinkSchema } from '../src/config/schema.js';
import { Outbox } from '../src/outbox/index.js';
import { Uplink } from '../src/uplink/uplink.js';
import { ManualTimers } from './helpers/manual-timers.js';
import { tempDir } from './helpers/ports.js';
import { RecordingSession } from './helpers/recording-session.js';

const logger = pino({ level: 'silent' });
const tick = () => new Promise((r) => setImmediate(r));

describe('a drop for maxBytes while samples are in flight', () => {
  it('skips the published rows, so no PUBACKed sample is counted as dropped', async () => {
    const outbox = Outbox.open({ dir: tempDir('inflight'), logger, maxBytes: 256 * 1024, commitIntervalMs: 3_600_000 });
    const series = outbox.seriesId('tank', 'level');
    // What each ack asked for against what it found still stored.
    let requested = 0;
    let removed = 0;
    const realAck = outbox.ack.bind(outbox);
    outbox.ack = (ranges) => {
      for (const [a, b] of ranges) requested += b - a + 1;
      const n = realAck(ranges);
      removed += n;
      return n;
    };
    const timers = new ManualTimers();
    const session = new RecordingSession();
    const uplink = new Uplink({
      session,
      outbox,
      config: uplinkSchema.parse({ url: 'mqtt://127.0.0.1:1', inflight: 8, batch: { maxSamples: 250 } }),
      gatewayId: 'g',
      logger,
      timers,
      birth: () => ({ version: '0', configHash: '0', epoch: outbox.epoch, points: [{ index: series, device: 'tank', point: 'level' }] }),
    });
    uplink.start();
    await tick();
    session.holdAcks = true;
    let n = 0;
    const add = (count: number) => {
      outbox.append(Array.from({ length: count }, () => ({ device: 'tank', point: 'level', ts: timers.now(), value: n++, quality: 'good' as const })));
      outbox.commit();
    };
    try {
      for (let round = 0; round < 30; round++) {
        // A slow broker: the window fills, the cap drops while it waits, then the PUBACKs come.
        for (let i = 0; i < 5; i++) add(1000);
        await tick();
        session.release();
        await tick();
      }
      session.release();
      await tick();
      const stats = outbox.stats();
      expect(stats.dropped.maxBytes).toBeGreaterThan(0);
      expect(uplink.stats.acked).toBeGreaterThan(10_000);
      expect(requested).toBe(uplink.stats.acked);
      // Every acknowledged sample was still stored: none of them went into the dropped count.
      expect(removed).toBe(requested);
      // And the dropped runs plus what was delivered plus what is left account for every seq.
      expect(stats.dropped.maxBytes + removed + stats.samples).toBe(n);
    } finally {
      await uplink.stop();
      outbox.close();
    }
  });

  it('drops the oldest rows that are not held, recording one run per stretch between held ranges', () => {
    const outbox = Outbox.open({ dir: tempDir('inflight-runs'), logger, maxBytes: 256 * 1024, commitIntervalMs: 3_600_000 });
    try {
      outbox.holdInFlight(() => [[101, 200], [301, 400]]);
      let n = 0;
      for (let i = 0; i < 20; i++) {
        outbox.append(Array.from({ length: 1000 }, () => ({ device: 'd', point: 'p', ts: 1_750_000_000_000 + n++, value: n, quality: 'good' as const })));
        outbox.commit();
      }
      const runs = outbox.droppedRanges(0);
      expect(runs.length).toBeGreaterThan(0);
      for (const r of runs) {
        expect(r.toSeq! < 101 || r.fromSeq! > 200, `${r.fromSeq}-${r.toSeq}`).toBe(true);
        expect(r.toSeq! < 301 || r.fromSeq! > 400, `${r.fromSeq}-${r.toSeq}`).toBe(true);
      }
      expect(runs[0]).toMatchObject({ fromSeq: 1, toSeq: 100, count: 100 });
      expect(outbox.read(100, 1)[0]!.seq).toBe(101);
      expect(outbox.read(300, 1)[0]!.seq).toBe(301);
    } finally {
      outbox.close();
    }
  });
});
