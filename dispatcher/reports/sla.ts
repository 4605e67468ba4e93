/**
 * The SLA report (SPEC §8): per grid, shift, responder and week, the share of safety alerts accepted within
 * 3 minutes and with a responder on site within 15 (SPEC §6), median and 90th-percentile times, breaches;
 * the false-alarm rate per rule and per device; device uptime. Pure: alerts and registry values in, figures out.
 *
 * Each alert is measured against its own promise (ESC-03): the deadlines stored with it, from the policy it
 * was raised under (ESC-02). "Within 3" and "within 15" name the SPEC §6 default; an alert of a community
 * that promises 20 minutes counts as on time at 20. The report lists the promises it measured against.
 */
import { DateTime } from 'luxon';
import { type Alert, alertSource, type RuleId } from '../alerts/model.ts';
import { type ShiftBoundaries, shiftAt } from '../routing/shifts.ts';

export const ACCEPT_WITHIN_MS = 3 * 60_000;
export const ON_SITE_WITHIN_MS = 15 * 60_000;

export interface SlaRow {
  key: string;
  label: string;
  /** Safety alerts raised in the period (cancelled ones excluded: a dispatcher withdrew them). */
  alerts: number;
  acceptedWithin3: number;
  /** acceptedWithin3 over the alerts whose 3-minute mark has passed or that were accepted; null when none. */
  acceptedShare: number | null;
  /** The alerts `acceptedShare` is over: accepted, or past their 3-minute mark. */
  acceptDecided: number;
  onSiteWithin15: number;
  /** The alerts `onSiteShare` is over: reached on site, or past their 15-minute mark. */
  onSiteDecided: number;
  onSiteShare: number | null;
  acceptMedianMs: number | null;
  acceptP90Ms: number | null;
  onSiteMedianMs: number | null;
  onSiteP90Ms: number | null;
  breaches: number;
}

/** One promise the report measured alerts against (ESC-03), and how many alerts were measured by it. */
export interface PromiseRow {
  /** "3/15": accepted within, on site within, in minutes. */
  key: string;
  acceptWithinMin: number;
  onSiteWithinMin: number;
  alerts: number;
  communities: string[];
}

export interface FalseAlarmRow {
  key: string;
  /** Alerts a person closed with an outcome (auto-cleared technical alerts are not judgements). */
  resolved: number;
  falseAlarms: number;
  rate: number | null;
}

export interface UptimeRow {
  gridId: string;
  label: string;
  devices: number;
  /** Share of device time not covered by a DEVICE_OFFLINE alert; null when no device existed in the period. */
  uptime: number | null;
}

export interface SlaReport {
  from: number;
  to: number;
  zone: string;
  total: SlaRow;
  byGrid: SlaRow[];
  byShift: SlaRow[];
  byResponder: SlaRow[];
  byWeek: SlaRow[];
  /** The promises the alerts were measured against (ESC-03). */
  promises: PromiseRow[];
  /** ALERT-03: sensor alerts and incidents phoned in, apart (keys `sensor`, `phone`). */
  bySource: SlaRow[];
  falseAlarmsByRule: FalseAlarmRow[];
  falseAlarmsByDevice: FalseAlarmRow[];
  deviceUptime: UptimeRow[];
}

export interface ReportInput {
  from: number;
  to: number;
  now: number;
  zone: string;
  shifts: ShiftBoundaries;
  /** Alerts raised in [from, to) plus DEVICE_OFFLINE alerts still open from before (for uptime). */
  alerts: Alert[];
  gridNames: Map<string, string>;
  staffNames: Map<string, string>;
  /** Devices with their grid and when they were provisioned. */
  devices: { id: string; gridId: string; createdAt: number }[];
}

/** Nearest-rank percentile of sorted values. */
export function percentile(sorted: number[], p: number): number | null {
  if (sorted.length === 0) return null;
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1]!;
}

