/**
 * Alerts and their lifecycle vocabulary (SPEC §5, §6). Plain data: the store persists it, the API and the
 * console read it (the console imports these types).
 */
import type { EscalationPolicy } from './policy.ts';

export const RULES = [
  'FALL',
  'SOS',
  'NIGHT_EXIT',
  'NO_MORNING_ACTIVITY',
  'INACTIVITY',
  'BATHROOM_DWELL',
  'DOOR_LEFT_OPEN',
  'DEVICE_OFFLINE',
  'LOW_BATTERY',
  'HOME_UNWATCHED',
  'PHONE_REPORT',
] as const;
export type RuleId = (typeof RULES)[number];

export const SEVERITIES = ['critical', 'high', 'medium', 'technical'] as const;
export type Severity = (typeof SEVERITIES)[number];

export const SEVERITY_OF: Record<RuleId, Severity> = {
  FALL: 'critical',
  SOS: 'critical',
  NIGHT_EXIT: 'high',
  NO_MORNING_ACTIVITY: 'high',
  INACTIVITY: 'high',
  BATHROOM_DWELL: 'high',
  DOOR_LEFT_OPEN: 'medium',
  DEVICE_OFFLINE: 'technical',
  LOW_BATTERY: 'technical',
  // The rules could not process this home's events: nobody would learn of a fall there. Critical, so it
  // leads the dispatch queue with its sound and is routed like a fall (SPEC §6); a person resolves it.
  HOME_UNWATCHED: 'critical',
  // ALERT-03: the dispatcher who took the call chooses the severity; this is the form's default.
  PHONE_REPORT: 'high',
};

import type { AlertState, Outcome } from '../terms.ts';
/** ALERT-03: what a caller reports (a resident, a relative, a neighbour phoning the dispatch room). */
export const PHONE_CATEGORIES = ['fall', 'unwell', 'no_answer', 'wandering', 'other'] as const;
export type PhoneCategory = (typeof PHONE_CATEGORIES)[number];
/** Where an alert came from: the rules on device events, or a person's call to the dispatch room. */
export type AlertSource = 'sensor' | 'phone';
export const alertSource = (a: Pick<Alert, 'source'>): AlertSource => a.source ?? 'sensor';

export {
  ALERT_STATES,
  type AlertState,
  isOpen,
  OPEN_STATES,
  OUTCOMES,
  type Outcome,
  PERSON_OUTCOMES,
  type PersonOutcome,
} from '../terms.ts';

export const isSafety = (severity: Severity): boolean => severity !== 'technical';
/** The safety severities (SPEC §6: critical, high, medium), for queries. */
export const SAFETY_SEVERITIES: Severity[] = SEVERITIES.filter(isSafety);

export interface Explanation {
  zh: string;
  en: string;
}

/** One event that caused (or re-triggered) an alert. */
export interface Evidence {
  seq: number | null;
  deviceId: string | null;
  type: string;
  at: number;
  summary: string;
}

export interface Alert {
  id: string;
  householdId: string;
  gridId: string;
  community: string;
  rule: RuleId;
  severity: Severity;
  state: AlertState;
  /** ALERT-03: `phone` for an incident phoned in; absent (sensor) on alerts the rules raised. */
  source?: AlertSource;
  /** ALERT-03: what the caller reported (phoned-in incidents only). */
  category?: PhoneCategory;
  raisedAt: number;
  updatedAt: number;
  explanation: Explanation;
  evidence: Evidence[];
  /** How many times the rule triggered while this alert was open (1 at raise). */
  triggerCount: number;
  lastTriggeredAt: number;
  deviceId: string | null;
  assigneeId: string | null;
  /** SLA deadlines, stored with the alert (SPEC §6): null for technical alerts. */
  acceptDueAt: number | null;
  onSiteDueAt: number | null;
  acceptedAt: number | null;
  onSiteAt: number | null;
  /** When the assignee went en route (absent on alerts stored before this field existed). */
  enRouteAt?: number | null;
  /**
   * SPEC §6: a door `open` at the household after `en_route` suggests arrival; the responder confirms
   * `on_site` with one tap. Set to the door event's time; the SLA clock still waits for the confirmation.
   */
  arrivalSuggestedAt?: number | null;
  /** Technical alerts (SPEC §6): due in the maintenance queue by the end of the next working day. */
  maintenanceDueAt?: number | null;
  /** Next escalation step due, and its index in the alert's ladder (`ladderOf(policy)`); null when nothing is pending. */
  nextStepAt: number | null;
  nextStep: number;
  /**
   * The escalation policy the alert was raised under, frozen on it (ESC-02): its ladder and its promise.
   * Safety alerts only; absent on technical alerts (no ladder), which run nothing.
   */
  policy?: EscalationPolicy;
  /** The ordered responders frozen when the alert was raised (the escalation snapshot). */
  responders: string[];
  /** Responders who said they cannot go (ALERT-02): the ladder passes them over. */
  declined?: string[];
  flagged: boolean;
  slaAtRisk: boolean;
  slaBreached: boolean;
  /** When the SLA was declared at risk (12 min) and breached (15 min); absent on older alerts. */
  slaAtRiskAt?: number | null;
  slaBreachedAt?: number | null;
  /**
   * The supervisors told of the breach (SPEC §6: "notify the supervisor"), so the dispatch screen can say so
   * in words; an empty list means there was nobody to tell.
   */
  supervisorsNotified?: string[];
  outcome: Outcome | null;
  note: string | null;
  closedAt: number | null;
  /** Optimistic-concurrency version: every write bumps it; a stale write fails. */
  version: number;
  /** Global change sequence, for live catch-up after a reconnect. */
  changeSeq: number;
}

export type Channel = 'mqtt' | 'api' | 'console' | 'system' | 'socket' | 'webhook';

/** One append-only history line: who did what to the alert, when and through which channel. */
export interface HistoryEntry {
  alertId: string;
  at: number;
  action: string;
  fromState: AlertState | null;
  toState: AlertState | null;
  actor: string;
  channel: Channel;
  data: Record<string, unknown>;
}

export function entry(
  alert: Alert,
  at: number,
  action: string,
  fromState: AlertState | null,
  toState: AlertState | null,
  actor: string,
  channel: Channel,
  data: Record<string, unknown>,
): HistoryEntry {
  return { alertId: alert.id, at, action, fromState, toState, actor, channel, data };
}
