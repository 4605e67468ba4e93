/**
 * The duty roster (SPEC §4) and the one question routing asks of it: who covers this grid at this instant,
 * in what order? Pure: takes the roster as values.
 */
import { type ShiftBoundaries, type ShiftInstance, type ShiftName, shiftAt } from './shifts.ts';

/** A weekly rotation line: on `weekdays` (ISO 1–7, empty = every day), `staffIds` cover the grid's shift in order. */
export interface RosterEntry {
  gridId: string;
  shift: ShiftName;
  weekdays: number[];
  staffIds: string[];
}

/** A one-off change for one dated shift (leave, swap, cover). */
export interface RosterOverride {
  id: string;
  gridId: string;
  date: string;
  shift: ShiftName;
  kind: 'leave' | 'cover' | 'swap';
  /** Who is off (leave, swap). */
  staffId: string | null;
  /** Who stands in (cover, swap); for a swap they take the absent person's place in the order. */
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

export function dutyFor(
  gridId: string,
  shift: ShiftInstance,
  roster: readonly RosterEntry[],
  overrides: readonly RosterOverride[],
): string[] {
  const lines = roster.filter(
    (r) =>
      r.gridId === gridId &&
      r.shift === shift.shift &&
      (r.weekdays.length === 0 || r.weekdays.includes(shift.weekday)),
  );
  // Weekday-specific lines win over every-day lines.
  const specific = lines.filter((l) => l.weekdays.length > 0);
  const chosen = specific.length > 0 ? specific : lines;
  let staff = dedupe(chosen.flatMap((l) => l.staffIds));
  for (const o of overrides) {
    if (o.gridId !== gridId || o.date !== shift.date || o.shift !== shift.shift) continue;
    switch (o.kind) {
      case 'leave':
        staff = staff.filter((s) => s !== o.staffId);
        break;
      case 'swap':
        staff = staff.map((s) => (s === o.staffId && o.replacementId ? o.replacementId : s));
        break;
      case 'cover':
        if (o.replacementId && !staff.includes(o.replacementId)) staff.push(o.replacementId);
        break;
    }
  }
  return dedupe(staff);
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
