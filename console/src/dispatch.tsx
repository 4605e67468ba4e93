/** The dispatch-room screen (SPEC §8): the live queue ordered by severity and SLA time left. */
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import type { Alert, DutyView, Severity, Staff } from '../../dispatcher/api/types.ts';
import { api } from './api.ts';
import { type Lang, RULE_NAMES, SEVERITY_NAMES, STATE_NAMES, t } from './i18n.ts';
import { formatCountdown, useLiveAlerts, useTick } from './live.ts';

const SEVERITY_RANK: Record<Severity, number> = { critical: 0, high: 1, medium: 2, technical: 3 };
const OPEN = new Set(['raised', 'notified', 'accepted', 'en_route', 'on_site']);

export function DispatchScreen({ lang }: { lang: Lang; me: Staff }) {
  const live = useLiveAlerts();
  const now = useTick() + live.offset;
  const [duty, setDuty] = useState<DutyView[]>([]);
  const [names, setNames] = useState<Map<string, string>>(new Map());
  const [addresses, setAddresses] = useState<Map<string, string>>(new Map());
  const gridNames = useMemo(() => new Map(duty.map((d) => [d.gridId, d.gridName])), [duty]);
  const [sound, setSound] = useState(false);
  const audio = useRef<AudioContext | null>(null);

  useEffect(() => {
    const load = () =>
      api.duty().then(
        (d) => setDuty(d.duty),
        () => {},
      );
    void load();
    const h = setInterval(load, 60_000);
    api.staff().then(
      (s) => setNames(new Map(s.staff.map((p) => [p.id, p.name]))),
      () => {},
    );
    api.households().then(
      (h) =>
        setAddresses(
          new Map(
            h.households.map((x) => [x.id, `${x.address.building} ${x.address.unit} ${x.address.room}`]),
          ),
        ),
      () => {},
    );
    return () => clearInterval(h);
  }, []);

  // A sound for each new critical alert (after a click enabled audio: browsers block autoplay).
  useEffect(() => {
    const e = live.lastEvent;
    if (!sound || !audio.current || !e || e.action !== 'raised' || e.alert.severity !== 'critical') return;
    const ctx = audio.current;
    const osc = ctx.createOscillator();
    osc.frequency.value = 880;
    osc.connect(ctx.destination);
    osc.start();
    osc.stop(ctx.currentTime + 0.4);
  }, [live.lastEvent, sound]);

  const queue = useMemo(
    () =>
      [...live.alerts.values()]
        .filter((a) => OPEN.has(a.state))
        .sort((a, b) => {
          const s = SEVERITY_RANK[a.severity] - SEVERITY_RANK[b.severity];
          if (s !== 0) return s;
          return (a.onSiteDueAt ?? Number.MAX_SAFE_INTEGER) - (b.onSiteDueAt ?? Number.MAX_SAFE_INTEGER);
        }),
    [live.alerts],
  );
  const breaches = queue.filter((a) => a.slaBreached).length;

  return (
    <main class="dispatch">
      {!live.connected && (
        <div class="banner" role="alert" data-testid="offline-banner">
          {t(lang, 'disconnected')}
        </div>
      )}
      <section class="queue" aria-label={t(lang, 'queue')}>
        <header class="section-head">
          <h2>{t(lang, 'queue')}</h2>
          <div class="figures">
            <span data-testid="open-count">
              {t(lang, 'openAlerts')}: <b>{queue.length}</b>
            </span>
            <span>
              {t(lang, 'breaches')}: <b>{breaches}</b>
            </span>
            <button
              type="button"
              onClick={() => {
                audio.current ??= new AudioContext();
                setSound(true);
              }}
            >
              {sound ? t(lang, 'soundOn') : t(lang, 'enableSound')}
            </button>
          </div>
        </header>
        <table>
          <thead>
            <tr>
              <th>{t(lang, 'severity')}</th>
              <th>{t(lang, 'rule')}</th>
              <th>{t(lang, 'household')}</th>
              <th>{t(lang, 'grid')}</th>
              <th>{t(lang, 'state')}</th>
              <th>{t(lang, 'assignee')}</th>
              <th>{t(lang, 'countdown')}</th>
            </tr>
          </thead>
          <tbody>
            {queue.length === 0 && (
              <tr>
                <td colSpan={7} class="empty">
                  {t(lang, 'noAlerts')}
                </td>
              </tr>
            )}
            {queue.map((a) => (
              <AlertRow
                key={a.id}
                gridName={gridNames.get(a.gridId) ?? a.gridId}
                a={a}
                lang={lang}
                now={now}
                assignee={a.assigneeId ? (names.get(a.assigneeId) ?? a.assigneeId) : '—'}
                address={addresses.get(a.householdId)}
              />
            ))}
          </tbody>
        </table>
      </section>
      <aside class="duty" aria-label={t(lang, 'onDuty')}>
        <h2>{t(lang, 'onDuty')}</h2>
        {duty.map((d) => (
          <div class="duty-grid" key={d.gridId}>
            <h3>
              {d.gridName} · {t(lang, d.shift)}
            </h3>
            {d.staff.length === 0 ? (
              <p class="warn">{t(lang, 'nobody')}</p>
            ) : (
              <ol>
                {d.staff.map((s) => (
                  <li key={s.id}>{s.name}</li>
                ))}
              </ol>
            )}
          </div>
        ))}
      </aside>
    </main>
  );
}

function AlertRow({
  a,
  gridName,
  lang,
  now,
  assignee,
  address,
}: {
  a: Alert;
  gridName: string;
  lang: Lang;
  now: number;
  assignee: string;
  address: string | undefined;
}) {
  const elapsed = now - a.raisedAt;
  const left = a.onSiteDueAt === null ? null : a.onSiteDueAt - now;
  const arrived = a.onSiteAt !== null;
  const tone = arrived
    ? 'ok'
    : elapsed >= 15 * 60_000 || a.slaBreached
      ? 'red'
      : elapsed >= 12 * 60_000
        ? 'amber'
        : '';
  return (
    <tr
      class={`alert sev-${a.severity} ${a.flagged ? 'flagged' : ''}`}
      data-alert-id={a.id}
      data-rule={a.rule}
      data-state={a.state}
    >
      <td>
        <span class={`sev sev-${a.severity}`}>{SEVERITY_NAMES[lang][a.severity]}</span>
      </td>
      <td title={a.explanation[lang]}>
        {RULE_NAMES[lang][a.rule]}
        <div class="explain">{a.explanation[lang]}</div>
      </td>
      <td>
        {address ?? a.householdId}
        <div class="sub">{a.householdId}</div>
      </td>
      <td>{gridName}</td>
      <td class="state">{STATE_NAMES[lang][a.state]}</td>
      <td>{assignee}</td>
      <td class={`countdown ${tone}`} data-testid="countdown">
        {left === null ? '—' : arrived ? STATE_NAMES[lang].on_site : formatCountdown(left)}
      </td>
    </tr>
  );
}
