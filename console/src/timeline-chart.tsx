/**
 * The household's last 7 days as one small SVG (SPEC §8): a row per room with the quarter-hours in which
 * motion was seen, a row of door openings, a row of alerts. No chart library: a few hundred rects.
 */
import type { Timeline } from './api.ts';
import { formatDateTime, formatDay, msIntoDay } from './format.ts';
import { type Lang, RULE_NAMES, room, t } from './i18n.ts';

const DAY = 86_400_000;
const BUCKET = 15 * 60_000;
const W = 760;
const LABEL = 90;
const ROW = 22;
const SEV_COLOR: Record<string, string> = {
  critical: '#e5484d',
  high: '#f76b15',
  medium: '#ffc53d',
  technical: '#5b8def',
};

export function TimelineChart({
  data,
  rooms,
  zone,
  lang,
}: {
  data: Timeline;
  rooms: string[];
  zone: string;
  lang: Lang;
}) {
  const span = data.to - data.from;
  const plot = W - LABEL - 8;
  const x = (ts: number) => LABEL + ((ts - data.from) / span) * plot;
  const motionRooms = [
    ...new Set([...rooms, ...data.events.filter((e) => e.type === 'motion' && e.room).map((e) => e.room!)]),
  ];
  const active = new Map<string, Set<number>>();
  for (const e of data.events) {
    if (e.type !== 'motion' || e.state !== 'active' || !e.room) continue;
    const s = active.get(e.room) ?? new Set<number>();
    active.set(e.room, s);
    s.add(Math.floor((e.ts - data.from) / BUCKET));
  }
  const doors = data.events.filter((e) => e.type === 'door' && e.state === 'open');
  const rows = [...motionRooms.map((r) => room(lang, r)), t(lang, 'doorOpen'), t(lang, 'alertsRow')];
  const top = 18;
  const H = top + rows.length * ROW + 4;
  const midnights: number[] = [];
  for (let m = data.from + (DAY - msIntoDay(data.from, zone)); m < data.to; m += DAY) midnights.push(m);
  const bw = Math.max(1.2, (BUCKET / span) * plot);
  return (
    <svg
      class="timeline"
      viewBox={`0 0 ${W} ${H}`}
      role="img"
      aria-label={t(lang, 'activity')}
      data-testid="timeline-chart"
      preserveAspectRatio="xMinYMin meet"
    >
      {rows.map((label, i) => (
        <g key={label}>
          <rect x={LABEL} y={top + i * ROW + 3} width={plot} height={ROW - 6} class="lane" />
          <text x={LABEL - 6} y={top + i * ROW + ROW / 2 + 4} text-anchor="end" class="lane-label">
            {label}
          </text>
        </g>
      ))}
      {midnights.map((m) => (
        <g key={m}>
          <line x1={x(m)} x2={x(m)} y1={top - 4} y2={H} class="midnight" />
          {x(m) < W - 60 && (
            <text x={x(m) + 3} y={12} class="day-label">
              {formatDay(m, zone, lang)}
            </text>
          )}
        </g>
      ))}
      {motionRooms.map((r, i) =>
        [...(active.get(r) ?? [])].map((b) => (
          <rect
            key={`${r}-${b}`}
            x={LABEL + ((b * BUCKET) / span) * plot}
            y={top + i * ROW + 5}
            width={bw}
            height={ROW - 10}
            class="motion"
            data-room={r}
          />
        )),
      )}
      {doors.map((d) => (
        <line
          key={d.seq}
          x1={x(d.ts)}
          x2={x(d.ts)}
          y1={top + motionRooms.length * ROW + 4}
          y2={top + (motionRooms.length + 1) * ROW - 4}
          class="door"
        >
          <title>{formatDateTime(d.ts, zone, lang)}</title>
        </line>
      ))}
      {data.alerts.map((a) => (
        <circle
          key={a.id}
          cx={x(a.raisedAt)}
          cy={top + (motionRooms.length + 1) * ROW + ROW / 2}
          r={5}
          fill={SEV_COLOR[a.severity] ?? '#999'}
          data-rule={a.rule}
        >
          <title>
            {RULE_NAMES[lang][a.rule]} {formatDateTime(a.raisedAt, zone, lang)}
          </title>
        </circle>
      ))}
    </svg>
  );
}
