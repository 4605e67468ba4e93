/**
 * Devices of one household (SPEC §3): provisioning shows the new secret once, with a copyable MQTT
 * example; room from the vocabulary, disable, rotate the secret.
 */
import { useEffect, useState } from 'preact/hooks';
import { type DeviceState, ROOMS, type Room } from '../../../dispatcher/api/types.ts';
import { api, type HouseholdFile } from '../api.ts';
import { addressText, formatDateTime } from '../format.ts';
import { KIND_NAMES, type Lang, room, t } from '../i18n.ts';
import { Field, Form } from './form.tsx';

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

export function DevicesAdmin({ lang, zone, mqttPort }: { lang: Lang; zone: string; mqttPort: number }) {
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
