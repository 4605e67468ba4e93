/**
 * An alert's history in words (ALERT-01): each recorded transition as a sentence in the reader's
 * language, naming who did what to whom, the cancel reason, the reassign target and the ladder's steps.
 */
import { evidenceText, type HistoryEntry } from '../../dispatcher/api/types.ts';
import { type Lang, OUTCOME_NAMES, STATE_NAMES } from './i18n.ts';

type Names = Map<string, string>;

const who = (names: Names, id: unknown): string =>
  typeof id === 'string' ? (names.get(id) ?? (id === 'system' ? '' : id)) : '';
const list = (names: Names, ids: unknown, lang: Lang): string =>
  Array.isArray(ids) ? ids.map((i) => who(names, i)).join(lang === 'zh' ? '、' : ', ') : '';

const STEP: Record<Lang, Record<string, string>> = {
  zh: {
    notify_primary: '通知第一责任人',
    notify_next: '3分钟未接单，通知下一位并再次提醒第一位',
    notify_all: '6分钟未接单，通知全部在岗人员并在调度屏标记',
  },
  en: {
    notify_primary: 'primary responder notified',
    notify_next: 'not accepted in 3 min: next responder notified, first reminded',
    notify_all: 'not accepted in 6 min: everyone on duty notified, flagged on the screen',
  },
};

/** An evidence line recorded in a history entry, in the reader's language (RULE-12). */
const summary = (v: unknown, lang: Lang): string | null =>
  typeof v === 'string' ? evidenceText(lang, v) : null;

/** One history line as a sentence; `text` is the line, `detail` what follows it (a note, a reason). */
export function historyLine(
  h: HistoryEntry,
  lang: Lang,
  names: Names,
): { text: string; detail: string | null } {
  const actor = who(names, h.actor);
  const d = h.data;
  const zh = lang === 'zh';
  const str = (v: unknown) => (typeof v === 'string' ? v : null);
  switch (h.action) {
    case 'raised':
      // ALERT-03: an incident phoned in names the dispatcher who took the call.
      if (d.source === 'phone')
        return { text: zh ? `${actor} 登记来电事件` : `${actor} opened it from a phone call`, detail: null };
      return { text: zh ? '告警产生' : 'Alert raised', detail: null };
    case 'evidence':
      return { text: zh ? '新的证据' : 'More evidence', detail: summary(d.summary, lang) };
    case 'notify':
    case 'escalate': {
      const step = STEP[lang][String(d.step)] ?? String(d.step ?? '');
      return { text: `${step}${zh ? '：' : ': '}${list(names, d.to, lang)}`, detail: null };
    }
    case 'unroutable':
      return {
        text: zh ? '该网格当前无人值班，无法通知' : 'Nobody on duty for the grid: nobody notified',
        detail: null,
      };
    case 'sla_at_risk':
      return {
        text: zh ? '12分钟仍未到场：SLA 即将超时' : 'Not on site after 12 min: SLA at risk',
        detail: null,
      };
    case 'sla_breach':
      return {
        text: zh
          ? '15分钟仍未到场：SLA 超时，已通知主管'
          : 'Not on site in 15 min: SLA breached, supervisors told',
        detail: null,
      };
    case 'accept':
      return { text: zh ? `${actor} 接单` : `${actor} accepted`, detail: null };
    case 'en-route':
      return { text: zh ? `${actor} 出发` : `${actor} is on the way`, detail: null };
    case 'on-site':
      return { text: zh ? `${actor} 到达现场` : `${actor} is on site`, detail: null };
    case 'arrival_suggested':
      return { text: zh ? '入户门打开：可能已到达' : 'Front door opened: probably arrived', detail: null };
    case 'resolve': {
      const outcome = str(d.outcome);
      const o = outcome
        ? (OUTCOME_NAMES[lang][outcome as keyof (typeof OUTCOME_NAMES)['zh']] ?? outcome)
        : '';
      return { text: zh ? `${actor} 处置完成：${o}` : `${actor} resolved it: ${o}`, detail: str(d.note) };
    }
    case 'auto_clear':
      return {
        text: zh ? '情况恢复，自动关闭' : 'Condition ended: closed by itself',
        detail: summary(d.summary, lang),
      };
    case 'cancel':
      return { text: zh ? `${actor} 取消告警` : `${actor} cancelled it`, detail: str(d.reason) };
    case 'assign': {
      const to = who(names, d.staffId);
      const from = d.previous ? who(names, d.previous) : null;
      return {
        text: zh
          ? `${actor} 指派给 ${to}${from ? `（原为 ${from}）` : ''}`
          : `${actor} assigned it to ${to}${from ? ` (was ${from})` : ''}`,
        detail: null,
      };
    }
    case 'decline': {
      const to = d.to ? who(names, d.to) : null;
      return {
        text: zh
          ? `${actor} 无法前往，${to ? `已转给 ${to}` : '无人可转，请调度处理'}`
          : `${actor} cannot go: ${to ? `passed on to ${to}` : 'nobody left to pass it to'}`,
        detail: str(d.reason),
      };
    }
    case 'note':
      return { text: zh ? `${actor} 添加备注` : `${actor} added a note`, detail: str(d.text) };
    case 'call':
      return {
        text: zh ? `${actor} 致电 ${str(d.to) ?? ''}` : `${actor} called ${str(d.to) ?? ''}`,
        detail: str(d.result),
      };
    case 'maintenance_queued':
      return { text: zh ? '进入维护队列' : 'Queued for maintenance', detail: null };
    default: {
      const state = h.toState ? STATE_NAMES[lang][h.toState] : '';
      return { text: `${h.action}${state ? ` → ${state}` : ''}${actor ? ` · ${actor}` : ''}`, detail: null };
    }
  }
}

/** The dispatcher's actions an alert's state allows (ALERT-02): a closed alert offers none. */
export function dispatcherActions(state: string): ('assign' | 'note' | 'call' | 'resolve' | 'cancel')[] {
  if (state === 'resolved' || state === 'cancelled') return [];
  return ['assign', 'note', 'call', 'resolve', 'cancel'];
}
