/**
 * The alert panel's history in words and the actions it offers (ALERT-01, ALERT-02), in both languages.
 */
import { describe, expect, it } from 'vitest';
import { dispatcherActions, historyLine } from '../../console/src/history-words.ts';
import type { HistoryEntry } from '../../dispatcher/api/types.ts';

const names = new Map([
  ['d1', '赵调度'],
  ['w1', '王网格'],
  ['w2', '李楼长'],
]);
const h = (action: string, actor: string, data: Record<string, unknown> = {}): HistoryEntry => ({
  alertId: 'al_1',
  at: 0,
  action,
  fromState: null,
  toState: null,
  actor,
  channel: 'api',
  data,
});

describe('the alert history in words', () => {
  it('names the reassign target and whom it replaced', () => {
    expect(historyLine(h('assign', 'd1', { staffId: 'w2', previous: 'w1' }), 'zh', names).text).toBe(
      '赵调度 指派给 李楼长（原为 王网格）',
    );
    expect(historyLine(h('assign', 'd1', { staffId: 'w2', previous: null }), 'en', names).text).toBe(
      '赵调度 assigned it to 李楼长',
    );
  });

  it('gives the cancel reason and the visit note as the line’s detail', () => {
    expect(historyLine(h('cancel', 'd1', { reason: '家属已到' }), 'zh', names)).toEqual({
      text: '赵调度 取消告警',
      detail: '家属已到',
    });
    expect(historyLine(h('resolve', 'w1', { outcome: 'assisted', note: '已扶起' }), 'en', names).detail).toBe(
      '已扶起',
    );
  });

  it('says each escalation step and whom it told', () => {
    const line = historyLine(h('escalate', 'system', { step: 'notify_next', to: ['w1', 'w2'] }), 'zh', names);
    expect(line.text).toBe('3分钟未接单，通知下一位并再次提醒第一位：王网格、李楼长');
    expect(historyLine(h('sla_breach', 'system'), 'en', names).text).toMatch(/supervisors told/);
  });

  it('offers no action on a closed alert, every dispatcher action on an open one', () => {
    expect(dispatcherActions('cancelled')).toEqual([]);
    expect(dispatcherActions('resolved')).toEqual([]);
    expect(dispatcherActions('en_route')).toEqual(['assign', 'note', 'call', 'resolve', 'cancel']);
  });
});
