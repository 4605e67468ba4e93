/**
 * Accidents, faults and misbehaviour that can be injected into any simulated home at a chosen (simulated)
 * time. Each scenario is data: what happens (a pure plan of extra device events, routine events that no
 * longer happen, and device actions such as dropping off the network) and what the service must do about it
 * (the alerts it must raise, the ones it must not, rejected messages, refused logins). Tests use the oracle;
 * the CLI and the demo use the plan.
 */
import { DateTime } from 'luxon';
import type { RuleId } from '../dispatcher/api/types.ts';
import type { DeviceKind, EventBody, EventType } from '../gateway/protocol.ts';
import { type Duration, hours, minutes } from '../kernel/time.ts';
import type { RoutineDevice, RoutineStep } from './routine.ts';

/** A stretch of the routine that does not happen (the resident lies still, a device is off the network). */
export interface Suppression {
  from: number;
  to: number;
  /** Only these devices (all when absent). */
  deviceIds?: string[];
  /** Only these event types (all when absent). */
  types?: EventType[];
}

/** Something a device does besides sending a well-formed event. */
export type DeviceAction =
  /** The connection drops without a DISCONNECT: the broker publishes the device's `offline` will. */
  | { at: number; kind: 'drop'; deviceId: string }
  | { at: number; kind: 'reconnect'; deviceId: string }
  /** A raw payload on the device's own events topic (garbage, oversized, wrong kind). */
  | { at: number; kind: 'raw'; deviceId: string; payload: Buffer }
  /** `deviceId` tries to log in as `as` with its own secret (a cloned or misconfigured device). */
  | { at: number; kind: 'impersonate'; deviceId: string; as: string };

export interface ScenarioPlan {
  steps: RoutineStep[];
  suppress: Suppression[];
  actions: DeviceAction[];
}

export interface AlertExpectation {
  rule: RuleId;
  /** The alert's device is of this kind (technical alerts name the device). */
  deviceKind?: DeviceKind;
  /** Some evidence summary of the alert contains this text. */
  evidence?: string;
}

/** What the service must do, by `at + within` at the latest. */
export interface ScenarioOracle {
  expect: AlertExpectation[];
  /** Rules that must not raise an alert for this home within the window. */
  expectNot: RuleId[];
  within: Duration;
  /** Messages the gateway must record as rejected for this home's devices. */
  rejected?: number;
  /** Logins that must be refused, with the CONNACK return code (SPEC §3: 4 = bad user name or password). */
  refused?: { code: number }[];
}

export interface ScenarioContext {
  homeId: string;
  devices: readonly RoutineDevice[];
  at: number;
}

export interface Scenario extends ScenarioOracle {
  name: string;
  description: string;
  /** A local time of day at which the scenario makes sense (`HH:MM`, community time). */
  defaultTime: string;
  /** Device kinds the home must have. */
  needs: DeviceKind[];
  plan(ctx: ScenarioContext): ScenarioPlan;
}

const SEC = 1000;
const MIN = 60 * SEC;

function find(ctx: ScenarioContext, kind: DeviceKind, room?: string): RoutineDevice {
  const d =
    ctx.devices.find((x) => x.kind === kind && (room === undefined || x.room === room)) ??
    ctx.devices.find((x) => x.kind === kind);
  if (!d) throw new Error(`home ${ctx.homeId} has no ${kind} device for this scenario`);
  return d;
}

const motionIn = (ctx: ScenarioContext, room: string): RoutineStep[] => {
  const d = ctx.devices.find((x) => x.kind === 'motion' && x.room === room);
  return d ? [{ deviceId: d.id, at: 0, event: { type: 'motion', state: 'active', room } }] : [];
};

const step = (deviceId: string, at: number, event: EventBody): RoutineStep => ({ deviceId, at, event });
const at = (s: RoutineStep[], t: number): RoutineStep[] => s.map((x) => ({ ...x, at: t }));
const nothing = (): ScenarioPlan => ({ steps: [], suppress: [], actions: [] });
/** The resident does not move (lies on the floor, is unconscious, has left): no motion, no door. */
const still = (from: number, to: number): Suppression => ({ from, to, types: ['motion', 'door'] });

