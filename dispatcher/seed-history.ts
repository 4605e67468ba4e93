/**
 * DEMO-01: writes the demo's past week into a fresh store, before the rules start: the devices' events to
 * the log (as the gateway would have written them), and the alerts those events raised, already worked
 * through by their responders (notified, accepted within minutes, on site, resolved with an outcome) or
 * cleared (a battery replaced), so the household files' charts and the reports have content on the first
 * visit.
 *
 * The rules must not raise these alerts again: the same commit that stores the alerts moves the rules'
 * cursor (RULES_CURSOR) past the seeded events. Chosen over a "history" flag the rules would skip because it
 * changes nothing in the rules or the log format, and the rules' own crash-safety argument (alerts and
 * cursor in one transaction, SPEC §9) covers it: a crash mid-seed leaves either no alerts and the cursor at
 * 0 (the seed is not done; `seedDemo` only seeds an empty log) or both. The seeded alerts are worded by the
 * rules engine itself (`evaluate` on the incident's event) and walked through the alert lifecycle's pure
 * transitions, so they read exactly like live ones.
 */
import type { LoggedEvent } from '../gateway/ports.ts';
import { type EventBody, topics } from '../gateway/protocol.ts';
import { newId } from '../kernel/ids.ts';
import { runDueSteps } from './alerts/escalation.ts';
import { autoClear, raise, transition } from './alerts/lifecycle.ts';
import type { Alert, HistoryEntry, PersonOutcome } from './alerts/model.ts';
import type { DeviceInput, Grid, Household } from './registry.ts';
import { onDuty, type RosterEntry } from './routing/roster.ts';
import type { ShiftBoundaries } from './routing/shifts.ts';
import { emptyHomeState, evaluate, type HomeContext, type HomeState } from './rules/engine.ts';
import { RULES_CURSOR } from './rules/pipeline.ts';
import type { NewStaff, Store } from './store/store.ts';

/** One past device event (simulators/history.ts makes them). */
export interface PastEvent {
  deviceId: string;
  homeId: string;
  at: number;
  event: EventBody;
}

/** What the history is written for: a seeded community's plan (seed.ts's SeedPlan has this shape). */
export interface HistoryPlan {
  grids: Grid[];
  households: Household[];
  devices: DeviceInput[];
  staff: (Omit<NewStaff, 'passwordHash'> & { password: string })[];
  roster: RosterEntry[];
}

export interface HistoryOptions {
  zone: string;
  shifts: ShiftBoundaries;
}

const MIN = 60_000;
/** Rows per append: one transaction (and one fsync) each. */
const BATCH = 5_000;
const NOTES: Record<'assisted' | 'false_alarm', string[]> = {
  assisted: ['已上门，扶老人起身，无明显外伤，已告知家属', '老人头晕，测量血压后休息，已通知女儿'],
  false_alarm: ['老人弯腰拾物，误报，已确认安全', '误按紧急求助按钮，老人无碍'],
};

