/**
 * The dispatch screen says what matters in words (SPEC §6, §8), in Debian's Chromium against the whole
 * service on a manual clock at a fixed instant: a burst of 20 device disconnects stays in the maintenance
 * panel (the queue counts them and links there) and never pushes a fall down; at 12 minutes the fall's row
 * says "SLA at risk" in words, at 15 that it breached, when, and which supervisor was told; the supervisor's
 * own screen shows the breach as a notice they were sent. zh-CN on the wall, English on the supervisor's.
 */
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Alert, MaintenanceQueue } from '../../dispatcher/api/types.ts';
import { ManualClock } from '../../kernel/clock.ts';
import { instant, minutes, seconds } from '../../kernel/time.ts';
import { SimDevice } from '../../simulators/device.ts';
import { AT, apiCall, eventually, type Harness, login, startHarness, TEST_PASSWORD } from '../helpers.ts';
import { launchBrowser, loggedInPage, WALL } from './browser.ts';

const consoleDir = join(import.meta.dirname, '..', '..', 'console', 'public');
let browser: Browser;
let h: Harness;
const devices: SimDevice[] = [];

beforeAll(async () => {
  browser = await launchBrowser();
});
afterAll(async () => {
  for (const d of devices) await d.disconnect().catch(() => {});
  await browser?.close();
  await h?.close();
});

describe('the dispatch screen in words', () => {
  it('keeps 20 device disconnects out of the queue, and says at risk, breached and who was told', async () => {
    const clock = new ManualClock(instant(Date.parse(AT.day)));
    // 20 homes; sessions outlast the clock's jumps.
    h = await startHarness({ clock, consoleDir, grids: 2, perGrid: 10, env: { SESSION_HOURS: '48' } });
    const broker = { host: '127.0.0.1', port: h.service.mqttPort };
    const token = await login(h.baseUrl, 'dispatcher');

    const wall = await loggedInPage(browser, h.baseUrl, 'dispatcher', TEST_PASSWORD, WALL);
    await wall.waitForSelector('td.empty');
    await wall.waitForFunction(() => !document.querySelector('[data-testid=offline-banner]'));
    const sup = await loggedInPage(browser, h.baseUrl, 'supervisor', TEST_PASSWORD, WALL);
    await sup.waitForSelector('main.dispatch');
    await sup.getByRole('button', { name: 'English' }).click();
    await sup.locator('h2', { hasText: 'Alert queue' }).waitFor();
    await sup.waitForFunction(() => !document.querySelector('[data-testid=offline-banner]'));

    // The fall first, then every home's door sensor loses its connection (its will: DEVICE_OFFLINE).
    const radarId = h.devices.find((d) => d.homeId === 'home-1-01' && d.kind === 'fall')!;
    const radar = new SimDevice(radarId, broker, clock);
    devices.push(radar);
    await radar.connect();
    await radar.send({ type: 'fall', state: 'detected', room: 'bathroom' });
    const fall = await eventually(
      async () =>
        (
          await apiCall<{ alerts: Alert[] }>(h.baseUrl, token, 'GET', '/api/alerts?state=open')
        ).body.alerts.find((a) => a.rule === 'FALL'),
      10_000,
      'the FALL alert',
    );
    const doors = h.devices.filter((d) => d.kind === 'door');
    expect(doors).toHaveLength(20);
    for (const id of doors) {
      const door = new SimDevice(id, broker, clock);
      await door.connect();
      await door.drop();
    }
    const technical = async () =>
      (await apiCall<MaintenanceQueue>(h.baseUrl, token, 'GET', '/api/maintenance')).body.alerts.length;
    await eventually(async () => (await technical()) === 20, 20_000, '20 DEVICE_OFFLINE alerts');

    // The queue holds the fall alone; the 20 are counted, with a link to the maintenance panel, which has them.
    const count = wall.locator('[data-testid=technical-count]');
    await expect.poll(() => count.getAttribute('data-count'), { timeout: 10_000 }).toBe('20');
    expect(await count.innerText()).toContain('设备告警 20');
    expect(await count.innerText()).toContain('见维护队列');
    expect(await wall.locator('table.alerts tr[data-rule=DEVICE_OFFLINE]').count()).toBe(0);
    expect(await wall.locator('table.alerts tbody tr').count()).toBe(1);
    expect(await wall.locator('table.alerts tbody tr').first().getAttribute('data-rule')).toBe('FALL');
    await wall.locator('[data-testid=maintenance] li[data-alert-id]').first().waitFor();
    await count.click();
    expect(await wall.evaluate(() => document.activeElement?.getAttribute('data-testid'))).toBe(
      'maintenance',
    );
    const row = wall.locator(`tr[data-alert-id="${fall.id}"]`);
    expect(await row.locator('[data-testid=sla-status]').count()).toBe(0);

    // 12 minutes, nobody on site: "at risk" in words on the row, on both screens.
    clock.advanceTo(instant(fall.raisedAt + minutes(12)));
    const words = row.locator('[data-testid=sla-status]');
    await expect.poll(() => words.getAttribute('data-kind'), { timeout: 10_000 }).toBe('at-risk');
    expect(await words.innerText()).toContain('即将超时：12分钟仍无人到场');
    const supRow = sup.locator(`tr[data-alert-id="${fall.id}"] [data-testid=sla-status]`);
    await expect.poll(() => supRow.getAttribute('data-kind'), { timeout: 10_000 }).toBe('at-risk');
    expect(await supRow.innerText()).toContain('SLA at risk: nobody on site after 12 min');

    // 15 minutes: breached, when, and that the supervisor was told — by name.
    clock.advanceTo(instant(fall.raisedAt + minutes(15) + seconds(1)));
    await expect.poll(() => words.getAttribute('data-kind'), { timeout: 10_000 }).toBe('breached');
    const supervisor = h.plan.staff.find((s) => s.id === 'supervisor-1')!.name;
    const breachedAt = new Intl.DateTimeFormat('zh-CN', {
      timeZone: 'Asia/Shanghai',
      hour: '2-digit',
      minute: '2-digit',
    }).format(fall.raisedAt + minutes(15));
    const text = await words.innerText();
    expect(text).toContain('已超时：15分钟内无人到场');
    expect(text).toContain(`超时于 ${breachedAt}`);
    expect(text).toContain(`已通知主管: ${supervisor}`);
    const stored = (await apiCall<{ alert: Alert }>(h.baseUrl, token, 'GET', `/api/alerts/${fall.id}`)).body
      .alert;
    expect(stored.supervisorsNotified).toEqual(['supervisor-1']);
    expect(stored.slaBreachedAt).toBe(fall.raisedAt + minutes(15));

    // The wall shows the breach as a notice; the supervisor's screen says they were notified, in English.
    await wall.locator(`[data-testid=breach-notice][data-alert-id="${fall.id}"]`).waitFor();
    expect(await wall.locator('[data-testid=supervisor-notice]').count()).toBe(0);
    const notice = sup.locator(`[data-testid=breach-notice][data-alert-id="${fall.id}"]`);
    await notice.locator('[data-testid=supervisor-notice]').waitFor({ timeout: 10_000 });
    const supText = await notice.innerText();
    expect(supText).toContain('SLA breached: nobody on site within 15 min');
    expect(supText).toContain(`supervisor told: ${supervisor}`);
    expect(supText).toContain('you were notified');
    await wall.context().close();
    await sup.context().close();
  }, 120_000);
});