export const SCENARIOS: readonly Scenario[] = [
  {
    name: 'fall-bathroom-night',
    description: 'a night-time trip to the bathroom ends in a fall; the resident lies still',
    defaultTime: '02:40',
    needs: ['fall'],
    expect: [{ rule: 'FALL', evidence: 'fall detected in bathroom' }],
    expectNot: ['SOS', 'NIGHT_EXIT', 'DOOR_LEFT_OPEN'],
    within: minutes(5),
    plan: (ctx) => ({
      steps: [
        ...at(motionIn(ctx, 'bedroom'), ctx.at - 3 * MIN),
        ...at(motionIn(ctx, 'bathroom'), ctx.at - 90 * SEC),
        step(find(ctx, 'fall', 'bathroom').id, ctx.at, {
          type: 'fall',
          state: 'detected',
          room: 'bathroom',
          confidence: 0.93,
        }),
      ],
      suppress: [still(ctx.at - 3 * MIN - 1, ctx.at + hours(3))],
      actions: [],
    }),
  },
  {
    name: 'fall-then-up',
    description: 'a fall in the living room, and the resident gets up two minutes later',
    defaultTime: '10:15',
    needs: ['fall'],
    expect: [{ rule: 'FALL', evidence: 'resident moved after the fall' }],
    expectNot: ['INACTIVITY', 'BATHROOM_DWELL', 'SOS'],
    within: minutes(60),
    plan: (ctx) => {
      const fall = find(ctx, 'fall').id;
      return {
        steps: [
          ...at(motionIn(ctx, 'living'), ctx.at - 2 * MIN),
          step(fall, ctx.at, { type: 'fall', state: 'detected', room: 'living', confidence: 0.81 }),
          step(fall, ctx.at + 2 * MIN, { type: 'fall', state: 'cleared', room: 'living' }),
          ...at(motionIn(ctx, 'living'), ctx.at + 2 * MIN + 10 * SEC),
          ...at(motionIn(ctx, 'kitchen'), ctx.at + 4 * MIN),
        ],
        suppress: [still(ctx.at - 2 * MIN - 1, ctx.at + 4 * MIN - 1)],
        actions: [],
      };
    },
  },
  {
    name: 'no-morning-activity',
    description: 'the resident does not get up: no motion at all from the middle of the night on',
    defaultTime: '03:00',
    needs: ['motion'],
    // Usual wake time 07:30: the rule speaks at 09:00; INACTIVITY (4 h from 06:00) would only at 10:00.
    expect: [{ rule: 'NO_MORNING_ACTIVITY' }],
    expectNot: ['INACTIVITY', 'DEVICE_OFFLINE', 'NIGHT_EXIT'],
    within: minutes(6 * 60 + 15),
    plan: (ctx) => ({ steps: [], suppress: [still(ctx.at, ctx.at + hours(12))], actions: [] }),
  },
  {
    name: 'night-exit',
    description: 'at night the resident walks out of the front door and does not come back',
    defaultTime: '23:30',
    needs: ['door'],
    expect: [{ rule: 'NIGHT_EXIT' }],
    expectNot: ['DOOR_LEFT_OPEN', 'FALL'],
    within: minutes(20),
    plan: (ctx) => {
      const door = find(ctx, 'door').id;
      return {
        steps: [
          ...at(motionIn(ctx, 'bedroom'), ctx.at - 2 * MIN),
          ...at(motionIn(ctx, 'living'), ctx.at - 40 * SEC),
          step(door, ctx.at, { type: 'door', state: 'open', door: 'front' }),
          step(door, ctx.at + 15 * SEC, { type: 'door', state: 'closed', door: 'front' }),
        ],
        suppress: [still(ctx.at - 2 * MIN - 1, ctx.at + hours(4))],
        actions: [],
      };
    },
  },
  {
    name: 'door-left-open',
    description: 'the resident comes home and leaves the front door open',
    defaultTime: '10:30',
    needs: ['door'],
    expect: [{ rule: 'DOOR_LEFT_OPEN' }],
    expectNot: ['NIGHT_EXIT'],
    within: minutes(35),
    plan: (ctx) => {
      const door = find(ctx, 'door').id;
      return {
        steps: [step(door, ctx.at, { type: 'door', state: 'open', door: 'front' })],
        suppress: [{ from: ctx.at - 1, to: ctx.at + hours(1), deviceIds: [door], types: ['door'] }],
        actions: [],
      };
    },
  },
  {
    name: 'help-button',
    description: 'the resident presses the help button',
    defaultTime: '15:20',
    needs: ['button'],
    expect: [{ rule: 'SOS' }],
    expectNot: ['FALL'],
    within: minutes(1),
    plan: (ctx) => ({
      steps: [step(find(ctx, 'button').id, ctx.at, { type: 'sos' })],
      suppress: [],
      actions: [],
    }),
  },
  {
    name: 'device-offline',
    description: 'the living-room motion sensor drops off the network for an hour (no goodbye: its will)',
    defaultTime: '11:00',
    needs: ['motion'],
    expect: [{ rule: 'DEVICE_OFFLINE', deviceKind: 'motion' }],
    // SPEC §5: a silent sensor is never taken for a silent household.
    expectNot: ['INACTIVITY', 'NO_MORNING_ACTIVITY'],
    within: minutes(20),
    plan: (ctx) => {
      const d = find(ctx, 'motion', 'living').id;
      return {
        steps: [],
        suppress: [{ from: ctx.at, to: ctx.at + hours(1), deviceIds: [d] }],
        actions: [
          { at: ctx.at, kind: 'drop', deviceId: d },
          { at: ctx.at + hours(1), kind: 'reconnect', deviceId: d },
        ],
      };
    },
  },
  {
    name: 'battery-running-down',
    description: "the door sensor's battery runs down from 30 % to 6 % within the hour",
    defaultTime: '09:00',
    needs: ['door'],
    expect: [{ rule: 'LOW_BATTERY', deviceKind: 'door' }],
    expectNot: ['DEVICE_OFFLINE'],
    within: minutes(45),
    plan: (ctx) => {
      const d = find(ctx, 'door').id;
      // Heartbeats every 5 min for two hours, 3 % less each time: 30, 27, … 15 (the 6th, 25 min in) raises
      // the alert; the beats go on so the device never looks offline.
      const steps = Array.from({ length: 24 }, (_, i) =>
        step(d, ctx.at + i * 5 * MIN, {
          type: 'heartbeat',
          battery: Math.max(6, 30 - 3 * i),
          rssi: -70,
          fw: '1.4.2',
        }),
      );
      return {
        steps,
        suppress: [{ from: ctx.at - 1, to: ctx.at + hours(2), deviceIds: [d], types: ['heartbeat'] }],
        actions: [],
      };
    },
  },
  {
    name: 'flapping-door',
    description: 'a loose door contact flaps open/closed 30 times in two minutes, ending closed',
    defaultTime: '14:00',
    needs: ['door'],
    expect: [],
    expectNot: ['DOOR_LEFT_OPEN', 'NIGHT_EXIT', 'FALL', 'SOS'],
    within: minutes(40),
    plan: (ctx) => {
      const d = find(ctx, 'door').id;
      const steps = Array.from({ length: 60 }, (_, i) =>
        step(d, ctx.at + i * 2 * SEC, {
          type: 'door',
          state: i % 2 === 0 ? 'open' : 'closed',
          door: 'front',
        }),
      );
      return { steps, suppress: [], actions: [] };
    },
  },
  {
    name: 'garbage-payloads',
    description:
      'the kitchen motion sensor sends garbage: not JSON, an unknown type, a fall from a motion sensor, 3 KiB, invalid UTF-8',
    defaultTime: '12:00',
    needs: ['motion'],
    expect: [],
    expectNot: ['FALL', 'SOS'],
    within: minutes(2),
    rejected: 5,
    plan: (ctx) => {
      const d = find(ctx, 'motion', 'kitchen').id;
      const raw = (i: number, payload: Buffer): DeviceAction => ({
        at: ctx.at + i * SEC,
        kind: 'raw',
        deviceId: d,
        payload,
      });
      return {
        ...nothing(),
        actions: [
          raw(0, Buffer.from('{"type":"motion","state":')),
          raw(1, Buffer.from(JSON.stringify({ type: 'smoke', ts: ctx.at }))),
          raw(2, Buffer.from(JSON.stringify({ type: 'fall', state: 'detected', ts: ctx.at }))),
          raw(
            3,
            Buffer.from(
              JSON.stringify({
                type: 'motion',
                state: 'active',
                room: 'kitchen',
                ts: ctx.at,
                pad: 'x'.repeat(3000),
              }),
            ),
          ),
          raw(4, Buffer.from([0x7b, 0xff, 0xfe, 0x7d])),
        ],
      };
    },
  },
  {
    name: 'impersonation',
    description: "the door sensor tries to log in as the home's fall radar with its own secret",
    defaultTime: '16:00',
    needs: ['door', 'fall'],
    expect: [],
    expectNot: ['FALL'],
    within: minutes(1),
    refused: [{ code: 4 }],
    plan: (ctx) => ({
      ...nothing(),
      actions: [
        { at: ctx.at, kind: 'impersonate', deviceId: find(ctx, 'door').id, as: find(ctx, 'fall').id },
      ],
    }),
  },
];

