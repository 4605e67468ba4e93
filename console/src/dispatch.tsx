/**
 * The dispatch-room screen (SPEC §8), built for a 1920×1080 wall screen read from three metres: the live
 * queue ordered by severity and SLA time left, a countdown per alert (amber at 12 min, red at 15, SPEC §6),
 * filters, a sound per new critical alert, who is on duty per grid, device health and today's figures.
 * One click (or Enter) opens an alert's actions; one click on the household opens its file.
 */

import { useCallback, useEffect, useMemo, useRef, useState } from 'preact/hooks';
import {
  type Alert,
  type ChannelHealth,
  type ClusterView,
  type DutyGapReport,
  type DutyView,
  type HandoverReport,
  type MaintenanceQueue,
  OPEN_STATES,
  type Severity,
  type Staff,
  type SystemHealthReport,
  type SystemWarning,
  slaShareDetail,
} from '../../dispatcher/api/types.ts';
import { AlertPanel } from './alert-panel.tsx';
import { api, type DeviceHealth, type SessionInfo, type TodayFigures } from './api.ts';
import { FirstStart } from './first-start.tsx';
import { addressText, formatTime, percent } from './format.ts';
import { HouseholdDrawer } from './household.tsx';
import { KIND_NAMES, type Lang, RULE_NAMES, room, SEVERITY_NAMES, STATE_NAMES, t } from './i18n.ts';
import { formatCountdown, serviceNow, useLiveAlerts, useTick } from './live.ts';
import { beep } from './sound.ts';
import { keepUnreachable, type Unreachable, unreachableOn } from './unreachable.ts';

const SEVERITY_RANK: Record<Severity, number> = { critical: 0, high: 1, medium: 2, technical: 3 };
const OPEN = new Set<string>(OPEN_STATES);
const AMBER_MS = 12 * 60_000;
const RED_MS = 15 * 60_000;

/** Queue order (SPEC §8): severity first, then the least SLA time left; alerts without an SLA last. */
export function queueOrder(a: Alert, b: Alert): number {
  const s = SEVERITY_RANK[a.severity] - SEVERITY_RANK[b.severity];
  if (s !== 0) return s;
  const due = (x: Alert) =>
    x.onSiteAt !== null ? Number.MAX_SAFE_INTEGER - 1 : (x.onSiteDueAt ?? Number.MAX_SAFE_INTEGER);
  return due(a) - due(b) || a.raisedAt - b.raisedAt;
}

export function countdownTone(a: Alert, now: number): '' | 'amber' | 'red' | 'ok' {
  if (a.onSiteAt !== null) return 'ok';
  if (a.onSiteDueAt === null) return '';
  const elapsed = now - a.raisedAt;
  if (a.slaBreached || elapsed >= RED_MS) return 'red';
  if (a.slaAtRisk || elapsed >= AMBER_MS) return 'amber';
  return '';
}

function usePoll<T>(load: () => Promise<T>, everyMs: number, deps: unknown[] = []): [T | null, () => void] {
  const [value, setValue] = useState<T | null>(null);
  const reload = useCallback(() => {
    load().then(setValue, () => {});
  }, deps);
  useEffect(() => {
    reload();
    const h = setInterval(reload, everyMs);
    return () => clearInterval(h);
  }, [reload, everyMs]);
  return [value, reload];
}

