/**
 * The rules engine (SPEC §5): turns the event log of one home, and the silences in it, into triggers.
 *
 * Pure: `evaluate(state, event, ctx)` and `advance(state, until, ctx)` take the home's state and return the
 * new state, the triggers and the clearances; the pipeline persists them and raises alerts.
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
import type { DeviceKind, PresenceEvent } from '../../gateway/protocol.ts';
import { type DurationWords, formatDuration, ms } from '../../kernel/time.ts';
import type { Evidence, Explanation, RuleId } from '../alerts/model.ts';
import { isRoom, ROOM_LABELS } from '../rooms.ts';
import { EVENT_LABELS, KIND_LABELS, RULE_LABELS } from '../words.ts';
import {
  type Baseline,
  baselineOf,
  emptyLearn,
  inactivityMs,
  type Learn,
  learnMotion,
  morningMinute,
} from './baseline.ts';
import { hhmmAt, isNight, localMinute, minutesHhmm, nextLocal, previousLocal } from './localtime.ts';
import { BATTERY_HYSTERESIS, DEAD_BATTERY_PERCENT, DEFAULT_SETTINGS, type RuleSettings } from './settings.ts';

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

/** What the engine remembers of one device. */
/** The offline cause of a registered device that has never spoken. */
const NEVER_HEARD = 'never-heard';

export interface DeviceFacts {
  /** Last sign of life (any message from it), when the service heard it. */
  seenAt: number;
  /** Set while the device is offline: disconnected (will, keep-alive, clean) or silent. */
  offline: { since: number; cause: string } | null;
  battery: number | null;
  /** Event time of the battery reading (a late, older reading does not replace it). */
  batteryAt?: number | null;
  low: boolean;
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

export interface Trigger {
  rule: RuleId;
  householdId: string;
  deviceId: string | null;
  at: number;
  evidence: Evidence;
  explanation: Explanation;
  /** Evidence for an open alert only: never raises a new one (e.g. "resident moved after the fall"). */
  attachOnly?: boolean;
}

/** A technical condition ended (device back, battery replaced): clears the open technical alert. */
export interface Clearance {
  rule: RuleId;
  householdId: string;
  deviceId: string;
  at: number;
  evidence: Evidence;
}

export interface Evaluation {
  state: HomeState;
  triggers: Trigger[];
  clearances: Clearance[];
}

/** An event heard more than this after its own time is late: its alert text says when it happened. */
export const LATE_AFTER_MS = 60_000;

/** SPEC §5 LOW_BATTERY default, in percent. */
export const LOW_BATTERY_PERCENT = 15;
const FRONT_DOOR = 'front';
const HOUR = 3_600_000;

type DeadlineKind = 'exit' | 'door' | 'bathroom' | 'inactivity' | 'morning' | 'silent';
interface Deadline {
  at: number;
  kind: DeadlineKind;
  deviceId?: string;
  /** The episode this deadline belongs to (for `fired`). */
  episode?: number;
  thresholdMs?: number;
  learned?: boolean;
}

/** One evaluation in progress: a private copy of the state plus what it produced. */
class Run {
  readonly s: HomeState;
  readonly triggers: Trigger[] = [];
  readonly clearances: Clearance[] = [];
  readonly set: RuleSettings;
  constructor(
    state: HomeState,
    readonly ctx: HomeContext,
  ) {
    // Copy on entry (the caller keeps the old state until its commit succeeds); nested objects are
    // replaced, never mutated.
    this.s = { ...state, fired: { ...state.fired }, devices: { ...state.devices } };
    this.set = ctx.settings ?? DEFAULT_SETTINGS;
  }

  result(): Evaluation {
    return { state: this.s, triggers: this.triggers, clearances: this.clearances };
  }

  hhmm(ts: number): string {
    return hhmmAt(ts, this.ctx.zone);
  }

  trigger(
    rule: RuleId,
    at: number,
    deviceId: string | null,
    evidence: Evidence,
    en: string,
    zh: string,
  ): void {
    this.triggers.push({
      rule,
      householdId: this.ctx.householdId,
      deviceId,
      at,
      evidence,
      explanation: { en, zh },
    });
  }

  /** The household's away status (hospital, family) suspends the activity rules (SPEC §4). */
  suspended(at: number): boolean {
    return this.set.awayUntil !== null && at < this.set.awayUntil;
  }