export function scenario(name: string): Scenario {
  const s = SCENARIOS.find((x) => x.name === name);
  if (!s) throw new Error(`unknown scenario ${name}; known: ${SCENARIOS.map((x) => x.name).join(', ')}`);
  return s;
}

/** The instant of a local time of day on a local date, in the community's zone. */
export function localInstant(date: string, hhmm: string, zone: string): number {
  const t = DateTime.fromISO(`${date}T${hhmm}`, { zone });
  if (!t.isValid) throw new Error(`expected YYYY-MM-DD and HH:MM, got ${date} ${hhmm}`);
  return t.toMillis();
}

/** True when a routine step does not happen because of a scenario's suppressions. */
export function suppressed(s: RoutineStep, windows: readonly Suppression[]): boolean {
  return windows.some(
    (w) =>
      s.at >= w.from &&
      s.at < w.to &&
      (!w.deviceIds || w.deviceIds.includes(s.deviceId)) &&
      (!w.types || w.types.includes(s.event.type)),
  );
}

/** A routine with scenarios applied: what the devices send (device actions are not events and are left out). */
export function applyPlans(routine: readonly RoutineStep[], plans: readonly ScenarioPlan[]): RoutineStep[] {
  const windows = plans.flatMap((p) => p.suppress);
  const out = routine.filter((s) => !suppressed(s, windows));
  for (const p of plans) out.push(...p.steps);
  return out.sort((a, b) => a.at - b.at);
}

