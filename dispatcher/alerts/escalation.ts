/**
 * The escalation ladder and the SLA (SPEC §6, SLA-02). Pure: given an alert whose next step is due,
 * returns the changed alert, what to notify and the history. The ladder is the alert's own: derived from
 * the policy snapshot it was raised under (ESC-02), never from the community's policy of today. The alert
 * stores `nextStepAt` (SLA-03), so a restart resumes the ladder exactly where it stood; the step index
 * makes a stale timer harmless (it finds the step already taken and does nothing).
 */

import { type Alert, entry, type HistoryEntry, isOpen } from './model.ts';
import { DEFAULT_POLICY, type LadderStep, ladderOf, policyOf, type StepKind } from './policy.ts';

export type { LadderStep, StepKind } from './policy.ts';

/** The SPEC §6 default ladder. */
export const LADDER: readonly LadderStep[] = ladderOf(DEFAULT_POLICY);

/** The ladder an alert runs: its snapshot's (ESC-02). */
export const ladderFor = (a: Alert): readonly LadderStep[] => ladderOf(policyOf(a));

export interface Notice {
  staffId: string;
  reason: StepKind;
  /** The repeat of the step this notice is (0: the step itself): a repeat is a new notice (NOTIFY-05). */
  round: number;
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
  const ladder = ladderFor(a);
  for (let i = from; i < ladder.length; i++) {
    const s = ladder[i]!;
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
  if (!isOpen(alert.state)) return null;
  let a: Alert = { ...alert };
  const history: HistoryEntry[] = [];
  const notify: Notice[] = [];
  let notifySupervisors = false;
  const ladder = ladderFor(alert);
  while (a.nextStepAt !== null && a.nextStepAt <= now) {
    const idx = nextApplicable(a, a.nextStep);
    if (idx === null) {
      a.nextStepAt = null;
      break;
    }
    const step = ladder[idx]!;
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
          notify.push({ staffId: r[0], reason: step.kind, round: step.round });
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
        for (const s of to) notify.push({ staffId: s, reason: step.kind, round: step.round });
        history.push(
          entry(a, dueAt, 'escalate', null, null, 'escalation', 'system', {
            to,
            step: step.kind,
            ...(step.round ? { round: step.round } : {}),
          }),
        );
        break;
      }
      case 'notify_all':
        for (const s of r) notify.push({ staffId: s, reason: step.kind, round: step.round });
        if (r[0] && a.state === 'raised') {
          a.assigneeId = a.assigneeId ?? r[0];
          a.state = 'notified';
        }
        a.flagged = true;
        history.push(
          entry(a, dueAt, 'escalate', null, null, 'escalation', 'system', {
            to: r,
            step: step.kind,
            ...(step.round ? { round: step.round } : {}),
          }),
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
    a.nextStep = following ?? ladder.length;
    a.nextStepAt = following === null ? null : a.raisedAt + ladder[following]!.after;
  }
  a = { ...a, updatedAt: Math.max(a.updatedAt, now), version: alert.version + 1 };
  if (history.length === 0 && notify.length === 0) return null;
  return { alert: a, history, notify, notifySupervisors };
}

/** After a person moves the alert (accept, on site), skip ladder steps that no longer apply. */
export function reschedule(a: Alert): Alert {
  if (!isOpen(a.state)) return { ...a, nextStepAt: null };
  if (a.nextStepAt === null) return a;
  const idx = nextApplicable(a, a.nextStep);
  const ladder = ladderFor(a);
  return idx === null
    ? { ...a, nextStepAt: null, nextStep: ladder.length }
    : { ...a, nextStep: idx, nextStepAt: a.raisedAt + ladder[idx]!.after };
}

/**
 * A responder who cannot go says so, and the alert passes at once to the next responder of the chain
 * (SPEC §6, ALERT-02): the frozen snapshot, then whoever is on duty now, passing over everyone who
 * declined. An alert taken back from its assignee is no longer accepted, and the ladder's accept steps
 * apply again from the next one not yet due, so a next responder who does not answer is escalated past
 * too. Past the step that tells everyone on duty (6 minutes by default), or with nobody left to pass it to,
 * it is flagged for the dispatch room.
 */
export function passOn(
  alert: Alert,
  staffId: string,
  now: number,
  onDutyNow: readonly string[],
): { alert: Alert; next: string | null } {
  const a: Alert = { ...alert, declined: [...(alert.declined ?? []), staffId] };
  const ladder = ladderFor(alert);
  const chain = [...a.responders, ...onDutyNow.filter((s) => !a.responders.includes(s))];
  if (chain.length > a.responders.length) a.responders = chain;
  const next = chain.find((s) => !a.declined!.includes(s)) ?? null;
  if (a.assigneeId === staffId) {
    a.assigneeId = next;
    a.state = next ? 'notified' : 'raised';
    a.acceptedAt = null;
    a.enRouteAt = null;
    const pending = ladder.findIndex((s) => s.unless === 'accepted' && a.raisedAt + s.after > now);
    if (pending >= 0 && (a.nextStepAt === null || pending < a.nextStep)) {
      a.nextStep = pending;
      a.nextStepAt = a.raisedAt + ladder[pending]!.after;
    }
  }
  const everyone = ladder.find((s) => s.kind === 'notify_all');
  if (!next || (everyone && now >= a.raisedAt + everyone.after)) a.flagged = true;
  return { alert: a, next };
}
