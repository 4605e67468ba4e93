/**
 * Applies the alert domain to stored alerts: escalation timers (a cache of the deadlines stored with each
 * alert, re-armed at start), people's actions, and notifications. One alert is changed by one writer at a
 * time; a write that lost a race is retried against the fresh alert.
 */
import type { LoggedEvent } from '../../gateway/ports.ts';
import type { Clock, Timer } from '../../kernel/clock.ts';
import { newId } from '../../kernel/ids.ts';
import type { Logger } from '../../kernel/log.ts';
import { err, ok, type Result } from '../../kernel/result.ts';
import { instant, seconds } from '../../kernel/time.ts';
import type { Bus } from '../bus.ts';
import type { Directory } from '../directory.ts';
import type { NotificationPayload, Notifier } from '../notify/notifier.ts';
import { type Fence, FencedError, StaleWriteError, type Store } from '../store/store.ts';
import { reschedule, runDueSteps, type StepOutcome } from './escalation.ts';
import {
  type Action,
  type Actor,
  attach,
  queueMaintenance,
  raise,
  suggestArrival,
  type TransitionError,
  transition,
} from './lifecycle.ts';
import { maintenanceDue } from './maintenance.ts';
import { type Alert, type HistoryEntry, isOpen, isSafety, SAFETY_SEVERITIES } from './model.ts';
import { type PhoneReport, phoneTrigger } from './phone.ts';

export interface AlertServiceDeps {
  store: Store;
  clock: Clock;
  log: Logger;
  bus: Bus;
  notifier: Notifier;
  directory: Directory;
  /** Staff to tell when an SLA is breached (supervisors of the grid's community). */
  supervisorsFor: (alert: Alert) => Promise<string[]>;
  /**
   * CLU-03, separate dispatcher processes: the lease this instance holds on a community, if any. Escalation
   * timers run only for alerts of communities held (`adopt` / `release` follow the leases), and each step is
   * saved only while the lease stands. Absent: one process does everything.
   */
  leaseOf?: (community: string) => Fence | undefined;
}

export type ActError = TransitionError | 'not_found' | 'conflict';

/** What a write computes from the current alert: the alert and history to save, or nothing (with a value). */
type Change<T, S> = { save: { alert: Alert; history: HistoryEntry[] }; carry: T } | { skip: S };
/** How a write ended: saved (after any retries), skipped by the change, no such alert, or lost every race. */
type Written<T, S> =
  | { kind: 'saved'; alert: Alert; value: T }
  | { kind: 'skipped'; value: S }
  | { kind: 'missing' }
  | { kind: 'contended' }
  /** CLU-03: this instance does not hold the alert's community (any more): its holder does the work. */
  | { kind: 'fenced' };

/** How long a graceful handover of a community waits for its notices on their way (CLU-08). */
const HANDOVER_WAIT_MS = 5_000;

/** The serial chain of maintenance-queue writes (not an alert id: alert ids have no `~`). */
const MAINTENANCE_QUEUE = '~maintenance';

export class AlertService {
  private timers = new Map<string, { timer: Timer; step: number; at: number; community: string }>();
  private chains = new Map<string, Promise<unknown>>();
  /** Notices on their way, per community (CLU-08). */
  private sending = new Map<string, Set<Promise<void>>>();
  private stopped = true;

  constructor(private readonly deps: AlertServiceDeps) {}

  async start(): Promise<void> {
    this.stopped = false;
    // Channel health over the last day of recorded attempts (a restart must not hide a failing channel).
    await this.deps.notifier.restore(this.deps.clock.now() - 24 * 3_600_000);
    // Separate dispatchers: the leases decide which communities' alerts this instance takes up (`adopt`).
    if (!this.deps.leaseOf) await this.adopt(null);
  }