/** Writes `events` and the alerts they raised; returns how many alerts. Call on an empty log only. */
export async function seedHistory(
  store: Store,
  plan: HistoryPlan,
  events: readonly PastEvent[],
  o: HistoryOptions,
): Promise<{ events: number; alerts: number }> {
  const seqs: number[] = [];
  for (let i = 0; i < events.length; i += BATCH) {
    const out = await store.appendEvents(
      events.slice(i, i + BATCH).map((e) => {
        const event = { ...e.event, ts: e.at };
        return {
          deviceId: e.deviceId,
          homeId: e.homeId,
          // Heard a second after the device sent it, as over a good link.
          receivedAt: e.at + 1000,
          topic: topics.events(e.homeId, e.deviceId),
          status: 'accepted' as const,
          ts: e.at,
          type: e.event.type,
          deviceSeq: null,
          session: null,
          body: JSON.stringify(event),
          reason: null,
          flags: [],
        };
      }),
    );
    for (const r of out) seqs.push(r.seq ?? 0);
  }
  const last = seqs.reduce((m, s) => Math.max(m, s), 0);

  const homes = new Map(plan.households.map((h) => [h.id, h]));
  const grids = new Map(plan.grids.map((g) => [g.id, g]));
  const supervisors = plan.staff.filter((s) => s.roles.includes('supervisor')).map((s) => s.id);
  const ctxOf = (homeId: string): HomeContext => ({
    householdId: homeId,
    zone: o.zone,
    devices: new Map(
      plan.devices
        .filter((d) => d.homeId === homeId)
        .map((d) => [d.id, { kind: d.kind, room: d.room, createdAt: 0 }]),
    ),
  });
  const alerts: Alert[] = [];
  const history: HistoryEntry[] = [];
  const open = new Map<string, Alert>();
  // Battery facts carried per home (low, then replaced); every other incident is judged on its own.
  const battery = new Map<string, HomeState>();
  let n = 0;

  events.forEach((e, i) => {
    const incident =
      e.event.type === 'fall' ||
      e.event.type === 'sos' ||
      (e.event.type === 'heartbeat' && (e.event.battery === 12 || battery.has(e.homeId)));
    if (!incident) return;
    const h = homes.get(e.homeId);
    const grid = h && grids.get(h.gridId);
    if (!h || !grid) return;
    const logged: LoggedEvent = {
      seq: seqs[i]!,
      deviceId: e.deviceId,
      homeId: e.homeId,
      receivedAt: e.at + 1000,
      ts: e.at,
      flags: [],
      event: { ...e.event, ts: e.at } as LoggedEvent['event'],
    };
    const isBattery = e.event.type === 'heartbeat';
    const before = (isBattery && battery.get(e.homeId)) || emptyHomeState();
    const r = evaluate(before, logged, ctxOf(e.homeId));
    if (isBattery) battery.set(e.homeId, r.state);

    for (const c of r.clearances) {
      const a = open.get(`${c.householdId}/${c.rule}`);
      if (c.rule !== 'LOW_BATTERY' || !a) continue;
      const cleared = autoClear(a, c);
      if (!cleared.ok) continue;
      replace(a, cleared.value.alert);
      history.push(...cleared.value.history);
      open.delete(`${c.householdId}/${c.rule}`);
      battery.delete(e.homeId);
    }
    for (const t of r.triggers) {
      if (!['FALL', 'SOS', 'LOW_BATTERY'].includes(t.rule) || t.attachOnly) continue;
      if (open.has(`${t.householdId}/${t.rule}`)) continue;
      const duty = onDuty(grid.id, t.at, o.zone, o.shifts, plan.roster, []).staffIds;
      const raised = raise(t, {
        id: newId('al', t.at),
        gridId: grid.id,
        community: grid.community,
        responders: duty,
      });
      history.push(...raised.history);
      if (t.rule === 'LOW_BATTERY') {
        alerts.push(raised.alert);
        open.set(`${t.householdId}/${t.rule}`, raised.alert);
        continue;
      }
      alerts.push(worked(raised.alert, duty, supervisors, n++, history));
    }
  });

  function replace(old: Alert, next: Alert): void {
    alerts[alerts.indexOf(old)] = next;
  }

  await store.commitRules({
    cursor: { name: RULES_CURSOR, seq: last },
    homeStates: [],
    raised: alerts,
    updated: [],
    history,
  });
  return { events: events.length, alerts: alerts.length };
}

/**
 * A safety alert as its responders worked it through: notified at once (step 0 of the ladder), accepted by
 * the first on duty within 1–2.5 min, en route, on site within 6–12 min, resolved 10–25 min later.
 */
function worked(
  raised: Alert,
  duty: readonly string[],
  supervisors: readonly string[],
  k: number,
  history: HistoryEntry[],
): Alert {
  let a = raised;
  const t0 = a.raisedAt;
  const step = runDueSteps(a, t0, 0, duty, supervisors);
  if (step) {
    a = step.alert;
    history.push(...step.history);
  }
  const responder = a.responders[0];
  if (!responder) return a;
  const actor = { id: responder, channel: 'mqtt' as const, canOverride: false };
  // Deterministic spread from the alert's number: the figures differ from alert to alert.
  const at = {
    accept: t0 + (60 + ((k * 37) % 90)) * 1000,
    enRoute: t0 + (150 + ((k * 23) % 60)) * 1000,
    onSite: t0 + (6 + ((k * 5) % 7)) * MIN,
    resolve: t0 + (16 + ((k * 7) % 20)) * MIN,
  };
  const outcome: PersonOutcome = k % 4 === 3 ? 'false_alarm' : 'assisted';
  const note = NOTES[outcome][k % 2]!;
  for (const [action, when] of [
    [{ type: 'accept' }, at.accept],
    [{ type: 'en-route' }, at.enRoute],
    [{ type: 'on-site' }, at.onSite],
    [{ type: 'resolve', outcome, note }, at.resolve],
  ] as const) {
    const r = transition(a, action, actor, when);
    if (!r.ok) return a;
    a = r.value.alert;
    history.push(...r.value.history);
  }
  return a;
}
