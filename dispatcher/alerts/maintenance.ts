/**
 * The maintenance queue's due time (SPEC §6: technical alerts are due the next working day and never wake
 * anyone at night). Pure: a function of (instant, zone, shift boundaries).
 */
import { DateTime } from 'luxon';
import { parseHhMm, type ShiftBoundaries } from '../routing/shifts.ts';

/** ISO weekdays that are working days (Monday to Friday; public holidays are not modelled). */
export const WORKING_DAYS: readonly number[] = [1, 2, 3, 4, 5];

/**
 * The end of the day shift of the first working day after the local date of `at`: a battery that runs low
 * on Friday evening is due by Monday's day-shift end; one on Tuesday at 03:00 (Monday's night shift) by
 * Wednesday's.
 */
export function maintenanceDue(at: number, zone: string, b: ShiftBoundaries): number {
  let day = DateTime.fromMillis(at, { zone }).startOf('day').plus({ days: 1 });
  while (!WORKING_DAYS.includes(day.weekday)) day = day.plus({ days: 1 });
  const { hour, minute } = parseHhMm(b.nightStart);
  return day.set({ hour, minute, second: 0, millisecond: 0 }).toMillis();
}
