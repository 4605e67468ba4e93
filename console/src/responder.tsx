/**
 * The responder's phone page (SPEC §7, §8), 360 px wide: my open alerts with the address and directions,
 * call buttons for the resident and the contacts, one tap each for accept, en route, on site and resolve
 * (outcome and note). Live over socket.io, with sound (after one tap enables it) and vibration where the
 * phone allows; the list comes from the API, so a reload shows the same alerts.
 */
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { type Alert, type HandoverReport, OPEN_STATES, PERSON_OUTCOMES } from '../../dispatcher/api/types.ts';
import { api, type HouseholdFile, type SessionInfo } from './api.ts';
import { addressText, formatTime } from './format.ts';
import { type Lang, OUTCOME_NAMES, RULE_NAMES, STATE_NAMES, t } from './i18n.ts';
import { formatCountdown, useLiveAlerts, useTick } from './live.ts';
import { enablePush, type PushState, setUpWorker } from './push.ts';
import { beep } from './sound.ts';

const OPEN = new Set<string>(OPEN_STATES);

export function ResponderPage({ lang, session }: { lang: Lang; session: SessionInfo }) {
  const me = session.staff;
  const audio = useRef<AudioContext | null>(null);
  const [sound, setSound] = useState(false);
  // SPEC §6: at a shift change the incoming responders see the open alerts of their grids they inherit.
  const [handover, setHandover] = useState<HandoverReport | null>(null);
  const loadHandover = () => api.handover().then(setHandover, () => {});
  useEffect(() => void loadHandover(), []);
  const live = useLiveAlerts(
    () => {
      navigator.vibrate?.([300, 100, 300]);
      if (audio.current) beep(audio.current);
    },
    { handover: setHandover, reconnected: () => void loadHandover() },
  );
  const now = useTick();
  // NOTIFY-03: the service worker, and lock-screen notices once the responder allows them.
  const [push, setPush] = useState<PushState | 'busy' | null>(null);
  useEffect(() => {
    setUpWorker().then(setPush, () => setPush('unsupported'));
  }, []);
  // `#/respond/{alertId}` (a tapped notice, an SMS link) shows that alert first.
  const [focus, setFocus] = useState(() => focusedAlert());
  useEffect(() => {
    const on = () => setFocus(focusedAlert());
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  useEffect(() => {
    if (focus) document.querySelector(`[data-alert-id="${CSS.escape(focus)}"]`)?.scrollIntoView();
  }, [focus, live.alerts]);
  const [homes, setHomes] = useState<Map<string, HouseholdFile>>(new Map());
  // Mine: assigned to me, or offered to me and not yet taken by someone else.
  const mine = useMemo(
    () =>
      [...live.alerts.values()]
        .filter(
          (a) =>
            OPEN.has(a.state) &&
            !a.declined?.includes(me.id) &&
            (a.assigneeId === me.id ||
              (a.responders.includes(me.id) && (a.acceptedAt === null || a.assigneeId === null))),
        )
        .sort((a, b) => a.raisedAt - b.raisedAt),
    [live.alerts, me.id],
  );
  // The household files of my alerts and of the handover list (addresses, residents, call links).
  useEffect(() => {
    const ids = new Set([
      ...mine.map((a) => a.householdId),
      ...(handover?.items ?? []).map((i) => i.householdId),
    ]);
    for (const id of ids) {
      if (homes.has(id)) continue;
      api.household(id).then(
        (r) => setHomes((m) => new Map(m).set(id, r.household)),
        () => {},
      );
    }
  }, [mine, handover]);
  return (
    <main class="responder">
      {!live.connected && (
        <div class="banner" role="alert" data-testid="offline-banner">
          {t(lang, 'disconnected')}
        </div>
      )}
      <div class="responder-head">
        {/* CONSOLE-06: this phone's own responder, by name. */}
        <h2 data-testid="responder-name">
          {me.name}
          {t(lang, 'myAlertsOf')}
        </h2>
        <button
          type="button"
          aria-pressed={sound}
          onClick={() => {
            audio.current ??= new AudioContext();
            void audio.current.resume();
            setSound(true);
          }}
        >
          {sound ? t(lang, 'soundOn') : t(lang, 'enableSound')}
        </button>
        {push !== null && (
          <button
            type="button"
            data-testid="push-toggle"
            data-state={push}
            aria-pressed={push === 'on'}
            disabled={push !== 'off'}
            onClick={() => {
              setPush('busy');
              enablePush(lang).then(setPush, () => setPush('off'));
            }}
          >
            {push === 'on'
              ? t(lang, 'pushOn')
              : push === 'blocked'
                ? t(lang, 'pushBlocked')
                : push === 'unsupported'
                  ? t(lang, 'pushUnsupported')
                  : t(lang, 'pushEnable')}
          </button>
        )}
      </div>
      {mine.length === 0 && <p class="empty">{t(lang, 'noAlerts')}</p>}
      {handover && handover.items.length > 0 && (
        <section class="panel" data-testid="handover" aria-label={t(lang, 'handover')}>
          <h3>
            {t(lang, 'handover')} · {t(lang, handover.shift)}
          </h3>
          <ul class="problems">
            {handover.items.map((i) => (
              <li key={i.alertId} data-alert-id={i.alertId}>
                {RULE_NAMES[lang][i.rule]} ·{' '}
                {homes.get(i.householdId) ? addressText(homes.get(i.householdId)!.address) : i.householdId} ·{' '}
                {STATE_NAMES[lang][i.state]}
                {i.assigneeId === me.id && <span class="tag amber">{t(lang, 'keptAssignee')}</span>}
              </li>
            ))}
          </ul>
        </section>
      )}
      {mine.map((a) => (
        <AlertCard
          key={a.id}
          a={a}
          lang={lang}
          zone={session.zone}
          now={now}
          meId={me.id}
          home={homes.get(a.householdId)}
          session={session}
          focused={a.id === focus}
        />
      ))}
    </main>
  );
}

function AlertCard(p: {
  a: Alert;
  lang: Lang;
  zone: string;
  now: number;
  meId: string;
  home: HouseholdFile | undefined;
  session: SessionInfo;
  focused: boolean;
}) {
  const { a, lang, home } = p;
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [note, setNote] = useState('');
  const [outcome, setOutcome] = useState<string>('assisted');
  const [notes, setNotes] = useState<string | null>(null);
  const [declining, setDeclining] = useState(false);
  const act = (action: string, body: unknown = {}) => {
    setError(null);
    setBusy(true);
    api
      .act(a.id, action, body)
      .catch((e: Error) => setError(e.message))
      .finally(() => setBusy(false));
  };
  const mineNow = a.assigneeId === p.meId;
  const arrivalSuggested = (a as Alert & { arrivalSuggestedAt?: number | null }).arrivalSuggestedAt;
  return (
    <article
      class={`card sev-${a.severity}${p.focused ? ' focused' : ''}`}
      data-alert-id={a.id}
      data-state={a.state}
      aria-current={p.focused ? 'true' : undefined}
    >
      <header>
        <b>{RULE_NAMES[lang][a.rule]}</b>
        <span class="state">{STATE_NAMES[lang][a.state]}</span>
        {a.onSiteDueAt !== null && a.onSiteAt === null && (
          <span class="countdown" data-testid="countdown">
            {formatCountdown(a.onSiteDueAt - p.now)}
          </span>
        )}
      </header>
      <p>{a.explanation[lang]}</p>
      <p class="address" data-testid="address">
        <b>{home ? addressText(home.address) : a.householdId}</b>
        <span class="muted"> · {formatTime(a.raisedAt, p.zone, lang)}</span>
      </p>
      {home && (
        // CONSOLE-06: on a 360 px phone each piece has its own line and the access-notes link is a full-width
        // tap target; nothing is cut off.
        <div class="directions" data-testid="directions">
          <div class="muted">{t(lang, 'directions')}</div>
          <div class="where">
            {a.community} · {addressText(home.address)}
          </div>
          {home.residents[0] && (
            <div class="who-lives">
              {home.residents[0].name}
              {home.residents[0].age ? ` (${home.residents[0].age})` : ''}
              {home.residents[0].healthNotes ? ` · ${home.residents[0].healthNotes}` : ''}
            </div>
          )}
          {notes !== null ? (
            <div class="access-notes" data-testid="access-notes">
              {t(lang, 'accessNotes')}: {notes || t(lang, 'none')}
            </div>
          ) : (
            p.session.permissions.includes('households.sensitive') && (
              <button
                type="button"
                class="access-link"
                data-testid="access-notes-link"
                onClick={() =>
                  api.household(a.householdId, true).then(
                    (r) => setNotes(r.household.accessNotes ?? ''),
                    (e: Error) => setError(e.message),
                  )
                }
              >
                {t(lang, 'accessNotes')}: {t(lang, 'show')} · {t(lang, 'auditedHint')}
              </button>
            )
          )}
        </div>
      )}
      {home && (
        <div class="calls">
          {home.residents
            .filter((r) => r.phone)
            .map((r, i) => (
              <a key={`r${i}`} class="button tel" href={`tel:${r.phone}`}>
                {t(lang, 'callResident')} {r.name}
              </a>
            ))}
          {home.contacts.map((c, i) => (
            <a key={`c${i}`} class="button tel" href={`tel:${c.phone}`}>
              {t(lang, 'call')} {c.name}
              {c.relation ? ` (${c.relation})` : ''}
            </a>
          ))}
        </div>
      )}
      {arrivalSuggested && a.state === 'en_route' && mineNow && (
        <p class="notice">{t(lang, 'arrivalHint')}</p>
      )}
      <div class="actions">
        {(a.state === 'raised' || a.state === 'notified') && (
          <button type="button" class="primary" disabled={busy} onClick={() => act('accept')}>
            {t(lang, 'accept')}
          </button>
        )}
        {a.state === 'accepted' && mineNow && (
          <button type="button" class="primary" disabled={busy} onClick={() => act('en-route')}>
            {t(lang, 'enRoute')}
          </button>
        )}
        {(a.state === 'accepted' || a.state === 'en_route') && mineNow && (
          <button type="button" class="primary" disabled={busy} onClick={() => act('on-site')}>
            {t(lang, 'onSite')}
          </button>
        )}
        {a.state !== 'on_site' && !declining && (
          <button type="button" data-action="decline" disabled={busy} onClick={() => setDeclining(true)}>
            {t(lang, 'cantGo')}
          </button>
        )}
      </div>
      {declining && (
        <form
          class="decline"
          data-testid="decline-form"
          onSubmit={(e) => {
            e.preventDefault();
            const data = new FormData(e.currentTarget as HTMLFormElement);
            const why = String(data.get('why') ?? '');
            const more = String(data.get('more') ?? '').trim();
            act('decline', { reason: more ? `${why}：${more}` : why });
          }}
        >
          <label>
            {t(lang, 'cantGoWhy')}
            <select name="why">
              {(['cantGoFar', 'cantGoBusy', 'cantGoUnwell', 'cantGoOther'] as const).map((k) => (
                <option key={k} value={t(lang, k)}>
                  {t(lang, k)}
                </option>
              ))}
            </select>
          </label>
          <input name="more" maxLength={200} placeholder={t(lang, 'note')} />
          <button type="submit" class="danger" disabled={busy}>
            {t(lang, 'cantGoConfirm')}
          </button>
          <button type="button" onClick={() => setDeclining(false)}>
            {t(lang, 'close')}
          </button>
        </form>
      )}
      {a.state === 'on_site' && mineNow && (
        <form
          class="resolve"
          onSubmit={(e) => {
            e.preventDefault();
            act('resolve', { outcome, note });
          }}
        >
          <label>
            {t(lang, 'outcome')}
            <select
              name="outcome"
              value={outcome}
              onChange={(e) => setOutcome((e.target as HTMLSelectElement).value)}
            >
              {PERSON_OUTCOMES.map((o) => (
                <option key={o} value={o}>
                  {OUTCOME_NAMES[lang][o]}
                </option>
              ))}
            </select>
          </label>
          <label>
            {t(lang, 'note')}
            <textarea
              name="note"
              required
              value={note}
              onInput={(e) => setNote((e.target as HTMLTextAreaElement).value)}
            />
          </label>
          <button type="submit" class="primary" disabled={busy}>
            {t(lang, 'resolve')}
          </button>
        </form>
      )}
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
    </article>
  );
}

/** The alert named by `#/respond/{alertId}`, or null. */
function focusedAlert(): string | null {
  const id = location.hash.split('/')[2];
  return id ? decodeURIComponent(id) : null;
}
