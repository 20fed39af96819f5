/** The status server on a fake gateway: routes, token, /healthz, /metrics as Prometheus text, live events. */
import { request } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { configSchema, type Config } from '../src/config/schema.js';
import type { OutboxStats } from '../src/outbox/types.js';
import type { DeviceHealth, LinkState } from '../src/sources/types.js';
import { startStatusServer, type StatusServer } from '../src/status/server.js';
import { StatusState } from '../src/status/state.js';
import type { StatusGateway } from '../src/status/types.js';
import type { UplinkStats } from '../src/uplink/uplink.js';
import { recordingLogger } from './helpers/gateway.js';

const TOKEN = 'correct-horse-battery';

function fake() {
  const config: Config = configSchema.parse({
    gateway: { id: 'gw-srv' },
    buses: [{ id: 'b1', transport: 'tcp', host: '127.0.0.1', port: 1502 }],
    devices: [{ id: 'pump', bus: 'b1', unit: 1, points: [{ id: 'pressure', fc: 4, address: 0, unit: 'bar' }] }],
    uplink: { url: 'mqtt://127.0.0.1:1883' },
  });
  const link = { state: 'connected' as LinkState };
  const health: DeviceHealth = { device: 'pump', state: 'ok', requests: 42, errors: { timeout: 3, crc: 1 }, lastGoodTs: Date.now(), backoffMs: 0 };
  const outbox: OutboxStats = {
    epoch: 'e', createdAt: 0, mode: 'writer', state: 'ok', samples: 1204, events: 1, bytes: 8192, maxBytes: 1 << 20, oldestTs: Date.now() - 180_000,
    newestTs: Date.now(), minSeq: 1, maxSeq: 1205, lastSeq: 1205, dropped: { maxBytes: 5, maxAge: 0, memoryQueueFull: 0 }, pending: 0,
  };
  const stats: UplinkStats = { published: 100, publishedMessages: 4, acked: 90, inflight: 1, lastPubackAt: Date.now(), lastPubackMs: 42 };
  const gw: StatusGateway = {
    config,
    buses: [{ id: 'b1', get linkState() { return link.state; }, health: () => [{ ...health, errors: { ...health.errors } }] }],
    outbox: { stats: () => ({ ...outbox }) },
    uplink: { stats },
    session: { currentState: 'connected', connectedSince: Date.now() - 60_000, reconnects: 2 },
  };
  return { gw, link, health, outbox, stats };
}

const servers: StatusServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
});

async function start(token?: string, extra: { maxClients?: number } = {}) {
  const f = fake();
  const state = new StatusState({ processMetrics: true });
  state.observe([{ device: 'pump', point: 'pressure', ts: Date.now(), value: 4.25, quality: 'good' }]);
  state.observeAlarm({ state: 'raised', device: 'pump', point: 'pressure', alarm: 'low', type: 'low', severity: 'major', value: 2.1, limit: 2.5, ts: Date.now() });
  state.observePuback(42);
  const server = await startStatusServer({ listen: '127.0.0.1:0', token, state, gateway: () => f.gw, logger: recordingLogger().logger, intervalMs: 100, ...extra });
  servers.push(server);
  return { ...f, state, server };
}

function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Opens /events and resolves with the first `count` snapshots. */
function events(url: string, count: number): Promise<Array<Record<string, any>>> {
  return new Promise((resolve, reject) => {
    const got: Array<Record<string, any>> = [];
    const req = request(url, (res) => {
      if (res.statusCode !== 200) return reject(new Error(`status ${res.statusCode}`));
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        buf += c;
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const frame = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const data = frame.split('\n').find((l) => l.startsWith('data: '));
          if (data) got.push(JSON.parse(data.slice(6)));
          if (got.length === count) {
            req.destroy();
            resolve(got);
          }
        }
      });
    });
    req.on('error', (e) => (got.length >= count ? undefined : reject(e)));
    req.end();
  });
}

/** Checks the text exposition format line by line; returns the metric families by name with their type. */
function parsePrometheus(text: string): Map<string, { type: string; samples: Array<{ name: string; labels: string; value: number }> }> {
  const families = new Map<string, { type: string; samples: Array<{ name: string; labels: string; value: number }> }>();
  const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*",?)*\})? (-?(?:\d+(?:\.\d*)?(?:e[+-]?\d+)?|NaN|\+Inf|-Inf))(?: -?\d+)?$/i;
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const type = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/.exec(line);
    if (type) {
      families.set(type[1]!, { type: type[2]!, samples: [] });
      continue;
    }
    if (/^# HELP [a-zA-Z_:][a-zA-Z0-9_:]* .*$/.test(line)) continue;
    const m = sample.exec(line);
    if (!m) throw new Error(`not Prometheus text: ${JSON.stringify(line)}`);
    const family = families.get(m[1]!) ?? families.get(m[1]!.replace(/_(bucket|sum|count)$/, ''));
    if (!family) throw new Error(`sample without a TYPE line: ${line}`);
    family.samples.push({ name: m[1]!, labels: m[2] ?? '', value: Number(m[3]) });
  }
  return families;
}

