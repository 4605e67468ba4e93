/**
 * The dispatch desk's calls and search, through the real service on both backends (test/store-factory.ts):
 * an incident phoned in is routed, escalated, SLA-timed, reported and audited like a sensor alert, marked
 * as phoned in (ALERT-03); households are found by address, resident name or phone within the reader's
 * grids, by a query in the database (CONSOLE-04).
 */
import { afterEach, describe, expect, it } from 'vitest';
import type {
  Alert,
  AuditEntry,
  HistoryEntry,
  HouseholdSearchResult,
  IncidentResult,
  SlaReport,
} from '../../dispatcher/api/types.ts';
import { householdSearch } from '../../dispatcher/store/store.ts';
import { ManualClock } from '../../kernel/clock.ts';
import { instant, minutes } from '../../kernel/time.ts';
import { apiCall, bareHousehold, eventually, type Harness, login, startHarness } from '../helpers.ts';
import { BACKENDS } from '../store-factory.ts';
import { liveClient } from './dispatch-helpers.ts';

const DAY = instant(Date.parse('2026-03-10T10:00:00+08:00'));
const ADMIN_PASSWORD = 'admin-password-365';
const closers: { close(): unknown }[] = [];
let h: Harness | undefined;
afterEach(async () => {
  for (const c of closers.splice(0)) await c.close();
  await h?.close();
  h = undefined;
});

describe('household search terms', () => {
  it('makes one escaped pattern per term, and a phone pattern only of digits', () => {
    expect(householdSearch('  张 13号楼 ')).toEqual({ text: ['%张%', '%13号楼%'], phone: [null, null] });
    expect(householdSearch('138-0013')).toEqual({ text: ['%138-0013%'], phone: ['%1380013%'] });
    expect(householdSearch('100%_\\')).toEqual({ text: ['%100\\%\\_\\\\%'], phone: [null] });
    expect(householdSearch('   ')).toBeNull();
  });
});