  /**
   * Takes up the alerts of a community (null: all), at start or when this instance took its lease (CLU-03):
   * the stored deadline is the truth, so a step that came due meanwhile fires at once and a later one at
   * its own minute.
   */
  async adopt(community: string | null): Promise<void> {
    const mine = (a: Alert) => community === null || a.community === community;
    // The stored deadline is the truth: re-arm every pending step; overdue ones fire at once.
    for (const a of await this.deps.store.listPendingEscalations()) if (mine(a)) this.arm(a);
    // A technical alert raised just before a crash may not have been queued yet.
    // A step is saved before its notices go out: after a crash in between, send what was not attempted.
    // Technical alerts not queued yet, and safety alerts nobody accepted yet (the only ones with notices
    // to resend): one query each.
    for (const a of await this.deps.store.listAlerts({
      state: 'open',
      severities: ['technical'],
      limit: 100_000,
    }))
      if (mine(a) && !a.maintenanceDueAt) await this.queue(a);
    for (const a of await this.deps.store.listAlerts({
      state: 'open',
      severities: SAFETY_SEVERITIES,
      notAccepted: true,
      limit: 100_000,
    }))
      if (mine(a)) await this.resendUnattempted(a);
  }

  /**
   * CLU-03: alerts changed by another instance (a person's action, served by whichever instance the page
   * is connected to): the timers of the communities held here follow their stored deadlines.
   */
  follow(changed: readonly Alert[]): void {
    for (const a of changed) this.arm(a);
  }

  /**
   * CLU-03: the lease of a community was lost: its timers stop here (another instance re-arms them).
   * CLU-08: when it is given up on purpose the lease is released only after this resolves: steps under way
   * are finished (or fenced) and the notices they sent are recorded, so the next holder, which resends the
   * notices of the last step that have no attempt, does not send one twice. Notices still on their way
   * after HANDOVER_WAIT_MS (a webhook retrying) are left to finish; the handover goes on.
   */
  async release(community: string): Promise<void> {
    for (const [id, t] of this.timers)
      if (t.community === community) {
        t.timer.cancel();
        this.timers.delete(id);
      }
    await Promise.all([...this.chains.values()].map((p) => p.catch(() => {})));
    const sending = [...(this.sending.get(community) ?? [])];
    if (sending.length === 0) return;
    let timer: NodeJS.Timeout | undefined;
    // Operational bound on a handover, not domain time: a real timer.
    const late = new Promise<boolean>((r) => {
      timer = setTimeout(() => r(true), HANDOVER_WAIT_MS);
    });
    const timedOut = await Promise.race([Promise.all(sending).then(() => false), late]);
    clearTimeout(timer);
    if (timedOut)
      this.deps.log.warn({ community, notices: sending.length }, 'handover: notices still on their way');
  }

