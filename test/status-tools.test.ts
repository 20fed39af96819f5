/**
 * The page's tools against a real gateway (its Processor and command guard) and pymodbus as the device: a write
 * through POST /api/tools/write lands in the register and is read back, a refusal says why in words and leaves
 * the register, an acknowledgement and a shelve change the alarm's state, and both are audited with origin
 * "local" and who did it; a register read and a scan on the live bus. The token rule: only in the
 * Authorization header (not ?token=), JSON only, this page's origin only; without status.token the tools are
 * not offered at all.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { pino } from 'pino';
import { configSchema } from '../src/config/schema.js';
import { startGateway, type Gateway } from '../src/gateway.js';
import { ModbusLink } from '../src/sources/modbus/link.js';
import { StatusSurface } from '../src/status/surface.js';
import { needPeers, startPymodbus, tempDir, type PymodbusPeer } from './helpers/peers.js';

const TOKEN = 'pump-house-tools-7';
const skip = needPeers('pymodbus');

async function eventually<T>(fn: () => T | undefined | Promise<T | undefined>, what: string, timeoutMs = 15_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe.skipIf(skip)('the page tools through the gateway guard, against pymodbus', () => {
  let device: PymodbusPeer;
  let gateway: Gateway;
  let status: StatusSurface;
  let open: StatusSurface;
  let url: string;

  const post = (path: string, body: unknown, headers: Record<string, string> = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, base = url) =>
    fetch(`${base}${path}`, { method: 'POST', headers, body: JSON.stringify(body) });
  const postJson = async (path: string, body: unknown) => {
    const res = await post(path, body);
    return { status: res.status, body: (await res.json()) as Record<string, any> };
  };
  async function registers(address: number, count: number): Promise<number[]> {
    const l = new ModbusLink({ transport: 'tcp', host: '127.0.0.1', port: device.port! }, 1000);
    await l.open();
    try {
      return (await l.read(1, 3, address, count)) as number[];
    } finally {
      await l.close();
    }
  }
  const commandEvents = () => gateway.outbox.readEvents(0, 10_000).map((e) => e.event as any).filter((e) => e.kind === 'command');
  const levelAlarm = () => gateway.processor.alarmStates().find((a) => a.point === 'level' && a.alarm === 'high')!;

  beforeAll(async () => {
    // Units 3 and 7 answer too, for the scan.
    device = await startPymodbus({ holding: new Array(20).fill(0), units: [{ unit: 3, holding: [1] }, { unit: 7, holding: [2] }] });
    const dir = tempDir('status-tools');
    const config = configSchema.parse({
      gateway: { id: 'tools-gw', dataDir: join(dir, 'data'), clock: { trust: 'always' } },
      buses: [{ id: 'plc', transport: 'tcp', host: '127.0.0.1', port: device.port, timeoutMs: 500 }],
      devices: [{
        id: 'pump1', bus: 'plc', unit: 1, pollIntervalMs: 200,
        points: [
          { id: 'level', fc: 3, address: 0, type: 'uint16', alarms: [{ type: 'high', limit: 50, latch: true }] },
          { id: 'setpoint', fc: 3, address: 10, type: 'uint16', scale: 0.01, unit: 'bar', write: { min: 1.5, max: 4.5 } },
        ],
      }],
    });
    const logger = pino({ level: 'silent' });
    status = new StatusSurface({ gateway: () => gateway, logger });
    open = new StatusSurface({ gateway: () => gateway, logger });
    gateway = startGateway(config, logger, status.hooks);
    await status.apply({ enabled: true, listen: '127.0.0.1:0', token: TOKEN });
    await open.apply({ enabled: true, listen: '127.0.0.1:0' });
    url = status.url!;
    await eventually(() => gateway.buses[0]!.linkState === 'connected' || undefined, 'the bus connected');
  }, 60_000);

  afterAll(async () => {
    await open?.close();
    await status?.close();
    await gateway?.stop();
    await device?.stop();
  });

  it('describes what the page may offer: the writable points from the configuration and the Modbus buses', async () => {
    const res = await fetch(`${url}/api/tools?token=${TOKEN}`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({
      enabled: true, commands: true, ttlS: 30,
      writable: [{ device: 'pump1', point: 'setpoint', type: 'uint16', unit: 'bar', min: 1.5, max: 4.5 }],
      buses: [{ id: 'plc', transport: 'tcp' }],
    });
    expect((await fetch(`${url}/api/tools`)).status).toBe(401);
  });

  it('refuses a tool without the token in the header, with the token only in the query, not as JSON, from another origin', async () => {
    const body = { device: 'pump1', point: 'setpoint', value: 2 };
    expect((await post('/api/tools/write', body, { 'content-type': 'application/json' })).status).toBe(401);
    expect((await post(`/api/tools/write?token=${TOKEN}`, body, { 'content-type': 'application/json' })).status).toBe(401);
    expect((await post('/api/tools/write', body, { authorization: 'Bearer wrong-token-0', 'content-type': 'application/json' })).status).toBe(401);
    expect((await post('/api/tools/write', body, { authorization: `Bearer ${TOKEN}`, 'content-type': 'text/plain' })).status).toBe(415);
    expect((await post('/api/tools/write', body, { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/x-www-form-urlencoded' })).status).toBe(415);
    expect((await post('/api/tools/write', body, { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json', origin: 'http://evil.example' })).status).toBe(403);
    expect((await fetch(`${url}/api/tools/write`, { method: 'PUT' })).status).toBe(405);
    expect((await fetch(`${url}/api/status`, { method: 'POST' })).status).toBe(405);
    expect(await registers(10, 1)).toEqual([0]);
    expect(commandEvents()).toEqual([]);
  });

  it('writes a point through the guard: it lands, is read back and audited as a local command by the page', async () => {
    const r = await postJson('/api/tools/write', { device: 'pump1', point: 'setpoint', value: 3.2 });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ status: 'done', value: 3.2, readBack: 3.2 });
    expect(await registers(10, 1)).toEqual([320]);
    const audit = commandEvents().filter((e) => e.command.id === r.body.id);
    expect(audit.map((e) => e.phase)).toEqual(['accepted', 'result']);
    expect(audit[0].command).toMatchObject({ kind: 'write', device: 'pump1', point: 'setpoint', value: 3.2, origin: 'local', by: 'status-page' });
    expect(r.body.id).toMatch(/^[0-9a-f-]{36}$/);
    const ttl = audit[0].command.expiresAt - audit[1].result.ts;
    expect(ttl).toBeGreaterThan(25_000);
    expect(ttl).toBeLessThanOrEqual(30_000);
  });

  it('answers a refused write with the reason in words and leaves the register; a typed name is the audit\'s "by"', async () => {
    const high = await postJson('/api/tools/write', { device: 'pump1', point: 'setpoint', value: 9, by: 'Dana (technician)' });
    expect(high.body).toMatchObject({ status: 'rejected', reason: '9 bar is above the maximum 4.5 bar' });
    const ro = await postJson('/api/tools/write', { device: 'pump1', point: 'level', value: 7 });
    expect(ro.body).toMatchObject({ status: 'rejected', reason: expect.stringMatching(/not writable/) });
    const text = await postJson('/api/tools/write', { device: 'pump1', point: 'setpoint', value: { x: 1 } });
    expect(text.status).toBe(400);
    expect(text.body.message).toMatch(/"value" must be a number/);
    // The page cannot pick its own id, expiry or origin.
    const sneaky = await postJson('/api/tools/write', { device: 'pump1', point: 'setpoint', value: 2.5, id: 'mine', expiresAt: Date.now() + 3_000_000, origin: 'mqtt' });
    expect(sneaky.body).toMatchObject({ status: 'done' });
    expect(sneaky.body.id).not.toBe('mine');
    expect(await registers(10, 1)).toEqual([250]);
    const refused = commandEvents().find((e) => e.command.id === high.body.id);
    expect(refused).toMatchObject({ phase: 'result', command: { origin: 'local', by: 'Dana (technician)' }, result: { status: 'rejected' } });
  });

  it('acknowledges and shelves an alarm through the guard, audited', async () => {
    await device.set('holding', 0, [60]);
    await eventually(() => (levelAlarm().state === 'unacknowledged' ? true : undefined), 'the alarm raised');
    const ack = await postJson('/api/tools/alarm', { action: 'ack', device: 'pump1', point: 'level', alarm: 'high', note: 'crew on the way', by: 'Dana' });
    expect(ack.body).toMatchObject({ status: 'done' });
    expect(levelAlarm().state).toBe('acknowledged');
    const again = await postJson('/api/tools/alarm', { action: 'ack', device: 'pump1', point: 'level', alarm: 'high' });
    expect(again.body.status).toBe('rejected');
    expect(again.body.reason).toMatch(/./);
    const shelve = await postJson('/api/tools/alarm', { action: 'shelve', device: 'pump1', point: 'level', alarm: 'high', durationS: 600 });
    expect(shelve.body).toMatchObject({ status: 'done' });
    expect(levelAlarm().shelvedUntil).toBeGreaterThan(Date.now() + 500_000);
    const unshelve = await postJson('/api/tools/alarm', { action: 'unshelve', device: 'pump1', point: 'level', alarm: 'high' });
    expect(unshelve.body).toMatchObject({ status: 'done' });
    expect(levelAlarm().shelvedUntil).toBeUndefined();
    const acked = commandEvents().find((e) => e.command.id === ack.body.id && e.phase === 'result');
    expect(acked.command).toMatchObject({ kind: 'alarm', action: 'ack', origin: 'local', by: 'Dana', note: 'crew on the way' });
    // The journal the page shows names who acknowledged.
    const journal = (await (await fetch(`${url}/api/alarms?token=${TOKEN}`)).json()) as { entries: Array<Record<string, unknown>> };
    expect(journal.entries.some((e) => e.by === 'Dana' && e.note === 'crew on the way')).toBe(true);
    await device.set('holding', 0, [0]);
  });

  it('reads a float in each word order and scans the units pymodbus answers for, on the live bus', async () => {
    await device.set('holding', 4, [0x4148, 0x0000]);
    const read = await postJson('/api/tools/read', { bus: 'plc', unit: 1, fc: 3, address: 4, count: 1, type: 'float32', order: 'ABCD' });
    expect(read.body).toMatchObject({ status: 'done', result: { values: [12.5], registers: [0x4148, 0] } });
    const bad = await postJson('/api/tools/read', { bus: 'plc', unit: 1, fc: 3, address: 0, count: 200, type: 'uint16' });
    expect(bad.status).toBe(400);
    expect(bad.body.message).toMatch(/"count" must be a whole number from 1 to 125/);
    expect((await postJson('/api/tools/read', { bus: 'nope', unit: 1 })).status).toBe(404);
    // 12.5 laid out in each word order by hand (0x41 0x48 0x00 0x00 big-endian), read back in that order.
    const layouts: Record<string, number[]> = { ABCD: [0x4148, 0x0000], CDAB: [0x0000, 0x4148], BADC: [0x4841, 0x0000], DCBA: [0x0000, 0x4841] };
    for (const [i, [order, words]] of Object.entries(layouts).entries()) {
      await device.set('holding', 12 + 2 * i, words);
      const r = await postJson('/api/tools/read', { bus: 'plc', unit: 1, fc: 3, address: 12 + 2 * i, count: 1, type: 'float32', order });
      expect(r.body, order).toMatchObject({ status: 'done', result: { values: [12.5], registers: words } });
    }
    const started = await postJson('/api/tools/scan', { bus: 'plc', from: 1, to: 8, timeoutMs: 100 });
    expect(started.status).toBe(202);
    expect((await postJson('/api/tools/scan', { bus: 'plc', from: 1, to: 4 })).status).toBe(409);
    const done = await eventually(async () => {
      const res = await fetch(`${url}/api/tools/scan?bus=plc`, { headers: { authorization: `Bearer ${TOKEN}` } });
      const job = (await res.json()) as Record<string, any>;
      return job.state === 'running' ? undefined : job;
    }, 'the scan ended');
    expect(done).toMatchObject({ state: 'done', tried: 8, total: 8 });
    expect(done.found.map((f: { unit: number }) => f.unit)).toEqual([1, 3, 7]);
    expect((await fetch(`${url}/api/tools/scan?bus=plc&token=${TOKEN}`)).status).toBe(401);
  });

  it('without status.token offers no tools at all', async () => {
    const base = open.url!;
    expect(await (await fetch(`${base}/api/tools`)).json()).toEqual({ enabled: false, reason: expect.stringMatching(/only when status.token is configured/) });
    for (const path of ['/api/tools/write', '/api/tools/alarm', '/api/tools/read', '/api/tools/scan', '/api/tools/unlock']) {
      const res = await post(path, { device: 'pump1', point: 'setpoint', value: 2 }, { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, base);
      expect(res.status, path).toBe(403);
    }
    expect(await registers(10, 1)).toEqual([250]);
  });
});