  /** Motion sensors that cannot see: offline or a dead battery (SPEC §5 "a silent sensor…"). */
  blindSensors(): string[] {
    const out: string[] = [];
    for (const [id, d] of this.ctx.devices) {
      if (d.kind !== 'motion') continue;
      const f = this.s.devices[id];
      // A sensor never heard from saw nothing before either: the home's activity rules ran without it,
      // and its own DEVICE_OFFLINE says it is missing.
      if (f?.offline?.cause === NEVER_HEARD) continue;
      if (f && (f.offline !== null || (f.battery !== null && f.battery <= DEAD_BATTERY_PERCENT)))
        out.push(id);
    }
    return out;
  }

  hasMotionSensor(): boolean {
    for (const d of this.ctx.devices.values()) if (d.kind === 'motion') return true;
    return false;
  }

  baseline(): Baseline | null {
    return this.set.baseline ? baselineOf(this.s.learn) : null;
  }

  /**
   * An activity rule whose motion sensors are blind raises DEVICE_OFFLINE for the device instead (SPEC §5):
   * returns true when it did, and the activity alert must not be raised.
   */
  heldBack(rule: RuleId, at: number, what: { en: string; zh: string }): boolean {
    const blind = this.blindSensors();
    if (blind.length === 0) return false;
    const id = blind[0]!;
    const f = this.s.devices[id]!;
    const room = this.ctx.devices.get(id)?.room ?? '?';
    const why =
      f.offline !== null
        ? { en: `offline since ${this.hhmm(f.offline.since)}`, zh: `自 ${this.hhmm(f.offline.since)} 起离线` }
        : { en: `battery dead (${f.battery}%)`, zh: `电池耗尽（${f.battery}%）` };
    this.trigger(
      'DEVICE_OFFLINE',
      at,
      id,
      {
        seq: null,
        deviceId: id,
        type: 'held_back',
        at,
        summary: `${rule} held back: motion sensor ${id} ${why.en}`,
      },
      `${rule} not raised: ${what.en}, but motion sensor ${id} (${room}) is ${why.en}; a silent sensor is not a silent household`,
      `${ruleZh(rule)}未告警：${what.zh}，但${roomZh(room)}人体移动传感器 ${id} ${why.zh}；需检修设备`,
    );
    return true;
  }

  /**
   * Since when a registered device never heard from counts as silent: since the home went live (its first
   * device spoke), or its own provisioning if later; null before the home is live.
   */
  neverHeardSince(id: string): number | null {
    const createdAt = this.ctx.devices.get(id)?.createdAt;
    if (this.s.liveSince === null || createdAt === undefined) return null;
    return Math.max(createdAt, this.s.liveSince);
  }

  // ---- deadlines

  nextDeadline(): Deadline | null {
    const s = this.s;
    const set = this.set;
    let best: Deadline | null = null;
    const consider = (d: Deadline) => {
      if (!best || d.at < best.at) best = d;
    };
    if (s.exit) {
      consider({
        at: s.exit.closedAt + (s.exit.night ? set.nightExitMs : set.awayAfterMs),
        kind: 'exit',
        thresholdMs: s.exit.night ? set.nightExitMs : set.awayAfterMs,
      });
    }
    if (s.door?.open && s.fired.door !== s.door.at)
      consider({
        at: s.door.at + set.doorOpenMs,
        kind: 'door',
        episode: s.door.at,
        thresholdMs: set.doorOpenMs,
      });
    if (s.lastMotionAt !== null && s.presence !== 'away') {
      const last = s.lastMotionAt;
      if (
        s.lastMotionRoom !== null &&
        s.lastMotionRoom === 'bathroom' &&
        s.fired.bathroom !== last &&
        !(s.lastDoorAt !== null && s.lastDoorAt > last)
      ) {
        consider({ at: last + set.bathroomMs, kind: 'bathroom', episode: last, thresholdMs: set.bathroomMs });
      }
      const anchor = this.quietAnchor();
      if (s.fired.inactivity !== anchor && !isNight(anchor, set.night, this.ctx.zone)) {
        const hour = Math.floor(localMinute(anchor, this.ctx.zone) / 60);
        const t = inactivityMs(set, this.baseline(), hour);
        // INACTIVITY is a daytime rule (SPEC §5 "outside the night window"): a quiet period that runs into
        // the night is sleep, and the next morning belongs to NO_MORNING_ACTIVITY.
        if (
          anchor + t.ms < nextLocal(anchor, set.night.start, this.ctx.zone) ||
          set.night.start === set.night.end
        )
          consider({
            at: anchor + t.ms,
            kind: 'inactivity',
            episode: anchor,
            thresholdMs: t.ms,
            learned: t.learned,
          });
      }
    }
    if (s.morningDueAt !== null) consider({ at: s.morningDueAt, kind: 'morning' });
    for (const id in s.devices) {
      const f = s.devices[id]!;
      // Only registered devices: one removed from the household file is not expected to speak.
      if (f.offline === null && this.ctx.devices.has(id))
        consider({ at: f.seenAt + set.silentMs, kind: 'silent', deviceId: id });
    }
    // A registered device never heard from in a home whose other devices speak (it was installed) is
    // silent since then, or since its provisioning if later: a fall radar that never came online must not
    // go unnoticed (SPEC §5 "silent for 3 heartbeat periods").
    for (const id of this.ctx.devices.keys()) {
      const since = id in s.devices ? null : this.neverHeardSince(id);
      if (since !== null) consider({ at: since + set.silentMs, kind: 'silent', deviceId: id });
    }
    return best;
  }

