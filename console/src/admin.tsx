/**
 * Admin pages (SPEC §4, §8): grids, households, devices (provisioning shows the new secret once, with a
 * copyable MQTT example), staff, and the roster as a week grid per grid with one-off overrides.
 */
import type { ComponentChildren } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import {
  type DeviceState,
  type Grid,
  type ImportProblem,
  type ImportResult,
  ROOMS,
  type Room,
  type Staff,
} from '../../dispatcher/api/types.ts';
import {
  api,
  type HouseholdFile,
  ImportError,
  type RosterEntry,
  type RosterOverride,
  type RosterWeekView,
  type SessionInfo,
  type ShiftInstance,
} from './api.ts';
import { addressText, formatDateTime, isoDate } from './format.ts';
import { GridSelect } from './grid-select.tsx';
import { KIND_NAMES, type Lang, ROLE_NAMES, room, t } from './i18n.ts';

const SECTIONS = ['grids', 'households', 'devices', 'staff', 'roster', 'importExport'] as const;
type Section = (typeof SECTIONS)[number];
const ROLES = [
  'grid_worker',
  'social_worker',
  'building_leader',
  'volunteer',
  'property_duty',
  'dispatcher',
  'supervisor',
  'admin',
];

export function AdminPage({ lang, session, section }: { lang: Lang; session: SessionInfo; section: string }) {
  const s: Section = (SECTIONS as readonly string[]).includes(section) ? (section as Section) : 'grids';
  return (
    <main class="page admin">
      <nav class="subnav" aria-label={t(lang, 'adminNav')}>
        {SECTIONS.map((x) => (
          <a key={x} href={`#/admin/${x}`} aria-current={x === s ? 'page' : undefined} data-section={x}>
            {t(lang, x)}
          </a>
        ))}
      </nav>
      {s === 'grids' && <GridsAdmin lang={lang} />}
      {s === 'households' && <HouseholdsAdmin lang={lang} />}
      {s === 'devices' && <DevicesAdmin lang={lang} zone={session.zone} mqttPort={session.mqttPort} />}
      {s === 'staff' && <StaffAdmin lang={lang} />}
      {s === 'roster' && <RosterAdmin lang={lang} session={session} />}
      {s === 'importExport' && <ImportExportAdmin lang={lang} />}
    </main>
  );
}

/** A form that hands its fields to `onSubmit` and shows the result or the server's message. */
function Form(p: {
  lang: Lang;
  onSubmit: (v: Record<string, string>) => Promise<unknown>;
  children: ComponentChildren;
  submit?: string;
  testid?: string;
}) {
  const [msg, setMsg] = useState<{ ok: boolean; text: string } | null>(null);
  return (
    <form
      class="admin-form"
      data-testid={p.testid}
      onSubmit={(e) => {
        e.preventDefault();
        const form = e.currentTarget as HTMLFormElement;
        const v = Object.fromEntries([...new FormData(form).entries()].map(([k, x]) => [k, String(x)]));
        setMsg(null);
        p.onSubmit(v).then(
          () => {
            setMsg({ ok: true, text: t(p.lang, 'created') });
            form.reset();
          },
          (err: Error) => setMsg({ ok: false, text: err.message }),
        );
      }}
    >
      {p.children}
      <button type="submit" class="primary">
        {p.submit ?? t(p.lang, 'add')}
      </button>
      {msg && (
        <p class={msg.ok ? 'ok' : 'error'} role="status">
          {msg.text}
        </p>
      )}
    </form>
  );
}

const Field = (p: {
  label: string;
  name: string;
  required?: boolean;
  type?: 'text' | 'number' | 'tel' | 'password' | 'date';
  placeholder?: string;
  value?: string;
}) => (
  <label>
    {p.label}
    <input
      name={p.name}
      required={p.required}
      type={(p.type ?? 'text') as 'text'}
      placeholder={p.placeholder}
      value={p.value}
    />
  </label>
);

