/**
 * The admin pages in Debian's Chromium (SPEC §4, §8, §11): edit, disable and re-enable a
 * person and reset their password; build a roster line by picking people by name; add and delete a roster
 * override; export the registry and import CSV (a bad row applies nothing and is listed); disable a device
 * and rotate its secret. Every change is checked where it matters: login, routing, MQTT. The service runs
 * at fixed instants on the injected clock (the roster in each shift), never at the hour the suite runs.
 */
import { join } from 'node:path';
import mqtt from 'mqtt';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CoverageView, Grid, RosterEntry, RosterOverride } from '../../dispatcher/api/types.ts';
import { AT, apiCall, clockAt, type Harness, login, startHarness, TEST_PASSWORD } from '../helpers.ts';
import { launchBrowser, loggedInPage, WALL } from './browser.ts';

const consoleDir = join(import.meta.dirname, '..', '..', 'console', 'public');
const ADMIN_PASSWORD = 'admin-password-365';
let browser: Browser;
let h: Harness;
let page: Page;
let token: string;

beforeAll(async () => {
  browser = await launchBrowser();
  h = await startHarness({ clock: clockAt(AT.day), consoleDir });
  token = await login(h.baseUrl, 'admin', ADMIN_PASSWORD);
  page = await loggedInPage(browser, h.baseUrl, 'admin', ADMIN_PASSWORD, WALL);
});
afterAll(async () => {
  await page?.context().close();
  await browser?.close();
  await h?.close();
});

