/**
 * Takes the README's screenshots from a real run: the service with the demo community on a temporary data
 * folder, Debian's Chromium at wall-screen and phone sizes.  npx tsx test/e2e/screenshots.ts [seconds] [file…]
 * (with file names, only those screenshots are written).
 *
 * One household gets a week of plausible activity written to its event log first, so its file's 7-day
 * chart has something to show; everything else is the live demo.
 */
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { DEMO_MARKER_FILE } from '../../dispatcher/config.ts';
import { seedDemo } from '../../dispatcher/seed.ts';
import { GuardianService } from '../../dispatcher/service.ts';
import type { EventRecord } from '../../gateway/ports.ts';
import { SystemClock } from '../../kernel/clock.ts';
import { silentLogger } from '../../kernel/log.ts';
import { DEMO_PASSWORD, demoPlan, startDemo } from '../../simulators/demo.ts';
import { tempDir, testConfig } from '../helpers.ts';
import { launchBrowser } from './browser.ts';

const root = join(import.meta.dirname, '..', '..');
const dir = tempDir();
const clock = new SystemClock();
const log = silentLogger();
const service = new GuardianService({
  config: testConfig(dir.path),
  clock,
  log,
  consoleDir: join(root, 'console', 'public'),
});
await service.start();
const plan = demoPlan();
const devicesFile = join(dir.path, DEMO_MARKER_FILE);
await seedDemo(service.store, plan, { adminPassword: 'admin-password-365', devicesFile, now: clock.now() });
const demo = await startDemo({
  plan,
  devicesFile,
  clock,
  log,
  mqttPort: service.mqttPort,
  httpPort: service.httpPort,
  adminPassword: 'admin-password-365',
  fallEvery: 8,
});

/** A week of a resident's days (Asia/Shanghai, UTC+8): up at 7, kitchen, out mid-morning, evening at home. */
function week(homeId: string, now: number): EventRecord[] {
  const out: EventRecord[] = [];
  const hour = 3_600_000;
  const dayStart = now - ((now + 8 * hour) % (24 * hour));
  let seq = 1_000_000;
  const add = (deviceId: string, ts: number, body: Record<string, unknown>) => {
    if (ts >= now - 60_000) return;
    out.push({
      deviceId,
      homeId,
      receivedAt: ts,
      topic: `g365/v1/homes/${homeId}/devices/${deviceId}/events`,
      status: 'accepted',
      ts,
      type: String(body.type),
      deviceSeq: seq++,
      body: JSON.stringify({ ...body, ts }),
      reason: null,
      flags: [],
    });
  };
  const motion = (room: string, from: number, to: number) => {
    for (let t = from; t < to; t += 10 * 60_000)
      add(`${homeId}-motion-${room}`, t, { type: 'motion', state: 'active', room });
  };
  // Through today, so the last evening ends in the bedroom like the others (events after now are dropped).
  for (let d = 7; d >= 0; d--) {
    const day = dayStart - d * 24 * hour;
    const j = (d * 7) % 5;
    motion('bedroom', day - 2 * hour, day + 6.5 * hour);
    motion('bathroom', day + (7 + j / 10) * hour, day + 7.4 * hour);
    motion('kitchen', day + 7.5 * hour, day + 8.3 * hour);
    motion('living', day + 8.3 * hour, day + 9.5 * hour);
    for (const at of [day + (9.6 + j / 10) * hour, day + (11 + j / 5) * hour]) {
      add(`${homeId}-door`, at, { type: 'door', state: 'open', door: 'front' });
      add(`${homeId}-door`, at + 40_000, { type: 'door', state: 'closed', door: 'front' });
    }
    motion('kitchen', day + 11.5 * hour, day + 12.5 * hour);
    motion('living', day + 13 * hour, day + 17 * hour);
    motion('kitchen', day + 17.5 * hour, day + 18.3 * hour);
    motion('living', day + 18.5 * hour, day + 21.5 * hour);
    motion('bathroom', day + 21.5 * hour, day + 21.8 * hour);
    motion('bedroom', day + 21.8 * hour, day + 22 * hour);
  }
  return out;
}
await service.store.appendEvents(week('home-1-01', clock.now()));

const wait = Number(process.argv[2] ?? 60);
console.log(`demo running; waiting ${wait} s for alerts to build up`);
await new Promise((r) => setTimeout(r, wait * 1000));

const browser = await launchBrowser();
const base = `http://127.0.0.1:${service.httpPort}`;
async function open(user: string, viewport: { width: number; height: number }, password = DEMO_PASSWORD) {
  const context = await browser.newContext({ viewport, deviceScaleFactor: 1 });
  const page = await context.newPage();
  await page.goto(base);
  await page.fill('input[name=username]', user);
  await page.fill('input[name=password]', password);
  await page.click('button[type=submit]');
  await page.waitForSelector('main');
  await page.waitForTimeout(2500);
  return page;
}
const only = process.argv.slice(3);
async function shot(page: Page, file: string) {
  if (only.length > 0 && !only.includes(file)) return;
  await page.screenshot({ path: join(root, 'docs', file) });
  console.log(`docs/${file}`);
}
const WALL = { width: 1920, height: 1080 };

