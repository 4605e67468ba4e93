/**
 * Watches shift edges on the injected clock (SPEC §4, §6):
 * - `warnBefore` each shift starts, grids with nobody on duty for it are flagged to the dispatch room;
 * - at each shift start, the incoming shift gets a handover list of the open alerts it inherits (their
 *   assignee is kept: an open alert is never re-routed by a shift change).
 * The questions themselves are pure (routing/roster.ts); this module only times them and publishes.
 */
import type { Clock, Timer } from '../../kernel/clock.ts';
import type { Logger } from '../../kernel/log.ts';
import { instant } from '../../kernel/time.ts';
import { SAFETY_SEVERITIES } from '../alerts/model.ts';
import type { Bus, DutyGapReport, HandoverItem, HandoverReport } from '../bus.ts';
import type { Directory } from '../directory.ts';
import type { Store } from '../store/store.ts';
import { dutyFor, unstaffedGrids } from './roster.ts';
import { nextShift, type ShiftInstance, shiftAt } from './shifts.ts';

export type { DutyGapReport, HandoverItem, HandoverReport } from '../bus.ts';

export interface DutyWatchDeps {
  store: Store;
  directory: Directory;
  clock: Clock;
  log: Logger;
  bus: Bus;
  /** How long before a shift starts the unstaffed grids are flagged (ms; default 30 min). */
  warnBefore: number;
}

export class DutyWatch {
  private timer: Timer | undefined;
  private stopped = true;
  private lastGap: DutyGapReport | null = null;
  private lastHandover: HandoverReport | null = null;

  constructor(private readonly deps: DutyWatchDeps) {}

  start(): void {
    this.stopped = false;
    const now = this.deps.clock.now();
    const next = nextShift(now, this.deps.directory.zone, this.deps.directory.shifts);
    // Started inside the warning window (or restarted there): warn at once for the coming shift.
    this.armWarning(next, next.startsAt - this.deps.warnBefore <= now);
  }

  stop(): void {
    this.stopped = true;
    this.timer?.cancel();
    this.timer = undefined;
  }

  /** The latest warning published (null before the first). */
  get lastWarning(): DutyGapReport | null {
    return this.lastGap;
  }

  get lastHandoverReport(): HandoverReport | null {
    return this.lastHandover;
  }

  /** Grids with nobody on duty in the shift in force (`now`) or the next one (`upcoming`). */
  async gaps(phase: 'now' | 'upcoming'): Promise<DutyGapReport> {
    const now = this.deps.clock.now();
    const { zone, shifts } = this.deps.directory;
    const shift = phase === 'now' ? shiftAt(now, zone, shifts) : nextShift(now, zone, shifts);
    return this.report(shift, phase, now);
  }

  /**
   * The handover list for the shift in force: open safety alerts raised before it started, with their kept
   * assignee. `gridIds` narrows it (a responder sees their own grids).
   */
  async handover(gridIds: string[] | null = null): Promise<HandoverReport> {
    const now = this.deps.clock.now();
    const shift = shiftAt(now, this.deps.directory.zone, this.deps.directory.shifts);
    return this.handoverFor(shift, now, gridIds);
  }

  private async report(shift: ShiftInstance, phase: 'now' | 'upcoming', now: number): Promise<DutyGapReport> {
    const [grids, values] = await Promise.all([
      this.deps.store.listGrids(),
      this.deps.directory.rosterValues(),
    ]);
    const empty = new Set(
      unstaffedGrids(
        grids.map((g) => g.id),
        shift,
        values.roster,
        values.overrides,
      ),
    );
    return {
      phase,
      shift: shift.shift,
      date: shift.date,
      startsAt: shift.startsAt,
      endsAt: shift.endsAt,
      grids: grids.filter((g) => empty.has(g.id)).map((g) => ({ gridId: g.id, gridName: g.name })),
      at: now,
    };
  }

  private async handoverFor(
    shift: ShiftInstance,
    now: number,
    gridIds: string[] | null,
  ): Promise<HandoverReport> {
    const [open, values] = await Promise.all([
      // Open safety alerts raised before the shift started (SPEC §6 handover list).
      this.deps.store.listAlerts({
        state: 'open',
        gridIds: gridIds ?? undefined,
        severities: SAFETY_SEVERITIES,
        raisedBefore: shift.startsAt,
        limit: 100_000,
      }),
      this.deps.directory.rosterValues(),
    ]);
    const items = open
      .sort((a, b) => a.raisedAt - b.raisedAt)
      .map(
        (a): HandoverItem => ({
          alertId: a.id,
          gridId: a.gridId,
          householdId: a.householdId,
          rule: a.rule,
          severity: a.severity,
          state: a.state,
          raisedAt: a.raisedAt,
          onSiteDueAt: a.onSiteDueAt,
          slaBreached: a.slaBreached,
          assigneeId: a.assigneeId,
          assigneeOnDuty:
            a.assigneeId !== null &&
            dutyFor(a.gridId, shift, values.roster, values.overrides).includes(a.assigneeId),
        }),
      );
    return { shift: shift.shift, date: shift.date, startsAt: shift.startsAt, items, at: now };
  }

  private armWarning(shift: ShiftInstance, immediately: boolean): void {
    if (this.stopped) return;
    const at = immediately ? this.deps.clock.now() : shift.startsAt - this.deps.warnBefore;
    this.timer = this.deps.clock.at(
      instant(at),
      () =>
        this.warn(shift)
          .catch((e: unknown) => this.deps.log.error({ err: e }, 'duty warning failed'))
          .finally(() => this.armShiftStart(shift)),
      'duty gap warning',
    );
  }

  private armShiftStart(shift: ShiftInstance): void {
    if (this.stopped) return;
    this.timer = this.deps.clock.at(
      instant(shift.startsAt),
      () =>
        this.shiftStarted(shift)
          .catch((e: unknown) => this.deps.log.error({ err: e }, 'shift handover failed'))
          .finally(() => {
            const following = nextShift(shift.startsAt, this.deps.directory.zone, this.deps.directory.shifts);
            this.armWarning(following, false);
          }),
      'shift handover',
    );
  }

  private async warn(shift: ShiftInstance): Promise<void> {
    if (this.stopped) return;
    const report = await this.report(shift, 'upcoming', this.deps.clock.now());
    this.lastGap = report;
    if (report.grids.length > 0) {
      this.deps.log.warn(
        { shift: shift.shift, date: shift.date, grids: report.grids.map((g) => g.gridId) },
        'grids with nobody on duty for the coming shift',
      );
      this.deps.bus.emit('dutyGap', report);
    }
  }

  private async shiftStarted(shift: ShiftInstance): Promise<void> {
    if (this.stopped) return;
    const now = this.deps.clock.now();
    const gaps = await this.report(shift, 'now', now);
    if (gaps.grids.length > 0) {
      this.lastGap = gaps;
      this.deps.bus.emit('dutyGap', gaps);
    }
    const handover = await this.handoverFor(shift, now, null);
    this.lastHandover = handover;
    this.deps.log.info(
      { shift: shift.shift, date: shift.date, open: handover.items.length },
      'shift handover',
    );
    this.deps.bus.emit('handover', handover);
  }
}
