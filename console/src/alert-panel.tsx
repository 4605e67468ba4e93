/**
 * One alert for the dispatcher (SPEC §6, §8): why it was raised, its evidence and history, and the
 * dispatcher's actions: assign or reassign, note, record a call, resolve, cancel.
 */
import { useEffect, useState } from 'preact/hooks';
import {
  type Alert,
  type DeliveryRecord,
  evidenceText,
  type HistoryEntry,
  hasResponderRole,
  PERSON_OUTCOMES,
  type Staff,
} from '../../dispatcher/api/types.ts';
import { api } from './api.ts';
import { Drawer } from './drawer.tsx';
import { formatDateTime, formatTime } from './format.ts';
import { dispatcherActions, historyLine } from './history-words.ts';
import {
  CATEGORY_NAMES,
  type Key,
  type Lang,
  OUTCOME_NAMES,
  ROLE_NAMES,
  RULE_NAMES,
  STATE_NAMES,
  t,
} from './i18n.ts';
import { promiseWords, stepWords } from './ladder-words.ts';

export function AlertPanel(p: {
  lang: Lang;
  zone: string;
  alert: Alert;
  now: number;
  canAct: boolean;
  staff: Staff[];
  address: string | undefined;
  onClose: () => void;
  onHousehold: () => void;
}) {
  const { lang, alert: a, zone } = p;
  const [history, setHistory] = useState<HistoryEntry[]>([]);
  const [deliveries, setDeliveries] = useState<DeliveryRecord[]>([]);
  const [resent, setResent] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [form, setForm] = useState<'assign' | 'note' | 'call' | 'resolve' | 'cancel' | null>(null);
  // Deliveries change without the alert changing (receipts, retries): read again every few seconds.
  useEffect(() => {
    const load = () =>
      api.alert(a.id).then(
        (d) => {
          setHistory(d.history);
          setDeliveries(d.deliveries);
        },
        () => {},
      );
    void load();
    const h = setInterval(load, 5000);
    return () => clearInterval(h);
  }, [a.id, a.changeSeq]);
  const resend = (staffId?: string) => {
    setError(null);
    api.resend(a.id, staffId).then(
      () => setResent(staffId ?? '*'),
      (e: Error) => setError(e.message),
    );
  };
  const names = new Map(p.staff.map((s) => [s.id, s.name]));
  const act = (action: string, body: unknown) => {
    setError(null);
    api.act(a.id, action, body).then(
      () => setForm(null),
      (e: Error) => setError(e.message),
    );
  };
  // Only what the alert's state allows (ALERT-02): a resolved or cancelled alert offers no action.
  const actions = dispatcherActions(a.state);
  const candidates = p.staff.filter((s) => hasResponderRole(s.roles) && s.gridIds.includes(a.gridId));
  return (
    <Drawer
      title={`${RULE_NAMES[lang][a.rule]} · ${p.address ?? a.householdId}`}
      closeLabel={t(lang, 'close')}
      onClose={p.onClose}
      testid="alert-panel"
    >
      <p class="big">{a.explanation[lang]}</p>
      {a.source === 'phone' && (
        <p data-testid="source">
          <span class="tag amber">{t(lang, 'sourcePhone')}</span>{' '}
          {a.category ? CATEGORY_NAMES[lang][a.category] : ''} · {a.evidence[0]?.summary}
        </p>
      )}
      {a.state === 'cancelled' && a.note && (
        <p class="notice amber" data-testid="cancel-reason">
          {t(lang, 'cancelReason')}: {a.note}
        </p>
      )}
      <p>
        {STATE_NAMES[lang][a.state]} · {t(lang, 'raisedAt')} {formatDateTime(a.raisedAt, zone, lang)} ·{' '}
        {t(lang, 'assignee')}{' '}
        <b data-testid="panel-assignee">{a.assigneeId ? (names.get(a.assigneeId) ?? a.assigneeId) : '—'}</b>
      </p>
      {a.policy && (
        // ESC-03: the ladder this alert runs, frozen when it was raised; steps whose minute passed are dimmed.
        <details class="ladder" data-testid="alert-ladder">
          <summary>{promiseWords(a.policy, lang)}</summary>
          <ol>
            {a.policy.steps.map((s) => (
              <li
                key={`${s.kind}-${s.afterMin}`}
                class={a.raisedAt + s.afterMin * 60_000 <= p.now ? 'muted' : ''}
              >
                {stepWords(s, lang)}
              </li>
            ))}
          </ol>
        </details>
      )}
      <button type="button" class="primary" onClick={p.onHousehold}>
        {t(lang, 'openFile')}
      </button>
      {p.canAct && actions.length > 0 && (
        <fieldset class="actions">
          {actions.includes('assign') && (
            <button type="button" onClick={() => setForm('assign')} data-action="assign">
              {a.assigneeId ? t(lang, 'reassign') : t(lang, 'assign')}
            </button>
          )}
          {actions.includes('note') && (
            <button type="button" onClick={() => setForm('note')} data-action="note">
              {t(lang, 'addNote')}
            </button>
          )}
          {actions.includes('call') && (
            <button type="button" onClick={() => setForm('call')} data-action="call">
              {t(lang, 'recordCall')}
            </button>
          )}
          {actions.includes('resolve') && (
            <button type="button" onClick={() => setForm('resolve')} data-action="resolve">
              {t(lang, 'resolve')}
            </button>
          )}
          {actions.includes('cancel') && (
            <button type="button" class="danger" onClick={() => setForm('cancel')} data-action="cancel">
              {t(lang, 'cancel')}
            </button>
          )}
        </fieldset>
      )}
      {form === 'assign' && (
        <ActionForm lang={lang} onSubmit={(v) => act('assign', { staffId: v.staffId })}>
          <label>
            {t(lang, 'assignee')}
            <select name="staffId" required>
              {candidates.map((s) => (
                <option key={s.id} value={s.id}>
                  {s.name} · {s.roles.map((r) => ROLE_NAMES[lang][r] ?? r).join('/')}
                </option>
              ))}
            </select>
          </label>
        </ActionForm>
      )}
      {form === 'note' && (
        <ActionForm lang={lang} onSubmit={(v) => act('note', { text: v.text })}>
          <label>
            {t(lang, 'addNote')}
            <textarea name="text" required maxLength={4000} />
          </label>
        </ActionForm>
      )}
      {form === 'call' && (
        <ActionForm lang={lang} onSubmit={(v) => act('call', { to: v.to, result: v.result })}>
          <label>
            {t(lang, 'callTo')}
            <input name="to" required maxLength={100} />
          </label>
          <label>
            {t(lang, 'callResult')}
            <textarea name="result" required maxLength={1000} />
          </label>
        </ActionForm>
      )}
      {form === 'resolve' && (
        <ActionForm lang={lang} onSubmit={(v) => act('resolve', { outcome: v.outcome, note: v.note })}>
          <label>
            {t(lang, 'outcome')}
            <select name="outcome">
              {PERSON_OUTCOMES.map((o) => (
                <option key={o} value={o}>
                  {OUTCOME_NAMES[lang][o]}
                </option>
              ))}
            </select>
          </label>
          <label>
            {t(lang, 'note')}
            <textarea name="note" required maxLength={4000} />
          </label>
        </ActionForm>
      )}
      {form === 'cancel' && (
        <ActionForm lang={lang} onSubmit={(v) => act('cancel', { reason: v.reason })}>
          <label>
            {t(lang, 'reason')}
            <input name="reason" required maxLength={1000} />
          </label>
        </ActionForm>
      )}
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      <Deliveries
        lang={lang}
        zone={zone}
        deliveries={deliveries}
        names={names}
        canResend={p.canAct && a.state !== 'resolved' && a.state !== 'cancelled'}
        resent={resent}
        onResend={resend}
      />
      <h3>{t(lang, 'evidence')}</h3>
      <ul class="plain">
        {a.evidence.map((e, i) => (
          <li key={i}>
            {formatTime(e.at, zone, lang)} · {evidenceText(lang, e.summary)}
          </li>
        ))}
      </ul>
      <h3>{t(lang, 'history')}</h3>
      <ol class="history" data-testid="history">
        {history.map((h, i) => {
          const line = historyLine(h, lang, names);
          return (
            <li key={i} data-action={h.action}>
              <span class="muted">{formatTime(h.at, zone, lang)}</span> {line.text}
              {line.detail && <div class="muted">{line.detail}</div>}
            </li>
          );
        })}
      </ol>
    </Drawer>
  );
}

