/**
 * The data budget: packet sizes as MQTT makes them, causes by topic, the month's projection and the stretch;
 * the month's bytes kept in the outbox state across a restart and rolled over at the month's end; and on a
 * manual clock, an uplink over budget that stretches its telemetry batches and slows its backlog, never its
 * events, says so in a budget event, and comes back at the next month.
 */
import mqttPacket from 'mqtt-packet';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { configSchema, uplinkSchema } from '../src/config/schema.js';
import { Outbox } from '../src/outbox/index.js';
import { causeOfTopic, DataMeter, MonthlyBytes, monthOf, projectMonth, publishBytes, stretchFor, zero, type ByCause } from '../src/uplink/budget.js';
import { decodeTelemetry } from '../src/uplink/payload.js';
import { Uplink, BUDGET_CHECK_MS } from '../src/uplink/uplink.js';
import { recordingLogger } from './helpers/gateway.js';
import { ManualTimers } from './helpers/manual-timers.js';
import { tempDir } from './helpers/ports.js';
import { RecordingSession } from './helpers/recording-session.js';

describe('budget arithmetic', () => {
  it('a PUBLISH is as long as mqtt-packet makes it, 3.1.1 and 5, with and without properties', () => {
    for (const [topic, size, qos, v5, contentType] of [
      ['fieldgate/village-water/telemetry', 10, 1, false, undefined],
      ['fieldgate/village-water/telemetry', 3400, 1, true, 'application/vnd.fieldgate.v1+deflate'],
      ['fieldgate/g/status', 200_000, 1, true, undefined],
      ['fieldgate/g/events', 120, 0, false, undefined],
    ] as const) {
      const packet = mqttPacket.generate({
        cmd: 'publish', topic, payload: Buffer.alloc(size), qos, messageId: qos ? 1 : undefined, retain: false, dup: false,
        ...(v5 ? { properties: contentType ? { contentType } : {} } : {}),
      } as mqttPacket.IPublishPacket, { protocolVersion: v5 ? 5 : 4 });
      expect(publishBytes(topic, size, qos, v5, contentType ? 3 + contentType.length : 0)).toBe(packet.length);
    }
  });

  it('tells the cause by the topic', () => {
    expect(['fieldgate/g/telemetry', 'fieldgate/g/status', 'fieldgate/g/events', 'fieldgate/g/alarms', 'fieldgate/g/cmd/result', 'fieldgate/g/cmd/write', 'spBv1.0/grp/DDATA/n/d', 'spBv1.0/grp/NBIRTH/n', 'spBv1.0/grp/DCMD/n/d', 'fieldgate/fence'].map(causeOfTopic))
      .toEqual(['telemetry', 'status', 'events', 'events', 'commands', 'commands', 'telemetry', 'status', 'commands', 'control']);
  });

  it('control is what the socket carried beyond the counted packets', () => {
    const m = new DataMeter();
    m.publish('telemetry', 1000);
    m.receive('telemetry', 4);
    m.wire(1300, 50);
    const d = m.take();
    expect(d.sent).toMatchObject({ telemetry: 1000, control: 300 });
    expect(d.received).toMatchObject({ telemetry: 4, control: 46 });
    expect(m.take().sent.control).toBe(0);
  });

  it('projects the month from an hour at least, and stretches up to 60 times', () => {
    const mid = Date.UTC(2026, 11, 16, 12); // 15.5 of 31 days
    expect(projectMonth(100, mid)).toBeCloseTo(200, 0);
    // Five minutes into a month: the rate is taken over an hour.
    expect(projectMonth(1000, Date.UTC(2026, 11, 1, 0, 5))).toBeCloseTo(1000 + 1000 * (31 * 24 - 1 / 12), -1);
    expect([stretchFor(90, 100), stretchFor(100, 100), stretchFor(150, 100), stretchFor(1e9, 100)]).toEqual([1, 1, 3, 60]);
    expect(monthOf(Date.UTC(2026, 11, 31, 23, 59))).toBe('2026-12');
  });

  it('uplink.budget.monthlyBytes takes sizes like buffer.maxBytes', () => {
    const parse = (budget: unknown) => configSchema.parse({ gateway: { id: 'g' }, uplink: { url: 'mqtt://a', budget } }).uplink!.budget;
    expect(parse({ monthlyBytes: '500MB' })).toEqual({ monthlyBytes: 500e6 });
    expect(parse({ monthlyBytes: '1 GiB' })).toEqual({ monthlyBytes: 1024 ** 3 });
    expect(() => parse({ monthlyBytes: 'lots' })).toThrow(/not a size/);
    expect(() => parse({ monthlyBytes: '10kB' })).toThrow(/at least 1 MiB/);
  });
});

const logger = pino({ level: 'silent' });
const open: Array<{ uplink?: Uplink; outbox: Outbox }> = [];
afterEach(async () => {
  for (const { uplink, outbox } of open.splice(0)) {
    await uplink?.stop();
    outbox.close();
  }
});