export function DispatchScreen({
  lang,
  session,
  householdLink,
}: {
  lang: Lang;
  session: SessionInfo;
  /** `#/dispatch/household/{id}` opens that household's file (a link a dispatcher can share). */
  householdLink: string | null;
}) {
  const zone = session.zone;
  const canAct = session.permissions.includes('alerts.act.all');
  // SPEC §4, §6, §7: unstaffed grids, the handover list, failing channels and door-opened arrivals arrive
  // live; the current state of each is loaded once on open and again after a reconnect.
  const [gaps, setGaps] = useState<{ upcoming: DutyGapReport | null; now: DutyGapReport | null }>({
    upcoming: null,
    now: null,
  });
  const [handover, setHandover] = useState<HandoverReport | null>(null);
  const [channels, setChannels] = useState<Map<string, ChannelHealth>>(new Map());
  const [system, setSystem] = useState<SystemHealthReport | null>(null);
  const [arrivals, setArrivals] = useState<Map<string, number>>(new Map());
  const [maintenance, setMaintenance] = useState<MaintenanceQueue | null>(null);
  const [unreachable, setUnreachable] = useState<Unreachable[]>([]);
  /** SLA breaches this person was told of (SPEC §6: the supervisors of the community), by alert id. */
  const [told, setTold] = useState<Map<string, number>>(new Map());
  const maintenanceRef = useRef<HTMLElement | null>(null);
  const loadNotices = useCallback(() => {
    api.dutyGaps('upcoming').then(
      (r) => setGaps((g) => ({ ...g, upcoming: r })),
      () => {},
    );
    api.dutyGaps('now').then(
      (r) => setGaps((g) => ({ ...g, now: r })),
      () => {},
    );
    api.handover().then(setHandover, () => {});
    api.notifyHealth().then(
      (r) => setChannels(new Map(r.channels.map((c) => [c.channel, c]))),
      () => {},
    );
    api.maintenance().then(setMaintenance, () => {});
    api.systemHealth().then(setSystem, () => {});
  }, []);
  useEffect(loadNotices, []);
  const live = useLiveAlerts(
    (n) => {
      if (n.reason === 'sla_breach') setTold((m) => new Map(m).set(n.alertId, serviceNow()));
    },
    {
      dutyGap: (r) => setGaps((g) => ({ ...g, [r.phase]: r })),
      handover: setHandover,
      channelHealth: (c) => setChannels((m) => new Map(m).set(c.channel, c)),
      systemHealth: setSystem,
      arrivalSuggested: (p) => setArrivals((m) => new Map(m).set(p.alertId, p.doorAt)),
      responderUnreachable: (u) => setUnreachable((l) => keepUnreachable(l, u)),
      reconnected: loadNotices,
    },
  );
  const now = useTick();
  const [duty] = usePoll(() => api.duty().then((d) => d.duty), 60_000);
  const [today, reloadToday] = usePoll<TodayFigures>(() => api.today(), 30_000);
  const [health] = usePoll<DeviceHealth>(() => api.deviceHealth(), 30_000);
  const [staff, setStaff] = useState<Staff[]>([]);
  const [addresses, setAddresses] = useState<Map<string, string>>(new Map());
  const [gridFilter, setGridFilter] = useState('');
  const [stateFilter, setStateFilter] = useState('');
  const [selected, setSelected] = useState<string | null>(null);
  const [household, setHousehold] = useState<string | null>(householdLink || null);
  useEffect(() => {
    if (householdLink) setHousehold(householdLink);
  }, [householdLink]);
  const [sound, setSound] = useState(false);
  /** How many alarms sounded: shown to no one, read by the browser test. */
  const [beeps, setBeeps] = useState(0);
  const audio = useRef<AudioContext | null>(null);
  const names = useMemo(() => new Map(staff.map((p) => [p.id, p.name])), [staff]);
  const gridNames = useMemo(() => new Map((duty ?? []).map((d) => [d.gridId, d.gridName])), [duty]);

  useEffect(() => {
    api.staff().then(
      (s) => setStaff(s.staff),
      () => {},
    );
    api.households().then(
      (h) => setAddresses(new Map(h.households.map((x) => [x.id, addressText(x.address)]))),
      () => {},
    );
  }, []);

  // A sound for each new critical alert (after a click enabled audio: browsers block autoplay). Today's
  // figures follow every change, a second later so a burst of changes costs one request.
  useEffect(() => {
    const e = live.lastEvent;
    if (!e) return;
    if (sound && audio.current && e.action === 'raised' && e.alert.severity === 'critical') {
      beep(audio.current);
      setBeeps((n) => n + 1);
    }
    const technical = e.alert.severity === 'technical';
    const h = setTimeout(() => {
      reloadToday();
      // The maintenance queue is technical alerts: it changes only when one does.
      if (technical) api.maintenance().then(setMaintenance, () => {});
    }, 1000);
    return () => clearTimeout(h);
  }, [live.lastEvent, sound]);

  // SPEC §6: technical alerts belong to the maintenance queue only; the main queue counts them and links
  // there, so a burst of device disconnects never pushes a safety alert down the screen.
  const openAll = useMemo(
    () => [...live.alerts.values()].filter((a) => OPEN.has(a.state)).sort(queueOrder),
    [live.alerts],
  );
  const all = openAll.filter((a) => a.severity !== 'technical');
  const technicalOpen = openAll.length - all.length;
  const queue = all.filter(
    (a) => (!gridFilter || a.gridId === gridFilter) && (!stateFilter || a.state === stateFilter),
  );
  const breachedOpen = all.filter((a) => a.slaBreached).length;
  const selectedAlert = selected ? (live.alerts.get(selected) ?? null) : null;

  return (
    <main class="dispatch">
      {!live.connected && (
        <div class="banner" role="alert" data-testid="offline-banner">
          {t(lang, 'disconnected')}
        </div>
      )}
      <section class="queue" aria-label={t(lang, 'queue')}>
        <FirstStart lang={lang} session={session} />
        <div class="figures" data-testid="today">
          <Figure label={`${t(lang, 'openAlerts')}`} value={String(all.length)} testid="open-count" />
          <Figure
            label={`${t(lang, 'today')} · ${t(lang, 'acceptedIn3')}`}
            value={today ? percent(today.acceptedShare) : '—'}
            sub={today ? slaShareDetail(lang, 'accept', today) : ''}
            testid="accepted-3"
          />
          <Figure
            label={`${t(lang, 'today')} · ${t(lang, 'onSiteIn15')}`}
            value={today ? percent(today.onSiteShare) : '—'}
            sub={today ? slaShareDetail(lang, 'onSite', today) : ''}
            testid="on-site-15"
          />
          <Figure
            label={`${t(lang, 'today')} · ${t(lang, 'breaches')}`}
            value={today ? String(today.breaches) : '—'}
            sub={breachedOpen ? `${t(lang, 'openAlerts')} ${breachedOpen}` : ''}
            tone={today && today.breaches > 0 ? 'red' : ''}
            testid="breaches"
          />
        </div>
        <header class="section-head">
          <h2>{t(lang, 'queue')}</h2>
          {/* CONSOLE-04: find any household, with or without an alert. */}
          <a href="#/search" class="button" data-testid="search-link">
            {t(lang, 'searchNav')}
          </a>
          {canAct && (
            // ALERT-03: a call to the dispatch room becomes an incident from the search page.
            <a href="#/search/call" class="button primary" data-testid="phone-report-link">
              {t(lang, 'phoneReport')}
            </a>
          )}
          {technicalOpen > 0 && (
            <button
              type="button"
              class="link technical-link"
              data-testid="technical-count"
              data-count={technicalOpen}
              onClick={() => {
                maintenanceRef.current?.scrollIntoView({ block: 'start' });
                maintenanceRef.current?.focus();
              }}
            >
              {t(lang, 'technicalInQueue')} {technicalOpen} · {t(lang, 'seeMaintenance')} →
            </button>
          )}
          <div class="filters">
            <label>
              <span class="sr-only">{t(lang, 'grid')}</span>
              <select
                name="grid"
                value={gridFilter}
                onChange={(e) => setGridFilter((e.target as HTMLSelectElement).value)}
              >
                <option value="">{t(lang, 'allGrids')}</option>
                {(duty ?? []).map((d) => (
                  <option key={d.gridId} value={d.gridId}>
                    {d.gridName}
                  </option>
                ))}
              </select>
            </label>
            <label>
              <span class="sr-only">{t(lang, 'state')}</span>
              <select
                name="state"
                value={stateFilter}
                onChange={(e) => setStateFilter((e.target as HTMLSelectElement).value)}
              >
                <option value="">{t(lang, 'allStates')}</option>
                {OPEN_STATES.map((s) => (
                  <option key={s} value={s}>
                    {STATE_NAMES[lang][s]}
                  </option>
                ))}
              </select>
            </label>
            <button
              type="button"
              class={sound ? 'on' : ''}
              aria-pressed={sound}
              data-testid="sound"
              data-beeps={beeps}
              onClick={() => {
                audio.current ??= new AudioContext();
                void audio.current.resume();
                setSound(true);
              }}
            >
              {sound ? t(lang, 'soundOn') : t(lang, 'enableSound')}
            </button>
          </div>
        </header>
        <table class="alerts">
          <colgroup>
            <col style="width:7%" />
            <col style="width:25%" />
            <col style="width:20%" />
            <col style="width:10%" />
            <col style="width:10%" />
            <col style="width:12%" />
            <col style="width:16%" />
          </colgroup>
          <thead>
            <tr>
              <th>{t(lang, 'severity')}</th>
              <th>{t(lang, 'rule')}</th>
              <th>{t(lang, 'household')}</th>
              <th>{t(lang, 'grid')}</th>
              <th>{t(lang, 'state')}</th>
              <th>{t(lang, 'assignee')}</th>
              <th>{t(lang, 'countdown')}</th>
            </tr>
          </thead>
          <tbody>
            {queue.length === 0 && (
              <tr>
                <td colSpan={7} class="empty">
                  {t(lang, 'noAlerts')}
                </td>
              </tr>
            )}
            {queue.map((a) => (
              <AlertRow
                key={a.id}
                gridName={gridNames.get(a.gridId) ?? a.gridId}
                a={a}
                lang={lang}
                zone={zone}
                now={now}
                selected={a.id === selected}
                assignee={a.assigneeId ? (names.get(a.assigneeId) ?? a.assigneeId) : '—'}
                doorAt={a.state === 'en_route' ? (arrivals.get(a.id) ?? a.arrivalSuggestedAt ?? null) : null}
                address={addresses.get(a.householdId)}
                unreachable={unreachableOn(unreachable, a.id).map((id) => names.get(id) ?? id)}
                names={names}
                onSelect={() => setSelected(a.id)}
                onHousehold={() => setHousehold(a.householdId)}
              />
            ))}
          </tbody>
        </table>
      </section>
      <aside class="side">
        <Notices
          lang={lang}
          zone={zone}
          channels={[...channels.values()].filter((c) => c.status === 'failing')}
          system={system?.warnings ?? []}
          gaps={[gaps.now, gaps.upcoming].filter((g): g is DutyGapReport => !!g && g.grids.length > 0)}
          handover={handover}
          names={names}
          addresses={addresses}
          breached={all.filter((a) => a.slaBreached)}
          told={told}
          onAlert={(id) => setSelected(id)}
        />
        {system?.cluster && <ClusterPanel lang={lang} cluster={system.cluster} />}
        <section class="panel duty" aria-label={t(lang, 'onDuty')}>
          <h2>{t(lang, 'onDuty')}</h2>
          {(duty ?? []).map((d: DutyView) => (
            <div class="duty-grid" key={d.gridId} data-grid={d.gridId}>
              <h3>
                {d.gridName} · {t(lang, d.shift)}
              </h3>
              {d.staff.length === 0 ? (
                <p class="warn">{t(lang, 'nobody')}</p>
              ) : (
                <ol>
                  {d.staff.map((s) => (
                    <li key={s.id}>{s.name}</li>
                  ))}
                </ol>
              )}
            </div>
          ))}
        </section>
        <section class="panel health" aria-label={t(lang, 'deviceHealth')} data-testid="device-health">
          <h2>{t(lang, 'deviceHealth')}</h2>
          {health && (
            <>
              <div class="health-counts">
                <span class={health.offline ? 'warn' : ''}>
                  {t(lang, 'offline')} <b data-testid="offline-count">{health.offline}</b>
                </span>
                <span class={health.lowBattery ? 'warn' : ''}>
                  {t(lang, 'lowBattery')} <b>{health.lowBattery}</b>
                </span>
                <span class={health.rejecting ? 'warn' : ''}>
                  {t(lang, 'rejecting')} <b>{health.rejecting}</b>
                </span>
                <span class="muted">
                  {t(lang, 'online')} {health.online}/{health.total}
                </span>
              </div>
              {health.unmappedRooms.length > 0 && (
                <div data-testid="unmapped-rooms">
                  <p class="warn" title={t(lang, 'unmappedRoomsHint')}>
                    {t(lang, 'unmappedRooms')} <b>{health.unmappedRooms.length}</b>
                  </p>
                  <ul class="problems">
                    {health.unmappedRooms.slice(0, 8).map((d) => (
                      <li key={d.id}>
                        <button type="button" class="link" onClick={() => setHousehold(d.homeId)}>
                          {addresses.get(d.homeId) ?? d.homeId}
                        </button>{' '}
                        {KIND_NAMES[lang][d.kind] ?? d.kind} {d.id} ·{' '}
                        <span class="tag amber">“{d.roomText}”</span>
                      </li>
                    ))}
                  </ul>
                </div>
              )}
              {health.problems.length === 0 ? (
                health.unmappedRooms.length === 0 && <p class="muted">{t(lang, 'devicesOk')}</p>
              ) : (
                <ul class="problems">
                  {health.problems.slice(0, 8).map((d) => (
                    <li key={d.id}>
                      <button type="button" class="link" onClick={() => setHousehold(d.homeId)}>
                        {addresses.get(d.homeId) ?? d.homeId}
                      </button>{' '}
                      {KIND_NAMES[lang][d.kind] ?? d.kind} · {room(lang, d.room)}{' '}
                      <span class="tags">
                        {!d.online && <span class="tag red">{t(lang, 'offline')}</span>}
                        {d.lowBattery && <span class="tag amber">{d.battery}%</span>}
                        {d.rejectedCount > 0 && (
                          <span class="tag">
                            {t(lang, 'rejecting')} {d.rejectedCount}
                          </span>
                        )}
                      </span>
                    </li>
                  ))}
                </ul>
              )}
            </>
          )}
        </section>
        <MaintenancePanel
          panelRef={maintenanceRef}
          lang={lang}
          zone={zone}
          maintenance={maintenance}
          addresses={addresses}
          onHousehold={setHousehold}
        />
        <p class="muted small">
          {t(lang, 'timesIn')}: {zone} · {formatTime(now, zone, lang)}
        </p>
      </aside>
      {selectedAlert && (
        <AlertPanel
          lang={lang}
          zone={zone}
          alert={selectedAlert}
          now={now}
          canAct={canAct}
          staff={staff}
          address={addresses.get(selectedAlert.householdId)}
          onClose={() => setSelected(null)}
          onHousehold={() => setHousehold(selectedAlert.householdId)}
        />
      )}
      {household && (
        <HouseholdDrawer
          lang={lang}
          session={session}
          householdId={household}
          onClose={() => setHousehold(null)}
        />
      )}
    </main>
  );
}

