/**
 * The duty roster (SPEC §4) and the one question routing asks of it: who covers this grid at this instant,
 * in what order? Pure: takes the roster as values.
 */
import { DateTime } from 'luxon';
import { parseHhMm, type ShiftBoundaries, type ShiftInstance, type ShiftName, shiftAt } from './shifts.ts';

/** A weekly rotation line: on `weekdays` (ISO 1–7, empty = every day), `staffIds` cover the grid's shift in order. */
export interface RosterEntry {
  gridId: string;
  shift: ShiftName;
  weekdays: number[];
  staffIds: string[];
}

/**
 * A one-off change for one dated shift (leave, swap, cover). `date` is the local date the shift *starts*
 * on: the night shift running at 01:20 belongs to the evening before (routing/shifts.ts).
 */
export interface RosterOverride {
  id: string;
  gridId: string;
  date: string;
  shift: ShiftName;
  kind: 'leave' | 'cover' | 'swap';
  /** Who is off (leave, swap). */
  staffId: string | null;
  /**
   * Who stands in (cover, swap; optional for leave: the substitute). For a swap, and a leave with a
   * substitute, they take the absent person's place in the order.
   */
  replacementId: string | null;
}

export interface Duty {
  shift: ShiftInstance;
  /** Ordered: first = primary responder. */
  staffIds: string[];
}

export function onDuty(
  gridId: string,
  instant: number,
  zone: string,
  boundaries: ShiftBoundaries,
  roster: readonly RosterEntry[],
  overrides: readonly RosterOverride[],
): Duty {
  const shift = shiftAt(instant, zone, boundaries);
  return { shift, staffIds: dutyFor(gridId, shift, roster, overrides) };
}

/** Who is on duty for one dated shift of a grid, in order: the rotation with that shift's overrides applied. */
export function dutyFor(
  gridId: string,
  shift: ShiftInstance,
  roster: readonly RosterEntry[],
  overrides: readonly RosterOverride[],
): string[] {
  let staff = rotationFor(gridId, shift, roster);
  for (const o of overrides) {
    if (o.gridId !== gridId || o.date !== shift.date || o.shift !== shift.shift) continue;
    const stand = o.replacementId;
    switch (o.kind) {
      case 'leave':
      case 'swap':
        // The one standing in takes the absent person's place in the order (a leave without a substitute
        // just removes them). If the absent person is not on this shift (the rotation changed after the
        // override was entered), the one standing in is still on duty, last: an override never silently
        // drops the person the admin named to stand in.
        if (!stand) staff = staff.filter((s) => s !== o.staffId);
        else if (staff.includes(o.staffId ?? '')) staff = staff.map((s) => (s === o.staffId ? stand : s));
        else staff.push(stand);
        break;
      case 'cover':
        if (stand && !staff.includes(stand)) staff.push(stand);
        break;
    }
    staff = dedupe(staff);
  }
  return staff;
}

/** The weekly rotation of a grid's shift before any override: weekday-specific lines win over every-day lines. */
export function rotationFor(gridId: string, shift: ShiftInstance, roster: readonly RosterEntry[]): string[] {
  const lines = roster.filter(
    (r) =>
      r.gridId === gridId &&
      r.shift === shift.shift &&
      (r.weekdays.length === 0 || r.weekdays.includes(shift.weekday)),
  );
  const specific = lines.filter((l) => l.weekdays.length > 0);
  const chosen = specific.length > 0 ? specific : lines;
  return dedupe(chosen.flatMap((l) => l.staffIds));
}

/** One dated shift of a grid's week as the roster page shows it and routing reads it. */
export interface WeekCell {
  shift: ShiftInstance;
  /** The weekly rotation before overrides. */
  rotation: string[];
  /** Who is on duty, in order: the same answer routing and GET /api/households/{id}/coverage give. */
  staffIds: string[];
  overrides: RosterOverride[];
}

/**
 * The seven days (Monday first) of the week holding the shift in force at `instant`, day and night shift
 * each, computed with `dutyFor` like routing, so the week grid and the coverage answer cannot disagree.
 */
export function rosterWeek(
  gridId: string,
  instant: number,
  zone: string,
  boundaries: ShiftBoundaries,
  roster: readonly RosterEntry[],
  overrides: readonly RosterOverride[],
): { running: ShiftInstance; days: { date: string; weekday: number; day: WeekCell; night: WeekCell }[] } {
  const running = shiftAt(instant, zone, boundaries);
  const monday = DateTime.fromISO(running.date, { zone }).minus({ days: running.weekday - 1 });
  const cell = (date: DateTime, name: ShiftName): WeekCell => {
    const { hour, minute } = parseHhMm(name === 'day' ? boundaries.dayStart : boundaries.nightStart);
    const shift = shiftAt(date.set({ hour, minute }).toMillis(), zone, boundaries);
    return {
      shift,
      rotation: rotationFor(gridId, shift, roster),
      staffIds: dutyFor(gridId, shift, roster, overrides),
      overrides: overrides.filter((o) => o.gridId === gridId && o.date === shift.date && o.shift === name),
    };
  };
  const days = [0, 1, 2, 3, 4, 5, 6].map((i) => {
    const date = monday.plus({ days: i });
    return {
      date: date.toISODate()!,
      weekday: date.weekday,
      day: cell(date, 'day'),
      night: cell(date, 'night'),
    };
  });
  return { running, days };
}

function dedupe(ids: string[]): string[] {
  return [...new Set(ids)];
}

export type { ShiftBoundaries, ShiftName };

/**
 * The one question routing asks (SPEC §6): who covers this household at `instant`, in what order? The
 * household's grid, the shift in force there and then, and that shift's roster with the day's overrides.
 */
export function whoCovers(
  household: { id: string; gridId: string },
  instant: number,
  zone: string,
  boundaries: ShiftBoundaries,
  roster: readonly RosterEntry[],
  overrides: readonly RosterOverride[],
): Duty & { householdId: string; gridId: string } {
  return {
    householdId: household.id,
    gridId: household.gridId,
    ...onDuty(household.gridId, instant, zone, boundaries, roster, overrides),
  };
}

/** SPEC §4: the grids that would have nobody on duty during `shift` (warned before it starts). */
export function unstaffedGrids(
  gridIds: readonly string[],
  shift: ShiftInstance,
  roster: readonly RosterEntry[],
  overrides: readonly RosterOverride[],
): string[] {
  return gridIds.filter((g) => dutyFor(g, shift, roster, overrides).length === 0);
}
