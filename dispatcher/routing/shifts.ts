/**
 * Shift lookup is a function of (instant, boundaries, time zone): the zone is always explicit, never the
 * host's (STYLE habit 4). Pure: no clock, no I/O.
 */
import { DateTime } from 'luxon';

export type ShiftName = 'day' | 'night';

export interface ShiftBoundaries {
  /** Local time the day shift starts, "HH:MM" (default 08:00). */
  dayStart: string;
  /** Local time the night shift starts, "HH:MM" (default 20:00). */
  nightStart: string;
}

export const DEFAULT_SHIFTS: ShiftBoundaries = { dayStart: '08:00', nightStart: '20:00' };

export interface ShiftInstance {
  shift: ShiftName;
  /** The local calendar date (YYYY-MM-DD) on which this shift started. A night shift belongs to its evening. */
  date: string;
  /** ISO weekday of `date`: 1 = Monday … 7 = Sunday. */
  weekday: number;
  startsAt: number;
  endsAt: number;
}

export function parseHhMm(s: string): { hour: number; minute: number } {
  const m = /^([01]\d|2[0-3]):([0-5]\d)$/.exec(s);
  if (!m) throw new Error(`invalid time of day "${s}", expected HH:MM`);
  return { hour: Number(m[1]), minute: Number(m[2]) };
}

function at(date: DateTime, hhmm: string): DateTime {
  const { hour, minute } = parseHhMm(hhmm);
  return date.set({ hour, minute, second: 0, millisecond: 0 });
}

/** The shift in force at `instant` in `zone`. Boundaries belong to the shift that starts there. */
export function shiftAt(instant: number, zone: string, b: ShiftBoundaries = DEFAULT_SHIFTS): ShiftInstance {
  const local = DateTime.fromMillis(instant, { zone });
  if (!local.isValid) throw new Error(`invalid time zone "${zone}"`);
  const today = local.startOf('day');
  const dayStart = at(today, b.dayStart);
  const nightStart = at(today, b.nightStart);
  let shift: ShiftName;
  let startDate: DateTime;
  if (local >= dayStart && local < nightStart) {
    shift = 'day';
    startDate = today;
  } else if (local >= nightStart) {
    shift = 'night';
    startDate = today;
  } else {
    // Before the day shift starts: still last evening's night shift.
    shift = 'night';
    startDate = today.minus({ days: 1 });
  }
  const startsAt = at(startDate, shift === 'day' ? b.dayStart : b.nightStart);
  const endsAt = shift === 'day' ? at(startDate, b.nightStart) : at(startDate.plus({ days: 1 }), b.dayStart);
  return {
    shift,
    date: startDate.toISODate()!,
    weekday: startDate.weekday,
    startsAt: startsAt.toMillis(),
    endsAt: endsAt.toMillis(),
  };
}

/** The shift that starts next after `instant`. */
export function nextShift(instant: number, zone: string, b: ShiftBoundaries = DEFAULT_SHIFTS): ShiftInstance {
  const current = shiftAt(instant, zone, b);
  return shiftAt(current.endsAt, zone, b);
}
