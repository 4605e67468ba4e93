/**
 * Ordinary life raises nothing, and learned baselines sharpen the morning and inactivity rules: the
 * seeded daily routine of simulators/routine.ts through the pure engine.
 */
import { describe, expect, it } from 'vitest';
import { baselineOf } from '../../dispatcher/rules/baseline.ts';
import {
  advance,
  emptyHomeState,
  evaluate,
  type HomeContext,
  type HomeState,
  type Trigger,
} from '../../dispatcher/rules/engine.ts';
import type { LoggedEvent } from '../../gateway/ports.ts';
import type { DeviceEvent } from '../../gateway/protocol.ts';
import { type RoutineStep, routineDays } from '../../simulators/routine.ts';
import { DEVICES, homeContext, household, local, MIN, ZONE } from './rules-fixtures.ts';

const SAFETY = new Set([
  'FALL',
  'SOS',
  'NIGHT_EXIT',
  'NO_MORNING_ACTIVITY',
  'INACTIVITY',
  'BATHROOM_DWELL',
  'DOOR_LEFT_OPEN',
]);
const routineDevices = DEVICES.map(([id, d]) => ({ id, ...d }));

function replay(steps: RoutineStep[], ctx: HomeContext, state: HomeState = emptyHomeState()) {
  const triggers: Trigger[] = [];
  let seq = 0;
  for (const s of steps) {
    const event = { ...s.event, ts: s.at } as DeviceEvent;
    const logged: LoggedEvent = {
      seq: ++seq,
      deviceId: s.deviceId,
      homeId: ctx.householdId,
      receivedAt: s.at,
      ts: s.at,
      flags: [],
      event,
    };
    const r = evaluate(state, logged, ctx);
    state = r.state;
    triggers.push(...r.triggers);
  }
  return { state, triggers };
}

describe('an ordinary routine', () => {
  it('raises no alert at all in a simulated week of 100 homes', { timeout: 180_000 }, () => {
    const raised: string[] = [];
    let events = 0;
    for (let h = 0; h < 100; h++) {
      const ctx = { ...homeContext(household({ id: `h${h}` })) };
      const steps = routineDays({
        homeId: `h${h}`,
        devices: routineDevices,
        seed: 365 + h,
        zone: ZONE,
        from: '2026-03-02',
        days: 7,
      });
      events += steps.length;
      const { state, triggers } = replay(steps, ctx);
      const end = advance(state, local('2026-03-09 00:00'), ctx);
      for (const t of [...triggers, ...end.triggers])
        raised.push(`${ctx.householdId} ${t.rule} ${new Date(t.at).toISOString()} ${t.explanation.en}`);
    }
    expect(events).toBeGreaterThan(100 * 7 * 500);
    expect(raised.filter((r) => SAFETY.has(r.split(' ')[1]!))).toEqual([]);
    expect(raised).toEqual([]);
  });
});

describe('routine baselines', () => {
  const learned = (learnBaseline: boolean) => {
    const ctx = homeContext(household({ routine: { wakeTime: '07:30', learnBaseline } }));
    const steps = routineDays({
      homeId: 'h1',
      devices: routineDevices,
      seed: 7,
      zone: ZONE,
      from: '2026-03-01',
      days: 16,
      wakeTime: '07:00',
    });
    return { ctx, ...replay(steps, ctx) };
  };

  it('learns the usual getting-up time and quiet periods after 14 days', () => {
    const { state, triggers } = learned(true);
    expect(triggers).toEqual([]);
    const b = baselineOf(state.learn);
    expect(b).not.toBeNull();
    expect(b!.days).toBeGreaterThanOrEqual(14);
    // The routine wakes at 07:00 ± 40 min.
    expect(b!.usualUpBy).toBeGreaterThanOrEqual(6 * 60);
    expect(b!.usualUpBy).toBeLessThanOrEqual(7 * 60 + 40);
    expect(b!.longestQuietByHour[10]).toBeGreaterThan(0);
    expect(b!.longestQuietByHour[10]).toBeLessThan(4 * 60);
  });

  it('raises NO_MORNING_ACTIVITY earlier for an opted-in household, saying why, and never later than configured', () => {
    const optedIn = learned(true);
    const notOptedIn = learned(false);
    const morning = (x: ReturnType<typeof learned>) => {
      // Day 17: heartbeats only; the resident does not get up.
      const steps: RoutineStep[] = [];
      for (let t = local('2026-03-17 00:00'); t < local('2026-03-17 12:00'); t += 5 * MIN)
        for (const d of routineDevices)
          steps.push({ deviceId: d.id, at: t, event: { type: 'heartbeat', battery: 80 } });
      return replay(steps, x.ctx, x.state).triggers.filter((t) => t.rule === 'NO_MORNING_ACTIVITY');
    };
    const early = morning(optedIn);
    const usual = morning(notOptedIn);
    expect(usual.map((t) => t.at)).toEqual([local('2026-03-17 09:00')]);
    expect(early).toHaveLength(1);
    expect(early[0]!.at).toBeLessThan(local('2026-03-17 09:00'));
    expect(early[0]!.explanation.en).toMatch(/^usually up by \d\d:\d\d; nothing yet at \d\d:\d\d/);
    expect(early[0]!.explanation.zh).toContain('平时');
  });
});
