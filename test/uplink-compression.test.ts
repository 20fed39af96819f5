/**
 * Compressed telemetry (uplink.compression: deflate): the marker byte and zlib body, decoded to the same
 * samples as the text; a payload that does not inflate is a PayloadError; the profile marks the message with
 * its MQTT 5 content type; end to end against Mosquitto, an MQTT 5 subscriber sees the content type and
 * `fieldgate tail` over MQTT 3.1.1 decodes the samples.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { configSchema } from '../src/config/schema.js';
import { startGateway } from '../src/gateway.js';
import { startSimulator } from '../src/sim/server.js';
import { DEFLATE_CONTENT_TYPE, DEFLATE_MARKER, deflateTelemetry, isCompressed, telemetryText } from '../src/uplink/compress.js';
import { decodeTelemetry, encodeCompactSeries, PayloadError } from '../src/uplink/payload.js';
import { fieldgateProfile } from '../src/uplink/profiles/fieldgate/index.js';
import { meteredRows } from '../bench/lib/metered-workload.js';
import { fieldgate } from './helpers/cli.js';
import { recordingLogger } from './helpers/gateway.js';
import { needPeers, startMosquitto } from './helpers/peers.js';

const EP = '3f9a0c41d27be856';

describe('compressed telemetry', () => {
  const rows = meteredRows(10);
  const text = encodeCompactSeries('village-water', EP, rows, 0, rows.length);

  it('is the marker byte and zlib of the v1 text, decoded to the same samples, at under a quarter of the bytes', () => {
    const payload = deflateTelemetry(text);
    expect(payload[0]).toBe(DEFLATE_MARKER);
    expect(payload[1]).toBe(0x78); // the zlib header
    expect(isCompressed(payload)).toBe(true);
    expect(isCompressed(Buffer.from(text))).toBe(false);
    expect(telemetryText(payload)).toBe(text);
    expect(decodeTelemetry(payload)).toEqual(decodeTelemetry(text));
    expect(decodeTelemetry(Buffer.from(text))).toEqual(decodeTelemetry(text));
    // 100 points for 10 s: 1,000 samples.
    expect(payload.length / rows.length).toBeLessThan(4);
    expect(payload.length / text.length).toBeLessThan(0.25);
  });

  it('a payload that does not inflate, or is cut short, is a PayloadError', () => {
    const payload = deflateTelemetry(text);
    expect(() => decodeTelemetry(Buffer.from([DEFLATE_MARKER, 1, 2, 3]))).toThrow(PayloadError);
    expect(() => decodeTelemetry(payload.subarray(0, payload.length - 10))).toThrow(/does not inflate/);
    // Inflates, but to something that is not telemetry.
    expect(() => decodeTelemetry(Buffer.concat([Buffer.from([DEFLATE_MARKER]), deflateSync('nope')]))).toThrow(/not JSON/);
  });

  it('the fieldgate profile compresses telemetry only, with the content type; none keeps the text', () => {
    const on = fieldgateProfile({ gatewayId: 'g', topicPrefix: 'fieldgate', format: 'compact', compression: 'deflate' });
    const m = on.samples(EP, rows, 0, 100, false);
    expect(Buffer.isBuffer(m.payload)).toBe(true);
    expect(m.contentType).toBe(DEFLATE_CONTENT_TYPE);
    expect(telemetryText(m.payload as Buffer)).toBe(encodeCompactSeries('g', EP, rows, 0, 100));
    const json = fieldgateProfile({ gatewayId: 'g', topicPrefix: 'fieldgate', format: 'json', compression: 'deflate' }).samples(EP, rows, 0, 5, false);
    expect(decodeTelemetry(json.payload as Buffer).map((s) => s.seq)).toEqual([1, 2, 3, 4, 5]);
    // Births, events and the status stay JSON text.
    expect(typeof on.birth({ epoch: EP, version: '1', configHash: 'h', points: [] })[0]!.payload).toBe('string');
    expect(typeof on.offline().payload).toBe('string');
    const off = fieldgateProfile({ gatewayId: 'g', topicPrefix: 'fieldgate', format: 'compact' }).samples(EP, rows, 0, 100, false);
    expect(off.payload).toBe(encodeCompactSeries('g', EP, rows, 0, 100));
    expect(off.contentType).toBeUndefined();
  });

  it('the configuration takes none or deflate, deflate only with the fieldgate profile', () => {
    const base = { gateway: { id: 'gw' } };
    expect(configSchema.parse({ ...base, uplink: { url: 'mqtt://a' } }).uplink!.compression).toBe('none');
    expect(configSchema.parse({ ...base, uplink: { url: 'mqtt://a', compression: 'deflate' } }).uplink!.compression).toBe('deflate');
    const r = configSchema.safeParse({ ...base, uplink: { url: 'mqtt://a', compression: 'deflate', profile: 'sparkplug', sparkplug: { groupId: 'g' } } });
    expect(r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`)).toEqual(['uplink.compression: applies only with profile: fieldgate (Sparkplug payloads are protobuf)']);
  });
});

const skip = needPeers('mosquitto');

describe.skipIf(skip)('compressed telemetry through Mosquitto', () => {
  const cleanups: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
  });

  async function gateway(brokerUrl: string, protocolVersion: 4 | 5, id: string) {
    const sim = await startSimulator({ scenario: 'village-water', tcp: { host: '127.0.0.1', port: 0 }, seed: 4 });
    cleanups.push(() => sim.close());
    const dir = mkdtempSync(join(tmpdir(), 'fieldgate-deflate-'));
    cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
    const config = configSchema.parse({
      gateway: { id, dataDir: join(dir, 'data'), clock: { trust: 'always' } },
      buses: [{ id: 'sim', transport: 'tcp', host: '127.0.0.1', port: sim.tcpPort, timeoutMs: 300, reconnectMinMs: 200 }],
      devices: [{ id: 'pump_house', bus: 'sim', unit: 1, pollIntervalMs: 50, points: [
        { id: 'inlet_pressure', fc: 4, address: 0, scale: 0.000625, offset: -2.5, unit: 'bar' },
        { id: 'tank_level', fc: 4, address: 1, scale: 0.0003125, offset: -1.25, unit: 'm' },
      ] }],
      uplink: { url: brokerUrl, protocolVersion, compression: 'deflate', batch: { maxSamples: 100, maxDelayMs: 200 }, reconnectMinMs: 200 },
      buffer: { commitIntervalMs: 50 },
    });
    const gw = startGateway(config, recordingLogger().logger);
    cleanups.push(() => gw.stop());
    return gw;
  }

  it('MQTT 5: the telemetry carries the content type and decodes; the status stays JSON', async () => {
    const broker = await startMosquitto();
    cleanups.push(() => broker.stop());
    const sub = mqtt.connect(broker.url, { protocolVersion: 5, clientId: 'deflate-sub' });
    cleanups.push(() => sub.endAsync());
    const got: Array<{ topic: string; payload: Buffer; contentType?: string }> = [];
    sub.on('message', (topic, payload, packet) => got.push({ topic, payload, contentType: packet.properties?.contentType }));
    await new Promise<void>((resolve) => sub.once('connect', () => sub.subscribe('fieldgate/#', { qos: 1 }, () => resolve())));
    await gateway(broker.url, 5, 'gw-deflate5');
    const end = Date.now() + 15_000;
    while (got.filter((m) => m.topic.endsWith('/telemetry')).length < 3 && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
    const telemetry = got.filter((m) => m.topic.endsWith('/telemetry'));
    expect(telemetry.length).toBeGreaterThanOrEqual(3);
    for (const m of telemetry) {
      expect(m.contentType).toBe(DEFLATE_CONTENT_TYPE);
      expect(m.payload[0]).toBe(DEFLATE_MARKER);
      expect(decodeTelemetry(m.payload).length).toBeGreaterThan(0);
    }
    const status = got.find((m) => m.topic.endsWith('/status'))!;
    expect(status.contentType).toBeUndefined();
    expect(JSON.parse(status.payload.toString()).state).toBe('online');
  });

  it('MQTT 3.1.1: fieldgate tail decodes the compressed samples by their marker byte', async () => {
    const broker = await startMosquitto();
    cleanups.push(() => broker.stop());
    await gateway(broker.url, 4, 'gw-deflate4');
    const r = await fieldgate(['tail', broker.url, '--json', '--duration', '3']);
    expect(r.code).toBe(0);
    expect(r.stderr).not.toMatch(/cannot decode/);
    const samples = r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => !('event' in l));
    expect(samples.length).toBeGreaterThan(10);
    expect(samples[0]).toMatchObject({ gateway: 'gw-deflate4', device: 'pump_house', seq: expect.any(Number) });
  });
});
