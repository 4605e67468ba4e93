/**
 * Runs the rules over the durable event log. It pulls accepted events after its stored cursor, evaluates
 * them, and commits the raised and changed alerts together with the new cursor and the homes' rule state
 * in one transaction: after a crash it resumes from the cursor and never raises an alert twice (SPEC §9).
 *
 * Timers on silence (SPEC §5: inactivity, no morning activity, bathroom dwell, door left open, night exit,
 * device silent). The deadlines are facts in each home's state, which is committed with the cursor, so
 * they survive a restart by construction; in memory there is only a cache (`deadlines`, one per home) and
 * one clock timer at the earliest of them, re-armed at start and after every commit.
 *
 * Determinism vs. live timers. The engine fires a home's deadlines in event time: before it applies an
 * event it fires every deadline at or before that event's `ts`, each at its own instant. The live timer
 * only covers the case where no later event comes: when the injected clock reaches a deadline, the
 * pipeline first drains the log (so every event already recorded is applied first, in log order), then
 * fires the due deadlines at their own instants (never at the timer's wall time) and commits that like a
 * page of events (cursor unchanged). Either path produces the same trigger with the same instant and the
 * same text, and the committed state remembers that it fired, so it never fires twice. Replaying the same
 * log from the same state therefore raises the same alerts. An event that reaches the log *after* the
 * clock passed a deadline it would have cancelled (a device that buffered messages while its link was
 * down) does not cancel it, live or in a replay: the engine fires every deadline up to the event's receive
 * time (stored in the log) before applying it, as the timer did live. Raising on time is the product's
 * promise; holding every alert back for late data would make every silence alert late. The late event
 * then takes its true place in the home's history (event time), so it never invents a later state.
 */

import type { LoggedEvent } from '../../gateway/ports.ts';
import type { Clock, Timer } from '../../kernel/clock.ts';
import { newId } from '../../kernel/ids.ts';
import type { Logger } from '../../kernel/log.ts';
import { instant, ms } from '../../kernel/time.ts';
import { attach, autoClear, raise } from '../alerts/lifecycle.ts';
import { type Alert, type HistoryEntry, isOpen, isSafety, SEVERITY_OF } from '../alerts/model.ts';
import type { Directory, HomeInfo } from '../directory.ts';
import { FencedError, StaleWriteError, type Store } from '../store/store.ts';
import type { LearnDay } from './baseline.ts';
import {
  advance,
  type Evaluation,
  emptyHomeState,
  evaluate,
  type HomeContext,
  type HomeState,
  nextDeadline,
  restoreStored,
  storedForm,
  type Trigger,
  type Unprocessed,
  unwatchedTrigger,
} from './engine.ts';
import { type RulesConfig, resolveSettings } from './settings.ts';

export const RULES_CURSOR = 'rules';
/** A write the store refused (a stale alert version, a lease moved on): nothing of it was written. */
const refused = (e: unknown): boolean => e instanceof StaleWriteError || e instanceof FencedError;
/** Stored home states read per query at a start (a bound on the memory the reading takes). */
const STATES_PAGE = 5_000;
const PAGE = 1000;
/**
 * Evaluations of a page between two turns of the event loop (RULE-16: the urgent lane is let in). On a
 * loaded machine one evaluation is up to half a millisecond of wall time: ten keep a turn to a few.
 */
const YIELD_EVERY = 10;
/** A turn of the event loop for whatever waits (RULE-16: the urgent lane's answers and notices). */
const turn = () => new Promise<void>((r) => setImmediate(r));

export interface PipelineDeps {
  store: Store;
  directory: Directory;
  clock: Clock;
  log: Logger;
  /** The deployment's threshold overrides (config `RULES`); households override these in turn. */
  rules?: RulesConfig;
  /** Called after each commit with the alerts raised and changed, as stored. */
  onCommitted: (raised: Alert[], updated: Alert[], actions: Map<string, string>) => void;
  /**
   * Called after each commit with the events just processed of the homes this pipeline watches (e.g. a door
   * opening suggests arrival); the events of homes it does not know pass by.
   */
  onEvents?: (events: LoggedEvent[]) => void;
  /**
   * RULE-16: the escalation steps already due at a new alert's raise, to save with it (the alert service's
   * `stepsAtRaise`); `send` tells the people the steps notify, once the alert is committed.
   */
  stepsAtRaise?: (
    raised: Alert,
  ) => Promise<{ alert: Alert; history: HistoryEntry[]; send: (saved: Alert) => void } | null>;
  /**
   * Log positions the stored cursor may fall behind while the pages read hold nothing for this pipeline
   * (CLU-03: a community's pipeline reads the whole shared log, and most of it is other communities'
   * events). Such a page then costs no transaction; the cursor is written with the next page that has
   * work, or once it lags this far. Reading those events again after a restart finds nothing to do either.
   * Unset: every page is committed.
   */
  cursorLag?: number;
}

