/**
 * One evaluation of one home in progress, and the shape of a rule handler (`kinds/`). A handler reads and
 * changes the run's private copy of the home state and adds triggers and clearances; the engine decides
 * when each handler is asked.
 */
import type { LoggedEvent } from '../../gateway/ports.ts';
import type { DeviceKind } from '../../gateway/protocol.ts';
import type { Evidence, RuleId } from '../alerts/model.ts';
import { type Baseline, baselineOf, morningMinute } from './baseline.ts';
import { heldBack, movedBeforeAlert, type Said } from './explain.ts';
import { hhmmAt, nextLocal } from './localtime.ts';
import { DEAD_BATTERY_PERCENT, DEFAULT_SETTINGS, type RuleSettings } from './settings.ts';
import { copyHomeState, type HomeContext, type HomeState, NEVER_HEARD } from './state.ts';
import type { Clearance, Trigger } from './trigger.ts';

export interface Evaluation {
  state: HomeState;
  triggers: Trigger[];
  clearances: Clearance[];
  /** The earliest instant at which a silence rule of the home is due after this evaluation, or null. */
  next: number | null;
}

/** An event heard more than this after its own time is late: its alert text says when it happened. */
export const LATE_AFTER_MS = 60_000;

/** A silence rule's next due instant, derived from the home's facts. */
export interface Deadline {
  at: number;
  rule: RuleId;
  deviceId?: string;
  /** The episode this deadline belongs to (for `fired`). */
  episode?: number;
  thresholdMs?: number;
  learned?: boolean;
}

/** One device event as the rules see it. */
export interface EventInput {
  logged: LoggedEvent;
  /** Event time (the pipeline never lets it pass the receive time). */
  ts: number;
  /** When the service heard of the event. */
  heard: number;
  device: { kind: DeviceKind; room: string } | undefined;
  /** The device's registered room. */
  room: string;
  /** Heard more than LATE_AFTER_MS after its own time. */
  late: boolean;
  evidence(summary: string): Evidence;
}

/**
 * One rule: its deadline, what fires it and what clears it, side by side (RULE-01..09). Every part is
 * optional; the engine asks the handlers in the registry's order (`kinds/index.ts`).
 */
export interface RuleHandler {
  readonly rule: RuleId;
  /** Offers this rule's next due instants; the earliest of all rules fires first (ties: registry order). */
  deadlines?(run: Run, consider: (d: Deadline) => void): void;
  /** One of this rule's deadlines is reached, at `d.at`. */
  fire?(run: Run, d: Deadline): void;
  /**
   * Every event, before any rule sees it: a sign of life from its device. Returns true when the event was
   * about the device's link only and no other rule is to see it.
   */
  heard?(run: Run, e: EventInput): boolean;
  /** A device event, before the home's shared facts (motion, door) take it in. */
  onEvent?(run: Run, e: EventInput): void;
}

export class Run {
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
    this.s = copyHomeState(state);
    this.set = ctx.settings ?? DEFAULT_SETTINGS;
  }

  /** A time of day in the community's zone (a function the explanations take; made once per run, when asked). */
  get hhmm(): (ts: number) => string {
    this.hhmmOf ??= (ts: number): string => hhmmAt(ts, this.ctx.zone);
    return this.hhmmOf;
  }
  private hhmmOf: ((ts: number) => string) | undefined;

  trigger(rule: RuleId, at: number, deviceId: string | null, evidence: Evidence, explanation: Said): void {
    this.triggers.push({ rule, householdId: this.ctx.householdId, deviceId, at, evidence, explanation });
  }

  /** Evidence for the rule's open alert only (RULE-11); it never raises one nor closes one (RULE-13). */
  attach(rule: RuleId, at: number, deviceId: string, evidence: Evidence): void {
    this.triggers.push({
      rule,
      householdId: this.ctx.householdId,
      deviceId,
      at,
      evidence,
      explanation: { zh: '', en: '' },
      attachOnly: true,
    });
  }

  clear(rule: RuleId, deviceId: string, at: number, evidence: Evidence): void {
    this.clearances.push({ rule, householdId: this.ctx.householdId, deviceId, at, evidence });
  }

  /** The household's away status (hospital, family) suspends the activity rules (SPEC §4). */
  suspended(at: number): boolean {
    return this.set.awayUntil !== null && at < this.set.awayUntil;
  }

  /** Motion sensors that cannot see: offline or a dead battery (RULE-10). */
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
   * An activity rule whose motion sensors are blind raises DEVICE_OFFLINE for the device instead (RULE-10):
   * returns true when it did, and the activity alert must not be raised.
   */
  heldBack(rule: RuleId, at: number, what: Said): boolean {
    const blind = this.blindSensors();
    if (blind.length === 0) return false;
    const id = blind[0]!;
    const f = this.s.devices[id]!;
    const room = this.ctx.devices.get(id)?.room ?? '?';
    const said = heldBack(
      rule,
      what,
      { id, room, offlineSince: f.offline?.since ?? null, battery: f.battery },
      this.hhmm,
    );
    this.trigger(
      'DEVICE_OFFLINE',
      at,
      id,
      { seq: null, deviceId: id, type: 'held_back', at, summary: said.summary },
      said.explanation,
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

  /** Silence is counted from the last motion, or from when the sensors could see again, or the return home. */
  quietAnchor(): number {
    let a = this.s.lastMotionAt ?? Number.NEGATIVE_INFINITY;
    if (this.s.quietFrom !== null && this.s.quietFrom > a) a = this.s.quietFrom;
    const until = this.set.awayUntil;
    if (until !== null && until > a) a = until;
    return a;
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

  doorDevice(): string | null {
    for (const [id, d] of this.ctx.devices) if (d.kind === 'door') return id;
    return null;
  }

  lastMotionEvidence(summary: string): Evidence {
    const s = this.s;
    return { seq: s.lastMotionSeq, deviceId: null, type: 'motion', at: s.lastMotionAt ?? 0, summary };
  }
}

/** Where a motion event happened: a motion sensor's registered room outranks the room it reports. */
export function motionRoom(e: EventInput): string | null {
  const ev = e.logged.event;
  if (ev.type !== 'motion') return null;
  return e.device?.kind === 'motion' ? e.device.room : ev.room;
}

/**
 * Active motion heard late (after LATE_AFTER_MS) that is not older than the last motion: it may fall inside
 * a quiet period a silence alert was already raised for. Returns that last motion's time, or null.
 */
export function lateMotionAfter(run: Run, e: EventInput): number | null {
  const ev = e.logged.event;
  const prev = run.s.lastMotionAt;
  if (ev.type !== 'motion' || ev.state !== 'active' || prev === null || e.ts < prev || !e.late) return null;
  return prev;
}

/** Recorded on the open silence alert: the resident moved before it was raised (RULE-11, RULE-13). */
export function movedBefore(run: Run, rule: RuleId, e: EventInput): void {
  run.attach(
    rule,
    e.heard,
    e.logged.deviceId,
    e.evidence(movedBeforeAlert(motionRoom(e) ?? '?', run.hhmm(e.ts), e.heard - e.ts)),
  );
}
