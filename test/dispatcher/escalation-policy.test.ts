/**
 * The escalation ladder is data, frozen on the alert (ESC-01, ESC-02, ESC-03): a community's own policy is
 * checked when saved, each alert keeps the policy it was raised under, its stored deadlines follow that
 * snapshot, and an edit never moves the clock of an alert already running. The pure ladder with the
 * manual clock's exact milliseconds; the whole service (real MQTT radar, HTTP API) on SQLite and PostgreSQL.
 */
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runDueSteps } from '../../dispatcher/alerts/escalation.ts';
import { raise } from '../../dispatcher/alerts/lifecycle.ts';
import type { Alert } from '../../dispatcher/alerts/model.ts';
import { DEFAULT_POLICY, type EscalationPolicy, ladderOf } from '../../dispatcher/alerts/policy.ts';
import type { Trigger } from '../../dispatcher/rules/trigger.ts';
import { ManualClock } from '../../kernel/clock.ts';
import { instant, ms } from '../../kernel/time.ts';
import { apiCall, type Harness, login, startHarness } from '../helpers.ts';
import { BACKENDS, testDatabase } from '../store-factory.ts';
import { raiseFall } from './dispatch-helpers.ts';

const MIN = 60_000;
const T0 = Date.parse('2026-03-10T10:00:00+08:00');
const ADMIN_PASSWORD = 'admin-password-365';
const RURAL = '乡村社区';

/** A rural community's promise: on site within 20 minutes, its steps later than SPEC §6's. */
const TWENTY: EscalationPolicy = {
  acceptWithinMin: 5,
  onSiteWithinMin: 20,
  steps: [
    { kind: 'notify_primary', afterMin: 0 },
    { kind: 'notify_next', afterMin: 5, repeat: { everyMin: 2, times: 2 } },
    { kind: 'notify_all', afterMin: 10 },
    { kind: 'sla_at_risk', afterMin: 16 },
    { kind: 'sla_breach', afterMin: 20 },
  ],
};

const fall = (at = T0): Trigger => ({
  rule: 'FALL',
  householdId: 'h1',
  deviceId: 'd1',
  at,
  evidence: { seq: 1, deviceId: 'd1', type: 'fall', at, summary: 'fall' },
  explanation: { zh: '', en: '' },
});

describe('escalation ladder as data', () => {
  it('orders a policy with repeats into one ladder, each repeat a round of its step', () => {
    expect(ladderOf(TWENTY).map((s) => [s.kind, s.after / MIN, s.round])).toEqual([
      ['notify_primary', 0, 0],
      ['notify_next', 5, 0],
      ['notify_next', 7, 1],
      ['notify_next', 9, 2],
      ['notify_all', 10, 0],
      ['sla_at_risk', 16, 0],
      ['sla_breach', 20, 0],
    ]);
  });

  it('stores the deadlines of the policy an alert is raised under, and keeps a copy of it', () => {
    const policy = structuredClone(TWENTY);
    const a = raise(fall(), { id: 'a1', gridId: 'g', community: RURAL, responders: ['p1'], policy }).alert;
    expect(a.acceptDueAt).toBe(T0 + 5 * MIN);
    expect(a.onSiteDueAt).toBe(T0 + 20 * MIN);
    policy.onSiteWithinMin = 30;
    expect(a.policy?.onSiteWithinMin).toBe(20);
    const byDefault = raise(fall(), { id: 'a2', gridId: 'g', community: 'c', responders: ['p1'] }).alert;
    expect(byDefault.onSiteDueAt).toBe(T0 + 15 * MIN);
    expect(byDefault.policy).toEqual(DEFAULT_POLICY);
  });

  it('breaches a 20-minute alert at 20 min, not at 15 min − nor 20 min − 1 ms, and repeats its notices', () => {
    let a: Alert = raise(fall(), {
      id: 'a1',
      gridId: 'g',
      community: RURAL,
      responders: ['p1', 'p2'],
      policy: TWENTY,
    }).alert;
    const rounds: number[] = [];
    const step = (now: number) => {
      const out = runDueSteps(a, now, a.nextStep);
      if (out) {
        a = out.alert;
        rounds.push(...out.notify.filter((n) => n.reason === 'notify_next').map((n) => n.round));
      }
      return out;
    };
    step(T0);
    for (const m of [5, 7, 9, 10, 16]) step(T0 + m * MIN);
    expect(rounds).toEqual([0, 0, 1, 1, 2, 2]);
    expect(step(T0 + 15 * MIN)).toBeNull();
    expect(step(T0 + 20 * MIN - 1)).toBeNull();
    expect(a.slaBreached).toBe(false);
    step(T0 + 20 * MIN);
    expect(a.slaBreached).toBe(true);
    expect(a.slaBreachedAt).toBe(T0 + 20 * MIN);
  });
});

