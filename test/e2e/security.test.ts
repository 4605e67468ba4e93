/**
 * Requests from other origins are refused, and the console works under its Content-Security-Policy
 * (SPEC §8 Access; README, Security), in Debian's Chromium.
 *
 * The attacker is a page on another loopback port of the same host: SameSite=Strict does not separate
 * ports, so the browser sends the admin's session cookie with its requests. While the admin is logged in,
 * it tries a CSV import creating an admin (text/plain, no preflight), a bodiless POST disabling a device,
 * and a socket.io WebSocket that would receive alerts. All three must be refused; the same requests from
 * the console's own origin (the control) work, so the test can tell a refusal from a broken request.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONTENT_SECURITY_POLICY } from '../../dispatcher/api/app.ts';
import { SystemClock } from '../../kernel/clock.ts';
import { raiseFall } from '../dispatcher/dispatch-helpers.ts';
import { eventually, type Harness, startHarness, TEST_PASSWORD } from '../helpers.ts';
import { launchBrowser, loggedInPage, PHONE, WALL } from './browser.ts';

const consoleDir = join(import.meta.dirname, '..', '..', 'console', 'public');
const ADMIN_PASSWORD = 'admin-password-365';
const DEVICE = 'home-1-01-door';
const EVIL_CSV =
  'id,name,phone,roles,gridIds,username,password,disabled\nevil,Evil,,admin,,evil,evil-password-365-x,\n';

let browser: Browser;
let h: Harness;
let attacker: Server;
let attackerUrl: string;
const closers: { close(): unknown }[] = [];

/**
 * The three attacks, run in a page. `base` is the console's origin. Returns what the page could observe:
 * the fetches are no-cors (the attacker cannot read answers, but the server acts on them), the socket
 * records every engine.io/socket.io frame it receives.
 */
const ATTACKS = `
window.attack = async (base, csv, device) => {
  const out = { frames: [] };
  await fetch(base + '/api/registry/import/staff.csv', {
    method: 'POST', mode: 'no-cors', credentials: 'include',
    headers: { 'content-type': 'text/plain' }, body: csv,
  }).catch((e) => { out.importError = String(e); });
  await fetch(base + '/api/devices/' + device + '/disable', {
    method: 'POST', mode: 'no-cors', credentials: 'include',
  }).catch((e) => { out.disableError = String(e); });
  const ws = new WebSocket(base.replace(/^http/, 'ws') + '/socket.io/?EIO=4&transport=websocket');
  window.frames365 = out.frames;
  ws.onmessage = (m) => {
    out.frames.push(String(m.data));
    if (String(m.data).startsWith('0')) ws.send('40');
    if (m.data === '2') ws.send('3');
  };
  await new Promise((r) => { ws.onclose = r; ws.onerror = r; setTimeout(r, 3000); });
  return out;
};
`;

beforeAll(async () => {
  browser = await launchBrowser();
  h = await startHarness({ clock: new SystemClock(), consoleDir, grids: 1, perGrid: 1 });
  attacker = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end(`<!doctype html><title>prize</title><script>${ATTACKS}</script><p>You won!</p>`);
  });
  await new Promise<void>((r) => attacker.listen(0, '127.0.0.1', r));
  attackerUrl = `http://127.0.0.1:${(attacker.address() as AddressInfo).port}/`;
}, 60_000);

afterAll(async () => {
  for (const c of closers) await c.close();
  await browser?.close();
  await h?.close();
  await new Promise((r) => attacker?.close(r));
});

