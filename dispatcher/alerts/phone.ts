/**
 * Incidents phoned in to the dispatch room (ALERT-03): a resident, a relative or a neighbour calls, the
 * dispatcher picks the household, a category, a severity and writes a note. Pure: the call becomes a
 * trigger of the PHONE_REPORT rule that the alert service raises like the rules' triggers.
 */
import { PHONE_CATEGORY_LABELS } from '../notify/texts.ts';
import type { Trigger } from '../rules/engine.ts';
import type { PhoneCategory, Severity } from './model.ts';

export interface PhoneReport {
  householdId: string;
  category: PhoneCategory;
  /** A safety severity: a phoned-in incident is always a person's safety, never a device's upkeep. */
  severity: Exclude<Severity, 'technical'>;
  note: string;
  /** Who called, in the dispatcher's words ("女儿", "neighbour in 302"); optional. */
  caller?: string;
}

/** The trigger a call raises (or attaches to the household's open phoned-in incident, RULE-11). */
export function phoneTrigger(r: PhoneReport, at: number): Trigger {
  const zh = PHONE_CATEGORY_LABELS.zh[r.category];
  const en = PHONE_CATEGORY_LABELS.en[r.category];
  return {
    rule: 'PHONE_REPORT',
    householdId: r.householdId,
    deviceId: null,
    at,
    evidence: { seq: null, deviceId: null, type: 'phone', at, summary: r.note },
    explanation: {
      zh: `来电报告：${zh}${r.caller ? `（来电人：${r.caller}）` : ''}`,
      en: `Phoned in: ${en}${r.caller ? ` (caller: ${r.caller})` : ''}`,
    },
  };
}
