/**
 * Routine baselines (RULE-14): after 14 days of data a home has a learned profile: the time by
 * which the resident is usually up (first motion after the night window) and the longest quiet period
 * usually seen in each hour of the day. Where the household opted in, the profile sharpens
 * NO_MORNING_ACTIVITY and INACTIVITY ("usually up by 07:10; nothing yet at 08:10").
 *
 * Safety: a baseline only ever makes a rule fire earlier, never later: the household's (or the
 * deployment's) configured threshold is the safe maximum, and a learned threshold is never sharper than
 * a floor (MIN_LEARNED_*), so one unusually regular fortnight cannot make the rule cry wolf.
 *
 * Pure: the engine feeds motion into `learnMotion` and reads the profile with `baselineOf`.
 */
import { localDay, localMinute } from './localtime.ts';
import type { RuleSettings } from './settings.ts';

export const BASELINE_MIN_DAYS = 14;
export const LEARN_DAYS_KEPT = 28;
/** A learned morning deadline is the usual getting-up time plus this margin. */
export const MORNING_MARGIN_MIN = 60;
/** A learned inactivity threshold is the longest usual quiet period times this factor… */
export const QUIET_FACTOR = 1.5;
/** …and never shorter than this. */
export const MIN_LEARNED_INACTIVITY_MIN = 120;

const MIN = 60_000;

/** One complete local day: first motion after the night (local minutes) and the longest quiet per hour. */
export interface LearnDay {
  d: number;
  first: number | null;
  /** Longest quiet period (minutes) that began in each local hour; 0 when none. */
  quiet: number[];
}

export interface Learn {
  /** The local day being accumulated (not yet part of the profile), or null before the first motion. */
  day: number | null;
  first: number | null;
  quiet: number[];
  days: LearnDay[];
}

export const emptyLearn = (): Learn => ({ day: null, first: null, quiet: zeros(), days: [] });

function zeros(): number[] {
  return new Array<number>(24).fill(0);
}

/**
 * Records one motion at `ts`. `prev` is the previous motion when the gap between them was a quiet period
 * at home (not an outing, not a sensor outage); null otherwise.
 */
export function learnMotion(
  learn: Learn,
  prev: number | null,
  ts: number,
  zone: string,
  nightEnd: number,
): Learn {
  const day = localDay(ts, zone);
  let next: Learn = learn;
  if (learn.day !== day) {
    const days =
      learn.day === null
        ? learn.days
        : [...learn.days, { d: learn.day, first: learn.first, quiet: learn.quiet }];
    next = {
      day,
      first: null,
      quiet: zeros(),
      days: days.length > LEARN_DAYS_KEPT ? days.slice(-LEARN_DAYS_KEPT) : days,
    };
  }
  const minute = localMinute(ts, zone);
  if (next.first === null && minute >= nightEnd) next = { ...next, first: minute };
  if (prev !== null && ts > prev) {
    const gap = Math.round((ts - prev) / MIN);
    const hour = Math.floor(localMinute(prev, zone) / 60);
    if (gap > next.quiet[hour]!) {
      const quiet = next.quiet.slice();
      quiet[hour] = gap;
      next = { ...next, quiet };
    }
  }
  return next;
}

/** What the console shows and the rules use; null until 14 days have been learned. */
export interface Baseline {
  days: number;
  /** Local minutes: on 90 % of days the resident was up by then. */
  usualUpBy: number | null;
  /** Per local hour: the longest quiet period (minutes) that began in that hour over the learned days. */
  longestQuietByHour: number[];
}

/** The profile changes only when a day completes: memoised on the (immutable) list of learned days. */
const memo = new WeakMap<LearnDay[], Baseline | null>();

export function baselineOf(learn: Learn | undefined): Baseline | null {
  if (!learn) return null;
  let b = memo.get(learn.days);
  if (b === undefined) {
    b = computeBaseline(learn);
    memo.set(learn.days, b);
  }
  return b;
}

function computeBaseline(learn: Learn): Baseline | null {
  if (learn.days.length < BASELINE_MIN_DAYS) return null;
  const firsts = learn.days
    .map((d) => d.first)
    .filter((f): f is number => f !== null)
    .sort((a, b) => a - b);
  const usualUpBy =
    firsts.length >= BASELINE_MIN_DAYS / 2 ? firsts[Math.ceil(firsts.length * 0.9) - 1]! : null;
  const longestQuietByHour = zeros().map((_, h) => Math.max(0, ...learn.days.map((d) => d.quiet[h] ?? 0)));
  return { days: learn.days.length, usualUpBy, longestQuietByHour };
}

/** The morning deadline in local minutes: the configured one, or earlier where the baseline says so. */
export function morningMinute(s: RuleSettings, b: Baseline | null): { minute: number; learned: boolean } {
  const configured = s.wake + s.morningGraceMs / MIN;
  if (!s.baseline || !b || b.usualUpBy === null) return { minute: configured, learned: false };
  const learned = b.usualUpBy + MORNING_MARGIN_MIN;
  return learned < configured ? { minute: learned, learned: true } : { minute: configured, learned: false };
}

/** The inactivity threshold for a quiet period that began in local `hour`. */
export function inactivityMs(
  s: RuleSettings,
  b: Baseline | null,
  hour: number,
): { ms: number; learned: boolean } {
  if (!s.baseline || !b) return { ms: s.inactivityMs, learned: false };
  const usual = b.longestQuietByHour[hour] ?? 0;
  const learned = Math.max(MIN_LEARNED_INACTIVITY_MIN, Math.ceil((usual * QUIET_FACTOR) / 15) * 15) * MIN;
  return learned < s.inactivityMs ? { ms: learned, learned: true } : { ms: s.inactivityMs, learned: false };
}