for (const b of BACKENDS) {
  describe.skipIf(b.skip)(`the dispatch desk on ${b.name}`, () => {
    it('opens an incident from a call that is routed, escalated, reported and audited like a fall', async () => {
      const clock = new ManualClock(DAY);
      h = await startHarness({ clock, backend: b.backend });
      const worker = await liveClient(h.baseUrl, 'g1-worker');
      const leader = await liveClient(h.baseUrl, 'g1-leader');
      closers.push(worker, leader);
      const desk = await login(h.baseUrl, 'dispatcher');

      const r = await apiCall<IncidentResult>(h.baseUrl, desk, 'POST', '/api/incidents', {
        householdId: 'home-1-01',
        category: 'wandering',
        severity: 'critical',
        note: '女儿来电：老人早上出门未归',
        caller: '女儿',
      });
      expect(r.status).toBe(201);
      const a = r.body.alert;
      expect(a).toMatchObject({
        rule: 'PHONE_REPORT',
        source: 'phone',
        category: 'wandering',
        severity: 'critical',
        gridId: 'grid-1',
        acceptDueAt: DAY + 3 * 60_000,
        onSiteDueAt: DAY + 15 * 60_000,
      });
      expect(a.explanation.zh).toBe('来电报告：走失（来电人：女儿）');
      expect(a.explanation.en).toBe('Phoned in: wandering (caller: 女儿)');
      expect(a.evidence[0]!.summary).toBe('女儿来电：老人早上出门未归');

      // Routed at once to the primary of the day roster, like a sensor alert (ROUTE-01).
      const first = await eventually(
        () => worker.got.notification.find((n) => n.alertId === a.id),
        10_000,
        'the primary told',
      );
      expect(first.reason).toBe('notify_primary');
      const notified = await eventually(
        async () => ((await h!.store.getAlert(a.id))?.state === 'notified' ? h!.store.getAlert(a.id) : null),
        10_000,
        'notified',
      );
      expect(notified!.responders[0]).toBe('grid-1-worker');

      // A second call while it is open adds to it (RULE-11).
      const again = await apiCall<IncidentResult>(h.baseUrl, desk, 'POST', '/api/incidents', {
        householdId: 'home-1-01',
        category: 'wandering',
        note: '邻居说在小区门口见过',
      });
      expect(again.status).toBe(200);
      expect(again.body).toMatchObject({ attached: true, alert: { id: a.id, triggerCount: 2 } });

      // 3 minutes without an accept: the ladder's next step (SLA-02).
      clock.advance(minutes(3));
      await eventually(
        () => leader.got.notification.find((n) => n.alertId === a.id && n.reason === 'notify_next'),
        10_000,
        'the 3-minute step',
      );

      const detail = await apiCall<{ history: HistoryEntry[] }>(
        h.baseUrl,
        desk,
        'GET',
        `/api/alerts/${a.id}`,
      );
      expect(detail.body.history[0]).toMatchObject({
        action: 'raised',
        actor: 'dispatcher-1',
        channel: 'api',
        data: { source: 'phone', category: 'wandering' },
      });
      const admin = await login(h.baseUrl, 'admin', ADMIN_PASSWORD);
      const audit = await apiCall<{ entries: AuditEntry[] }>(
        h.baseUrl,
        admin,
        'GET',
        '/api/audit?action=alert.report',
      );
      expect(audit.body.entries.map((e) => e.detail.attached)).toEqual([true, false]);
      // What the caller said stays in the alert, not in the audit line.
      expect(JSON.stringify(audit.body.entries)).not.toContain('出门');

      // The SLA report separates sensor alerts from incidents phoned in (accepted at 3:00, within 3 min).
      const supervisor = await login(h.baseUrl, 'supervisor');
      const worker2 = await apiCall<{ alert: Alert }>(
        h.baseUrl,
        worker.token,
        'POST',
        `/api/alerts/${a.id}/accept`,
      );
      expect(worker2.status).toBe(200);
      const report = await apiCall<SlaReport>(
        h.baseUrl,
        supervisor,
        'GET',
        `/api/reports/sla?from=${DAY - 3_600_000}&to=${DAY + 3_600_000}`,
      );
      expect(report.body.bySource.map((x) => [x.key, x.alerts, x.acceptedWithin3])).toEqual([
        ['phone', 1, 1],
      ]);
      const csv = await fetch(
        `${h.baseUrl}/api/reports/sla?from=${DAY - 3_600_000}&to=${DAY + 3_600_000}&format=csv`,
        { headers: { authorization: `Bearer ${supervisor}` } },
      );
      expect(await csv.text()).toMatch(/\r\nsource,phone,phone,1,1,/);
    });

    it('refuses a call for a household outside the desk, a responder, and a body without a category', async () => {
      const clock = new ManualClock(DAY);
      h = await startHarness({ clock, backend: b.backend });
      const desk = await login(h.baseUrl, 'dispatcher');
      const worker = await login(h.baseUrl, 'g1-worker');
      const body = { householdId: 'home-1-01', category: 'fall', note: '摔倒了' };
      expect((await apiCall(h.baseUrl, worker, 'POST', '/api/incidents', body)).status).toBe(403);
      expect(
        (await apiCall(h.baseUrl, desk, 'POST', '/api/incidents', { ...body, householdId: 'home-9-99' }))
          .status,
      ).toBe(404);
      const bad = await apiCall<{ message: string }>(h.baseUrl, desk, 'POST', '/api/incidents', {
        householdId: 'home-1-01',
        note: 'x',
      });
      expect(bad.status).toBe(400);
      expect(bad.body.message).toMatch(/category/);
      expect(await h.store.listAlerts({ state: 'open' })).toEqual([]);
    });

    it('finds households by part of an address, a resident name or a phone, within the reader’s grids', async () => {
      const clock = new ManualClock(DAY);
      h = await startHarness({ clock, backend: b.backend });
      await h.store.upsertHousehold(
        bareHousehold('home-zhang', 'grid-1', {
          address: { building: 'A座', unit: '2单元', room: '301' },
          residents: [{ name: '诸葛翠兰', age: 82, phone: '199 0013 8000' }],
          contacts: [{ name: '李明', relation: '儿子', phone: '198-1234-5678' }],
          accessNotes: '钥匙在302邻居家',
        }),
      );
      await h.store.upsertHousehold(
        bareHousehold('home-wang', 'grid-2', {
          address: { building: 'A座', unit: '1单元', room: '502' },
          residents: [{ name: '欧阳建国', phone: '19700000001' }],
        }),
      );
      const desk = await login(h.baseUrl, 'dispatcher');
      const find = async (token: string, q: string) =>
        (
          await apiCall<HouseholdSearchResult>(
            h!.baseUrl,
            token,
            'GET',
            `/api/search/households?q=${encodeURIComponent(q)}`,
          )
        ).body.households.map((x) => x.id);

      expect(await find(desk, '翠兰')).toEqual(['home-zhang']);
      expect(await find(desk, 'A座')).toEqual(['home-wang', 'home-zhang']);
      expect(await find(desk, 'A座 301')).toEqual(['home-zhang']);
      expect(await find(desk, 'A座2单元')).toEqual(['home-zhang']);
      expect(await find(desk, '99001380')).toEqual(['home-zhang']);
      expect(await find(desk, '1234-5678')).toEqual(['home-zhang']); // the son's phone
      expect(await find(desk, 'zhang')).toEqual(['home-zhang']); // the id
      expect(await find(desk, '钥匙')).toEqual([]); // access notes are never searched
      expect(await find(desk, '%')).toEqual([]);
      const hit = (
        await apiCall<HouseholdSearchResult>(h.baseUrl, desk, 'GET', '/api/search/households?q=翠兰')
      ).body.households[0]!;
      expect(hit).toEqual({
        id: 'home-zhang',
        gridId: 'grid-1',
        gridName: expect.any(String),
        address: { building: 'A座', unit: '2单元', room: '301' },
        residents: [{ name: '诸葛翠兰', phone: '199 0013 8000' }],
        awayUntil: null,
        awayReason: null,
      });
      expect(JSON.stringify(hit)).not.toContain('钥匙');

      // A grid's responder finds only their grid's households.
      const worker2 = await login(h.baseUrl, 'g2-worker');
      expect(await find(worker2, 'A座')).toEqual(['home-wang']);
      expect((await apiCall(h.baseUrl, null, 'GET', '/api/search/households?q=7')).status).toBe(401);
      expect((await apiCall(h.baseUrl, desk, 'GET', '/api/search/households?q=')).status).toBe(400);
    });
  });
}
