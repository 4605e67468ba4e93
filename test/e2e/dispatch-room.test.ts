/**
 * The dispatch room's warnings in Debian's Chromium (SPEC §4, §6, §7, §8, §9): a notification channel that
 * keeps failing, grids with nobody on duty before and at a shift, the handover list at the shift change
 * (on the wall screen and on the incoming responder's phone), a door opening after "en route", and the
 * maintenance queue for technical alerts, and the edge's faults (free space low, InfluxDB away). The whole service runs for real on a ManualClock, so each shift
 * edge happens exactly when the test moves the clock.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { DateTime } from 'luxon';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Alert, HandoverReport } from '../../dispatcher/api/types.ts';
import { nextShift } from '../../dispatcher/routing/shifts.ts';
import { ManualClock } from '../../kernel/clock.ts';
import { instant, minutes, seconds } from '../../kernel/time.ts';
import { SimDevice } from '../../simulators/device.ts';
import { apiCall, eventually, type Harness, login, startHarness, TEST_PASSWORD } from '../helpers.ts';
import { launchBrowser, loggedInPage, PHONE, WALL } from './browser.ts';

const consoleDir = join(import.meta.dirname, '..', '..', 'console', 'public');
const ZONE = 'Asia/Shanghai';
let browser: Browser;
const closers: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  browser = await launchBrowser();
});
afterAll(async () => {
  for (const c of closers.reverse()) await c().catch(() => {});
  await browser?.close();
});

/** A webhook receiver that answers 500 to everything: the channel keeps failing. */
async function brokenWebhook(): Promise<string> {
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.statusCode = 500;
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  closers.push(() => new Promise((r) => server.close(r)));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
}

async function device(h: Harness, clock: ManualClock, homeId: string, kind: string): Promise<SimDevice> {
  const identity = h.devices.find((d) => d.homeId === homeId && d.kind === kind)!;
  const dev = new SimDevice(identity, { host: '127.0.0.1', port: h.service.mqttPort }, clock);
  await dev.connect();
  closers.push(() => dev.disconnect());
  return dev;
}

const usernameOf = (h: Harness, staffId: string) => h.plan.staff.find((s) => s.id === staffId)!.username;

