/**
 * The status page in a real browser (Debian's Chromium through playwright-core): the village-water simulator,
 * a gateway reading it and sending to the embedded broker, the status server with a token. Checks that live
 * values change, that an alarm appears on top, that the page asks nothing of the internet, and leaves
 * screenshots (desktop and phone) in test-output/ for a person to look at.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { configSchema } from '../src/config/schema.js';
import { startGateway, type Gateway } from '../src/gateway.js';
import { startEmbeddedBroker, type EmbeddedBroker } from '../src/sim/broker.js';
import { startSimulator, type RunningSimulator } from '../src/sim/server.js';
import { StatusSurface } from '../src/status/surface.js';
import { chromiumPath, needPeers, tempDir } from './helpers/peers.js';

const ROOT = new URL('..', import.meta.url).pathname;
const OUT = join(ROOT, 'test-output');
const TOKEN = 'pump-house-token-1';
type Raw = Record<string, unknown>;

/** The shipped village-water file, pointed at the test's simulator, polled faster, every reading reported. */
function siteConfig(simPort: number, brokerUrl: string, dir: string) {
  const raw = parse(readFileSync(join(ROOT, 'config', 'village-water.yaml'), 'utf8')) as Raw;
  return configSchema.parse({
    gateway: { ...(raw.gateway as Raw), dataDir: join(dir, 'data'), clock: { trust: 'always' } },
    buses: (raw.buses as Raw[]).map((b) => ({ ...b, port: simPort })),
    devices: (raw.devices as Raw[]).map((d) => ({
      ...d,
      pollIntervalMs: 500,
      points: (d.points as Raw[]).map(({ deadband: _d, maxIntervalS: _m, ...p }) => p),
    })),
    uplink: { url: brokerUrl, protocolVersion: 4, batch: { maxDelayMs: 200 } },
    buffer: { commitIntervalMs: 50 },
  });
}

const skip = needPeers('chromium');