function GridsAdmin({ lang }: { lang: Lang }) {
  const [grids, setGrids] = useState<Grid[]>([]);
  const load = () => api.grids().then((g) => setGrids(g.grids));
  useEffect(() => void load(), []);
  return (
    <div class="admin-cols">
      <table class="compact">
        <thead>
          <tr>
            <th>ID</th>
            <th>{t(lang, 'name')}</th>
            <th>{t(lang, 'community')}</th>
            <th>{t(lang, 'leader')}</th>
          </tr>
        </thead>
        <tbody>
          {grids.map((g) => (
            <tr key={g.id}>
              <td>{g.id}</td>
              <td>{g.name}</td>
              <td>{g.community}</td>
              <td>{g.leaderId ?? '—'}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <Form
        lang={lang}
        onSubmit={(v) =>
          api
            .saveGrid({ id: v.id!, name: v.name!, community: v.community!, leaderId: v.leaderId || null })
            .then(load)
        }
      >
        <Field label="ID" name="id" required />
        <Field label={t(lang, 'name')} name="name" required />
        <Field label={t(lang, 'community')} name="community" required />
        <Field label={t(lang, 'leader')} name="leaderId" />
      </Form>
    </div>
  );
}

function HouseholdsAdmin({ lang }: { lang: Lang }) {
  const [list, setList] = useState<HouseholdFile[]>([]);
  const [grids, setGrids] = useState<Grid[]>([]);
  const load = () => api.households().then((h) => setList(h.households));
  useEffect(() => {
    void load();
    api.grids().then((g) => setGrids(g.grids));
  }, []);
  return (
    <div class="admin-cols">
      <div class="scroll">
        <table class="compact">
          <thead>
            <tr>
              <th>ID</th>
              <th>{t(lang, 'grid')}</th>
              <th>{t(lang, 'address')}</th>
              <th>{t(lang, 'residents')}</th>
              <th>{t(lang, 'contacts')}</th>
            </tr>
          </thead>
          <tbody>
            {list.map((h) => (
              <tr key={h.id}>
                <td>{h.id}</td>
                <td>{h.gridId}</td>
                <td>{addressText(h.address)}</td>
                <td>{h.residents.map((r) => r.name).join('、')}</td>
                <td>{h.contacts.length}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <Form
        lang={lang}
        onSubmit={(v) =>
          api
            .saveHousehold({
              id: v.id,
              gridId: v.gridId,
              address: { building: v.building, unit: v.unit ?? '', room: v.room },
              residents: v.residentName
                ? [
                    {
                      name: v.residentName,
                      ...(v.age ? { age: Number(v.age) } : {}),
                      ...(v.phone ? { phone: v.phone } : {}),
                    },
                  ]
                : [],
              contacts:
                v.contactName && v.contactPhone
                  ? [
                      {
                        name: v.contactName,
                        relation: v.relation ?? '',
                        phone: v.contactPhone,
                        // NOTIFY-04: told of safety alerts only when this contact agreed to it.
                        ...(v.contactUpdates === 'on' ? { updates: true } : {}),
                      },
                    ]
                  : [],
              accessNotes: v.accessNotes ?? '',
            })
            .then(load)
        }
      >
        <Field label="ID" name="id" required />
        <GridSelect lang={lang} grids={grids} name="gridId" required />
        <Field label={t(lang, 'building')} name="building" required />
        <Field label={t(lang, 'unit')} name="unit" />
        <Field label={t(lang, 'room')} name="room" required />
        <Field label={`${t(lang, 'residents')} · ${t(lang, 'name')}`} name="residentName" />
        <Field label={t(lang, 'age')} name="age" type="number" />
        <Field label={t(lang, 'phone')} name="phone" type="tel" />
        <Field label={`${t(lang, 'contacts')} · ${t(lang, 'name')}`} name="contactName" />
        <Field label={t(lang, 'relation')} name="relation" />
        <Field label={`${t(lang, 'contacts')} · ${t(lang, 'phone')}`} name="contactPhone" type="tel" />
        <label class="check">
          <input type="checkbox" name="contactUpdates" data-testid="contact-updates" />
          {t(lang, 'familyUpdatesOptIn')}
        </label>
        <Field label={t(lang, 'accessNotes')} name="accessNotes" />
      </Form>
    </div>
  );
}

/**
 * The provisioning example, runnable as shown: the service's real MQTT port (not 1883 whatever MQTT_PORT
 * says), a `ts` from the machine's clock (a fixed date would be flagged clock_skew, SPEC §3), and a
 * heartbeat, which raises nothing. mosquitto_pub's clean DISCONNECT raises no DEVICE_OFFLINE (SPEC §5).
 */
function mqttExample(id: string, homeId: string, secret: string, port: number): string {
  const host = location.hostname || 'localhost';
  return [
    `mosquitto_pub -V mqttv311 -h ${host} -p ${port} -q 1 \\`,
    `  -i ${id} -u ${id} -P '${secret}' \\`,
    `  -t g365/v1/homes/${homeId}/devices/${id}/events \\`,
    `  -m '{"type":"heartbeat","ts":'"$(date +%s%3N)"',"battery":100}'`,
  ].join('\n');
}

function DevicesAdmin({ lang, zone, mqttPort }: { lang: Lang; zone: string; mqttPort: number }) {
  const [homes, setHomes] = useState<HouseholdFile[]>([]);
  const [home, setHome] = useState('');
  const [devices, setDevices] = useState<DeviceState[]>([]);
  const [issued, setIssued] = useState<{ id: string; homeId: string; secret: string } | null>(null);
  const [copied, setCopied] = useState(false);
  const [deviceError, setDeviceError] = useState<string | null>(null);
  useEffect(() => {
    api.households().then((h) => {
      setHomes(h.households);
      setHome(h.households[0]?.id ?? '');
    });
  }, []);
  const loadDevices = () =>
    home ? api.household(home).then((r) => setDevices(r.devices)) : Promise.resolve();
  useEffect(() => void loadDevices(), [home]);
  return (
    <div class="admin-cols">
      <div>
        <label>
          {t(lang, 'household')}{' '}
          <select name="home" value={home} onChange={(e) => setHome((e.target as HTMLSelectElement).value)}>
            {homes.map((h) => (
              <option key={h.id} value={h.id}>
                {h.id} · {addressText(h.address)}
              </option>
            ))}
          </select>
        </label>
        <table class="compact" data-testid="device-list">
          <thead>
            <tr>
              <th>ID</th>
              <th>{t(lang, 'kind')}</th>
              <th>{t(lang, 'room')}</th>
              <th>{t(lang, 'state')}</th>
              <th>{t(lang, 'battery')}</th>
              <th>{t(lang, 'rejecting')}</th>
              <th>{t(lang, 'lastSeen')}</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {devices.map((d) => (
              <tr key={d.id} data-device-id={d.id}>
                <td>
                  {d.id}
                  {d.disabled && <span class="tag red">{t(lang, 'disabled')}</span>}
                </td>
                <td>{KIND_NAMES[lang][d.kind] ?? d.kind}</td>
                <td>
                  {/* SPEC §3: rooms come from one vocabulary; a room the upgrade could not map shows its text. */}
                  <select
                    aria-label={t(lang, 'chooseRoom')}
                    data-testid="device-room"
                    value={d.room}
                    onChange={(e) =>
                      api
                        .setDeviceRoom(d.id, (e.target as HTMLSelectElement).value as Room)
                        .then(loadDevices, (err: Error) => setDeviceError(err.message))
                    }
                  >
                    {ROOMS.map((r) => (
                      <option key={r} value={r}>
                        {room(lang, r)}
                      </option>
                    ))}
                  </select>
                  {d.roomText && (
                    <span class="tag amber" title={t(lang, 'unmappedRoomsHint')}>
                      {t(lang, 'unmappedRooms')}: {d.roomText}
                    </span>
                  )}
                </td>
                <td class={d.online ? 'ok' : 'red'}>{d.online ? t(lang, 'online') : t(lang, 'offline')}</td>
                <td>{d.battery === null ? '—' : `${d.battery}%`}</td>
                <td>{d.rejectedCount}</td>
                <td>{d.lastSeenAt ? formatDateTime(d.lastSeenAt, zone, lang) : '—'}</td>
                <td class="admin-row-actions">
                  {/* SPEC §3: a disabled device is refused at connect and its session ends now. */}
                  <button
                    type="button"
                    data-testid="toggle-device"
                    class={d.disabled ? '' : 'danger'}
                    onClick={() =>
                      api
                        .setDeviceDisabled(d.id, !d.disabled)
                        .then(loadDevices, (e: Error) => setDeviceError(e.message))
                    }
                  >
                    {d.disabled ? t(lang, 'enable') : t(lang, 'disable')}
                  </button>
                  <button
                    type="button"
                    data-testid="rotate-secret"
                    onClick={() =>
                      api.rotateSecret(d.id).then(
                        (r) => {
                          setCopied(false);
                          setIssued({ id: r.id, homeId: d.homeId, secret: r.secret });
                        },
                        (e: Error) => setDeviceError(e.message),
                      )
                    }
                  >
                    {t(lang, 'rotateSecret')}
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        {deviceError && (
          <p class="error" role="status">
            {deviceError}
          </p>
        )}
      </div>
      <div>
        <Form
          lang={lang}
          testid="provision-form"
          submit={t(lang, 'provision')}
          onSubmit={(v) =>
            api.provision({ id: v.id!, homeId: home, kind: v.kind!, room: v.room! }).then((r) => {
              setCopied(false);
              setIssued({ id: r.id, homeId: home, secret: r.secret });
              return loadDevices();
            })
          }
        >
          <Field label="ID" name="id" required placeholder={`${home}-motion-living`} />
          <label>
            {t(lang, 'kind')}
            <select name="kind">
              {['fall', 'door', 'motion', 'button'].map((k) => (
                <option key={k} value={k}>
                  {KIND_NAMES[lang][k]}
                </option>
              ))}
            </select>
          </label>
          <label>
            {t(lang, 'room')}
            <select name="room" required>
              {ROOMS.map((r) => (
                <option key={r} value={r}>
                  {room(lang, r)}
                </option>
              ))}
            </select>
          </label>
        </Form>
        {issued && (
          <div class="secret" data-testid="issued-secret">
            <p class="warn">{t(lang, 'secretOnce')}</p>
            <code data-testid="secret">{issued.secret}</code>
            <h4>{t(lang, 'mqttExample')}</h4>
            <pre data-testid="mqtt-example">
              {mqttExample(issued.id, issued.homeId, issued.secret, mqttPort)}
            </pre>
            <button
              type="button"
              onClick={() =>
                navigator.clipboard
                  ?.writeText(mqttExample(issued.id, issued.homeId, issued.secret, mqttPort))
                  .then(
                    () => setCopied(true),
                    () => {},
                  )
              }
            >
              {copied ? t(lang, 'copied') : t(lang, 'copy')}
            </button>
          </div>
        )}
      </div>
    </div>
  );
}

function StaffAdmin({ lang }: { lang: Lang }) {
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
    <div class="admin-cols">
      <div class="scroll">
        <table class="compact">
          <thead>
            <tr>
              <th>{t(lang, 'name')}</th>
              <th>{t(lang, 'username')}</th>
              <th>{t(lang, 'roles')}</th>
              <th>{t(lang, 'grids')}</th>
              <th>{t(lang, 'phone')}</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {staff.map((s) => (
              <tr key={s.id} data-staff-id={s.id} class={s.disabled ? 'muted' : ''}>
                <td>
                  {s.name}
                  {s.disabled && <span class="tag red">{t(lang, 'disabled')}</span>}
                </td>
                <td>{s.username}</td>
                <td>{s.roles.map((r) => ROLE_NAMES[lang][r] ?? r).join('、')}</td>
                <td>{s.gridIds.map((g) => gridNames.get(g) ?? g).join('、')}</td>
                <td>{s.phone}</td>
                <td>
                  <button type="button" data-testid="edit-staff" onClick={() => setEditing(s.id)}>
                    {t(lang, 'edit')}
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {editing && staff.some((s) => s.id === editing) ? (
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
            {ROLES.map((r) => (
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
      )}
    </div>
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
  const [msg, setMsg] = useState<{ ok: boolean; text: string } | null>(null);
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
          {ROLES.map((r) => (
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
      {msg && (
        <p class={msg.ok ? 'ok' : 'error'} role="status">
          {msg.text}
        </p>
      )}
    </div>
  );
}

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
  const [msg, setMsg] = useState<{ ok: boolean; text: string } | null>(null);
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
      {msg && (
        <p class={msg.ok ? 'ok' : 'error'} role="status">
          {msg.text}
        </p>
      )}
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

const CSV_KINDS = ['grids', 'households', 'staff', 'roster', 'devices'] as const;

/**
 * Registry import and export (SPEC §4): the whole registry as JSON, each part as CSV for a spreadsheet.
 * An import is checked in full first; one bad row applies nothing, and every bad row is listed.
 */
function ImportExportAdmin({ lang }: { lang: Lang }) {
  const [kind, setKind] = useState<'json' | (typeof CSV_KINDS)[number]>('json');
  const [result, setResult] = useState<ImportResult | null>(null);
  const [problems, setProblems] = useState<ImportProblem[]>([]);
  const [error, setError] = useState<string | null>(null);
  return (
    <div class="admin-cols">
      <div class="admin-form" data-testid="export">
        <h3>{t(lang, 'exportJson')} / CSV</h3>
        <p>
          <a class="button" href="/api/registry/export" download data-testid="export-json">
            {t(lang, 'exportJson')}
          </a>
        </p>
        <p class="admin-row-actions">
          {CSV_KINDS.map((k) => (
            <a key={k} class="button" href={`/api/registry/export/${k}.csv`} download data-kind={k}>
              {t(lang, k)} CSV
            </a>
          ))}
        </p>
      </div>
      <form
        class="admin-form"
        data-testid="import-form"
        onSubmit={(e) => {
          e.preventDefault();
          const form = e.currentTarget as HTMLFormElement;
          const file = (form.elements.namedItem('file') as HTMLInputElement).files?.[0];
          if (!file) return;
          setResult(null);
          setProblems([]);
          setError(null);
          void file
            .text()
            .then((text) => {
              if (kind !== 'json') return api.importCsv(kind, text);
              let body: unknown;
              try {
                body = JSON.parse(text);
              } catch (err) {
                throw new Error(`JSON: ${(err as Error).message}`);
              }
              return api.importJson(body);
            })
            .then(setResult, (err: Error) => {
              setError(err.message);
              if (err instanceof ImportError) setProblems(err.errors);
            });
        }}
      >
        <h3>{kind === 'json' ? t(lang, 'importJson') : t(lang, 'importCsv')}</h3>
        <label>
          {t(lang, 'importKind')}
          <select
            name="kind"
            value={kind}
            onChange={(e) => setKind((e.target as HTMLSelectElement).value as 'json')}
          >
            <option value="json">JSON</option>
            {CSV_KINDS.map((k) => (
              <option key={k} value={k}>
                {t(lang, k)} CSV
              </option>
            ))}
          </select>
        </label>
        <label>
          {t(lang, 'importFile')}
          <input
            name="file"
            type="file"
            required
            accept={kind === 'json' ? '.json,application/json' : '.csv,text/csv'}
          />
        </label>
        <button type="submit" class="primary">
          {kind === 'json' ? t(lang, 'importJson') : t(lang, 'importCsv')}
        </button>
        {result && (
          <p class="ok" role="status" data-testid="import-result">
            {t(lang, 'imported')}: {CSV_KINDS.map((k) => `${t(lang, k)} ${result.imported[k]}`).join(' · ')}
          </p>
        )}
        {result && result.secrets.length > 0 && (
          <div class="secret" data-testid="import-secrets">
            <p class="warn">{t(lang, 'secretOnce')}</p>
            <table class="compact">
              <tbody>
                {result.secrets.map((x) => (
                  <tr key={x.id}>
                    <td>{x.id}</td>
                    <td>
                      <code>{x.secret}</code>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
        {error && (
          <p class="error" role="status" data-testid="import-error">
            {error}
          </p>
        )}
        {problems.length > 0 && (
          <table class="compact" data-testid="import-problems">
            <tbody>
              {problems.map((x) => (
                <tr key={`${x.row}|${x.field}`}>
                  <td>{x.row}</td>
                  <td>{x.field}</td>
                  <td>{x.message}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </form>
    </div>
  );
}

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

function RosterAdmin({ lang, session }: { lang: Lang; session: SessionInfo }) {
  const [grids, setGrids] = useState<Grid[]>([]);
  const [grid, setGrid] = useState('');
  const [staff, setStaff] = useState<Staff[]>([]);
  const [entries, setEntries] = useState<RosterEntry[]>([]);
  const [overrides, setOverrides] = useState<RosterOverride[]>([]);
  const [week, setWeek] = useState<RosterWeekView | null>(null);
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
      ? Promise.all([api.roster(grid), api.rosterWeek(grid)]).then(([r, w]) => {
          setEntries(r.entries);
          setOverrides(r.overrides);
          setWeek(w);
        })
      : Promise.resolve();
  useEffect(() => void load(), [grid]);
  const gridStaff = staff.filter((s) => s.gridIds.includes(grid));
  // The shift in force now, dated by the day it started: at 01:20 that is last evening's night shift.
  const running = week?.running ?? null;
  const who = (id: string) => names.get(id) ?? id;
  return (
    <div>
      <GridSelect lang={lang} grids={grids} name="grid" value={grid} onChange={setGrid} />
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
                {[...gridStaff, ...staff.filter((s) => !s.gridIds.includes(grid))]
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
            staff={staff}
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
