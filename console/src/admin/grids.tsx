/** Grids (SPEC §4): id, name, community and leader (picked from staff by name); edit and retire. */
import { useEffect, useState } from 'preact/hooks';
import type { Grid, Staff } from '../../../dispatcher/api/types.ts';
import { api } from '../api.ts';
import { type Lang, t } from '../i18n.ts';
import { Field, Form, type Message, RecordTable, Status, TableAndForm } from './form.tsx';
import { RetireButton } from './retire-button.tsx';

export function GridsAdmin({ lang }: { lang: Lang }) {
  const [grids, setGrids] = useState<Grid[]>([]);
  const [staff, setStaff] = useState<Staff[]>([]);
  const [editing, setEditing] = useState<string | null>(null);
  const [msg, setMsg] = useState<Message>(null);
  const names = new Map(staff.map((s) => [s.id, s.name]));
  const load = () => api.grids().then((g) => setGrids(g.grids));
  useEffect(() => {
    void load();
    api.staff().then((s) => setStaff(s.staff));
  }, []);
  const grid = grids.find((g) => g.id === editing);
  return (
    <TableAndForm
      table={
        <>
          <RecordTable
            rows={grids}
            rowKey={(g) => g.id}
            rowProps={(g) => ({ 'data-grid-id': g.id })}
            columns={[
              { head: 'ID', cell: (g) => g.id },
              { head: t(lang, 'name'), cell: (g) => g.name },
              { head: t(lang, 'community'), cell: (g) => g.community },
              {
                head: t(lang, 'leader'),
                cell: (g) => (g.leaderId ? (names.get(g.leaderId) ?? g.leaderId) : '—'),
              },
              {
                head: '',
                cell: (g) => (
                  <span class="admin-row-actions">
                    <button type="button" data-testid="edit" onClick={() => setEditing(g.id)}>
                      {t(lang, 'edit')}
                    </button>
                    <RetireButton
                      lang={lang}
                      kind="grids"
                      id={g.id}
                      onDone={() => {
                        setEditing(null);
                        return load();
                      }}
                      onError={(text) => setMsg({ ok: false, text })}
                    />
                  </span>
                ),
              },
            ]}
          />
          <Status msg={msg} />
        </>
      }
      aside={
        <Form
          key={grid?.id ?? 'new'}
          lang={lang}
          testid="grid-form"
          done={grid ? 'saved' : 'created'}
          onSubmit={(v) =>
            api
              .saveGrid({ id: v.id!, name: v.name!, community: v.community!, leaderId: v.leaderId || null })
              .then(load)
          }
        >
          <h3>{grid ? `${t(lang, 'edit')}: ${grid.name}` : t(lang, 'newRecord')}</h3>
          <Field label="ID" name="id" required value={grid?.id} readOnly={!!grid} />
          <Field label={t(lang, 'name')} name="name" required value={grid?.name} />
          <Field label={t(lang, 'community')} name="community" required value={grid?.community} />
          <label>
            {t(lang, 'leader')}
            <select name="leaderId" value={grid?.leaderId ?? ''}>
              <option value="">—</option>
              {staff
                .filter((s) => !s.disabled)
                .map((s) => (
                  <option key={s.id} value={s.id}>
                    {s.name} · {s.username}
                  </option>
                ))}
            </select>
          </label>
          {grid && (
            <button type="button" onClick={() => setEditing(null)}>
              {t(lang, 'newRecord')}
            </button>
          )}
        </Form>
      }
    />
  );
}