/**
 * One unit of rules work: a logged event, a home whose silence deadlines are due, or one of those that could
 * not be committed, passed over with HOME_UNWATCHED raised for its household.
 */
type Work = Unprocessed | { kind: 'unwatched'; item: Unprocessed; reason: string };

/** Attempts of one item alone before it is passed over (a person's change races it; a busy database). */
const ITEM_ATTEMPTS = 5;
/** A failed page of the rules (the store refused even HOME_UNWATCHED) is tried again after this long. */
export const RULES_RETRY_MS = 5_000;

export class RulesPipeline {
  private states = new Map<string, HomeState>();
  /** Cache of each home's earliest deadline (the truth is the committed home state). */
  private deadlines = new Map<string, number>();
  /**
   * The earliest of `deadlines`, kept as they change (undefined: to be worked out again, after the earliest
   * one moved). A page's end asks for it, and the silences due are looked for only when it is due: a scan of
   * every home's deadline at every page was O(homes), 100,000 entries for a street's dispatcher.
   */
  private earliest: number | null | undefined = null;
  private contexts = new WeakMap<HomeInfo, HomeContext>();
  private timer: { timer: Timer; at: number } | null = null;
  private cursor = 0;
  /** The cursor as last stored (behind `cursor` while pages with nothing to do are not committed). */
  private storedCursor = 0;
  private running: Promise<void> | null = null;
  private again = false;
  private stopped = true;
  processed = 0;
  /** Items set aside because they could not be committed even alone (should stay 0; watched in metrics). */
  skipped = 0;
  /** Events whose evaluation threw (a bug): logged with ids, never stopping other homes. */
  evaluationErrors = 0;
  /** HOME_UNWATCHED raised or attached: a home's event or deadline passed over, the dispatch room told. */
  unwatched = 0;
  /** Turns that failed as a whole (the store refused even HOME_UNWATCHED) and are tried again later. */
  stalls = 0;
  /**
   * CLU-03: commits refused because the lease this pipeline writes under is not current (the fence failed:
   * another instance took the community, or the lease expired before it was renewed). Nothing was written
   * and nothing is passed over: the lease's holder goes on from the stored cursor (this pipeline, if the
   * same lease is renewed, on its next turn).
   */
  fenced = 0;
  /** Whether the current run of fenced commits was logged (once per run; a commit that passes ends it). */
  private fencedSaid = false;
  /** Alerts the urgent lane raised ahead of the ordered pass (RULE-16). */
  urgentRaised = 0;
  /**
   * Pages whose commit was refused as stale (an alert changed meanwhile, or raised by the urgent lane: RULE-16)
   * and that were evaluated again: work done twice.
   */
  evaluatedAgain = 0;
  /** The events the lane raised an alert from lately (a notification delivered twice raises once). */
  private urgentSeen = new Set<string>();
  private retry: Timer | null = null;
  /** DATA-08: the homes' lists of learned days as the store holds them (storedForm writes the others). */
  private learnedWritten = new WeakSet<LearnDay[]>();

  constructor(private readonly deps: PipelineDeps) {}

  async start(): Promise<void> {
    this.stopped = false;
    this.cursor = await this.deps.store.getCursor(RULES_CURSOR);
    this.storedCursor = this.cursor;
    // A page of stored states at a time, and only the homes this pipeline watches are kept (CLU-03: a
    // community's pipeline, its own homes): each instance's memory holds its communities' homes once, not
    // every home of the database once per community it works for.
    for (let after: string | null = null; ; ) {
      const page = await this.deps.store.loadHomeStates({ after, limit: STATES_PAGE });
      await this.deps.directory.prefetch(page.keys());
      for (const [home, s] of page) {
        after = home;
        const info = await this.deps.directory.home(home);
        if (!info) continue;
        const state = restoreStored(s, this.learnedWritten);
        this.states.set(home, state);
        // Re-arm from the stored facts (SPEC §9: a restart resumes every deadline).
        this.noteDeadline(home, state, this.context(info));
      }
      if (page.size < STATES_PAGE) break;
    }
    this.wake();
    await this.idle();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.timer?.timer.cancel();
    this.timer = null;
    this.retry?.cancel();
    this.retry = null;
    await this.idle();
    await Promise.all(this.urgentRunning);
  }

