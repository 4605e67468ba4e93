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

export class Directory {
  private homes = new Map<string, HomeInfo | null>();
  /** Whether `homes` holds every listed household (warmUp), and the warm-up under way. */
  private warm = false;
  private warming: Promise<void> | null = null;
  /** Counts registry changes, so a warm-up that overlapped one is not taken. */
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
    if (!this.warm) {
      await this.warmUp();
      if (this.homes.has(homeId)) return this.homes.get(homeId)!;
    }
    const household = await this.deps.store.getHousehold(homeId);
    const grid = household ? await this.deps.store.getGrid(household.gridId) : null;
    let info: HomeInfo | null = null;
    if (household && grid) {
      const devices = await this.deps.store.listDevices({ homeId });
      info = {
        household,
        grid,
        devices: new Map(devices.map((d) => [d.id, { kind: d.kind, room: d.room, createdAt: d.createdAt }])),
      };
    }
    this.homes.set(homeId, info);
    return info;
  }

  /**
   * Every active household of an active grid, with its devices, in three queries: the rules ask for each
   * home of the street as its devices connect, and one by one that was three queries per household
   * (300,000 queries for 100,000 households, the dispatcher's main cost while a street's devices
   * connect). Shared by concurrent callers; a household it does not list (retired, or in a retired grid)
   * is still read on its own as before. A change of the registry while it ran makes it count for nothing
   * (the next miss warms up again).
   */
  private warmUp(): Promise<void> {
    this.warming ??= (async () => {
      const generation = this.generation;
      try {
        const [households, grids, devices] = await Promise.all([
          this.deps.store.listHouseholds(),
          this.deps.store.listGrids(),
          this.deps.store.listDevices(),
        ]);
        if (generation !== this.generation) return;
        const gridById = new Map(grids.map((g) => [g.id, g]));
        const byHome = new Map<string, HomeInfo['devices']>();
        for (const d of devices) {
          let m = byHome.get(d.homeId);
          if (!m) {
            m = new Map();
            byHome.set(d.homeId, m);
          }
          m.set(d.id, { kind: d.kind, room: d.room, createdAt: d.createdAt });
        }
        for (const household of households) {
          const grid = gridById.get(household.gridId);
          if (!grid || this.homes.has(household.id)) continue;
          this.homes.set(household.id, { household, grid, devices: byHome.get(household.id) ?? new Map() });
        }
        this.warm = true;
      } finally {
        this.warming = null;
      }
    })();
    return this.warming;
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
    const changed = homeId ? [homeId] : [...this.homes.keys()];
    this.generation++;
    if (homeId) this.homes.delete(homeId);
    else {
      this.homes.clear();
      this.warm = false;
    }
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