const SYSTEM_TITLES = {
  disk_low: 'sysDiskLow',
  disk_full: 'sysDiskFull',
  event_log_failing: 'sysEventLogFailing',
  telemetry_failing: 'sysTelemetryFailing',
  login_flood: 'sysLoginFlood',
  live_relay_down: 'sysLiveRelayDown',
} as const;

/**
 * CLU-08: the dispatcher instances and the communities each works for (separate dispatchers only), how
 * many communities each holds, and the nodes this screen saw that are no longer live (killed, crashed or
 * stopped: the others took over their communities, and the operator should know one is down) until a node
 * of that name is back.
 */
function ClusterPanel(p: { lang: Lang; cluster: ClusterView }) {
  const { lang, cluster } = p;
  const name = (lease: string) => (lease.startsWith('~') ? t(lang, 'clusterDutyWatch') : lease);
  /** An instance's name: its INSTANCE_ID (the holder is `INSTANCE_ID/pid/random`). */
  const nodeName = (id: string) => id.split('/')[0]!;
  const seen = useRef(new Set<string>());
  const live = new Set(cluster.instances.map((i) => nodeName(i.id)));
  const gone = [...seen.current].filter((n) => !live.has(n));
  for (const n of live) seen.current.add(n);
  return (
    <section class="panel cluster" aria-label={t(lang, 'clusterNodes')} data-testid="cluster">
      <h2>{t(lang, 'clusterNodes')}</h2>
      <ul>
        {cluster.instances.map((i) => {
          const communities = i.leases.filter((l) => !l.startsWith('~')).length;
          return (
            <li key={i.id} data-instance={i.id} data-communities={communities}>
              <b>
                {nodeName(i.id)}
                {i.id === cluster.self ? ` (${t(lang, 'clusterThis')})` : ''}
              </b>
              {` · ${communities} ${t(lang, 'clusterCommunities')}: `}
              {i.leases.length ? i.leases.map(name).join(', ') : t(lang, 'clusterNone')}
            </li>
          );
        })}
        {gone.map((n) => (
          <li key={`gone:${n}`} class="warn" data-gone={n}>
            <b>{n}</b> · {t(lang, 'clusterGone')}
          </li>
        ))}
      </ul>
      {cluster.free.length > 0 && (
        <p class="warn">
          {t(lang, 'clusterFree')}: {cluster.free.map(name).join(', ')}
        </p>
      )}
    </section>
  );
}

