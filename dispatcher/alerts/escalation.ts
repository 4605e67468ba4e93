/**
 * The escalation ladder and the 15-minute SLA (SPEC §6). Pure: given an alert whose next step is due,
 * returns the changed alert, what to notify and the history. The alert stores `nextStepAt`, so a restart
 * resumes the ladder exactly where it stood; the step index makes a stale timer harmless (it finds the
 * step already taken and does nothing).
 */
import { minutes } from '../../kernel/time.ts';
import { type Alert, entry, type HistoryEntry } from './model.ts';

export const ACCEPT_WITHIN = minutes(3);
export const ON_SITE_WITHIN = minutes(15);

export type StepKind = 'notify_primary' | 'notify_next' | 'notify_all' | 'sla_at_risk' | 'sla_breach';

export interface LadderStep {
  kind: StepKind;
  /** Offset from the raise. */
  after: number;
  /** The step is skipped once the alert has reached this milestone. */
  unless: 'accepted' | 'on_site' | null;
}

export const LADDER: readonly LadderStep[] = [
  { kind: 'notify_primary', after: 0, unless: null },
  { kind: 'notify_next', after: minutes(3), unless: 'accepted' },
  { kind: 'notify_all', after: minutes(6), unless: 'accepted' },
  { kind: 'sla_at_risk', after: minutes(12), unless: 'on_site' },
  { kind: 'sla_breach', after: minutes(15), unless: 'on_site' },
];

export interface Notice {
  staffId: string;
  reason: StepKind;
}

export interface StepOutcome {
  alert: Alert;
  history: HistoryEntry[];
  notify: Notice[];
  /** Supervisors to notify (SLA breach). */
  notifySupervisors: boolean;
}

const reached = (a: Alert, milestone: 'accepted' | 'on_site'): boolean =>
  milestone === 'accepted' ? a.acceptedAt !== null : a.onSiteAt !== null;

/** The next step index (from `from`) that still applies, or null when the ladder is done. */
function nextApplicable(a: Alert, from: number): number | null {
  for (let i = from; i < LADDER.length; i++) {
    const s = LADDER[i]!;
    if (s.unless && reached(a, s.unless)) continue;
    return i;
  }
  return null;
}

/**
 * Runs every step due at `now` (normally one). `expectedStep` is the token the timer carried: if the alert
 * has moved on, nothing happens.
 */