describe.skipIf(skip)('status page in Chromium', () => {
  let sim: RunningSimulator;
  let broker: EmbeddedBroker;
  let brokerClosed = false;
  let gateway: Gateway;
  let status: StatusSurface;
  let server: { url: string };
  let context: BrowserContext;
  let page: Page;
  const problems: string[] = [];
  const outside: string[] = [];

  beforeAll(async () => {
    mkdirSync(OUT, { recursive: true });
    const dir = tempDir('status-browser');
    sim = await startSimulator({ scenario: 'village-water', tcp: { host: '127.0.0.1', port: 0 }, seed: 7 });
    broker = await startEmbeddedBroker('127.0.0.1', 0);
    const logger = pino({ level: 'silent' });
    // Wired as `fieldgate run` wires it.
    status = new StatusSurface({ gateway: () => gateway, logger });
    gateway = startGateway(siteConfig(sim.tcpPort!, broker.url, dir), logger, status.hooks);
    await status.apply({ enabled: true, listen: '127.0.0.1:0', token: TOKEN });
    server = { url: status.url! };
    context = await chromium.launchPersistentContext(join(dir, 'chromium-profile'), {
      executablePath: chromiumPath() ?? '/usr/bin/chromium',
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic', '--no-first-run', '--disable-component-update', '--disable-sync'],
      viewport: { width: 1280, height: 900 },
    });
    page = context.pages()[0] ?? (await context.newPage());
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('response', (r) => {
      if (r.status() >= 400) problems.push(`${r.status()} ${r.url()}`);
    });
    page.on('request', (r) => {
      if (!r.url().startsWith(server.url)) outside.push(r.url());
    });
  }, 60_000);

  afterAll(async () => {
    await context?.close();
    await status?.close();
    await gateway?.stop();
    if (!brokerClosed) await broker?.close();
    await sim?.close();
  });

  const pointValue = (device: string, point: string) =>
    page.locator('.device', { has: page.locator('h3', { hasText: new RegExp(`^${device}$`) }) }).locator('.pt', { has: page.locator('.name', { hasText: new RegExp(`^${point}$`) }) }).locator('.val');

  it('shows live readings that change, the link and the backlog in plain words', async () => {
    await page.goto(`${server.url}/?token=${TOKEN}`);
    await expect.poll(() => page.locator('#live').textContent(), { timeout: 10_000 }).toMatch(/^Live/);
    const pressure = pointValue('pump_house', 'inlet_pressure');
    await expect.poll(() => pressure.textContent(), { timeout: 10_000 }).toMatch(/^\d+\.\d+\s*bar$/);
    const first = await pressure.textContent();
    const seen = new Set([first]);
    await expect.poll(async () => seen.add(await pressure.textContent()).size, { timeout: 15_000, interval: 250 }).toBeGreaterThan(1);
    await expect.poll(() => page.locator('#uplink').textContent(), { timeout: 10_000 }).toMatch(/Link to broker: connected since \d\d:\d\d/);
    expect(await page.locator('#outbox').textContent()).toMatch(/Waiting to send: /);
    expect(await page.locator('.bus h2').first().textContent()).toMatch(/Bus sim.*Modbus TCP.*connected/);
    expect(await page.locator('.device').count()).toBe(3);
    expect(await page.locator('.device .pill').first().textContent()).toBe('answering');
    // Small plots of the last hour are drawn by uPlot.
    await expect.poll(() => page.locator('.spark canvas').count(), { timeout: 10_000 }).toBeGreaterThan(3);
  }, 60_000);

  it('puts a new alarm on top, in red, at once', async () => {
    expect(await page.locator('.no-alarms').textContent()).toBe('No active alarms');
    status.hooks.onAlarm({ state: 'raised', device: 'pump_house', point: 'tank_level', alarm: 'low', type: 'low', severity: 'major', value: 0.42, limit: 0.5, ts: Date.now(), message: 'Tank nearly dry' });
    const alarm = page.locator('#alarms .alarm');
    await expect.poll(() => alarm.count(), { timeout: 3000 }).toBe(1);
    expect(await alarm.textContent()).toMatch(/major\s*Tank nearly dry.*pump_house · tank_level: reading 0\.42 m, low limit 0\.5 m.*Since \d\d:\d\d/);
    const [alarmTop, uplinkTop] = await page.evaluate(() => ['#alarms .alarm', '#uplink'].map((q) => document.querySelector(q)!.getBoundingClientRect().top));
    expect(alarmTop).toBeLessThan(uplinkTop!);
    expect(await alarm.evaluate((e) => getComputedStyle(e).borderTopColor)).toBe('rgb(198, 40, 40)');
    expect(await page.locator('.pt.alarmed .name').textContent()).toBe('tank_level');
    await expect.poll(() => page.title()).toMatch(/^\(1 alarm\) village-water/);
    await page.screenshot({ path: join(OUT, 'status-page.png'), fullPage: true });
  }, 30_000);

  it('says plainly when a unit stops answering and the broker link is lost', async () => {
    sim.setUnitMode(2, 'dead');
    await broker.close();
    brokerClosed = true;
    const house = page.locator('.device', { has: page.locator('h3', { hasText: /^highest_house$/ }) });
    await expect.poll(() => house.locator('.pill').textContent(), { timeout: 15_000 }).toBe('NOT ANSWERING');
    await expect.poll(() => house.locator('.pt .why').textContent(), { timeout: 10_000 }).toMatch(/^Bad reading: timeout after 1000 ms \(last good \d\.\d+ bar, /);
    await expect.poll(() => page.locator('#uplink').textContent(), { timeout: 15_000 }).toMatch(/Link to broker: DOWN for \d+ s.*connection refused.*Readings are kept on the gateway/);
    await expect.poll(() => page.locator('#attention').textContent(), { timeout: 5000 }).toMatch(/bus sim|device highest_house|link to broker down/);
    await page.screenshot({ path: join(OUT, 'status-page-trouble.png'), fullPage: true });
  }, 45_000);

  it('enlarges a plot on click', async () => {
    await pointValue('pump_house', 'inlet_pressure').locator('xpath=..').locator('.spark').click();
    await expect.poll(() => page.locator('#zoom[open] #zoom-plot canvas').count(), { timeout: 5000 }).toBe(1);
    expect(await page.locator('#zoom-title').textContent()).toBe('pump_house · inlet_pressure (bar)');
    await page.screenshot({ path: join(OUT, 'status-page-zoom.png') });
    await page.locator('#zoom-close').click();
  }, 30_000);

  it('fits a phone in one column, and asked nothing of the internet', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await page.waitForTimeout(300);
    const cards = await page.locator('.cards > .card').evaluateAll((els) => els.map((e) => e.getBoundingClientRect().x));
    expect(new Set(cards).size).toBe(1);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect(overflow).toBeLessThanOrEqual(0);
    await page.screenshot({ path: join(OUT, 'status-page-phone.png'), fullPage: true });
    expect(outside).toEqual([]);
    expect(problems).toEqual([]);
  }, 30_000);
});
