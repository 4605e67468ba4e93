/**
 * What the rules remember of one home (SPEC §5): the facts its deadlines are derived from. Stored by the
 * pipeline after every commit; `restoreHomeState` reads any shape ever stored.
 */
import type { DeviceKind } from '../../gateway/protocol.ts';
import { emptyLearn, type Learn, type LearnDay } from './baseline.ts';
import type { RuleSettings } from './settings.ts';

export interface HomeContext {
  householdId: string;
  /** The community's IANA time zone. */
  zone: string;
  /** The registered devices; `createdAt` (when it was provisioned) starts the silence of one never heard. */
  devices: ReadonlyMap<string, { kind: DeviceKind; room: string; createdAt?: number }>;
  /** Thresholds, night window, wake time and away status; SPEC §5 defaults when omitted. */
  settings?: RuleSettings;
}

export type Presence = 'home' | 'away' | 'unknown';

/** The offline cause of a registered device that has never spoken. */
export const NEVER_HEARD = 'never-heard';

/** What the engine remembers of one device. */
export interface DeviceFacts {
  /** Last sign of life (any message from it), when the service heard it. */
  seenAt: number;
  /** Set while the device is offline: disconnected (will, keep-alive, clean) or silent. */
  offline: { since: number; cause: string } | null;
  battery: number | null;
  /** Event time of the battery reading (a late, older reading does not replace it). */
  batteryAt?: number | null;
  low: boolean;
  /** DEV-11: the start of the newest session heard online (a presence record's `session`). */
  session?: number;
}

export interface HomeState {
  v: 2;
  /** The latest event time this home's rules have reached. */
  now: number;
  presence: Presence;
  presenceAt: number | null;
  lastMotionAt: number | null;
  lastMotionRoom: string | null;
  lastMotionSeq: number | null;
  /** A fall was detected and not yet followed by motion: motion is recorded on the FALL alert. */
  lastFallAt: number | null;
  /** The entrance door: last transition. */
  door: { open: boolean; at: number; seq: number } | null;
  lastDoorAt: number | null;
  /** The entrance door opened and closed; waiting for motion inside (presence, NIGHT_EXIT). */
  exit: { closedAt: number; openedAt: number | null; night: boolean; seq: number } | null;
  /** Silence clocks restart here: motion sensors came back, so motion during the outage is unknown. */
  quietFrom: number | null;
  /** Next NO_MORNING_ACTIVITY check and the local minute it was computed for. */
  morningDueAt: number | null;
  morningMinute: number | null;
  /** The episode each silence rule last fired (or was held back) for, so it fires once per episode. */
  fired: { inactivity: number | null; bathroom: number | null; door: number | null };
  devices: Record<string, DeviceFacts>;
  /**
   * When the first of the home's devices spoke (it was installed): a registered device never heard from
   * counts as silent from then, or from its provisioning if that is later. Null before any device spoke
   * (devices provisioned ahead of installation raise nothing).
   */
  liveSince: number | null;
  learn: Learn;
}

export const emptyHomeState = (): HomeState => ({
  v: 2,
  now: Number.NEGATIVE_INFINITY,
  presence: 'unknown',
  presenceAt: null,
  lastMotionAt: null,
  lastMotionRoom: null,
  lastMotionSeq: null,
  lastFallAt: null,
  door: null,
  lastDoorAt: null,
  exit: null,
  quietFrom: null,
  morningDueAt: null,
  morningMinute: null,
  fired: { inactivity: null, bathroom: null, door: null },
  devices: {},
  liveSince: null,
  learn: emptyLearn(),
});

/**
 * A copy a run may change (nested objects are replaced, never mutated, so `fired` and `devices` are copied
 * one level down). Written field by field, not spread: every copy then has the same shape, whatever shape
 * the state came in (read from the store, or a previous run's), and the copy is made at every evaluation.
 */
export function copyHomeState(s: HomeState): HomeState {
  return {
    v: s.v,
    now: s.now,
    presence: s.presence,
    presenceAt: s.presenceAt,
    lastMotionAt: s.lastMotionAt,
    lastMotionRoom: s.lastMotionRoom,
    lastMotionSeq: s.lastMotionSeq,
    lastFallAt: s.lastFallAt,
    door: s.door,
    lastDoorAt: s.lastDoorAt,
    exit: s.exit,
    quietFrom: s.quietFrom,
    morningDueAt: s.morningDueAt,
    morningMinute: s.morningMinute,
    fired: { inactivity: s.fired.inactivity, bathroom: s.fired.bathroom, door: s.fired.door },
    devices: { ...s.devices },
    liveSince: s.liveSince,
    learn: s.learn,
  };
}

/**
 * DATA-08: a home's state as it is written. The learned days (RULE-14: up to 28, ~3.5 KB of JSON) change once
 * a day, the rest at every event: `state` is the rest, and `learned` the days, only when `written` does not
 * hold that very list already. A list is never changed in place (learnMotion makes a new one when a day
 * completes), so "the same list" is "the same days". The caller adds `learned` to `written` once its commit
 * has stood.
 */
export function storedForm(
  s: HomeState,
  written: WeakSet<LearnDay[]>,
): { state: Omit<HomeState, 'learn'> & { learn: Omit<Learn, 'days'> }; learned?: LearnDay[] } {
  const state: Omit<HomeState, 'learn'> & { learn: Omit<Learn, 'days'> } = copyHomeState(s);
  state.learn = { day: s.learn.day, first: s.learn.first, quiet: s.learn.quiet };
  return written.has(s.learn.days) ? { state } : { state, learned: s.learn.days };
}

/**
 * DATA-08: a state as stored (`storedForm`'s two parts, or one part holding all of it, as stored before),
 * read back whole; the days read from their own part are added to `written`, days found inside the state
 * are not (they are written apart at the home's next commit).
 */
export function restoreStored(
  stored: { state: unknown; learned: unknown | null },
  written?: WeakSet<LearnDay[]>,
): HomeState {
  const s = restoreHomeState(stored.state);
  // Days inside the state were written there after any apart (by a version before DATA-08, or a caller
  // that stores whole states): they are the newer, and the next commit writes them apart.
  if (Array.isArray(s.learn.days)) return s;
  if (Array.isArray(stored.learned)) {
    s.learn = { ...s.learn, days: stored.learned as LearnDay[] };
    written?.add(s.learn.days);
  } else s.learn = { ...s.learn, days: [] };
  return s;
}

/** Reads a stored state, upgrading the first release's shape (last motion, fall, battery flags). */
export function restoreHomeState(stored: unknown): HomeState {
  const s = (stored ?? {}) as Partial<HomeState> & { batteryLow?: Record<string, boolean> };
  if (s.v === 2) {
    const devices = s.devices ?? {};
    // A state stored before `liveSince`: live since the time it had reached, if any device had spoken.
    const liveSince =
      s.liveSince !== undefined ? s.liveSince : Object.keys(devices).length ? (s.now ?? null) : null;
    return { ...emptyHomeState(), ...s, now: s.now ?? Number.NEGATIVE_INFINITY, liveSince };
  }
  const out = emptyHomeState();
  out.lastMotionAt = s.lastMotionAt ?? null;
  out.lastMotionRoom = s.lastMotionRoom ?? null;
  out.lastFallAt = s.lastFallAt ?? null;
  for (const [id, low] of Object.entries(s.batteryLow ?? {}))
    out.devices[id] = { seenAt: out.lastMotionAt ?? 0, offline: null, battery: null, low };
  if (out.lastMotionAt !== null) {
    out.presence = 'home';
    out.now = out.lastMotionAt;
  }
  return out;
}
