/**
 * The uplink's pacing on a manual clock, against the real outbox: the batch delay, the backlog drain cap and
 * the in-flight window, measured in simulated time, so the figures are exact and nothing waits in real time.
 */
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { uplinkSchema } from '../src/config/schema.js';
import { Outbox } from '../src/outbox/index.js';
import { decodeTelemetry } from '../src/uplink/payload.js';
import { Uplink } from '../src/uplink/uplink.js';
import { ManualTimers } from './helpers/manual-timers.js';
import { tempDir } from './helpers/ports.js';
import { RecordingSession } from './helpers/recording-session.js';

const logger = pino({ level: 'silent' });
const open: Array<{ uplink: Uplink; outbox: Outbox }> = [];

function setUp(uplinkKeys: Record<string, unknown>) {
  const timers = new ManualTimers();
  const outbox = Outbox.open({ dir: tempDir('uplink-clock'), logger, commitIntervalMs: 3_600_000 });
  const series = outbox.seriesId('tank', 'level');
  const session = new RecordingSession();
  const uplink = new Uplink({
    session,
    outbox,
    config: uplinkSchema.parse({ url: 'mqtt://127.0.0.1:1', ...uplinkKeys }),
    gatewayId: 'g',
    logger,
    timers,
    birth: () => ({ version: '0', configHash: '0', epoch: outbox.epoch, points: [{ index: series, device: 'tank', point: 'level' }] }),
  });
  open.push({ uplink, outbox });
  let n = 0;
  const add = (count: number) => {
    outbox.append(Array.from({ length: count }, () => ({ device: 'tank', point: 'level', ts: timers.now(), value: n++, quality: 'good' as const })));
    outbox.commit();
  };
  const delivered = () => session.published.filter((p) => p.topic.endsWith('/telemetry')).flatMap((p) => decodeTelemetry(p.payload).map((s) => s.seq));
  return { timers, outbox, session, uplink, add, delivered };
}

afterEach(async () => {
  for (const { uplink, outbox } of open.splice(0)) {
    await uplink.stop();
    outbox.close();
  }
});

describe('uplink pacing on a manual clock', () => {
  it('holds a partial live batch for batch.maxDelayMs, and sends a full one at once', async () => {
    const { timers, uplink, add, delivered } = setUp({ batch: { maxSamples: 10, maxDelayMs: 500 } });
    uplink.start();
    await timers.advance(0);
    add(3);
    await timers.advance(499);
    expect(delivered()).toEqual([]);
    await timers.advance(1);
    expect(delivered()).toEqual([1, 2, 3]);
    add(10);
    await timers.advance(0);
    expect(delivered()).toHaveLength(13);
  });

  it('drains a backlog at uplink.maxSamplesPerSecond, live samples not held back by the cap', async () => {
    const { timers, session, uplink, add, delivered } = setUp({ maxSamplesPerSecond: 1000, batch: { maxSamples: 100, maxDelayMs: 0 } });
    add(20_000); // committed while the link was down: backlog at connect
    session.start = () => {}; // connect later, by hand
    uplink.start();
    session.connect();
    await timers.advance(0);
    const backlogAt = (ms: number) => delivered().filter((s) => s <= 20_000).length;
    await timers.advance(1000);
    const after1s = backlogAt(1000);
    await timers.advance(9000);
    const after10s = backlogAt(10_000);
    // 1,000 a second, give or take one batch of 100 at the edges.
    expect(after1s).toBeGreaterThanOrEqual(900);
    expect(after1s).toBeLessThanOrEqual(1100);
    expect(after10s - after1s).toBeGreaterThanOrEqual(8900);
    expect(after10s - after1s).toBeLessThanOrEqual(9100);
    add(5);
    await timers.advance(0);
    expect(delivered().filter((s) => s > 20_000)).toHaveLength(5);
  });

  it('keeps at most uplink.inflight publishes unacknowledged, a quarter kept for events, and sends more as PUBACKs come', async () => {
    const { timers, session, uplink, add, outbox } = setUp({ inflight: 4, batch: { maxSamples: 10, maxDelayMs: 0 } });
    session.holdAcks = true;
    add(100);
    uplink.start();
    await timers.advance(0);
    const telemetry = () => session.published.filter((p) => p.topic.endsWith('/telemetry')).length;
    // The birth is held as well: it is acknowledged before telemetry starts.
    session.release(1);
    await timers.advance(0);
    expect(telemetry()).toBe(3);
    session.release(2);
    await timers.advance(0);
    expect(telemetry()).toBe(5);
    expect(session.inflight).toBe(3);
    // The window is full of samples, yet an alarm goes at once in the slot kept for events.
    outbox.appendEvent({ kind: 'outbox-recreated', reason: 'deleted' });
    outbox.commit();
    await timers.advance(0);
    expect(session.published.filter((p) => p.topic.endsWith('/events'))).toHaveLength(1);
    expect(session.inflight).toBe(4);
  });

  it('goes again after a reconnect with what was in flight when the link dropped', async () => {
    const { timers, session, uplink, add, delivered } = setUp({ batch: { maxSamples: 10, maxDelayMs: 0 } });
    session.holdAcks = true;
    uplink.start();
    session.release();
    await timers.advance(0);
    add(10);
    await timers.advance(0);
    expect(delivered()).toHaveLength(10);
    session.drop();
    await timers.advance(0);
    session.holdAcks = false;
    session.connect();
    await timers.advance(100);
    expect(delivered().filter((s) => s <= 10)).toHaveLength(20);
  });
});