  /**
   * The last notify/escalate step of an alert not yet accepted names who had to be told; anyone without a
   * delivery attempt since that step is told now (SPEC §9: a restart resumes every escalation step).
   */
  private async resendUnattempted(a: Alert): Promise<void> {
    if (!isSafety(a.severity) || a.acceptedAt !== null) return;
    const history = await this.deps.store.alertHistory(a.id);
    const last = [...history].reverse().find((h) => h.action === 'notify' || h.action === 'escalate');
    const to = Array.isArray(last?.data.to) ? (last.data.to as string[]) : [];
    if (!last || to.length === 0) return;
    const attempted = new Set(
      (await this.deps.store.listDeliveries(a.id)).filter((d) => d.at >= last.at).map((d) => d.staffId),
    );
    const missing = to.filter((s) => !attempted.has(s));
    if (missing.length === 0) return;
    this.deps.log.warn(
      { alertId: a.id, count: missing.length },
      'resending notices interrupted by a restart',
    );
    await this.sendNotices(a, missing, String(last.data.step ?? 'notify_primary'));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers.values()) t.timer.cancel();
    this.timers.clear();
    await Promise.all([...this.chains.values()].map((p) => p.catch(() => {})));
  }

  /** Called after the rules committed alerts. */
  onCommitted(raised: Alert[], updated: Alert[], actions: Map<string, string>): void {
    for (const a of [...raised, ...updated]) {
      this.deps.bus.emit('alertChanged', { alert: a, action: actions.get(a.id) ?? 'changed' });
      this.arm(a);
    }
    // SPEC §6: technical alerts go to the maintenance queue, due the next working day; nobody is woken.
    // One at a time (CLU-10): a page of the rules can raise a thousand technical alerts at once (the devices
    // of a stopped gateway), and a thousand concurrent writes held every other query of the database pool
    // behind them, a fall's escalation step with them, for seconds.
    for (const a of raised) {
      if (isSafety(a.severity) || this.stopped) continue;
      void this.serial(MAINTENANCE_QUEUE, () => this.queue(a)).catch((e: unknown) =>
        this.deps.log.error({ err: e, alertId: a.id }, 'cannot queue maintenance'),
      );
    }
  }

  private queue(a: Alert): Promise<Alert | null> {
    const due = maintenanceDue(a.raisedAt, this.deps.directory.zone, this.deps.directory.shifts);
    return this.update(a.id, 'maintenance', (cur) => queueMaintenance(cur, due, this.deps.clock.now()));
  }

  /**
   * Called with the device events the rules just processed. SPEC §6: a door `open` at the household after
   * the responder went `en_route` suggests arrival (a flag and a live event; the responder confirms).
   */
  onDeviceEvents(events: LoggedEvent[]): void {
    if (this.stopped) return;
    const doors = events.filter(
      (e) => e.event.type === 'door' && (e.event as { state?: string }).state === 'open',
    );
    if (doors.length === 0) return;
    void (async () => {
      for (const d of doors) {
        const open = await this.deps.store.listAlerts({
          householdId: d.homeId,
          state: 'en_route',
          limit: 50,
        });
        for (const a of open) {
          const changed = await this.update(a.id, 'arrival_suggested', (cur) =>
            suggestArrival(cur, { at: d.ts, deviceId: d.deviceId, seq: d.seq }, this.deps.clock.now()),
          );
          if (changed) this.deps.bus.emit('arrivalSuggested', { alert: changed });
        }
      }
    })().catch((e: unknown) => this.deps.log.error({ err: e }, 'arrival suggestion failed'));
  }

  /** Open technical alerts, earliest due first (the maintenance queue). */
  async maintenanceQueue(gridIds?: string[]): Promise<Alert[]> {
    const open = await this.deps.store.listAlerts({
      state: 'open',
      gridIds,
      severities: ['technical'],
      limit: 100_000,
    });
    return open.sort(
      (a, b) =>
        (a.maintenanceDueAt ?? Infinity) - (b.maintenanceDueAt ?? Infinity) || a.raisedAt - b.raisedAt,
    );
  }

  /**
   * The one write path of a stored alert: load it, compute the change, save it, retry on a stale write
   * (another writer won the race: compute again against the fresh alert), then emit and re-arm its timer.
   * Serialised per alert. `change` says what to save, or to skip with a value (nothing to do, refused).
   */
  private write<T, S = null>(
    alertId: string,
    action: string,
    change: (current: Alert) => Change<T, S> | Promise<Change<T, S>>,
    /** `first`: the alert as the caller last knew it, tried before reading it (a stale one is refused). */
    options: { fenced?: boolean; first?: Alert | undefined } = {},
  ): Promise<Written<T, S>> {
    return this.serial(alertId, async (): Promise<Written<T, S>> => {
      for (let attempt = 0; attempt < 5; attempt++) {
        const current =
          attempt === 0 && options.first
            ? structuredClone(options.first)
            : await this.deps.store.getAlert(alertId);
        if (!current) return { kind: 'missing' };
        const c = await change(current);
        if (!('save' in c)) return { kind: 'skipped', value: c.skip };
        // CLU-03: a fenced write carries this instance's lease of the community; without one, or once
        // another instance took it (FencedError), the write is not made and its holder does the work.
        let fence: Fence | undefined;
        if (options.fenced && this.deps.leaseOf) {
          fence = this.deps.leaseOf(current.community);
          if (!fence) return { kind: 'fenced' };
        }
        try {
          await this.deps.store.saveAlert(c.save.alert, c.save.history, fence);
        } catch (e) {
          if (e instanceof StaleWriteError) continue;
          if (e instanceof FencedError) {
            this.deps.log.warn({ alertId, community: current.community, action }, 'write fenced: lease lost');
            return { kind: 'fenced' };
          }
          throw e;
        }
        this.deps.bus.emit('alertChanged', { alert: c.save.alert, action });
        this.arm(c.save.alert);
        return { kind: 'saved', alert: c.save.alert, value: c.carry };
      }
      return { kind: 'contended' };
    });
  }

  /** Applies a system change to the stored alert; null when nothing changed. */
  private async update(
    alertId: string,
    action: string,
    change: (a: Alert) => { alert: Alert; history: HistoryEntry[] } | null,
  ): Promise<Alert | null> {
    const w = await this.write<null>(alertId, action, (current) => {
      const r = change(current);
      return r ? { save: r, carry: null } : { skip: null };
    });
    return w.kind === 'saved' ? w.alert : null;
  }

  /**
   * ALERT-03: an incident phoned in is raised through the path the rules' alerts take (routing to the
   * roster in force, the ladder, SLA deadlines stored with it, live updates, notices), marked `phone`. A
   * second call while the household's phoned-in incident is open adds to it (RULE-11). Null: no household.
   */
  async report(r: PhoneReport, actor: Actor): Promise<{ alert: Alert; attached: boolean } | null> {
    return this.serial(`phone:${r.householdId}`, async () => {
      const now = this.deps.clock.now();
      const t = phoneTrigger(r, now);
      const open = await this.deps.store.findOpenAlert(r.householdId, t.rule);
      if (open) {
        const changed = await this.update(open.id, 'evidence', (cur) => attach(cur, t));
        return changed ? { alert: changed, attached: true } : null;
      }
      const home = await this.deps.directory.home(r.householdId);
      if (!home) return null;
      const duty = await this.deps.directory.duty(home.grid.id, now);
      const raised = raise(t, {
        id: newId('al', now),
        gridId: home.grid.id,
        community: home.grid.community,
        responders: duty.staffIds,
        // ESC-02: the community's escalation policy in force now, frozen on the incident.
        policy: await this.deps.directory.policy(home.grid.community),
      });
      const alert: Alert = { ...raised.alert, severity: r.severity, source: 'phone', category: r.category };
      // ALERT-01: who raised it and through which channel; the rules' raise names the rules instead.
      const history = raised.history.map((h) => ({
        ...h,
        actor: actor.id,
        channel: actor.channel,
        data: { ...h.data, source: 'phone', category: r.category, severity: r.severity },
      }));
      await this.deps.store.saveAlert(alert, history);
      this.onCommitted([alert], [], new Map([[alert.id, 'raised']]));
      return { alert, attached: false };
    });
  }

  /** A responder cannot go: the alert passes to the next responder on duty at once (ALERT-02). */
  async decline(alertId: string, reason: string, actor: Actor): Promise<Result<Alert, ActError>> {
    const a = await this.deps.store.getAlert(alertId);
    if (!a) return err('not_found' as const, `no alert ${alertId}`);
    const onDuty = (await this.deps.directory.duty(a.gridId, this.deps.clock.now())).staffIds;
    return this.act(alertId, { type: 'decline', reason, onDuty }, actor);
  }

  async act(alertId: string, action: Action, actor: Actor): Promise<Result<Alert, ActError>> {
    const w = await this.write<Alert, Result<never, TransitionError>>(alertId, action.type, (current) => {
      const r = transition(current, action, actor, this.deps.clock.now());
      if (!r.ok) return { skip: r };
      return { save: { alert: reschedule(r.value.alert), history: r.value.history }, carry: current };
    });
    if (w.kind === 'missing') return err('not_found' as const, `no alert ${alertId}`);
    if (w.kind === 'contended') return err('conflict' as const, 'the alert kept changing; try again');
    if (w.kind === 'skipped') return w.value;
    if (w.kind === 'fenced') return err('conflict' as const, 'the alert is being handed over; try again');
    const next = w.alert;
    const before = w.value;
    if (action.type === 'assign') void this.sendNotices(next, [action.staffId], 'assigned');
    // ALERT-02: passed on at once, not at the next ladder step.
    if (action.type === 'decline' && next.assigneeId && next.assigneeId !== before.assigneeId)
      void this.sendNotices(next, [next.assigneeId], 'passed_on', `passed_on@${next.version}`);
    return ok(next);
  }

  private arm(a: Alert): void {
    const existing = this.timers.get(a.id);
    const notMine = this.deps.leaseOf !== undefined && !this.deps.leaseOf(a.community);
    if (a.nextStepAt === null || this.stopped || notMine) {
      existing?.timer.cancel();
      this.timers.delete(a.id);
      return;
    }
    if (existing && existing.step === a.nextStep && existing.at === a.nextStepAt) return;
    existing?.timer.cancel();
    const step = a.nextStep;
    const at = a.nextStepAt;
    // The step's work is the timer's: a test clock awaits it (SLA-03 at the exact millisecond).
    const timer = this.deps.clock.at(
      instant(at),
      () => {
        const current = this.timers.get(a.id);
        if (current?.timer === timer) this.timers.delete(a.id);
        return this.fire(a.id, step, a).catch((e: unknown) =>
          this.deps.log.error({ err: e, alertId: a.id }, 'escalation step failed'),
        );
      },
      `escalation ${a.id} step ${step}`,
    );
    this.timers.set(a.id, { timer, step, at, community: a.community });
  }

  /**
   * Runs the alert's due step. `armed` is the alert as it was when the timer was set: tried first instead of
   * reading it again (the first step of a fresh alert is due at once, and a fall's notice should not wait
   * for a read); if it is no longer the stored version, the save is refused and the stored one is read.
   */
  private async fire(alertId: string, step: number, armed?: Alert): Promise<void> {
    const w = await this.write(
      alertId,
      'escalation',
      async (current) => {
        const now = this.deps.clock.now();
        const onDuty = (await this.deps.directory.duty(current.gridId, now)).staffIds;
        let supervisors: string[] = [];
        let out = runDueSteps(current, now, step, onDuty, supervisors);
        if (out?.notifySupervisors) {
          // Who will be told of a breach is decided with the step, so the alert says who was told (asked
          // only for a step that tells them: it lists every grid and staff member).
          supervisors = await this.deps.supervisorsFor(current);
          out = runDueSteps(current, now, step, onDuty, supervisors);
        }
        if (!out) {
          this.arm(current); // stale token: the alert moved on; keep the stored deadline armed
          return { skip: null };
        }
        return { save: out, carry: { out, supervisors } };
      },
      // CLU-03: a step is saved only while this instance holds the community's lease.
      { fenced: true, first: armed },
    );
    if (w.kind === 'saved' && w.value) this.sendStepNotices(w.alert, w.value.out, w.value.supervisors);
    if (w.kind !== 'contended') return;
    // The alert kept changing under us: never drop a due step; try again shortly.
    this.deps.log.warn({ alertId, step }, 'escalation step contended; retrying in 1 s');
    this.deps.clock.after(
      seconds(1),
      () =>
        this.fire(alertId, step).catch((e: unknown) =>
          this.deps.log.error({ err: e, alertId }, 'escalation step failed'),
        ),
      `escalation ${alertId} step ${step} retry`,
    );
  }

  /** The notices of the steps just saved with `saved` (never rejects: see sendNotices). */
  private sendStepNotices(saved: Alert, out: StepOutcome, supervisors: string[]): void {
    // A step's repeat is a new notice (ESC-01, NOTIFY-05): its own idempotency key.
    const byNotice = new Map<string, { reason: string; staff: string[] }>();
    for (const n of out.notify) {
      const id = n.round ? `${n.reason}#${n.round}` : n.reason;
      const to = byNotice.get(id) ?? { reason: n.reason, staff: [] };
      byNotice.set(id, { reason: n.reason, staff: [...to.staff, n.staffId] });
    }
    for (const [id, n] of byNotice) void this.sendNotices(saved, n.staff, n.reason, id);
    if (out.notifySupervisors) {
      if (supervisors.length === 0)
        this.deps.log.warn(
          { alertId: saved.id, community: saved.community },
          'SLA breached: no supervisor to tell',
        );
      void this.sendNotices(saved, supervisors, 'sla_breach');
    }
  }

  /**
   * RULE-16: the steps of a new alert that are already due when it is raised (the ladder's first notice),
   * taken before its first write, so that the raise and its first notice are one commit instead of two in a
   * row. Returns the alert and history to insert (still the alert's first version) and what sends the
   * notices once that insert is committed, or null when no step is due yet, or when a due step would tell
   * the supervisors of a breach (an event that arrived late): the escalation timer takes those, as it takes
   * every later step.
   */
  async stepsAtRaise(
    raised: Alert,
  ): Promise<{ alert: Alert; history: HistoryEntry[]; send: (saved: Alert) => void } | null> {
    const now = this.deps.clock.now();
    if (this.stopped || raised.nextStepAt === null || raised.nextStepAt > now) return null;
    const onDuty = (await this.deps.directory.duty(raised.gridId, now)).staffIds;
    const out = runDueSteps(raised, now, raised.nextStep, onDuty);
    if (!out || out.notifySupervisors) return null;
    return {
      alert: { ...out.alert, version: raised.version },
      history: out.history,
      send: (saved) => this.sendStepNotices(saved, out, []),
    };
  }

  /**
   * A dispatcher sends an alert's notice again to these people (NOTIFY-02: after a phone was found
   * switched off, or a channel came back). Each attempt is recorded like any other; a new notice id, so a
   * bridge that dropped repeats does not drop this one.
   */
  async resend(alertId: string, staff: string[]): Promise<Result<Alert, 'not_found' | 'closed'>> {
    const a = await this.deps.store.getAlert(alertId);
    if (!a) return err('not_found' as const, `no alert ${alertId}`);
    if (!isOpen(a.state)) return err('closed' as const, 'the alert is closed: nothing to send');
    await this.sendNotices(a, staff, 'resend', `resend@${this.deps.clock.now()}`);
    return ok(a);
  }

  /** Never rejects: a failure is logged (ids only) and the delivery attempts are recorded by the notifier. */
  private sendNotices(a: Alert, staff: string[], reason: string, noticeId?: string): Promise<void> {
    const sent = this.deliver(a, staff, reason, noticeId).catch((e: unknown) => {
      this.deps.log.error({ err: e, alertId: a.id, reason }, 'sending notices failed');
    });
    // CLU-08: followed per community until recorded (a graceful handover waits for them).
    const mine = this.sending.get(a.community) ?? new Set<Promise<void>>();
    this.sending.set(a.community, mine);
    mine.add(sent);
    void sent.finally(() => {
      mine.delete(sent);
      if (mine.size === 0 && this.sending.get(a.community) === mine) this.sending.delete(a.community);
    });
    return sent;
  }

  private async deliver(a: Alert, staff: string[], reason: string, noticeId?: string): Promise<void> {
    if (staff.length === 0) return;
    const home = await this.deps.directory.home(a.householdId);
    const addr = home
      ? [home.household.address.building, home.household.address.unit, home.household.address.room]
          .filter(Boolean)
          .join('-')
      : '';
    const payload: NotificationPayload = {
      alertId: a.id,
      rule: a.rule,
      severity: a.severity,
      state: a.state,
      householdId: a.householdId,
      gridId: a.gridId,
      address: addr,
      explanation: a.explanation,
      raisedAt: a.raisedAt,
      onSiteDueAt: a.onSiteDueAt,
      nextStepAt: a.nextStepAt,
      reason,
      // A ladder step happens once per alert; an assignment may be repeated, so its version names it.
      noticeId: noticeId ?? (reason === 'assigned' ? `assigned@${a.version}` : reason),
    };
    await this.deps.notifier.notify([...new Set(staff)], payload);
  }

  /** Runs `fn` after every earlier call for the same alert (or MAINTENANCE_QUEUE) finished. */
  private serial<T>(alertId: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.chains.get(alertId) ?? Promise.resolve();
    const next = prev.catch(() => {}).then(fn);
    this.chains.set(alertId, next);
    void next
      .finally(() => {
        if (this.chains.get(alertId) === next) this.chains.delete(alertId);
      })
      .catch(() => {});
    return next;
  }
}