  /** Silence is counted from the last motion, or from when the sensors could see again, or the return home. */
  quietAnchor(): number {
    let a = this.s.lastMotionAt ?? Number.NEGATIVE_INFINITY;
    if (this.s.quietFrom !== null && this.s.quietFrom > a) a = this.s.quietFrom;
    const until = this.set.awayUntil;
    if (until !== null && until > a) a = until;
    return a;
  }

  /** Fires every deadline at or before `until`, in order, each at its own instant. */
  advance(until: number): void {
    this.refreshMorning();
    for (let guard = 0; guard < 10_000; guard++) {
      const d = this.nextDeadline();
      if (!d || d.at > until) break;
      this.fire(d);
      if (d.at > this.s.now) this.s.now = d.at;
    }
  }

  /** The morning check follows the routine profile and the baseline; recomputed when either moves it. */
  refreshMorning(): void {
    const s = this.s;
    if (s.now === Number.NEGATIVE_INFINITY) return;
    const m = morningMinute(this.set, this.baseline()).minute;
    if (s.morningDueAt === null || s.morningMinute !== m) {
      s.morningMinute = m;
      s.morningDueAt = nextLocal(s.now, Math.min(m, 1439), this.ctx.zone);
    }
  }

  fire(d: Deadline): void {
    const s = this.s;
    const set = this.set;
    const zone = this.ctx.zone;
    const at = d.at;
    switch (d.kind) {
      case 'exit': {
        const exit = s.exit!;
        s.exit = null;
        s.presence = 'away';
        s.presenceAt = at;
        // SPEC §5 NIGHT_EXIT: at night the door opened and closed and nothing moved inside for 10 min.
        if (!exit.night || this.suspended(at)) return;
        const mins = formatDuration(ms(set.nightExitMs));
        const window = `${minutesHhmm(set.night.start)}–${minutesHhmm(set.night.end)}`;
        const what = {
          en: `the entrance door closed at ${this.hhmm(exit.closedAt)} in the night window (${window}) and nothing moved inside for ${mins}`,
          zh: `夜间（${window}）${this.hhmm(exit.closedAt)} 入户门开关后 ${durZh(set.nightExitMs)}内室内无活动`,
        };
        if (this.heldBack('NIGHT_EXIT', at, what)) return;
        const doorId = this.doorDevice();
        this.trigger(
          'NIGHT_EXIT',
          at,
          doorId,
          {
            seq: exit.seq,
            deviceId: doorId,
            type: 'door',
            at: exit.closedAt,
            summary: `door ${exit.openedAt === null ? '' : `opened ${this.hhmm(exit.openedAt)}, `}closed ${this.hhmm(exit.closedAt)}; no motion inside for ${mins}`,
          },
          `${what.en}; the resident may have left (threshold ${mins})`,
          `${what.zh}，老人可能已外出（阈值 ${durZh(set.nightExitMs)}）`,
        );
        return;
      }
      case 'door': {
        s.fired.door = d.episode!;
        const since = s.door!.at;
        const doorId = this.doorDevice();
        this.trigger(
          'DOOR_LEFT_OPEN',
          at,
          doorId,
          {
            seq: s.door!.seq,
            deviceId: doorId,
            type: 'door',
            at: since,
            summary: `entrance door open since ${this.hhmm(since)}`,
          },
          `entrance door open since ${this.hhmm(since)} (${formatDuration(ms(at - since))}); threshold ${formatDuration(ms(set.doorOpenMs))}`,
          `入户门自 ${this.hhmm(since)} 起一直开着（${durZh(at - since)}）；阈值 ${durZh(set.doorOpenMs)}`,
        );
        return;
      }
      case 'bathroom': {
        s.fired.bathroom = d.episode!;
        if (this.suspended(at)) return;
        const last = s.lastMotionAt!;
        const what = {
          en: `last motion in the bathroom at ${this.hhmm(last)}, nothing moved anywhere for ${formatDuration(ms(at - last))}`,
          zh: `最后一次活动在卫生间（${this.hhmm(last)}），此后 ${durZh(at - last)}各处均无活动`,
        };
        if (this.heldBack('BATHROOM_DWELL', at, what)) return;
        this.trigger(
          'BATHROOM_DWELL',
          at,
          null,
          this.lastMotionEvidence(`last motion in the bathroom at ${this.hhmm(last)}`),
          `${what.en}; threshold ${formatDuration(ms(set.bathroomMs))}`,
          `${what.zh}；阈值 ${durZh(set.bathroomMs)}`,
        );
        return;
      }
      case 'inactivity': {
        s.fired.inactivity = d.episode!;
        if (this.suspended(at) || s.presence === 'away') return;
        const last = s.lastMotionAt!;
        const t = d.thresholdMs!;
        const usual = d.learned
          ? this.baseline()?.longestQuietByHour[Math.floor(localMinute(d.episode!, zone) / 60)]
          : undefined;
        const what = {
          en: `no motion since ${this.hhmm(last)} (${formatDuration(ms(at - last))})`,
          zh: `自 ${this.hhmm(last)} 起无活动（${durZh(at - last)}）`,
        };
        if (this.heldBack('INACTIVITY', at, what)) return;
        this.trigger(
          'INACTIVITY',
          at,
          null,
          this.lastMotionEvidence(`no motion since ${this.hhmm(last)}`),
          `${what.en}; threshold ${formatDuration(ms(t))}${usual === undefined ? '' : ` (learned: usually at most ${formatDuration(ms(usual * 60_000))} quiet at this hour)`}`,
          `${what.zh}；阈值 ${durZh(t)}${usual === undefined ? '' : `（按习惯：此时段通常最长 ${durZh(usual * 60_000)}无活动）`}`,
        );
        return;
      }
      case 'morning': {
        const minute = s.morningMinute ?? morningMinute(set, this.baseline()).minute;
        s.morningDueAt = nextLocal(at, Math.min(minute, 1439), zone);
        if (this.suspended(at) || !this.hasMotionSensor()) return;
        // Morning activity is motion since the night ended (or, when the wake time is set before the night
        // ends, in the two hours before it).
        const nightEnd = previousLocal(at, set.night.end, zone);
        const windowStart = at - nightEnd <= 12 * HOUR ? nightEnd : at - 2 * HOUR;
        // Out this morning (SPEC §5 presence: normal, pauses the activity rules). "Away" since before the
        // night is not: nobody came home overnight, or someone lies still behind a closed door.
        if (s.presence === 'away' && (s.presenceAt ?? 0) >= windowStart) return;
        const last = s.lastMotionAt;
        if (last !== null && last >= windowStart) return;
        const m = morningMinute(set, this.baseline());
        const b = this.baseline();
        const lastText = {
          en:
            last === null
              ? 'no motion recorded yet'
              : `last motion at ${this.hhmm(last)} (${formatDuration(ms(at - last))} ago)`,
          zh: last === null ? '尚无活动记录' : `最后一次活动 ${this.hhmm(last)}（${durZh(at - last)}前）`,
        };
        const rule =
          m.learned && b?.usualUpBy != null
            ? {
                en: `usually up by ${minutesHhmm(b.usualUpBy)}; nothing yet at ${this.hhmm(at)}`,
                zh: `平时 ${minutesHhmm(b.usualUpBy)} 前起床；${this.hhmm(at)} 仍无活动`,
              }
            : {
                en: `no motion by ${this.hhmm(at)} (wake time ${minutesHhmm(set.wake)} + ${formatDuration(ms(set.morningGraceMs))})`,
                zh: `${this.hhmm(at)} 前无起床活动（起床时间 ${minutesHhmm(set.wake)} + ${durZh(set.morningGraceMs)}）`,
              };
        if (this.heldBack('NO_MORNING_ACTIVITY', at, rule)) return;
        this.trigger(
          'NO_MORNING_ACTIVITY',
          at,
          null,
          last === null
            ? { seq: null, deviceId: null, type: 'morning', at, summary: 'no motion this morning' }
            : this.lastMotionEvidence(`no motion since ${this.hhmm(last)}`),
          `${rule.en}; ${lastText.en}`,
          `${rule.zh}；${lastText.zh}`,
        );
        return;
      }
      case 'silent': {
        const id = d.deviceId!;
        const heard = s.devices[id];
        const f = heard ?? {
          seenAt: this.neverHeardSince(id) ?? at,
          offline: null,
          battery: null,
          low: false,
        };
        s.devices[id] = { ...f, offline: { since: f.seenAt, cause: heard ? 'silent' : NEVER_HEARD } };
        const periods = `${formatDuration(ms(set.silentMs))}`;
        const since = heard
          ? { en: 'silent since', zh: '起无任何消息' }
          : { en: 'never heard from, the home live since', zh: '起该户已在线，此设备从未上线' };
        this.offlineTrigger(
          id,
          at,
          {
            en: `${since.en} ${this.hhmm(f.seenAt)} (${formatDuration(ms(at - f.seenAt))}; threshold ${periods}, 3 heartbeat periods)`,
            zh: `自 ${this.hhmm(f.seenAt)} ${since.zh}（${durZh(at - f.seenAt)}；阈值 ${durZh(set.silentMs)}，即 3 个心跳周期）`,
          },
          null,
          heard ? 'silent' : NEVER_HEARD,
        );
        return;
      }
    }
  }

