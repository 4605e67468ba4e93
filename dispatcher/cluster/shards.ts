/**
 * CLU-03: the work of the communities this dispatcher instance holds leases on. Each held community has
 * its own rules pipeline over the shared event log — the same RulesPipeline as one process runs, seeing
 * only that community's homes and committing under its own cursor (`rules:{community}`) with the lease as
 * fencing token — and its escalation timers (AlertService.adopt / release). The duty watch of the whole
 * deployment runs where the `DUTY_LEASE` is held. Every instance still serves the API and live updates for
 * every community; only this background work is split.
 */
import type { LoggedEvent } from '../../gateway/ports.ts';
import type { Clock } from '../../kernel/clock.ts';
import type { Logger } from '../../kernel/log.ts';
import type { Alert, HistoryEntry } from '../alerts/model.ts';
import type { AlertService } from '../alerts/service.ts';
import type { Directory, HomeInfo } from '../directory.ts';
import type { DutyWatch } from '../routing/duty-watch.ts';
import { RULES_CURSOR, RulesPipeline } from '../rules/pipeline.ts';
import type { RulesConfig } from '../rules/settings.ts';
import type { Fence, RuleCommit, Store } from '../store/store.ts';
import { SharedLogReader } from './shared-log.ts';

/**
 * How far (log positions) a community's stored cursor may lag while the log holds only other communities'
 * events: at most this many events are read again after a restart or a takeover, and found not to be its.
 */
export const SHARD_CURSOR_LAG = 20_000;

/** The lease of the deployment's duty watch (not a community: no community has this name's `~`). */
export const DUTY_LEASE = '~duty-watch';

export interface ShardsDeps {
  store: Store;
  directory: Directory;
  clock: Clock;
  log: Logger;
  rules?: RulesConfig;
  alerts: AlertService;
  dutyWatch: DutyWatch;
  /** The lease held now on a community (LeaseManager.fence). */
  leaseOf: (community: string) => Fence | undefined;
  onCommitted: (raised: Alert[], updated: Alert[], actions: Map<string, string>) => void;
  onEvents: (events: LoggedEvent[]) => void;
  /**
   * RULE-16: wake-ups closer together than this are taken as one, at the end of the interval (real time:
   * a pace for the database, not domain time). Each gateway commit wakes the rules; one page a few events
   * long each time cost a rules transaction per gateway commit, and with it the CPU a fall's path waits
   * for. Falls and help buttons take the urgent lane; what waits here is evidence, presence and silences.
   */
  batchMs?: number;
}

/**
 * `target` with some methods replaced; every other method runs on `target` itself (its caches and state
 * stay one, whoever calls).
 */
function overlay<T extends object>(target: T, replaced: Partial<T>): T {
  return new Proxy(target, {
    get(t, prop) {
      if (Object.hasOwn(replaced, prop)) return (replaced as Record<PropertyKey, unknown>)[prop];
      const v = Reflect.get(t, prop, t);
      return typeof v === 'function' ? v.bind(t) : v;
    },
  });
}

/** The pipelines' counters that /metrics shows for the process (`CommunityShards.count`). */
const PIPELINE_COUNTS = [
  'skipped',
  'evaluationErrors',
  'unwatched',
  'stalls',
  'fenced',
  'urgentRaised',
  'evaluatedAgain',
] as const;
type PipelineCount = (typeof PIPELINE_COUNTS)[number];

/** A fence no lease ever has: a write after the lease was lost is refused, never unfenced. */
const lostFence = (community: string): Fence => ({ community, holder: '', epoch: -1 });

export class CommunityShards {
  private pipelines = new Map<string, RulesPipeline>();
  /** Every community's pipeline reads the same log: one read serves them all. */
  private readonly log: SharedLogReader;
  private changeSeq: number | null = null;
  private following: Promise<void> | null = null;
  /**
   * The counts of the pipelines stopped here, so that the process's counters never go back when a
   * community is handed over (a passed-over home, `skipped`, must stay on /metrics after its pipeline went).
   */
  private readonly retired: Record<PipelineCount, number> = {
    skipped: 0,
    evaluationErrors: 0,
    unwatched: 0,
    stalls: 0,
    fenced: 0,
    urgentRaised: 0,
    evaluatedAgain: 0,
  };