const mb = (bytes: unknown) => `${Math.round(Number(bytes) / 1024 / 1024)} MB`;

/** One of the edge's faults (SPEC §9, §12): disk, event log, telemetry, logins; red while devices are held. */
function SystemNotice(p: { lang: Lang; zone: string; warning: SystemWarning }) {
  const { lang, warning: w } = p;
  const d = w.detail;
  const red = w.kind === 'disk_full' || w.kind === 'event_log_failing';
  const figures =
    w.kind === 'disk_low' || w.kind === 'disk_full'
      ? `${d.path} · ${t(lang, 'sysFree')} ${mb(d.freeBytes)} / ${mb(d.totalBytes)}`
      : w.kind === 'telemetry_failing'
        ? `${t(lang, 'sysBuffered')} ${d.buffered}`
        : w.kind === 'login_flood'
          ? `${d.perMinute} ${t(lang, 'sysPerMinute')}`
          : String(d.reason ?? '');
  return (
    <div
      class={`notice ${red ? 'red' : 'amber'}`}
      role="alert"
      data-testid="system-warning"
      data-kind={w.kind}
    >
      <b>
        {t(lang, SYSTEM_TITLES[w.kind])} · {formatTime(w.since, p.zone, lang)}
      </b>
      <span>{figures}</span>
    </div>
  );
}