describe('requests from other origins', () => {
  it('refuses a CSV import, a bodiless POST and a socket.io connection from a page on another port', async () => {
    const admin = await loggedInPage(browser, h.baseUrl, 'admin', ADMIN_PASSWORD, WALL);
    // The attacker's page opens in the admin's browser, beside the console.
    const evil = await admin.context().newPage();
    await evil.goto(attackerUrl);
    const cookies = await admin.context().cookies(h.baseUrl);
    expect(cookies.map((c) => c.name)).toContain('g365_session');

    const result = (await evil.evaluate(
      ([base, csv, device]) =>
        (window as unknown as { attack: (...a: string[]) => Promise<unknown> }).attack(base!, csv!, device!),
      [h.baseUrl, EVIL_CSV, DEVICE],
    )) as { frames: string[] };
    // An alert raised now must not reach the attacker's socket even if it had connected.
    await raiseFall(h, new SystemClock(), 'home-1-01', closers);

    expect(await h.store.getStaff('evil')).toBeNull();
    expect((await h.store.getDeviceState(DEVICE))?.disabled).toBe(false);
    // The engine.io handshake opens (it carries no rights); the socket.io connection is refused.
    const frames = result.frames;
    expect(frames.some((f) => f.startsWith('44') && f.includes('cross_origin'))).toBe(true);
    expect(frames.filter((f) => f.startsWith('40') || f.startsWith('42'))).toEqual([]);
    const refused = await h.service.metrics.registry.getSingleMetricAsString(
      'g365_http_cross_origin_refused_total',
    );
    expect(refused).toMatch(/ (\d+)$/);
    expect(Number(refused.split(' ').at(-1))).toBeGreaterThanOrEqual(3);

    // Control: the same three from the console's own origin work, so the refusals above were the origin's.
    const own = (await admin.evaluate(
      async ([base, device]) => {
        const csv =
          'id,name,phone,roles,gridIds,username,password,disabled\nlegit,Legit,,volunteer,grid-1,legit,legit-password-365,\n';
        const imp = await fetch(`${base}/api/registry/import/staff.csv`, {
          method: 'POST',
          headers: { 'content-type': 'text/csv' },
          body: csv,
        });
        const dis = await fetch(`${base}/api/devices/${device}/disable`, { method: 'POST' });
        const frames: string[] = [];
        const ws = new WebSocket(`${base!.replace(/^http/, 'ws')}/socket.io/?EIO=4&transport=websocket`);
        await new Promise<void>((r) => {
          ws.onmessage = (m) => {
            frames.push(String(m.data));
            if (String(m.data).startsWith('0')) ws.send('40');
            if (String(m.data).startsWith('40')) r();
          };
          ws.onclose = () => r();
        });
        ws.close();
        return { imp: imp.status, dis: dis.status, frames };
      },
      [h.baseUrl, DEVICE],
    )) as { imp: number; dis: number; frames: string[] };
    expect(own.imp).toBe(200);
    expect(own.dis).toBe(200);
    expect(own.frames.some((f) => f.startsWith('40{'))).toBe(true);
    expect(await h.store.getStaff('legit')).not.toBeNull();
    await admin.context().close();
  }, 60_000);
});

describe('the Content-Security-Policy', () => {
  /** Opens each page and collects every CSP violation and script error Chromium reports. */
  async function violations(page: Page, urls: string[]): Promise<string[]> {
    const seen: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error' && /Content Security Policy|Refused to/i.test(m.text())) seen.push(m.text());
    });
    page.on('pageerror', (e) => seen.push(`page error: ${e.message}`));
    await page.addInitScript(() => {
      document.addEventListener('securitypolicyviolation', (e) => {
        (window as unknown as { csp: string[] }).csp ??= [];
        (window as unknown as { csp: string[] }).csp.push(`${e.violatedDirective} ${e.blockedURI}`);
      });
    });
    for (const url of urls) {
      await page.goto(url);
      await page.waitForLoadState('networkidle');
      const csp = await page.evaluate(() => (window as unknown as { csp?: string[] }).csp ?? []);
      seen.push(...csp.map((c) => `${url}: ${c}`));
    }
    return seen;
  }

  it('is sent with every answer, and no console page (nor /docs) breaks it in Chromium', async () => {
    const res = await fetch(`${h.baseUrl}/`);
    expect(res.headers.get('content-security-policy')).toBe(CONTENT_SECURITY_POLICY);
    expect(res.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('referrer-policy')).toBe('no-referrer');
    const api = await fetch(`${h.baseUrl}/api/session`);
    expect(api.status).toBe(401);
    expect(api.headers.get('content-security-policy')).toBe(CONTENT_SECURITY_POLICY);

    const b = h.baseUrl;
    const admin = await loggedInPage(browser, b, 'admin', ADMIN_PASSWORD, WALL);
    const adminPages = [
      `${b}/#/dispatch`,
      `${b}/#/dispatch/household/home-1-01`,
      `${b}/#/reports`,
      ...['grids', 'households', 'devices', 'staff', 'roster', 'importExport'].map(
        (s) => `${b}/#/admin/${s}`,
      ),
      `${b}/docs`,
    ];
    const worker = await loggedInPage(browser, b, 'g1-worker', TEST_PASSWORD, PHONE);
    const found = [
      ...(await violations(admin, adminPages)),
      ...(await violations(worker, [`${b}/#/respond`])),
    ];
    // The pages rendered (a blocked script would leave them empty).
    await admin.goto(`${b}/#/admin/staff`);
    await admin.waitForSelector('main.admin');
    await worker.goto(`${b}/#/respond`);
    await eventually(async () => (await worker.locator('main').count()) > 0);
    expect(found).toEqual([]);
    await admin.context().close();
    await worker.context().close();
  }, 90_000);
});