  constructor(private readonly deps: ShardsDeps) {
    this.log = new SharedLogReader((after, limit) => deps.store.readEvents(after, limit));
  }

  /** The names to hold leases on: every community with a grid, and the duty watch. */
  async leaseNames(): Promise<string[]> {
    const communities = new Set((await this.deps.store.listGrids()).map((g) => g.community));
    return [...[...communities].sort(), DUTY_LEASE];
  }

  async acquired(fence: Fence): Promise<void> {
    const community = fence.community;
    if (community === DUTY_LEASE) {
      this.deps.dutyWatch.start();
      return;
    }
    // Out of the map before it is stopped, as in `lost`: its counts go to `retired` once, not both ways.
    const old = this.pipelines.get(community);
    this.pipelines.delete(community);
    await this.retire(old);
    const { store, directory, leaseOf } = this.deps;
    const cursor = `${RULES_CURSOR}:${community}`;
    // CLU-03: this pipeline writes under the epoch it was started for, never a later one: a lease taken
    // again under a new epoch (lost, then retaken) gets a pipeline of its own, and until this one is
    // stopped its commits are refused rather than written with its older states and cursor.
    const ownFence = () => {
      const now = leaseOf(community);
      return now && now.epoch === fence.epoch ? now : lostFence(community);
    };
    // The pipeline sees the shared store with its own cursor and fenced commits…
    const shardStore: Store = overlay<Store>(store, {
      // A community first worked on here continues from where one process (ROLE=all) had got to.
      getCursor: async (name: string) =>
        name === RULES_CURSOR
          ? (await store.getCursor(cursor)) || (await store.getCursor(RULES_CURSOR))
          : store.getCursor(name),
      // Every community's pipeline reads the same log: one read serves them all (readShared).
      readEvents: (after: number, limit: number) => this.log.read(after, limit),
      commitRules: (c: RuleCommit) =>
        store.commitRules({
          ...c,
          cursor: { name: cursor, seq: c.cursor.seq },
          fence: ownFence(),
        }),
      // The urgent lane's raises (RULE-16), fenced like the pages' commits.
      saveAlert: (a: Alert, h: HistoryEntry[]) => store.saveAlert(a, h, ownFence()),
    });
    // …and only this community's homes (the others' events pass by, as events of unknown homes do).
    const mine = (h: HomeInfo | null) => (h && h.grid.community === community ? h : null);
    const shardDirectory = overlay<Directory>(directory, {
      home: async (homeId: string) => mine(await directory.home(homeId)),
      cached: (homeId: string) => {
        const h = directory.cached(homeId);
        return h === undefined ? undefined : mine(h);
      },
    });
    const pipeline = new RulesPipeline({
      store: shardStore,
      directory: shardDirectory,
      clock: this.deps.clock,
      log: this.deps.log.child({ community }),
      rules: this.deps.rules,
      // Most of the shared log is other communities' events: pages of only those write no transaction.
      cursorLag: SHARD_CURSOR_LAG,
      onCommitted: this.deps.onCommitted,
      stepsAtRaise: (a) => this.deps.alerts.stepsAtRaise(a),
      // The pipeline hands on only its own homes' events (those of other communities pass it by).
      onEvents: this.deps.onEvents,
    });
    this.pipelines.set(community, pipeline);
    // The alerts first: `adopt` resends the notices of each open alert's last step that have no delivery
    // recorded, and the rules' catch-up may raise alerts whose first notices are on their way (RULE-16).
    await this.deps.alerts.adopt(community);
    await pipeline.start();
  }

  /** Stops a community's pipeline, keeping its counts (`retired`). */
  private async retire(p: RulesPipeline | undefined): Promise<void> {
    if (!p) return;
    await p.stop();
    for (const k of PIPELINE_COUNTS) this.retired[k] += p[k];
  }