/** Warnings first (the edge's faults, failing channels, unstaffed grids), then the handover list. */
function Notices(p: {
  lang: Lang;
  zone: string;
  channels: ChannelHealth[];
  system: SystemWarning[];
  gaps: DutyGapReport[];
  handover: HandoverReport | null;
  names: Map<string, string>;
  addresses: Map<string, string>;
  /** Open safety alerts whose SLA is breached: said in words, first (SPEC §6). */
  breached: Alert[];
  /** The breaches this person was told of (a supervisor of that community). */
  told: Map<string, number>;
  onAlert: (id: string) => void;
}) {
  const { lang } = p;
  return (
    <>
      {p.breached.map((a) => (
        <div
          class="notice red"
          role="alert"
          key={`breach-${a.id}`}
          data-testid="breach-notice"
          data-alert-id={a.id}
        >
          <b>
            <button type="button" class="link" onClick={() => p.onAlert(a.id)}>
              {t(lang, 'slaBreached')}: {RULE_NAMES[lang][a.rule]}
            </button>
          </b>
          <span>
            {p.addresses.get(a.householdId) ?? a.householdId} · {breachWords(a, lang, p.zone, p.names)}
          </span>
          {p.told.has(a.id) && (
            <span class="tag red" data-testid="supervisor-notice">
              {t(lang, 'youWereTold')}
            </span>
          )}
        </div>
      ))}
      {p.system.map((w) => (
        <SystemNotice lang={lang} zone={p.zone} warning={w} key={w.kind} />
      ))}
      {p.channels.map((c) => (
        <div
          class="notice red"
          role="alert"
          key={c.channel}
          data-testid="channel-failing"
          data-channel={c.channel}
        >
          <b>
            {t(lang, 'channelFailing')}: {c.channel}
          </b>
          <span>
            {c.consecutiveFailures} {t(lang, 'channelFailures')}
            {c.lastError ? ` · ${c.lastError}` : ''}
          </span>
        </div>
      ))}
      {p.gaps.map((g) => (
        <div class="notice amber" role="alert" key={g.phase} data-testid="duty-gap" data-phase={g.phase}>
          <b>
            {t(lang, g.phase === 'now' ? 'dutyGapNow' : 'dutyGapUpcoming')} · {t(lang, g.shift)}{' '}
            {formatTime(g.startsAt, p.zone, lang)}
          </b>
          <span>{g.grids.map((x) => x.gridName).join('、')}</span>
        </div>
      ))}
      {p.handover && p.handover.items.length > 0 && (
        <section class="panel" aria-label={t(lang, 'handover')} data-testid="handover">
          <h2>
            {t(lang, 'handover')} · {t(lang, p.handover.shift)}
          </h2>
          <ul class="problems wrap">
            {p.handover.items.map((i) => (
              <li key={i.alertId} data-alert-id={i.alertId}>
                <button type="button" class="link" onClick={() => p.onAlert(i.alertId)}>
                  {RULE_NAMES[lang][i.rule]}
                </button>{' '}
                {p.addresses.get(i.householdId) ?? i.householdId} · {STATE_NAMES[lang][i.state]}
                {i.assigneeId && (
                  <span class="muted">
                    {' '}
                    · {t(lang, 'keptAssignee')} {p.names.get(i.assigneeId) ?? i.assigneeId}
                    {!i.assigneeOnDuty && <span class="tag amber">{t(lang, 'notOnShift')}</span>}
                  </span>
                )}
                {i.slaBreached && <span class="tag red">{t(lang, 'overdue')}</span>}
              </li>
            ))}
          </ul>
        </section>
      )}
    </>
  );
}

