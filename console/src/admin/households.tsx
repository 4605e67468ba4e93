/**
 * Households (SPEC §4, 一户一档): address, grid, residents and emergency contacts (several of each), access
 * notes, the routine profile (night window, usual wake time, per-rule thresholds, the learned baseline),
 * away with an end date; edit and retire. Editing reads the access notes (an audited read, SEC-04) so that
 * saving never erases them.
 */
import { useEffect, useState } from 'preact/hooks';
import type { Grid, RuleId } from '../../../dispatcher/api/types.ts';
import { api, type HouseholdFile } from '../api.ts';
import { addressText, formatDateTime, isoDate } from '../format.ts';
import { GridSelect } from '../grid-select.tsx';
import { type Lang, RULE_NAMES, t } from '../i18n.ts';
import { Field, Form, type Message, RecordTable, Status, TableAndForm } from './form.tsx';
import { RetireButton } from './retire-button.tsx';

type Resident = HouseholdFile['residents'][number];
type Contact = HouseholdFile['contacts'][number];
/** The rules whose minutes a household may change (RULE-14); the others fire at once. */
const TUNABLE: RuleId[] = [
  'NIGHT_EXIT',
  'NO_MORNING_ACTIVITY',
  'INACTIVITY',
  'BATHROOM_DWELL',
  'DOOR_LEFT_OPEN',
  'DEVICE_OFFLINE',
  'LOW_BATTERY',
];

/** Epoch ms of a wall-clock date and time in `zone` (the community's, never the browser's). */
export function zonedEpoch(date: string, time: string, zone: string): number {
  const guess = Date.parse(`${date}T${time}:00Z`);
  const offset = (at: number) => {
    const p = Object.fromEntries(
      new Intl.DateTimeFormat('en-US', {
        timeZone: zone,
        hourCycle: 'h23',
        year: 'numeric',
        month: '2-digit',
        day: '2-digit',
        hour: '2-digit',
        minute: '2-digit',
        second: '2-digit',
      })
        .formatToParts(at)
        .map((x) => [x.type, x.value]),
    );
    return Date.parse(`${p.year}-${p.month}-${p.day}T${p.hour}:${p.minute}:${p.second}Z`) - at;
  };
  const first = guess - offset(guess);
  return guess - offset(first);
}