function slaRow(key: string, label: string, alerts: Alert[], now: number): SlaRow {
  const acceptTimes: number[] = [];
  const onSiteTimes: number[] = [];
  let acceptDecided = 0;
  let onSiteDecided = 0;
  let acceptedWithin3 = 0;
  let onSiteWithin15 = 0;
  let breaches = 0;
  for (const a of alerts) {
    if (a.acceptedAt !== null) acceptTimes.push(a.acceptedAt - a.raisedAt);
    if (a.onSiteAt !== null) onSiteTimes.push(a.onSiteAt - a.raisedAt);
    // ESC-03: the alert's own stored deadlines (SLA-03), the SPEC §6 ones for an alert without.
    const acceptDue = a.acceptDueAt ?? a.raisedAt + ACCEPT_WITHIN_MS;
    const onSiteDue = a.onSiteDueAt ?? a.raisedAt + ON_SITE_WITHIN_MS;
    // An alert still inside its window is not yet a success or a failure.
    if (a.acceptedAt !== null || now >= acceptDue) acceptDecided++;
    if (a.onSiteAt !== null || now >= onSiteDue) onSiteDecided++;
    if (a.acceptedAt !== null && a.acceptedAt <= acceptDue) acceptedWithin3++;
    if (a.onSiteAt !== null && a.onSiteAt <= onSiteDue) onSiteWithin15++;
    if (a.slaBreached) breaches++;
  }
  acceptTimes.sort((x, y) => x - y);
  onSiteTimes.sort((x, y) => x - y);
  return {
    key,
    label,
    alerts: alerts.length,
    acceptedWithin3,
    acceptedShare: acceptDecided ? acceptedWithin3 / acceptDecided : null,
    acceptDecided,
    onSiteWithin15,
    onSiteDecided,
    onSiteShare: onSiteDecided ? onSiteWithin15 / onSiteDecided : null,
    acceptMedianMs: percentile(acceptTimes, 50),
    acceptP90Ms: percentile(acceptTimes, 90),
    onSiteMedianMs: percentile(onSiteTimes, 50),
    onSiteP90Ms: percentile(onSiteTimes, 90),
    breaches,
  };
}

function groupBy<T>(items: T[], key: (t: T) => string): Map<string, T[]> {
  const m = new Map<string, T[]>();
  for (const i of items) {
    const k = key(i);
    const list = m.get(k);
    if (list) list.push(i);
    else m.set(k, [i]);
  }
  return new Map([...m.entries()].sort(([a], [b]) => a.localeCompare(b)));
}

function falseAlarms(alerts: Alert[], key: (a: Alert) => string | null): FalseAlarmRow[] {
  const judged = alerts.filter(
    (a) => a.state === 'resolved' && a.outcome !== null && a.outcome !== 'auto_cleared',
  );
  return [
    ...groupBy(
      judged.filter((a) => key(a) !== null),
      (a) => key(a)!,
    ).entries(),
  ].map(([k, list]) => {
    const n = list.filter((a) => a.outcome === 'false_alarm').length;
    return { key: k, resolved: list.length, falseAlarms: n, rate: list.length ? n / list.length : null };
  });
}

/** The promises the alerts were measured against, from their stored deadlines (ESC-03). */
function promises(alerts: Alert[]): PromiseRow[] {
  const minutesOf = (due: number | null, a: Alert, fallback: number) =>
    Math.round(((due ?? a.raisedAt + fallback) - a.raisedAt) / 60_000);
  return [
    ...groupBy(alerts, (a) => {
      const accept = minutesOf(a.acceptDueAt, a, ACCEPT_WITHIN_MS);
      const onSite = minutesOf(a.onSiteDueAt, a, ON_SITE_WITHIN_MS);
      return `${accept}/${onSite}`;
    }).entries(),
  ].map(([key, list]) => {
    const [accept, onSite] = key.split('/').map(Number);
    return {
      key,
      acceptWithinMin: accept!,
      onSiteWithinMin: onSite!,
      alerts: list.length,
      communities: [...new Set(list.map((a) => a.community))].sort(),
    };
  });
}

