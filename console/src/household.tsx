/**
 * The household file (一户一档, SPEC §4, §8): residents, emergency contacts with call links, access notes
 * behind a "show" click (the server audits every read), devices with their state and battery, the 7-day
 * activity timeline, and past alerts with their visit notes.
 */
import { useEffect, useState } from 'preact/hooks';
import type { Alert, DeviceState } from '../../dispatcher/api/types.ts';
import { api, type HouseholdFile, type RoutineBaseline, type SessionInfo, type Timeline } from './api.ts';
import { Drawer } from './drawer.tsx';
import { addressText, formatDateTime } from './format.ts';
import { KIND_NAMES, type Lang, OUTCOME_NAMES, RULE_NAMES, room, STATE_NAMES, t } from './i18n.ts';
import { TimelineChart } from './timeline-chart.tsx';

export function HouseholdDrawer(p: {
  lang: Lang;
  session: SessionInfo;
  householdId: string;
  onClose: () => void;
}) {
  const { lang } = p;
  const zone = p.session.zone;
  const [file, setFile] = useState<{
    household: HouseholdFile;
    devices: DeviceState[];
    alerts: Alert[];
  } | null>(null);
  const [timeline, setTimeline] = useState<Timeline | null>(null);
  const [baseline, setBaseline] = useState<RoutineBaseline | null | undefined>(undefined);
  const [notes, setNotes] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    setFile(null);
    setNotes(null);
    api.household(p.householdId).then(setFile, (e: Error) => setError(e.message));
    api.timeline(p.householdId).then(setTimeline, () => {});
    api.baseline(p.householdId).then(
      (r) => setBaseline(r.baseline),
      () => setBaseline(null),
    );
  }, [p.householdId]);
  const h = file?.household;
  const mayShow = p.session.permissions.includes('households.sensitive');
  return (
    <Drawer
      title={`${t(lang, 'openFile')} · ${h ? addressText(h.address) : p.householdId}`}
      closeLabel={t(lang, 'close')}
      onClose={p.onClose}
      testid="household-drawer"
      wide
    >
      {error && <p class="error">{error}</p>}
      {h && file && (
        <>
          {h.awayUntil !== null && (
            <p class="notice">
              {h.awayReason ?? ''} → {formatDateTime(h.awayUntil, zone, lang)}
            </p>
          )}
          <div class="two-col">
            <section>
              <h3>{t(lang, 'residents')}</h3>
              <ul class="plain">
                {h.residents.map((r, i) => (
                  <li key={i}>
                    <b>{r.name}</b> {r.age !== undefined && `· ${r.age}`}{' '}
                    {r.healthNotes && `· ${r.healthNotes}`}{' '}
                    {r.phone && (
                      <a class="tel" href={`tel:${r.phone}`}>
                        {t(lang, 'call')} {r.phone}
                      </a>
                    )}
                  </li>
                ))}
              </ul>
              <h3>{t(lang, 'contacts')}</h3>
              <ol class="plain" data-testid="contacts">
                {h.contacts.length === 0 && <li class="muted">{t(lang, 'none')}</li>}
                {h.contacts.map((c, i) => (
                  <li key={i}>
                    {c.name} {c.relation && `(${c.relation})`}{' '}
                    <a class="tel" href={`tel:${c.phone}`}>
                      {t(lang, 'call')} {c.phone}
                    </a>
                  </li>
                ))}
              </ol>
              <h3>{t(lang, 'accessNotes')}</h3>
              {notes !== null ? (
                <p data-testid="access-notes">{notes || t(lang, 'none')}</p>
              ) : mayShow ? (
                <button
                  type="button"
                  data-testid="show-access-notes"
                  onClick={() =>
                    api.household(p.householdId, true).then(
                      (r) => setNotes(r.household.accessNotes ?? ''),
                      (e: Error) => setError(e.message),
                    )
                  }
                >
                  {t(lang, 'show')} <span class="muted">({t(lang, 'auditedHint')})</span>
                </button>
              ) : (
                <p class="muted">—</p>
              )}
            </section>
            <section>
              <h3>{t(lang, 'devices')}</h3>
              <table class="compact" data-testid="devices">
                <tbody>
                  {file.devices.map((d) => (
                    <tr key={d.id} data-device-id={d.id}>
                      <td>{KIND_NAMES[lang][d.kind] ?? d.kind}</td>
                      <td>
                        {room(lang, d.room)}
                        {d.roomText && (
                          <span class="tag amber" title={t(lang, 'unmappedRoomsHint')}>
                            {t(lang, 'unmappedRooms')}: {d.roomText}
                          </span>
                        )}
                      </td>
                      <td class={d.online ? 'ok' : 'red'}>
                        {d.online ? t(lang, 'online') : t(lang, 'offline')}
                      </td>
                      <td class={d.battery !== null && d.battery <= 15 ? 'red' : ''}>
                        {d.battery === null ? '—' : `${d.battery}%`}
                      </td>
                      <td class="muted">{d.lastSeenAt ? formatDateTime(d.lastSeenAt, zone, lang) : '—'}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </section>
          </div>
          <h3>{t(lang, 'activity')}</h3>
          {timeline ? (
            <TimelineChart
              data={timeline}
              rooms={file.devices.filter((d) => d.kind === 'motion').map((d) => d.room)}
              zone={zone}
              lang={lang}
            />
          ) : (
            <div class="timeline-placeholder" />
          )}
          <h3>{t(lang, 'baseline')}</h3>
          <div data-testid="baseline">
            {baseline === undefined ? null : baseline === null ? (
              <p class="muted">{t(lang, 'baselineLearning')}</p>
            ) : (
              <p>
                {t(lang, 'usualUpBy')} <b>{baseline.usualUpBy ?? '—'}</b> · {t(lang, 'morningCheck')}{' '}
                <b>{baseline.applied ? baseline.learned.morningBy : baseline.configured.morningBy}</b> ·{' '}
                {t(lang, 'learnedDays')} {baseline.days} ·{' '}
                <span class="muted">
                  {t(lang, baseline.applied ? 'baselineApplied' : 'baselineNotApplied')}
                </span>
              </p>
            )}
          </div>
          <h3>{t(lang, 'pastAlerts')}</h3>
          <ul class="plain past" data-testid="past-alerts">
            {file.alerts.length === 0 && <li class="muted">{t(lang, 'none')}</li>}
            {file.alerts.map((a) => (
              <li key={a.id}>
                <b>{RULE_NAMES[lang][a.rule]}</b> · {formatDateTime(a.raisedAt, zone, lang)} ·{' '}
                {STATE_NAMES[lang][a.state]}
                {a.outcome && ` · ${OUTCOME_NAMES[lang][a.outcome]}`}
                {a.note && <div class="visit-note">{a.note}</div>}
              </li>
            ))}
          </ul>
        </>
      )}
    </Drawer>
  );
}