  /** New events are in the log, or a deadline is due: process (coalesces concurrent wake-ups). */
  wake(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.drain()
      .catch((e: unknown) => {
        if (e instanceof FencedError) this.lostLease();
        else {
          // The store refused even the record that a home is not watched: nothing was passed over, and the
          // same items are tried again on the next event or after RULES_RETRY_MS, whichever comes first.
          this.stalls++;
          this.deps.log.error({ err: e }, 'rules pipeline failed; retrying');
        }
        this.retry?.cancel();
        this.retry = this.deps.clock.after(
          ms(RULES_RETRY_MS),
          () => {
            this.retry = null;
            this.wake();
          },
          'rules retry',
        );
      })
      .finally(() => {
        this.running = null;
        if (this.again) {
          this.again = false;
          this.wake();
        } else this.arm();
      });
  }

  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  /**
   * CLU-03: a commit of this pipeline was fenced (see `fenced`). Not a failure of the rules: said once per
   * run of refusals, as what it is.
   */
  private lostLease(): void {
    this.fenced++;
    if (this.fencedSaid) return;
    this.fencedSaid = true;
    this.deps.log.warn(
      "rules could not write: this instance's lease on the community is not current; nothing was passed over, and the lease's holder goes on from the stored cursor",
    );
  }

  get position(): number {
    return this.cursor;
  }

  /** Homes whose rules state this pipeline holds (its homes that have one: CLU-03), for /metrics. */
  get homesHeld(): number {
    return this.states.size;
  }

  /** The rule state of one home as committed (for the baseline view and tests). */
  homeState(homeId: string): HomeState | null {
    return this.states.get(homeId) ?? null;
  }

  /** The earliest pending silence deadline across all homes, or null. */
  get nextDueAt(): number | null {
    if (this.earliest === undefined) {
      let min: number | null = null;
      for (const at of this.deadlines.values()) if (min === null || at < min) min = at;
      this.earliest = min;
    }
    return this.earliest;
  }

  private context(info: HomeInfo): HomeContext {
    let ctx = this.contexts.get(info);
    if (!ctx) {
      ctx = {
        householdId: info.household.id,
        zone: this.deps.directory.zone,
        devices: info.devices,
        settings: resolveSettings(info.household, this.deps.rules),
      };
      this.contexts.set(info, ctx);
    }
    return ctx;
  }

  /**
   * A household changed (away status, routine, thresholds, devices), or any number of them (null): recompute
   * their next deadlines with the new settings at once, rather than at their next events. A deadline that is
   * now past fires on the next turn. Many homes are loaded together (CLU-10), never one round trip each.
   */
  async homeChanged(homeId: string | null): Promise<void> {
    if (this.stopped) return;
    await this.idle();
    const ids = homeId === null ? [...this.states.keys()] : [homeId];
    if (homeId === null) await this.deps.directory.prefetch(ids);
    for (const id of ids) {
      const info = await this.deps.directory.home(id);
      let state = this.states.get(id);
      if (!info) {
        // No longer this pipeline's (retired, or moved to another community): its state is another's now.
        if (state && homeId !== null) this.states.delete(id);
        continue;
      }
      if (!state && homeId !== null) {
        // Newly this pipeline's (moved here from another community): its rules go on from what is stored.
        const stored = await this.deps.store.getHomeState(id);
        if (!stored || this.states.has(id)) continue;
        state = restoreStored(stored, this.learnedWritten);
        this.states.set(id, state);
      }
      if (state) this.noteDeadline(id, state, this.context(info));
    }
    this.arm();
  }