for (const { backend, name, skip } of BACKENDS) {
  describe.skipIf(skip)(`escalation policies in the service (${name})`, () => {
    let h: Harness;
    let admin: string;
    const clock = new ManualClock(instant(T0));
    const closers: { close(): unknown }[] = [];

    beforeAll(async () => {
      h = await startHarness({ clock, grids: 2, perGrid: 1, backend });
      admin = await login(h.baseUrl, 'admin', ADMIN_PASSWORD);
      const grid2 = (await h.store.getGrid('grid-2'))!;
      const moved = await apiCall(h.baseUrl, admin, 'POST', '/api/grids', { ...grid2, community: RURAL });
      expect(moved.status).toBe(201);
    }, 60_000);

    afterAll(async () => {
      for (const c of closers) await c.close();
      await h?.close();
    });

    const stored = async (id: string): Promise<Alert> => (await h.store.getAlert(id))!;
    /** A neighbour's call about the household, entered by the dispatch desk (ALERT-03). */
    const phoneIn = async (householdId: string, note: string) =>
      apiCall<{ alert: Alert }>(h.baseUrl, await login(h.baseUrl, 'dispatcher'), 'POST', '/api/incidents', {
        householdId,
        category: 'unwell',
        severity: 'high',
        note,
        caller: '邻居',
      });
    const put = (community: string, body: unknown, token = admin) =>
      apiCall<{ policy?: { policy: EscalationPolicy }; message?: string; problems?: unknown[] }>(
        h.baseUrl,
        token,
        'PUT',
        `/api/escalation-policies/${encodeURIComponent(community)}`,
        body,
      );

    it('refuses an invalid policy with a 400 that names every field, and a non-admin with a 403', async () => {
      const bad = await put(RURAL, {
        acceptWithinMin: 30,
        onSiteWithinMin: 20,
        steps: [
          { kind: 'notify_next', afterMin: 0 },
          { kind: 'sla_breach', afterMin: 25 },
          { kind: 'sla_at_risk', afterMin: 12 },
        ],
      });
      expect(bad.status).toBe(400);
      expect(bad.body.message).toContain('body.acceptWithinMin: must not be later than onSiteWithinMin');
      expect(bad.body.message).toContain('body.steps.0: the first step must be notify_primary at minute 0');
      expect(bad.body.message).toContain('body.steps.2.afterMin: steps must be in order of minutes');
      expect(bad.body.message).toContain('body.steps.1.afterMin: the sla_breach step is at onSiteWithinMin');
      expect(bad.body.problems).toHaveLength(4);
      const typo = await put(RURAL, { ...TWENTY, steps: [{ kind: 'call_mum', afterMin: 0 }] });
      expect(typo.status).toBe(400);
      expect(typo.body.message).toMatch(/^body\.steps\.0\.kind: must be one of notify_primary/);
      expect((await put('无此社区', TWENTY)).status).toBe(404);
      const dispatcher = await login(h.baseUrl, 'dispatcher');
      expect((await put(RURAL, TWENTY, dispatcher)).status).toBe(403);
      const shown = await apiCall<{ communities: { community: string; isDefault: boolean }[] }>(
        h.baseUrl,
        dispatcher,
        'GET',
        '/api/escalation-policies',
      );
      expect(shown.body.communities.find((c) => c.community === RURAL)?.isDefault).toBe(true);
    });

    it('gives a 20-minute community its own stored deadline and breach, shown on the alert', async () => {
      const saved = await put(RURAL, TWENTY);
      expect(saved.status).toBe(200);
      expect(saved.body.policy?.policy.onSiteWithinMin).toBe(20);
      const alert = await raiseFall(h, clock, 'home-2-01', closers);
      expect(alert.onSiteDueAt).toBe(alert.raisedAt + 20 * MIN);
      expect(alert.acceptDueAt).toBe(alert.raisedAt + 5 * MIN);
      const shown = await apiCall<{ alert: Alert }>(h.baseUrl, admin, 'GET', `/api/alerts/${alert.id}`);
      expect(shown.body.alert.policy).toEqual(TWENTY);
      await clock.advanceTo(instant(alert.raisedAt + 20 * MIN - 1));
      // The clock awaited every step's work: what is stored now is what the ladder did by then.
      expect(await stored(alert.id)).toMatchObject({ slaAtRisk: true, slaBreached: false });
      await clock.advance(ms(1));
      const breached = await stored(alert.id);
      expect(breached.slaBreached).toBe(true);
      expect(breached.slaBreachedAt).toBe(alert.raisedAt + 20 * MIN);
      // An incident phoned in for the same community runs under the same promise (ESC-02, ALERT-03).
      const call = await phoneIn('home-2-01', '邻居来电：老人说头晕');
      expect(call.status).toBe(201);
      expect(call.body.alert.policy).toEqual(TWENTY);
      expect(call.body.alert.onSiteDueAt).toBe(call.body.alert.raisedAt + 20 * MIN);
      const report = await apiCall<{ promises: { key: string; alerts: number; communities: string[] }[] }>(
        h.baseUrl,
        admin,
        'GET',
        `/api/reports/sla?from=${new Date(T0 - 86_400_000).toISOString()}&to=${new Date(T0 + 86_400_000).toISOString()}`,
      );
      expect(report.status).toBe(200);
      expect(report.body.promises).toContainEqual({
        key: '5/20',
        acceptWithinMin: 5,
        onSiteWithinMin: 20,
        alerts: 2,
        communities: [RURAL],
      });
    });

    it('leaves the next step of an alert mid-escalation at its stored minute when the policy is edited', async () => {
      const alert = await raiseFall(h, clock, 'home-1-01', closers);
      const community = alert.community;
      const t0 = alert.raisedAt;
      await clock.advanceTo(instant(t0 + 3 * MIN));
      const mid = await stored(alert.id);
      expect(mid.nextStepAt).toBe(t0 + 6 * MIN);
      // The community now promises 30 minutes and tells everyone at 20: not this alert's clock.
      const later: EscalationPolicy = {
        acceptWithinMin: 10,
        onSiteWithinMin: 30,
        steps: [
          { kind: 'notify_primary', afterMin: 0 },
          { kind: 'notify_all', afterMin: 20 },
          { kind: 'sla_breach', afterMin: 30 },
        ],
      };
      expect((await put(community, later)).status).toBe(200);
      const after = (await h.store.getAlert(alert.id))!;
      expect(after.nextStepAt).toBe(mid.nextStepAt);
      expect(after.nextStep).toBe(mid.nextStep);
      expect(after.onSiteDueAt).toBe(t0 + 15 * MIN);
      expect(after.policy).toEqual(DEFAULT_POLICY);
      await clock.advanceTo(instant(t0 + 6 * MIN));
      // Everyone on duty told at the stored 6 minutes.
      const flagged = await stored(alert.id);
      expect(flagged.flagged).toBe(true);
      expect(flagged.nextStepAt).toBe(t0 + 12 * MIN);
      const history = await h.store.alertHistory(alert.id);
      expect(history.filter((e) => e.action === 'escalate').map((e) => [e.at - t0, e.data.step])).toEqual([
        [3 * MIN, 'notify_next'],
        [6 * MIN, 'notify_all'],
      ]);
      // An alert raised from now on keeps the new policy, though the fall read the old one (and it was kept).
      const call = await phoneIn('home-1-01', '邻居来电：老人说胸闷');
      expect(call.status).toBe(201);
      expect(call.body.alert.policy).toEqual(later);
      expect(call.body.alert.onSiteDueAt).toBe(call.body.alert.raisedAt + 30 * MIN);
    });
  });

  describe.skipIf(skip)(`migration 11 (${name})`, () => {
    it('gives alerts raised before it the SPEC §6 ladder as their snapshot, technical ones none', async () => {
      const db = await testDatabase(backend);
      const store = db.open();
      try {
        await store.migrate();
        await store.upsertGrid({ id: 'g1', name: 'Grid 1', community: 'c', leaderId: null });
        const old = raise(fall(), { id: 'al_old', gridId: 'g1', community: 'c', responders: ['p1'] }).alert;
        delete old.policy;
        const battery = raise(
          { ...fall(), rule: 'LOW_BATTERY', householdId: 'h2' },
          { id: 'al_tech', gridId: 'g1', community: 'c', responders: [] },
        ).alert;
        await store.commitRules({
          cursor: { name: 'rules', seq: 0 },
          homeStates: [],
          raised: [old, battery],
          updated: [],
          history: [],
        });
        expect((await store.getAlert('al_old'))?.policy).toBeUndefined();
        const forget = 'DELETE FROM schema_migrations WHERE version = 11';
        if (backend === 'sqlite') {
          const raw = new Database(db.location.where);
          raw.exec(forget);
          raw.close();
        } else {
          const raw = new pg.Client({ connectionString: db.location.where });
          await raw.connect();
          await raw.query(forget);
          await raw.end();
        }
        expect(await store.migrate()).toBe(1);
        expect((await store.getAlert('al_old'))?.policy).toEqual(DEFAULT_POLICY);
        expect((await store.getAlert('al_tech'))?.policy).toBeUndefined();
      } finally {
        await store.close();
        await db.remove();
      }
    });
  });
}
