/**
 * GET /api/households/:id/baseline on the whole service: the learned routine of a household for the
 * console, null until 14 days are learned, visible only to staff who may see the household's grid.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { emptyHomeState, evaluate, type HomeState } from '../../dispatcher/rules/engine.ts';
import type { LoggedEvent } from '../../gateway/ports.ts';
import type { DeviceEvent, DeviceKind } from '../../gateway/protocol.ts';
import { ManualClock } from '../../kernel/clock.ts';
import { routineDays } from '../../simulators/routine.ts';
import { apiCall, type Harness, login, startHarness } from '../helpers.ts';
import { homeContext, household, ZONE } from './rules-fixtures.ts';

let h: Harness;

/** Sixteen ordinary days of one home of the harness, through the engine, as the pipeline would commit them. */
function learnedState(homeId: string, devices: { id: string; kind: DeviceKind; room: string }[]): HomeState {
  const ctx = { ...homeContext(household({ id: homeId })), devices: new Map(devices.map((d) => [d.id, d])) };
  let state = emptyHomeState();
  let seq = 0;
  for (const s of routineDays({ homeId, devices, seed: 1, zone: ZONE, from: '2025-12-01', days: 16 })) {
    const logged: LoggedEvent = {
      seq: ++seq,
      deviceId: s.deviceId,
      homeId,
      receivedAt: s.at,
      ts: s.at,
      flags: [],
      event: { ...s.event, ts: s.at } as DeviceEvent,
    };
    state = evaluate(state, logged, ctx).state;
  }
  return state;
}

beforeAll(async () => {
  h = await startHarness({ clock: new ManualClock('2026-01-01T02:00:00Z'), grids: 2, perGrid: 1 });
});
afterAll(async () => {
  await h.close();
});

describe('GET /api/households/:id/baseline', () => {
  it('answers null before 14 days are learned, and the learned profile after', async () => {
    const token = await login(h.baseUrl, 'dispatcher');
    const before = await apiCall(h.baseUrl, token, 'GET', '/api/households/home-1-01/baseline');
    expect(before).toEqual({ status: 200, body: { baseline: null } });

    const devices = h.plan.devices.filter((d) => d.homeId === 'home-1-01');
    await h.service.pipeline.stop();
    await h.store.commitRules({
      cursor: { name: 'rules', seq: h.service.pipeline.position },
      homeStates: [{ homeId: 'home-1-01', state: learnedState('home-1-01', devices) }],
      raised: [],
      updated: [],
      history: [],
    });
    const after = await apiCall<{ baseline: Record<string, unknown> }>(
      h.baseUrl,
      token,
      'GET',
      '/api/households/home-1-01/baseline',
    );
    expect(after.status).toBe(200);
    expect(after.body.baseline).toMatchObject({
      applied: false,
      days: 15,
      usualUpBy: expect.stringMatching(/^0[6-8]:\d\d$/),
      configured: { morningBy: '09:00', inactivityMinutes: 240 },
    });
    const learned = after.body.baseline.learned as { morningBy: string; inactivityMinutesByHour: number[] };
    expect(learned.morningBy <= '09:00').toBe(true);
    expect(learned.inactivityMinutesByHour).toHaveLength(24);
    expect(Math.max(...learned.inactivityMinutesByHour)).toBeLessThanOrEqual(240);
    expect(Math.min(...learned.inactivityMinutesByHour)).toBeGreaterThanOrEqual(120);
  });

  it('hides the household from staff of another grid and refuses anonymous requests', async () => {
    const other = await login(h.baseUrl, 'g2-worker');
    expect((await apiCall(h.baseUrl, other, 'GET', '/api/households/home-1-01/baseline')).status).toBe(404);
    expect((await apiCall(h.baseUrl, null, 'GET', '/api/households/home-1-01/baseline')).status).toBe(401);
  });
});