describe('the dispatch room warnings, on a manual clock', () => {
  it('shows a failing channel, unstaffed grids before and at the shift, the handover list, a door-opened arrival and the maintenance queue', async () => {
    // 14:00 today in the community: the next shift (night, 20:00) is six hours away. Sessions last 48 h so
    // the browser keeps its cookie while the clock moves.
    const start = DateTime.now().setZone(ZONE).startOf('day').plus({ hours: 14 }).toMillis();
    const clock = new ManualClock(instant(start));
    const h = await startHarness({
      clock,
      consoleDir,
      env: {
        WEBHOOK_URL: await brokenWebhook(),
        WEBHOOK_SECRET: 'webhook-secret-0123456789',
        SESSION_HOURS: '48',
      },
    });
    closers.push(() => h.close());
    const admin = await login(h.baseUrl, 'admin', 'admin-password-365');

    const wall: Page = await loggedInPage(browser, h.baseUrl, 'dispatcher', TEST_PASSWORD, WALL);
    closers.push(() => wall.context().close());
    await wall.waitForSelector('main.dispatch');
    await wall.locator('[data-testid=maintenance]').waitFor();
    await wall.waitForFunction(() => !document.querySelector('[data-testid=offline-banner]'));
    // Everything is staffed and healthy: no warning on screen.
    expect(await wall.locator('[data-testid=duty-gap]').count()).toBe(0);
    expect(await wall.locator('[data-testid=channel-failing]').count()).toBe(0);

    // A door sensor reports a low battery: a technical alert, into the maintenance queue, live.
    const door = await device(h, clock, 'home-1-01', 'door');
    await door.send({ type: 'heartbeat', battery: 9 });
    const lowBattery = await eventually(
      async () =>
        (await h.store.listAlerts({ householdId: 'home-1-01', state: 'open' })).find(
          (a) => a.rule === 'LOW_BATTERY',
        ),
      10_000,
      'a LOW_BATTERY alert',
    );
    await wall
      .locator(`[data-testid=maintenance] li[data-alert-id="${lowBattery.id}"]`)
      .waitFor({ timeout: 15_000 });

    // A fall: the webhook answers 500 to every call; after three failures in a row the screen says so.
    const radar = await device(h, clock, 'home-1-01', 'fall');
    await radar.send({ type: 'fall', state: 'detected', room: 'bathroom' });
    const row = wall.locator('tr[data-rule=FALL]');
    await row.waitFor({ timeout: 10_000 });
    const failing = wall.locator('[data-testid=channel-failing][data-channel=webhook]');
    // Each retry waits on the clock (1 s, 4 s, …): move it until the third failure is recorded.
    await eventually(
      async () => {
        if ((await failing.count()) > 0) return true;
        clock.advance(seconds(2));
        return false;
      },
      20_000,
      'the failing webhook on the wall screen',
    );
    expect(await failing.innerText()).toContain('webhook');

    // The primary accepts and sets off; a door opening then marks a likely arrival on the row.
    const alertId = (await row.getAttribute('data-alert-id'))!;
    const alert = (await apiCall<{ alert: Alert }>(h.baseUrl, admin, 'GET', `/api/alerts/${alertId}`)).body
      .alert;
    const primary = await login(h.baseUrl, usernameOf(h, alert.responders[0]!));
    for (const action of ['accept', 'en-route'])
      expect((await apiCall(h.baseUrl, primary, 'POST', `/api/alerts/${alertId}/${action}`, {})).status).toBe(
        200,
      );
    await expect.poll(() => row.getAttribute('data-state'), { timeout: 10_000 }).toBe('en_route');
    expect(await row.locator('[data-testid=door-opened]').count()).toBe(0);
    clock.advance(minutes(4));
    await door.send({ type: 'door', state: 'open' });
    await row.locator('[data-testid=door-opened]').waitFor({ timeout: 10_000 });

    // Grid 2 loses its whole roster; its incoming night responder watches the phone page of grid 1's
    // night shift to see the handover arrive.
    expect(
      (await apiCall(h.baseUrl, admin, 'POST', '/api/roster', { gridId: 'grid-2', entries: [] })).status,
    ).toBe(200);
    const night = h.plan.roster.find((r) => r.gridId === 'grid-1' && r.shift === 'night')!.staffIds[0]!;
    const phone = await loggedInPage(browser, h.baseUrl, usernameOf(h, night), TEST_PASSWORD, PHONE);
    closers.push(() => phone.context().close());
    await phone.waitForSelector('main.responder');
    await phone.waitForFunction(() => !document.querySelector('[data-testid=offline-banner]'));

    const shift = nextShift(clock.now(), ZONE);
    expect(shift.shift).toBe('night');
    // 30 minutes before the shift (DUTY_WARN_MINUTES): the unstaffed grid shows, live.
    clock.advanceTo(instant(shift.startsAt - minutes(30)));
    const upcoming = wall.locator('[data-testid=duty-gap][data-phase=upcoming]');
    await upcoming.waitFor({ timeout: 15_000 });
    const grid2 = h.plan.grids.find((g) => g.id === 'grid-2')!.name;
    expect(await upcoming.innerText()).toContain(grid2);
    expect(await wall.locator('[data-testid=handover]').count()).toBe(0);

    // The shift starts with the gap, and inherits the open fall: both on the wall, the fall on the phone.
    clock.advanceTo(instant(shift.startsAt));
    const now = wall.locator('[data-testid=duty-gap][data-phase=now]');
    await now.waitFor({ timeout: 15_000 });
    expect(await now.innerText()).toContain(grid2);
    await wall.locator(`[data-testid=handover] li[data-alert-id="${alertId}"]`).waitFor({ timeout: 15_000 });
    await phone.locator(`[data-testid=handover] li[data-alert-id="${alertId}"]`).waitFor({ timeout: 15_000 });
    // A responder of another grid is not handed grid 1's alert.
    const other = await login(h.baseUrl, 'g2-worker');
    const theirs = await apiCall<HandoverReport>(h.baseUrl, other, 'GET', '/api/duty/handover');
    expect(theirs.body.items.map((i) => i.alertId)).not.toContain(alertId);

    // A screen opened now (or reloaded) loads the same warnings from the API.
    await wall.reload();
    await wall.locator('[data-testid=duty-gap][data-phase=now]').waitFor();
    await wall.locator('[data-testid=channel-failing][data-channel=webhook]').waitFor();
    await wall.locator(`[data-testid=handover] li[data-alert-id="${alertId}"]`).waitFor();
    await wall.locator(`[data-testid=maintenance] li[data-alert-id="${lowBattery.id}"]`).waitFor();
  }, 120_000);

  it("shows the edge's faults: free space running low on load, InfluxDB away live when it starts failing", async () => {
    const clock = new ManualClock(instant(Date.now()));
    const dead = createServer();
    await new Promise<void>((r) => dead.listen(0, '127.0.0.1', r));
    const deadUrl = `http://127.0.0.1:${(dead.address() as AddressInfo).port}`;
    await new Promise<void>((r) => dead.close(() => r()));
    const h = await startHarness({
      clock,
      consoleDir,
      grids: 1,
      perGrid: 1,
      // Any disk is "low" below a petabyte; InfluxDB at a port where nothing listens.
      env: {
        DISK_LOW_MB: '1000000000',
        HEALTH_CHECK_MS: '200',
        INFLUX_URL: deadUrl,
        INFLUX_TOKEN: 't',
        INFLUX_ORG: 'o',
        INFLUX_BUCKET: 'b',
      },
    });
    closers.push(() => h.close());
    const wall: Page = await loggedInPage(browser, h.baseUrl, 'dispatcher', TEST_PASSWORD, WALL);
    closers.push(() => wall.context().close());
    await wall.waitForSelector('main.dispatch');
    const low = wall.locator('[data-testid=system-warning][data-kind=disk_low]');
    await low.waitFor({ timeout: 15_000 });
    expect(await low.textContent()).toContain(h.dir);
    expect(await wall.locator('[data-testid=system-warning][data-kind=telemetry_failing]').count()).toBe(0);
    // An event's telemetry point cannot be written: the warning arrives live.
    const door = await device(h, clock, 'home-1-01', 'door');
    await door.send({ type: 'door', state: 'open' });
    await wall
      .locator('[data-testid=system-warning][data-kind=telemetry_failing]')
      .waitFor({ timeout: 20_000 });
  });
});
