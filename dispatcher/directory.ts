/**
 * The registry as the running dispatcher reads it: households with their grid and devices, and the roster.
 * A cache over the store, invalidated by the API when an admin changes something.
 */
import type { DeviceKind } from '../gateway/protocol.ts';
import type { Grid, Household } from './registry.ts';
import { type Duty, onDuty, type RosterEntry, type RosterOverride, rosterWeek } from './routing/roster.ts';
import type { ShiftBoundaries } from './routing/shifts.ts';
import type { Store } from './store/store.ts';

export interface HomeInfo {
  household: Household;
  grid: Grid;
  devices: Map<string, { kind: DeviceKind; room: string; createdAt: number }>;
}

export interface DirectoryDeps {
  store: Store;
  zone: string;
  shifts: ShiftBoundaries;
}

/** Homes loaded per round of queries (PostgreSQL's `= ANY($1)`, SQLite's `json_each`). */
const PREFETCH_CHUNK = 1_000;

export class Directory {
  private homes = new Map<string, HomeInfo | null>();
  /** Counts invalidations, so a load that an admin's change overtook is not cached. */
  private generation = 0;
  private roster: Awaited<ReturnType<Store['listRoster']>> | null = null;
  private overrides: Awaited<ReturnType<Store['listOverrides']>> | null = null;

  constructor(private readonly deps: DirectoryDeps) {}

  get zone(): string {
    return this.deps.zone;
  }

  get shifts(): ShiftBoundaries {
    return this.deps.shifts;
  }

  async home(homeId: string): Promise<HomeInfo | null> {
    if (this.homes.has(homeId)) return this.homes.get(homeId)!;
    return (await this.load([homeId])).get(homeId) ?? null;
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
    this.roster ??= await this.deps.store.listRoster();
    this.overrides ??= await this.deps.store.listOverrides();
    // A disabled account is never on duty, whatever the roster says: notifying it reaches nobody.
    // Cached with the roster; a staff change invalidates both (invalidateRoster).
    this.disabled ??= new Set((await this.deps.store.listStaff()).filter((p) => p.disabled).map((p) => p.id));
    const disabled = this.disabled;
    if (disabled.size === 0) return { roster: this.roster, overrides: this.overrides };
    return {
      roster: this.roster.map((e) => ({ ...e, staffIds: e.staffIds.filter((id) => !disabled.has(id)) })),
      overrides: this.overrides.map((o) =>
        o.replacementId && disabled.has(o.replacementId)
          ? { ...o, replacementId: null, kind: 'leave' as const }
          : o,
      ),
    };
  }

  invalidateHome(homeId?: string): void {
    this.generation++;
    const changed = homeId ? [homeId] : [...this.homes.keys()];
    if (homeId) this.homes.delete(homeId);
    else this.homes.clear();
    for (const id of changed) for (const fn of this.homeListeners) fn(id);
  }

  /** Called with a household's id after an admin changed it (routine, thresholds, away status, devices). */
  onHomeChanged(fn: (homeId: string) => void): void {
    this.homeListeners.push(fn);
  }

  private homeListeners: ((homeId: string) => void)[] = [];
  private disabled: Set<string> | null = null;

  invalidateRoster(): void {
    this.disabled = null;
    this.roster = null;
    this.overrides = null;
  }
}
