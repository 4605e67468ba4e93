/**
 * The audit log as a page (SPEC §8, SEC-04): who did what to which record and when, newest first,
 * filtered by person, kind of action, record and dates (days in the community's zone).
 */
import { useEffect, useState } from 'preact/hooks';
import { type AuditEntry, auditActionText, type Staff } from '../../../dispatcher/api/types.ts';
import { api } from '../api.ts';
import { formatDateTime } from '../format.ts';
import { type Key, type Lang, t } from '../i18n.ts';
import { Field, type Message, RecordTable, Status } from './form.tsx';
import { zonedEpoch } from './households.tsx';

/** Kinds of action, as prefixes the API matches ("device." is every device action). */
const GROUPS: [string, Key][] = [
  ['alert.', 'auditAlerts'],
  ['household.', 'households'],
  ['grid.', 'grids'],
  ['staff.', 'staff'],
  ['device.', 'devices'],
  ['roster.', 'roster'],
  ['registry.', 'importExport'],
  ['push.', 'auditPush'],
  ['cross_community.', 'auditCross'],
];

export function AuditAdmin({ lang, zone }: { lang: Lang; zone: string }) {
  const [entries, setEntries] = useState<AuditEntry[]>([]);
  const [staff, setStaff] = useState<Staff[]>([]);
  const [msg, setMsg] = useState<Message>(null);
  const names = new Map(staff.map((s) => [s.id, s.name]));
  const search = (v: Record<string, string>) =>
    api
      .audit({
        actor: v.actor || undefined,
        action: v.action || undefined,
        target: v.target || undefined,
        from: v.from ? zonedEpoch(v.from, '00:00', zone) : undefined,
        to: v.to ? zonedEpoch(v.to, '00:00', zone) + 86_400_000 : undefined,
        limit: 200,
      })
      .then(
        (r) => {
          setEntries(r.entries);
          setMsg(null);
        },
        (e: Error) => setMsg({ ok: false, text: e.message }),
      );
  useEffect(() => {
    void search({});
    api.staff().then((s) => setStaff(s.staff));
  }, []);
  return (
    <div data-testid="audit-page">
      <form
        class="admin-filters"
        data-testid="audit-filters"
        onSubmit={(e) => {
          e.preventDefault();
          const data = new FormData(e.currentTarget as HTMLFormElement);
          void search(Object.fromEntries([...data.entries()].map(([k, x]) => [k, String(x)])));
        }}
      >
        <label>
          {t(lang, 'auditActor')}
          <select name="actor">
            <option value="">—</option>
            {staff.map((s) => (
              <option key={s.id} value={s.id}>
                {s.name} · {s.username}
              </option>
            ))}
          </select>
        </label>
        <label>
          {t(lang, 'auditAction')}
          <select name="action">
            <option value="">{t(lang, 'auditAll')}</option>
            {GROUPS.map(([prefix, key]) => (
              <option key={prefix} value={prefix}>
                {t(lang, key)}
              </option>
            ))}
          </select>
        </label>
        <Field label={t(lang, 'auditTarget')} name="target" />
        <Field label={t(lang, 'from')} name="from" type="date" />
        <Field label={t(lang, 'to')} name="to" type="date" />
        <button type="submit" class="primary">
          {t(lang, 'search')}
        </button>
      </form>
      <Status msg={msg} />
      <RecordTable
        testid="audit-list"
        rows={entries}
        rowKey={(e) => `${e.at}|${e.actor}|${e.action}|${e.target}|${JSON.stringify(e.detail)}`}
        rowProps={(e) => ({ 'data-action': e.action, 'data-target': e.target })}
        columns={[
          { head: t(lang, 'auditTime'), cell: (e) => formatDateTime(e.at, zone, lang) },
          { head: t(lang, 'auditActor'), cell: (e) => names.get(e.actor) ?? e.actor },
          {
            head: t(lang, 'auditAction'),
            cell: (e) => <span title={e.action}>{auditActionText(lang, e.action)}</span>,
          },
          { head: t(lang, 'auditTarget'), cell: (e) => e.target },
          {
            head: t(lang, 'auditDetail'),
            cell: (e) => (Object.keys(e.detail).length ? <code>{JSON.stringify(e.detail)}</code> : ''),
          },
        ]}
      />
      {entries.length === 0 && <p class="muted">{t(lang, 'noEntries')}</p>}
    </div>
  );
}
