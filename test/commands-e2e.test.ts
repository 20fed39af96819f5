/**
 * Commands end to end, as an operator would send them: the gateway as a real process, Mosquitto as the
 * broker, pymodbus as the device. Each refusal leaves the register as it was; a valid write lands with the
 * right bytes and is read back; a duplicate runs once; a retained command never runs, also after a restart;
 * the technician's CLI goes through the same guard; latch, ack and shelve of an alarm; the audit events
 * arrive in order with nothing lost across a SIGKILL.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import mqtt, { type MqttClient } from 'mqtt';
import { Collector, runGateway, writeConfig, type GatewayProcess } from './helpers/gw-process.js';
import { fieldgate } from './helpers/cli.js';
import { needPeers, startMosquitto, startPymodbus, tempDir, type MosquittoPeer, type PymodbusPeer } from './helpers/peers.js';
import { ModbusLink } from '../src/sources/modbus/link.js';

const skip = needPeers('mosquitto', 'pymodbus');
const PREFIX = 'water';
const GW = 'cmd-gw';
const T = `${PREFIX}/${GW}`;

describe.skipIf(skip)('commands against Mosquitto and pymodbus', () => {
  let broker: MosquittoPeer;
  let device: PymodbusPeer;
  let gw: GatewayProcess;
  let file: string;
  let collector: Collector;
  let operator: MqttClient;
  const results = new Map<string, Record<string, unknown>>();
  const link = () => new ModbusLink({ transport: 'tcp', host: '127.0.0.1', port: device.port! }, 1000);

  async function registers(address: number, count: number): Promise<number[]> {
    const l = link();
    await l.open();
    try {
      return (await l.read(1, 3, address, count)) as number[];
    } finally {
      await l.close();
    }
  }

  async function coil(address: number): Promise<boolean> {
    const l = link();
    await l.open();
    try {
      return ((await l.read(1, 1, address, 1)) as boolean[])[0]!;
    } finally {
      await l.close();
    }
  }

  async function send(kind: 'write' | 'alarm', c: Record<string, unknown>, retain = false): Promise<Record<string, unknown>> {
    await operator.publishAsync(`${T}/cmd/${kind}`, JSON.stringify(c), { qos: 1, retain });
    await collector.until(() => results.has(c.id as string), 15_000, `result of ${c.id as string}`);
    return results.get(c.id as string)!;
  }

  const commandEvents = () => collector.events.filter((e) => e.msg.event === 'command').map((e) => e.msg);
  const alarmEvents = () => collector.events.filter((e) => e.msg.event === 'alarm').map((e) => e.msg);

  beforeAll(async () => {
    broker = await startMosquitto();
    device = await startPymodbus({ holding: new Array(20).fill(0), coils: [false, false, false, false] });
    const dir = tempDir('commands-e2e');
    file = writeConfig(dir, {
      gateway: { id: GW, dataDir: `${dir}/data`, clock: { trust: 'always' } },
      buses: [{ id: 'plc', transport: 'tcp', host: '127.0.0.1', port: device.port, timeoutMs: 500 }],
      devices: [{
        id: 'pump1', bus: 'plc', unit: 1, pollIntervalMs: 200,
        points: [
          { id: 'level', fc: 3, address: 0, type: 'uint16', alarms: [{ type: 'high', limit: 50, latch: true }] },
          { id: 'pump_enable', fc: 1, address: 0, write: true },
          { id: 'setpoint', fc: 3, address: 10, type: 'uint16', scale: 0.01, unit: 'bar', write: { min: 1.5, max: 4.5 } },
          { id: 'flow_sp', fc: 3, address: 12, type: 'float32', order: 'CDAB', write: true },
        ],
      }],
      uplink: { url: broker.url, topicPrefix: PREFIX, batch: { maxDelayMs: 0 } },
    });
    collector = new Collector(broker.url, {}, PREFIX);
    operator = mqtt.connect(broker.url, { clientId: 'operator', reconnectPeriod: 300, protocolVersion: 5 });
    operator.on('message', (topic, payload) => {
      if (topic === `${T}/cmd/result`) {
        const r = JSON.parse(payload.toString()) as Record<string, unknown>;
        results.set(r.id as string, r);
      }
    });
    await new Promise<void>((resolve) => operator.on('connect', () => operator.subscribe(`${T}/cmd/result`, { qos: 1 }, () => resolve())));
    gw = runGateway(file);
    await gw.running();
    await collector.until(() => collector.statuses.some((s) => s.state === 'online'), 20_000, 'birth');
  }, 60_000);

  afterAll(async () => {
    if (process.env.FIELDGATE_TEST_DUMP) (await import('node:fs')).writeFileSync(process.env.FIELDGATE_TEST_DUMP, gw?.log() ?? '');
    await gw?.stop();
    await operator?.endAsync();
    await collector?.close();
    await device?.stop();
    await broker?.stop();
  });

  it('writes a scaled setpoint, a CDAB float and a coil with the right bytes, read back', async () => {
    expect(await send('write', { id: 'w1', device: 'pump1', point: 'setpoint', value: 3.2, ttlS: 30, by: 'control-room' })).toMatchObject({ status: 'done', value: 3.2, readBack: 3.2 });
    expect(await registers(10, 1)).toEqual([320]);
    expect(await send('write', { id: 'w2', device: 'pump1', point: 'flow_sp', value: 12.5, ttlS: 30 })).toMatchObject({ status: 'done', readBack: 12.5 });
    const b = Buffer.alloc(4);
    b.writeFloatBE(12.5);
    expect(await registers(12, 2)).toEqual([b.readUInt16BE(2), b.readUInt16BE(0)]);
    expect(await send('write', { id: 'w3', device: 'pump1', point: 'pump_enable', value: true, ttlS: 30 })).toMatchObject({ status: 'done', readBack: true });
    expect(await coil(0)).toBe(true);
  });

  it('refuses each bad command and leaves the registers as they were', async () => {
    const cases: Array<[Record<string, unknown>, string, RegExp]> = [
      [{ id: 'r1', device: 'pump1', point: 'setpoint', value: 9, ttlS: 30 }, 'rejected', /above the maximum 4.5 bar/],
      [{ id: 'r2', device: 'pump1', point: 'setpoint', value: 3.205, ttlS: 30 }, 'rejected', /off-step/],
      [{ id: 'r3', device: 'pump1', point: 'setpoint', value: '4', ttlS: 30 }, 'rejected', /takes a finite number/],
      [{ id: 'r4', device: 'pump1', point: 'level', value: 7, ttlS: 30 }, 'rejected', /not writable/],
      [{ id: 'r5', device: 'pump9', point: 'setpoint', value: 2, ttlS: 30 }, 'rejected', /no device "pump9"/],
      [{ id: 'r6', device: 'pump1', point: 'setpoint', value: 2 }, 'rejected', /no expiry/],
      [{ id: 'r7', device: 'pump1', point: 'setpoint', value: 2, expiresAt: Date.now() - 60_000 }, 'expired', /expired/],
      [{ id: 'w1', device: 'pump1', point: 'setpoint', value: 2, ttlS: 30 }, 'done', /./],
    ];
    for (const [c, status, reason] of cases) {
      results.delete(c.id as string);
      const r = await send('write', c);
      expect(r.status, JSON.stringify(r)).toBe(status);
      if (status !== 'done') expect(r.reason).toMatch(reason);
    }
    // w1 again with another value was a duplicate: answered with its first result, not run.
    expect(results.get('w1')).toMatchObject({ value: 3.2 });
    expect(await registers(10, 1)).toEqual([320]);
  });

  it('goes through the same guard from the technician CLI', async () => {
    const ok = await fieldgate(['command', '-c', file, '--device', 'pump1', '--point', 'setpoint', '--value', '2.5', '--id', 'local-1']);
    expect(ok.stdout).toMatch(/^done: value 2.5, read back 2.5 \(id local-1\)/);
    expect(ok.code).toBe(0);
    expect(await registers(10, 1)).toEqual([250]);
    const no = await fieldgate(['command', '-c', file, '--device', 'pump1', '--point', 'setpoint', '--value', '5']);
    expect(no.code).toBe(1);
    expect(no.stdout).toMatch(/^rejected: 5 bar is above the maximum/);
    expect(await registers(10, 1)).toEqual([250]);
  });

  it('latches an alarm until acknowledged, shelves and unshelves it', async () => {
    await device.set('holding', 0, [60]);
    await collector.until(() => alarmEvents().some((a) => a.state === 'raised'), 10_000, 'raise');
    await device.set('holding', 0, [10]);
    await collector.until(() => alarmEvents().some((a) => a.state === 'returned'), 10_000, 'returned');
    // Latched: still active and unacknowledged though the level is back.
    const list = await fieldgate(['alarms', 'list', '-c', file, '--json']);
    expect(JSON.parse(list.stdout)).toEqual([expect.objectContaining({ device: 'pump1', point: 'level', alarm: 'high', state: 'unacknowledged', condition: false, latch: true })]);
    expect(await send('alarm', { id: 'a1', action: 'ack', device: 'pump1', point: 'level', alarm: 'high', by: 'shift-lead', note: 'seen' })).toMatchObject({ status: 'done' });
    await collector.until(() => alarmEvents().some((a) => a.state === 'cleared'), 10_000, 'clear at ack');
    expect(await send('alarm', { id: 'a2', action: 'ack', device: 'pump1', point: 'level', alarm: 'high' })).toMatchObject({ status: 'rejected' });
    const shelve = await fieldgate(['alarms', 'shelve', '-c', file, '--device', 'pump1', '--point', 'level', '--alarm', 'high', '--duration', '600']);
    expect(shelve.code, shelve.stderr + shelve.stdout).toBe(0);
    await collector.until(() => alarmEvents().some((a) => a.state === 'shelved'), 10_000, 'shelved');
    await device.set('holding', 0, [70]);
    await new Promise((r) => setTimeout(r, 1000));
    expect(alarmEvents().filter((a) => a.state === 'raised')).toHaveLength(1);
    expect(await send('alarm', { id: 'a3', action: 'unshelve', device: 'pump1', point: 'level', alarm: 'high' })).toMatchObject({ status: 'done' });
    await collector.until(() => alarmEvents().filter((a) => a.state === 'raised').length === 2, 10_000, 'raise after unshelve');
    await device.set('holding', 0, [0]);
  });

  it('never runs a retained command, also when it is still there at a restart', async () => {
    await gw.stop();
    await operator.publishAsync(`${T}/cmd/write`, JSON.stringify({ id: 'ret-1', device: 'pump1', point: 'setpoint', value: 4, ttlS: 600 }), { qos: 1, retain: true });
    gw = runGateway(file);
    await gw.running();
    await collector.until(() => results.has('ret-1'), 20_000, 'answer to the retained command');
    expect(results.get('ret-1')).toMatchObject({ status: 'rejected', reason: expect.stringMatching(/retained/) });
    expect(await registers(10, 1)).toEqual([250]);
    // Published retained while the gateway listens: forwarded live, still marked retained (MQTT 5 retain as published).
    await operator.publishAsync(`${T}/cmd/write`, JSON.stringify({ id: 'ret-2', device: 'pump1', point: 'setpoint', value: 4, ttlS: 600 }), { qos: 1, retain: true });
    await collector.until(() => results.has('ret-2'), 20_000, 'answer to the live retained command');
    expect(results.get('ret-2')).toMatchObject({ status: 'rejected', reason: expect.stringMatching(/retained/) });
    expect(await registers(10, 1)).toEqual([250]);
    await operator.publishAsync(`${T}/cmd/write`, '', { qos: 1, retain: true });
  });

  it('never runs a command that expired while queued in the broker for the gateway, and runs one still valid', async () => {
    // Killed: the broker keeps the gateway's session (MQTT 5 session expiry = keepaliveS) and queues for it.
    await gw.stop('SIGKILL');
    const cmd = (id: string, value: number, expiry: Record<string, number>) => JSON.stringify({ id, device: 'pump1', point: 'setpoint', value, ...expiry });
    // An absolute expiry that passes while the message waits: delivered at the reconnect, refused as expired.
    await operator.publishAsync(`${T}/cmd/write`, cmd('q-old', 4, { expiresAt: Date.now() + 1000 }), { qos: 1 });
    // ttlS with the MQTT 5 message expiry beside it: the broker drops it once it expired, and the gateway
    // would bound the command by what is left of it.
    await operator.publishAsync(`${T}/cmd/write`, cmd('q-stale', 4.5, { ttlS: 1 }), { qos: 1, properties: { messageExpiryInterval: 1 } });
    await operator.publishAsync(`${T}/cmd/write`, cmd('q-fresh', 2, { ttlS: 120 }), { qos: 1 });
    await new Promise((r) => setTimeout(r, 2500));
    gw = runGateway(file);
    await gw.running();
    await collector.until(() => results.has('q-old') && results.has('q-fresh'), 20_000, 'answers to the queued commands');
    expect(results.get('q-old')).toMatchObject({ status: 'expired' });
    expect(results.get('q-fresh')).toMatchObject({ status: 'done', readBack: 2 });
    expect(results.has('q-stale')).toBe(false);
    expect(await registers(10, 1)).toEqual([200]);
  });

  it('audits every command in order, with nothing lost across a SIGKILL', async () => {
    results.delete('k1');
    const r = await send('write', { id: 'k1', device: 'pump1', point: 'setpoint', value: 3, ttlS: 30 });
    expect(r.status).toBe('done');
    await gw.stop('SIGKILL');
    gw = runGateway(file);
    await gw.running();
    await collector.until(() => commandEvents().some((e) => e.id === 'k1' && e.phase === 'result'), 20_000, 'audit of k1');
    const byId = new Map<string, string[]>();
    for (const e of commandEvents()) byId.set(e.id as string, [...(byId.get(e.id as string) ?? []), e.phase as string]);
    expect(byId.get('w2')).toEqual(['accepted', 'result']);
    expect(byId.get('r1')).toEqual(['result']);
    expect(byId.get('w1')).toEqual(['accepted', 'result', 'duplicate']);
    expect(byId.get('local-1')).toEqual(['accepted', 'result']);
    expect(byId.get('k1')?.slice(0, 2)).toEqual(['accepted', 'result']);
    // Within one epoch, the audit seqs rise in the order the guard decided.
    const seqs = commandEvents().map((e) => e.seq as number);
    expect([...new Set(seqs)].sort((a, b) => a - b)).toEqual([...new Set(seqs)]);
  });
});
