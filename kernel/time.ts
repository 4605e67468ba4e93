/**
 * Instants and durations are different types (a lesson from matter.js): adding two instants or passing a
 * duration where a deadline is expected is a type error, not a silent SLA bug.
 */
declare const instantBrand: unique symbol;
declare const durationBrand: unique symbol;

/** Milliseconds since the Unix epoch, UTC. */
export type Instant = number & { readonly [instantBrand]: true };
/** A length of time in milliseconds. */
export type Duration = number & { readonly [durationBrand]: true };

export const instant = (epochMs: number): Instant => epochMs as Instant;
export const ms = (n: number): Duration => n as Duration;
export const seconds = (n: number): Duration => (n * 1000) as Duration;
export const minutes = (n: number): Duration => (n * 60_000) as Duration;
export const hours = (n: number): Duration => (n * 3_600_000) as Duration;

export const addTo = (at: Instant, d: Duration): Instant => (at + d) as Instant;
export const between = (from: Instant, to: Instant): Duration => (to - from) as Duration;

export const toIso = (at: Instant): string => new Date(at).toISOString();

/** Units for `formatDuration`: seconds, minutes, hours and the "h + min" join. */
export interface DurationWords {
  s: (n: number) => string;
  min: (n: number) => string;
  h: (n: number) => string;
  hMin: (h: number, mm: string) => string;
}

const EN_WORDS: DurationWords = {
  s: (n) => `${n} s`,
  min: (n) => `${n} min`,
  h: (n) => `${n} h`,
  hMin: (h, mm) => `${h} h ${mm} min`,
};

/** "4 h 05 min", "12 min", "40 s": the way explanations and the console state a duration. */
export function formatDuration(d: number, words: DurationWords = EN_WORDS): string {
  const totalSeconds = Math.max(0, Math.floor(d / 1000));
  if (totalSeconds < 60) return words.s(totalSeconds);
  const totalMinutes = Math.floor(totalSeconds / 60);
  const h = Math.floor(totalMinutes / 60);
  const m = totalMinutes % 60;
  if (h === 0) return words.min(m);
  return m === 0 ? words.h(h) : words.hMin(h, String(m).padStart(2, '0'));
}