  async lost(community: string): Promise<void> {
    if (community === DUTY_LEASE) {
      this.deps.dutyWatch.stop();
      return;
    }
    // The rules first: a page or an urgent raise committed under the lease sends its first notices (RULE-16)
    // before the alert service lets the community go, which then waits for those notices too (CLU-08), so
    // the next holder finds them recorded and does not send them again.
    const p = this.pipelines.get(community);
    this.pipelines.delete(community);
    await this.retire(p);
    await this.deps.alerts.release(community);
  }

  async stop(): Promise<void> {
    clearTimeout(this.wakeTimer);
    this.wakeTimer = undefined;
    for (const c of [...this.pipelines.keys()]) await this.lost(c);
    this.deps.dutyWatch.stop();
  }

  private wakeTimer: NodeJS.Timeout | undefined;
  private lastWake = Number.NEGATIVE_INFINITY;

  wake(): void {
    const batch = this.deps.batchMs ?? 0;
    const since = performance.now() - this.lastWake;
    if (batch <= 0 || since >= batch) {
      this.wakeNow();
      return;
    }
    this.wakeTimer ??= setTimeout(() => {
      this.wakeTimer = undefined;
      this.wakeNow();
    }, batch - since);
  }

  private wakeNow(): void {
    this.lastWake = performance.now();
    for (const p of this.pipelines.values()) p.wake();
    this.followChanges();
  }

  /** RULE-16: urgent events to the pipeline of their home's community, when it is held here. */
  async urgent(events: LoggedEvent[]): Promise<void> {
    await Promise.all(
      events.map(async (e) => {
        const home = await this.deps.directory.home(e.homeId);
        const p = home ? this.pipelines.get(home.grid.community) : undefined;
        await p?.urgent([e]);
      }),
    );
  }

  get urgentRaised(): number {
    return this.count('urgentRaised');
  }

  get evaluatedAgain(): number {
    return this.count('evaluatedAgain');
  }

  /** Where the alert change feed stands now (before the leases are taken: nothing is missed after). */
  async start(): Promise<void> {
    this.changeSeq = await this.deps.store.currentChangeSeq();
  }

  /**
   * Alerts changed by other instances (accepted, declined and passed on, reassigned through another
   * instance's API) reach the escalation timers here through the alert change feed, within one poll
   * (CLUSTER_POLL_MS) or at the next wake-up.
   */
  private followChanges(): void {
    if (this.following) return;
    this.following = (async () => {
      if (this.changeSeq === null) return;
      for (;;) {
        const changed = await this.deps.store.alertChangesSince(this.changeSeq, 500);
        if (changed.length === 0) return;
        this.changeSeq = changed.at(-1)!.changeSeq;
        this.deps.alerts.follow(changed);
        if (changed.length < 500) return;
      }
    })()
      .catch((e: unknown) => this.deps.log.warn({ err: (e as Error).message }, 'alert change feed: retrying'))
      .finally(() => {
        this.following = null;
      });
  }

  async homeChanged(homeId: string | null): Promise<void> {
    for (const p of this.pipelines.values()) await p.homeChanged(homeId);
  }

  /** Homes whose rules state the pipelines here hold, each home in its own community's pipeline only. */
  get homesHeld(): number {
    let n = 0;
    for (const p of this.pipelines.values()) n += p.homesHeld;
    return n;
  }

  /** A count over the pipelines here and those stopped since this process started. */
  private count(k: PipelineCount): number {
    let n = this.retired[k];
    for (const p of this.pipelines.values()) n += p[k];
    return n;
  }

  /** The lowest position among the pipelines here (how far behind the slowest is), 0 when none. */
  get position(): number {
    const all = [...this.pipelines.values()].map((p) => p.position);
    return all.length ? Math.min(...all) : 0;
  }
  get skipped(): number {
    return this.count('skipped');
  }
  get evaluationErrors(): number {
    return this.count('evaluationErrors');
  }
  get unwatched(): number {
    return this.count('unwatched');
  }
  get stalls(): number {
    return this.count('stalls');
  }
  /** CLU-03: fenced commits, of the pipelines here and of those stopped since this process started. */
  get fenced(): number {
    return this.count('fenced');
  }
  /** Communities worked on here. */
  get communities(): string[] {
    return [...this.pipelines.keys()];
  }
}
