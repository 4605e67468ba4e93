/**
 * The SLA report (SPEC §8) for supervisors and admins: per grid, shift, responder and week, the share
 * accepted within 3 minutes and on site within 15, median and 90th-percentile times, breaches; false-alarm
 * rates per rule and per device; device uptime. Bar charts are plain SVG; the CSV comes from the server.
 */
import { useEffect, useState } from 'preact/hooks';
import type { Grid } from '../../dispatcher/api/types.ts';
import { api, type SessionInfo, type SlaReport, type SlaRow } from './api.ts';
import { formatMinutes, isoDate, percent } from './format.ts';
import { GridSelect } from './grid-select.tsx';
import { type Lang, RULE_NAMES, t } from './i18n.ts';
import { promiseWords } from './ladder-words.ts';

export function ReportsPage({ lang, session }: { lang: Lang; session: SessionInfo }) {
  const zone = session.zone;
  const [from, setFrom] = useState(isoDate(session.now - 27 * 86_400_000, zone));
  const [to, setTo] = useState(isoDate(session.now + 86_400_000, zone));
  const [grid, setGrid] = useState('');
  const [grids, setGrids] = useState<Grid[]>([]);
  const [report, setReport] = useState<SlaReport | null>(null);
  const [error, setError] = useState<string | null>(null);
  const load = () => {
    setError(null);
    api.sla({ from, to, grid }).then(setReport, (e: Error) => setError(e.message));
  };
  useEffect(() => {
    api.grids().then(
      (g) => setGrids(g.grids),
      () => {},
    );
    load();
  }, []);
  const rule = (k: string) => (RULE_NAMES[lang] as Record<string, string>)[k] ?? k;
  return (
    <main class="page reports">
      <form
        class="toolbar"
        onSubmit={(e) => {
          e.preventDefault();
          load();
        }}
      >
        <label>
          {t(lang, 'from')}{' '}
          <input
            type="date"
            name="from"
            value={from}
            onInput={(e) => setFrom((e.target as HTMLInputElement).value)}
          />
        </label>
        <label>
          {t(lang, 'to')}{' '}
          <input
            type="date"
            name="to"
            value={to}
            onInput={(e) => setTo((e.target as HTMLInputElement).value)}
          />
        </label>
        <GridSelect lang={lang} grids={grids} name="grid" value={grid} onChange={setGrid} all />
        <button type="submit" class="primary">
          {t(lang, 'load')}
        </button>
        <a class="button" href={api.slaCsvUrl({ from, to, grid })} download data-testid="csv">
          {t(lang, 'exportCsv')}
        </a>
        <span class="muted small">
          {t(lang, 'timesIn')}: {zone}
        </span>
      </form>
      {error && <p class="error">{error}</p>}
      {report && (
        <>
          <div class="figures">
            <div class="figure">
              <span class="label">{t(lang, 'alertsCount')}</span>
              <b class="value">{report.total.alerts}</b>
            </div>
            <div class="figure">
              <span class="label">{t(lang, 'acceptedIn3')}</span>
              <b class="value" data-testid="total-accepted-share">
                {percent(report.total.acceptedShare)}
              </b>
            </div>
            <div class="figure">
              <span class="label">{t(lang, 'onSiteIn15')}</span>
              <b class="value">{percent(report.total.onSiteShare)}</b>
            </div>
            <div class="figure">
              <span class="label">{t(lang, 'breaches')}</span>
              <b class="value">{report.total.breaches}</b>
            </div>
          </div>
          {/* ESC-03: the promises the figures above were measured against, each alert by its own. */}
          <ul class="muted small" data-testid="report-promises">
            {report.promises.map((x) => (
              <li key={x.key}>
                {promiseWords(x, lang)} · {x.communities.join('、')} · {x.alerts}
              </li>
            ))}
          </ul>
          <div class="report-grid">
            <SlaSection lang={lang} title={t(lang, 'byGrid')} rows={report.byGrid} />
            <SlaSection lang={lang} title={t(lang, 'byWeek')} rows={report.byWeek} />
            <SlaSection
              lang={lang}
              title={t(lang, 'byShift')}
              rows={report.byShift.map((r) => ({ ...r, label: t(lang, r.key as 'day') }))}
            />
            <SlaSection lang={lang} title={t(lang, 'byResponder')} rows={report.byResponder} />
            {/* ALERT-03: sensor alerts and incidents phoned in, apart. */}
            <SlaSection
              lang={lang}
              title={t(lang, 'bySource')}
              rows={(report.bySource ?? []).map((r) => ({
                ...r,
                label: t(lang, r.key === 'phone' ? 'sourcePhone' : 'sourceSensor'),
              }))}
            />
            <section class="panel">
              <h3>
                {t(lang, 'falseAlarms')} · {t(lang, 'byRule')}
              </h3>
              <RateTable
                lang={lang}
                rows={report.falseAlarmsByRule.map((r) => ({ ...r, label: rule(r.key) }))}
              />
              <h3>
                {t(lang, 'falseAlarms')} · {t(lang, 'byDevice')}
              </h3>
              <RateTable lang={lang} rows={report.falseAlarmsByDevice.map((r) => ({ ...r, label: r.key }))} />
            </section>
            <section class="panel">
              <h3>{t(lang, 'uptime')}</h3>
              <Bars rows={report.deviceUptime.map((u) => ({ label: u.label, a: u.uptime }))} />
              <table class="compact">
                <tbody>
                  {report.deviceUptime.map((u) => (
                    <tr key={u.gridId}>
                      <td>{u.label}</td>
                      <td>{u.devices}</td>
                      <td>{percent(u.uptime)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </section>
          </div>
        </>
      )}
    </main>
  );
}

function SlaSection({ lang, title, rows }: { lang: Lang; title: string; rows: SlaRow[] }) {
  return (
    <section class="panel" data-testid={`section-${title}`}>
      <h3>{title}</h3>
      <Bars
        rows={rows.map((r) => ({ label: r.label, a: r.acceptedShare, b: r.onSiteShare }))}
        legend={[t(lang, 'acceptedIn3'), t(lang, 'onSiteIn15')]}
      />
      <table class="compact">
        <thead>
          <tr>
            <th />
            <th>{t(lang, 'alertsCount')}</th>
            <th>{t(lang, 'acceptedIn3')}</th>
            <th>{t(lang, 'onSiteIn15')}</th>
            <th>
              {t(lang, 'acceptTime')} {t(lang, 'median')}/{t(lang, 'p90')}
            </th>
            <th>
              {t(lang, 'onSiteTime')} {t(lang, 'median')}/{t(lang, 'p90')}
            </th>
            <th>{t(lang, 'breaches')}</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((r) => (
            <tr key={r.key} data-key={r.key}>
              <td>{r.label}</td>
              <td>{r.alerts}</td>
              <td>{percent(r.acceptedShare)}</td>
              <td>{percent(r.onSiteShare)}</td>
              <td>
                {formatMinutes(r.acceptMedianMs)} / {formatMinutes(r.acceptP90Ms)}
              </td>
              <td>
                {formatMinutes(r.onSiteMedianMs)} / {formatMinutes(r.onSiteP90Ms)}
              </td>
              <td class={r.breaches ? 'red' : ''}>{r.breaches}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

function RateTable({
  lang,
  rows,
}: {
  lang: Lang;
  rows: { key: string; label: string; resolved: number; falseAlarms: number; rate: number | null }[];
}) {
  return (
    <table class="compact">
      <thead>
        <tr>
          <th />
          <th>{t(lang, 'resolved')}</th>
          <th>{t(lang, 'falseAlarms')}</th>
        </tr>
      </thead>
      <tbody>
        {rows.length === 0 && (
          <tr>
            <td colSpan={3} class="muted">
              {t(lang, 'none')}
            </td>
          </tr>
        )}
        {rows.slice(0, 20).map((r) => (
          <tr key={r.key}>
            <td>{r.label}</td>
            <td>{r.resolved}</td>
            <td>
              {r.falseAlarms} ({percent(r.rate)})
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** Horizontal bars of shares (0..1), one or two per row. */
function Bars({
  rows,
  legend,
}: {
  rows: { label: string; a: number | null; b?: number | null }[];
  legend?: string[];
}) {
  const W = 520;
  const L = 110;
  const RH = legend ? 26 : 16;
  const H = rows.length * RH + (legend ? 22 : 4);
  const w = (v: number | null | undefined) => Math.max(0, (v ?? 0) * (W - L - 50));
  return (
    <svg class="bars" viewBox={`0 0 ${W} ${H}`} role="img" aria-label="chart">
      {rows.map((r, i) => (
        <g key={i} transform={`translate(0 ${i * RH + 2})`}>
          <text x={L - 6} y={11} text-anchor="end" class="lane-label">
            {r.label.length > 14 ? `${r.label.slice(0, 13)}…` : r.label}
          </text>
          <rect x={L} y={2} width={w(r.a)} height={10} class="bar-a" />
          <text x={L + w(r.a) + 4} y={11} class="bar-value">
            {r.a === null ? '—' : `${Math.round(r.a * 100)}%`}
          </text>
          {legend && (
            <>
              <rect x={L} y={13} width={w(r.b)} height={10} class="bar-b" />
              <text x={L + w(r.b) + 4} y={22} class="bar-value">
                {r.b === null || r.b === undefined ? '—' : `${Math.round(r.b * 100)}%`}
              </text>
            </>
          )}
        </g>
      ))}
      {legend && (
        <g transform={`translate(${L} ${rows.length * RH + 8})`}>
          <rect width={10} height={10} class="bar-a" />
          <text x={14} y={9} class="bar-value">
            {legend[0]}
          </text>
          <rect x={150} width={10} height={10} class="bar-b" />
          <text x={164} y={9} class="bar-value">
            {legend[1]}
          </text>
        </g>
      )}
    </svg>
  );
}