export function runDueSteps(
  alert: Alert,
  now: number,
  expectedStep: number,
  /** Who is on duty for the alert's grid now, in roster order (SPEC §6: "every on-duty responder"). */
  onDutyNow: readonly string[] = [],
  /** The supervisors of the alert's community, told when the SLA is breached (SPEC §6). */
  supervisors: readonly string[] = [],
): StepOutcome | null {
  if (alert.nextStepAt === null || alert.nextStep !== expectedStep || alert.nextStepAt > now) return null;
  if (alert.state === 'resolved' || alert.state === 'cancelled') return null;
  let a: Alert = { ...alert };
  const history: HistoryEntry[] = [];
  const notify: Notice[] = [];
  let notifySupervisors = false;
  while (a.nextStepAt !== null && a.nextStepAt <= now) {
    const idx = nextApplicable(a, a.nextStep);
    if (idx === null) {
      a.nextStepAt = null;
      break;
    }
    const step = LADDER[idx]!;
    const dueAt = a.raisedAt + step.after;
    if (dueAt > now) {
      a.nextStep = idx;
      a.nextStepAt = dueAt;
      break;
    }
    // The frozen snapshot first (its order is the escalation chain), then whoever is on duty now and
    // was not in it: a shift that changed, a cover added, or an empty roster at raise time.
    const all = [...a.responders, ...onDutyNow.filter((s) => !a.responders.includes(s))];
    if (all.length > a.responders.length) a.responders = all;
    // Whoever said they cannot go is not asked again (ALERT-02).
    const r = all.filter((s) => !a.declined?.includes(s));
    switch (step.kind) {
      case 'notify_primary':
        if (r[0]) {
          notify.push({ staffId: r[0], reason: step.kind });
          a.assigneeId = a.assigneeId ?? r[0];
          if (a.state === 'raised') a.state = 'notified';
          history.push(
            entry(a, dueAt, 'notify', 'raised', a.state, 'escalation', 'system', {
              to: r.slice(0, 1),
              step: step.kind,
            }),
          );
        } else {
          // Nobody to notify: the alert stays `raised`, flagged at once for the dispatch room, and the next
          // steps look again for someone on duty. Never pretend it was delivered.
          a.flagged = true;
          history.push(
            entry(a, dueAt, 'unroutable', null, null, 'escalation', 'system', {
              step: step.kind,
              gridId: a.gridId,
            }),
          );
        }
        break;
      case 'notify_next': {
        // Re-notify the first and notify the next on the roster.
        const to = r.slice(0, 2);
        if (to[0] && a.state === 'raised') {
          a.assigneeId = a.assigneeId ?? to[0];
          a.state = 'notified';
        }
        for (const s of to) notify.push({ staffId: s, reason: step.kind });
        history.push(
          entry(a, dueAt, 'escalate', null, null, 'escalation', 'system', { to, step: step.kind }),
        );
        break;
      }
      case 'notify_all':
        for (const s of r) notify.push({ staffId: s, reason: step.kind });
        if (r[0] && a.state === 'raised') {
          a.assigneeId = a.assigneeId ?? r[0];
          a.state = 'notified';
        }
        a.flagged = true;
        history.push(
          entry(a, dueAt, 'escalate', null, null, 'escalation', 'system', { to: r, step: step.kind }),
        );
        break;
      case 'sla_at_risk':
        a.slaAtRisk = true;
        a.slaAtRiskAt = dueAt;
        history.push(entry(a, dueAt, 'sla_at_risk', null, null, 'escalation', 'system', {}));
        break;
      case 'sla_breach':
        a.slaBreached = true;
        a.slaBreachedAt = dueAt;
        a.supervisorsNotified = [...supervisors];
        notifySupervisors = true;
        history.push(
          entry(a, dueAt, 'sla_breach', null, null, 'escalation', 'system', { to: [...supervisors] }),
        );
        break;
    }
    const following = nextApplicable(a, idx + 1);
    a.nextStep = following ?? LADDER.length;
    a.nextStepAt = following === null ? null : a.raisedAt + LADDER[following]!.after;
  }
  a = { ...a, updatedAt: Math.max(a.updatedAt, now), version: alert.version + 1 };
  if (history.length === 0 && notify.length === 0) return null;
  return { alert: a, history, notify, notifySupervisors };
}

/** After a person moves the alert (accept, on site), skip ladder steps that no longer apply. */
export function reschedule(a: Alert): Alert {
  if (a.state === 'resolved' || a.state === 'cancelled') return { ...a, nextStepAt: null };
  if (a.nextStepAt === null) return a;
  const idx = nextApplicable(a, a.nextStep);
  return idx === null
    ? { ...a, nextStepAt: null, nextStep: LADDER.length }
    : { ...a, nextStep: idx, nextStepAt: a.raisedAt + LADDER[idx]!.after };
}

/**
 * A responder who cannot go says so, and the alert passes at once to the next responder of the chain
 * (SPEC §6, ALERT-02): the frozen snapshot, then whoever is on duty now, passing over everyone who
 * declined. An alert taken back from its assignee is no longer accepted, and the ladder's accept steps
 * apply again from the next one not yet due, so a next responder who does not answer is escalated past
 * too. Past the 6-minute step, or with nobody left to pass it to, it is flagged for the dispatch room.
 */
export function passOn(
  alert: Alert,
  staffId: string,
  now: number,
  onDutyNow: readonly string[],
): { alert: Alert; next: string | null } {
  const a: Alert = { ...alert, declined: [...(alert.declined ?? []), staffId] };
  const chain = [...a.responders, ...onDutyNow.filter((s) => !a.responders.includes(s))];
  if (chain.length > a.responders.length) a.responders = chain;
  const next = chain.find((s) => !a.declined!.includes(s)) ?? null;
  if (a.assigneeId === staffId) {
    a.assigneeId = next;
    a.state = next ? 'notified' : 'raised';
    a.acceptedAt = null;
    a.enRouteAt = null;
    const pending = LADDER.findIndex((s) => s.unless === 'accepted' && a.raisedAt + s.after > now);
    if (pending >= 0 && (a.nextStepAt === null || pending < a.nextStep)) {
      a.nextStep = pending;
      a.nextStepAt = a.raisedAt + LADDER[pending]!.after;
    }
  }
  if (!next || now >= a.raisedAt + LADDER.find((s) => s.kind === 'notify_all')!.after) a.flagged = true;
  return { alert: a, next };
}