/** Technical alerts (SPEC §6): not urgent, due the next working day; below the live warnings. */
function MaintenancePanel(p: {
  panelRef: { current: HTMLElement | null };
  lang: Lang;
  zone: string;
  maintenance: MaintenanceQueue | null;
  addresses: Map<string, string>;
  onHousehold: (id: string) => void;
}) {
  const { lang } = p;
  return (
    <section
      class="panel"
      aria-label={t(lang, 'maintenance')}
      data-testid="maintenance"
      id="maintenance"
      tabIndex={-1}
      ref={(el) => {
        p.panelRef.current = el;
      }}
    >
      <h2>
        {t(lang, 'maintenance')} <b>{p.maintenance?.alerts.length ?? ''}</b>
      </h2>
      {p.maintenance && p.maintenance.alerts.length === 0 && (
        <p class="muted">{t(lang, 'maintenanceEmpty')}</p>
      )}
      {p.maintenance && p.maintenance.alerts.length > 0 && (
        <ul class="problems">
          {p.maintenance.alerts.slice(0, 6).map((a) => (
            <li key={a.id} data-alert-id={a.id}>
              <button type="button" class="link" onClick={() => p.onHousehold(a.householdId)}>
                {p.addresses.get(a.householdId) ?? a.householdId}
              </button>{' '}
              {RULE_NAMES[lang][a.rule]}
              {a.maintenanceDueAt != null && (
                <span class="muted">
                  {' '}
                  · {t(lang, 'dueBy')} {formatTime(a.maintenanceDueAt, p.zone, lang)}
                </span>
              )}
            </li>
          ))}
          {p.maintenance.alerts.length > 6 && (
            <li class="muted">
              {t(lang, 'andMore')} {p.maintenance.alerts.length - 6}
            </li>
          )}
        </ul>
      )}
    </section>
  );
}

