/**
 * Find a household and take a call (CONSOLE-04, ALERT-03). The search box finds any household of the
 * reader's grids by part of its address, a resident's name or a phone (the server runs the query); Enter
 * takes the first. Its file opens without an alert (alerts, devices, visits, away status), and a desk
 * opens an incident from a phone call in a few keystrokes: the category's number, a note, Enter.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import {
  type HouseholdHit,
  type IncidentResult,
  PHONE_CATEGORIES,
  type PhoneCategory,
} from '../../dispatcher/api/types.ts';
import { api, type SessionInfo } from './api.ts';
import { addressText, formatDateTime } from './format.ts';
import { HouseholdDrawer } from './household.tsx';
import { CATEGORY_NAMES, type Lang, SEVERITY_NAMES, t } from './i18n.ts';

const SEVERITIES = ['critical', 'high', 'medium'] as const;
/** A fall is critical as a radar's fall is (RULE-01); the rest start at high, the dispatcher decides. */
const DEFAULT_SEVERITY: Record<PhoneCategory, (typeof SEVERITIES)[number]> = {
  fall: 'critical',
  unwell: 'high',
  no_answer: 'high',
  wandering: 'high',
  other: 'medium',
};

export function SearchPage(p: { lang: Lang; session: SessionInfo; call: boolean }) {
  const { lang, session } = p;
  const canReport = session.permissions.includes('alerts.act.all');
  const [text, setText] = useState('');
  const [hits, setHits] = useState<{ households: HouseholdHit[]; truncated: boolean } | null>(null);
  const [open, setOpen] = useState<string | null>(null);
  const [reporting, setReporting] = useState<HouseholdHit | null>(null);
  const [error, setError] = useState<string | null>(null);
  const box = useRef<HTMLInputElement>(null);
  useEffect(() => box.current?.focus(), []);
  // The server searches; a quarter second after the last keystroke, and only the latest answer counts.
  const asked = useRef(0);
  useEffect(() => {
    const q = text.trim();
    if (!q) {
      setHits(null);
      return;
    }
    const n = ++asked.current;
    const h = setTimeout(() => {
      api.searchHouseholds(q).then(
        (r) => {
          if (n === asked.current) {
            setHits(r);
            setError(null);
          }
        },
        (e: Error) => setError(e.message),
      );
    }, 250);
    return () => clearTimeout(h);
  }, [text]);
  const take = (h: HouseholdHit) => (p.call && canReport ? setReporting(h) : setOpen(h.id));
  return (
    <main class="search-page">
      <section class="panel search-box">
        <label>
          <h2>{p.call && canReport ? t(lang, 'phoneReport') : t(lang, 'searchLabel')}</h2>
          <input
            ref={box}
            type="search"
            name="q"
            data-testid="search-input"
            autocomplete="off"
            maxLength={100}
            placeholder={t(lang, 'searchPlaceholder')}
            value={text}
            onInput={(e) => setText((e.target as HTMLInputElement).value)}
            onKeyDown={(e) => {
              if (e.key === 'Enter' && hits?.households[0]) {
                e.preventDefault();
                take(hits.households[0]);
              }
            }}
          />
        </label>
        <p class="muted">{t(lang, 'searchHint')}</p>
        {error && (
          <p class="error" role="alert">
            {error}
          </p>
        )}
      </section>
      {reporting && (
        <PhoneReportForm
          lang={lang}
          household={reporting}
          onClose={() => {
            setReporting(null);
            box.current?.focus();
          }}
        />
      )}
      {hits && hits.households.length === 0 && (
        <p class="empty" data-testid="no-matches">
          {t(lang, 'noMatches')}
        </p>
      )}
      {hits && hits.households.length > 0 && (
        <table class="results" data-testid="search-results">
          <thead>
            <tr>
              <th>{t(lang, 'address')}</th>
              <th>{t(lang, 'grid')}</th>
              <th>{t(lang, 'residents')}</th>
              <th>{t(lang, 'state')}</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {hits.households.map((h) => (
              <tr key={h.id} data-household={h.id}>
                <td>
                  <b>{addressText(h.address)}</b>
                </td>
                <td>{h.gridName}</td>
                <td>
                  {h.residents.map((r, i) => (
                    <div key={i}>
                      {r.name}
                      {r.phone && <span class="muted"> · {r.phone}</span>}
                    </div>
                  ))}
                </td>
                <td>
                  {h.awayUntil !== null && h.awayUntil > session.now ? (
                    <span class="tag amber" data-testid="away">
                      {t(lang, 'awayUntil')} {formatDateTime(h.awayUntil, session.zone, lang)}
                      {h.awayReason ? ` · ${h.awayReason}` : ''}
                    </span>
                  ) : (
                    <span class="muted">{t(lang, 'atHome')}</span>
                  )}
                </td>
                <td class="row-actions">
                  <button type="button" data-action="open" onClick={() => setOpen(h.id)}>
                    {t(lang, 'openFile')}
                  </button>
                  {canReport && (
                    <button
                      type="button"
                      class="primary"
                      data-action="report"
                      onClick={() => setReporting(h)}
                    >
                      {t(lang, 'phoneReport')}
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {hits?.truncated && <p class="muted">{t(lang, 'moreMatches')}</p>}
      {open && (
        <HouseholdDrawer lang={lang} session={session} householdId={open} onClose={() => setOpen(null)} />
      )}
    </main>
  );
}

/**
 * ALERT-03: the call as an incident. The category's number key picks it (1–5), its severity follows
 * unless the dispatcher changed it, and Enter in the note sends it.
 */
function PhoneReportForm(p: { lang: Lang; household: HouseholdHit; onClose: () => void }) {
  const { lang, household: h } = p;
  const [category, setCategory] = useState<PhoneCategory | null>(null);
  const [severity, setSeverity] = useState<(typeof SEVERITIES)[number] | null>(null);
  const [busy, setBusy] = useState(false);
  const [done, setDone] = useState<IncidentResult | null>(null);
  const [error, setError] = useState<string | null>(null);
  const first = useRef<HTMLInputElement>(null);
  useEffect(() => first.current?.focus(), [h.id]);
  const chosenSeverity = severity ?? (category ? DEFAULT_SEVERITY[category] : 'high');
  return (
    <form
      class="panel phone-report"
      data-testid="phone-report"
      aria-label={t(lang, 'phoneReport')}
      onKeyDown={(e) => {
        const i = Number(e.key) - 1;
        const target = e.target as HTMLElement;
        if (target.tagName !== 'TEXTAREA' && target.tagName !== 'INPUT' && PHONE_CATEGORIES[i]) {
          setCategory(PHONE_CATEGORIES[i]);
        }
        if (target.getAttribute('type') === 'radio' && PHONE_CATEGORIES[i]) {
          e.preventDefault();
          setCategory(PHONE_CATEGORIES[i]);
        }
      }}
      onSubmit={(e) => {
        e.preventDefault();
        if (!category || busy) return;
        const data = new FormData(e.currentTarget as HTMLFormElement);
        const caller = String(data.get('caller') ?? '').trim();
        setBusy(true);
        setError(null);
        api
          .report({
            householdId: h.id,
            category,
            severity: chosenSeverity,
            note: String(data.get('note') ?? ''),
            ...(caller ? { caller } : {}),
          })
          .then(setDone, (err: Error) => setError(err.message))
          .finally(() => setBusy(false));
      }}
    >
      <h3>
        {t(lang, 'phoneReportFor')} · {addressText(h.address)}
        {h.residents[0] ? ` · ${h.residents[0].name}` : ''}
      </h3>
      {done ? (
        <>
          <p class="notice" role="status" data-testid="reported" data-alert-id={done.alert.id}>
            {done.attached ? t(lang, 'reportAttached') : t(lang, 'reported')}
          </p>
          <p>
            <a href="#/dispatch" class="button primary">
              {t(lang, 'viewInQueue')}
            </a>{' '}
            <button type="button" onClick={p.onClose}>
              {t(lang, 'close')}
            </button>
          </p>
        </>
      ) : (
        <>
          <fieldset class="categories">
            <legend>{t(lang, 'callCategory')}</legend>
            {PHONE_CATEGORIES.map((c, i) => (
              <label key={c} class={category === c ? 'chosen' : ''}>
                <input
                  ref={i === 0 ? first : undefined}
                  type="radio"
                  name="category"
                  value={c}
                  required
                  checked={category === c}
                  onChange={() => setCategory(c)}
                />
                <kbd>{i + 1}</kbd> {CATEGORY_NAMES[lang][c]}
              </label>
            ))}
          </fieldset>
          <label>
            {t(lang, 'severity')}
            <select
              name="severity"
              value={chosenSeverity}
              onChange={(e) => setSeverity((e.target as HTMLSelectElement).value as typeof chosenSeverity)}
            >
              {SEVERITIES.map((s) => (
                <option key={s} value={s}>
                  {SEVERITY_NAMES[lang][s]}
                </option>
              ))}
            </select>
          </label>
          <label>
            {t(lang, 'caller')}
            <input name="caller" maxLength={100} placeholder={t(lang, 'callerPlaceholder')} />
          </label>
          <label>
            {t(lang, 'callNote')}
            <textarea
              name="note"
              required
              maxLength={2000}
              rows={3}
              placeholder={t(lang, 'callNotePlaceholder')}
              onKeyDown={(e) => {
                if (e.key === 'Enter' && !e.shiftKey) {
                  e.preventDefault();
                  (e.currentTarget.form as HTMLFormElement).requestSubmit();
                }
              }}
            />
          </label>
          <p>
            <button type="submit" class="primary" data-action="submit-report" disabled={busy || !category}>
              {t(lang, 'reportSubmit')}
            </button>{' '}
            <button type="button" onClick={p.onClose}>
              {t(lang, 'close')}
            </button>
          </p>
        </>
      )}
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
    </form>
  );
}
