/**
 * The rules engine (SPEC §5): turns the event log of one home, and the silences in it, into triggers.
 *
 * Pure: `evaluate(state, event, ctx)` and `advance(state, until, ctx)` take the home's state and return the
 * new state, the triggers and the clearances; the pipeline persists them and raises alerts. Each rule is
 * one handler in `kinds/` (its deadline, what fires it and what clears it); this file owns only the order
 * of things and the facts several rules share (motion, the entrance door). The words are in `explain.ts`.
 *
 * Time is event time, never wall time (SPEC §5 "Time"). Rules that fire on the absence of events keep
 * their deadlines in the home state as facts (last motion, door opened at, door closed at, next morning
 * check, each device's last sign of life); `nextDeadline` derives the earliest one. Before an event is
 * applied, every deadline at or before the moment the service *heard* it (its receive time, stored in the
 * log) is fired first, in order, each at its own exact instant (`advance`): that is what the pipeline's
 * live timer did while the event was on its way, so the same log always yields the same triggers whether a
 * deadline was reached by a later event or by the timer (which calls `advance` with the clock's now when
 * no event comes). A deadline fires once per episode (the facts it was derived from are remembered in
 * `fired`).
 *
 * A late event (delivered after a lost link, SPEC §3) takes its true place in the home's history: the
 * facts follow event time (a motion older than the last one does not move "last motion, where"; a door
 * transition older than the last one changes nothing; a close already followed by motion is no exit; an
 * older battery reading does not replace a newer one), while a device's sign of life is when it was
 * heard. An alert an event raises at once (fall, help button, battery) is raised when the service heard of
 * it, its true time in the evidence and the explanation.
 */
import type { LoggedEvent } from '../../gateway/ports.ts';
import type { Evidence } from '../alerts/model.ts';
import { learnMotion } from './baseline.ts';
import { RULE_HANDLERS } from './kinds/index.ts';
import { isNight } from './localtime.ts';
import {
  type Deadline,
  type Evaluation,
  type EventInput,
  LATE_AFTER_MS,
  type RuleHandler,
  Run,
} from './run.ts';
import type { HomeContext, HomeState } from './state.ts';

export { type Unprocessed, unwatchedTrigger } from './kinds/home-unwatched.ts';
export type { Evaluation } from './run.ts';
export {
  type DeviceFacts,
  emptyHomeState,
  type HomeContext,
  type HomeState,
  type Presence,
  restoreHomeState,
  restoreStored,
  storedForm,
} from './state.ts';
export type { Clearance, Trigger } from './trigger.ts';

const FRONT_DOOR = 'front';

const HANDLER_OF = new Map<string, RuleHandler>(RULE_HANDLERS.map((h) => [h.rule, h]));

/** The earliest deadline of every rule; on a tie, the first in the registry's order. */
function nextOf(run: Run): Deadline | null {
  earliest = null;
  for (const h of RULE_HANDLERS) h.deadlines?.(run, consider);
  const best = earliest;
  earliest = null;
  return best;
}

/** What `consider` kept of the deadlines offered so far in the `nextOf` under way (one function for all). */
let earliest: Deadline | null = null;
const consider = (d: Deadline): void => {
  if (!earliest || d.at < earliest.at) earliest = d;
};

/** The earliest instant a silence rule is due, with the morning check brought up to date in the run's state. */
function dueNext(run: Run): number | null {
  run.refreshMorning();
  return nextOf(run)?.at ?? null;
}

/**
 * The run's result, with the home's next deadline worked out on the run's own state, as `nextDeadline`
 * does on a copy of it: the morning check is brought up to date in the state the run returns.
 */
function finish(run: Run): Evaluation {
  const next = dueNext(run);
  return { state: run.s, triggers: run.triggers, clearances: run.clearances, next };
}

/** Fires every deadline at or before `until`, in order, each at its own instant. */
function advanceRun(run: Run, until: number): void {
  run.refreshMorning();
  for (let guard = 0; guard < 10_000; guard++) {
    const d = nextOf(run);
    if (!d || d.at > until) break;
    HANDLER_OF.get(d.rule)!.fire!(run, d);
    if (d.at > run.s.now) run.s.now = d.at;
  }
}

