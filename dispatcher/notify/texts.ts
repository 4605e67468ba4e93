/**
 * The words of a notice that leaves the console (NOTIFY-03, NOTIFY-04): the push notification on a locked
 * phone, the short text an SMS or voice bridge sends, and the updates for a household's family. Each fits
 * one SMS: 70 characters in Chinese (UCS-2), 160 in English (GSM-7), the link travelling beside it.
 */
import type { Alert, RuleId } from '../alerts/model.ts';
import { PHONE_CATEGORY_LABELS, RULE_LABELS } from '../words.ts';

export { PHONE_CATEGORY_LABELS, RULE_LABELS };

export type NoticeLang = 'zh' | 'en';
export const NOTICE_LANGS: readonly NoticeLang[] = ['zh', 'en'];

/** One SMS: 70 UCS-2 characters (any Chinese text), 160 GSM-7 characters. */
export const SMS_LIMIT: Record<NoticeLang, number> = { zh: 70, en: 160 };

/** Why this person is told, as a few words (the notice's `reason`). */
const REASONS: Record<NoticeLang, Record<string, string>> = {
  zh: {
    notify_primary: '请接单',
    notify_next: '升级：请接单',
    notify_all: '无人接单，请支援',
    assigned: '已指派给您',
    sla_at_risk: '即将超时，请尽快到场',
    sla_breach: '已超15分钟未到场',
    resend: '调度室重发',
    passed_on: '转交给您',
  },
  en: {
    notify_primary: 'please accept',
    notify_next: 'escalated: please accept',
    notify_all: 'nobody accepted: please help',
    assigned: 'assigned to you',
    sla_at_risk: 'SLA at risk: please hurry',
    sla_breach: 'SLA breached: nobody on site in 15 min',
    resend: 'resent by the dispatch room',
    passed_on: 'passed on to you',
  },
};

export interface NoticeFacts {
  rule: RuleId;
  address: string;
  reason: string;
}

/** The notification's title: the rule and the address, so a locked screen says what and where. */
export function noticeTitle(lang: NoticeLang, n: NoticeFacts): string {
  const rule = RULE_LABELS[lang][n.rule];
  return lang === 'zh' ? `【${rule}】${n.address}` : `${rule}: ${n.address}`;
}

/**
 * The short text for an SMS or voice bridge: programme, rule, address, what to do. Always within one SMS
 * (SMS_LIMIT); a long address is shortened rather than the message split.
 */
export function smsText(lang: NoticeLang, n: NoticeFacts): string {
  const rule = RULE_LABELS[lang][n.rule];
  const why = REASONS[lang][n.reason] ?? REASONS[lang].notify_primary!;
  const build = (address: string) =>
    lang === 'zh'
      ? `【365云守护】${rule}告警：${address}，${why}`
      : `Guardian 365: ${rule} at ${address} - ${why}`;
  let text = build(n.address);
  for (let cut = n.address.length - 1; [...text].length > SMS_LIMIT[lang] && cut > 0; cut--)
    text = build(`${[...n.address].slice(0, cut).join('')}…`);
  return [...text].slice(0, SMS_LIMIT[lang]).join('');
}

/** What a household's family is told (NOTIFY-04): reassuring, no access notes, no address details. */
export type FamilyStage = 'raised' | 'en_route' | 'resolved';

export function familyText(
  lang: NoticeLang,
  stage: FamilyStage,
  a: Pick<Alert, 'rule'>,
  resident: string,
): string {
  const rule = RULE_LABELS[lang][a.rule];
  const who = resident || (lang === 'zh' ? '您的家人' : 'your relative');
  if (lang === 'zh') {
    if (stage === 'raised')
      return `【365云守护】${who}家中提示「${rule}」，社区已收到，正安排工作人员上门查看。`;
    if (stage === 'en_route') return `【365云守护】社区工作人员正在前往${who}家中，请放心。`;
    return `【365云守护】${who}家中的情况社区工作人员已处理完毕。如有疑问请致电社区。`;
  }
  if (stage === 'raised')
    return `Guardian 365: a "${rule}" alert at ${who}'s home reached the community; someone is being sent to check.`;
  if (stage === 'en_route') return `Guardian 365: a community worker is on the way to ${who}'s home.`;
  return `Guardian 365: the community worker has dealt with the alert at ${who}'s home. Call the community with any questions.`;
}
