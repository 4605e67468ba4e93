/**
 * The responder page as an installable web app that rings a locked phone (NOTIFY-03), in Debian's
 * Chromium: the page registers its service worker and is installable (the browser's own check); the
 * service raises a real fall and sends its real Web Push message to a push service on loopback, which
 * decrypts it; Chromium's DevTools protocol then delivers that same message to the page's service worker
 * (as the phone's push service would), which shows a notification that stays, names the rule and the
 * household, tells the service it was shown, and on a tap opens the alert on the responder page.
 */
import { join } from 'node:path';
import { DateTime } from 'luxon';
import { type BrowserContext, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../kernel/clock.ts';
import { instant } from '../../kernel/time.ts';
import { device } from '../dispatcher/dispatch-helpers.ts';
import {
  apiCall,
  eventually,
  type Harness,
  login,
  startHarness,
  TEST_PASSWORD,
  tempDir,
} from '../helpers.ts';
import { loopbackCert, type Phone, phone, pushService, type Tls } from '../push-service.ts';
import { CHROMIUM, CHROMIUM_ARGS, launchBrowser, loggedInPage, PHONE, WALL } from './browser.ts';

const consoleDir = join(import.meta.dirname, '..', '..', 'console', 'public');
const profile = tempDir('g365-chromium-');
let context: BrowserContext;
let tls: Tls;
let h: Harness;

beforeAll(async () => {
  tls = await loopbackCert();
});
afterAll(async () => {
  await context?.close().catch(() => {});
  await h?.close();
  tls?.remove();
  profile.remove();
});

interface Shown {
  title: string;
  body: string;
  tag: string;
  requireInteraction: boolean;
  data: { url: string; alertId: string };
}

describe('the responder page rings a locked phone', () => {
  it('shows the service’s push message as a lasting notification and opens the alert on a tap', async () => {
    // 10:00 today in the community, whatever the hour this runs at: the day shift, g1-worker is the
    // primary. Sessions last 48 h so the browser keeps its cookie (its expiry is on the service's clock).
    const start = DateTime.now().setZone('Asia/Shanghai').startOf('day').plus({ hours: 10 }).toMillis();
    const clock = new ManualClock(instant(start));
    h = await startHarness({
      clock,
      consoleDir,
      env: { PUSH_CA_FILE: tls.certFile, SESSION_HOURS: '48' },
    });
    const origin = h.baseUrl;

    // The responder logs in on a phone and allows notifications.
    // A profile of its own, not an incognito context: Chromium installs no web app in incognito.
    context = await chromium.launchPersistentContext(profile.path, {
      executablePath: CHROMIUM,
      headless: true,
      viewport: PHONE,
      args: CHROMIUM_ARGS,
    });
    await context.grantPermissions(['notifications'], { origin });
    const page = await context.newPage();
    await page.goto(origin);
    await page.fill('input[name=username]', 'g1-worker');
    await page.fill('input[name=password]', TEST_PASSWORD);
    await page.click('button[type=submit]');
    await page.waitForSelector('main.responder');
    // The worker is registered and active; the page offers to turn notices on.
    await page.waitForSelector('[data-testid=push-toggle]');
    await page.evaluate(() => navigator.serviceWorker.ready.then(() => true));
    const cdp = await context.newCDPSession(page);
    const installable = (await cdp.send('Page.getInstallabilityErrors')) as {
      installabilityErrors: { errorId: string }[];
    };
    expect(installable.installabilityErrors).toEqual([]);

    // Chromium's own push service is out of reach here, so the phone's subscription is the test push
    // service's; the message the service sends there is what Chromium then delivers to the worker.
    const phones = new Map<string, Phone>();
    const ps = await pushService(tls, phones);
    const p = phone(`${ps.base}/push/worker`);
    phones.set('/push/worker', p);
    const token = await login(h.baseUrl, 'g1-worker');
    expect(
      (await apiCall(h.baseUrl, token, 'POST', '/api/push/subscriptions', { ...p.subscription, lang: 'zh' }))
        .status,
    ).toBe(201);
    const radar = await device(h, clock, 'home-1-01', 'fall');
    try {
      await radar.send({ type: 'fall', state: 'detected', room: 'bathroom' });
      const pushed = await eventually(() => ps.got[0], 15_000, 'the push message');
      const alertId = pushed.message.alertId;

      await cdp.send('ServiceWorker.enable');
      const registrations = new Map<string, string>();
      cdp.on(
        'ServiceWorker.workerRegistrationUpdated',
        (e: { registrations: { registrationId: string; scopeURL: string }[] }) => {
          for (const r of e.registrations) registrations.set(r.scopeURL, r.registrationId);
        },
      );
      const registrationId = await eventually(
        () => registrations.get(`${origin}/`),
        10_000,
        'the registration',
      );
      await cdp.send('ServiceWorker.deliverPushMessage', {
        origin,
        registrationId,
        data: JSON.stringify(pushed.message),
      });

      const shown = await eventually(
        () =>
          page
            .evaluate(async () => {
              const reg = await navigator.serviceWorker.ready;
              return (await reg.getNotifications()).map((n) => ({
                title: n.title,
                body: n.body,
                tag: n.tag,
                requireInteraction: n.requireInteraction,
                data: n.data as { url: string; alertId: string },
              }));
            })
            .then((list: Shown[]) => list[0]),
        10_000,
        'the notification',
      );
      expect(shown.title).toBe(pushed.message.title);
      expect(shown.title).toContain('跌倒');
      expect(shown.body).toContain('请接单');
      expect(shown.tag).toBe(alertId);
      expect(shown.requireInteraction).toBe(true);
      expect(shown.data.url).toBe(`/#/respond/${alertId}`);

      // The worker told the service the notice was shown on this phone.
      await eventually(
        async () => (await h.store.listDeliveries(alertId)).find((d) => d.channel === 'push' && d.delivered),
        10_000,
        'the delivery receipt',
      );

      // A tap (the worker's own click handler) opens the alert on the responder page.
      await page.evaluate(async (tag) => {
        const reg = await navigator.serviceWorker.ready;
        reg.active?.postMessage({ type: 'g365:tap', tag });
      }, alertId);
      await page.waitForFunction((id) => location.hash === `#/respond/${id}`, alertId);
      await page.waitForSelector(`article.card.focused[data-alert-id="${alertId}"]`);
      const left = await page.evaluate(
        async () => (await (await navigator.serviceWorker.ready).getNotifications()).length,
      );
      expect(left).toBe(0);

      // The dispatch room sees, on the alert, that the notice reached this responder's phone, and sends
      // it again with one click: a second push arrives.
      const wallBrowser = await launchBrowser();
      try {
        const wall = await loggedInPage(wallBrowser, origin, 'dispatcher', TEST_PASSWORD, WALL);
        await wall.locator(`tr[data-alert-id="${alertId}"]`).click();
        const mine = wall.locator('[data-testid=deliveries] tr[data-staff=grid-1-worker]');
        await mine.locator('[data-channel=push][data-status=delivered]').waitFor();
        await mine.locator('[data-channel=socket]').waitFor();
        await mine.locator('button[data-action=resend]').click();
        const again = await eventually(() => ps.got[1], 15_000, 'the re-sent push');
        expect(again.message).toMatchObject({ alertId, reason: 'resend' });

        // Cancelled with a reason, the alert's panel says why, in words, and offers nothing more.
        const panel = wall.locator('[data-testid=alert-panel]');
        await panel.locator('button[data-action=cancel]').click();
        await panel.locator('input[name=reason]').fill('家属已到场，误报');
        await panel.getByRole('button', { name: '保存' }).click();
        await panel.locator('[data-testid=cancel-reason]', { hasText: '家属已到场，误报' }).waitFor();
        await panel
          .locator('[data-testid=history] li[data-action=cancel]', { hasText: '取消告警' })
          .waitFor();
        expect(await panel.locator('fieldset.actions').count()).toBe(0);
      } finally {
        await wallBrowser.close();
      }
    } finally {
      await radar.disconnect();
      await ps.close();
    }
  }, 120_000);
});