describe('the month in the outbox state', () => {
  it('survives a restart, and a new month starts from zero', () => {
    const dir = tempDir('budget-state');
    let outbox = Outbox.open({ dir, logger });
    let now = Date.UTC(2026, 11, 20);
    const keeper = (o: Outbox) => new MonthlyBytes({ now: () => now, read: (k) => o.readState(k).get(k), save: (key, value) => o.saveState({ key, value }), monthlyBytes: 500e6 });
    const delta = (telemetry: number): { sent: ByCause; received: ByCause } => ({ sent: { ...zero(), telemetry }, received: { ...zero(), telemetry: 4 } });
    let k = keeper(outbox);
    k.add(delta(1000));
    k.save();
    outbox.close();
    outbox = Outbox.open({ dir, logger });
    open.push({ outbox });
    k = keeper(outbox);
    expect(k.month).toMatchObject({ month: '2026-12', sent: { telemetry: 1000 }, received: { telemetry: 4 } });
    k.add(delta(500));
    expect(k.state()).toMatchObject({ month: '2026-12', usedBytes: 1508, stretch: 1, monthlyBytes: 500e6 });
    k.save();
    now = Date.UTC(2027, 0, 1, 0, 1);
    k.add(delta(10));
    expect(k.state()).toMatchObject({ month: '2027-01', usedBytes: 14 });
    k.save();
    expect(JSON.parse(outbox.readState('budget/').get('budget/2026-12')!).sent.telemetry).toBe(1500);
  });
});

/** A recording session whose byte counts the test sets, as a link's would be. */
class MeteredSession extends RecordingSession {
  next: { sent: ByCause; received: ByCause } = { sent: zero(), received: zero() };
  takeBytes(): { sent: ByCause; received: ByCause } {
    const d = this.next;
    this.next = { sent: zero(), received: zero() };
    return d;
  }
}

describe('an uplink over budget, on a manual clock', () => {
  it('stretches live batches and the backlog drain, never events, says so, and comes back at the next month', async () => {
    // 15 days into June.
    const timers = new ManualTimers(Date.UTC(2026, 5, 16));
    const dir = tempDir('budget-uplink');
    const outbox = Outbox.open({ dir, logger, commitIntervalMs: 3_600_000 });
    const series = outbox.seriesId('tank', 'level');
    const session = new MeteredSession();
    const log = recordingLogger();
    const uplink = new Uplink({
      session, outbox, gatewayId: 'g', logger: log.logger, timers,
      config: uplinkSchema.parse({ url: 'mqtt://127.0.0.1:1', batch: { maxSamples: 1000, maxDelayMs: 1000 }, budget: { monthlyBytes: '100MB' } }),
      birth: () => ({ version: '0', configHash: '0', epoch: outbox.epoch, points: [{ index: series, device: 'tank', point: 'level' }] }),
    });
    open.push({ uplink, outbox });
    let n = 0;
    const add = (count: number) => {
      outbox.append(Array.from({ length: count }, () => ({ device: 'tank', point: 'level', ts: timers.now(), value: n++, quality: 'good' as const })));
      outbox.commit();
    };
    const telemetry = () => session.published.filter((p) => p.topic.endsWith('/telemetry'));
    const events = () => session.published.filter((p) => p.topic.endsWith('/events')).map((p) => JSON.parse(p.payload) as Record<string, unknown>);

    uplink.start();
    await timers.advance(0);
    add(5);
    await timers.advance(1000);
    expect(telemetry()).toHaveLength(1);
    expect(uplink.stats.bytes).toMatchObject({ month: '2026-06', stretch: 1, monthlyBytes: 100e6 });

    // 60 MB in the first half of the month: 120 MB projected, over 100 MB.
    session.next = { sent: { ...zero(), telemetry: 59e6, control: 0.5e6 }, received: { ...zero(), control: 0.5e6 } };
    await timers.advance(BUDGET_CHECK_MS - 1000);
    expect(uplink.stats.bytes).toMatchObject({ total: 60e6, stretch: 3 });
    expect(uplink.stats.bytes!.projected).toBeGreaterThan(100e6);
    expect(events().find((e) => e.event === 'budget')).toMatchObject({ state: 'throttled', month: '2026-06', stretch: 3, monthlyBytes: 100e6, usedBytes: 60e6 });
    expect(log.warnings(/uplink budget/)[0]).toMatch(/over uplink\.budget\.monthlyBytes 100\.0 MB; telemetry batches wait 3 times longer/);

    // A live batch now waits 3 s, not 1 s; an event does not wait at all.
    add(5);
    outbox.appendEvent({ kind: 'outbox-recreated', reason: 'corrupt' });
    outbox.commit();
    await timers.advance(0);
    expect(events().some((e) => e.event === 'outbox-recreated')).toBe(true);
    await timers.advance(2900);
    expect(telemetry()).toHaveLength(1);
    await timers.advance(100);
    expect(telemetry()).toHaveLength(2);

    // The backlog after a reconnect drains at 100/3 samples a second, not at once.
    session.drop();
    add(330);
    await timers.advance(0);
    session.connect();
    await timers.advance(0);
    const backlog = () => telemetry().slice(2).flatMap((p) => decodeTelemetry(p.payload)).length;
    await timers.advance(3000);
    expect(backlog()).toBeLessThanOrEqual(100 + 33);
    await timers.advance(7000);
    expect(backlog()).toBe(330);

    // July: a new month, within budget again.
    await timers.advance(Date.UTC(2026, 6, 1, 0, 0, 30) - timers.now());
    await timers.advance(BUDGET_CHECK_MS);
    expect(uplink.stats.bytes).toMatchObject({ month: '2026-07', stretch: 1 });
    expect(events().filter((e) => e.event === 'budget').map((e) => e.state)).toEqual(['throttled', 'within']);
    // June is kept in the outbox state.
    expect(JSON.parse(outbox.readState('budget/').get('budget/2026-06')!).sent.telemetry).toBe(59e6);
  });
});