export function HouseholdsAdmin({ lang, zone }: { lang: Lang; zone: string }) {
  const [list, setList] = useState<HouseholdFile[]>([]);
  const [grids, setGrids] = useState<Grid[]>([]);
  const [editing, setEditing] = useState<HouseholdFile | null>(null);
  const [msg, setMsg] = useState<Message>(null);
  const gridNames = new Map(grids.map((g) => [g.id, g.name]));
  const load = () => api.households().then((h) => setList(h.households));
  useEffect(() => {
    void load();
    api.grids().then((g) => setGrids(g.grids));
  }, []);
  const edit = (id: string) =>
    api.household(id, true).then(
      (r) => setEditing(r.household),
      (e: Error) => setMsg({ ok: false, text: e.message }),
    );
  return (
    <TableAndForm
      table={
        <>
          <RecordTable
            rows={list}
            rowKey={(h) => h.id}
            rowProps={(h) => ({ 'data-household-id': h.id })}
            columns={[
              { head: 'ID', cell: (h) => h.id },
              { head: t(lang, 'grid'), cell: (h) => gridNames.get(h.gridId) ?? h.gridId },
              { head: t(lang, 'address'), cell: (h) => addressText(h.address) },
              { head: t(lang, 'residents'), cell: (h) => h.residents.map((r) => r.name).join('、') },
              { head: t(lang, 'contacts'), cell: (h) => h.contacts.length },
              {
                head: t(lang, 'awayStatus'),
                cell: (h) =>
                  h.awayUntil ? `${t(lang, 'awayUntil')} ${formatDateTime(h.awayUntil, zone, lang)}` : '',
              },
              {
                head: '',
                cell: (h) => (
                  <span class="admin-row-actions">
                    <button type="button" data-testid="edit" onClick={() => void edit(h.id)}>
                      {t(lang, 'edit')}
                    </button>
                    <RetireButton
                      lang={lang}
                      kind="households"
                      id={h.id}
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
        <>
          <HouseholdForm
            key={editing?.id ?? 'new'}
            lang={lang}
            grids={grids}
            household={editing}
            onSaved={load}
            onNew={() => setEditing(null)}
          />
          {editing && (
            <AwayForm
              key={`away-${editing.id}`}
              lang={lang}
              zone={zone}
              household={editing}
              onSaved={() => Promise.all([load(), edit(editing.id)])}
            />
          )}
        </>
      }
    />
  );
}

function HouseholdForm(p: {
  lang: Lang;
  grids: Grid[];
  household: HouseholdFile | null;
  onSaved: () => Promise<unknown>;
  onNew: () => void;
}) {
  const { lang, household: h } = p;
  const [residents, setResidents] = useState<Resident[]>(h?.residents ?? [{ name: '' }]);
  const [contacts, setContacts] = useState<Contact[]>(h?.contacts ?? [{ name: '', phone: '' }]);
  const setAt = <T,>(list: T[], set: (x: T[]) => void, i: number, patch: Partial<T>) =>
    set(list.map((x, j) => (j === i ? { ...x, ...patch } : x)));
  const input = (e: Event) => (e.target as HTMLInputElement).value;
  return (
    <Form
      lang={lang}
      testid="household-form"
      done={h ? 'saved' : 'created'}
      onSubmit={(v) => {
        const thresholds = Object.fromEntries(
          TUNABLE.filter((r) => v[`t_${r}`]).map((r) => [r, Number(v[`t_${r}`])]),
        );
        return api
          .saveHousehold({
            id: v.id,
            gridId: v.gridId,
            address: { building: v.building, unit: v.unit ?? '', room: v.room },
            residents: residents
              .filter((r) => r.name.trim())
              .map((r) => ({
                name: r.name.trim(),
                ...(r.age !== undefined && !Number.isNaN(r.age) ? { age: r.age } : {}),
                ...(r.phone ? { phone: r.phone } : {}),
                ...(r.healthNotes ? { healthNotes: r.healthNotes } : {}),
              })),
            contacts: contacts
              .filter((c) => c.name.trim() && c.phone.trim())
              .map((c) => ({
                name: c.name.trim(),
                relation: c.relation ?? '',
                phone: c.phone.trim(),
                // NOTIFY-04: told of safety alerts only when this contact agreed to it.
                ...(c.updates ? { updates: true } : {}),
              })),
            accessNotes: v.accessNotes ?? '',
            routine: {
              nightStart: v.nightStart || '22:00',
              nightEnd: v.nightEnd || '06:00',
              wakeTime: v.wakeTime || '07:30',
              thresholds,
              ...(v.learnBaseline === 'on' ? { learnBaseline: true } : {}),
            },
            awayUntil: h?.awayUntil ?? null,
            awayReason: h?.awayReason ?? null,
          })
          .then(() => {
            if (!h) {
              setResidents([{ name: '' }]);
              setContacts([{ name: '', phone: '' }]);
            }
            return p.onSaved();
          });
      }}
    >
      <h3>{h ? `${t(lang, 'edit')}: ${addressText(h.address)}` : t(lang, 'newRecord')}</h3>
      <Field label="ID" name="id" required value={h?.id} readOnly={!!h} />
      <GridSelect lang={lang} grids={p.grids} name="gridId" value={h?.gridId} required />
      <Field label={t(lang, 'building')} name="building" required value={h?.address.building} />
      <Field label={t(lang, 'unit')} name="unit" value={h?.address.unit} />
      <Field label={t(lang, 'room')} name="room" required value={h?.address.room} />
      <fieldset data-testid="residents">
        <legend>{t(lang, 'residents')}</legend>
        {residents.map((r, i) => (
          <div key={i} class="admin-row" data-resident={i}>
            <input
              aria-label={t(lang, 'name')}
              placeholder={t(lang, 'name')}
              value={r.name}
              onInput={(e) => setAt(residents, setResidents, i, { name: input(e) })}
            />
            <input
              aria-label={t(lang, 'age')}
              placeholder={t(lang, 'age')}
              type="number"
              value={r.age ?? ''}
              onInput={(e) =>
                setAt(residents, setResidents, i, { age: input(e) === '' ? undefined : Number(input(e)) })
              }
            />
            <input
              aria-label={t(lang, 'phone')}
              placeholder={t(lang, 'phone')}
              type="tel"
              value={r.phone ?? ''}
              onInput={(e) => setAt(residents, setResidents, i, { phone: input(e) })}
            />
            <input
              aria-label={t(lang, 'healthNotes')}
              placeholder={t(lang, 'healthNotes')}
              value={r.healthNotes ?? ''}
              onInput={(e) => setAt(residents, setResidents, i, { healthNotes: input(e) })}
            />
            <button type="button" onClick={() => setResidents(residents.filter((_, j) => j !== i))}>
              {t(lang, 'removeRow')}
            </button>
          </div>
        ))}
        <button
          type="button"
          data-testid="add-resident"
          onClick={() => setResidents([...residents, { name: '' }])}
        >
          {t(lang, 'addResident')}
        </button>
      </fieldset>
      <fieldset data-testid="contacts">
        <legend>{t(lang, 'contacts')}</legend>
        {contacts.map((c, i) => (
          <div key={i} class="admin-row" data-contact={i}>
            <input
              aria-label={t(lang, 'name')}
              placeholder={t(lang, 'name')}
              value={c.name}
              onInput={(e) => setAt(contacts, setContacts, i, { name: input(e) })}
            />
            <input
              aria-label={t(lang, 'relation')}
              placeholder={t(lang, 'relation')}
              value={c.relation ?? ''}
              onInput={(e) => setAt(contacts, setContacts, i, { relation: input(e) })}
            />
            <input
              aria-label={t(lang, 'phone')}
              placeholder={t(lang, 'phone')}
              type="tel"
              value={c.phone}
              onInput={(e) => setAt(contacts, setContacts, i, { phone: input(e) })}
            />
            <label class="check">
              <input
                type="checkbox"
                data-testid="contact-updates"
                checked={!!c.updates}
                onChange={(e) =>
                  setAt(contacts, setContacts, i, { updates: (e.target as HTMLInputElement).checked })
                }
              />
              {t(lang, 'familyUpdatesOptIn')}
            </label>
            <button type="button" onClick={() => setContacts(contacts.filter((_, j) => j !== i))}>
              {t(lang, 'removeRow')}
            </button>
          </div>
        ))}
        <button
          type="button"
          data-testid="add-contact"
          onClick={() => setContacts([...contacts, { name: '', phone: '' }])}
        >
          {t(lang, 'addContact')}
        </button>
      </fieldset>
      <Field label={t(lang, 'accessNotes')} name="accessNotes" value={h?.accessNotes} />
      <fieldset data-testid="routine">
        <legend>{t(lang, 'routine')}</legend>
        <Field
          label={t(lang, 'nightStart')}
          name="nightStart"
          type="time"
          value={h?.routine.nightStart ?? '22:00'}
        />
        <Field
          label={t(lang, 'nightEnd')}
          name="nightEnd"
          type="time"
          value={h?.routine.nightEnd ?? '06:00'}
        />
        <Field
          label={t(lang, 'wakeTime')}
          name="wakeTime"
          type="time"
          value={h?.routine.wakeTime ?? '07:30'}
        />
        <p class="small">{t(lang, 'thresholdsHint')}</p>
        {TUNABLE.map((r) => (
          <Field
            key={r}
            label={RULE_NAMES[lang][r]}
            name={`t_${r}`}
            type="number"
            value={h?.routine.thresholds?.[r] === undefined ? '' : String(h.routine.thresholds[r])}
          />
        ))}
        <label class="check">
          <input type="checkbox" name="learnBaseline" defaultChecked={!!h?.routine.learnBaseline} />
          {t(lang, 'learnBaseline')}
        </label>
      </fieldset>
      {h && (
        <button type="button" onClick={p.onNew}>
          {t(lang, 'newRecord')}
        </button>
      )}
    </Form>
  );
}

/** SPEC §4: away (hospital, staying with family) until a date, which pauses the activity rules. */
function AwayForm(p: {
  lang: Lang;
  zone: string;
  household: HouseholdFile;
  onSaved: () => Promise<unknown>;
}) {
  const { lang, household: h } = p;
  const [msg, setMsg] = useState<Message>(null);
  const done = (x: Promise<unknown>) =>
    x.then(
      () => {
        setMsg({ ok: true, text: t(lang, 'saved') });
        return p.onSaved();
      },
      (e: Error) => setMsg({ ok: false, text: e.message }),
    );
  return (
    <form
      class="admin-form"
      data-testid="away-form"
      onSubmit={(e) => {
        e.preventDefault();
        const data = new FormData(e.currentTarget as HTMLFormElement);
        const until = zonedEpoch(String(data.get('until')), '23:59', p.zone);
        void done(api.setAway(h.id, until, String(data.get('reason') ?? '')));
      }}
    >
      <h3>{t(lang, 'awayStatus')}</h3>
      <p data-testid="away-now">
        {h.awayUntil
          ? `${t(lang, 'awayUntil')} ${formatDateTime(h.awayUntil, p.zone, lang)} · ${h.awayReason ?? ''}`
          : t(lang, 'notAway')}
      </p>
      <Field
        label={t(lang, 'awayUntil')}
        name="until"
        type="date"
        required
        value={h.awayUntil ? isoDate(h.awayUntil, p.zone) : undefined}
      />
      <Field label={t(lang, 'awayReason')} name="reason" required value={h.awayReason ?? undefined} />
      <div class="admin-row-actions">
        <button type="submit" class="primary">
          {t(lang, 'setAway')}
        </button>
        {h.awayUntil && (
          <button type="button" data-testid="clear-away" onClick={() => void done(api.clearAway(h.id))}>
            {t(lang, 'clearAway')}
          </button>
        )}
      </div>
      <Status msg={msg} />
    </form>
  );
}
