/**
 * Devices across households (SPEC §3): filtered by grid, household and health (offline, low battery,
 * rejected messages, never seen, disabled); kind and room corrected in place (room from the vocabulary);
 * disable, rotate the secret, retire. Provisioning shows the new secret once, with a copyable MQTT example.
 */
import { useEffect, useState } from 'preact/hooks';
import {
  type DeviceFilter,
  type DeviceListView,
  type Grid,
  ROOMS,
  type Room,
} from '../../../dispatcher/api/types.ts';
import { api, type HouseholdFile } from '../api.ts';
import { addressText, formatDateTime } from '../format.ts';
import { GridSelect } from '../grid-select.tsx';
import { type Key, KIND_NAMES, type Lang, room, t } from '../i18n.ts';
import { Field, Form, RecordTable } from './form.tsx';
import { RetireButton } from './retire-button.tsx';

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

/** The registered kinds (SPEC §3), as the vocabulary names them. */
const kinds = (lang: Lang) => Object.keys(KIND_NAMES[lang]);
const FILTERS: DeviceFilter[] = ['offline', 'low_battery', 'rejecting', 'never_seen', 'disabled'];
type Row = DeviceListView['devices'][number];

export function DevicesAdmin({ lang, zone, mqttPort }: { lang: Lang; zone: string; mqttPort: number }) {
  const [homes, setHomes] = useState<HouseholdFile[]>([]);
  const [grids, setGrids] = useState<Grid[]>([]);
  const [home, setHome] = useState('');
  const [grid, setGrid] = useState('');
  const [filter, setFilter] = useState<DeviceFilter | ''>('');
  const [devices, setDevices] = useState<Row[]>([]);
  const [more, setMore] = useState(false);
  const [issued, setIssued] = useState<{ id: string; homeId: string; secret: string } | null>(null);
  const [copied, setCopied] = useState(false);
  const [deviceError, setDeviceError] = useState<string | null>(null);
  useEffect(() => {
    api.households().then((h) => setHomes(h.households));
    api.grids().then((g) => setGrids(g.grids));
  }, []);
  const loadDevices = () =>
    api.devices({ filter: filter || undefined, grid: grid || undefined, household: home || undefined }).then(
      (r) => {
        setDevices(r.devices);
        setMore(r.more);
      },
      (e: Error) => setDeviceError(e.message),
    );
  // Fresh on every choice of filter, grid or household: another admin (or an upgrade) may have changed them.
  useEffect(() => void loadDevices(), [filter, grid, home]);
  const shown = devices;
  const fail = (e: Error) => setDeviceError(e.message);
  const patch = (id: string, p: { room?: Room; kind?: string }) =>
    api.updateDevice(id, p).then(loadDevices, fail);
  return (
    <div class="admin-cols">
      <div class="scroll">
        <div class="admin-filters" data-testid="device-filters">
          <GridSelect lang={lang} grids={grids} name="grid" value={grid} onChange={setGrid} all />
          <label>
            {t(lang, 'household')}{' '}
            <select name="home" value={home} onChange={(e) => setHome((e.target as HTMLSelectElement).value)}>
              <option value="">{t(lang, 'allHouseholds')}</option>
              {homes
                .filter((h) => !grid || h.gridId === grid)
                .map((h) => (
                  <option key={h.id} value={h.id}>
                    {h.id} · {addressText(h.address)}
                  </option>
                ))}
            </select>
          </label>
          <label>
            {t(lang, 'deviceFilter')}{' '}
            <select
              name="filter"
              value={filter}
              onChange={(e) => setFilter((e.target as HTMLSelectElement).value as DeviceFilter | '')}
            >
              <option value="">{t(lang, 'filterAll')}</option>
              {FILTERS.map((f) => (
                <option key={f} value={f}>
                  {t(lang, `filter_${f}` as Key)}
                </option>
              ))}
            </select>
          </label>
          <span class="muted small" data-testid="device-count">
            {shown.length} {t(lang, 'deviceCount')}
          </span>
          {more && (
            <span class="muted small" data-testid="device-more">
              {t(lang, 'moreDevices')}
            </span>
          )}
        </div>
        <RecordTable
          testid="device-list"
          rows={shown}
          rowKey={(d) => d.id}
          rowProps={(d) => ({ 'data-device-id': d.id })}
          columns={[
            {
              head: 'ID',
              cell: (d) => (
                <>
                  {d.id}
                  {d.disabled && <span class="tag red">{t(lang, 'disabled')}</span>}
                </>
              ),
            },
            { head: t(lang, 'household'), cell: (d) => addressText(d.address) },
            {
              head: t(lang, 'kind'),
              cell: (d) => (
                <select
                  aria-label={t(lang, 'kind')}
                  data-testid="device-kind"
                  value={d.kind}
                  onChange={(e) => void patch(d.id, { kind: (e.target as HTMLSelectElement).value })}
                >
                  {kinds(lang).map((k) => (
                    <option key={k} value={k}>
                      {KIND_NAMES[lang][k]}
                    </option>
                  ))}
                </select>
              ),
            },
            {
              head: t(lang, 'room'),
              cell: (d) => (
                <>
                  {/* SPEC §3: rooms come from one vocabulary; a room the upgrade could not map shows its text. */}
                  <select
                    aria-label={t(lang, 'chooseRoom')}
                    data-testid="device-room"
                    value={d.room}
                    onChange={(e) =>
                      void patch(d.id, { room: (e.target as HTMLSelectElement).value as Room })
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
                </>
              ),
            },
            {
              head: t(lang, 'state'),
              class: (d) => (d.online ? 'ok' : 'red'),
              cell: (d) =>
                d.online
                  ? t(lang, 'online')
                  : d.lastSeenAt === null
                    ? t(lang, 'neverSeen')
                    : t(lang, 'offline'),
            },
            {
              head: t(lang, 'battery'),
              class: (d) => (d.lowBattery ? 'red' : undefined),
              cell: (d) => (d.battery === null ? '—' : `${d.battery}%`),
            },
            { head: t(lang, 'rejecting'), cell: (d) => d.rejectedCount },
            {
              head: t(lang, 'lastSeen'),
              cell: (d) => (d.lastSeenAt ? formatDateTime(d.lastSeenAt, zone, lang) : '—'),
            },
            {
              head: '',
              class: () => 'admin-row-actions',
              cell: (d) => (
                <>
                  {/* SPEC §3: a disabled device is refused at connect and its session ends now. */}
                  <button
                    type="button"
                    data-testid="toggle-device"
                    class={d.disabled ? '' : 'danger'}
                    onClick={() => api.setDeviceDisabled(d.id, !d.disabled).then(loadDevices, fail)}
                  >
                    {d.disabled ? t(lang, 'enable') : t(lang, 'disable')}
                  </button>
                  <button
                    type="button"
                    data-testid="rotate-secret"
                    onClick={() =>
                      api.rotateSecret(d.id).then((r) => {
                        setCopied(false);
                        setIssued({ id: r.id, homeId: d.homeId, secret: r.secret });
                      }, fail)
                    }
                  >
                    {t(lang, 'rotateSecret')}
                  </button>
                  <RetireButton
                    lang={lang}
                    kind="devices"
                    id={d.id}
                    onDone={loadDevices}
                    onError={(text) => setDeviceError(text)}
                  />
                </>
              ),
            },
          ]}
        />
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
            api.provision({ id: v.id!, homeId: v.homeId!, kind: v.kind!, room: v.room! }).then((r) => {
              setCopied(false);
              setIssued({ id: r.id, homeId: v.homeId!, secret: r.secret });
              return loadDevices();
            })
          }
        >
          <label>
            {t(lang, 'household')}
            <select name="homeId" required value={home || homes[0]?.id}>
              {homes.map((h) => (
                <option key={h.id} value={h.id}>
                  {h.id} · {addressText(h.address)}
                </option>
              ))}
            </select>
          </label>
          <Field label="ID" name="id" required placeholder={`${home || 'home'}-motion-living`} />
          <label>
            {t(lang, 'kind')}
            <select name="kind">
              {kinds(lang).map((k) => (
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
