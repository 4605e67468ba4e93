/**
 * Alert lifecycle (SPEC §6): raise, attach re-triggers, and the transitions people make. Pure functions over
 * values; every change returns the new alert (version + 1) and the history lines to append.
 */
import { err, ok, type Result } from '../../kernel/result.ts';
import { minutes } from '../../kernel/time.ts';
import type { Clearance, Trigger } from '../rules/trigger.ts';
import { passOn } from './escalation.ts';
import {
  type Alert,
  type AlertState,
  type Channel,
  entry,
  type HistoryEntry,
  isOpen,
  isSafety,
  type Outcome,
  SEVERITY_OF,
} from './model.ts';
import { DEFAULT_POLICY, type EscalationPolicy } from './policy.ts';

/** Evidence kept on one alert: the first events and the latest ones. */
const MAX_EVIDENCE = 50;

export interface RaiseContext {
  id: string;
  gridId: string;
  community: string;
  /** Ordered on-duty responders at the moment of raise: the frozen escalation snapshot. */
  responders: string[];
  /** The community's escalation policy in force at the raise (ESC-02); the SPEC §6 default when absent. */
  policy?: EscalationPolicy;
}

export function raise(t: Trigger, ctx: RaiseContext): { alert: Alert; history: HistoryEntry[] } {
  const severity = SEVERITY_OF[t.rule];
  const safety = isSafety(severity);
  // ESC-02: the alert keeps the policy it was raised under; its stored deadlines (SLA-03) are that policy's.
  const policy = ctx.policy ?? DEFAULT_POLICY;
  const alert: Alert = {
    id: ctx.id,
    householdId: t.householdId,
    gridId: ctx.gridId,
    community: ctx.community,
    rule: t.rule,
    severity,
    state: 'raised',
    raisedAt: t.at,
    updatedAt: t.at,
    explanation: t.explanation,
    evidence: [t.evidence],
    triggerCount: 1,
    lastTriggeredAt: t.at,
    deviceId: t.deviceId,
    assigneeId: null,
    acceptDueAt: safety ? t.at + minutes(policy.acceptWithinMin) : null,
    onSiteDueAt: safety ? t.at + minutes(policy.onSiteWithinMin) : null,
    acceptedAt: null,
    onSiteAt: null,
    // Step 0 of the ladder (notify the primary) is due at once; technical alerts go to the maintenance queue.
    nextStepAt: safety ? t.at : null,
    nextStep: 0,
    responders: safety ? ctx.responders : [],
    ...(safety ? { policy: structuredClone(policy) } : {}),
    flagged: false,
    slaAtRisk: false,
    slaBreached: false,
    outcome: null,
    note: null,
    closedAt: null,
    version: 1,
    changeSeq: 0,
  };
  return {
    alert,
    history: [
      entry(alert, t.at, 'raised', null, 'raised', 'rules', 'system', {
        rule: t.rule,
        responders: alert.responders,
      }),
    ],
  };
}

/** SPEC §5 "one alert per problem": a re-trigger while open is evidence on the same alert. */
export function attach(alert: Alert, t: Trigger): { alert: Alert; history: HistoryEntry[] } {
  const evidence = [...alert.evidence, t.evidence];
  const trimmed =
    evidence.length > MAX_EVIDENCE
      ? [...evidence.slice(0, 10), ...evidence.slice(-(MAX_EVIDENCE - 10))]
      : evidence;
  const next: Alert = {
    ...alert,
    evidence: trimmed,
    triggerCount: alert.triggerCount + 1,
    lastTriggeredAt: Math.max(alert.lastTriggeredAt, t.at),
    updatedAt: Math.max(alert.updatedAt, t.at),
    version: alert.version + 1,
  };
  return {
    alert: next,
    history: [entry(next, t.at, 'evidence', null, null, 'rules', 'system', { summary: t.evidence.summary })],
  };
}

/** SPEC §5: technical alerts clear themselves when the condition ends; safety alerts never do. */
export function autoClear(
  alert: Alert,
  c: Clearance,
): Result<{ alert: Alert; history: HistoryEntry[] }, 'not_technical' | 'closed'> {
  if (isSafety(alert.severity)) return err('not_technical', 'safety alerts are resolved by a person');
  if (!isOpen(alert.state)) return err('closed', `alert is already ${alert.state}`);
  const next: Alert = {
    ...alert,
    state: 'resolved',
    outcome: 'auto_cleared',
    closedAt: c.at,
    updatedAt: c.at,
    nextStepAt: null,
    evidence: [...alert.evidence, c.evidence],
    version: alert.version + 1,
  };
  return ok({
    alert: next,
    history: [
      entry(next, c.at, 'auto_clear', alert.state, 'resolved', 'rules', 'system', {
        summary: c.evidence.summary,
      }),
    ],
  });
}

export type Action =
  | { type: 'accept' }
  | { type: 'en-route' }
  | { type: 'on-site' }
  | { type: 'resolve'; outcome: Exclude<Outcome, 'auto_cleared'>; note: string }
  | { type: 'cancel'; reason: string }
  | { type: 'assign'; staffId: string }
  | { type: 'note'; text: string }
  | { type: 'call'; to: string; result: string }
  /** A responder cannot go (ALERT-02); `onDuty` is who is on duty for the grid now, in roster order. */
  | { type: 'decline'; reason: string; onDuty: readonly string[] };

export type TransitionError = 'invalid_transition' | 'not_assignee';

export interface Actor {
  id: string;
  channel: Channel;
  /** Dispatchers and admins may act on any alert; a responder only on alerts assigned to them or offered to them. */
  canOverride: boolean;
}

