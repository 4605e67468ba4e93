import { describe, expect, it } from 'vitest';
import { LADDER, reschedule, runDueSteps } from '../../dispatcher/alerts/escalation.ts';
import {
  attach,
  queueMaintenance,
  raise,
  suggestArrival,
  transition,
} from '../../dispatcher/alerts/lifecycle.ts';
import type { Alert } from '../../dispatcher/alerts/model.ts';
import type { Trigger } from '../../dispatcher/rules/trigger.ts';

const T0 = Date.UTC(2026, 2, 10, 2, 0); // 10:00 in Shanghai
const MIN = 60_000;

const fall = (at = T0): Trigger => ({
  rule: 'FALL',
  householdId: 'h1',
  deviceId: 'h1-fall',
  at,
  evidence: { seq: 1, deviceId: 'h1-fall', type: 'fall', at, summary: 'fall detected in bathroom' },
  explanation: { zh: '跌倒', en: 'fall' },
});

const raised = (): Alert =>
  raise(fall(), { id: 'a1', gridId: 'g1', community: 'c', responders: ['p1', 'p2', 'p3'] }).alert;
/** Runs the ladder as the service does: each time the stored next step comes due. */
function runUntil(a: Alert, now: number): { alert: Alert; notified: string[][] } {
  const notified: string[][] = [];
  let cur = a;
  while (cur.nextStepAt !== null && cur.nextStepAt <= now) {
    const out = runDueSteps(cur, cur.nextStepAt, cur.nextStep);
    if (!out) break;
    notified.push(out.notify.map((n) => n.staffId));
    cur = out.alert;
  }
  return { alert: cur, notified };
}

describe('raising an alert', () => {
  it('stores the SLA deadlines with the alert: accept by +3 min, on site by +15 min', () => {
    const a = raised();
    expect(a).toMatchObject({
      state: 'raised',
      severity: 'critical',
      acceptDueAt: T0 + 3 * MIN,
      onSiteDueAt: T0 + 15 * MIN,
      nextStepAt: T0,
    });
  });

  it('attaches a re-trigger as evidence instead of opening another alert', () => {
    const a = attach(raised(), fall(T0 + 5000)).alert;
    expect(a.triggerCount).toBe(2);
    expect(a.lastTriggeredAt).toBe(T0 + 5000);
    expect(a.evidence).toHaveLength(2);
    expect(a.version).toBe(2);
  });
});

describe('escalation ladder (SPEC §6)', () => {
  it('notifies the primary responder at once', () => {
    const { alert, notified } = runUntil(raised(), T0);
    expect(notified).toEqual([['p1']]);
    expect(alert.state).toBe('notified');
    expect(alert.nextStepAt).toBe(T0 + 3 * MIN);
  });

  it('escalates to the next responder 3 minutes after raise when nobody accepted, not 1 ms before', () => {
    const { alert } = runUntil(raised(), T0);
    expect(runDueSteps(alert, T0 + 3 * MIN - 1, alert.nextStep)).toBeNull();
    const out = runDueSteps(alert, T0 + 3 * MIN, alert.nextStep)!;
    expect(out.notify.map((n) => n.staffId)).toEqual(['p1', 'p2']);
  });

  it('notifies every on-duty responder and flags the alert at 6 minutes', () => {
    const { alert, notified } = runUntil(raised(), T0 + 6 * MIN);
    expect(notified.at(-1)).toEqual(['p1', 'p2', 'p3']);
    expect(alert.flagged).toBe(true);
  });

  it('warns at 12 minutes and marks the breach at 15 minutes when nobody is on site', () => {
    const at12 = runUntil(raised(), T0 + 12 * MIN).alert;
    expect(at12.slaAtRisk).toBe(true);
    expect(at12.slaBreached).toBe(false);
    expect(runUntil(at12, T0 + 15 * MIN - 1).alert.slaBreached).toBe(false);
    const out = runDueSteps(at12, T0 + 15 * MIN, at12.nextStep)!;
    expect(out.alert.slaBreached).toBe(true);
    expect(out.notifySupervisors).toBe(true);
    expect(out.alert.nextStepAt).toBeNull();
  });

  it('records when the SLA went at risk and breached, and which supervisors were told (none: an empty list)', () => {
    const at12 = runUntil(raised(), T0 + 12 * MIN).alert;
    expect(at12.slaAtRiskAt).toBe(T0 + 12 * MIN);
    const told = runDueSteps(at12, T0 + 15 * MIN, at12.nextStep, [], ['sup1', 'sup2'])!;
    expect(told.alert).toMatchObject({ slaBreachedAt: T0 + 15 * MIN, supervisorsNotified: ['sup1', 'sup2'] });
    expect(told.history.find((e) => e.action === 'sla_breach')?.data).toEqual({ to: ['sup1', 'sup2'] });
    // A restart long after the breach runs the overdue steps at once, each at its own due time.
    const late = runDueSteps(raised(), T0 + 40 * MIN, 0, [], [])!;
    expect(late.alert).toMatchObject({
      slaAtRiskAt: T0 + 12 * MIN,
      slaBreachedAt: T0 + 15 * MIN,
      supervisorsNotified: [],
    });
    expect(late.notifySupervisors).toBe(true);
  });

  it('skips the accept steps once accepted but keeps the on-site clock', () => {
    const notified = runUntil(raised(), T0).alert;
    const accepted = transition(
      notified,
      { type: 'accept' },
      { id: 'p1', channel: 'api', canOverride: false },
      T0 + MIN,
    );
    expect(accepted.ok).toBe(true);
    const a = reschedule(accepted.ok ? accepted.value.alert : notified);
    expect(a.nextStepAt).toBe(T0 + 12 * MIN);
    expect(LADDER[a.nextStep]!.kind).toBe('sla_at_risk');
  });

  it('does nothing when a stale timer fires with an old step token', () => {
    const { alert } = runUntil(raised(), T0 + 3 * MIN);
    expect(runDueSteps(alert, T0 + 3 * MIN, 0)).toBeNull();
  });
});