  /** A new alert for trigger `t` of `home`: its responders on duty at `t.at` and, for safety, its policy. */
  private async raiseFor(t: Trigger, home: HomeInfo): Promise<{ alert: Alert; history: HistoryEntry[] }> {
    // ESC-02: a safety alert keeps the community's escalation policy in force now. Read together with the
    // duty: one wait on the fall's path, not two (RULE-16).
    const [duty, policy] = await Promise.all([
      this.deps.directory.duty(home.grid.id, t.at),
      isSafety(SEVERITY_OF[t.rule]) ? this.deps.directory.policy(home.grid.community) : undefined,
    ]);
    return raise(t, {
      id: newId('al', t.at),
      gridId: home.grid.id,
      community: home.grid.community,
      responders: duty.staffIds,
      policy,
    });
  }

  /**
   * RULE-16, the urgent lane: a fall detected or a help button pressed raises its alert as soon as the
   * gateway has committed it, without waiting for the log's pages before it. The ordered pass stays the
   * truth and comes to the same event later: it finds the alert raised from that event (`raisedByUrgentLane`)
   * and leaves it be, while it applies the event to the home's state as always. The lane only ever makes an
   * alert earlier: whatever it cannot do (an alert of the rule already open: the event is evidence, which
   * the ordered pass attaches; a failed write) it leaves to the ordered pass. Two raises of one problem
   * cannot both be written: the database keeps one open alert per household and rule (RULE-11), and a page
   * that raced the lane is evaluated again (StaleWriteError).
   */
  urgent(events: LoggedEvent[]): Promise<void> {
    // Followed until done, so `stop` returns only once no raise of the lane is still on its way (a handover
    // must not leave one sending its notices after the next holder took the community over: CLU-08).
    const run = this.urgentNow(events);
    this.urgentRunning.add(run);
    void run.finally(() => this.urgentRunning.delete(run));
    return run;
  }

  private readonly urgentRunning = new Set<Promise<void>>();

  private async urgentNow(events: LoggedEvent[]): Promise<void> {
    for (const logged of events) {
      if (this.stopped || logged.seq <= this.cursor) continue;
      try {
        const home = await this.deps.directory.home(logged.homeId);
        if (!home) continue;
        const ctx = this.context(home);
        const state = this.states.get(logged.homeId) ?? emptyHomeState();
        const { triggers } = evaluate(state, anchored(logged), ctx);
        for (const t of triggers) {
          if (!URGENT_RULES.has(t.rule) || t.attachOnly || logged.seq <= this.cursor) continue;
          // The ordered pass has not come to the event (cursor), so only the lane itself may have raised it.
          const key = `${logged.deviceId}\u0000${logged.seq}`;
          if (this.urgentSeen.has(key)) continue;
          const r = await this.raiseFor(t, home);
          // The first notice is written with the raise, in one commit (a fall's notice waits for one, not two).
          const first = await this.firstSteps([r.alert]);
          const alert = first.alerts[0]!;
          try {
            // An alert of the rule open for the household refuses the insert (RULE-11): the event is its
            // evidence, which the ordered pass attaches.
            await this.deps.store.saveAlert(alert, [...r.history, ...first.history]);
          } catch (e) {
            if (e instanceof StaleWriteError) continue;
            this.unsure(first.sends, e);
            throw e;
          }
          this.fencedSaid = false;
          this.urgentSeen.add(key);
          if (this.urgentSeen.size > 1000) this.urgentSeen.delete(this.urgentSeen.values().next().value!);
          this.urgentRaised++;
          this.deps.log.info(
            {
              alertId: alert.id,
              rule: t.rule,
              householdId: t.householdId,
              seq: logged.seq,
              at: t.at,
              lane: 'urgent',
            },
            'alert raised',
          );
          this.deps.onCommitted([alert], [], new Map([[alert.id, 'raised']]));
          for (const send of first.sends.values()) send();
        }
      } catch (e) {
        // CLU-03: the community's holder raises it, from its own lane or ordered pass.
        if (e instanceof FencedError) {
          this.lostLease();
          return;
        }
        // The ordered pass raises it (or already did: the one open alert per household and rule).
        this.deps.log.warn(
          { err: (e as Error).message, homeId: logged.homeId, seq: logged.seq },
          'urgent lane left an event to the ordered pass',
        );
      }
    }
  }