describe('status server', () => {
  it('serves the page, its assets and uPlot from the package, with no outside reference', async () => {
    const { server } = await start();
    const page = await get(`${server.url}/`);
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toMatch(/text\/html/);
    expect(page.headers['content-security-policy']).toMatch(/default-src 'self'/);
    expect(page.body).not.toMatch(/https?:\/\//);
    for (const asset of ['/assets/status.js', '/assets/status.css', '/assets/uPlot.iife.min.js', '/assets/uPlot.min.css']) {
      expect(page.body).toContain(asset);
      const r = await get(`${server.url}${asset}`);
      expect(r.status, asset).toBe(200);
      expect(r.body.length).toBeGreaterThan(500);
    }
    expect((await get(`${server.url}/nope`)).status).toBe(404);
  });

  it('answers /api/status with the snapshot and /api/history with the last hour', async () => {
    const { server } = await start();
    const s = JSON.parse((await get(`${server.url}/api/status`)).body);
    expect(s.gateway.id).toBe('gw-srv');
    expect(s.alarms.active[0]).toMatchObject({ alarm: 'low', severity: 'major', unit: 'bar' });
    expect(s.outbox).toMatchObject({ samples: 1204, droppedTotal: 5 });
    expect(s.uplink).toMatchObject({ state: 'connected', reconnects: 2, lastPubackMs: 42 });
    expect(s.buses[0].devices[0]).toMatchObject({ id: 'pump', requests: 42, errorCount: 4, points: [{ id: 'pressure', value: 4.25, unit: 'bar', quality: 'good' }] });
    const h = JSON.parse((await get(`${server.url}/api/history?device=pump&point=pressure`)).body);
    expect(h).toMatchObject({ device: 'pump', point: 'pressure', bucketMs: 20_000, last: [4.25], min: [4.25], max: [4.25] });
    const all = JSON.parse((await get(`${server.url}/api/history`)).body);
    expect(all.points).toEqual([{ device: 'pump', point: 'pressure', t: h.t, last: [4.25] }]);
    expect((await get(`${server.url}/api/history?device=pump&point=nope`)).status).toBe(404);
  });

  it('is read-only and refuses requests addressed to another host name without a token', async () => {
    const { server } = await start();
    const post = await new Promise<number>((resolve, reject) => {
      const req = request(`${server.url}/api/status`, { method: 'POST' }, (res) => resolve(res.statusCode!));
      req.on('error', reject);
      req.end();
    });
    expect(post).toBe(405);
    const rebound = await get(`${server.url}/api/status`, { host: 'attacker.example:8080' });
    expect(rebound.status).toBe(403);
    expect((await get(`${server.url}/api/status`, { host: 'localhost:8080' })).status).toBe(200);
  });

  it('with a token: 401 without it, the page asks for it, Bearer and ?token= work, /healthz and assets stay open', async () => {
    const { server } = await start(TOKEN);
    const api = await get(`${server.url}/api/status`);
    expect(api.status).toBe(401);
    expect(api.headers['www-authenticate']).toMatch(/^Bearer/);
    expect((await get(`${server.url}/api/status`, { authorization: 'Bearer wrong-token-here' })).status).toBe(401);
    expect((await get(`${server.url}/api/status?token=${TOKEN}x`)).status).toBe(401);
    const page = await get(`${server.url}/`);
    expect(page.status).toBe(401);
    expect(page.body).toContain('name="token"');
    for (const path of ['/metrics', '/events', '/api/history']) expect((await get(`${server.url}${path}`)).status, path).toBe(401);
    expect((await get(`${server.url}/api/status`, { authorization: `Bearer ${TOKEN}` })).status).toBe(200);
    expect((await get(`${server.url}/metrics?token=${TOKEN}`)).status).toBe(200);
    expect((await get(`${server.url}/?token=${TOKEN}`)).body).toContain('/assets/status.js');
    expect((await get(`${server.url}/healthz`)).status).toBe(200);
    expect((await get(`${server.url}/assets/status.js`)).status).toBe(200);
    // With a token the host name is the client's business (a gateway reached by its IP or a DNS name).
    expect((await get(`${server.url}/healthz`, { host: 'gw01.site.example' })).status).toBe(200);
  });

  it('refuses to listen off loopback without a token', async () => {
    const state = new StatusState({ processMetrics: false });
    await expect(startStatusServer({ listen: '0.0.0.0:0', state, gateway: fake().gw, logger: recordingLogger().logger })).rejects.toThrow(/token is required/);
    await expect(startStatusServer({ listen: 'bogus', state, gateway: fake().gw, logger: recordingLogger().logger })).rejects.toThrow(/HOST:PORT/);
  });

  it('/healthz: 200 while polling, storing and sending; 503 with the reasons otherwise', async () => {
    const { server, link, outbox } = await start();
    const ok = await get(`${server.url}/healthz`);
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.body)).toEqual({ status: 'ok', failing: [], warnings: [] });
    link.state = 'disconnected';
    outbox.state = 'disk-full';
    const bad = await get(`${server.url}/healthz`);
    expect(bad.status).toBe(503);
    expect(JSON.parse(bad.body).failing).toEqual(['no bus is connected (b1: disconnected)', 'outbox cannot store samples: disk-full']);
  });

  it('/metrics is Prometheus text with the named metrics', async () => {
    const { server } = await start();
    const r = await get(`${server.url}/metrics`);
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    const m = parsePrometheus(r.body);
    const family = (name: string) => m.get(name) ?? m.get(name.replace(/_(bucket|sum|count)$/, ''));
    const value = (name: string, labels = '') => family(name)?.samples.find((s) => s.name === name && s.labels.includes(labels))?.value;
    expect(m.get('fieldgate_samples_acquired_total')?.type).toBe('counter');
    expect(value('fieldgate_samples_acquired_total', 'device="pump",quality="good"')).toBe(1);
    expect(value('fieldgate_device_requests_total', 'device="pump"')).toBe(42);
    expect(value('fieldgate_device_errors_total', 'kind="timeout"')).toBe(3);
    expect(value('fieldgate_device_errors_total', 'kind="crc"')).toBe(1);
    expect(value('fieldgate_device_up')).toBe(1);
    expect(value('fieldgate_bus_connected')).toBe(1);
    expect(value('fieldgate_outbox_samples')).toBe(1204);
    expect(value('fieldgate_outbox_bytes')).toBe(8192);
    expect(value('fieldgate_outbox_oldest_age_seconds')).toBeGreaterThanOrEqual(180);
    expect(value('fieldgate_outbox_dropped_samples_total', 'reason="maxBytes"')).toBe(5);
    expect(value('fieldgate_uplink_published_samples_total')).toBe(100);
    expect(value('fieldgate_uplink_acked_samples_total')).toBe(90);
    expect(value('fieldgate_uplink_connected')).toBe(1);
    expect(value('fieldgate_uplink_reconnects_total')).toBe(2);
    expect(m.get('fieldgate_uplink_puback_seconds')?.type).toBe('histogram');
    expect(value('fieldgate_uplink_puback_seconds_count')).toBe(1);
    expect(value('fieldgate_uplink_puback_seconds_bucket', 'le="0.05"')).toBe(1);
    expect(value('fieldgate_alarms_raised_total', 'severity="major"')).toBe(1);
    expect(value('fieldgate_alarms_active', 'severity="major"')).toBe(1);
    expect(value('fieldgate_alarms_active', 'severity="critical"')).toBe(0);
    expect(value('fieldgate_health_failing')).toBe(0);
    expect(m.has('process_resident_memory_bytes')).toBe(true);
  });

  it('/events sends a snapshot at once, then on change, and pushes a new alarm without waiting', async () => {
    const { server, state, outbox } = await start();
    const first = events(`${server.url}/events`, 3);
    await new Promise((r) => setTimeout(r, 50));
    outbox.samples = 7; // a change: goes out with the next tick
    state.observeAlarm({ state: 'raised', device: 'pump', point: 'pressure', alarm: 'burst', type: 'rateOfChange', severity: 'critical', value: -0.5, limit: -0.3, ts: Date.now() });
    const got = await first;
    expect(got[0]!.alarms.active).toHaveLength(1);
    expect(got.some((s) => s.alarms.active[0]?.alarm === 'burst')).toBe(true);
    expect(got.some((s) => s.outbox.samples === 7)).toBe(true);
  });

  it('bounds the number of live pages', async () => {
    const { server } = await start(undefined, { maxClients: 1 });
    const held = new Promise<void>((resolve) => {
      const req = request(`${server.url}/events`, () => resolve());
      req.on('error', () => {});
      req.end();
    });
    await held;
    const second = await get(`${server.url}/events`);
    expect(second.status).toBe(503);
    expect(second.headers['retry-after']).toBe('10');
  });
});
