/**
 * Figures over interleaved rounds (A B A B …): the median and the spread, so that a neighbour's load on
 * this shared machine shows as a wide range instead of as one misleading number.
 */

/** Median and spread of one figure over the rounds; NaN where a round has no figure. */
export function spread(xs: (number | null | undefined)[]): { median: number; min: number; max: number } {
  const v = xs.filter((x): x is number => typeof x === 'number' && !Number.isNaN(x)).sort((a, b) => a - b);
  if (v.length === 0) return { median: Number.NaN, min: Number.NaN, max: Number.NaN };
  const mid = Math.floor(v.length / 2);
  const median = v.length % 2 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
  return { median, min: v[0]!, max: v[v.length - 1]! };
}

/** "median (min–max)" with `digits` decimals; the range is left out after a single round. */
export function shown(xs: (number | null | undefined)[], digits = 0): string {
  const { median, min, max } = spread(xs);
  if (Number.isNaN(median)) return '—';
  const f = (n: number) => n.toFixed(digits);
  return xs.length > 1 ? `${f(median)} (${f(min)}–${f(max)})` : f(median);
}
