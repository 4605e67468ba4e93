/** Times in the community's time zone (SPEC §4), never the browser's: a phone set to another zone still reads right. */
import type { Lang } from './i18n.ts';

const cache = new Map<string, Intl.DateTimeFormat>();
function fmt(lang: Lang, zone: string, opts: Intl.DateTimeFormatOptions): Intl.DateTimeFormat {
  const key = `${lang}|${zone}|${JSON.stringify(opts)}`;
  let f = cache.get(key);
  if (!f) {
    f = new Intl.DateTimeFormat(lang === 'zh' ? 'zh-CN' : 'en-GB', {
      timeZone: zone,
      hourCycle: 'h23',
      ...opts,
    });
    cache.set(key, f);
  }
  return f;
}

export const formatTime = (t: number, zone: string, lang: Lang): string =>
  fmt(lang, zone, { hour: '2-digit', minute: '2-digit' }).format(t);

export const formatDateTime = (t: number, zone: string, lang: Lang): string =>
  fmt(lang, zone, { month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit' }).format(t);

export const formatDay = (t: number, zone: string, lang: Lang): string =>
  fmt(lang, zone, { month: 'numeric', day: 'numeric', weekday: 'short' }).format(t);

/** The calendar date (YYYY-MM-DD) of `t` in `zone`. */
export function isoDate(t: number, zone: string): string {
  const parts = fmt('en', zone, { year: 'numeric', month: '2-digit', day: '2-digit' }).formatToParts(t);
  const get = (k: string) => parts.find((p) => p.type === k)?.value ?? '';
  return `${get('year')}-${get('month')}-${get('day')}`;
}

/** Milliseconds past local midnight of `t` in `zone`. */
export function msIntoDay(t: number, zone: string): number {
  const parts = fmt('en', zone, { hour: '2-digit', minute: '2-digit', second: '2-digit' }).formatToParts(t);
  const get = (k: string) => Number(parts.find((p) => p.type === k)?.value ?? 0);
  return ((get('hour') % 24) * 3600 + get('minute') * 60 + get('second')) * 1000 + (t % 1000);
}

export function formatMinutes(ms: number | null): string {
  if (ms === null) return '—';
  const s = Math.round(ms / 1000);
  if (s >= 3600) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

export const percent = (x: number | null): string => (x === null ? '—' : `${Math.round(x * 100)}%`);

export const addressText = (a: { building: string; unit: string; room: string }): string =>
  [a.building, a.unit, a.room].filter(Boolean).join(' ');