export function slaReport(input: ReportInput): SlaReport {
  const { from, to, now, zone } = input;
  const inRange = input.alerts.filter((a) => a.raisedAt >= from && a.raisedAt < to);
  // SPEC §6: the SLA applies to safety alerts; a cancelled alert was withdrawn, not served late.
  const safety = inRange.filter((a) => a.acceptDueAt !== null && a.state !== 'cancelled');
  const rows = (groups: Map<string, Alert[]>, label: (k: string) => string) =>
    [...groups.entries()].map(([k, list]) => slaRow(k, label(k), list, now));

  const weekOf = (t: number) => DateTime.fromMillis(t, { zone }).toFormat("kkkk-'W'WW");
  const shiftOf = (t: number) => shiftAt(t, zone, input.shifts).shift;

  // Uptime: device time in the period minus the time covered by DEVICE_OFFLINE alerts (SPEC §5).
  const end = Math.min(to, now);
  const offlineMs = new Map<string, number>();
  for (const a of input.alerts) {
    if ((a.rule as RuleId) !== 'DEVICE_OFFLINE' || !a.deviceId) continue;
    const s = Math.max(a.raisedAt, from);
    const e = Math.min(a.closedAt ?? now, end);
    if (e > s) offlineMs.set(a.deviceId, (offlineMs.get(a.deviceId) ?? 0) + (e - s));
  }
  const deviceUptime: UptimeRow[] = [...groupBy(input.devices, (d) => d.gridId).entries()].map(
    ([gridId, devices]) => {
      let total = 0;
      let down = 0;
      for (const d of devices) {
        const span = end - Math.max(from, d.createdAt);
        if (span <= 0) continue;
        total += span;
        down += Math.min(span, offlineMs.get(d.id) ?? 0);
      }
      return {
        gridId,
        label: input.gridNames.get(gridId) ?? gridId,
        devices: devices.length,
        uptime: total > 0 ? 1 - down / total : null,
      };
    },
  );

  return {
    from,
    to,
    zone,
    total: slaRow('all', 'all', safety, now),
    byGrid: rows(
      groupBy(safety, (a) => a.gridId),
      (k) => input.gridNames.get(k) ?? k,
    ),
    byShift: rows(
      groupBy(safety, (a) => shiftOf(a.raisedAt)),
      (k) => k,
    ),
    byResponder: rows(
      groupBy(safety, (a) => a.assigneeId ?? '-'),
      (k) => input.staffNames.get(k) ?? k,
    ),
    byWeek: rows(
      groupBy(safety, (a) => weekOf(a.raisedAt)),
      (k) => k,
    ),
    promises: promises(safety),
    bySource: rows(
      groupBy(safety, (a) => alertSource(a)),
      (k) => k,
    ),
    falseAlarmsByRule: falseAlarms(inRange, (a) => a.rule),
    falseAlarmsByDevice: falseAlarms(inRange, (a) => a.deviceId),
    deviceUptime,
  };
}

const CSV_COLUMNS = [
  'section',
  'key',
  'label',
  'alerts',
  'accepted_within_3min',
  'accepted_within_3min_share',
  'on_site_within_15min',
  'on_site_within_15min_share',
  'accept_median_s',
  'accept_p90_s',
  'on_site_median_s',
  'on_site_p90_s',
  'breaches',
  'resolved',
  'false_alarms',
  'false_alarm_rate',
  'devices',
  'uptime',
] as const;

function cell(v: unknown): string {
  if (v === null || v === undefined) return '';
  const s = typeof v === 'number' ? String(Math.round(v * 10_000) / 10_000) : String(v);
  // RFC 4180 quoting; a leading = + - @ is neutralised so a spreadsheet never runs a cell as a formula.
  const safe = /^[=+\-@]/.test(s) && typeof v !== 'number' ? `'${s}` : s;
  return /[",\n\r]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

/** The report as one CSV table: one line per row of every section, empty cells where a column does not apply. */
export function slaReportCsv(r: SlaReport): string {
  const lines: string[] = [CSV_COLUMNS.join(',')];
  const s = (ms: number | null) => (ms === null ? null : ms / 1000);
  const sla = (section: string, x: SlaRow) =>
    `${[
      section,
      x.key,
      x.label,
      x.alerts,
      x.acceptedWithin3,
      x.acceptedShare,
      x.onSiteWithin15,
      x.onSiteShare,
      s(x.acceptMedianMs),
      s(x.acceptP90Ms),
      s(x.onSiteMedianMs),
      s(x.onSiteP90Ms),
      x.breaches,
    ]
      .map(cell)
      .join(',')},,,,,`;
  lines.push(sla('total', r.total));
  for (const x of r.byGrid) lines.push(sla('grid', x));
  for (const x of r.byShift) lines.push(sla('shift', x));
  for (const x of r.byResponder) lines.push(sla('responder', x));
  for (const x of r.byWeek) lines.push(sla('week', x));
  // ESC-03: the promises the rows above were measured against.
  for (const x of r.promises)
    lines.push(
      `${['promise', x.key, `accepted within ${x.acceptWithinMin} min, on site within ${x.onSiteWithinMin} min: ${x.communities.join(' ')}`, x.alerts].map(cell).join(',')}${','.repeat(CSV_COLUMNS.length - 4)}`,
    );
  for (const x of r.bySource) lines.push(sla('source', x));
  const fa = (section: string, x: FalseAlarmRow) =>
    `${[section, x.key, x.key].map(cell).join(',')},,,,,,,,,,,${[x.resolved, x.falseAlarms, x.rate].map(cell).join(',')},,`;
  for (const x of r.falseAlarmsByRule) lines.push(fa('false_alarm_rule', x));
  for (const x of r.falseAlarmsByDevice) lines.push(fa('false_alarm_device', x));
  for (const x of r.deviceUptime)
    lines.push(
      `${['device_uptime', x.gridId, x.label].map(cell).join(',')},,,,,,,,,,,,,,${cell(x.devices)},${cell(x.uptime)}`,
    );
  return `${lines.join('\r\n')}\r\n`;
}
