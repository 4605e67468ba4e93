/**
 * The registry as the running dispatcher reads it: households with their grid and devices, the roster, and
 * each community's escalation policy (ESC-01).
 * A cache over the store, invalidated by the API when an admin changes something, and (CLU-11) when an
 * admin changed something through another dispatcher instance, which announces it (`announce`, carried
 * between processes by cluster/signals.ts).
 */
import type { DeviceKind } from '../gateway/protocol.ts';
import { communityPolicy } from './alerts/policies.ts';
import type { EscalationPolicy } from './alerts/policy.ts';
import type { Grid, Household } from './registry.ts';
import { type Duty, onDuty, type RosterEntry, type RosterOverride, rosterWeek } from './routing/roster.ts';
import type { ShiftBoundaries } from './routing/shifts.ts';
import type { Store } from './store/store.ts';

export interface HomeInfo {
  household: Household;
  grid: Grid;
  devices: Map<string, { kind: DeviceKind; room: string; createdAt: number }>;
}

/**
 * CLU-11: what an admin changed: the roster (with staff), one household (with its devices) or every one, a
 * community's escalation policy, or who may see what (staff rights, a grid's community, a logout: live
 * pages are checked again; nothing this cache holds).
 */
export type RegistryChange =
  | { roster: true }
  | { homeId: string | null }
  | { policy: string }
  | { access: true };

export interface DirectoryDeps {
  store: Store;
  zone: string;
  shifts: ShiftBoundaries;
  /**
   * Tells the other dispatcher instances of a change made here (after it is committed); resolves once the
   * announcement is sent (never rejects: a failure is the announcer's to log).
   */
  announce?: (change: RegistryChange) => Promise<void>;
}

/** Homes loaded per round of queries (PostgreSQL's `= ANY($1)`, SQLite's `json_each`). */
const PREFETCH_CHUNK = 1_000;

export class Directory {
  private homes = new Map<string, HomeInfo | null>();
  /** Counts invalidations, so a load that an admin's change overtook is not cached. */
  private generation = 0;
  private roster: Awaited<ReturnType<Store['listRoster']>> | null = null;
  private overrides: Awaited<ReturnType<Store['listOverrides']>> | null = null;
  /** Counts roster invalidations, so a read that a change overtook is used once but not cached. */
  private rosterGeneration = 0;

  constructor(private readonly deps: DirectoryDeps) {}

  get zone(): string {
    return this.deps.zone;
  }

  get shifts(): ShiftBoundaries {
    return this.deps.shifts;
  }

  async home(homeId: string): Promise<HomeInfo | null> {
    const known = this.cached(homeId);
    if (known !== undefined) return known;
    return (await this.load([homeId])).get(homeId) ?? null;
  }

  /**
   * The home as `home` would answer it, when the answer is already known here (a home of the page just
   * prefetched); undefined when it must be read. Without a promise: the rules look up the home of every
   * event of every page, for each community a process works for.
   */
  cached(homeId: string): HomeInfo | null | undefined {
    return this.homes.get(homeId);
  }

  /**
   * Loads the homes not cached yet in a few queries, however many they are (CLU-10). The rules look up the
   * home of every event they read; one at a time (three round trips each), a page of homes seen for the
   * first time (a dispatcher's start, the connect storm of many devices) took seconds, and a fall read
   * behind them waited as long.
   */
  async prefetch(homeIds: Iterable<string>): Promise<void> {
    const cold = [...new Set(homeIds)].filter((id) => !this.homes.has(id));
    for (let i = 0; i < cold.length; i += PREFETCH_CHUNK) await this.load(cold.slice(i, i + PREFETCH_CHUNK));
  }

  private async load(ids: string[]): Promise<Map<string, HomeInfo | null>> {
    const { store } = this.deps;
    const generation = this.generation;
    const households = await store.getHouseholds(ids);
    const grids = new Map<string, Grid>();
    for (const gridId of new Set(households.map((h) => h.gridId))) {
      const grid = await store.getGrid(gridId);
      if (grid) grids.set(gridId, grid);
    }
    const devices = new Map<string, HomeInfo['devices']>();
    if (households.length > 0)
      for (const d of await store.listDevices({ homeIds: households.map((h) => h.id) })) {
        const of = devices.get(d.homeId) ?? new Map();
        of.set(d.id, { kind: d.kind, room: d.room, createdAt: d.createdAt });
        devices.set(d.homeId, of);
      }
    const loaded = new Map<string, HomeInfo | null>(ids.map((id) => [id, null]));
    for (const household of households) {
      const grid = grids.get(household.gridId);
      if (grid)
        loaded.set(household.id, { household, grid, devices: devices.get(household.id) ?? new Map() });
    }
    // An admin changed something while this was read: it may be stale, so it is not kept.
    if (generation === this.generation) for (const [id, info] of loaded) this.homes.set(id, info);
    return loaded;
  }

  /** Who covers this grid at `at`, in order (first = primary). */
  async duty(gridId: string, at: number): Promise<Duty> {
    const { roster, overrides } = await this.rosterValues();
    return onDuty(gridId, at, this.deps.zone, this.deps.shifts, roster, overrides);
  }