const loginStatus = async (username: string, password: string) =>
  (
    await fetch(`${h.baseUrl}/api/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username, password }),
    })
  ).status;

async function section(name: string) {
  await page.goto(`${h.baseUrl}/#/admin/${name}`);
  await page.waitForSelector('main.admin');
}

describe('the admin pages', () => {
  it('edits a person, disables and re-enables the account, and resets the password', async () => {
    await section('staff');
    const row = page.locator('tr[data-staff-id=grid-1-buddy]');
    await row.locator('[data-testid=edit-staff]').click();
    const editor = page.locator('[data-testid=staff-editor][data-staff-id=grid-1-buddy]');
    await editor.locator('input[name=name]').fill('王志愿');
    await editor.getByRole('button', { name: '保存' }).click();
    await row.locator('td', { hasText: '王志愿' }).waitFor();

    await editor.locator('[data-testid=toggle-disabled]').click();
    await row.locator('.tag.red').waitFor();
    expect(await loginStatus('g1-buddy', TEST_PASSWORD)).toBe(401);
    await editor.locator('[data-testid=toggle-disabled]').click();
    await row.locator('.tag.red').waitFor({ state: 'detached' });
    expect(await loginStatus('g1-buddy', TEST_PASSWORD)).toBe(200);

    await editor.locator('[data-testid=password-form] input[name=password]').fill('a-new-password-365');
    await editor.locator('[data-testid=password-form] button[type=submit]').click();
    await editor.locator('p.ok[role=status]').waitFor();
    expect(await loginStatus('g1-buddy', 'a-new-password-365')).toBe(200);
    expect(await loginStatus('g1-buddy', TEST_PASSWORD)).toBe(401);
  });

  // At a fixed instant on the injected clock, in each shift: at 01:20 the running shift is the night that
  // began the evening before, and an override must address it (SPEC §4).
  for (const [shiftName, iso] of [
    ['day', AT.day],
    ['night', AT.night],
  ] as const) {
    it(`builds a roster line by picking people by name, and deletes an override so routing follows (${shiftName} shift, ${iso})`, async () => {
      const r = await startHarness({ clock: clockAt(iso), consoleDir });
      const adminToken = await login(r.baseUrl, 'admin', ADMIN_PASSWORD);
      const p = await loggedInPage(browser, r.baseUrl, 'admin', ADMIN_PASSWORD, WALL);
      try {
        await p.goto(`${r.baseUrl}/#/admin/roster`);
        await p.locator('[data-testid=roster-week] td[data-running=true]').waitFor();
        const form = p.locator('[data-testid=roster-form]');
        await form.locator('select[name=shift]').selectOption('night');
        await form.locator('input[name=weekdays][value="6"]').check();
        const person = (id: string) => r.plan.staff.find((s) => s.id === id)!.name;
        const pick = async (id: string) => {
          const option = form.locator('select[name=pick] option', { hasText: person(id) });
          await form.locator('select[name=pick]').selectOption((await option.getAttribute('value'))!);
          await form.locator(`[data-testid=roster-order] li[data-staff-id="${id}"]`).waitFor();
        };
        await pick('grid-1-property');
        await pick('grid-1-social');
        // The second becomes primary.
        await form.getByRole('button', { name: `↑ ${person('grid-1-social')}` }).click();
        await form.getByRole('button', { name: '保存' }).click();
        await form.locator('p.ok').waitFor();
        const roster = await apiCall<{ entries: RosterEntry[] }>(
          r.baseUrl,
          adminToken,
          'GET',
          '/api/roster?grid=grid-1',
        );
        expect(roster.body.entries).toContainEqual({
          gridId: 'grid-1',
          shift: 'night',
          weekdays: [6],
          staffIds: ['grid-1-social', 'grid-1-property'],
        });

        const coverage = async () =>
          (await apiCall<CoverageView>(r.baseUrl, adminToken, 'GET', '/api/households/home-1-01/coverage'))
            .body;
        const before = await coverage();
        // The shift in force, dated by the day it started: at 01:20 Thursday, Wednesday's night.
        expect([before.shift, before.shiftDate]).toEqual([shiftName, '2031-03-12']);
        const running = p.locator('[data-testid=roster-week] td[data-running=true]');
        expect([await running.getAttribute('data-date'), await running.getAttribute('data-shift')]).toEqual([
          before.shiftDate,
          before.shift,
        ]);
        const onDutyInGrid = () =>
          running
            .locator('[data-testid=on-duty] li')
            .evaluateAll((li) => li.map((x) => x.getAttribute('data-staff-id')));
        expect(await onDutyInGrid()).toEqual(before.staff.map((s) => s.id));

        // The override form opens on the running shift and says so; nothing is typed into date or shift.
        const overrideForm = p.locator('[data-testid=override-form]');
        expect(await overrideForm.locator('input[name=date]').inputValue()).toBe(before.shiftDate);
        expect(await overrideForm.locator('select[name=shift]').inputValue()).toBe(before.shift);
        expect(await overrideForm.locator('[data-testid=override-target]').getAttribute('data-running')).toBe(
          'true',
        );
        expect(await p.locator('[data-testid=running-shift]').innerText()).toContain(
          shiftName === 'night' ? '03-12 20:00 → 03-13 08:00' : '03-12 08:00 → 03-12 20:00',
        );

        // The primary takes leave with a substitute from the other grid: the substitute takes their place.
        const primary = before.staff[0]!.id;
        const substitute = shiftName === 'night' ? 'grid-2-social' : 'grid-2-worker';
        await overrideForm.locator('select[name=kind]').selectOption('leave');
        await overrideForm.locator('select[name=staffId]').selectOption(primary);
        await overrideForm.locator('select[name=replacementId]').selectOption(substitute);
        await overrideForm.locator('button[type=submit]').click();
        const listed = p.locator('[data-testid=override-list] li[data-override-id]');
        await listed.first().waitFor();
        const expected = before.staff.map((s) => (s.id === primary ? substitute : s.id));
        expect((await coverage()).staff.map((s) => s.id)).toEqual(expected);
        // The week grid shows what routing does.
        await expect.poll(onDutyInGrid).toEqual(expected);
        expect(await running.locator(`.struck[data-off-id="${primary}"]`).count()).toBe(1);

        // … and deleting the override puts them back at once.
        await listed.first().locator('[data-testid=delete-override]').click();
        await listed.first().waitFor({ state: 'detached' });
        const after = await apiCall<{ overrides: RosterOverride[] }>(
          r.baseUrl,
          adminToken,
          'GET',
          '/api/roster?grid=grid-1',
        );
        expect(after.body.overrides).toEqual([]);
        expect((await coverage()).staff.map((s) => s.id)).toEqual(before.staff.map((s) => s.id));
        await expect.poll(onDutyInGrid).toEqual(before.staff.map((s) => s.id));
        const audit = await r.store.listAudit(1000);
        expect(audit.some((e) => e.action === 'roster.override_delete' && e.target === 'grid-1')).toBe(true);
      } finally {
        await p.context().close();
        await r.close();
      }
    });
  }

  it('exports the registry and imports CSV, refusing a file with a bad row and listing it', async () => {
    await section('importExport');
    const href = (await page.locator('[data-testid=export-json]').getAttribute('href'))!;
    const exported = await page.evaluate(async (u) => (await fetch(u)).json(), href);
    expect((exported as { grids: Grid[] }).grids.map((g) => g.id)).toContain('grid-1');

    const form = page.locator('[data-testid=import-form]');
    await form.locator('select[name=kind]').selectOption('grids');
    const upload = (name: string, text: string) =>
      form
        .locator('input[name=file]')
        .setInputFiles({ name, mimeType: 'text/csv', buffer: Buffer.from(text) });
    await upload('bad.csv', 'id,name,community,leaderId\ngrid-9,第九网格,阳光社区,\n,无编号,阳光社区,\n');
    await form.locator('button[type=submit]').click();
    // Row 3 as a spreadsheet shows it (the header is row 1): the one without an id.
    await form.locator('[data-testid=import-problems] td:first-child', { hasText: /^3$/ }).waitFor();
    expect(await form.locator('[data-testid=import-problems] tr').count()).toBe(1);
    const grids = async () =>
      (await apiCall<{ grids: Grid[] }>(h.baseUrl, token, 'GET', '/api/grids')).body.grids.map((g) => g.id);
    expect(await grids()).not.toContain('grid-9');

    await upload('good.csv', 'id,name,community,leaderId\ngrid-9,第九网格,阳光社区,\n');
    await form.locator('button[type=submit]').click();
    await form.locator('[data-testid=import-result]').waitFor();
    expect(await grids()).toContain('grid-9');
  });

  it('disables a device so it cannot connect, and rotates its secret so only the new one works', async () => {
    const identity = h.devices.find((d) => d.homeId === 'home-2-01' && d.kind === 'door')!;
    const connect = (password: string) =>
      mqtt.connectAsync({
        host: '127.0.0.1',
        port: h.service.mqttPort,
        protocolVersion: 4,
        clientId: identity.id,
        username: identity.id,
        password,
        reconnectPeriod: 0,
        connectTimeout: 10_000,
      });
    await section('devices');
    await page.locator('select[name=home]').selectOption('home-2-01');
    const row = page.locator(`[data-testid=device-list] tr[data-device-id="${identity.id}"]`);
    await row.locator('[data-testid=toggle-device]').click();
    await row.locator('.tag.red').waitFor();
    await expect(connect(identity.secret)).rejects.toThrow();
    await row.locator('[data-testid=toggle-device]').click();
    await row.locator('.tag.red').waitFor({ state: 'detached' });
    const ok = await connect(identity.secret);
    await ok.endAsync();

    await row.locator('[data-testid=rotate-secret]').click();
    const secret = await page.locator('[data-testid=secret]').innerText();
    expect(secret).not.toBe(identity.secret);
    await expect(connect(identity.secret)).rejects.toThrow();
    const fresh = await connect(secret);
    expect(fresh.connected).toBe(true);
    await fresh.endAsync();
  });
});
