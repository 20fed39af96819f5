/**
 * The line bus against a scripted serial device server (a TCP socket on 127.0.0.1 whose every byte the test
 * chooses): which device a line belongs to, bad samples with their reasons, counting and rate-limited
 * logging of noise, queries with retries, timeouts and backoff, floods, a peer that goes away, and peers that
 * hang up at once or mid-reply (redialed through the backoff, the cut-off query counted on the device).
 */
import net, { type AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import type { LineBusConfig } from '../src/config/schema.js';
import { withChecksum } from '../src/sources/line/checksum.js';
import { LineBus } from '../src/sources/line/bus.js';
import { RateLimitedLog } from '../src/sources/ratelog.js';
import { cleanupListOf } from './helpers/cleanup.js';
import { config, recordingLogger, SampleLog } from './helpers/gateway.js';

interface Peer {
  port: number;
  send(bytes: string | Buffer): void;
  /** Called with every query line (CR/LF trimmed), and the socket it came on. */
  onQuery?: (q: string, socket: net.Socket) => void;
  /** Hang up every connection as soon as it is accepted. */
  hangUp?: boolean;
  connections: number;
  close(): Promise<void>;
}

async function startPeer(port = 0): Promise<Peer> {
  const sockets = new Set<net.Socket>();
  const peer: Peer = {
    port: 0,
    connections: 0,
    send(bytes) {
      for (const s of sockets) s.write(bytes);
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
  const server = net.createServer((s) => {
    peer.connections++;
    if (peer.hangUp) return void s.destroy();
    sockets.add(s);
    s.on('error', () => {});
    s.on('close', () => sockets.delete(s));
    let held = '';
    s.on('data', (d) => {
      held += d.toString('latin1');
      const parts = held.split(/\r\n|\r|\n/);
      held = parts.pop()!;
      for (const q of parts) if (q) peer.onQuery?.(q, s);
    });
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  peer.port = (server.address() as AddressInfo).port;
  return peer;
}

const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));
type Cleanups = ReturnType<typeof cleanupListOf>;

async function setup(cleanup: Cleanups, peer: Peer, bus: Record<string, unknown>, devices: Record<string, unknown>[]) {
  const cfg = config({
    gateway: { id: 'g' },
    buses: [{ id: 'face', transport: 'line', host: '127.0.0.1', port: peer.port, reconnectMinMs: 50, reconnectMaxMs: 200, ...bus }],
    devices: devices.map((d) => ({ bus: 'face', ...d })),
  });
  const samples = new SampleLog();
  const rec = recordingLogger();
  const lineBus = new LineBus(cfg.buses[0] as LineBusConfig, cfg.devices, { logger: rec.logger, sink: samples.sink });
  lineBus.start();
  cleanup.push(() => lineBus.stop());
  await samples.until(() => lineBus.linkState === 'connected' && peer.connections > 0, 5000, 'the connection');
  await tick(30);
  return { bus: lineBus, samples, rec };
}

describe('line bus: listening', () => {
  it('routes lines by match, leaves the rest to devices without one, counts what no one takes', async (ctx) => {
    const cleanup = cleanupListOf(ctx);
    const peer = await startPeer();
    cleanup.push(() => peer.close());
    const { bus, samples } = await setup(cleanup, peer, {}, [
      { id: 'gas', match: '^\\$GAS', checksum: 'nmea', parse: { kv: {} }, points: [{ id: 'ch4', field: 'CH4' }] },
      { id: 'lel', match: '^\\$LEL', checksum: 'nmea', parse: { kv: {} }, points: [{ id: 'lel', field: 'LEL' }] },
    ]);
    peer.send(`${withChecksum('nmea', 'GAS,CH4=0.12')}\r\n${withChecksum('nmea', 'LEL,LEL=4')}\r\n$XYZ,1\r\n\x00\x01\x02\r\n\r\n`);
    await samples.until((all) => all.length >= 2);
    await tick(50);
    expect(samples.all.map((s) => [s.device, s.point, s.value, s.quality])).toEqual([
      ['gas', 'ch4', 0.12, 'good'],
      ['lel', 'lel', 4, 'good'],
    ]);
    expect(bus.busHealth()).toEqual({ lines: 5, errors: { unmatched: 1, binary: 1 } });
  });

  it('marks a matching line that fails its checksum bad, logs once a minute per kind, counts every one', async (ctx) => {
    const cleanup = cleanupListOf(ctx);
    const peer = await startPeer();
    cleanup.push(() => peer.close());
    const { bus, samples, rec } = await setup(cleanup, peer, {}, [
      { id: 'gas', checksum: 'nmea', parse: { regex: 'CH4=(?<ch4>[-\\d.]+),CO=(?<co>\\w+)' }, points: [{ id: 'ch4' }, { id: 'co' }] },
    ]);
    for (let i = 0; i < 50; i++) peer.send('$GAS,CH4=0.12,CO=3*00\r\n');
    peer.send(`${withChecksum('nmea', 'GAS,CH4=0.13,CO=x')}\r\n${withChecksum('nmea', 'GAS,CH4=0.14,CO=4')}\r\n`);
    await samples.until((all) => all.some((s) => s.value === 0.14));
    const bad = samples.of('gas', 'ch4')[0]!;
    expect(bad).toMatchObject({ quality: 'bad', value: null, reason: expect.stringMatching(/^checksum mismatch \(got 00, computed [0-9A-F]{2}\)$/) });
    expect(samples.of('gas', 'co').at(-2)).toMatchObject({ quality: 'bad', reason: "not a number: 'x'" });
    expect(samples.of('gas', 'ch4').at(-2)).toMatchObject({ quality: 'good', value: 0.13 });
    const h = bus.health()[0]!;
    expect(h.errors).toEqual({ checksum: 50, field: 1 });
    expect(h.requests).toBe(52);
    expect(rec.warnings(/checksum mismatch/)).toHaveLength(1);
  });

  it('blames an over-long line on the only device, and keeps going after a 10 MB flood', async (ctx) => {
    const cleanup = cleanupListOf(ctx);
    const peer = await startPeer();
    cleanup.push(() => peer.close());
    const { bus, samples } = await setup(cleanup, peer, { maxLineBytes: 64 }, [{ id: 'lvl', parse: { csv: { columns: ['level'] } }, points: [{ id: 'level' }] }]);
    peer.send(Buffer.alloc(10 * 1024 * 1024, 0x7e));
    peer.send('\r\n2.31\r\n');
    await samples.until((all) => all.some((s) => s.value === 2.31), 15_000);
    expect(samples.all[0]).toMatchObject({ quality: 'bad', reason: 'line longer than 64 bytes dropped' });
    expect(bus.health()[0]!.errors).toEqual({ overlong: 1 });
    expect(bus.linkState).toBe('connected');
  });
});

// Every test has its own peer and bus. The listening tests (one floods 10 MB through the parser) go first on
// their own; the query, reconnect and backoff tests then all at once.
describe.concurrent('line bus: queries', () => {
  it('polls, retries a garbled reply, and backs off a silent device until it answers again', async (ctx) => {
    const cleanup = cleanupListOf(ctx);
    const peer = await startPeer();
    cleanup.push(() => peer.close());
    let mode: 'good' | 'garble-once' | 'silent' = 'garble-once';
    let n = 0;
    peer.onQuery = (q) => {
      if (q !== 'D') return;
      n++;
      if (mode === 'silent') return;
      if (mode === 'garble-once') {
        mode = 'good';
        peer.send('D,4823.4,mm,00\r\n');
        return;
      }
      peer.send(`${withChecksum('sum8', `D,${4800 + n}.5,mm,`)}\r\n`);
    };
    const { bus, samples, rec } = await setup(cleanup, peer, { timeoutMs: 100, retries: 1, requestPauseMs: 5, unitBackoffMinMs: 300, unitBackoffMaxMs: 600 }, [
      { id: 'laser', query: 'D\r\n', pollIntervalMs: 50, checksum: 'sum8', parse: { regex: '^D,(?<distance>[-\\d.]+),mm,' }, points: [{ id: 'distance', unit: 'mm' }] },
    ]);
    await samples.until((all) => all.filter((s) => s.quality === 'good').length >= 3);
    // The garbled first reply was retried at once: no bad sample for it.
    expect(samples.all.every((s) => s.quality === 'good')).toBe(true);
    expect(bus.health()[0]!.errors).toEqual({ checksum: 1 });

    mode = 'silent';
    await samples.until((all) => all.some((s) => s.quality === 'bad'));
    expect(samples.all.at(-1)).toMatchObject({ quality: 'bad', reason: 'no reply within 100 ms' });
    await tick(100);
    expect(bus.health()[0]).toMatchObject({ state: 'failing', backoffMs: 300 });
    // Backed off: while silent, one probe per backoff period, not one per poll interval.
    const before = n;
    await tick(700);
    expect(n - before).toBeLessThanOrEqual(3);
    expect(rec.warnings(/not answering/)).toHaveLength(1);

    mode = 'good';
    const back = Date.now();
    await samples.until((all) => all.some((s) => s.quality === 'good' && s.ts > back), 3000);
    expect(bus.health()[0]).toMatchObject({ state: 'ok', backoffMs: 0 });
    expect(rec.lines.some((l) => l.msg === 'laser answers again')).toBe(true);
  });

  it('takes as reply only a line the queried device matches, while listeners keep theirs', async (ctx) => {
    const cleanup = cleanupListOf(ctx);
    const peer = await startPeer();
    cleanup.push(() => peer.close());
    peer.onQuery = (q) => {
      if (q === '#01') peer.send(`${withChecksum('nmea', 'GAS,CH4=0.20')}\r\nLVL 2.5\r\n$R01,7\r\n`);
    };
    const { samples } = await setup(cleanup, peer, { timeoutMs: 200 }, [
      { id: 'level', match: '^LVL', parse: { regex: '^LVL (?<level>[\\d.]+)' }, points: [{ id: 'level' }] },
      { id: 'det', query: '#01\r', match: '^\\$R01', pollIntervalMs: 100, parse: { csv: { columns: ['tag', 'v'] } }, points: [{ id: 'v' }] },
    ]);
    await samples.until((all) => all.some((s) => s.device === 'det') && all.some((s) => s.device === 'level'));
    expect(samples.of('det')[0]).toMatchObject({ quality: 'good', value: 7 });
    expect(samples.of('level')[0]).toMatchObject({ quality: 'good', value: 2.5 });
  });

  it('drops a partial line before a query, so noise cannot corrupt the reply', async (ctx) => {
    const cleanup = cleanupListOf(ctx);
    const peer = await startPeer();
    cleanup.push(() => peer.close());
    peer.onQuery = () => peer.send('21.5\r\n');
    const { bus, samples } = await setup(cleanup, peer, { timeoutMs: 200 }, [{ id: 't', query: 'T\r', pollIntervalMs: 200, parse: { csv: { columns: ['t'] } }, points: [{ id: 't' }] }]);
    await samples.until((all) => all.length === 1);
    peer.send('\x00\x01garbage without end');
    await samples.until((all) => all.length === 2);
    expect(samples.all[1]).toMatchObject({ quality: 'good', value: 21.5 });
    expect(bus.busHealth().errors).toEqual({ partial: 1 });
  });

  it('stops at once while a query waits for its reply', async (ctx) => {
    const cleanup = cleanupListOf(ctx);
    const peer = await startPeer();
    cleanup.push(() => peer.close());
    const { bus } = await setup(cleanup, peer, { timeoutMs: 30_000 }, [{ id: 't', query: 'T\r', parse: { json: true }, points: [{ id: 't' }] }]);
    await tick(50);
    const t0 = Date.now();
    await bus.stop();
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(bus.linkState).toBe('stopped');
  });
});

describe.concurrent('line bus: the peer goes away', () => {
  it('reports the loss once, reconnects with backoff, and listening resumes', async (ctx) => {
    const cleanup = cleanupListOf(ctx);
    let peer = await startPeer();
    const port = peer.port;
    cleanup.push(() => peer.close());
    const { bus, samples, rec } = await setup(cleanup, peer, {}, [{ id: 'gas', checksum: 'nmea', parse: { kv: {} }, points: [{ id: 'ch4', field: 'CH4' }] }]);
    peer.send(`${withChecksum('nmea', 'GAS,CH4=0.1')}\r\n`);
    await samples.until((all) => all.length === 1);
    await peer.close();
    await samples.until((all) => all.some((s) => s.reason === 'bus face disconnected'));
    await tick(600);
    expect(bus.linkState).not.toBe('connected');
    expect(rec.warnings(/cannot connect/).length).toBeLessThanOrEqual(1);
    expect(rec.warnings(/link lost/)).toHaveLength(1);
    peer = await startPeer(port);
    await samples.until(() => bus.linkState === 'connected' && peer.connections > 0, 5000, 'the reconnect');
    peer.send(`${withChecksum('nmea', 'GAS,CH4=0.3')}\r\n`);
    await samples.until((all) => all.some((s) => s.value === 0.3));
  });
});

describe.concurrent('line bus: a peer that hangs up', () => {
  function rigLoose(cleanup: Cleanups, peer: Peer, devices: Record<string, unknown>[]) {
    const cfg = config({
      gateway: { id: 'g' },
      buses: [{ id: 'face', transport: 'line', host: '127.0.0.1', port: peer.port, timeoutMs: 300, retries: 0, reconnectMinMs: 100, reconnectMaxMs: 1000, unitBackoffMinMs: 200, unitBackoffMaxMs: 400 }],
      devices: devices.map((d) => ({ bus: 'face', ...d })),
    });
    const samples = new SampleLog();
    const rec = recordingLogger();
    const bus = new LineBus(cfg.buses[0] as LineBusConfig, cfg.devices, { logger: rec.logger, sink: samples.sink });
    bus.start();
    cleanup.push(() => bus.stop());
    return { bus, samples, rec, linkLines: () => rec.lines.filter((l) => l.level >= 30 && /connect|link/.test(l.msg)) };
  }
  const laser = { id: 'laser', query: 'D\r\n', pollIntervalMs: 100, parse: { regex: '^D,(?<distance>[-\\d.]+)' }, points: [{ id: 'distance' }] };

  it('at once: redialed through the backoff, logged once, the device not up', async (ctx) => {
    const cleanup = cleanupListOf(ctx);
    const peer = await startPeer();
    cleanup.push(() => peer.close());
    peer.hangUp = true;
    const { bus, linkLines } = rigLoose(cleanup, peer, [laser]);
    await tick(4000);
    // 100 + 200 + 400 + 800 + 1000 ms (±20 %) between dials: about 6 in 4 s; without a backoff, thousands.
    expect(peer.connections).toBeGreaterThanOrEqual(2);
    expect(peer.connections).toBeLessThanOrEqual(10);
    expect(bus.health()[0]!.state).not.toBe('ok');
    expect(linkLines().length).toBeLessThanOrEqual(4);
  });

  it('mid-reply: the query counts as an error on the device, only a good reading resets the backoff', async (ctx) => {
    const cleanup = cleanupListOf(ctx);
    const peer = await startPeer();
    cleanup.push(() => peer.close());
    let good = false;
    peer.onQuery = (q, s) => {
      if (q !== 'D') return;
      if (good) return void s.write('D,4812.5\r\n');
      s.write('D,48');
      s.destroy();
    };
    const { bus, samples, rec, linkLines } = rigLoose(cleanup, peer, [laser]);
    await tick(3000);
    expect(peer.connections).toBeGreaterThanOrEqual(2);
    expect(peer.connections).toBeLessThanOrEqual(9);
    const h = bus.health()[0]!;
    expect(h.state).toBe('failing');
    expect(h.errors.disconnected).toBeGreaterThanOrEqual(1);
    expect(h.lastGoodTs).toBeUndefined();
    expect(bus.reconnectDelayMs).toBeGreaterThanOrEqual(400);
    expect(linkLines().length).toBeLessThanOrEqual(4);
    expect(rec.warnings().length).toBeLessThanOrEqual(3);
    good = true;
    const back = Date.now();
    await samples.until((all) => all.some((x) => x.quality === 'good' && x.ts >= back), 5000, 'a good reading');
    expect(bus.health()[0]!.state).toBe('ok');
    expect(bus.reconnectDelayMs).toBe(100);
  });

  it('a device whose replies never parse is failing and backed off, not up', async (ctx) => {
    const cleanup = cleanupListOf(ctx);
    const peer = await startPeer();
    cleanup.push(() => peer.close());
    let n = 0;
    peer.onQuery = (q, s) => {
      n++;
      s.write(q === 'D' ? 'ERR 7\r\n' : '');
    };
    const { bus, rec } = await setup(cleanup, peer, { timeoutMs: 200, retries: 0, unitBackoffMinMs: 300, unitBackoffMaxMs: 600 }, [laser]);
    await until(() => n >= 1);
    await tick(100);
    expect(bus.health()[0]).toMatchObject({ state: 'failing', backoffMs: 300 });
    expect(bus.health()[0]!.errors.parse).toBeGreaterThanOrEqual(1);
    expect(rec.warnings(/laser gives no good reading/)).toHaveLength(1);
    const before = n;
    await tick(700);
    expect(n - before).toBeLessThanOrEqual(3);
  });
});

async function until(cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out');
    await tick(20);
  }
}

describe('RateLimitedLog', () => {
  it('logs the first of a kind per scope, then at most once a period with the count suppressed', () => {
    const rec = recordingLogger();
    let now = 0;
    const rate = new RateLimitedLog(rec.logger, () => now, 60_000);
    for (let i = 0; i < 10; i++) rate.warn('gas', 'checksum', {}, 'gas: checksum mismatch');
    rate.warn('gas', 'parse', {}, 'gas: parse');
    rate.warn('co', 'checksum', {}, 'co: checksum mismatch');
    now = 60_000;
    rate.warn('gas', 'checksum', {}, 'gas: checksum mismatch');
    rate.warn('gas', 'checksum', {}, 'gas: checksum mismatch');
    expect(rec.warnings()).toEqual([
      'gas: checksum mismatch',
      'gas: parse',
      'co: checksum mismatch',
      'gas: checksum mismatch (9 more checksum errors since the last report)',
    ]);
    expect(rec.lines.at(-1)).toMatchObject({ kind: 'checksum', suppressed: 9 });
  });
});