  /** Who covers this household at `at`, in order (SPEC §6); null when the household is unknown. */
  async coverage(householdId: string, at: number): Promise<(Duty & { gridId: string }) | null> {
    const info = await this.home(householdId);
    if (!info) return null;
    return { gridId: info.grid.id, ...(await this.duty(info.grid.id, at)) };
  }

  /**
   * The week grid of a grid around the shift in force at `at`: computed by the same function as `duty`
   * (routing/roster.ts dutyFor) from the same values, so the roster page and routing never disagree.
   */
  async week(gridId: string, at: number): Promise<ReturnType<typeof rosterWeek>> {
    const { roster, overrides } = await this.rosterValues();
    return rosterWeek(gridId, at, this.deps.zone, this.deps.shifts, roster, overrides);
  }

  /** The roster and overrides as values, for pure questions about future shifts. */
  async rosterValues(): Promise<{ roster: RosterEntry[]; overrides: RosterOverride[] }> {
    let roster = this.roster;
    let overrides = this.overrides;
    let disabled = this.disabled;
    if (!roster || !overrides || !disabled) {
      const generation = this.rosterGeneration;
      const [r, o, people] = await Promise.all([
        this.deps.store.listRoster(),
        this.deps.store.listOverrides(),
        this.deps.store.listStaff(),
      ]);
      roster = r;
      overrides = o;
      // A disabled account is never on duty, whatever the roster says: notifying it reaches nobody.
      // Cached with the roster; a staff change invalidates both (invalidateRoster).
      disabled = new Set(people.filter((p) => p.disabled).map((p) => p.id));
      // A change committed while this was read may be missing from it: answered, not kept.
      if (generation === this.rosterGeneration) {
        this.roster = roster;
        this.overrides = overrides;
        this.disabled = disabled;
      }
    }
    if (disabled.size === 0) return { roster, overrides };
    const off = disabled;
    return {
      roster: roster.map((e) => ({ ...e, staffIds: e.staffIds.filter((id) => !off.has(id)) })),
      overrides: overrides.map((o) =>
        o.replacementId && off.has(o.replacementId)
          ? { ...o, replacementId: null, kind: 'leave' as const }
          : o,
      ),
    };
  }

  /**
   * An admin changed a household here (none named: any number of them). Resolves once the other instances
   * are told, so what the admin does next (connect a device just provisioned) reaches them after it: the
   * database hands a listener its notifications in commit order.
   */
  async invalidateHome(homeId?: string): Promise<void> {
    this.dropHome(homeId ?? null);
    await this.deps.announce?.({ homeId: homeId ?? null });
  }

  /** An admin changed the roster or staff here; resolves once the other instances are told. */
  async invalidateRoster(): Promise<void> {
    this.dropRoster();
    await this.deps.announce?.({ roster: true });
  }

  /**
   * ESC-02: the escalation policy a community's alert raised now is to keep. Kept between raises: a fall's
   * alert reads no settings row on its way (RULE-16). An admin's save drops it here and, announced, on
   * every other instance (`invalidatePolicy`, `changedElsewhere`), as the roster is.
   */
  async policy(community: string): Promise<EscalationPolicy> {
    const kept = this.policies.get(community);
    if (kept) return kept;
    const generation = this.policyGeneration;
    const { policy } = await communityPolicy(this.deps.store, community);
    // A save committed while this was read may be missing from it: answered, not kept.
    if (generation === this.policyGeneration) this.policies.set(community, policy);
    return policy;
  }

  /** An admin saved a community's escalation policy here; resolves once the other instances are told. */
  async invalidatePolicy(community: string): Promise<void> {
    this.dropPolicy(community);
    await this.deps.announce?.({ policy: community });
  }

  private readonly policies = new Map<string, EscalationPolicy>();
  private policyGeneration = 0;

  private dropPolicy(community: string | null): void {
    this.policyGeneration++;
    if (community === null) this.policies.clear();
    else this.policies.delete(community);
  }

  /**
   * CLU-11: a change another dispatcher instance announced, or every kind of change at once after this
   * instance may have missed announcements (its connection to them was down).
   */
  changedElsewhere(change: RegistryChange | 'all'): void {
    if (change === 'all' || 'roster' in change) this.dropRoster();
    if (change === 'all') {
      this.dropHome(null);
      this.dropPolicy(null);
    } else if ('homeId' in change) this.dropHome(change.homeId);
    else if ('policy' in change) this.dropPolicy(change.policy);
  }

  /**
   * Called after an admin changed a household (routine, thresholds, away status, devices) with its id, or
   * with null when any number of them changed (an import).
   */
  onHomeChanged(fn: (homeId: string | null) => void): void {
    this.homeListeners.push(fn);
  }

  private homeListeners: ((homeId: string | null) => void)[] = [];
  private disabled: Set<string> | null = null;

  private dropHome(homeId: string | null): void {
    this.generation++;
    if (homeId) this.homes.delete(homeId);
    else this.homes.clear();
    for (const fn of this.homeListeners) fn(homeId);
  }

  private dropRoster(): void {
    this.rosterGeneration++;
    this.disabled = null;
    this.roster = null;
    this.overrides = null;
  }
}
