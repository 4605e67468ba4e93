/**
 * Admins correct what they entered, in Debian's Chromium, in zh-CN and in English (SPEC §4, DATA-04):
 * the device list across households with its filters, a device's kind corrected and a device retired; a
 * grid's leader picked by name; a household edited (several residents and contacts, routine, thresholds,
 * the learned baseline, away until a date) and another retired; the audit log filtered; the roster for
 * another week with a picker that offers responders only. Every change is checked through the API.
 */
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type {
  CommunityPolicy,
  DeviceListView,
  Grid,
  HouseholdFile,
  Staff,
} from '../../dispatcher/api/types.ts';
import { hasResponderRole } from '../../dispatcher/terms.ts';
import { device } from '../dispatcher/dispatch-helpers.ts';
import { AT, apiCall, clockAt, eventually, type Harness, login, startHarness } from '../helpers.ts';
import { launchBrowser, loggedInPage, WALL } from './browser.ts';

const consoleDir = join(import.meta.dirname, '..', '..', 'console', 'public');
const ADMIN_PASSWORD = 'admin-password-365';

/** Words each page must show in its language (and the other language's word it must not). */
const WORDS = {
  zh: {
    retire: '归档',
    lowBattery: '电量低',
    nextWeek: '下一周',
    saved: '已保存',
    not: 'Retire',
    policyDefault: '默认（SPEC 标准）',
    policyOwn: '本社区自定',
    breachRule: '超时步骤须在上门时限那一分钟',
    promise: '20 分钟内上门',
  },
  en: {
    retire: 'Retire',
    lowBattery: 'Low battery',
    nextWeek: 'Next week',
    saved: 'Saved',
    not: '归档',
    policyDefault: 'Default (the SPEC ladder)',
    policyOwn: "The community's own",
    breachRule: 'the sla_breach step is at onSiteWithinMin',
    promise: 'on site within 20 min',
  },
} as const;