  /**
   * Whether trigger `t` of an urgent rule was raised by the urgent lane from the same event: the alert open
   * now (`open`), or one raised at the trigger's instant since closed, has the event as its first evidence.
   */
  private async raisedByUrgentLane(t: Trigger, open: Alert | null): Promise<boolean> {
    const seq = t.evidence.seq;
    if (!URGENT_RULES.has(t.rule) || seq === null) return false;
    const fromEvent = (a: Alert) =>
      a.raisedAt === t.at && a.evidence[0]?.seq === seq && a.evidence[0]?.deviceId === t.evidence.deviceId;
    if (open) return fromEvent(open);
    const recent = await this.deps.store.listAlerts({
      householdId: t.householdId,
      rule: t.rule,
      raisedBefore: t.at + 1,
      limit: 5,
    });
    return recent.some(fromEvent);
  }

  private noteDeadline(homeId: string, state: HomeState, ctx: HomeContext): void {
    this.placeDeadline(homeId, nextDeadline(state, ctx));
  }

  /** The home's next deadline for the live timer (null: none). */
  private placeDeadline(homeId: string, at: number | null): void {
    const was = this.deadlines.get(homeId);
    if (at === null) this.deadlines.delete(homeId);
    else this.deadlines.set(homeId, at);
    if (this.earliest === undefined) return;
    // The earliest moved later or went: worked out again when next asked. Otherwise it only gets earlier.
    if (was !== undefined && was === this.earliest && (at === null || at > was)) this.earliest = undefined;
    else if (at !== null && (this.earliest === null || at < this.earliest)) this.earliest = at;
  }

  /** One clock timer at the earliest deadline; a superseded timer is cancelled. */
  private arm(): void {
    if (this.stopped) return;
    const at = this.nextDueAt;
    if (this.timer && this.timer.at === at) return;
    this.timer?.timer.cancel();
    this.timer = null;
    if (at === null) return;
    const timer = this.deps.clock.at(
      instant(at),
      () => {
        if (this.timer?.timer === timer) this.timer = null;
        this.wake();
      },
      'rules deadline',
    );
    this.timer = { timer, at };
  }

  /**
   * One pass: the log read to its end, then the silences due by then. A page shorter than PAGE is the end
   * of the log as it was read, so the pass ends there and does not read again at once: what was committed
   * since wakes the rules (CLU-02; RULES_BATCH_MS paces it on separate roles). Reading again at once made
   * the pass a loop that ran as often as the CPU let it, a read and a rules commit for every few events,
   * whatever the rate.
   */
  private async drain(): Promise<void> {
    for (;;) {
      if (this.stopped) return;
      const events = await this.deps.store.readEvents(this.cursor, PAGE);
      // The log as of this instant is what was read: silences are fired up to here, not beyond.
      const readAt = this.deps.clock.now();
      if (events.length > 0) {
        await this.processItems(events.map((logged) => ({ kind: 'event', logged })));
        if (this.stopped) return;
        if (events.length >= PAGE) continue;
      }
      // The log is drained: fire the silences that are due by the clock, each at its own instant.
      const due: Unprocessed[] = [];
      const first = this.nextDueAt;
      if (first === null || first > readAt) return;
      for (const [homeId, at] of this.deadlines) {
        if (at <= readAt) due.push({ kind: 'due', homeId, until: readAt });
        if (due.length >= PAGE) break;
      }
      if (due.length === 0) return;
      await this.processItems(due);
    }
  }

  /** A page of items; when it cannot be committed, item by item (`processAlone`). */
  private async processItems(work: Unprocessed[]): Promise<void> {
    try {
      await this.processWithRetry(work);
    } catch (e) {
      if (e instanceof FencedError) throw e;
      // One bad item must not stop the rules for the whole street: go one item at a time and pass over
      // only the item that cannot be committed, with HOME_UNWATCHED for its household (`processAlone`).
      this.deps.log.error({ err: e, items: work.length }, 'rules page failed; retrying item by item');
      for (const w of work) await this.processAlone(w);
    }
  }