const UNREACHABLE_ERRORS = new Set([
  'no open responder page',
  'no app subscribed',
  'no push subscription',
  'push subscription expired',
]);
const CHANNEL_KEYS: Record<string, Key> = {
  socket: 'channelName_socket',
  mqtt: 'channelName_mqtt',
  push: 'channelName_push',
  webhook: 'channelName_webhook',
  family: 'channelName_family',
};

/**
 * Per person and channel, where the alert's notices stand (NOTIFY-02): delivered (the channel's own
 * receipt), sent, not connected or failed, and when; a dispatcher sends them again.
 */
function Deliveries(p: {
  lang: Lang;
  zone: string;
  deliveries: DeliveryRecord[];
  names: Map<string, string>;
  canResend: boolean;
  resent: string | null;
  onResend: (staffId?: string) => void;
}) {
  const { lang } = p;
  // person → channel → the latest attempt and the latest receipt
  const rows = new Map<string, Map<string, { last: DeliveryRecord; receipt: DeliveryRecord | null }>>();
  for (const d of p.deliveries) {
    const who = d.staffId ?? 'family';
    const byChannel = rows.get(who) ?? new Map();
    rows.set(who, byChannel);
    const cur = byChannel.get(d.channel) ?? { last: d, receipt: null };
    if (d.delivered) cur.receipt = d;
    else cur.last = d;
    byChannel.set(d.channel, cur);
  }
  if (rows.size === 0) return null;
  return (
    <section aria-label={t(lang, 'deliveries')}>
      <h3>{t(lang, 'deliveries')}</h3>
      <table class="deliveries" data-testid="deliveries">
        <tbody>
          {[...rows].map(([who, byChannel]) => (
            <tr key={who} data-staff={who}>
              <th>{who === 'family' ? t(lang, 'familyUpdates') : (p.names.get(who) ?? who)}</th>
              <td>
                {[...byChannel].map(([channel, { last, receipt }]) => {
                  const status = receipt
                    ? 'delivered'
                    : last.ok
                      ? 'sent'
                      : UNREACHABLE_ERRORS.has(last.error ?? '')
                        ? 'unreachable'
                        : 'failed';
                  const word =
                    status === 'delivered'
                      ? t(lang, 'deliveryDelivered')
                      : status === 'sent'
                        ? t(lang, 'deliverySent')
                        : status === 'unreachable'
                          ? t(lang, 'deliveryUnreachable')
                          : t(lang, 'deliveryFailed');
                  return (
                    <div key={channel} data-channel={channel} data-status={status} class={status}>
                      {CHANNEL_KEYS[channel] ? t(lang, CHANNEL_KEYS[channel]) : channel}: {word}{' '}
                      <span class="muted">{formatTime((receipt ?? last).at, p.zone, lang)}</span>
                      {status === 'failed' && last.error ? <span class="muted"> · {last.error}</span> : null}
                    </div>
                  );
                })}
              </td>
              <td>
                {p.canResend && who !== 'family' && (
                  <button type="button" data-action="resend" onClick={() => p.onResend(who)}>
                    {p.resent === who ? t(lang, 'resent') : t(lang, 'resend')}
                  </button>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

function ActionForm(p: {
  lang: Lang;
  onSubmit: (v: Record<string, string>) => void;
  children: preact.ComponentChildren;
}) {
  return (
    <form
      class="action-form"
      onSubmit={(e) => {
        e.preventDefault();
        const data = new FormData(e.currentTarget as HTMLFormElement);
        p.onSubmit(Object.fromEntries([...data.entries()].map(([k, v]) => [k, String(v)])));
      }}
    >
      {p.children}
      <button type="submit" class="primary">
        {t(p.lang, 'save')}
      </button>
    </form>
  );
}