for (const lang of ['zh', 'en'] as const) {
  describe(`correcting the registry in the browser (${lang})`, () => {
    const w = WORDS[lang];
    const clock = clockAt(AT.day);
    const closers: { close(): unknown }[] = [];
    let browser: Browser;
    let h: Harness;
    let page: Page;
    let token: string;
    const call = <T>(method: string, path: string, body?: unknown) =>
      apiCall<T>(h.baseUrl, token, method, path, body).then((r) => r.body);

    beforeAll(async () => {
      browser = await launchBrowser();
      h = await startHarness({ clock, consoleDir });
      token = await login(h.baseUrl, 'admin', ADMIN_PASSWORD);
      page = await loggedInPage(browser, h.baseUrl, 'admin', ADMIN_PASSWORD, WALL);
      await page.evaluate((l) => localStorage.setItem('g365.lang', l), lang);
      // A retirement asks first; the admin says yes.
      page.on('dialog', (d) => void d.accept());
    }, 60_000);
    afterAll(async () => {
      for (const c of closers) await c.close();
      await page?.context().close();
      await browser?.close();
      await h?.close();
    });

    async function section(name: string) {
      await page.goto(`${h.baseUrl}/#/admin/${name}`);
      await page.reload();
      await page.waitForSelector('main.admin');
    }
    const rows = (selector: string) => page.locator(`[data-testid=device-list] tbody tr${selector}`);

    it('lists devices across households, narrows them to low battery, corrects a kind and retires one', async () => {
      await section('devices');
      await expect.poll(() => rows('').count()).toBe(h.devices.length);
      const radar = await device(h, clock, 'home-1-01', 'fall');
      closers.push({ close: () => radar.disconnect() });
      await radar.send({ type: 'heartbeat', battery: 8 });
      const radarId = h.devices.find((d) => d.homeId === 'home-1-01' && d.kind === 'fall')!.id;
      await eventually(async () => {
        const list = await call<DeviceListView>('GET', '/api/devices?filter=low_battery');
        return list.devices.some((d) => d.id === radarId);
      });
      const filter = page.locator('[data-testid=device-filters] select[name=filter]');
      expect(await filter.locator('option[value=low_battery]').innerText()).toBe(w.lowBattery);
      await filter.selectOption('low_battery');
      await expect.poll(() => rows('').count()).toBe(1);
      expect(await rows('').getAttribute('data-device-id')).toBe(radarId);

      await filter.selectOption('');
      const motion = h.devices.find((d) => d.homeId === 'home-1-02' && d.kind === 'motion')!;
      await rows(`[data-device-id="${motion.id}"]`).locator('[data-testid=device-kind]').selectOption('fall');
      await eventually(async () => (await h.store.getDeviceState(motion.id))?.kind === 'fall');

      const door = h.devices.find((d) => d.homeId === 'home-2-02' && d.kind === 'door')!;
      const retire = rows(`[data-device-id="${door.id}"]`).locator('[data-testid=retire]');
      expect(await retire.innerText()).toBe(w.retire);
      await retire.click();
      await rows(`[data-device-id="${door.id}"]`).waitFor({ state: 'detached' });
      const left = await call<DeviceListView>('GET', '/api/devices');
      expect(left.devices.map((d) => d.id)).not.toContain(door.id);
      expect(await page.locator('main.admin').innerText()).not.toContain(w.not);
    });

    it("picks a grid's leader by name", async () => {
      await section('grids');
      await page.locator('tr[data-grid-id=grid-1] [data-testid=edit]').click();
      const form = page.locator('[data-testid=grid-form]');
      const leader = (await call<{ staff: Staff[] }>('GET', '/api/staff')).staff.find(
        (s) => s.id === 'grid-1-leader',
      )!;
      await form
        .locator('select[name=leaderId]')
        .selectOption({ label: `${leader.name} · ${leader.username}` });
      await form.locator('button[type=submit]').click();
      await form.locator('p.ok', { hasText: w.saved }).waitFor();
      const grids = (await call<{ grids: Grid[] }>('GET', '/api/grids')).grids;
      expect(grids.find((g) => g.id === 'grid-1')?.leaderId).toBe('grid-1-leader');
      await page.locator('tr[data-grid-id=grid-1] td', { hasText: leader.name }).waitFor();
    });

    it('edits a household: another resident and contact, routine, a threshold, the baseline, away; retires another', async () => {
      const before = (
        await call<{ household: HouseholdFile }>('GET', '/api/households/home-1-01?include=accessNotes')
      ).household;
      await section('households');
      await page.locator('tr[data-household-id=home-1-01] [data-testid=edit]').click();
      const form = page.locator('[data-testid=household-form]');
      await form.locator('input[name=id]').and(page.locator('[readonly]')).waitFor();
      await form.locator('[data-testid=add-resident]').click();
      const resident = form.locator(`[data-resident="${before.residents.length}"]`);
      await resident.locator('input').first().fill('李秀英');
      await resident.locator('input[type=number]').fill('81');
      await form.locator('[data-testid=add-contact]').click();
      const contact = form.locator(`[data-contact="${before.contacts.length}"]`);
      await contact.locator('input').nth(0).fill('李明');
      await contact.locator('input').nth(1).fill('儿子');
      await contact.locator('input[type=tel]').fill('13900000001');
      await form.locator('input[name=wakeTime]').fill('08:15');
      await form.locator('input[name=t_INACTIVITY]').fill('300');
      await form.locator('input[name=learnBaseline]').check();
      await form.locator('button[type=submit]').click();
      await form.locator('p.ok', { hasText: w.saved }).waitFor();
      const after = (
        await call<{ household: HouseholdFile }>('GET', '/api/households/home-1-01?include=accessNotes')
      ).household;
      expect(after.residents.at(-1)).toEqual({ name: '李秀英', age: 81 });
      expect(after.contacts.at(-1)).toEqual({ name: '李明', relation: '儿子', phone: '13900000001' });
      expect(after.residents.slice(0, -1)).toEqual(before.residents);
      expect(after.routine).toMatchObject({
        wakeTime: '08:15',
        thresholds: { INACTIVITY: 300 },
        learnBaseline: true,
      });
      // Saving from the edit form never erases what it did not show differently.
      expect(after.accessNotes).toBe(before.accessNotes);

      const away = page.locator('[data-testid=away-form]');
      await away.locator('input[name=until]').fill('2031-03-20');
      await away.locator('input[name=reason]').fill('住院');
      await away.locator('button[type=submit]').click();
      await away.locator('[data-testid=clear-away]').waitFor();
      const gone = (await call<{ household: HouseholdFile }>('GET', '/api/households/home-1-01')).household;
      // The end of that day in the community's zone (Asia/Shanghai, UTC+8).
      expect(gone.awayUntil).toBe(Date.parse('2031-03-20T23:59:00+08:00'));

      await page.locator('tr[data-household-id=home-2-02] [data-testid=retire]').click();
      await page.locator('tr[data-household-id=home-2-02]').waitFor({ state: 'detached' });
      const homes = (await call<{ households: HouseholdFile[] }>('GET', '/api/households')).households;
      expect(homes.map((x) => x.id)).not.toContain('home-2-02');
    });

    it('shows the audit log filtered by kind of action', async () => {
      await section('audit');
      const filters = page.locator('[data-testid=audit-filters]');
      await filters.locator('select[name=action]').selectOption('household.');
      await filters.locator('button[type=submit]').click();
      const listed = page.locator('[data-testid=audit-list] tbody tr');
      const actions = () => listed.evaluateAll((r) => r.map((x) => x.getAttribute('data-action') ?? ''));
      await expect
        .poll(
          async () => {
            const now = await actions();
            return now.includes('household.retire') && now.every((a) => a.startsWith('household.'));
          },
          { timeout: 10_000 },
        )
        .toBe(true);
      const shown = await actions();
      expect(shown.every((a) => a.startsWith('household.'))).toBe(true);
      expect(shown).toContain('household.upsert');
      expect(shown).toContain('household.away');
    });

    it('shows another week of the roster and offers responders only', async () => {
      await section('roster');
      const span = page.locator('[data-testid=week-span]');
      await expect.poll(() => span.innerText()).toMatch(/2031-03-\d\d – 2031-03-\d\d/);
      const first = await span.innerText();
      const next = page.locator('[data-testid=next-week]');
      expect(await next.innerText()).toContain(w.nextWeek);
      await next.click();
      await expect.poll(() => span.innerText()).not.toBe(first);
      const [from] = first.split(' – ');
      const shifted = new Date(Date.parse(`${from}T00:00:00Z`) + 7 * 86_400_000).toISOString().slice(0, 10);
      expect((await span.innerText()).startsWith(shifted)).toBe(true);
      const offered = await page
        .locator('[data-testid=roster-form] select[name=pick] option')
        .evaluateAll((o) => o.map((x) => (x as HTMLOptionElement).value).filter(Boolean));
      const staff = (await call<{ staff: Staff[] }>('GET', '/api/staff')).staff;
      const responders = staff.filter((s) => hasResponderRole(s.roles) && !s.disabled).map((s) => s.id);
      expect(offered.sort()).toEqual(responders.sort());
      expect(staff.some((s) => !hasResponderRole(s.roles))).toBe(true);
    });
    it("sets a community's promise and ladder; a policy that breaks the rules is refused in words", async () => {
      const policies = async () =>
        (await call<{ communities: CommunityPolicy[] }>('GET', '/api/escalation-policies')).communities;
      await section('escalation');
      const listed = page.locator('[data-testid=policy-list] tbody tr');
      await expect.poll(() => listed.count()).toBe((await policies()).length);
      const row = listed.first();
      const community = (await row.getAttribute('data-community'))!;
      expect(await row.locator('[data-testid=policy-origin]').innerText()).toBe(w.policyDefault);
      await row.locator('[data-testid=policy-edit]').click();
      const form = page.locator('[data-testid=policy-form]');
      const status = form.locator('[data-testid=policy-status]');

      // A 20-minute promise with the breach step still at minute 15: refused, with the reason, nothing saved.
      await form.locator('input[name=onSiteWithinMin]').fill('20');
      await form.locator('button[type=submit]').click();
      await expect.poll(() => status.getAttribute('class')).toBe('error');
      expect(await status.innerText()).toContain(w.breachRule);
      expect((await policies()).find((c) => c.community === community)!.isDefault).toBe(true);

      // The breach step moved to minute 20: saved, and the list says the community has its own.
      const steps = form.locator('[data-testid=policy-steps] tbody tr');
      await steps
        .nth((await steps.count()) - 1)
        .locator('input[name=afterMin]')
        .fill('20');
      expect(await form.locator('[data-testid=policy-preview]').innerText()).toContain(w.promise);
      await form.locator('button[type=submit]').click();
      await expect.poll(() => status.innerText()).toBe(w.saved);
      const saved = (await policies()).find((c) => c.community === community)!;
      expect(saved.isDefault).toBe(false);
      expect(saved.policy.onSiteWithinMin).toBe(20);
      expect(saved.policy.steps.at(-1)).toEqual({ kind: 'sla_breach', afterMin: 20 });
      await expect.poll(() => row.locator('[data-testid=policy-origin]').innerText()).toBe(w.policyOwn);
      expect(await row.innerText()).toContain(w.promise);
    });
  });
}
