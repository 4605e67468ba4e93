/**
 * What the rules hand to the alerts (RULE-11, RULE-13): a trigger raises an alert or attaches to the open
 * one, a clearance ends a technical one. Plain types, so the alert lifecycle reads them without importing
 * the engine.
 */
import type { Evidence, Explanation, RuleId } from '../alerts/model.ts';

export interface Trigger {
  rule: RuleId;
  householdId: string;
  deviceId: string | null;
  at: number;
  evidence: Evidence;
  explanation: Explanation;
  /** Evidence for an open alert only: never raises a new one (e.g. "resident moved after the fall"). */
  attachOnly?: boolean;
}

/** A technical condition ended (device back, battery replaced): clears the open technical alert. */
export interface Clearance {
  rule: RuleId;
  householdId: string;
  deviceId: string;
  at: number;
  evidence: Evidence;
}
