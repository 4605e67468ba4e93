/**
 * One language per screen (WORDS-01, WORDS-02, CONSOLE-03) and a clock that follows the service's (SIM-03),
 * in Debian's Chromium against the whole service: a fall's evidence line reads 「卫生间检测到跌倒（80%）」 on
 * the zh-CN screen and "fall detected in bathroom (80%)" on the English one; no badge or figure is clipped on
 * the English screens at the console's widths; with the service clock at ×60 the countdown runs a minute a
 * second.
 */
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Alert } from '../../dispatcher/api/types.ts';
import { ManualClock, ScaledClock } from '../../kernel/clock.ts';
import { instant } from '../../kernel/time.ts';
import { SimDevice } from '../../simulators/device.ts';
import { AT, apiCall, eventually, type Harness, login, startHarness, TEST_PASSWORD } from '../helpers.ts';
import { launchBrowser, loggedInPage, PHONE, WALL } from './browser.ts';

const consoleDir = join(import.meta.dirname, '..', '..', 'console', 'public');
let browser: Browser;
let h: Harness | undefined;
const devices: SimDevice[] = [];

beforeAll(async () => {
  browser = await launchBrowser();
});
afterEach(async () => {
  for (const d of devices.splice(0)) await d.disconnect().catch(() => {});
  await h?.close();
  h = undefined;
});
afterAll(async () => {
  await browser?.close();
});

async function fallIn(h: Harness, clock: ManualClock | ScaledClock): Promise<Alert> {
  const id = h.devices.find((d) => d.homeId === 'home-1-01' && d.kind === 'fall')!;
  const radar = new SimDevice(id, { host: '127.0.0.1', port: h.service.mqttPort }, clock);
  devices.push(radar);
  await radar.connect();
  await radar.send({ type: 'fall', state: 'detected', room: 'bathroom', confidence: 0.8 });
  const token = await login(h.baseUrl, 'dispatcher');
  return eventually(
    async () =>
      (
        await apiCall<{ alerts: Alert[] }>(h.baseUrl, token, 'GET', '/api/alerts?state=open')
      ).body.alerts.find((a) => a.rule === 'FALL'),
    10_000,
    'the FALL alert',
  );
}

/** Badges, tags and figures whose text does not fit the box they are drawn in. */
function clipped(page: Page): Promise<string[]> {
  return page.evaluate(() =>
    [
      ...document.querySelectorAll<HTMLElement>(
        '.sev, .tag, .figure .label, .figure .value, .figure .sub, td.state, td.countdown, nav a, button',
      ),
    ]
      .filter((e) => e.offsetParent !== null && e.clientWidth > 0)
      .filter((e) => e.scrollWidth > e.clientWidth + 1 || e.scrollHeight > e.clientHeight + 1)
      .map((e) => `${e.className || e.tagName}: ${e.innerText.trim()}`),
  );
}

async function english(page: Page): Promise<void> {
  await page.getByRole('button', { name: 'English' }).click();
  await page.waitForFunction(
    () =>
      document.documentElement.innerText.includes('Alert queue') ||
      !!document.querySelector('main.responder'),
  );
}

describe('one language per screen', () => {
  it('reads the evidence in the screen’s language, and clips no badge on the English screens', async () => {
    const clock = new ManualClock(instant(Date.parse(AT.day)));
    h = await startHarness({ clock, consoleDir, env: { SESSION_HOURS: '48' } });
    const fall = await fallIn(h, clock);

    const wall = await loggedInPage(browser, h.baseUrl, 'dispatcher', TEST_PASSWORD, WALL);
    const row = wall.locator(`tr[data-alert-id="${fall.id}"]`);
    await row.waitFor({ timeout: 10_000 });
    await row.focus();
    await wall.keyboard.press('Enter');
    const panel = wall.locator('[data-testid=alert-panel]');
    await panel.locator('li', { hasText: '卫生间检测到跌倒（80%）' }).waitFor({ timeout: 10_000 });
    expect(await panel.innerText()).not.toContain('fall detected');
    await wall.context().close();

    for (const viewport of [WALL, { width: 1366, height: 768 }]) {
      const page = await loggedInPage(browser, h.baseUrl, 'dispatcher', TEST_PASSWORD, viewport);
      await page.waitForSelector('main.dispatch');
      await english(page);
      const r = page.locator(`tr[data-alert-id="${fall.id}"]`);
      await r.waitFor({ timeout: 10_000 });
      await page.locator('[data-testid=accepted-3] .sub', { hasText: '/' }).waitFor();
      expect(await clipped(page), `dispatch screen at ${viewport.width} px`).toEqual([]);
      await r.focus();
      await page.keyboard.press('Enter');
      const p = page.locator('[data-testid=alert-panel]');
      await p.locator('li', { hasText: 'fall detected in bathroom (80%)' }).waitFor({ timeout: 10_000 });
      expect(await clipped(page), `alert panel at ${viewport.width} px`).toEqual([]);
      await page.context().close();
    }

    const phone = await loggedInPage(browser, h.baseUrl, 'g1-worker', TEST_PASSWORD, PHONE);
    await english(phone);
    await phone.locator(`[data-alert-id="${fall.id}"]`).first().waitFor({ timeout: 10_000 });
    expect(await clipped(phone), 'responder page at 360 px').toEqual([]);
    await phone.context().close();
  }, 120_000);

  it('runs the countdown on the service’s clock when it is accelerated (×60: a minute a second)', async () => {
    const clock = new ScaledClock(instant(Date.parse(AT.day)), 60);
    h = await startHarness({ clock, consoleDir, env: { SESSION_HOURS: '48' } });
    const fall = await fallIn(h, clock);
    const wall = await loggedInPage(browser, h.baseUrl, 'dispatcher', TEST_PASSWORD, WALL);
    const countdown = wall.locator(`tr[data-alert-id="${fall.id}"] [data-testid=countdown]`);
    await countdown.waitFor({ timeout: 10_000 });
    // What the row shows against what the service's clock says is left, both read now.
    const check = async () => {
      const shown = (await countdown.innerText()).trim();
      const m = /(\d+):(\d{2})/.exec(shown);
      if (!m) return null;
      const shownLeft = (Number(m[1]) * 60 + Number(m[2])) * 1000;
      const left = fall.onSiteDueAt! - clock.now();
      return { shownLeft, left };
    };
    const first = (await eventually(check, 10_000, 'a countdown'))!;
    // The page's clock runs with the service's: within 2 s of real time (2 min of service time).
    expect(Math.abs(first.shownLeft - first.left)).toBeLessThan(120_000);
    const real = Date.now();
    await expect
      .poll(async () => (await check())?.shownLeft ?? Number.POSITIVE_INFINITY, { timeout: 10_000 })
      .toBeLessThan(first.shownLeft - 3 * 60_000);
    // Three service minutes went by in a few real seconds.
    expect(Date.now() - real).toBeLessThan(8_000);
    await wall.context().close();
  }, 60_000);
});
