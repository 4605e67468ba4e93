/**
 * The console's main journeys in Debian's Chromium (CONSOLE-01, CONSOLE-02, SEC-01): each role sees its pages
 * and no others; a fall arrives live on the dispatch screen with its countdown, the responder on duty
 * accepts it on the phone page in a second browser context and the dispatch screen follows; the
 * household file opens with its contacts, audited access notes and the activity chart; an admin
 * provisions a device whose one-time secret connects over MQTT; a responder cannot open another grid's
 * household. The whole service runs for real on loopback; nothing of ours is mocked.
 */
import { join } from 'node:path';
import mqtt from 'mqtt';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Alert } from '../../dispatcher/api/types.ts';
import { type Clock, ManualClock } from '../../kernel/clock.ts';
import { instant, minutes, seconds } from '../../kernel/time.ts';
import { SimDevice } from '../../simulators/device.ts';
import {
  AT,
  apiCall,
  clockAt,
  eventually,
  type Harness,
  login,
  startHarness,
  TEST_PASSWORD,
} from '../helpers.ts';
import { BACKENDS } from '../store-factory.ts';
import { launchBrowser } from './browser.ts';

const pgBackend = BACKENDS.find((b) => b.backend === 'postgres')!;

const consoleDir = join(import.meta.dirname, '..', '..', 'console', 'public');
/** test/helpers.ts starts the service with this ADMIN_PASSWORD. */
const ADMIN_PASSWORD = 'admin-password-365';
const WALL = { width: 1920, height: 1080 };
const PHONE = { width: 360, height: 740 };
let browser: Browser;
const contexts: BrowserContext[] = [];

beforeAll(async () => {
  browser = await launchBrowser();
});
afterAll(async () => {
  for (const c of contexts) await c.close().catch(() => {});
  await browser?.close();
});

async function loggedIn(
  h: Harness,
  username: string,
  viewport = WALL,
  password = TEST_PASSWORD,
): Promise<Page> {
  const context = await browser.newContext({ viewport });
  contexts.push(context);
  const page = await context.newPage();
  await page.goto(h.baseUrl);
  await page.fill('input[name=username]', username);
  await page.fill('input[name=password]', password);
  await page.click('button[type=submit]');
  await page.waitForSelector('main');
  return page;
}

const usernameOf = (h: Harness, staffId: string) => h.plan.staff.find((s) => s.id === staffId)!.username;

/**
 * A fall from the radar to the wall screen and the responder's phone, and back, live; then the household
 * file. Run on each backend (SPEC §9: the same service on SQLite and PostgreSQL).
 */