/** What a test or the CLI sees of an alert, enough to judge a scenario. */
export interface SeenAlert {
  rule: RuleId;
  householdId: string;
  deviceId: string | null;
  raisedAt: number;
  evidence: { summary: string }[];
}

/**
 * Judges the alerts raised for a home against a scenario's oracle; returns what is wrong (empty: passed).
 * Only alerts raised from `at` on count, so earlier history in the same home does not confuse the verdict.
 */
export function judge(
  s: ScenarioOracle,
  ctx: { homeId: string; devices: readonly RoutineDevice[]; at: number },
  alerts: readonly SeenAlert[],
): string[] {
  const mine = alerts.filter((a) => a.householdId === ctx.homeId && a.raisedAt >= ctx.at - MIN);
  const problems: string[] = [];
  for (const e of s.expect) {
    const hit = mine.find(
      (a) =>
        a.rule === e.rule &&
        (!e.deviceKind || ctx.devices.find((d) => d.id === a.deviceId)?.kind === e.deviceKind) &&
        (!e.evidence || a.evidence.some((x) => x.summary.includes(e.evidence!))),
    );
    if (!hit)
      problems.push(`expected a ${e.rule} alert${e.evidence ? ` with evidence "${e.evidence}"` : ''}`);
  }
  for (const rule of s.expectNot)
    if (mine.some((a) => a.rule === rule)) problems.push(`raised ${rule}, which this scenario must not`);
  const counts = new Map<string, number>();
  for (const a of mine) counts.set(a.rule, (counts.get(a.rule) ?? 0) + 1);
  for (const [rule, n] of counts)
    if (n > 1) problems.push(`raised ${n} ${rule} alerts (one alert per problem)`);
  return problems;
}
