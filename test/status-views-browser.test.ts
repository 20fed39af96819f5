/**
 * The technician's views in Chromium (playwright-core, Debian's chromium), at 1400 px and at 390 px (a phone):
 * a point's chart, a device's overlaid points, the commissioning tables of two RS-485 lines and a line sensor,
 * all fed by real peers: the village-water simulator over Modbus TCP, the scripted RTU peer
 * (test/helpers/status-rtu-peer.ts) on the far end of socat pty pairs, and the gas detector simulator on a
 * third pty. The last hour before the test is fed through the same hook the gateway feeds (so the chart has an
 * hour to draw: a sag below the low limit with its raise and clear, a stretch of bad readings, the 5-minute
 * aggregates). The alarm list with ISA-18.2 states scripted behind the processor's alarmStates(). Leaves
 * screenshots of each view at both widths in test-output/ (docs/images/ holds copies).
 */
import { copyFileSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { chromium, type BrowserContext, type Locator, type Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { configSchema } from '../src/config/schema.js';
import { startGateway, type Gateway } from '../src/gateway.js';
import type { Sample } from '../src/sample.js';
import { startEmbeddedBroker, type EmbeddedBroker } from '../src/sim/broker.js';
import { startLineSimulator, type RunningLineSimulator } from '../src/sim/line/server.js';
import { startSimulator, type RunningSimulator } from '../src/sim/server.js';
import { StatusSurface } from '../src/status/surface.js';
import type { AlarmStateInput, StatusGateway } from '../src/status/types.js';
import { chromiumPath, needPeers, startSocatPair, tempDir, type SocatPair } from './helpers/peers.js';
import { startRtuPeerOnSerial, type RtuPeer } from './helpers/status-rtu-peer.js';

const ROOT = new URL('..', import.meta.url).pathname;
const OUT = join(ROOT, 'test-output');
const TOKEN = 'pump-house-token-2';
/** FIELDGATE_DOC_IMAGES=1 also copies the views' screenshots into docs/images/ (what docs/status.md shows). */
const DOC_IMAGES = process.env.FIELDGATE_DOC_IMAGES ? join(ROOT, 'docs', 'images') : undefined;
const WIDE = { width: 1400, height: 900 };
const PHONE = { width: 390, height: 844 };
type Raw = Record<string, unknown>;
/** A time of day as the browser's locale writes it: 14:05:09 or 2:05:09 PM. */
const TIME = String.raw`\d\d?:\d\d:\d\d(?: [AP]M)?`;

/** The RS-485 line's timing, short so a silent unit's timeouts add up within seconds. */
const FAST_RTU = { transport: 'rtu', baudRate: 19200, timeoutMs: 120, retries: 0, unitBackoffMinMs: 200, unitBackoffMaxMs: 400 };
const float = (id: string, address: number, unit: string) => ({ id, fc: 3, address, type: 'float32', unit });

function siteConfig(simPort: number, brokerUrl: string, dir: string, rtuA: string, rtuB: string, gas: string) {
  const raw = parse(readFileSync(join(ROOT, 'config', 'village-water.yaml'), 'utf8')) as Raw;
  return configSchema.parse({
    gateway: { ...(raw.gateway as Raw), dataDir: join(dir, 'data'), clock: { trust: 'always' } },
    buses: [
      ...(raw.buses as Raw[]).map((b) => ({ ...b, port: simPort })),
      { id: 'rs485', port: rtuA, ...FAST_RTU },
      { id: 'wells', port: rtuB, ...FAST_RTU },
      { id: 'gas', transport: 'line', port: gas, baudRate: 38400 },
    ],
    devices: [
      ...(raw.devices as Raw[]).map((d) => ({
        ...d,
        pollIntervalMs: 500,
        points: (d.points as Raw[]).map(({ deadband: _d, maxIntervalS: _m, aggregate, ...p }) => ({ ...p, ...(aggregate ? { aggregate: { windowS: 300, functions: ['min', 'max', 'avg'] } } : {}) })),
      })),
      // Unit 1 answers, 2 is silent, 3 answers every read with exception 2, 4 with a corrupted CRC.
      { id: 'booster', bus: 'rs485', unit: 1, pollIntervalMs: 300, points: [float('discharge', 0, 'bar'), float('suction', 2, 'bar')] },
      { id: 'chlorinator', bus: 'rs485', unit: 2, pollIntervalMs: 300, points: [float('dose', 0, 'mg/l')] },
      { id: 'level_relay', bus: 'rs485', unit: 3, pollIntervalMs: 300, points: [float('level', 40001, 'm')] },
      { id: 'valve', bus: 'rs485', unit: 4, pollIntervalMs: 300, points: [float('position', 0, '%')] },
      // No unit on this line answers at all: the line itself is suspect.
      { id: 'well_1', bus: 'wells', unit: 1, pollIntervalMs: 300, points: [float('level', 0, 'm')] },
      { id: 'well_2', bus: 'wells', unit: 2, pollIntervalMs: 300, points: [float('level', 0, 'm')] },
      { id: 'gas_detector', bus: 'gas', checksum: 'nmea', parse: { kv: {} }, points: [{ id: 'ch4', field: 'CH4', unit: '%vol' }, { id: 'o2', field: 'O2', unit: '%vol' }] },
    ],
    uplink: { url: brokerUrl, protocolVersion: 4, batch: { maxDelayMs: 200 } },
    buffer: { commitIntervalMs: 50 },
  });
}

/**
 * The hour before the test as the gateway would have stored it: the pump house pressure sagging below its low
 * limit (2.5 bar) for four minutes, with the raise and the clear; two minutes of bad readings (an open loop);
 * one uncertain bucket; and the 5-minute aggregates the processing adds.
 */
function lastHour(status: StatusSurface, now: number): void {
  const start = now - 58 * 60_000;
  const samples: Sample[] = [];
  const pressure = (t: number) => {
    const m = (t - start) / 60_000;
    const sag = m > 20 && m < 26 ? 1.7 * Math.sin(((m - 20) / 6) * Math.PI) : 0;
    return Math.round((4.1 + 0.35 * Math.sin(m / 7) + 0.05 * Math.sin(m * 3) - sag) * 1000) / 1000;
  };
  const agg: number[] = [];
  for (let t = start; t < now - 60_000; t += 5000) {
    const m = (t - start) / 60_000;
    if (m > 40 && m < 42) samples.push({ device: 'pump_house', point: 'inlet_pressure', ts: t, value: null, quality: 'bad', reason: 'sensor fault: loop current 1.2 mA (NAMUR NE43: open loop)' });
    else {
      const v = pressure(t);
      agg.push(v);
      samples.push({ device: 'pump_house', point: 'inlet_pressure', ts: t, value: v, quality: m > 47 && m < 47.3 ? 'uncertain' : 'good' });
    }
    samples.push({ device: 'pump_house', point: 'tank_level', ts: t, value: Math.round((3.2 - m * 0.012) * 1000) / 1000, quality: 'good' });
    if (Math.round(m * 12) % 60 === 59 && agg.length) {
      const [lo, hi, avg] = [Math.min(...agg), Math.max(...agg), agg.reduce((a, b) => a + b, 0) / agg.length];
      for (const [fn, v] of [['min', lo], ['max', hi], ['avg', Math.round(avg * 1000) / 1000]] as const) samples.push({ device: 'pump_house', point: `inlet_pressure.${fn}`, ts: t, value: v, quality: 'good' });
      agg.length = 0;
    }
  }
  status.hooks.onSamples(samples);
  const alarm = { device: 'pump_house', point: 'inlet_pressure', alarm: 'low', type: 'low', severity: 'major', limit: 2.5, message: 'Low pressure at the pump house' } as const;
  status.hooks.onAlarm({ ...alarm, state: 'raised', value: 2.41, ts: start + 21.5 * 60_000 });
  status.hooks.onAlarm({ ...alarm, state: 'cleared', value: 2.72, ts: start + 25 * 60_000 });
}

/**
 * The gateway as the page reads it, with the alarms' ISA-18.2 states scripted by the test (what the processor's
 * alarmStates() reports once alarms are acknowledged and shelved through commands).
 */
function withAlarmStates(gateway: Gateway, states: () => AlarmStateInput[]): StatusGateway {
  return {
    get config() { return gateway.config; },
    get buses() { return gateway.buses; },
    get outbox() { return gateway.outbox; },
    get uplink() { return gateway.uplink; },
    get session() { return gateway.session; },
    processor: { activeAlarms: () => gateway.processor.activeAlarms(), alarmStates: states },
  };
}

const skip = needPeers('chromium', 'socat');

describe.skipIf(skip)('the technician views in Chromium: charts and commissioning', () => {
  let sim: RunningSimulator;
  let broker: EmbeddedBroker;
  let lines: SocatPair[] = [];
  let peers: RtuPeer[] = [];
  let gasSim: RunningLineSimulator;
  let gateway: Gateway;
  let status: StatusSurface;
  let url: string;
  let context: BrowserContext;
  let page: Page;
  const problems: string[] = [];
  const requests: string[] = [];
  let alarmStates: AlarmStateInput[] = [];

  beforeAll(async () => {
    mkdirSync(OUT, { recursive: true });
    const dir = tempDir('status-views');
    lines = [await startSocatPair(join(dir, 'rs485')), await startSocatPair(join(dir, 'wells')), await startSocatPair(join(dir, 'gas'))];
    peers = [
      await startRtuPeerOnSerial(lines[0]!.b, { 1: 'good', 2: 'silent', 3: 'exception-2', 4: 'bad-crc' }),
      await startRtuPeerOnSerial(lines[1]!.b, { 1: 'silent', 2: 'silent' }),
    ];
    gasSim = await startLineSimulator({ device: 'gas', intervalMs: 250, serial: { path: lines[2]!.b, baudRate: 38400 } });
    sim = await startSimulator({ scenario: 'village-water', tcp: { host: '127.0.0.1', port: 0 }, seed: 7 });
    broker = await startEmbeddedBroker('127.0.0.1', 0);
    const logger = pino({ level: 'silent' });
    status = new StatusSurface({ gateway: () => withAlarmStates(gateway, () => alarmStates), logger });
    lastHour(status, Date.now());
    gateway = startGateway(siteConfig(sim.tcpPort!, broker.url, dir, lines[0]!.a, lines[1]!.a, lines[2]!.a), logger, status.hooks);
    await status.apply({ enabled: true, listen: '127.0.0.1:0', token: TOKEN });
    url = status.url!;
    context = await chromium.launchPersistentContext(join(dir, 'chromium-profile'), {
      executablePath: chromiumPath() ?? '/usr/bin/chromium',
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic', '--no-first-run', '--disable-component-update', '--disable-sync'],
      viewport: WIDE,
      hasTouch: true,
    });
    page = context.pages()[0] ?? (await context.newPage());
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('response', (r) => {
      if (r.status() >= 400) problems.push(`${r.status()} ${r.url()}`);
    });
    page.on('request', (r) => requests.push(r.url()));
    await page.goto(`${url}/?token=${TOKEN}`);
    await page.waitForFunction(() => document.querySelector('#live')?.textContent?.startsWith('Live'), undefined, { timeout: 10_000 });
  }, 60_000);

  afterAll(async () => {
    await context?.close();
    await status?.close();
    await gateway?.stop();
    await broker?.close();
    await sim?.close();
    await gasSim?.close();
    for (const p of peers) await p.close();
    for (const l of lines) await l.stop();
  });

  // A failed step leaves no dialog over the next one.
  afterEach(async () => {
    await page?.evaluate(() => document.querySelector<HTMLDialogElement>('#zoom')?.close());
  });

  /** A screenshot of one element into test-output/ (and docs/images/ when asked for). */
  const shoot = async (target: Locator, name: string, forDocs = true) => {
    const path = join(OUT, `status-${name}.png`);
    await target.screenshot({ path });
    if (DOC_IMAGES && forDocs) copyFileSync(path, join(DOC_IMAGES, `status-${name}.png`));
  };
  const device = (id: string) => page.locator('.device', { has: page.locator('h3', { hasText: new RegExp(`^${id}$`) }) });
  const pointRow = (dev: string, point: string) => device(dev).locator('.pt', { has: page.locator('.name', { hasText: new RegExp(`^${point.replace('.', '\\.')}$`) }) });
  const chart = {
    box: () => page.locator('#zoom[open] #zoom-plot .chart'),
    notes: () => page.locator('#zoom-notes').innerText(),
    close: () => page.locator('#zoom-close').click(),
  };
  /** Pixels in the chart canvas that are not the background: the canvas really has something drawn. */
  const openPressure = async () => {
    await pointRow('pump_house', 'inlet_pressure').locator('.spark').click();
    await expect.poll(() => chart.box().locator('canvas').count(), { timeout: 5000 }).toBe(1);
  };
  const inked = () =>
    page.locator('#zoom[open] #zoom-plot canvas').first().evaluate((c: HTMLCanvasElement) => {
      const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
      let n = 0;
      for (let i = 3; i < d.length; i += 4) if (d[i]! > 0) n++;
      return n;
    });
  const noOverflow = () => page.evaluate(() => document.scrollingElement!.scrollWidth - window.innerWidth);
  const dialogOverflow = () => page.evaluate(() => { const d = document.querySelector('#zoom')!; return d.scrollWidth - d.clientWidth; });

  for (const size of [WIDE, PHONE]) {
    const tag = size === WIDE ? 'wide' : 'phone';

    it(`${size.width} px: a point opens to its chart of the last hour, value, unit, limits, marks and min/max/mean`, async () => {
      await page.setViewportSize(size);
      await expect.poll(() => pointRow('pump_house', 'inlet_pressure').locator('.val').textContent(), { timeout: 10_000 }).toMatch(/^\d+\.\d+\s*bar$/);
      await openPressure();
      expect(await page.locator('#zoom-title').textContent()).toBe('pump_house · inlet_pressure (bar)');
      // The current reading with its unit, above the chart.
      await expect.poll(() => page.locator('#zoom-now').textContent(), { timeout: 5000 }).toMatch(/^Now \d+\.\d+ bar · good · (just now|\d+ s ago)$/);
      const box = chart.box();
      await expect.poll(() => box.getAttribute('data-limits')).toBe('1');
      expect(await box.getAttribute('data-marks')).toBe('2');
      expect(Number(await box.getAttribute('data-shades'))).toBeGreaterThanOrEqual(6);
      // The x axis spans the last hour, ending now.
      const [from, to] = [Number(await box.getAttribute('data-from')), Number(await box.getAttribute('data-to'))];
      expect(to - from).toBe(3600);
      expect(Math.abs(to - Date.now() / 1000)).toBeLessThan(30);
      expect(await inked()).toBeGreaterThan(2000);
      const notes = await chart.notes();
      expect(notes).toMatch(/Last hour: lowest 2\.\d+ bar, highest [45]\.\d+ bar, mean [34]\.\d+ bar \(\d+ readings\)/);
      expect(notes).toMatch(/Limits: low 2\.5 bar \(major\)/);
      expect(notes).toMatch(new RegExp(`Alarms: raised low at ${TIME}, cleared low at ${TIME}`));
      expect(notes).toMatch(/Shaded: \d+ × 20 s with bad readings, \d+ × 20 s uncertain/);
      // The chart fits its dialog, and the dialog the screen.
      const { width } = (await box.boundingBox())!;
      expect(width).toBeLessThanOrEqual(size.width);
      expect(await dialogOverflow()).toBeLessThanOrEqual(0);
      expect(await noOverflow()).toBeLessThanOrEqual(0);
      await shoot(page.locator('#zoom'), `point-chart-${tag}`);
    }, 30_000);

    it(`${size.width} px: ${size === PHONE ? 'a tap' : 'the pointer'} on the chart reads the value at that time`, async () => {
      await openPressure();
      const over = page.locator('#zoom[open] .chart .u-over');
      const r = (await over.boundingBox())!;
      const valueCell = page.locator('#zoom .chart .u-legend tr.u-series', { hasText: 'value (bar)' }).locator('.u-value');
      expect(await valueCell.textContent()).toBe('—'); // nothing under the finger yet
      if (size === PHONE) await page.touchscreen.tap(r.x + r.width * 0.4, r.y + r.height / 2);
      else await page.mouse.move(r.x + r.width * 0.4, r.y + r.height / 2);
      await expect.poll(() => valueCell.textContent(), { timeout: 3000 }).toMatch(/^\d+\.\d+ bar$/);
      const time = await page.locator('#zoom .chart .u-legend tr.u-series').first().locator('.u-value').textContent();
      expect(time).toMatch(new RegExp(`^${TIME}$`));
      await chart.close();
    }, 20_000);

    it(`${size.width} px: a device opens to its points, those sharing a unit overlaid on one chart`, async () => {
      await device('pump_house').locator('button.plot-all').click();
      await expect.poll(() => page.locator('#zoom[open] #zoom-plot .chart').count(), { timeout: 5000 }).toBe(3);
      const charts = await page.locator('#zoom-plot .chart').evaluateAll((els) => els.map((e) => [(e as HTMLElement).dataset.unit, (e as HTMLElement).dataset.points]));
      expect(charts).toContainEqual(['bar', 'inlet_pressure,inlet_pressure.min,inlet_pressure.max,inlet_pressure.avg']);
      expect(charts).toContainEqual(['m', 'tank_level']);
      // The booleans (no unit) share the third chart.
      expect(charts.find(([u]) => u === '')![1]).toMatch(/pump_running/);
      const bar = page.locator('#zoom-plot .chart[data-unit="bar"]');
      expect(await bar.locator('.u-legend tr.u-series').allTextContents()).toHaveLength(5); // time + 4 series
      expect(await page.locator('#zoom-plot h3').first().textContent()).toBe('inlet_pressure, inlet_pressure.min, inlet_pressure.max, inlet_pressure.avg (bar)');
      expect(await noOverflow()).toBeLessThanOrEqual(0);
      expect(await dialogOverflow()).toBeLessThanOrEqual(0);
      await shoot(page.locator('#zoom'), `device-chart-${tag}`);
      await chart.close();
    }, 20_000);
  }

  /** One cell of a bus's commissioning table, by device and column. */
  const cell = (bus: string, dev: string, col: string) => page.locator(`details.commissioning[data-bus="${bus}"] tr[data-device="${dev}"] td[data-col="${col}"]`);
  const num = async (bus: string, dev: string, col: string) => Number((await cell(bus, dev, col).textContent())!.replace(/,/g, ''));

  it('1400 px: the commissioning counters move while the RTU units answer, stay silent, or answer exception 2', async () => {
    await page.setViewportSize(WIDE);
    for (const bus of ['rs485', 'wells', 'gas']) await page.locator(`details.commissioning[data-bus="${bus}"] > summary`).click();
    await expect.poll(() => num('rs485', 'booster', 'good replies'), { timeout: 10_000 }).toBeGreaterThan(0);
    const before = { requests: await num('rs485', 'booster', 'requests'), replies: await num('rs485', 'booster', 'good replies'), timeouts: await num('rs485', 'chlorinator', 'timeouts'), wells: await num('wells', 'well_1', 'timeouts') };
    expect(peers[0]!.requests.get(1)).toBeGreaterThan(0);
    // The counters rise on the page while the peer answers: no reload.
    await expect.poll(() => num('rs485', 'booster', 'requests'), { timeout: 10_000 }).toBeGreaterThan(before.requests + 3);
    await expect.poll(() => num('rs485', 'booster', 'good replies'), { timeout: 10_000 }).toBeGreaterThan(before.replies + 3);
    await expect.poll(() => num('rs485', 'chlorinator', 'timeouts'), { timeout: 10_000 }).toBeGreaterThan(before.timeouts);
    await expect.poll(() => num('wells', 'well_1', 'timeouts'), { timeout: 10_000 }).toBeGreaterThan(before.wells);
    expect(await cell('rs485', 'booster', 'likely cause').textContent()).toBe('answering normally');
    expect(await cell('rs485', 'booster', 'last reply').textContent()).toMatch(/^\d+ ms$/);
    expect(await cell('rs485', 'booster', 'p95').textContent()).toMatch(/^\d+ ms$/);
    expect(await num('rs485', 'chlorinator', 'good replies')).toBe(0);
    expect(await cell('rs485', 'chlorinator', 'likely cause').textContent()).toMatch(/^only this unit is silent: wrong unit id/);
    // Every unit of the other line silent: the line itself, in words.
    expect(await page.locator('details.commissioning[data-bus="wells"] .cause-bus').textContent()).toMatch(/^Likely cause: no unit answers: wrong baud rate or parity, A and B swapped, no common ground/);
    expect(await cell('wells', 'well_2', 'likely cause').textContent()).toMatch(/baud rate or parity/);
    // Exception 2 is named as register numbering; a bad CRC as termination and noise.
    await expect.poll(() => cell('rs485', 'level_relay', 'exceptions').textContent(), { timeout: 5000 }).toMatch(/^2: \d+$/);
    expect(await cell('rs485', 'level_relay', 'likely cause').textContent()).toMatch(/^exception 2 \(illegal data address\).*numbers? registers from 1 or as 40001.*40001 is fc 3 address 0/);
    await expect.poll(() => num('rs485', 'valve', 'CRC errors'), { timeout: 5000 }).toBeGreaterThan(0);
    expect(await cell('rs485', 'valve', 'likely cause').textContent()).toMatch(/CRC errors: .*terminator/);
    expect(await page.locator('details.commissioning[data-bus="rs485"] tr.trouble').count()).toBe(3);
    expect(await noOverflow()).toBeLessThanOrEqual(0);
    await shoot(page.locator('details.commissioning[data-bus="rs485"]'), 'commissioning-wide');
    await shoot(page.locator('details.commissioning[data-bus="wells"]'), 'commissioning-silent-line-wide');
  }, 45_000);

  it("1400 px: a line sensor's lines, checksums and its last raw line", async () => {
    const gas = page.locator('details.commissioning[data-bus="gas"]');
    await expect.poll(() => num('gas', 'gas_detector', 'good'), { timeout: 10_000 }).toBeGreaterThan(2);
    const first = await num('gas', 'gas_detector', 'lines');
    await expect.poll(() => num('gas', 'gas_detector', 'lines'), { timeout: 10_000 }).toBeGreaterThan(first);
    expect(await gas.locator('code.raw').textContent()).toMatch(/^\$GAS,CH4=[\d.]+,CO=\d+,H2S=[\d.]+,O2=[\d.]+\*[0-9A-F]{2}$/);
    expect(await cell('gas', 'gas_detector', 'likely cause').textContent()).toBe('answering normally');
    expect(await gas.textContent()).toMatch(/Lines received on the bus: [\d,]+/);
    await shoot(gas, 'line-sensor-wide');
  }, 20_000);

  it('the alarm list: unacknowledged alarms filled in their colour, acknowledged light, returned dashed, shelved grey with its end', async () => {
    await page.setViewportSize(WIDE);
    const now = Date.now();
    const at = (device: string, point: string, alarm: string, type: 'low' | 'high', severity: 'major' | 'minor', value: number, limit: number, ts: number, message: string) =>
      ({ device, point, alarm, type, severity, value, limit, ts, message });
    const low = at('highest_house', 'high_pressure', 'low', 'low', 'major', 0.8, 1, now - 120_000, 'Low pressure at the highest house');
    const acked = at('pump_house', 'tank_level', 'low', 'low', 'major', 0.42, 0.5, now - 600_000, 'Tank nearly dry');
    const shelved = at('flow_meter', 'inlet_flow', 'high', 'high', 'minor', 41, 40, now - 300_000, 'Flow above 40 m3/h');
    const back = at('pump_house', 'inlet_pressure', 'low', 'low', 'major', 2.7, 2.5, now - 60_000, 'Low pressure at the pump house');
    for (const a of [low, acked, shelved]) status.hooks.onAlarm({ ...a, state: 'raised' });
    alarmStates = [
      { ...low, state: 'unacknowledged' },
      { ...acked, state: 'acknowledged' },
      { ...shelved, state: 'unacknowledged', shelvedUntil: now + 25 * 60_000 },
      { ...back, state: 'returned-unacknowledged' },
    ];
    const boxes = page.locator('#alarms .alarm');
    await expect.poll(() => boxes.count(), { timeout: 5000 }).toBe(4);
    const list = await boxes.evaluateAll((els) => els.map((e) => ({ cls: e.className, text: e.textContent, msg: e.querySelector('h2')!.childNodes[1]!.textContent, bg: getComputedStyle(e).backgroundColor, role: e.getAttribute('role') })));
    // Waiting for a person first; the shelved one last.
    expect(list.map((a) => a.msg)).toEqual(['Low pressure at the highest house', 'Tank nearly dry', 'Low pressure at the pump house', 'Flow above 40 m3/h']);
    expect(list[0]).toMatchObject({ cls: 'alarm major unack', bg: 'rgb(198, 40, 40)', role: 'alert' });
    expect(list[0]!.text).toMatch(/UNACKNOWLEDGED.*reading 0\.8 bar, low limit 1 bar/);
    expect(list[1]).toMatchObject({ cls: 'alarm major', bg: 'rgb(253, 236, 234)', role: null });
    expect(list[1]!.text).toMatch(/acknowledged/);
    expect(list[2]).toMatchObject({ cls: 'alarm major returned', bg: 'rgb(253, 236, 234)', role: 'alert' });
    expect(list[2]!.text).toMatch(/returned to normal, not acknowledged.*Back to normal since .*waiting to be acknowledged/);
    expect(list[3]).toMatchObject({ cls: 'alarm minor shelved', bg: 'rgb(236, 238, 241)', role: null });
    // After midnight's turn the page names the day too ("Shelved until Dec 8 12:03 AM").
    expect(list[3]!.text).toMatch(/Shelved until (?:[A-Z][a-z]{2} \d\d? )?\d\d?:\d\d(?: [AP]M)? \(in 2[45] min\)/);
    // The title counts what is announced: the shelved alarm is not.
    await expect.poll(() => page.title()).toMatch(/^\(3 alarms\) village-water/);
    await shoot(page.locator('#alarms'), 'alarms-wide');
    await page.setViewportSize(PHONE);
    await page.waitForTimeout(200);
    expect(await noOverflow()).toBeLessThanOrEqual(0);
    await shoot(page.locator('#alarms'), 'alarms-phone');
    alarmStates = [];
    for (const a of [low, acked, shelved]) status.hooks.onAlarm({ ...a, state: 'cleared', ts: Date.now() });
    await expect.poll(() => boxes.count(), { timeout: 5000 }).toBe(0);
  }, 30_000);

  it('390 px: the commissioning tables fit a phone, counters still moving, and nothing asked of the internet', async () => {
    await page.setViewportSize(PHONE);
    await page.waitForTimeout(300);
    expect(await noOverflow()).toBeLessThanOrEqual(0);
    const before = await num('rs485', 'booster', 'requests');
    await expect.poll(() => num('rs485', 'booster', 'requests'), { timeout: 10_000 }).toBeGreaterThan(before);
    // On a phone each unit is a block of labelled lines, not a table wider than the screen.
    const rs485 = page.locator('details.commissioning[data-bus="rs485"]');
    const widths = await rs485.locator('tr[data-device]').evaluateAll((rows) => rows.map((r) => r.getBoundingClientRect().right));
    for (const w of widths) expect(w).toBeLessThanOrEqual(PHONE.width);
    expect(await cell('rs485', 'level_relay', 'likely cause').isVisible()).toBe(true);
    await shoot(rs485, 'commissioning-phone');
    await shoot(page.locator('#main'), 'views-page-phone', false);
    const base = new URL(url);
    const outside = requests.filter((r) => new URL(r).host !== base.host);
    expect(outside).toEqual([]);
    expect(requests.length).toBeGreaterThan(5);
    expect(problems).toEqual([]);
  }, 30_000);
});
