/**
 * The dispatch desk's day in Debian's Chromium against the whole service on a manual clock pinned at
 * AT.day: a call becomes an incident from the search page in a few keystrokes (ALERT-03), the alert panel
 * says it in words and offers nothing after a cancel (CONSOLE-05), a household is found and its file
 * opened without an alert (CONSOLE-04), a responder's 360 px page is theirs and "can't go" passes the alert
 * on (CONSOLE-06), and an empty community says what to do first (CONSOLE-07). zh-CN and English.
 */
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Alert, AuditEntry, HistoryEntry, IncidentResult } from '../../dispatcher/api/types.ts';
import { GuardianService } from '../../dispatcher/service.ts';
import { ManualClock } from '../../kernel/clock.ts';
import { silentLogger } from '../../kernel/log.ts';
import { instant } from '../../kernel/time.ts';
import {
  AT,
  apiCall,
  bareHousehold,
  eventually,
  type Harness,
  login,
  startHarness,
  TEST_PASSWORD,
  tempDir,
  testConfig,
} from '../helpers.ts';
import { launchBrowser, loggedInPage, PHONE, WALL } from './browser.ts';

const consoleDir = join(import.meta.dirname, '..', '..', 'console', 'public');
const ADMIN_PASSWORD = 'admin-password-365';
let browser: Browser;
let h: Harness | undefined;

beforeAll(async () => {
  browser = await launchBrowser();
});
afterAll(async () => {
  await browser?.close();
  await h?.close();
});

