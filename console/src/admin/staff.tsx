/** Staff (SPEC §4): create people with roles and grids; edit, disable, reset a password, retire (DATA-04). */
import { useEffect, useState } from 'preact/hooks';
import { type Grid, STAFF_ROLES, type Staff } from '../../../dispatcher/api/types.ts';
import { api } from '../api.ts';
import { type Lang, ROLE_NAMES, t } from '../i18n.ts';
import { Field, Form, type Message, RecordTable, Status, TableAndForm } from './form.tsx';
import { RetireButton } from './retire-button.tsx';

export function StaffAdmin({ lang }: { lang: Lang }) {
  const [staff, setStaff] = useState<Staff[]>([]);
  const [grids, setGrids] = useState<Grid[]>([]);
  const [editing, setEditing] = useState<string | null>(null);
  const gridNames = new Map(grids.map((g) => [g.id, g.name]));
  const load = () => api.staff().then((s) => setStaff(s.staff));
  useEffect(() => {
    void load();
    api.grids().then((g) => setGrids(g.grids));
  }, []);
  return (
    <TableAndForm
      table={
        <RecordTable
          rows={staff}
          rowKey={(s) => s.id}
          rowProps={(s) => ({ 'data-staff-id': s.id, class: s.disabled ? 'muted' : '' })}
          columns={[
            {
              head: t(lang, 'name'),
              cell: (s) => (
                <>
                  {s.name}
                  {s.disabled && <span class="tag red">{t(lang, 'disabled')}</span>}
                </>
              ),
            },
            { head: t(lang, 'username'), cell: (s) => s.username },
            { head: t(lang, 'roles'), cell: (s) => s.roles.map((r) => ROLE_NAMES[lang][r] ?? r).join('、') },
            { head: t(lang, 'grids'), cell: (s) => s.gridIds.map((g) => gridNames.get(g) ?? g).join('、') },
            { head: t(lang, 'phone'), cell: (s) => s.phone },
            {
              head: '',
              cell: (s) => (
                <button type="button" data-testid="edit-staff" onClick={() => setEditing(s.id)}>
                  {t(lang, 'edit')}
                </button>
              ),
            },
          ]}
        />
      }
      aside={
        editing && staff.some((s) => s.id === editing) ? (
          <StaffEditor
            key={editing}
            lang={lang}
            person={staff.find((s) => s.id === editing)!}
            grids={grids}
            onSaved={load}
            onClose={() => setEditing(null)}
          />
        ) : (
          <Form
            lang={lang}
            onSubmit={(v) => {
              const form = document.querySelector<HTMLFormElement>('[data-testid=staff-form]');
              const pick = (name: string) =>
                [...(form?.querySelectorAll<HTMLInputElement>(`input[name=${name}]:checked`) ?? [])].map(
                  (i) => i.value,
                );
              return api
                .createStaff({
                  id: v.id,
                  name: v.name,
                  phone: v.phone ?? '',
                  username: v.username,
                  password: v.password,
                  roles: pick('roles'),
                  gridIds: pick('gridIds'),
                })
                .then(load);
            }}
            testid="staff-form"
          >
            <Field label="ID" name="id" required />
            <Field label={t(lang, 'name')} name="name" required />
            <Field label={t(lang, 'phone')} name="phone" type="tel" />
            <Field label={t(lang, 'username')} name="username" required />
            <Field label={t(lang, 'password')} name="password" type="password" required />
            <fieldset>
              <legend>{t(lang, 'roles')}</legend>
              {STAFF_ROLES.map((r) => (
                <label key={r} class="check">
                  <input type="checkbox" name="roles" value={r} /> {ROLE_NAMES[lang][r]}
                </label>
              ))}
            </fieldset>
            <fieldset>
              <legend>{t(lang, 'grids')}</legend>
              {grids.map((g) => (
                <label key={g.id} class="check">
                  <input type="checkbox" name="gridIds" value={g.id} /> {g.name}
                </label>
              ))}
            </fieldset>
          </Form>
        )
      }
    />
  );
}

/**
 * Edit one person (SPEC §4, §11): name, phone, roles, grids; disable or enable the account (a disabled
 * person cannot log in and is skipped by routing); set a new password. Each change is one PATCH.
 */
function StaffEditor(p: {
  lang: Lang;
  person: Staff;
  grids: Grid[];
  onSaved: () => Promise<unknown>;
  onClose: () => void;
}) {
  const { lang, person } = p;
  const [msg, setMsg] = useState<Message>(null);
  const run = (patch: Parameters<typeof api.updateStaff>[1]) => {
    setMsg(null);
    return api.updateStaff(person.id, patch).then(
      () => {
        setMsg({ ok: true, text: t(lang, 'saved') });
        return p.onSaved();
      },
      (err: Error) => setMsg({ ok: false, text: err.message }),
    );
  };
  return (
    <div class="admin-form" data-testid="staff-editor" data-staff-id={person.id}>
      <h3>
        {t(lang, 'edit')}: {person.name} ({person.username})
      </h3>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          const form = e.currentTarget as HTMLFormElement;
          const data = new FormData(form);
          const pick = (name: string) => data.getAll(name).map(String);
          void run({
            name: String(data.get('name') ?? ''),
            phone: String(data.get('phone') ?? ''),
            roles: pick('roles'),
            gridIds: pick('gridIds'),
          });
        }}
      >
        <Field label={t(lang, 'name')} name="name" required value={person.name} />
        <Field label={t(lang, 'phone')} name="phone" type="tel" value={person.phone} />
        <fieldset>
          <legend>{t(lang, 'roles')}</legend>
          {STAFF_ROLES.map((r) => (
            <label key={r} class="check">
              <input
                type="checkbox"
                name="roles"
                value={r}
                defaultChecked={person.roles.includes(r as never)}
              />{' '}
              {ROLE_NAMES[lang][r]}
            </label>
          ))}
        </fieldset>
        <fieldset>
          <legend>{t(lang, 'grids')}</legend>
          {p.grids.map((g) => (
            <label key={g.id} class="check">
              <input
                type="checkbox"
                name="gridIds"
                value={g.id}
                defaultChecked={person.gridIds.includes(g.id)}
              />{' '}
              {g.name}
            </label>
          ))}
        </fieldset>
        <div class="admin-row-actions">
          <button type="submit" class="primary">
            {t(lang, 'save')}
          </button>
          <button
            type="button"
            data-testid="toggle-disabled"
            class={person.disabled ? '' : 'danger'}
            onClick={() => void run({ disabled: !person.disabled })}
          >
            {person.disabled ? t(lang, 'enable') : t(lang, 'disable')}
          </button>
          <RetireButton
            lang={lang}
            kind="staff"
            id={person.id}
            onDone={() => {
              p.onClose();
              return p.onSaved();
            }}
            onError={(text) => setMsg({ ok: false, text })}
          />
          <button type="button" onClick={p.onClose}>
            {t(lang, 'close')}
          </button>
        </div>
      </form>
      <form
        data-testid="password-form"
        onSubmit={(e) => {
          e.preventDefault();
          const form = e.currentTarget as HTMLFormElement;
          const password = String(new FormData(form).get('password') ?? '');
          void run({ password }).then(() => form.reset());
        }}
      >
        <label>
          {t(lang, 'newPassword')}
          <input name="password" type="password" required minLength={8} autoComplete="new-password" />
        </label>
        <button type="submit">{t(lang, 'resetPassword')}</button>
      </form>
      <Status msg={msg} />
    </div>
  );
}
