/**
 * The roster (SPEC §4): a week grid per grid, as routing computes it, the weekly rotation picked by name,
 * and one-off overrides of a dated shift.
 */
import { useEffect, useState } from 'preact/hooks';
import { type Grid, hasResponderRole, type Staff } from '../../../dispatcher/api/types.ts';
import {
  api,
  type RosterEntry,
  type RosterOverride,
  type RosterWeekView,
  type SessionInfo,
  type ShiftInstance,
} from '../api.ts';
import { isoDate } from '../format.ts';
import { GridSelect } from '../grid-select.tsx';
import { type Lang, ROLE_NAMES, t } from '../i18n.ts';
import { Form, type Message, Status } from './form.tsx';

/**
 * The override form addresses one dated shift, and says which: it opens on the shift in force (at 01:20,
 * last evening's night shift) and shows the span of the shift chosen, so "today" can never silently mean
 * the evening to come.
 */
function OverrideForm(p: {
  lang: Lang;
  session: SessionInfo;
  running: ShiftInstance;
  gridStaff: Staff[];
  staff: Staff[];
  onAdd: (o: Omit<RosterOverride, 'id' | 'gridId'>) => Promise<unknown>;
}) {
  const { lang, running } = p;
  const [date, setDate] = useState(running.date);
  const [shift, setShift] = useState<'day' | 'night'>(running.shift);
  const [msg, setMsg] = useState<Message>(null);
  const isRunning = date === running.date && shift === running.shift;
  return (
    <form
      class="admin-form"
      data-testid="override-form"
      onSubmit={(e) => {
        e.preventDefault();
        const form = e.currentTarget as HTMLFormElement;
        const v = Object.fromEntries([...new FormData(form).entries()].map(([k, x]) => [k, String(x)]));
        setMsg(null);
        p.onAdd({
          date,
          shift,
          kind: v.kind as 'leave' | 'cover' | 'swap',
          staffId: v.staffId || null,
          replacementId: v.replacementId || null,
        }).then(
          () => setMsg({ ok: true, text: t(lang, 'created') }),
          (err: Error) => setMsg({ ok: false, text: err.message }),
        );
      }}
    >
      <h3>{t(lang, 'overrides')}</h3>
      <p class="small" data-testid="running-shift">
        {t(lang, 'runningShift')}: {t(lang, running.shift)}{' '}
        {shiftSpan(running.date, running.shift, p.session.shifts)}
      </p>
      <label>
        {t(lang, 'shiftDate')}
        <input
          type="date"
          name="date"
          required
          value={date}
          onInput={(e) => setDate((e.target as HTMLInputElement).value)}
        />
      </label>
      <label>
        {t(lang, 'roster')}
        <select
          name="shift"
          value={shift}
          onChange={(e) => setShift((e.target as HTMLSelectElement).value as 'day' | 'night')}
        >
          <option value="day">{t(lang, 'day')}</option>
          <option value="night">{t(lang, 'night')}</option>
        </select>
      </label>
      {/* What the chosen date and shift mean, in words: a night shift belongs to its evening. */}
      <p
        class={isRunning ? 'small ok' : 'small'}
        data-testid="override-target"
        data-running={String(isRunning)}
      >
        {date ? `${t(lang, shift)} ${shiftSpan(date, shift, p.session.shifts)}` : '—'}
        {isRunning ? ` · ${t(lang, 'runningShift')}` : ''}
      </p>
      <label>
        {t(lang, 'kind')}
        <select name="kind">
          <option value="leave">{t(lang, 'leave')}</option>
          <option value="cover">{t(lang, 'cover')}</option>
          <option value="swap">{t(lang, 'swap')}</option>
        </select>
      </label>
      <label>
        {t(lang, 'staff')}
        <select name="staffId">
          <option value="">—</option>
          {p.gridStaff.map((s) => (
            <option key={s.id} value={s.id}>
              {s.name}
            </option>
          ))}
        </select>
      </label>
      <label>
        {t(lang, 'replacement')}
        <select name="replacementId">
          <option value="">—</option>
          {p.staff.map((s) => (
            <option key={s.id} value={s.id}>
              {s.name}
            </option>
          ))}
        </select>
      </label>
      <button type="submit" class="primary">
        {t(lang, 'add')}
      </button>
      <Status msg={msg} />
    </form>
  );
}

/** Overrides of the shift in force and later ones, each removable (one entered by mistake would reroute a real shift). */
function OverrideList(p: {
  lang: Lang;
  overrides: RosterOverride[];
  names: Map<string, string>;
  onDelete: (id: string) => Promise<unknown>;
}) {
  const { lang } = p;
  const [error, setError] = useState<string | null>(null);
  const who = (id: string | null) => (id ? (p.names.get(id) ?? id) : '');
  return (
    <div data-testid="override-list">
      <h3>{t(lang, 'overrides')}</h3>
      {p.overrides.length === 0 && <p class="muted">—</p>}
      <ul class="problems">
        {p.overrides.map((o) => (
          <li key={o.id} data-override-id={o.id}>
            {o.date} · {t(lang, o.shift)} · {t(lang, o.kind)}: {who(o.staffId)}
            {o.replacementId ? ` → ${who(o.replacementId)}` : ''}{' '}
            <button
              type="button"
              class="danger"
              data-testid="delete-override"
              onClick={() => {
                setError(null);
                p.onDelete(o.id).catch((e: Error) => setError(e.message));
              }}
            >
              {t(lang, 'deleteOverride')}
            </button>
          </li>
        ))}
      </ul>
      {error && (
        <p class="error" role="status">
          {error}
        </p>
      )}
    </div>
  );
}