describe('the dispatch desk in Chromium', () => {
  it('takes a call in a few keystrokes, says it in words, and finds a household without an alert (zh-CN)', async () => {
    const clock = new ManualClock(instant(Date.parse(AT.day)));
    h = await startHarness({ clock, consoleDir, grids: 2, perGrid: 2 });
    await h.store.upsertHousehold(
      bareHousehold('home-zhuge', 'grid-1', {
        address: { building: 'A座', unit: '2单元', room: '301' },
        residents: [{ name: '诸葛翠兰', age: 82, phone: '199 0013 8000' }],
        contacts: [{ name: '诸葛明', relation: '儿子', phone: '198-1234-5678' }],
        accessNotes: '钥匙在302邻居家',
        awayUntil: clock.now() + 86_400_000,
        awayReason: '住院',
      }),
    );
    const wall = await loggedInPage(browser, h.baseUrl, 'dispatcher', TEST_PASSWORD, WALL);
    await wall.waitForSelector('td.empty');
    // A seeded community is registered: no first-start steps.
    expect(await wall.locator('[data-testid=first-start]').count()).toBe(0);

    // The call: the button, a name, Enter, the category's number, a note, Enter.
    await wall.locator('[data-testid=phone-report-link]').click();
    await wall.locator('[data-testid=search-input]').fill('翠兰');
    await wall.locator('tr[data-household=home-zhuge]').waitFor();
    await wall.locator('[data-testid=search-input]').press('Enter');
    const form = wall.locator('[data-testid=phone-report]');
    await form.waitFor();
    expect(await form.locator('h3').innerText()).toContain('A座 2单元 301 · 诸葛翠兰');
    await wall.keyboard.press('4');
    expect(await form.locator('input[value=wandering]').isChecked()).toBe(true);
    expect(await form.locator('select[name=severity]').inputValue()).toBe('high');
    await form.locator('input[name=caller]').fill('儿子');
    await form.locator('textarea[name=note]').fill('儿子来电：母亲早上出门后一直没回来');
    expect(await form.innerText()).toContain('走失');
    await form.locator('textarea[name=note]').press('Enter');
    const done = form.locator('[data-testid=reported]');
    await done.waitFor();
    expect(await done.innerText()).toBe('已创建事件，已按当前值班派单');
    const alertId = (await done.getAttribute('data-alert-id'))!;

    // It is in the queue like a sensor alert, routed to the day's primary.
    await form.getByRole('link', { name: '在调度屏查看' }).click();
    const row = wall.locator(`tr[data-alert-id="${alertId}"]`);
    await row.waitFor();
    expect(await row.getAttribute('data-rule')).toBe('PHONE_REPORT');
    expect(await row.innerText()).toContain('来电报告');
    await row.click();
    const panel = wall.locator('[data-testid=alert-panel]');
    await panel.waitFor();
    expect(await panel.locator('[data-testid=source]').innerText()).toContain('来电');
    expect(await panel.locator('[data-testid=source]').innerText()).toContain('走失');
    const history = panel.locator('[data-testid=history]');
    await expect
      .poll(() => history.innerText(), { timeout: 10_000 })
      .toMatch(/登记来电事件[\s\S]*通知第一责任人/);

    // A reassign says to whom; a cancel shows its reason and leaves no action to take.
    const target = h.plan.staff.find((s) => s.id === 'grid-1-leader')!;
    await panel.locator('fieldset.actions [data-action=assign]').click();
    await panel.locator('select[name=staffId]').selectOption('grid-1-leader');
    await panel.getByRole('button', { name: '保存' }).click();
    await expect.poll(() => history.innerText(), { timeout: 10_000 }).toContain(`指派给 ${target.name}`);
    expect(await panel.locator('fieldset.actions [data-action=assign]').innerText()).toBe('改派');
    await panel.locator('fieldset.actions [data-action=cancel]').click();
    await panel.locator('input[name=reason]').fill('家属已找到老人');
    await panel.getByRole('button', { name: '保存' }).click();
    await expect
      .poll(
        () =>
          panel
            .locator('[data-testid=cancel-reason]')
            .innerText()
            .catch(() => ''),
        { timeout: 10_000 },
      )
      .toContain('家属已找到老人');
    expect(await panel.locator('fieldset.actions button').count()).toBe(0);
    expect(await panel.locator('[data-action=resend]').count()).toBe(0);
    await expect.poll(() => history.innerText(), { timeout: 10_000 }).toMatch(/取消告警\s*家属已找到老人/);
    await panel.getByRole('button', { name: '关闭' }).click();

    // Search: by the son's phone digits, the file opens without an alert, away status shown.
    await wall.locator('[data-testid=search-link]').click();
    await wall.locator('[data-testid=search-input]').fill('12345678');
    const hit = wall.locator('tr[data-household=home-zhuge]');
    await hit.waitFor();
    expect(await hit.locator('[data-testid=away]').innerText()).toContain('住院');
    await hit.locator('[data-action=open]').click();
    const drawer = wall.locator('[data-testid=household-drawer]');
    await drawer.waitFor();
    await expect.poll(() => drawer.innerText(), { timeout: 10_000 }).toContain('诸葛翠兰');
    expect(await drawer.innerText()).toContain('住院');
    expect(await drawer.innerText()).not.toContain('钥匙在302邻居家');
    await wall.locator('[data-testid=search-input]').fill('没有这个人');
    await wall.locator('[data-testid=no-matches]').waitFor();
    expect(await wall.locator('[data-testid=no-matches]').innerText()).toBe('没有找到住户');
    await wall.context().close();
  }, 90_000);

  it('gives the responder their own 360 px page, and "can\'t go" passes the alert on (English)', async () => {
    const clock = new ManualClock(instant(Date.parse(AT.day)));
    await h?.close();
    h = await startHarness({ clock, consoleDir, grids: 1, perGrid: 2 });
    const desk = await login(h.baseUrl, 'dispatcher');
    const worker = h.plan.staff.find((s) => s.id === 'grid-1-worker')!;
    const phone = await loggedInPage(browser, h.baseUrl, 'g1-worker', TEST_PASSWORD, PHONE);
    await phone.getByRole('button', { name: 'English' }).click();
    await phone.locator('[data-testid=responder-name]').waitFor();
    expect(await phone.locator('[data-testid=page-title]').innerText()).toBe('Guardian 365 · Responder');
    // The tab's title follows the page's language in an effect after the render: waited for, not raced.
    await expect
      .poll(() => phone.title(), { timeout: 15_000 })
      .toBe(`Guardian 365 · Responder · ${worker.name}`);
    expect(await phone.locator('[data-testid=responder-name]').innerText()).toBe(`${worker.name}’s alerts`);
    await phone.waitForFunction(() => !document.querySelector('[data-testid=offline-banner]'));

    const r = await apiCall<IncidentResult>(h.baseUrl, desk, 'POST', '/api/incidents', {
      householdId: 'home-1-01',
      category: 'fall',
      severity: 'critical',
      note: 'Neighbour heard a fall',
    });
    expect(r.status).toBe(201);
    const card = phone.locator(`article[data-alert-id="${r.body.alert.id}"]`);
    await card.waitFor({ timeout: 10_000 });
    expect(await card.innerText()).toContain('Phoned in: fall reported');
    const directions = card.locator('[data-testid=directions]');
    await directions.waitFor();
    // Everything fits the phone: nothing wider than the screen, the access-notes link a full-width tap target.
    expect(await phone.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(PHONE.width);
    const link = card.locator('[data-testid=access-notes-link]');
    const box = (await link.boundingBox())!;
    expect(box.x + box.width).toBeLessThanOrEqual(PHONE.width);
    expect(box.height).toBeGreaterThanOrEqual(44);
    expect(await link.innerText()).toContain('Access notes');
    await link.click();
    await card.locator('[data-testid=access-notes]').waitFor();

    await card.locator('[data-action=decline]').click();
    const decline = card.locator('[data-testid=decline-form]');
    await decline.locator('select[name=why]').selectOption({ label: 'On another alert' });
    await decline.getByRole('button', { name: 'Pass to the next responder' }).click();
    // Passed on at once: gone from this phone, the next responder has it, in the history with the reason.
    await card.waitFor({ state: 'detached', timeout: 10_000 });
    const after = await eventually(
      async () => {
        const a = (await apiCall<{ alert: Alert }>(h!.baseUrl, desk, 'GET', `/api/alerts/${r.body.alert.id}`))
          .body.alert;
        return a.assigneeId === 'grid-1-leader' ? a : undefined;
      },
      10_000,
      'passed to the leader',
    );
    expect(after.declined).toEqual(['grid-1-worker']);
    const history = (
      await apiCall<{ history: HistoryEntry[] }>(h.baseUrl, desk, 'GET', `/api/alerts/${r.body.alert.id}`)
    ).body.history;
    expect(history.find((x) => x.action === 'decline')).toMatchObject({
      actor: 'grid-1-worker',
      data: { reason: 'On another alert', to: 'grid-1-leader' },
    });
    const admin = await login(h.baseUrl, 'admin', ADMIN_PASSWORD);
    const audit = await apiCall<{ entries: AuditEntry[] }>(
      h.baseUrl,
      admin,
      'GET',
      '/api/audit?action=alert.decline',
    );
    expect(audit.body.entries.map((e) => [e.actor, e.target])).toEqual([['grid-1-worker', r.body.alert.id]]);
    await phone.context().close();
  }, 90_000);

  it('shows an empty community what to do first, with links, in both languages', async () => {
    const clock = new ManualClock(instant(Date.parse(AT.day)));
    const dir = tempDir();
    const service = new GuardianService({
      config: testConfig(dir.path),
      clock,
      log: silentLogger(),
      consoleDir,
    });
    await service.start();
    try {
      const base = `http://127.0.0.1:${service.httpPort}`;
      const page = await loggedInPage(browser, base, 'admin', ADMIN_PASSWORD, WALL);
      const steps = page.locator('[data-testid=first-start]');
      await steps.waitFor();
      expect(await steps.locator('h2').innerText()).toBe('开始使用：社区还没有登记完整，请按顺序完成');
      expect(await steps.locator('li').evaluateAll((l) => l.map((x) => x.getAttribute('data-step')))).toEqual(
        ['grids', 'staff', 'roster', 'households', 'devices'],
      );
      expect(await steps.locator('li').first().innerText()).toContain('登记网格');
      await page.getByRole('button', { name: 'English' }).click();
      await expect
        .poll(() => steps.locator('h2').innerText())
        .toBe('Getting started: the community is not fully registered yet; do these in order');
      expect(await steps.locator('a[data-link]').count()).toBe(5);
      await steps.locator('a[data-link=grids]').click();
      await page.waitForFunction(() => location.hash === '#/admin/grids');
      await page.locator('main').waitFor();
      await page.context().close();
    } finally {
      await service.stop();
      dir.remove();
    }
  }, 60_000);
});