/** "breached at 10:15 · supervisor told: 周主管" — or that there was nobody to tell. */
function breachWords(a: Alert, lang: Lang, zone: string, names: Map<string, string>): string {
  const at = a.slaBreachedAt ?? a.onSiteDueAt;
  const when = at == null ? '' : `${t(lang, 'breachedAt')} ${formatTime(at, zone, lang)}`;
  const told = a.supervisorsNotified;
  const who =
    told === undefined
      ? ''
      : told.length === 0
        ? t(lang, 'noSupervisor')
        : `${t(lang, 'supervisorTold')}: ${told.map((id) => names.get(id) ?? id).join('、')}`;
  return [when, who].filter(Boolean).join(' · ');
}

/**
 * The SLA in words on the row (SPEC §6), never only a colour: at 12 minutes with nobody on site "at risk"
 * and how long is left; at 15 "breached", when, and whether a supervisor was told.
 */
function SlaWords(p: { a: Alert; lang: Lang; zone: string; now: number; names: Map<string, string> }) {
  const { a, lang, now } = p;
  if (a.onSiteAt !== null || a.onSiteDueAt === null) return null;
  if (a.slaBreached)
    return (
      <div class="sla-text red" data-testid="sla-status" data-kind="breached">
        {t(lang, 'slaBreached')} · {breachWords(a, lang, p.zone, p.names)}
      </div>
    );
  if (a.slaAtRisk || now - a.raisedAt >= AMBER_MS)
    return (
      <div class="sla-text amber" data-testid="sla-status" data-kind="at-risk">
        {t(lang, 'slaAtRisk')} · {t(lang, 'timeLeft')} {formatCountdown(Math.max(0, a.onSiteDueAt - now))}
      </div>
    );
  return null;
}