describe('transitions', () => {
  const actor = { id: 'p1', channel: 'api' as const, canOverride: false };

  it('refuses to accept a resolved alert and says which state it is in', () => {
    let a = runUntil(raised(), T0).alert;
    for (const step of [
      { type: 'accept' },
      { type: 'on-site' },
      { type: 'resolve', outcome: 'assisted', note: 'ok' },
    ] as const) {
      const r = transition(a, step, actor, T0 + MIN);
      if (!r.ok) throw new Error(r.message);
      a = r.value.alert;
    }
    const again = transition(a, { type: 'accept' }, actor, T0 + 2 * MIN);
    expect(again).toMatchObject({ ok: false, code: 'invalid_transition', details: { state: 'resolved' } });
  });

  it('lets only the assignee go en route unless the actor may override', () => {
    const a = transition(runUntil(raised(), T0).alert, { type: 'accept' }, actor, T0 + MIN);
    if (!a.ok) throw new Error(a.message);
    expect(transition(a.value.alert, { type: 'en-route' }, { ...actor, id: 'p2' }, T0 + MIN).ok).toBe(false);
    expect(
      transition(
        a.value.alert,
        { type: 'en-route' },
        { id: 'd1', channel: 'api', canOverride: true },
        T0 + MIN,
      ).ok,
    ).toBe(true);
  });

  it('records who, when and through which channel in the history', () => {
    const r = transition(runUntil(raised(), T0).alert, { type: 'accept' }, actor, T0 + MIN);
    if (!r.ok) throw new Error(r.message);
    expect(r.value.history).toEqual([
      expect.objectContaining({
        action: 'accept',
        fromState: 'notified',
        toState: 'accepted',
        actor: 'p1',
        channel: 'api',
        at: T0 + MIN,
      }),
    ]);
  });
});

describe('arrival and maintenance', () => {
  const actor = { id: 'p1', channel: 'api' as const, canOverride: false };
  const enRoute = () => {
    let a = runUntil(raised(), T0).alert;
    for (const step of [{ type: 'accept' }, { type: 'en-route' }] as const) {
      const r = transition(a, step, actor, T0 + MIN);
      if (!r.ok) throw new Error(r.message);
      a = r.value.alert;
    }
    return a;
  };
  const door = (at: number) => ({ at, deviceId: 'h1-door', seq: 9 });

  it('suggests arrival for a door opening after en route, once, and not for one before', () => {
    const a = enRoute();
    expect(suggestArrival(a, door(T0 + MIN - 1), T0 + 2 * MIN)).toBeNull();
    const r = suggestArrival(a, door(T0 + 5 * MIN), T0 + 5 * MIN)!;
    expect(r.alert).toMatchObject({ state: 'en_route', arrivalSuggestedAt: T0 + 5 * MIN, onSiteAt: null });
    expect(r.history[0]).toMatchObject({
      action: 'arrival_suggested',
      data: { deviceId: 'h1-door', seq: 9 },
    });
    expect(suggestArrival(r.alert, door(T0 + 6 * MIN), T0 + 6 * MIN)).toBeNull();
  });

  it('does not suggest arrival before anyone is en route', () => {
    expect(suggestArrival(runUntil(raised(), T0).alert, door(T0 + MIN), T0 + MIN)).toBeNull();
  });

  it('queues only open technical alerts for maintenance, once', () => {
    const battery = raise(
      { ...fall(), rule: 'LOW_BATTERY' },
      { id: 'a2', gridId: 'g1', community: 'c', responders: ['p1'] },
    ).alert;
    expect(battery).toMatchObject({ nextStepAt: null, responders: [] });
    const q = queueMaintenance(battery, T0 + 86_400_000, T0)!;
    expect(q.alert.maintenanceDueAt).toBe(T0 + 86_400_000);
    expect(queueMaintenance(q.alert, T0, T0)).toBeNull();
    expect(queueMaintenance(raised(), T0, T0)).toBeNull();
  });
});

