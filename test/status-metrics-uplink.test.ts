/** The uplink's month of bytes, its broker and its PUBACK times on /metrics and in the status snapshot, from the Uplink's stats. */
import { describe, expect, it } from 'vitest';
import { configSchema } from '../src/config/schema.js';
import type { OutboxStats } from '../src/outbox/types.js';
import { StatusState } from '../src/status/state.js';
import type { StatusGateway } from '../src/status/types.js';
import type { UplinkStats } from '../src/uplink/uplink.js';

function gateway(stats: UplinkStats, urls?: string[]): StatusGateway {
  const config = configSchema.parse({
    gateway: { id: 'gw-bytes' },
    buses: [{ id: 'b1', transport: 'tcp', host: '127.0.0.1', port: 1502 }],
    devices: [{ id: 'pump', bus: 'b1', unit: 1, points: [{ id: 'pressure', fc: 4, address: 0 }] }],
    uplink: urls ? { urls } : { url: 'mqtts://broker-a.example.net:8883' },
  });
  const outbox: OutboxStats = {
    epoch: 'e', createdAt: 0, mode: 'writer', state: 'ok', samples: 0, events: 0, bytes: 8192, maxBytes: null, oldestTs: null,
    newestTs: null, minSeq: null, maxSeq: null, lastSeq: 0, dropped: { maxBytes: 0, maxAge: 0, memoryQueueFull: 0 }, pending: 0,
  } as unknown as OutboxStats;
  return {
    config,
    buses: [],
    outbox: { stats: () => outbox },
    uplink: { stats },
    session: { currentState: 'connected', connectedSince: Date.now() - 60_000, reconnects: 0 },
  };
}

const month = {
  month: '2026-06',
  sent: { telemetry: 1_000_000, backlog: 200_000, status: 3_000, events: 4_000, commands: 500, control: 90_000 },
  received: { telemetry: 40_000, backlog: 8_000, status: 40, events: 160, commands: 700, control: 60_000 },
  total: 1_406_400,
  projected: 4_300_000,
  monthlyBytes: 2_000_000,
  stretch: 5,
};

/** name{labels} -> value of the samples in a Prometheus text. */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^([a-z_:][a-z0-9_:]*)(\{[^}]*\})? (\S+)$/i.exec(line);
    if (m) out.set(`${m[1]}${m[2] ?? ''}`, Number(m[3]));
  }
  return out;
}

describe('uplink bytes and broker on /metrics and the status page', () => {
  it('exports the month by direction and cause, its projection against the budget, and the broker in use', async () => {
    const stats: UplinkStats = { published: 10, publishedMessages: 2, acked: 10, inflight: 0, broker: 'mqtts://broker-b.example.net:8883', brokerIndex: 1, brokerSwitches: 3, bytes: month };
    const gw = gateway(stats, ['mqtts://broker-a.example.net:8883', 'mqtts://broker-b.example.net:8883']);
    const state = new StatusState({ processMetrics: false });
    const m = samples(await state.metricsText(gw));
    expect(m.get('fieldgate_uplink_bytes_total{direction="sent",cause="telemetry"}')).toBe(1_000_000);
    expect(m.get('fieldgate_uplink_bytes_total{direction="sent",cause="control"}')).toBe(90_000);
    expect(m.get('fieldgate_uplink_bytes_total{direction="received",cause="commands"}')).toBe(700);
    expect(m.get('fieldgate_uplink_bytes_total{direction="received",cause="backlog"}')).toBe(8_000);
    expect(m.get('fieldgate_uplink_month_bytes')).toBe(1_406_400);
    expect(m.get('fieldgate_uplink_month_projected_bytes')).toBe(4_300_000);
    expect(m.get('fieldgate_uplink_budget_bytes')).toBe(2_000_000);
    expect(m.get('fieldgate_uplink_budget_stretch')).toBe(5);
    expect(m.get('fieldgate_uplink_broker_info{url="mqtts://broker-b.example.net:8883",index="1"}')).toBe(1);
    expect(m.get('fieldgate_uplink_broker_switches_total')).toBe(3);

    const u = state.snapshot(gw).uplink;
    expect(u.broker).toEqual({ url: 'mqtts://broker-b.example.net:8883', index: 1, count: 2, switches: 3 });
    expect(u.bytes).toEqual({ ...month });
  });

  it('shows 0 for a budget not set and for bytes not yet reported, and no broker before the first dial', async () => {
    const { monthlyBytes: _m, ...noBudget } = month;
    const state = new StatusState({ processMetrics: false });
    const gw = gateway({ published: 0, publishedMessages: 0, acked: 0, inflight: 0, broker: 'mqtts://broker-a.example.net:8883', brokerIndex: 0, brokerSwitches: 0, bytes: { ...noBudget, stretch: 1 } });
    const m = samples(await state.metricsText(gw));
    expect(m.get('fieldgate_uplink_budget_bytes')).toBe(0);
    expect(m.get('fieldgate_uplink_month_bytes')).toBe(1_406_400);
    expect(m.get('fieldgate_uplink_broker_info{url="mqtts://broker-a.example.net:8883",index="0"}')).toBe(1);
    expect(state.snapshot(gw).uplink.bytes?.monthlyBytes).toBeNull();

    const bare = gateway({ published: 0, publishedMessages: 0, acked: 0, inflight: 0 });
    const text = await new StatusState({ processMetrics: false }).metricsText(bare);
    expect(samples(text).get('fieldgate_uplink_month_bytes')).toBe(0);
    expect([...samples(text).keys()].some((k) => k.startsWith('fieldgate_uplink_broker_info{'))).toBe(false);
    expect(new StatusState({ processMetrics: false }).snapshot(bare).uplink).not.toHaveProperty('bytes');
  });

  it('counts every PUBACK from the start, before the first scrape, in cumulative buckets with their sum', async () => {
    const state = new StatusState({ processMetrics: false });
    for (const ms of [5, 10, 40, 40, 700, 45_000]) state.observePuback(ms);
    state.observePuback(Number.NaN);
    state.observePuback(-1);
    const gw = gateway({ published: 0, publishedMessages: 0, acked: 0, inflight: 0 });
    const m = samples(await state.metricsText(gw));
    const bucket = (le: string) => m.get(`fieldgate_uplink_puback_seconds_bucket{le="${le}"}`);
    expect([bucket('0.01'), bucket('0.025'), bucket('0.05'), bucket('0.5'), bucket('1'), bucket('30'), bucket('+Inf')]).toEqual([2, 2, 4, 4, 5, 5, 6]);
    expect(m.get('fieldgate_uplink_puback_seconds_count')).toBe(6);
    expect(m.get('fieldgate_uplink_puback_seconds_sum')).toBeCloseTo(45.795, 9);
    state.observePuback(20);
    const again = samples(await state.metricsText(gw));
    expect(again.get('fieldgate_uplink_puback_seconds_count')).toBe(7);
    expect(again.get('fieldgate_uplink_puback_seconds_bucket{le="0.025"}')).toBe(3);
  });
});