const WEEK_MS = 7 * 86_400_000;

const WEEKDAYS: Record<Lang, string[]> = {
  zh: ['周一', '周二', '周三', '周四', '周五', '周六', '周日'],
  en: ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'],
};

/** "MM-DD HH:MM → MM-DD HH:MM" of a dated shift, from the community's boundaries (local times, no zone maths). */
function shiftSpan(date: string, shift: 'day' | 'night', b: SessionInfo['shifts']): string {
  const next = new Date(Date.parse(`${date}T12:00:00Z`) + 86_400_000).toISOString().slice(0, 10);
  return shift === 'day'
    ? `${date.slice(5)} ${b.dayStart} → ${date.slice(5)} ${b.nightStart}`
    : `${date.slice(5)} ${b.nightStart} → ${next.slice(5)} ${b.dayStart}`;
}

export function RosterAdmin({ lang, session }: { lang: Lang; session: SessionInfo }) {
  const [grids, setGrids] = useState<Grid[]>([]);
  const [grid, setGrid] = useState('');
  const [staff, setStaff] = useState<Staff[]>([]);
  const [entries, setEntries] = useState<RosterEntry[]>([]);
  const [overrides, setOverrides] = useState<RosterOverride[]>([]);
  const [week, setWeek] = useState<RosterWeekView | null>(null);
  /** The shift in force now (the override form opens on it), whatever week is shown. */
  const [running, setRunning] = useState<ShiftInstance | null>(null);
  /** Which week is shown, in weeks from the current one (SPEC §4: the roster for any week). */
  const [weeks, setWeeks] = useState(0);
  /** The rotation being entered, in order (first = primary), picked by name. */
  const [order, setOrder] = useState<string[]>([]);
  const names = new Map(staff.map((s) => [s.id, s.name]));
  useEffect(() => {
    api.grids().then((g) => {
      setGrids(g.grids);
      setGrid(g.grids[0]?.id ?? '');
    });
    api.staff().then((s) => setStaff(s.staff));
  }, []);
  const load = () =>
    grid
      ? Promise.all([api.roster(grid), api.rosterWeek(grid)]).then(async ([r, now]) => {
          setEntries(r.entries);
          setOverrides(r.overrides);
          // The shift in force now, dated by the day it started: at 01:20 that is last evening's night shift.
          setRunning(now.running);
          setWeek(weeks === 0 ? now : await api.rosterWeek(grid, now.at + weeks * WEEK_MS));
        })
      : Promise.resolve();
  useEffect(() => void load(), [grid, weeks]);
  // SEC-01: only people who go to households are rostered; dispatchers and admins are not offered.
  const responders = staff.filter((s) => hasResponderRole(s.roles));
  const gridStaff = responders.filter((s) => s.gridIds.includes(grid));
  const who = (id: string) => names.get(id) ?? id;
  return (
    <div>
      <div class="admin-filters" data-testid="week-nav">
        <GridSelect lang={lang} grids={grids} name="grid" value={grid} onChange={setGrid} />
        <button type="button" data-testid="prev-week" onClick={() => setWeeks((w) => w - 1)}>
          ← {t(lang, 'prevWeek')}
        </button>
        <button type="button" data-testid="this-week" disabled={weeks === 0} onClick={() => setWeeks(0)}>
          {t(lang, 'thisWeek')}
        </button>
        <button type="button" data-testid="next-week" onClick={() => setWeeks((w) => w + 1)}>
          {t(lang, 'nextWeek')} →
        </button>
        <span class="muted small" data-testid="week-span">
          {week?.days[0]?.date} – {week?.days.at(-1)?.date}
        </span>
      </div>
      {/* Each cell is the server's answer (GET /api/roster/week), computed as routing computes it. */}
      <table class="week" data-testid="roster-week">
        <thead>
          <tr>
            <th />
            {(week?.days ?? []).map((d) => (
              <th key={d.date}>
                {WEEKDAYS[lang][d.weekday - 1]}
                <div class="muted small">{d.date.slice(5)}</div>
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {(['day', 'night'] as const).map((shift) => (
            <tr key={shift}>
              <th>{t(lang, shift)}</th>
              {(week?.days ?? []).map((d) => {
                const c = d[shift];
                const isRunning = running?.date === d.date && running.shift === shift;
                const off = c.rotation.filter((id) => !c.staffIds.includes(id));
                return (
                  <td
                    key={d.date}
                    class={[c.staffIds.length === 0 ? 'gap' : '', isRunning ? 'running' : '']
                      .join(' ')
                      .trim()}
                    data-date={d.date}
                    data-shift={shift}
                    data-running={isRunning ? 'true' : undefined}
                  >
                    {isRunning && <div class="tag">{t(lang, 'runningShift')}</div>}
                    <ol data-testid="on-duty">
                      {c.staffIds.map((id) => (
                        <li key={id} data-staff-id={id} class={c.rotation.includes(id) ? '' : 'standin'}>
                          {who(id)}
                        </li>
                      ))}
                    </ol>
                    {off.map((id) => (
                      <div key={id} class="struck" data-off-id={id}>
                        {who(id)}
                      </div>
                    ))}
                    {c.overrides.map((o) => (
                      <div key={o.id} class="override">
                        {t(lang, o.kind)}: {o.staffId ? who(o.staffId) : ''}
                        {o.replacementId ? ` → ${who(o.replacementId)}` : ''}
                      </div>
                    ))}
                    {c.staffIds.length === 0 && <span class="warn">{t(lang, 'nobody')}</span>}
                  </td>
                );
              })}
            </tr>
          ))}
        </tbody>
      </table>
      <div class="admin-cols">
        <Form
          lang={lang}
          submit={t(lang, 'save')}
          onSubmit={(v) => {
            const form = document.querySelector<HTMLFormElement>('[data-testid=roster-form]');
            const weekdays = [
              ...(form?.querySelectorAll<HTMLInputElement>('input[name=weekdays]:checked') ?? []),
            ].map((i) => Number(i.value));
            const staffIds = order;
            if (staffIds.length === 0) return Promise.reject(new Error(`${t(lang, 'order')}: —`));
            const shift = v.shift as 'day' | 'night';
            const key = (e: { shift: string; weekdays: number[] }) =>
              `${e.shift}|${[...e.weekdays].sort().join(',')}`;
            const next = entries
              .filter((e) => key(e) !== key({ shift, weekdays }))
              .map(({ gridId: _g, ...e }) => e)
              .concat([{ shift, weekdays, staffIds }]);
            return api.setRoster(grid, next).then(() => {
              setOrder([]);
              return load();
            });
          }}
          testid="roster-form"
        >
          <label>
            {t(lang, 'roster')}
            <select name="shift">
              <option value="day">{t(lang, 'day')}</option>
              <option value="night">{t(lang, 'night')}</option>
            </select>
          </label>
          <fieldset>
            <legend>
              {t(lang, 'weekdays')} ({t(lang, 'everyDay')} = ∅)
            </legend>
            {WEEKDAYS[lang].map((d, i) => (
              <label key={d} class="check">
                <input type="checkbox" name="weekdays" value={String(i + 1)} /> {d}
              </label>
            ))}
          </fieldset>
          <fieldset data-testid="roster-order">
            <legend>{t(lang, 'order')}</legend>
            <ol>
              {order.map((id, i) => (
                <li key={id} data-staff-id={id}>
                  {names.get(id) ?? id}{' '}
                  <button
                    type="button"
                    aria-label={`↑ ${names.get(id) ?? id}`}
                    disabled={i === 0}
                    onClick={() => setOrder((o) => [...o.slice(0, i - 1), id, o[i - 1]!, ...o.slice(i + 1)])}
                  >
                    ↑
                  </button>
                  <button
                    type="button"
                    aria-label={`✕ ${names.get(id) ?? id}`}
                    onClick={() => setOrder((o) => o.filter((x) => x !== id))}
                  >
                    ✕
                  </button>
                </li>
              ))}
            </ol>
            <p class="small muted">{t(lang, 'responderOnly')}</p>
            <label>
              {t(lang, 'pickStaff')}
              <select
                name="pick"
                value=""
                onChange={(e) => {
                  const id = (e.target as HTMLSelectElement).value;
                  if (id) setOrder((o) => (o.includes(id) ? o : [...o, id]));
                }}
              >
                <option value="">—</option>
                {/* The grid's own people first, then anyone who may cover from elsewhere. */}
                {[...gridStaff, ...responders.filter((s) => !s.gridIds.includes(grid))]
                  .filter((s) => !s.disabled && !order.includes(s.id))
                  .map((s) => (
                    <option key={s.id} value={s.id}>
                      {s.name}
                      {s.roles.length ? ` · ${ROLE_NAMES[lang][s.roles[0]!] ?? s.roles[0]}` : ''}
                    </option>
                  ))}
              </select>
            </label>
          </fieldset>
        </Form>
        {running && (
          <OverrideForm
            key={`${grid}|${running.date}|${running.shift}`}
            lang={lang}
            session={session}
            running={running}
            gridStaff={gridStaff}
            staff={responders}
            onAdd={(o) => api.addOverride({ gridId: grid, ...o }).then(load)}
          />
        )}
        <OverrideList
          lang={lang}
          // From the shift in force on: at 01:20 the running night shift is dated yesterday and must stay
          // removable.
          overrides={overrides.filter((o) => o.date >= (running?.date ?? isoDate(session.now, session.zone)))}
          names={names}
          onDelete={(id) => api.deleteOverride(id).then(load)}
        />
      </div>
    </div>
  );
}
