/**
 * DEMO-01: the demo's past week, as its devices would have reported it: each home's ordinary routine
 * (routine.ts) over the 7 days before `now`, with a few falls and help-button presses across the community
 * and two motion sensors whose battery ran low and was replaced. Pure and seeded: plain device events for the
 * service's seed (dispatcher/seed.ts) to write to the log, as the gateway would have.
 */
import { DateTime } from 'luxon';
import type { EventBody } from '../gateway/protocol.ts';
import type { CommunityPlan } from './community.ts';
import { Rng } from './random.ts';
import { dailyRoutine } from './routine.ts';

export interface HistoryStep {
  deviceId: string;
  homeId: string;
  /** Device time, epoch ms. */
  at: number;
  event: EventBody;
}

export interface HistoryOptions {
  now: number;
  zone: string;
  days?: number;
  seed?: number;
}

const MIN = 60_000;
/**
 * The past week is thinner than a live day, so the demo still starts in seconds: a heartbeat every 3 h (not
 * every 5 min), and a motion sensor's repeated `active` kept once every 10 min while motion lasts (the
 * chart draws rooms by the quarter hour; every first `active` after `idle` is kept).
 */
const HISTORY_HEARTBEAT_MS = 180 * MIN;
const HISTORY_MOTION_REPEAT_MS = 10 * MIN;

export function demoHistory(plan: CommunityPlan, o: HistoryOptions): HistoryStep[] {
  const days = o.days ?? 7;
  const rng = new Rng(o.seed ?? 2024);
  const from = o.now - days * 24 * 60 * MIN;
  const today = DateTime.fromMillis(o.now, { zone: o.zone }).startOf('day');
  const steps: HistoryStep[] = [];
  plan.households.forEach((h, i) => {
    const devices = plan.devices.filter((d) => d.homeId === h.id);
    const lastActive = new Map<string, number>();
    for (let d = days; d >= 0; d--) {
      const date = today.minus({ days: d }).toISODate()!;
      for (const s of dailyRoutine({
        homeId: h.id,
        devices,
        seed: 1000 + i,
        date,
        zone: o.zone,
        wakeTime: h.routine.wakeTime,
        heartbeatEvery: HISTORY_HEARTBEAT_MS,
      })) {
        if (s.event.type === 'motion') {
          const last = lastActive.get(s.deviceId);
          if (s.event.state === 'idle') lastActive.delete(s.deviceId);
          else if (last !== undefined && s.at - last < HISTORY_MOTION_REPEAT_MS) continue;
          else lastActive.set(s.deviceId, s.at);
        }
        steps.push({ deviceId: s.deviceId, homeId: h.id, at: s.at, event: s.event });
      }
    }
  });

  // Incidents: one a day, in the daytime of a random home: mostly falls in the bathroom (where the radar
  // is), every third day the help button by the bed.
  for (let d = days; d >= 1; d--) {
    const day = today.minus({ days: d });
    const at = day.plus({ minutes: rng.int(9 * 60, 19 * 60) }).toMillis() + rng.int(0, 59) * 1000;
    const sos = d % 3 === 1;
    const withButton = plan.households.filter((h) =>
      plan.devices.some((x) => x.homeId === h.id && x.kind === 'button'),
    );
    const home = rng.pick(sos && withButton.length > 0 ? withButton : plan.households);
    const button = plan.devices.find((x) => x.homeId === home.id && x.kind === 'button');
    const radar = plan.devices.find((x) => x.homeId === home.id && x.kind === 'fall');
    if (sos && button) {
      steps.push({ deviceId: button.id, homeId: home.id, at, event: { type: 'sos' } });
    } else if (radar) {
      const confidence = Math.round(rng.between(0.78, 0.96) * 100) / 100;
      steps.push({
        deviceId: radar.id,
        homeId: home.id,
        at,
        event: { type: 'fall', state: 'detected', room: radar.room, confidence },
      });
      steps.push({
        deviceId: radar.id,
        homeId: home.id,
        at: at + rng.int(4, 9) * MIN,
        event: { type: 'fall', state: 'cleared', room: radar.room },
      });
    }
  }

  // Two motion sensors ran low (12 %) and had their battery replaced about a day later.
  for (const [k, home] of [rng.pick(plan.households), rng.pick(plan.households)].entries()) {
    const sensor = plan.devices.find((x) => x.homeId === home.id && x.kind === 'motion');
    if (!sensor) continue;
    const lowFrom = today
      .minus({ days: 5 - 2 * k })
      .plus({ hours: 10 })
      .toMillis();
    const replacedAt = lowFrom + rng.int(20, 30) * 60 * MIN;
    for (const s of steps) {
      if (s.deviceId !== sensor.id || s.event.type !== 'heartbeat' || s.at < lowFrom) continue;
      s.event = { ...s.event, battery: s.at < replacedAt ? 12 : 100 };
    }
  }

  return steps.filter((s) => s.at >= from && s.at < o.now).sort((x, y) => x.at - y.at);
}
