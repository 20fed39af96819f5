/**
 * The tools on a phone (Chromium at 390 px, playwright-core) against a real gateway and pymodbus: the page
 * opened with ?token= still asks for the token before it offers any tool; typed, it is kept in the tab's
 * sessionStorage and sent only in a header (no request URL carries it). Then a write lands and a refusal is
 * shown in the guard's words, an alarm is acknowledged, a float is read and a scan finds the unit. Without
 * status.token the page offers no tool and says why. Leaves screenshots in test-output/.
 */
import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configSchema } from '../src/config/schema.js';
import { startGateway, type Gateway } from '../src/gateway.js';
import { ModbusLink } from '../src/sources/modbus/link.js';
import { StatusSurface } from '../src/status/surface.js';
import { chromiumPath, needPeers, startPymodbus, tempDir, type PymodbusPeer } from './helpers/peers.js';

const ROOT = new URL('..', import.meta.url).pathname;
const OUT = join(ROOT, 'test-output');
const DOC_IMAGES = process.env.FIELDGATE_DOC_IMAGES ? join(ROOT, 'docs', 'images') : undefined;
const TOKEN = 'pump-house-tools-9';
const PHONE = { width: 390, height: 844 };

const skip = needPeers('chromium', 'pymodbus');

describe.skipIf(skip)('the tools on a phone, in Chromium', () => {
  let device: PymodbusPeer;
  let gateway: Gateway;
  let status: StatusSurface;
  let open: StatusSurface;
  let context: BrowserContext;
  let page: Page;
  const requests: string[] = [];
  const problems: string[] = [];

  async function register(address: number): Promise<number> {
    const l = new ModbusLink({ transport: 'tcp', host: '127.0.0.1', port: device.port! }, 1000);
    await l.open();
    try {
      return ((await l.read(1, 3, address, 1)) as number[])[0]!;
    } finally {
      await l.close();
    }
  }
  const shoot = async (name: string) => {
    const path = join(OUT, `status-${name}.png`);
    await page.locator('#tools').screenshot({ path });
    if (DOC_IMAGES) copyFileSync(path, join(DOC_IMAGES, `status-${name}.png`));
  };

  beforeAll(async () => {
    mkdirSync(OUT, { recursive: true });
    device = await startPymodbus({ holding: [0, 0, 0, 0, 0x4148, 0, 0, 0, 0, 0, 0, 0] });
    const dir = tempDir('status-tools-browser');
    const logger = pino({ level: 'silent' });
    status = new StatusSurface({ gateway: () => gateway, logger });
    open = new StatusSurface({ gateway: () => gateway, logger });
    gateway = startGateway(configSchema.parse({
      gateway: { id: 'pump-house', dataDir: join(dir, 'data'), clock: { trust: 'always' } },
      buses: [{ id: 'plc', transport: 'tcp', host: '127.0.0.1', port: device.port, timeoutMs: 500 }],
      devices: [{
        id: 'pump1', bus: 'plc', unit: 1, pollIntervalMs: 250,
        points: [
          { id: 'level', fc: 3, address: 0, type: 'uint16', unit: 'cm', alarms: [{ type: 'high', limit: 50, latch: true, message: 'Tank overflowing' }] },
          { id: 'setpoint', fc: 3, address: 10, type: 'uint16', scale: 0.01, unit: 'bar', write: { min: 1.5, max: 4.5 } },
        ],
      }],
    }), logger, status.hooks);
    await status.apply({ enabled: true, listen: '127.0.0.1:0', token: TOKEN });
    await open.apply({ enabled: true, listen: '127.0.0.1:0' });
    context = await chromium.launchPersistentContext(join(dir, 'chromium-profile'), {
      executablePath: chromiumPath() ?? '/usr/bin/chromium',
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic', '--no-first-run', '--disable-component-update', '--disable-sync'],
      viewport: PHONE,
      hasTouch: true,
    });
    page = context.pages()[0] ?? (await context.newPage());
    page.on('request', (r) => requests.push(r.url()));
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  }, 60_000);

  afterAll(async () => {
    await context?.close();
    await open?.close();
    await status?.close();
    await gateway?.stop();
    await device?.stop();
  });

  it('asks for the token even when the page was opened with it, and keeps it out of every URL', async () => {
    await page.goto(`${status.url}/?token=${TOKEN}`);
    await page.waitForFunction(() => document.querySelector('#live')?.textContent?.startsWith('Live'), undefined, { timeout: 15_000 });
    const tools = page.locator('#tools');
    await expect.poll(() => tools.locator('#tools-token').count()).toBe(1);
    expect(await tools.locator('form.write, form.read, form.scan, .alarm-act').count()).toBe(0);
    await tools.locator('#tools-token').fill('not-the-token');
    await tools.getByRole('button', { name: 'Unlock the tools' }).click();
    await expect.poll(() => tools.locator('.result.bad').textContent()).toMatch(/not accepted/);
    await tools.locator('#tools-token').fill(TOKEN);
    await tools.locator('#tools-by').fill('Dana');
    await tools.getByRole('button', { name: 'Unlock the tools' }).click();
    await tools.locator('form.write').waitFor();
    expect(await page.evaluate(() => sessionStorage.getItem('fieldgate.tools.token'))).toBe(TOKEN);
    const toolUrls = requests.filter((u) => u.includes('/api/tools/'));
    expect(toolUrls.length).toBeGreaterThan(0);
    expect(toolUrls.filter((u) => u.includes('token'))).toEqual([]);
  });

  it('writes a point and shows a refusal in the guard\'s words', async () => {
    const form = page.locator('form.write[data-point="pump1.setpoint"]');
    await form.locator('input[name=value]').fill('3.2');
    await form.getByRole('button', { name: 'Write' }).click();
    await expect.poll(() => form.locator('.result').textContent()).toBe('Done: wrote 3.2 bar, read back 3.2 bar');
    expect(await register(10)).toBe(320);
    await form.locator('input[name=value]').fill('9');
    // The browser's own range check is bypassed: the guard is what refuses.
    await form.evaluate((f) => (f as HTMLFormElement).setAttribute('novalidate', ''));
    await form.getByRole('button', { name: 'Write' }).click();
    await expect.poll(() => form.locator('.result').textContent()).toBe('Refused: 9 bar is above the maximum 4.5 bar');
    expect(await register(10)).toBe(320);
  });

  it('acknowledges an alarm from the page', async () => {
    await device.set('holding', 0, [60]);
    const row = page.locator('.alarm-act[data-alarm="pump1.level.high"]');
    await row.waitFor({ timeout: 15_000 });
    await row.locator('input[aria-label=note]').fill('crew on the way');
    await row.getByRole('button', { name: 'Acknowledge' }).click();
    await expect.poll(() => row.locator('.result').textContent()).toBe('Done');
    expect(gateway.processor.alarmStates().find((a) => a.point === 'level')!.state).toBe('acknowledged');
    await expect.poll(() => page.locator('.alarm-act[data-alarm="pump1.level.high"] .what').textContent()).toMatch(/acknowledged/);
    await shoot('tools-phone');
    await device.set('holding', 0, [0]);
  });

  it('reads a float and scans the bus', async () => {
    const read = page.locator('form.read');
    await read.locator('input[name=address]').fill('4');
    await read.getByRole('button', { name: 'Read' }).click();
    await expect.poll(() => read.locator('td.val').first().textContent()).toBe('12.5');
    expect(await read.locator('.result').textContent()).toMatch(/0x4148 0x0000/);
    const scan = page.locator('form.scan');
    await scan.locator('input[name=to]').fill('3');
    await scan.locator('input[name=timeoutMs]').fill('100');
    await scan.getByRole('button', { name: 'Scan' }).click();
    await expect.poll(() => scan.locator('.scan-progress p').first().textContent(), { timeout: 15_000 }).toBe('Done: 3 of 3 units asked, 1 answered');
    expect(await scan.locator('ul.found li').allTextContents()).toEqual([expect.stringMatching(/^unit 1: answers: \d+ at 0 \(\d+ ms\)$/)]);
    await shoot('tools-read-scan-phone');
    // One column at 390 px: nothing wider than the screen.
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(PHONE.width);
    expect(requests.filter((u) => u.includes('/api/tools/') && u.includes('token'))).toEqual([]);
    expect(problems).toEqual([]);
  });

  it('offers no tool without status.token, and says so', async () => {
    await page.goto(`${open.url}/`);
    await expect.poll(() => page.locator('#tools-off').textContent()).toMatch(/only when the gateway has an access token: set status.token/);
    expect(await page.locator('#tools input, #tools button, #tools select').count()).toBe(0);
  });
});
