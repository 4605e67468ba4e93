/**
 * Rooms from the SPEC §3 vocabulary in Debian's Chromium: an admin imports a sensor typed in 卫生间 and
 * sees it as the bathroom it is; a device whose room the upgrade could not map is listed on the dispatch
 * screen's device health, with the text it was typed as, until an admin chooses its room.
 */
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SystemClock } from '../../kernel/clock.ts';
import { type Harness, startHarness, TEST_PASSWORD } from '../helpers.ts';
import { launchBrowser, loggedInPage, WALL } from './browser.ts';

const consoleDir = join(import.meta.dirname, '..', '..', 'console', 'public');
let browser: Browser;
let h: Harness;
let admin: Page;

beforeAll(async () => {
  browser = await launchBrowser();
  h = await startHarness({ clock: new SystemClock(), consoleDir });
  admin = await loggedInPage(browser, h.baseUrl, 'admin', 'admin-password-365', WALL);
});
afterAll(async () => {
  await admin?.context().close();
  await browser?.close();
  await h?.close();
});

async function section(name: string) {
  await admin.goto(`${h.baseUrl}/#/admin/${name}`);
  await admin.waitForSelector('main.admin');
}

describe('rooms on the console', () => {
  it('imports a sensor typed in 卫生间 from the admin page, shows its secret once, and its room as the bathroom', async () => {
    await section('importExport');
    const form = admin.locator('[data-testid=import-form]');
    await form.locator('select[name=kind]').selectOption('devices');
    await form.locator('input[name=file]').setInputFiles({
      name: 'devices.csv',
      mimeType: 'text/csv',
      buffer: Buffer.from('id,homeId,kind,room\nhome-1-01-motion-bath2,home-1-01,motion,卫生间\n'),
    });
    await form.locator('button[type=submit]').click();
    const secrets = form.locator('[data-testid=import-secrets]');
    await secrets.waitFor();
    expect(await secrets.locator('td').first().innerText()).toBe('home-1-01-motion-bath2');
    expect(await h.store.getDeviceState('home-1-01-motion-bath2')).toMatchObject({ room: 'bathroom' });

    await section('devices');
    await admin.locator('select[name=home]').selectOption('home-1-01');
    const room = admin.locator('tr[data-device-id=home-1-01-motion-bath2] [data-testid=device-room]');
    await room.waitFor();
    expect(await room.inputValue()).toBe('bathroom');
    expect(await room.locator('option:checked').innerText()).toBe('卫生间');
  });

  it('lists a device the upgrade could not map on the dispatch screen until an admin chooses its room', async () => {
    // What the upgrade leaves for a room it could not map (migration 8): `other`, with the typed text kept.
    const db = new Database(join(h.dir, 'guardian365.sqlite'));
    db.prepare(
      `UPDATE devices SET room = 'other', room_text = '阳台' WHERE id = 'home-1-02-motion-kitchen'`,
    ).run();
    db.close();

    const desk = await loggedInPage(browser, h.baseUrl, 'dispatcher', TEST_PASSWORD, WALL);
    const listed = desk.locator('[data-testid=device-health] [data-testid=unmapped-rooms]');
    await listed.locator('li', { hasText: '阳台' }).waitFor();
    expect(await listed.innerText()).toContain('home-1-02-motion-kitchen');

    await section('devices');
    await admin.locator('select[name=home]').selectOption('home-1-02');
    const row = admin.locator('tr[data-device-id=home-1-02-motion-kitchen]');
    await row.locator('.tag', { hasText: '阳台' }).waitFor();
    await row.locator('[data-testid=device-room]').selectOption('kitchen');
    await row.locator('.tag', { hasText: '阳台' }).waitFor({ state: 'detached' });
    expect(await h.store.getDeviceState('home-1-02-motion-kitchen')).toMatchObject({
      room: 'kitchen',
      roomText: null,
    });

    await desk.reload();
    await desk.locator('[data-testid=device-health] .health-counts').waitFor();
    expect(await desk.locator('[data-testid=unmapped-rooms]').count()).toBe(0);
    await desk.context().close();
  });
});