  /** A person may change an alert while the rules attach evidence to it: the commit then fails as a
   * stale write and the page is evaluated again against the fresh alert. Alone, an item is retried whatever
   * the failure (a busy or briefly failing database). */
  private async processWithRetry(work: Work[], attempts = 5, anyError = false): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.processPage(work);
        return;
      } catch (e) {
        // CLU-03: fenced is final here (the lease moved on); trying again would only be refused again.
        if (e instanceof FencedError) throw e;
        if (!(anyError || e instanceof StaleWriteError) || attempt >= attempts) throw e;
        if (e instanceof StaleWriteError) this.evaluatedAgain++;
      }
    }
  }

  /**
   * One item alone. A home's events are never skipped silently: an item that still cannot be committed is
   * passed over together with HOME_UNWATCHED for its household in one commit (the dispatch room sees which
   * home is not watched; `/metrics` counts it). If even that commit fails the store itself is failing:
   * the error goes up, nothing is passed over, and the page is tried again later.
   */
  private async processAlone(w: Unprocessed): Promise<void> {
    if (w.kind === 'event' && w.logged.seq <= this.cursor) return;
    try {
      await this.processWithRetry([w], ITEM_ATTEMPTS, true);
      return;
    } catch (e) {
      // CLU-03: not this item's fault; nothing is passed over (the lease's holder processes it).
      if (e instanceof FencedError) throw e;
      const homeId = w.kind === 'event' ? w.logged.homeId : w.homeId;
      const reason = errorCode(e);
      this.deps.log.error(
        { err: e, homeId, seq: w.kind === 'event' ? w.logged.seq : null },
        "rules could not commit a home's work; passed over, the dispatch room is told the home is not watched",
      );
      await this.processWithRetry([{ kind: 'unwatched', item: w, reason }], ITEM_ATTEMPTS, true);
      this.skipped++;
      // The home's committed state still holds the deadline: its next event tries it again.
      if (w.kind === 'due') this.placeDeadline(w.homeId, null);
    }
  }

  private async processPage(work: Work[]): Promise<void> {
    const { store, directory } = this.deps;
    const raised = new Map<string, Alert>();
    const updated = new Map<string, Alert>();
    const open = new Map<string, Alert | null>();
    const history: HistoryEntry[] = [];
    const actions = new Map<string, string>();
    /** The alerts this page raises, logged once the commit has written them. */
    const raisedLog: {
      alertId: string;
      rule: string;
      householdId: string;
      seq: number | null;
      at: number;
    }[] = [];
    const touchedHomes = new Map<string, { state: HomeState; next: number | null }>();
    const events: LoggedEvent[] = [];
    /** The page's events of homes watched here: what `onEvents` is told of. */
    const watched: LoggedEvent[] = [];

    const openAlert = async (householdId: string, rule: string): Promise<Alert | null> => {
      const key = `${householdId}/${rule}`;
      if (!open.has(key)) open.set(key, await store.findOpenAlert(householdId, rule));
      return open.get(key) ?? null;
    };
    const put = (changed: Alert, isNew: boolean) => {
      // One commit is one write of each alert, however often this page changed it (several devices of a
      // home silent at the same instant attach to one DEVICE_OFFLINE alert): the store's optimistic check
      // expects one version step over what it holds, so later changes keep the first change's version.
      const first = raised.get(changed.id) ?? updated.get(changed.id);
      const a = first && first.version !== changed.version ? { ...changed, version: first.version } : changed;
      open.set(`${a.householdId}/${a.rule}`, isOpen(a.state) ? a : null);
      if (isNew || raised.has(a.id)) raised.set(a.id, a);
      else updated.set(a.id, a);
    };

    let last = this.cursor;
    let unwatched = 0;
    let evaluationErrors = 0;
    // CLU-10: the page's homes in a few queries, not three round trips per home seen for the first time.
    await directory.prefetch(
      work.map((w) => {
        const item = w.kind === 'unwatched' ? w.item : w;
        return item.kind === 'event' ? item.logged.homeId : item.homeId;
      }),
    );
    let done = 0;
    for (const w of work) {
      // RULE-16: a page is up to 1,000 evaluations; the urgent lane's notifications and database answers
      // are let in between every ten of them, not held until the page is through (on a busy machine
      // a page's CPU is hundreds of milliseconds of wall time).
      if (++done % YIELD_EVERY === 0) await turn();
      const item = w.kind === 'unwatched' ? w.item : w;
      const homeId = item.kind === 'event' ? item.logged.homeId : item.homeId;
      if (item.kind === 'event') last = item.logged.seq;
      if (w.kind === 'event') events.push(w.logged);
      // Prefetched above: known without a promise for each event, unless an invalidation came between.
      const known = directory.cached(homeId);
      const home = known !== undefined ? known : await directory.home(homeId);
      if (!home) {
        this.placeDeadline(homeId, null);
        continue;
      }
      if (w.kind === 'event') watched.push(w.logged);
      const ctx = this.context(home);
      let result: Pick<Evaluation, 'triggers' | 'clearances'>;
      if (w.kind === 'unwatched') {
        result = { triggers: [unwatchedTrigger(homeId, w.item, w.reason, ctx.zone)], clearances: [] };
      } else {
        // New state stays local until the commit succeeds, so a failed commit can be retried from the same point.
        const state = touchedHomes.get(homeId)?.state ?? this.states.get(homeId) ?? emptyHomeState();
        try {
          const r =
            w.kind === 'event' ? evaluate(state, anchored(w.logged), ctx) : advance(state, w.until, ctx);
          touchedHomes.set(homeId, { state: r.state, next: r.next });
          result = r;
        } catch (e) {
          // A bug on one event must not stop every home's rules, nor pass the home over silently: log it (ids
          // only) and tell the dispatch room that this home is not watched.
          evaluationErrors++;
          this.deps.log.error(
            { err: e, homeId, seq: w.kind === 'event' ? w.logged.seq : null },
            'rules evaluation failed; the dispatch room is told the home is not watched',
          );
          if (w.kind === 'due') this.placeDeadline(homeId, null);
          result = { triggers: [unwatchedTrigger(homeId, w, 'evaluation_error', ctx.zone)], clearances: [] };
        }
      }
      unwatched += result.triggers.filter((t: Trigger) => t.rule === 'HOME_UNWATCHED').length;

      for (const t of result.triggers) {
        const existing = await openAlert(t.householdId, t.rule);
        this.confirmed(existing);
        // RULE-16: the urgent lane raised this alert from this very event already.
        if (await this.raisedByUrgentLane(t, existing)) continue;
        if (existing) {
          const r = attach(existing, t);
          put(r.alert, false);
          history.push(...r.history);
          actions.set(r.alert.id, actions.get(r.alert.id) ?? 'evidence');
        } else if (!t.attachOnly) {
          const r = await this.raiseFor(t, home);
          put(r.alert, true);
          history.push(...r.history);
          actions.set(r.alert.id, 'raised');
          raisedLog.push({
            alertId: r.alert.id,
            rule: t.rule,
            householdId: t.householdId,
            seq: item.kind === 'event' ? item.logged.seq : null,
            at: t.at,
          });
        }
      }
      for (const c of result.clearances) {
        const existing = await openAlert(c.householdId, c.rule);
        if (!existing) continue;
        const r = autoClear(existing, c);
        if (!r.ok) continue;
        put(r.value.alert, false);
        history.push(...r.value.history);
        actions.set(r.value.alert.id, 'auto_clear');
      }
    }

    const first = await this.firstSteps([...raised.values()]);
    history.push(...first.history);
    const raisedList = first.alerts;
    const updatedList = [...updated.values()];
    const nothing =
      touchedHomes.size === 0 && raised.size === 0 && updated.size === 0 && history.length === 0;
    const lag = this.deps.cursorLag;
    if (nothing && lag !== undefined && last - this.storedCursor < lag) {
      this.cursor = last;
      this.processed += events.length;
      if (watched.length > 0) this.deps.onEvents?.(watched);
      return;
    }
    // DATA-08: each home's learned days go with it only when they changed since they were last written.
    const homeStates = [...touchedHomes].map(([homeId, { state }]) => ({
      homeId,
      ...storedForm(state, this.learnedWritten),
    }));
    try {
      await store.commitRules({
        cursor: { name: RULES_CURSOR, seq: last },
        homeStates,
        raised: raisedList,
        updated: updatedList,
        history,
      });
    } catch (e) {
      this.unsure(first.sends, e);
      // DATA-08: a commit refused (a page that raced the urgent lane, a lease moved on) wrote nothing, and
      // the store holds what it held. Any other failure (a commit whose answer was lost, a database that came
      // back from a copy) leaves it unknown: every home's days go with its next commit. Not after a refusal:
      // under load pages race the lane several times a second, and each would make the next pages write
      // every home's days again.
      if (!refused(e)) this.learnedWritten = new WeakSet();
      throw e;
    }
    this.fencedSaid = false;
    for (const h of homeStates) if (h.learned) this.learnedWritten.add(h.learned);
    // Each home's next deadline came with its last evaluation (worked out on that run's state, between
    // turns): after the commit it is only put in place, so a page's end is not one long turn (RULE-16).
    for (const [homeId, { state, next }] of touchedHomes) {
      this.states.set(homeId, state);
      this.placeDeadline(homeId, next);
    }
    this.cursor = last;
    this.storedCursor = last;
    this.processed += events.length;
    this.unwatched += unwatched;
    this.evaluationErrors += evaluationErrors;
    // Only what was written is logged: a page that raced the urgent lane (RULE-16) is refused and evaluated
    // again, and its first decision to raise never happened for the operator.
    for (const entry of raisedLog) this.deps.log.info(entry, 'alert raised');
    this.deps.onCommitted(raisedList, updatedList, actions);
    for (const send of first.sends.values()) send();
    if (watched.length > 0) this.deps.onEvents?.(watched);
  }

  /**
   * RULE-16: new alerts with the escalation steps already due at their raise (the first notice) taken, to be
   * saved in the same commit as the raise; `send` tells the people those steps notify, once committed.
   */
  private async firstSteps(raised: Alert[]): Promise<{
    alerts: Alert[];
    history: HistoryEntry[];
    /** What sends each alert's notices, by alert (kept apart for a commit that failed: `unsure`). */
    sends: Map<string, () => void>;
  }> {
    const alerts: Alert[] = [];
    const history: HistoryEntry[] = [];
    const sends = new Map<string, () => void>();
    for (const a of raised) {
      const first = await this.deps.stepsAtRaise?.(a);
      if (!first) {
        alerts.push(a);
        continue;
      }
      alerts.push(first.alert);
      history.push(...first.history);
      sends.set(a.id, () => first.send(first.alert));
    }
    return { alerts, history, sends };
  }

  /**
   * RULE-16: the first notices of raises whose commit failed (`sends` of firstSteps). A commit can fail
   * without saying whether it was made (the connection lost at the COMMIT): when the alert turns out to be
   * stored (the ordered pass finds it open), its notices are sent then (`confirmed`), or nobody would be
   * told before the ladder's next step. A raise that was not made is raised again under a new id, so an
   * entry left here is never sent; the oldest go past a bound.
   */
  private readonly unconfirmed = new Map<string, () => void>();

  private unsure(sends: Map<string, () => void>, e: unknown): void {
    if (refused(e)) return;
    for (const [id, send] of sends) this.unconfirmed.set(id, send);
    while (this.unconfirmed.size > 1000) this.unconfirmed.delete(this.unconfirmed.keys().next().value!);
  }

  private confirmed(alert: Alert | null): void {
    const send = alert ? this.unconfirmed.get(alert.id) : undefined;
    if (!alert || !send) return;
    this.unconfirmed.delete(alert.id);
    this.deps.log.warn(
      { alertId: alert.id, rule: alert.rule, householdId: alert.householdId },
      'alert raised (its commit went unanswered; found stored): its first notices go now',
    );
    // Handed on as raised now, since nothing was when its commit failed: the screens, the escalation
    // timer of its next step, the metrics. Its notices, unless someone has accepted it meanwhile.
    this.deps.onCommitted([alert], [], new Map([[alert.id, 'raised']]));
    if (alert.acceptedAt === null) send();
  }
}

/** RULE-16: the rules whose alert an urgent event raises at once. */
const URGENT_RULES: ReadonlySet<string> = new Set(['FALL', 'SOS']);

/**
 * An event cannot have happened after the service received it: a device clock running fast by less than
 * SPEC §3's 5 minutes (the gateway replaces anything further ahead, flagged `clock_skew`) would otherwise
 * push the alert's raise, its SLA deadlines and its roster lookup into the future. The receive time (stored
 * in the log, so a replay gives the same answer) stands in for such a `ts`. A `ts` in the past is kept: a
 * late event takes its true place in the home's history (the engine orders facts by event time and
 * judges silences by when it heard them).
 */
export function anchored(logged: LoggedEvent): LoggedEvent {
  const ts = logged.event.ts;
  if (ts <= logged.receivedAt) return logged;
  return { ...logged, ts: logged.receivedAt, event: { ...logged.event, ts: logged.receivedAt } };
}

/** A failure's code for the record and the alert text (never a message that could carry household data). */
function errorCode(e: unknown): string {
  if (e instanceof StaleWriteError) return 'stale_write';
  const code = (e as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && /^[A-Za-z0-9_]{1,64}$/.test(code)) return code;
  return e instanceof Error ? e.name : 'unknown_error';
}