describe('escalation with nobody on the frozen roster', () => {
  const empty = (): Alert => raise(fall(), { id: 'a2', gridId: 'g1', community: 'c', responders: [] }).alert;

  it('keeps an unroutable alert raised and flags it at once instead of calling it notified', () => {
    const out = runDueSteps(empty(), T0, 0)!;
    expect(out.notify).toEqual([]);
    expect(out.alert).toMatchObject({ state: 'raised', flagged: true, assigneeId: null });
    expect(out.history.map((h) => h.action)).toEqual(['unroutable']);
  });

  it('reaches whoever is on duty now at the 3-minute step when the roster was empty at raise', () => {
    const first = runDueSteps(empty(), T0, 0)!.alert;
    const out = runDueSteps(first, T0 + 3 * MIN, first.nextStep, ['cover1', 'cover2'])!;
    expect(out.notify.map((n) => n.staffId)).toEqual(['cover1', 'cover2']);
    expect(out.alert).toMatchObject({
      state: 'notified',
      assigneeId: 'cover1',
      responders: ['cover1', 'cover2'],
    });
  });

  it('adds the incoming shift to "everyone on duty" at 6 minutes after a shift change', () => {
    const at3 = runUntil(raised(), T0 + 3 * MIN).alert;
    const out = runDueSteps(at3, T0 + 6 * MIN, at3.nextStep, ['night1', 'p2'])!;
    expect(out.notify.map((n) => n.staffId)).toEqual(['p1', 'p2', 'p3', 'night1']);
  });
});

describe('a responder who cannot go (ALERT-02)', () => {
  const p1 = { id: 'p1', channel: 'api' as const, canOverride: false };
  const declined = (a: Alert, who = p1, at = T0 + 2 * MIN) => {
    const r = transition(a, { type: 'decline', reason: '不在附近', onDuty: ['p1', 'p2', 'p3'] }, who, at);
    if (!r.ok) throw new Error(r.message);
    return reschedule(r.value.alert);
  };

  it('passes the alert to the next responder at once and keeps the accept ladder running for them', () => {
    let a = runUntil(raised(), T0).alert; // notified p1
    const acc = transition(a, { type: 'accept' }, p1, T0 + MIN);
    if (!acc.ok) throw new Error(acc.message);
    a = reschedule(acc.value.alert);
    expect(a.nextStepAt).toBe(T0 + 12 * MIN); // accepted: the accept steps are passed
    a = declined(a);
    expect(a).toMatchObject({
      state: 'notified',
      assigneeId: 'p2',
      acceptedAt: null,
      declined: ['p1'],
      nextStepAt: T0 + 3 * MIN,
    });
    // At 3 min p2 has not accepted: the next two of the chain without p1 are told, never p1 again.
    const { notified } = runUntil(a, T0 + 6 * MIN);
    expect(notified).toEqual([
      ['p2', 'p3'],
      ['p2', 'p3'],
    ]);
  });

  it('flags the alert for the dispatch room when it is passed on after the 6-minute step, or to nobody', () => {
    const late = declined(runUntil(raised(), T0).alert, p1, T0 + 7 * MIN);
    expect(late).toMatchObject({ assigneeId: 'p2', flagged: true });
    const a = raise(fall(), { id: 'a2', gridId: 'g1', community: 'c', responders: ['p1'] }).alert;
    const alone = transition(
      runUntil(a, T0).alert,
      { type: 'decline', reason: 'x', onDuty: ['p1'] },
      p1,
      T0 + MIN,
    );
    expect(alone.ok && alone.value.alert).toMatchObject({ assigneeId: null, state: 'raised', flagged: true });
  });

  it('is refused to someone the alert was never sent to, and once the responder is on site', () => {
    const a = runUntil(raised(), T0).alert;
    const stranger = transition(a, { type: 'decline', reason: 'x', onDuty: [] }, { ...p1, id: 'zz' }, T0);
    expect(stranger.ok ? null : stranger.code).toBe('not_assignee');
    const acc = transition(a, { type: 'accept' }, p1, T0);
    const there = acc.ok ? transition(acc.value.alert, { type: 'on-site' }, p1, T0) : acc;
    if (!there.ok) throw new Error(there.message);
    const r = transition(there.value.alert, { type: 'decline', reason: 'x', onDuty: [] }, p1, T0);
    expect(r.ok ? null : r.code).toBe('invalid_transition');
  });
});
