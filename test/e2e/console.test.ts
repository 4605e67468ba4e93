/**
 * End to end: a simulated home's fall radar publishes a fall over MQTT and the dispatch console, open in
 * a real headless Chromium, shows the alert in its queue with the SLA countdown, live, without a reload.
 */
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SimDevice } from '../../simulators/device.ts';
import { AT, clockAt, type Harness, startHarness, TEST_PASSWORD } from '../helpers.ts';
import { launchBrowser } from './browser.ts';

// A fixed instant on the injected clock (then real speed), never the hour the suite happens to run at.
const clock = clockAt(AT.night);
let h: Harness;
let browser: Browser;

beforeAll(async () => {
  h = await startHarness({ clock, consoleDir: join(import.meta.dirname, '..', '..', 'console', 'public') });
  browser = await launchBrowser();
});

afterAll(async () => {
  await browser?.close();
  await h?.close();
});

describe('dispatch console in Chromium', () => {
  it('shows a fall published over MQTT in the live queue with its countdown, without a reload', async () => {
    const page = await browser.newPage({ viewport: { width: 1920, height: 1080 } });
    await page.goto(h.baseUrl);
    await page.fill('input[name=username]', 'dispatcher');
    await page.fill('input[name=password]', TEST_PASSWORD);
    await page.click('button[type=submit]');
    await page.waitForSelector('text=告警队列');
    await page.waitForSelector('td.empty');
    // The live connection is up before the fall happens.
    await page.waitForFunction(() => !document.querySelector('[data-testid=offline-banner]'));
    let navigations = 0;
    page.on('framenavigated', () => navigations++);

    const identity = h.devices.find((d) => d.homeId === 'home-1-01' && d.kind === 'fall')!;
    const radar = new SimDevice(identity, { host: '127.0.0.1', port: h.service.mqttPort }, clock);
    await radar.connect();
    await radar.send({ type: 'fall', state: 'detected', room: 'bathroom', confidence: 0.9 });

    const row = page.locator('tr[data-rule=FALL]');
    await row.waitFor({ timeout: 10_000 });
    await expect.poll(() => row.getAttribute('data-state'), { timeout: 10_000 }).toBe('notified');
    expect(await row.locator('td').nth(1).innerText()).toContain('跌倒');
    const first = await row.locator('[data-testid=countdown]').innerText();
    expect(first).toMatch(/^1[45]:\d\d$/);
    // The countdown runs.
    await expect
      .poll(() => row.locator('[data-testid=countdown]').innerText(), { timeout: 5000 })
      .not.toBe(first);
    expect(navigations).toBe(0);
    await radar.disconnect();
    await page.close();
  });

  it('says plainly when the live connection is lost, and catches up when it returns', async () => {
    const page = await browser.newPage();
    await page.goto(h.baseUrl);
    await page.fill('input[name=username]', 'dispatcher');
    await page.fill('input[name=password]', TEST_PASSWORD);
    await page.click('button[type=submit]');
    await page.waitForSelector('text=告警队列');
    await page.waitForFunction(() => !document.querySelector('[data-testid=offline-banner]'));
    const before = await page.locator('tr.alert').count();

    // The service goes down; while it is down the page must say so.
    await h.restart(async () => {
      await page.waitForSelector('[data-testid=offline-banner]', { timeout: 10_000 });
    });
    // Back up: an alert raised now arrives on the page without a reload.
    const identity = h.devices.find((d) => d.homeId === 'home-2-01' && d.kind === 'fall')!;
    const radar = new SimDevice(identity, { host: '127.0.0.1', port: h.service.mqttPort }, clock);
    await radar.connect();
    await radar.send({ type: 'fall', state: 'detected' });
    await page.waitForFunction(() => !document.querySelector('[data-testid=offline-banner]'), null, {
      timeout: 15_000,
    });
    await page.locator('tr.alert').nth(before).waitFor({ timeout: 15_000 });
    expect(await page.locator('tr.alert').count()).toBe(before + 1);
    await radar.disconnect();
    await page.close();
  });
});