async function fallJourney(h: Harness, clock: Clock): Promise<void> {
  const wall = await loggedIn(h, 'dispatcher');
  await wall.waitForSelector('td.empty');
  await wall.waitForFunction(() => !document.querySelector('[data-testid=offline-banner]'));
  // Browsers block autoplay: one click enables the alarm for each new critical alert.
  const sound = wall.locator('[data-testid=sound]');
  await sound.click();
  expect(await sound.getAttribute('aria-pressed')).toBe('true');

  // Where the fixed parts of the screen are before anything arrives.
  const layout = () =>
    wall.evaluate(() =>
      ['.figures', 'table.alerts thead', '.side'].map((sel) => {
        const r = document.querySelector(sel)!.getBoundingClientRect();
        return [r.x, r.y, r.width, r.height];
      }),
    );
  await wall.locator('.side .duty-grid').first().waitFor();
  await wall.locator('.side [data-testid=device-health] .health-counts').waitFor();
  await wall.locator('[data-testid=accepted-3] .sub', { hasText: '/' }).waitFor();
  const before = await layout();

  const identity = h.devices.find((d) => d.homeId === 'home-1-01' && d.kind === 'fall')!;
  const radar = new SimDevice(identity, { host: '127.0.0.1', port: h.service.mqttPort }, clock);
  await radar.connect();
  await radar.send({ type: 'fall', state: 'detected', room: 'bathroom', confidence: 0.9 });

  const row = wall.locator('tr[data-rule=FALL]');
  await row.waitFor({ timeout: 10_000 });
  // No layout jumps: the figures, the queue's header and the side panels stay where they were.
  expect(await layout()).toEqual(before);
  expect(await row.locator('[data-testid=countdown]').innerText()).toMatch(/^1[45]:\d\d$/);
  await expect.poll(() => sound.getAttribute('data-beeps'), { timeout: 5000 }).toBe('1');
  const alertId = (await row.getAttribute('data-alert-id'))!;
  const token = await login(h.baseUrl, 'dispatcher');
  const alert = (await apiCall<{ alert: Alert }>(h.baseUrl, token, 'GET', `/api/alerts/${alertId}`)).body
    .alert;
  const primary = alert.responders[0]!;

  // The responder on duty, on a phone-sized second browser.
  const phone = await loggedIn(h, usernameOf(h, primary), PHONE);
  const card = phone.locator(`article[data-alert-id="${alertId}"]`);
  await card.waitFor({ timeout: 10_000 });
  await card.locator('[data-testid=address]').filter({ hasNotText: 'home-1-01' }).waitFor();
  expect(await card.locator('a[href^="tel:"]').count()).toBeGreaterThanOrEqual(2);
  // Built for 360 px: nothing sticks out sideways.
  expect(await phone.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(360);
  await card.getByRole('button', { name: '接单' }).click();

  // The wall screen follows without a reload.
  await expect.poll(() => row.getAttribute('data-state'), { timeout: 10_000 }).toBe('accepted');
  const name = h.plan.staff.find((s) => s.id === primary)!.name;
  expect(await row.locator('td.assignee').innerText()).toBe(name);

  // Still there after a reload of the phone page.
  await phone.reload();
  await card.waitFor();
  expect(await card.getAttribute('data-state')).toBe('accepted');

  // The dispatcher adds a note from the alert panel; it shows in the history.
  // By keyboard: the row takes focus and Enter opens the alert's panel.
  await row.focus();
  await wall.keyboard.press('Enter');
  const panel = wall.locator('[data-testid=alert-panel]');
  // ESC-03: the ladder the alert runs, frozen when it was raised: its promise and one line per step.
  const ladder = panel.locator('[data-testid=alert-ladder]');
  await ladder.locator('summary').click();
  expect(await ladder.locator('summary').innerText()).toBe('承诺：3 分钟内接单，15 分钟内上门');
  expect(await ladder.locator('li').allInnerTexts()).toEqual([
    '0 分钟 · 通知首位响应人',
    '3 分钟 · 未接单：通知下一位响应人，并再次通知首位',
    '6 分钟 · 未接单：通知本网格全部在岗响应人，调度屏标记',
    '12 分钟 · 未到达：调度屏提示即将超时',
    '15 分钟 · 未到达：记为超时，通知主管',
  ]);
  await panel.locator('[data-action=note]').click();
  await panel.locator('textarea[name=text]').fill('已电话联系家属');
  await panel.getByRole('button', { name: '保存' }).click();
  await panel.locator('[data-testid=history]', { hasText: '已电话联系家属' }).waitFor({ timeout: 10_000 });
  await wall.keyboard.press('Escape');
  await panel.waitFor({ state: 'detached' });

  await card.getByRole('button', { name: '出发' }).click();
  await expect.poll(() => row.getAttribute('data-state'), { timeout: 10_000 }).toBe('en_route');
  await card.getByRole('button', { name: '到达' }).click();
  await expect.poll(() => row.getAttribute('data-state'), { timeout: 10_000 }).toBe('on_site');
  await card.locator('select[name=outcome]').selectOption('assisted');
  await card.locator('textarea[name=note]').fill('老人在卫生间滑倒，已扶起，无外伤');
  await card.getByRole('button', { name: '处置完成' }).click();
  await row.waitFor({ state: 'detached', timeout: 10_000 });
  await card.waitFor({ state: 'detached', timeout: 10_000 });
  await radar.disconnect();

  // The household file: contacts with call links, access notes behind a click (audited), the
  // activity chart with the fall on it, the visit note in the past alerts.
  const auditBefore = (await h.store.listAudit(1000)).filter(
    (e) => e.action === 'household.read_access_notes',
  ).length;
  await wall.locator('[data-testid=open-count]').waitFor();
  await radar.connect();
  await radar.send({ type: 'fall', state: 'detected', room: 'bathroom' });
  await wall.locator('tr[data-rule=FALL] [data-testid=open-household]').click();
  const drawer = wall.locator('[data-testid=household-drawer]');
  // The file arrives after the drawer opens; its contacts and devices come in one render.
  await drawer.locator('[data-testid=contacts] a[href^="tel:"]').first().waitFor();
  expect(await drawer.locator('[data-testid=contacts] a[href^="tel:"]').count()).toBe(1);
  expect(await drawer.locator('[data-testid=access-notes]').count()).toBe(0);
  await drawer.locator('[data-testid=show-access-notes]').click();
  const notes = await drawer.locator('[data-testid=access-notes]').innerText();
  const home = h.plan.households.find((x) => x.id === 'home-1-01')!;
  expect(notes).toBe(home.accessNotes);
  const auditAfter = (await h.store.listAudit(1000)).filter(
    (e) => e.action === 'household.read_access_notes',
  );
  expect(auditAfter.length).toBe(auditBefore + 1);
  await drawer.locator('[data-testid=timeline-chart] circle[data-rule=FALL]').first().waitFor();
  await drawer.locator('[data-testid=past-alerts]', { hasText: '无外伤' }).waitFor();
  // The learned routine: this home has less than 14 days of data, and the file says so.
  await drawer.locator('[data-testid=baseline]', { hasText: '学习中' }).waitFor();
  expect(await drawer.locator('[data-testid=devices] tr').count()).toBe(
    h.devices.filter((d) => d.homeId === 'home-1-01').length,
  );
  await radar.disconnect();
}

describe('the console in Chromium, from a fixed instant in the day shift', () => {
  // Never the hour the suite happens to run at: a fixed instant on the injected clock, then real speed.
  const clock = clockAt(AT.day);
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ clock, consoleDir });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('shows each role its own pages and no others, and logs out', async () => {
    const nav = async (page: Page) =>
      page.locator('nav.tabs a').evaluateAll((as) => as.map((a) => a.getAttribute('data-page')));

    const dispatcher = await loggedIn(h, 'dispatcher');
    await dispatcher.waitForSelector('main.dispatch');
    expect(await nav(dispatcher)).toEqual([]);
    await dispatcher.goto(`${h.baseUrl}/#/admin/devices`);
    await dispatcher.waitForSelector('main.dispatch');
    expect(await dispatcher.locator('main.admin').count()).toBe(0);

    // Chinese by default, English one click away (remembered by the browser).
    expect(await dispatcher.locator('h2', { hasText: '告警队列' }).count()).toBe(1);
    await dispatcher.getByRole('button', { name: 'English' }).click();
    await dispatcher.locator('h2', { hasText: 'Alert queue' }).waitFor();
    await dispatcher.reload();
    await dispatcher.locator('h2', { hasText: 'Alert queue' }).waitFor();

    const supervisor = await loggedIn(h, 'supervisor');
    await supervisor.waitForSelector('main.dispatch');
    expect(await nav(supervisor)).toEqual(['dispatch', 'reports']);

    const admin = await loggedIn(h, 'admin', WALL, ADMIN_PASSWORD);
    expect(await nav(admin)).toEqual(['dispatch', 'reports', 'admin']);

    const worker = await loggedIn(h, 'g1-worker', PHONE);
    await worker.waitForSelector('main.responder');
    expect(await nav(worker)).toEqual([]);
    await worker.goto(`${h.baseUrl}/#/dispatch`);
    await worker.waitForSelector('main.responder');

    await worker.click('[data-testid=logout]');
    await worker.waitForSelector('input[name=username]');
    await worker.reload();
    await worker.waitForSelector('input[name=username]');
    expect(await worker.evaluate(async () => (await fetch('/api/session')).status)).toBe(401);
  });

  it('carries a fall from the radar to the wall screen and the responder phone, and back, live', async () => {
    await fallJourney(h, clock);
  });

  it("keeps a responder out of another grid's household file", async () => {
    const worker = await loggedIn(h, 'g1-worker', PHONE);
    await worker.waitForSelector('main.responder');
    const status = (path: string) => worker.evaluate(async (p) => (await fetch(p)).status, path);
    expect(await status('/api/households/home-1-02')).toBe(200);
    expect(await status('/api/households/home-2-01')).toBe(404);
    expect(await status('/api/households/home-2-01?include=accessNotes')).toBe(404);
    expect(await status('/api/households/home-2-01/timeline')).toBe(404);
    expect(await status('/api/reports/sla')).toBe(403);
  });

  it('lets an admin provision a device and shows its secret once, with an MQTT example that connects', async () => {
    const admin = await loggedIn(h, 'admin', WALL, ADMIN_PASSWORD);
    await admin.goto(`${h.baseUrl}/#/admin/devices`);
    await admin.waitForSelector('main.admin');
    await admin.locator('select[name=home]').selectOption('home-2-02');
    await admin.locator('[data-testid=device-list] tr[data-device-id]').first().waitFor();
    const form = admin.locator('[data-testid=provision-form]');
    await form.locator('input[name=id]').fill('home-2-02-button');
    await form.locator('select[name=kind]').selectOption('button');
    // SPEC §3: the room is chosen from the vocabulary, shown in the person's language.
    expect(await form.locator('select[name=room] option').allInnerTexts()).toEqual([
      '卫生间',
      '卧室',
      '厨房',
      '客厅',
      '入户门',
      '其他',
    ]);
    await form.locator('select[name=room]').selectOption('bedroom');
    await form.getByRole('button').click();
    const secret = await admin.locator('[data-testid=secret]').innerText();
    expect(secret.length).toBeGreaterThanOrEqual(16);
    const example = await admin.locator('[data-testid=mqtt-example]').innerText();
    expect(example).toContain('g365/v1/homes/home-2-02/devices/home-2-02-button/events');
    expect(example).toContain(secret);
    // The service's real MQTT port (an OS-chosen one here), not 1883 whatever MQTT_PORT says.
    expect(example).toContain(` -p ${h.service.mqttPort} `);
    await admin.locator('[data-testid=device-list] tr[data-device-id=home-2-02-button]').waitFor();
    expect(await h.store.getDeviceState('home-2-02-button')).toMatchObject({ room: 'bedroom' });

    // The secret works: the new device connects with it.
    const client = await mqtt.connectAsync({
      host: '127.0.0.1',
      port: h.service.mqttPort,
      protocolVersion: 4,
      clientId: 'home-2-02-button',
      username: 'home-2-02-button',
      password: secret,
      reconnectPeriod: 0,
    });
    expect(client.connected).toBe(true);
    await client.endAsync();

    // Shown once: after a reload it is gone and the API never returns it.
    await admin.reload();
    await admin.waitForSelector('main.admin');
    expect(await admin.locator('[data-testid=secret]').count()).toBe(0);
    expect(await admin.content()).not.toContain(secret);
  });

  it('shows the SLA report with charts and exports it as CSV', async () => {
    const sup = await loggedIn(h, 'supervisor');
    await sup.click('a[data-page=reports]');
    await sup.waitForSelector('main.reports svg.bars');
    const share = await sup.locator('[data-testid=total-accepted-share]').innerText();
    expect(share).toMatch(/^\d+%$/);
    // ESC-03: the promise the figures were measured against.
    expect(await sup.locator('[data-testid=report-promises]').innerText()).toContain(
      '承诺：3 分钟内接单，15 分钟内上门',
    );
    const href = (await sup.locator('[data-testid=csv]').getAttribute('href'))!;
    const csv = await sup.evaluate(async (u) => {
      const r = await fetch(u);
      return { type: r.headers.get('content-type'), text: await r.text() };
    }, href);
    expect(csv.type).toContain('text/csv');
    expect(csv.text).toContain('section,key,label,alerts,accepted_within_3min');
    expect(csv.text).toMatch(/\r\ngrid,grid-1,/);
  });
});