// First screen: how long a cold page load takes to paint the login form, and after logging in, the queue.
{
  const context = await browser.newContext({ viewport: WALL });
  const page = await context.newPage();
  const t0 = Date.now();
  await page.goto(base);
  await page.waitForSelector('input[name=username]');
  const login = Date.now() - t0;
  const fcp = await page.evaluate(
    () => performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? -1,
  );
  await page.fill('input[name=username]', 'dispatcher');
  await page.fill('input[name=password]', DEMO_PASSWORD);
  const t1 = Date.now();
  await page.click('button[type=submit]');
  await page.waitForSelector('tr.alert, td.empty');
  console.log(
    `first screen: login form ${login} ms (first contentful paint ${Math.round(fcp)} ms); queue after login ${Date.now() - t1} ms`,
  );
  await context.close();
}

const dispatch = await open('dispatcher', WALL);
await shot(dispatch, 'console-dispatch.png');
// The household file of the home with a week of history (a link a dispatcher can share).
await dispatch.goto(`${base}/#/dispatch/household/home-1-01`);
await dispatch.waitForSelector('[data-testid=household-drawer] [data-testid=timeline-chart]', {
  timeout: 15_000,
});
await dispatch.locator('[data-testid=show-access-notes]').click();
await dispatch.waitForTimeout(800);
await shot(dispatch, 'console-household.png');
// CONSOLE-04: the search page, found by part of a building's name.
const demoHomes = await service.store.listHouseholds();
const caller = demoHomes.find((x) => x.residents.length > 0) ?? demoHomes[0]!;
await dispatch.goto(`${base}/#/search`);
await dispatch.locator('[data-testid=search-input]').fill(caller.address.building);
await dispatch.waitForSelector('[data-testid=search-results]');
await dispatch.waitForTimeout(500);
await shot(dispatch, 'console-search.png');
// ALERT-03: a call taken: the resident's name, Enter, the category's number, who called and what they said.
await dispatch.goto(`${base}/#/search/call`);
await dispatch.locator('[data-testid=search-input]').fill(caller.residents[0]?.name ?? caller.address.room);
await dispatch.waitForSelector(`tr[data-household="${caller.id}"]`);
await dispatch.locator('[data-testid=search-input]').press('Enter');
await dispatch.waitForSelector('[data-testid=phone-report]');
await dispatch.keyboard.press('2');
await dispatch.locator('input[name=caller]').fill('女儿');
await dispatch.locator('textarea[name=note]').fill('女儿来电：母亲说头晕，电话里说话含糊');
await dispatch.waitForTimeout(300);
await shot(dispatch, 'console-phone-report.png');
await dispatch.context().close();

// The responder page: the primary of the newest open alert, so the phone shows work to do.
const anyAlert = await service.store.listAlerts({ state: 'open', limit: 50 });
const target = anyAlert.find((a) => a.severity === 'critical' && a.state !== 'on_site') ?? anyAlert[0];
const who = target?.assigneeId ?? target?.responders[0] ?? 'grid-1-worker';
const username = (await service.store.getStaff(who))?.username ?? 'g1-worker';
const phone = await open(username, { width: 360, height: 740 });
await shot(phone, 'console-responder.png');
await phone.context().close();

const admin = await open('admin', WALL, 'admin-password-365');
await admin.goto(`${base}/#/admin/roster`);
await admin.waitForSelector('[data-testid=roster-week]');
await admin.waitForTimeout(800);
await shot(admin, 'console-admin.png');
// The device list across households (SPEC §3 device health, DATA-04 corrections).
await admin.goto(`${base}/#/admin/devices`);
await admin.waitForSelector('[data-testid=device-list] tbody tr');
await admin.waitForTimeout(800);
await shot(admin, 'console-admin-devices.png');
// The audit log as a page with its filters (DATA-04).
await admin.goto(`${base}/#/admin/audit`);
await admin.waitForSelector('[data-testid=audit-list] tbody tr');
await admin.waitForTimeout(800);
await shot(admin, 'console-admin-audit.png');
await admin.context().close();

const sup = await open('supervisor', WALL);
await sup.goto(`${base}/#/reports`);
await sup.waitForSelector('main.reports svg.bars');
await sup.waitForTimeout(800);
await shot(sup, 'console-reports.png');
await sup.context().close();

await browser.close();
await demo.stop();
await service.stop();
dir.remove();
process.exit(0);
