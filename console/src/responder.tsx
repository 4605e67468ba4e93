/** The responder's phone page (SPEC §8): my alerts, one tap for each step. */
import { useMemo, useState } from 'preact/hooks';
import type { Alert, Staff } from '../../dispatcher/api/types.ts';
import { api } from './api.ts';
import { type Lang, RULE_NAMES, STATE_NAMES, t } from './i18n.ts';
import { formatCountdown, useLiveAlerts, useTick } from './live.ts';

const OPEN = new Set(['raised', 'notified', 'accepted', 'en_route', 'on_site']);

export function ResponderPage({ lang, me }: { lang: Lang; me: Staff }) {
  const live = useLiveAlerts(() => {
    navigator.vibrate?.([300, 100, 300]);
  });
  const now = useTick() + live.offset;
  const mine = useMemo(
    () =>
      [...live.alerts.values()]
        .filter((a) => OPEN.has(a.state) && (a.assigneeId === me.id || a.responders.includes(me.id)))
        .sort((a, b) => a.raisedAt - b.raisedAt),
    [live.alerts, me.id],
  );
  return (
    <main class="responder">
      {!live.connected && (
        <div class="banner" role="alert">
          {t(lang, 'disconnected')}
        </div>
      )}
      <h2>{t(lang, 'myAlerts')}</h2>
      {mine.length === 0 && <p class="empty">{t(lang, 'noAlerts')}</p>}
      {mine.map((a) => (
        <AlertCard key={a.id} a={a} lang={lang} now={now} me={me} />
      ))}
    </main>
  );
}

function AlertCard({ a, lang, now, me }: { a: Alert; lang: Lang; now: number; me: Staff }) {
  const [error, setError] = useState<string | null>(null);
  const [note, setNote] = useState('');
  const [outcome, setOutcome] = useState('assisted');
  const act = (action: string, body: unknown = {}) => {
    setError(null);
    api.act(a.id, action, body).catch((e: Error) => setError(e.message));
  };
  const mineNow = a.assigneeId === me.id;
  return (
    <article class={`card sev-${a.severity}`} data-alert-id={a.id} data-state={a.state}>
      <header>
        <b>{RULE_NAMES[lang][a.rule]}</b> · {STATE_NAMES[lang][a.state]}
        {a.onSiteDueAt !== null && a.onSiteAt === null && (
          <span class="countdown">{formatCountdown(a.onSiteDueAt - now)}</span>
        )}
      </header>
      <p>{a.explanation[lang]}</p>
      <p class="sub">{a.householdId}</p>
      <div class="actions">
        {(a.state === 'raised' || a.state === 'notified') && (
          <button type="button" class="primary" onClick={() => act('accept')}>
            {t(lang, 'accept')}
          </button>
        )}
        {a.state === 'accepted' && mineNow && (
          <button type="button" class="primary" onClick={() => act('en-route')}>
            {t(lang, 'enRoute')}
          </button>
        )}
        {(a.state === 'accepted' || a.state === 'en_route') && mineNow && (
          <button type="button" class="primary" onClick={() => act('on-site')}>
            {t(lang, 'onSite')}
          </button>
        )}
      </div>
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
            <select value={outcome} onChange={(e) => setOutcome((e.target as HTMLSelectElement).value)}>
              {['assisted', 'ambulance', 'false_alarm', 'resident_away', 'device_fault', 'other'].map((o) => (
                <option key={o} value={o}>
                  {o}
                </option>
              ))}
            </select>
          </label>
          <label>
            {t(lang, 'note')}
            <textarea
              required
              value={note}
              onInput={(e) => setNote((e.target as HTMLTextAreaElement).value)}
            />
          </label>
          <button type="submit" class="primary">
            {t(lang, 'resolve')}
          </button>
        </form>
      )}
      {error && <p class="error">{error}</p>}
    </article>
  );
}
