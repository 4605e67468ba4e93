/**
 * A responder who cannot go (SPEC §6, ALERT-02), through the real service: the alert passes to the next
 * responder on duty at once, over the live channel, with the reason in its history; the 3-minute step
 * then asks the next two without the one who declined.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { HistoryEntry } from '../../dispatcher/api/types.ts';
import { ManualClock } from '../../kernel/clock.ts';
import { instant, minutes } from '../../kernel/time.ts';
import { apiCall, eventually, type Harness, login, startHarness } from '../helpers.ts';
import { liveClient, raiseFall } from './dispatch-helpers.ts';

const DAY = instant(Date.parse('2026-03-10T10:00:00+08:00'));
const closers: { close(): unknown }[] = [];
let h: Harness | undefined;
afterEach(async () => {
  for (const c of closers.splice(0)) await c.close();
  await h?.close();
  h = undefined;
});

describe("a responder who can't go", () => {
  it('passes the fall to the next responder at once, and the ladder passes over the one who declined', async () => {
    const clock = new ManualClock(DAY);
    h = await startHarness({ clock });
    const leader = await liveClient(h.baseUrl, 'g1-leader');
    const worker = await liveClient(h.baseUrl, 'g1-worker');
    closers.push(leader, worker);
    const alert = await raiseFall(h, clock, 'home-1-01', closers);
    expect(alert.assigneeId).toBe('grid-1-worker');

    const r = await apiCall<{ alert: { assigneeId: string } }>(
      h.baseUrl,
      worker.token,
      'POST',
      `/api/alerts/${alert.id}/decline`,
      { reason: '正在处理其他告警' },
    );
    expect(r.status).toBe(200);
    expect(r.body.alert.assigneeId).toBe('grid-1-leader');
    // Told now, not at the 3-minute step: the clock has not moved.
    const told = await eventually(
      () => leader.got.notification.find((n) => n.alertId === alert.id),
      10_000,
      'the next responder told',
    );
    expect(told.reason).toBe('passed_on');
    const dispatcher = await login(h.baseUrl, 'dispatcher');
    const detail = await apiCall<{ history: HistoryEntry[] }>(
      h.baseUrl,
      dispatcher,
      'GET',
      `/api/alerts/${alert.id}`,
    );
    expect(detail.body.history.find((x) => x.action === 'decline')).toMatchObject({
      actor: 'grid-1-worker',
      data: { reason: '正在处理其他告警', to: 'grid-1-leader' },
    });

    // At 3 min nobody accepted: the leader and the buddy are asked, the worker is not.
    const before = worker.got.notification.length;
    await clock.advance(minutes(3));
    await eventually(
      () => leader.got.notification.filter((n) => n.alertId === alert.id).length === 2,
      10_000,
      'the 3-minute step',
    );
    const step = await eventually(
      async () =>
        (await h!.store.alertHistory(alert.id)).find(
          (x) => x.action === 'escalate' && x.data.step === 'notify_next',
        ),
      10_000,
      'the escalation recorded',
    );
    expect(step.data.to).toEqual(['grid-1-leader', 'grid-1-buddy']);
    expect(worker.got.notification.length).toBe(before);
    // A dispatcher reassigns; only responders say they cannot go.
    expect(
      (await apiCall(h.baseUrl, dispatcher, 'POST', `/api/alerts/${alert.id}/decline`, { reason: 'x' }))
        .status,
    ).toBe(403);
  });
});