describe('the countdown colours, on a manual clock', () => {
  it('turns amber at 12 minutes and red at 15', async () => {
    // Starts at the real time: the browser drops a session cookie whose expiry is already past.
    // A fixed instant (in the future: the browser drops a session cookie whose expiry is already past).
    const clock = new ManualClock(instant(Date.parse(AT.night)));
    const h = await startHarness({ clock, consoleDir });
    try {
      const identity = h.devices.find((d) => d.homeId === 'home-2-01' && d.kind === 'fall')!;
      const radar = new SimDevice(identity, { host: '127.0.0.1', port: h.service.mqttPort }, clock);
      await radar.connect();
      await radar.send({ type: 'fall', state: 'detected' });
      const token = await login(h.baseUrl, 'dispatcher');
      await eventually(async () => {
        const r = await apiCall<{ alerts: Alert[] }>(h.baseUrl, token, 'GET', '/api/alerts?state=open');
        return r.body.alerts.length === 1;
      });
      // 11 min 50 s after the raise the page shows no colour; the page's clock follows the server's.
      clock.advance(seconds(11 * 60 + 50));
      const page = await loggedIn(h, 'dispatcher');
      const cd = page.locator('tr[data-rule=FALL] [data-testid=countdown]');
      await cd.waitFor();
      expect(await cd.getAttribute('data-tone')).toBe('');
      await expect.poll(() => cd.getAttribute('data-tone'), { timeout: 20_000 }).toBe('amber');
      // Past 15 minutes the service marks the breach and the row turns red.
      clock.advance(minutes(4));
      await expect.poll(() => cd.getAttribute('data-tone'), { timeout: 10_000 }).toBe('red');
      await radar.disconnect();
    } finally {
      await h.close();
    }
  }, 90_000);
});

describe.skipIf(pgBackend.skip)(`the fall journey in Chromium on ${pgBackend.name}`, () => {
  const clock = clockAt(AT.day);
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ clock, consoleDir, backend: 'postgres' });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('carries a fall from the radar to the wall screen and the responder phone, and back, live', async () => {
    await fallJourney(h, clock);
  });
});