function Figure(p: { label: string; value: string; sub?: string; tone?: string; testid: string }) {
  return (
    <div class={`figure ${p.tone ?? ''}`} data-testid={p.testid}>
      <span class="label">{p.label}</span>
      <b class="value">{p.value}</b>
      <span class="sub">{p.sub ?? ''}</span>
    </div>
  );
}

function AlertRow(p: {
  a: Alert;
  gridName: string;
  lang: Lang;
  zone: string;
  now: number;
  selected: boolean;
  assignee: string;
  address: string | undefined;
  /** A door opened after the responder went en route (SPEC §6): they probably arrived. */
  doorAt: number | null;
  /** Responders no channel reached for this alert (NOTIFY-02), while nobody has accepted it. */
  unreachable: string[];
  names: Map<string, string>;
  onSelect: () => void;
  onHousehold: () => void;
}) {
  const { a, lang, now } = p;
  const left = a.onSiteDueAt === null ? null : a.onSiteDueAt - now;
  const tone = countdownTone(a, now);
  return (
    <tr
      class={`alert sev-${a.severity} ${a.flagged ? 'flagged' : ''} ${p.selected ? 'selected' : ''}`}
      data-alert-id={a.id}
      data-rule={a.rule}
      data-state={a.state}
      tabIndex={0}
      aria-label={`${RULE_NAMES[lang][a.rule]} ${p.address ?? a.householdId}`}
      onClick={p.onSelect}
      onKeyDown={(e) => {
        if (e.key === 'Enter' || e.key === ' ') {
          e.preventDefault();
          p.onSelect();
        }
      }}
    >
      <td>
        <span class={`sev sev-${a.severity}`}>{SEVERITY_NAMES[lang][a.severity]}</span>
      </td>
      <td title={a.explanation[lang]}>
        {RULE_NAMES[lang][a.rule]}
        {a.flagged && <span class="tag red">{t(lang, 'flagged')}</span>}
        <SlaWords a={a} lang={lang} zone={p.zone} now={now} names={p.names} />
        <div class="explain">{a.explanation[lang]}</div>
      </td>
      <td>
        <button
          type="button"
          class="link"
          data-testid="open-household"
          onClick={(e) => {
            e.stopPropagation();
            p.onHousehold();
          }}
        >
          {p.address ?? a.householdId}
        </button>
        <div class="sub">
          {a.householdId} · {formatTime(a.raisedAt, p.zone, lang)}
        </div>
      </td>
      <td>{p.gridName}</td>
      <td class="state">
        {STATE_NAMES[lang][a.state]}
        {p.doorAt !== null && (
          <div>
            <span class="tag amber" data-testid="door-opened" title={t(lang, 'arrivalHint')}>
              {t(lang, 'doorOpened')} {formatTime(p.doorAt, p.zone, lang)}
            </span>
          </div>
        )}
        {p.unreachable.length > 0 && a.acceptedAt === null && (
          <div>
            <span class="tag red" data-testid="responder-unreachable" title={t(lang, 'unreachableHint')}>
              {t(lang, 'unreachableResponder')}: {p.unreachable.join('、')}
            </span>
          </div>
        )}
      </td>
      <td class="assignee">{p.assignee}</td>
      <td class={`countdown ${tone}`} data-testid="countdown" data-tone={tone}>
        {left === null ? '—' : a.onSiteAt !== null ? STATE_NAMES[lang].on_site : formatCountdown(left)}
      </td>
    </tr>
  );
}
