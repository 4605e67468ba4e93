/**
 * The words of an alert's escalation ladder (ESC-03): its promise and each step, as the dispatch room reads
 * them. The step kinds are the dispatcher's (alerts/policy.ts); one line per step.
 */
import type { Alert } from '../../dispatcher/api/types.ts';
import type { Lang } from './i18n.ts';

type Policy = NonNullable<Alert['policy']>;
type Step = Policy['steps'][number];

export const STEP_WORDS: Record<Lang, Record<Step['kind'], string>> = {
  zh: {
    notify_primary: '通知首位响应人',
    notify_next: '未接单：通知下一位响应人，并再次通知首位',
    notify_all: '未接单：通知本网格全部在岗响应人，调度屏标记',
    sla_at_risk: '未到达：调度屏提示即将超时',
    sla_breach: '未到达：记为超时，通知主管',
  },
  en: {
    notify_primary: 'notify the primary responder',
    notify_next: 'not accepted: notify the next responder, and the first again',
    notify_all: 'not accepted: notify every on-duty responder of the grid, flag on the dispatch screen',
    sla_at_risk: 'not on site: warn the dispatch screen that the SLA is at risk',
    sla_breach: 'not on site: mark the SLA breached, tell the supervisor',
  },
};

/** The step kinds in the order of the default ladder (the keys of the words above). */
export const STEP_KINDS = Object.keys(STEP_WORDS.en) as Step['kind'][];

/** "accepted within 3 min, on site within 15 min". */
export function promiseWords(p: Pick<Policy, 'acceptWithinMin' | 'onSiteWithinMin'>, lang: Lang): string {
  return lang === 'zh'
    ? `承诺：${p.acceptWithinMin} 分钟内接单，${p.onSiteWithinMin} 分钟内上门`
    : `Promise: accepted within ${p.acceptWithinMin} min, on site within ${p.onSiteWithinMin} min`;
}

/** "6 min · not accepted: notify every …, again every 2 min ×2". */
export function stepWords(s: Step, lang: Lang): string {
  const when = lang === 'zh' ? `${s.afterMin} 分钟` : `${s.afterMin} min`;
  const again = s.repeat
    ? lang === 'zh'
      ? `；之后每 ${s.repeat.everyMin} 分钟再通知，共 ${s.repeat.times} 次`
      : `; again every ${s.repeat.everyMin} min, ${s.repeat.times}×`
    : '';
  return `${when} · ${STEP_WORDS[lang][s.kind]}${again}`;
}