const FORWARD: Record<'accept' | 'en-route' | 'on-site', { from: AlertState[]; to: AlertState }> = {
  accept: { from: ['raised', 'notified'], to: 'accepted' },
  'en-route': { from: ['accepted'], to: 'en_route' },
  'on-site': { from: ['accepted', 'en_route'], to: 'on_site' },
};

export function transition(
  alert: Alert,
  action: Action,
  actor: Actor,
  now: number,
): Result<{ alert: Alert; history: HistoryEntry[] }, TransitionError> {
  const base = { ...alert, updatedAt: now, version: alert.version + 1 };
  const h = (a: Alert, name: string, to: AlertState | null, data: Record<string, unknown> = {}) => [
    entry(a, now, name, to ? alert.state : null, to, actor.id, actor.channel, data),
  ];
  const refuse = (what: string) =>
    err('invalid_transition' as const, `cannot ${what} an alert that is ${alert.state}`, {
      state: alert.state,
    });

  switch (action.type) {
    case 'accept':
    case 'en-route':
    case 'on-site': {
      const rule = FORWARD[action.type];
      if (!rule.from.includes(alert.state)) return refuse(action.type);
      if (action.type !== 'accept' && !actor.canOverride && alert.assigneeId !== actor.id) {
        return err('not_assignee', 'only the assigned responder can do this', {
          assigneeId: alert.assigneeId,
        });
      }
      const next: Alert = { ...base, state: rule.to };
      if (action.type === 'accept') {
        next.assigneeId = actor.id;
        next.acceptedAt = now;
      }
      if (action.type === 'en-route') next.enRouteAt = now;
      if (action.type === 'on-site') next.onSiteAt = now;
      return ok({ alert: next, history: h(next, action.type, rule.to) });
    }
    case 'resolve': {
      if (!isOpen(alert.state)) return refuse('resolve');
      // The visit note is the assignee's to write (SPEC §6); dispatchers may close any alert.
      if (!actor.canOverride && alert.assigneeId !== actor.id)
        return err('not_assignee', 'only the assigned responder can resolve this alert', {
          assigneeId: alert.assigneeId,
        });
      const next: Alert = {
        ...base,
        state: 'resolved',
        outcome: action.outcome,
        note: action.note,
        closedAt: now,
        nextStepAt: null,
      };
      return ok({
        alert: next,
        history: h(next, 'resolve', 'resolved', { outcome: action.outcome, note: action.note }),
      });
    }
    case 'cancel': {
      if (!isOpen(alert.state)) return refuse('cancel');
      const next: Alert = {
        ...base,
        state: 'cancelled',
        note: action.reason,
        closedAt: now,
        nextStepAt: null,
      };
      return ok({ alert: next, history: h(next, 'cancel', 'cancelled', { reason: action.reason }) });
    }
    case 'assign': {
      if (!isOpen(alert.state)) return refuse('assign');
      const next: Alert = { ...base, assigneeId: action.staffId };
      return ok({
        alert: next,
        history: h(next, 'assign', null, { staffId: action.staffId, previous: alert.assigneeId }),
      });
    }
    case 'note':
      return ok({ alert: base, history: h(base, 'note', null, { text: action.text }) });
    case 'call':
      return ok({ alert: base, history: h(base, 'call', null, { to: action.to, result: action.result }) });
    case 'decline': {
      if (!['raised', 'notified', 'accepted', 'en_route'].includes(alert.state)) return refuse('decline');
      if (alert.assigneeId !== actor.id && !alert.responders.includes(actor.id))
        return err('not_assignee', 'only a responder this alert was sent to can pass it on', {
          assigneeId: alert.assigneeId,
        });
      const { alert: next, next: to } = passOn(base, actor.id, now, action.onDuty);
      return ok({
        alert: next,
        history: h(next, 'decline', next.state !== alert.state ? next.state : null, {
          reason: action.reason,
          to,
        }),
      });
    }
  }
}

/**
 * SPEC §6: a door `open` at the household after the responder went `en_route` suggests arrival. Only
 * flags the alert (the responder confirms `on_site`); a door event from before en route, or a second
 * suggestion, changes nothing.
 */
export function suggestArrival(
  alert: Alert,
  door: { at: number; deviceId: string; seq: number },
  now: number,
): { alert: Alert; history: HistoryEntry[] } | null {
  if (alert.state !== 'en_route' || alert.arrivalSuggestedAt) return null;
  if (alert.enRouteAt !== undefined && alert.enRouteAt !== null && door.at < alert.enRouteAt) return null;
  const next: Alert = {
    ...alert,
    arrivalSuggestedAt: door.at,
    updatedAt: Math.max(alert.updatedAt, now),
    version: alert.version + 1,
  };
  return {
    alert: next,
    history: [
      entry(next, now, 'arrival_suggested', null, null, 'rules', 'system', {
        deviceId: door.deviceId,
        seq: door.seq,
        doorAt: door.at,
      }),
    ],
  };
}

/** SPEC §6: a technical alert goes to the maintenance queue, due at `dueAt`; nobody is notified. */
export function queueMaintenance(
  alert: Alert,
  dueAt: number,
  now: number,
): { alert: Alert; history: HistoryEntry[] } | null {
  if (isSafety(alert.severity) || !isOpen(alert.state) || alert.maintenanceDueAt) return null;
  const next: Alert = { ...alert, maintenanceDueAt: dueAt, version: alert.version + 1 };
  return {
    alert: next,
    history: [entry(next, now, 'maintenance_queued', null, null, 'rules', 'system', { dueAt })],
  };
}