  doorDevice(): string | null {
    for (const [id, d] of this.ctx.devices) if (d.kind === 'door') return id;
    return null;
  }

  lastMotionEvidence(summary: string): Evidence {
    const s = this.s;
    return { seq: s.lastMotionSeq, deviceId: null, type: 'motion', at: s.lastMotionAt ?? 0, summary };
  }

  offlineTrigger(
    id: string,
    at: number,
    why: { en: string; zh: string },
    seq: number | null,
    type: string,
  ): void {
    const dev = this.ctx.devices.get(id);
    const what = dev ? `${KIND_EN[dev.kind]} ${id} (${dev.room})` : `device ${id}`;
    const whatZh = dev ? `${roomZh(dev.room)}${KIND_ZH[dev.kind]} ${id}` : `设备 ${id}`;
    this.trigger(
      'DEVICE_OFFLINE',
      at,
      id,
      { seq, deviceId: id, type, at, summary: `${id} ${why.en}` },
      `${what} ${why.en}`,
      `${whatZh} ${why.zh}`,
    );
  }

  // ---- events

  /** A sign of life from the device, heard at `ts` (the receive time). */
  sawDevice(logged: LoggedEvent, ts: number): void {
    const id = logged.deviceId;
    const f = this.s.devices[id];
    if (f && f.offline === null) {
      if (ts > f.seenAt) this.s.devices[id] = { ...f, seenAt: ts };
      return;
    }
    if (this.s.liveSince == null) this.s.liveSince = ts;
    // Back online: any message from the device (SPEC §5 "Clearing": technical alerts clear themselves).
    const wasBlind =
      f?.offline != null && f.offline.cause !== NEVER_HEARD && this.ctx.devices.get(id)?.kind === 'motion';
    this.s.devices[id] = {
      ...f,
      seenAt: Math.max(ts, f?.seenAt ?? ts),
      offline: null,
      battery: f?.battery ?? null,
      low: f?.low ?? false,
    };
    if (!f) return;
    // Motion during the outage is unknown: the silence clocks restart now.
    if (wasBlind && (this.s.quietFrom === null || ts > this.s.quietFrom)) this.s.quietFrom = ts;
    const stillOffline = Object.values(this.s.devices).some((d) => d.offline !== null);
    if (!stillOffline) {
      this.clearances.push({
        rule: 'DEVICE_OFFLINE',
        householdId: this.ctx.householdId,
        deviceId: id,
        at: ts,
        evidence: {
          seq: logged.seq,
          deviceId: id,
          type: logged.event.type,
          at: ts,
          summary: `${id} back online after ${formatDuration(ms(ts - f.offline!.since))}`,
        },
      });
    }
  }
}

const KIND_EN: Record<DeviceKind, string> = {
  fall: 'fall radar',
  door: 'door contact',
  motion: 'motion sensor',
  button: 'help button',
};
/** zh-CN names of kinds and rules: the one vocabulary (words.ts, WORDS-01). */
const KIND_ZH: Record<DeviceKind, string> = KIND_LABELS.zh;
const ruleZh = (r: RuleId) => RULE_LABELS.zh[r];

const ZH_WORDS: DurationWords = {
  s: (n) => `${n}秒`,
  min: (n) => `${n}分钟`,
  h: (n) => `${n}小时`,
  hMin: (h, mm) => `${h}小时${mm}分`,
};

/** "4小时05分", "40分钟", "30秒": durations in zh-CN explanations. */
export const durZh = (d: number): string => formatDuration(d, ZH_WORDS);

/** The earliest instant at which a silence rule of this home is due, or null (for the live timer). */
export function nextDeadline(state: HomeState, ctx: HomeContext): number | null {
  const run = new Run(state, ctx);
  run.refreshMorning();
  return run.nextDeadline()?.at ?? null;
}

/** Fires every deadline of this home at or before `until` (the live timer, when no event comes). */
export function advance(state: HomeState, until: number, ctx: HomeContext): Evaluation {
  const run = new Run(state, ctx);
  run.advance(until);
  return run.result();
}

export function evaluate(state: HomeState, logged: LoggedEvent, ctx: HomeContext): Evaluation {
  const run = new Run(state, ctx);
  const s = run.s;
  const ev = logged.event;
  // Event time (the pipeline never lets it pass the receive time) and when the service heard of the event.
  const ts = ev.ts;
  const heard = Math.max(ts, logged.receivedAt);
  const zone = ctx.zone;
  // Silences that ended before the service heard of this event are judged first, at their own instants:
  // live, the timer fired them while the event was on its way.
  run.advance(heard);
  if (heard > s.now) s.now = heard;
  run.refreshMorning();

  const device = ctx.devices.get(logged.deviceId);
  const room = device?.room ?? '?';
  const evidence = (summary: string): Evidence => ({
    seq: logged.seq,
    deviceId: logged.deviceId,
    type: ev.type,
    at: ts,
    summary,
  });
  // A late event's alert says when it really happened and how late it came.
  const lateText =
    heard - ts > LATE_AFTER_MS
      ? {
          en: `; reported ${formatDuration(ms(heard - ts))} late, at ${run.hhmm(heard)}`,
          zh: `（${run.hhmm(heard)} 才收到，延迟 ${durZh(heard - ts)}）`,
        }
      : { en: '', zh: '' };

  if (ev.type === 'presence') {
    if (ev.state === 'online') {
      run.sawDevice(logged, heard);
      return run.result();
    }
    const f = s.devices[logged.deviceId];
    if (f?.offline) return run.result();
    // SPEC §5: a device is disconnected by its will or a keep-alive timeout. A clean DISCONNECT is the
    // device ending its own session (MQTT 3.1.1 §3.14: its will is discarded), as a battery device or a
    // one-shot publisher (the README's mosquitto_pub) does after each message: not a fault by itself. Its
    // silence clock keeps running from its last word, so one that stays away is DEVICE_OFFLINE after 3
    // heartbeat periods; a device that means to be offline says so with its `offline` status.
    if (ev.cause === 'disconnect') return run.result();
    if (f && f.seenAt > heard) return run.result(); // stale: the device spoke after this record
    s.devices[logged.deviceId] = {
      ...f,
      seenAt: f?.seenAt ?? heard,
      battery: f?.battery ?? null,
      low: f?.low ?? false,
      offline: { since: heard, cause: ev.cause },
    };
    const cause = CAUSE[ev.cause];
    run.offlineTrigger(
      logged.deviceId,
      heard,
      {
        en: `offline since ${run.hhmm(heard)} (${cause.en})`,
        zh: `自 ${run.hhmm(heard)} 起离线（${cause.zh}）`,
      },
      logged.seq,
      'presence',
    );
    return run.result();
  }
  run.sawDevice(logged, heard);

  switch (ev.type) {
    case 'fall': {
      const where = ev.room ?? room;
      if (ev.state === 'detected') {
        s.lastFallAt = Math.max(s.lastFallAt ?? ts, ts);
        const conf = ev.confidence === undefined ? '' : ` (${Math.round(ev.confidence * 100)}%)`;
        run.trigger(
          'FALL',
          heard,
          logged.deviceId,
          evidence(`fall detected in ${where}${conf}`),
          `fall radar detected a fall in ${where} at ${run.hhmm(ts)}${conf}${lateText.en}`,
          `${run.hhmm(ts)} 跌倒雷达在${roomZh(where)}检测到跌倒${conf}${lateText.zh}`,
        );
      } else if (s.lastFallAt !== null) {
        // A cleared fall is recorded on the open FALL alert; it never closes it (SPEC §5 "Clearing").
        run.triggers.push({
          rule: 'FALL',
          householdId: ctx.householdId,
          deviceId: logged.deviceId,
          at: heard,
          evidence: evidence(`fall radar reports the fall cleared (${where})`),
          explanation: { zh: '', en: '' },
          attachOnly: true,
        });
      }
      break;
    }
    case 'sos':
      run.trigger(
        'SOS',
        heard,
        logged.deviceId,
        evidence(`help button pressed in ${room}`),
        `help button pressed in ${room} at ${run.hhmm(ts)}${lateText.en}`,
        `${run.hhmm(ts)} 按下了紧急求助按钮（${roomZh(room)}）${lateText.zh}`,
      );
      break;
    case 'motion': {
      if (ev.state !== 'active') break;
      const motionRoom = device?.kind === 'motion' ? device.room : ev.room;
      if (s.lastFallAt !== null && ts > s.lastFallAt) {
        // Recorded on the open FALL alert as evidence; it never closes it (SPEC §5 "Clearing").
        run.triggers.push({
          rule: 'FALL',
          householdId: ctx.householdId,
          deviceId: logged.deviceId,
          at: heard,
          evidence: evidence(
            `resident moved after the fall (${motionRoom}, ${formatDuration(ms(ts - s.lastFallAt))} later)`,
          ),
          explanation: { zh: '', en: '' },
          attachOnly: true,
        });
        s.lastFallAt = null;
      }
      const prev = s.lastMotionAt;
      if (prev !== null && ts < prev) break; // late: an older motion changes nothing the rules use
      if (prev !== null && heard - ts > LATE_AFTER_MS) {
        // Heard late, from inside a quiet period a silence alert was raised for on time: the resident moved
        // before that alert. Recorded on it as evidence; it never closes it (SPEC §5 "Clearing").
        const anchor = run.quietAnchor();
        const hour = Math.floor(localMinute(anchor, zone) / 60);
        const contradicted: RuleId[] = [];
        if (s.fired.bathroom === prev && ts < prev + run.set.bathroomMs) contradicted.push('BATHROOM_DWELL');
        if (
          s.fired.inactivity === anchor &&
          ts > anchor &&
          ts < anchor + inactivityMs(run.set, run.baseline(), hour).ms
        )
          contradicted.push('INACTIVITY');
        for (const rule of contradicted)
          run.triggers.push({
            rule,
            householdId: ctx.householdId,
            deviceId: logged.deviceId,
            at: heard,
            evidence: evidence(
              `motion in ${motionRoom} at ${run.hhmm(ts)}, reported ${formatDuration(ms(heard - ts))} late: the resident moved before this alert`,
            ),
            explanation: { zh: '', en: '' },
            attachOnly: true,
          });
      }
      // A quiet period at home, for the baseline: not an outing, not a sensor outage.
      const quietAtHome =
        prev !== null &&
        s.presence === 'home' &&
        !(s.lastDoorAt !== null && s.lastDoorAt > prev) &&
        !(s.quietFrom !== null && s.quietFrom > prev);
      s.learn = learnMotion(s.learn, quietAtHome ? prev : null, ts, zone, run.set.night.end);
      s.lastMotionAt = ts;
      s.lastMotionRoom = motionRoom;
      s.lastMotionSeq = logged.seq;
      if (s.presence !== 'home') {
        s.presence = 'home';
        s.presenceAt = ts;
      }
      if (s.exit && ts >= s.exit.closedAt) s.exit = null;
      break;
    }
    case 'door': {
      if (ev.door !== FRONT_DOOR) break;
      const d = s.door;
      if (d && ts < d.at) break; // out of order: an older transition does not undo a newer one
      s.lastDoorAt = ts;
      if (ev.state === 'open') {
        if (d?.open) break; // a repeated `open` does not restart DOOR_LEFT_OPEN
        s.door = { open: true, at: ts, seq: logged.seq };
        s.exit = null;
      } else {
        if (!d?.open) break; // nothing opened: a repeated `closed` is no exit
        s.door = { open: false, at: ts, seq: logged.seq };
        // SPEC §5: the door closed; if nothing moves inside for 10 min the resident is away (at night:
        // NIGHT_EXIT). A flapping door re-arms this from its last close and raises nothing extra. A close
        // heard late, after motion inside that followed it, is no exit: the resident is in.
        s.exit =
          s.lastMotionAt !== null && s.lastMotionAt >= ts
            ? null
            : { closedAt: ts, openedAt: d.at, night: isNight(ts, run.set.night, zone), seq: logged.seq };
      }
      break;
    }
    case 'heartbeat': {
      if (ev.battery === undefined) break;
      const id = logged.deviceId;
      const f = s.devices[id]!;
      if (f.batteryAt != null && ts < f.batteryAt) break; // late: a newer reading stands
      const threshold = run.set.lowBatteryPercent;
      const wasDead = f.battery !== null && f.battery <= DEAD_BATTERY_PERCENT;
      const low = f.low ? ev.battery <= threshold + BATTERY_HYSTERESIS : ev.battery <= threshold;
      s.devices[id] = { ...f, battery: ev.battery, batteryAt: ts, low };
      if (wasDead && ev.battery > DEAD_BATTERY_PERCENT && device?.kind === 'motion') s.quietFrom = heard;
      if (low && !f.low) {
        run.trigger(
          'LOW_BATTERY',
          heard,
          id,
          evidence(`battery ${ev.battery}%`),
          `device ${id} battery at ${ev.battery}% (threshold ${threshold}%)`,
          `设备 ${id} 电量 ${ev.battery}%（阈值 ${threshold}%）`,
        );
      } else if (!low && f.low && !Object.values(s.devices).some((x) => x.low)) {
        run.clearances.push({
          rule: 'LOW_BATTERY',
          householdId: ctx.householdId,
          deviceId: id,
          at: heard,
          evidence: evidence(`battery back to ${ev.battery}%`),
        });
      }
      break;
    }
  }
  return run.result();
}

const CAUSE: Record<PresenceEvent['cause'], { en: string; zh: string }> = {
  connect: { en: 'connected', zh: '已连接' },
  disconnect: { en: 'disconnected', zh: '断开连接' },
  will: { en: 'will message', zh: '遗嘱消息' },
  keepalive: { en: 'keep-alive timeout', zh: '心跳超时' },
  status: { en: 'reported offline', zh: '上报离线' },
};

/** Room names in zh-CN explanations (devices are registered in the SPEC §3 vocabulary's ids). */
export const roomZh = (room: string): string => (isRoom(room) ? ROOM_LABELS.zh[room] : room);

/** Explanations state times of day in the community's time zone, never the host's. */
export function localHhMm(ts: number, zone: string): string {
  return hhmmAt(ts, zone);
}

/** What of a home the rules could not process: one logged event, or the home's due silence deadlines. */
export type Unprocessed =
  | { kind: 'event'; logged: LoggedEvent }
  | { kind: 'due'; homeId: string; until: number };

/**
 * A home's events are never skipped silently (SPEC §5 "a silent sensor is never taken for a silent
 * household" applies to the service too): what the rules could not commit, even alone and after retries,
 * becomes HOME_UNWATCHED for the household, raised (or attached to the open one) at the time the service
 * learned of it. `reason` is an error code, never data of the household.
 */
export function unwatchedTrigger(
  householdId: string,
  item: Unprocessed,
  reason: string,
  zone: string,
): Trigger {
  const at = item.kind === 'event' ? item.logged.receivedAt : item.until;
  const hhmm = hhmmAt(at, zone);
  const what =
    item.kind === 'event'
      ? {
          en: `a ${item.logged.event.type} event from device ${item.logged.deviceId}`,
          zh: `设备 ${item.logged.deviceId} 的${EVENT_ZH[item.logged.event.type] ?? item.logged.event.type}事件`,
        }
      : { en: 'its silence deadlines', zh: '无活动计时' };
  return {
    rule: 'HOME_UNWATCHED',
    householdId,
    deviceId: item.kind === 'event' ? item.logged.deviceId : null,
    at,
    evidence: {
      seq: item.kind === 'event' ? item.logged.seq : null,
      deviceId: item.kind === 'event' ? item.logged.deviceId : null,
      type: item.kind === 'event' ? item.logged.event.type : 'deadline',
      at,
      summary: `${what.en} could not be processed (${reason})`,
    },
    explanation: {
      en: `this home is not being watched: at ${hhmm} the rules could not process ${what.en} (${reason}), so alerts of this home may be missing; phone the resident now and have the service checked`,
      zh: `此户当前未被看护：${hhmm} 规则无法处理${what.zh}（${reason}），该户的告警可能缺失；请立即电话联系老人，并通知技术人员检修`,
    },
  };
}

const EVENT_ZH: Record<string, string> = EVENT_LABELS.zh;