/** The earliest instant at which a silence rule of this home is due, or null (for the live timer). */
export function nextDeadline(state: HomeState, ctx: HomeContext): number | null {
  return dueNext(new Run(state, ctx));
}

/** Fires every deadline of this home at or before `until` (the live timer, when no event comes). */
export function advance(state: HomeState, until: number, ctx: HomeContext): Evaluation {
  const run = new Run(state, ctx);
  advanceRun(run, until);
  return finish(run);
}

export function evaluate(state: HomeState, logged: LoggedEvent, ctx: HomeContext): Evaluation {
  const run = new Run(state, ctx);
  const s = run.s;
  const ev = logged.event;
  // Event time (the pipeline never lets it pass the receive time) and when the service heard of the event.
  const ts = ev.ts;
  const heard = Math.max(ts, logged.receivedAt);
  // Silences that ended before the service heard of this event are judged first, at their own instants:
  // live, the timer fired them while the event was on its way.
  advanceRun(run, heard);
  if (heard > s.now) s.now = heard;
  run.refreshMorning();

  const device = ctx.devices.get(logged.deviceId);
  const e: EventInput = {
    logged,
    ts,
    heard,
    device,
    room: device?.room ?? '?',
    late: heard - ts > LATE_AFTER_MS,
    evidence: (summary: string): Evidence => ({
      seq: logged.seq,
      deviceId: logged.deviceId,
      type: ev.type,
      at: ts,
      summary,
    }),
  };
  for (const h of RULE_HANDLERS) if (h.heard?.(run, e)) return finish(run);
  for (const h of RULE_HANDLERS) h.onEvent?.(run, e);
  takeIn(run, e);
  return finish(run);
}

/**
 * The facts several rules share, after every rule saw the event as it was before: the last motion and
 * where (BATHROOM_DWELL, INACTIVITY, NO_MORNING_ACTIVITY, the learned baseline), presence, and the entrance
 * door and an exit through it (DOOR_LEFT_OPEN, NIGHT_EXIT).
 */
function takeIn(run: Run, e: EventInput): void {
  const s = run.s;
  const ev = e.logged.event;
  const ts = e.ts;
  const zone = run.ctx.zone;
  if (ev.type === 'motion') {
    if (ev.state !== 'active') return;
    const prev = s.lastMotionAt;
    if (prev !== null && ts < prev) return; // late: an older motion changes nothing the rules use
    // A quiet period at home, for the baseline: not an outing, not a sensor outage.
    const quietAtHome =
      prev !== null &&
      s.presence === 'home' &&
      !(s.lastDoorAt !== null && s.lastDoorAt > prev) &&
      !(s.quietFrom !== null && s.quietFrom > prev);
    s.learn = learnMotion(s.learn, quietAtHome ? prev : null, ts, zone, run.set.night.end);
    s.lastMotionAt = ts;
    s.lastMotionRoom = e.device?.kind === 'motion' ? e.device.room : ev.room;
    s.lastMotionSeq = e.logged.seq;
    if (s.presence !== 'home') {
      s.presence = 'home';
      s.presenceAt = ts;
    }
    if (s.exit && ts >= s.exit.closedAt) s.exit = null;
    return;
  }
  if (ev.type === 'door') {
    if (ev.door !== FRONT_DOOR) return;
    const d = s.door;
    if (d && ts < d.at) return; // out of order: an older transition does not undo a newer one
    s.lastDoorAt = ts;
    if (ev.state === 'open') {
      if (d?.open) return; // a repeated `open` does not restart DOOR_LEFT_OPEN
      s.door = { open: true, at: ts, seq: e.logged.seq };
      s.exit = null;
      return;
    }
    if (!d?.open) return; // nothing opened: a repeated `closed` is no exit
    s.door = { open: false, at: ts, seq: e.logged.seq };
    // SPEC §5: the door closed; if nothing moves inside for 10 min the resident is away (at night:
    // NIGHT_EXIT). A flapping door re-arms this from its last close and raises nothing extra. A close
    // heard late, after motion inside that followed it, is no exit: the resident is in.
    s.exit =
      s.lastMotionAt !== null && s.lastMotionAt >= ts
        ? null
        : { closedAt: ts, openedAt: d.at, night: isNight(ts, run.set.night, zone), seq: e.logged.seq };
  }
}
