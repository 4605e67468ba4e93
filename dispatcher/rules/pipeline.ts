/**
 * Runs the rules over the durable event log. It pulls accepted events after its stored cursor, evaluates
 * them, and commits the raised and changed alerts together with the new cursor and the homes' rule state
 * in one transaction: after a crash it resumes from the cursor and never raises an alert twice (SPEC §9).
 */

import type { LoggedEvent } from '../../gateway/ports.ts';
import type { Clock } from '../../kernel/clock.ts';
import { newId } from '../../kernel/ids.ts';
import type { Logger } from '../../kernel/log.ts';
import { attach, autoClear, raise } from '../alerts/lifecycle.ts';
import type { Alert, HistoryEntry } from '../alerts/model.ts';
import type { Directory } from '../directory.ts';
import { StaleWriteError, type Store } from '../store/store.ts';
import { emptyHomeState, evaluate, type HomeState } from './engine.ts';

export const RULES_CURSOR = 'rules';
const PAGE = 1000;

export interface PipelineDeps {
  store: Store;
  directory: Directory;
  clock: Clock;
  log: Logger;
  /** Called after each commit with the alerts raised and changed, as stored. */
  onCommitted: (raised: Alert[], updated: Alert[], actions: Map<string, string>) => void;
  /** Called after each commit with the events just processed (e.g. a door opening suggests arrival). */
  onEvents?: (events: LoggedEvent[]) => void;
}

export class RulesPipeline {
  private states = new Map<string, HomeState>();
  private cursor = 0;
  private running: Promise<void> | null = null;
  private again = false;
  private stopped = true;
  processed = 0;

  constructor(private readonly deps: PipelineDeps) {}

  async start(): Promise<void> {
    this.stopped = false;
    this.cursor = await this.deps.store.getCursor(RULES_CURSOR);
    for (const [home, s] of await this.deps.store.loadHomeStates()) this.states.set(home, s as HomeState);
    this.wake();
    await this.idle();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.idle();
  }

  /** New events are in the log: process them (coalesces concurrent wake-ups). */
  wake(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.drain()
      .catch((e: unknown) =>
        this.deps.log.error({ err: e }, 'rules pipeline failed; will retry on the next event'),
      )
      .finally(() => {
        this.running = null;
        if (this.again) {
          this.again = false;
          this.wake();
        }
      });
  }

  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  get position(): number {
    return this.cursor;
  }

  private async drain(): Promise<void> {
    for (;;) {
      const events = await this.deps.store.readEvents(this.cursor, PAGE);
      if (events.length === 0) return;
      // A person may change an alert while the rules attach evidence to it: the commit then fails as a
      // stale write and the page is evaluated again against the fresh alert.
      for (let attempt = 1; ; attempt++) {
        try {
          await this.processPage(events);
          break;
        } catch (e) {
          if (!(e instanceof StaleWriteError) || attempt >= 5) throw e;
        }
      }
      if (this.stopped) return;
    }
  }

  private async processPage(events: Awaited<ReturnType<Store['readEvents']>>): Promise<void> {
    const { store, directory } = this.deps;
    const raised = new Map<string, Alert>();
    const updated = new Map<string, Alert>();
    const open = new Map<string, Alert | null>();
    const history: HistoryEntry[] = [];
    const actions = new Map<string, string>();
    const touchedHomes = new Map<string, HomeState>();

    const openAlert = async (householdId: string, rule: string): Promise<Alert | null> => {
      const key = `${householdId}/${rule}`;
      if (!open.has(key)) open.set(key, await store.findOpenAlert(householdId, rule));
      return open.get(key) ?? null;
    };
    const put = (a: Alert, isNew: boolean) => {
      open.set(`${a.householdId}/${a.rule}`, a.state === 'resolved' || a.state === 'cancelled' ? null : a);
      if (isNew || raised.has(a.id)) raised.set(a.id, a);
      else updated.set(a.id, a);
    };

    for (const logged of events) {
      const home = await directory.home(logged.homeId);
      if (!home) continue;
      // New state stays local until the commit succeeds, so a failed commit can be retried from the same point.
      const state = touchedHomes.get(logged.homeId) ?? this.states.get(logged.homeId) ?? emptyHomeState();
      const result = evaluate(state, logged, {
        householdId: home.household.id,
        zone: directory.zone,
        devices: home.devices,
      });
      touchedHomes.set(logged.homeId, result.state);

      for (const t of result.triggers) {
        const existing = await openAlert(t.householdId, t.rule);
        if (existing) {
          const r = attach(existing, t);
          put(r.alert, false);
          history.push(...r.history);
          actions.set(r.alert.id, actions.get(r.alert.id) ?? 'evidence');
        } else if (!t.attachOnly) {
          const duty = await directory.duty(home.grid.id, t.at);
          const r = raise(t, {
            id: newId('al', t.at),
            gridId: home.grid.id,
            community: home.grid.community,
            responders: duty.staffIds,
          });
          put(r.alert, true);
          history.push(...r.history);
          actions.set(r.alert.id, 'raised');
          this.deps.log.info(
            { alertId: r.alert.id, rule: t.rule, householdId: t.householdId, seq: logged.seq },
            'alert raised',
          );
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

    const last = events[events.length - 1]!.seq;
    const raisedList = [...raised.values()];
    const updatedList = [...updated.values()];
    await store.commitRules({
      cursor: { name: RULES_CURSOR, seq: last },
      homeStates: [...touchedHomes].map(([homeId, state]) => ({ homeId, state })),
      raised: raisedList,
      updated: updatedList,
      history,
    });
    for (const [homeId, st] of touchedHomes) this.states.set(homeId, st);
    this.cursor = last;
    this.processed += events.length;
    this.deps.onCommitted(raisedList, updatedList, actions);
    this.deps.onEvents?.(events);
  }
}
