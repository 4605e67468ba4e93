/**
 * Local time of day in the community's time zone (SPEC §4: night windows and wake times are local times;
 * §5 "Time"). The rules ask "is this instant in the night window?" for every motion event, so the zone's
 * UTC offset is memoised per zone and hour: offsets change only on hour boundaries in every zone the
 * service is meant for, and a memo of a pure function keeps the function pure.
 */
import { IANAZone } from 'luxon';

const MIN = 60_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;
const MEMO_LIMIT = 50_000;

const zones = new Map<string, { zone: IANAZone; offsets: Map<number, number> }>();

/** The zone's offset from UTC at `ts`, in milliseconds. */
export function offsetAt(ts: number, zone: string): number {
  let z = zones.get(zone);
  if (!z) {
    z = { zone: IANAZone.create(zone), offsets: new Map() };
    zones.set(zone, z);
  }
  const hour = Math.floor(ts / HOUR);
  let off = z.offsets.get(hour);
  if (off === undefined) {
    if (z.offsets.size > MEMO_LIMIT) z.offsets.clear();
    off = z.zone.offset(hour * HOUR) * MIN;
    z.offsets.set(hour, off);
  }
  return off;
}

/** Minutes since local midnight (0..1439). */
export function localMinute(ts: number, zone: string): number {
  const local = ts + offsetAt(ts, zone);
  return Math.floor((((local % DAY) + DAY) % DAY) / MIN);
}

/** A local calendar day as an integer (days since 1970-01-01 local). */
export function localDay(ts: number, zone: string): number {
  return Math.floor((ts + offsetAt(ts, zone)) / DAY);
}

/** The instant at which the local clock of `day` shows `minute` (the later one across a DST fold). */
export function instantAt(day: number, minute: number, zone: string): number {
  const wall = day * DAY + minute * MIN;
  let guess = wall - offsetAt(wall, zone);
  guess = wall - offsetAt(guess, zone);
  return guess;
}

/** "HH:MM" → minutes since midnight. */
export function hhmmMinutes(hhmm: string): number {
  const m = /^(\d{2}):(\d{2})$/.exec(hhmm);
  if (!m) throw new Error(`expected HH:MM, got ${JSON.stringify(hhmm)}`);
  return Number(m[1]) * 60 + Number(m[2]);
}

/** Minutes since midnight → "HH:MM". */
export function minutesHhmm(minute: number): string {
  const m = ((Math.round(minute) % 1440) + 1440) % 1440;
  return `${String(Math.floor(m / 60)).padStart(2, '0')}:${String(m % 60).padStart(2, '0')}`;
}

/** "HH:MM" of an instant in the zone. */
export function hhmmAt(ts: number, zone: string): string {
  return minutesHhmm(localMinute(ts, zone));
}

/** A night window [start, end) in local minutes; it may wrap past midnight (22:00–06:00). */
export interface NightWindow {
  start: number;
  end: number;
}

export function inWindow(minute: number, w: NightWindow): boolean {
  if (w.start === w.end) return false;
  return w.start < w.end ? minute >= w.start && minute < w.end : minute >= w.start || minute < w.end;
}

export function isNight(ts: number, w: NightWindow, zone: string): boolean {
  return inWindow(localMinute(ts, zone), w);
}

/** The first instant strictly after `ts` whose local time is `minute`. */
export function nextLocal(ts: number, minute: number, zone: string): number {
  const day = localDay(ts, zone);
  for (let d = day; d <= day + 2; d++) {
    const c = instantAt(d, minute, zone);
    if (c > ts) return c;
  }
  return instantAt(day + 2, minute, zone);
}

/** The last instant at or before `ts` whose local time is `minute`. */
export function previousLocal(ts: number, minute: number, zone: string): number {
  const day = localDay(ts, zone);
  for (let d = day; d >= day - 2; d--) {
    const c = instantAt(d, minute, zone);
    if (c <= ts) return c;
  }
  return instantAt(day - 2, minute, zone);
}
