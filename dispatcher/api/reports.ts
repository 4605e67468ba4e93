/**
 * Report routes (SPEC §8, §11): the SLA report (JSON or CSV) for supervisors and admins, and the two small
 * summaries the dispatch-room screen shows all day: today's figures and device health.
 */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { DateTime } from 'luxon';
import { z } from 'zod';
import { can } from '../access.ts';
import { isSafety } from '../alerts/model.ts';
import { slaReport, slaReportCsv } from '../reports/sla.ts';
import { type ApiDeps, accessScope, HttpError, requireStaff } from './http.ts';
import { epochMs } from './params.ts';
import type { DeviceHealth, TodayFigures } from './types.ts';

/** A time bound: epoch milliseconds or an ISO 8601 date/time (a bare date is midnight in the community's zone). */
const instantParam = z.union([epochMs, z.string().min(4).max(40)]).optional();
const MAX_RANGE_MS = 366 * 86_400_000;
/** SPEC §5: LOW_BATTERY raises at or below 15 %. */
export const LOW_BATTERY = 15;
/** A device whose battery is at or below LOW_BATTERY. */
export const isLow = (d: { battery: number | null }): boolean =>
  d.battery !== null && d.battery <= LOW_BATTERY;

export const reportRoutes =
  (deps: ApiDeps): FastifyPluginAsyncZod =>
  async (app) => {
    const { store } = deps;
    const zone = () => deps.directory.zone;

    const toInstant = (v: string | number | undefined, field: string): number | undefined => {
      if (v === undefined) return undefined;
      if (typeof v === 'number') return v;
      const d = DateTime.fromISO(v, { zone: zone() });
      if (!d.isValid)
        throw new HttpError(400, 'bad_request', `querystring.${field}: not a date or epoch milliseconds`, {
          field: `querystring.${field}`,
        });
      return d.toMillis();
    };

    app.get(
      '/api/reports/sla',
      {
        schema: {
          querystring: z.object({
            from: instantParam,
            to: instantParam,
            grid: z.string().max(64).optional(),
            format: z.enum(['json', 'csv']).default('json'),
          }),
        },
      },
      async (req, reply) => {
        const staff = requireStaff(req, 'reports.read');
        const now = deps.clock.now();
        const to = toInstant(req.query.to, 'to') ?? now;
        // Default: the last 4 weeks.
        const from = toInstant(req.query.from, 'from') ?? to - 28 * 86_400_000;
        if (from >= to) throw new HttpError(400, 'bad_request', 'querystring.from: must be before to');
        if (to - from > MAX_RANGE_MS)
          throw new HttpError(400, 'bad_request', 'querystring.from: the range may be at most 366 days');
        const visible = (await accessScope(deps, staff)).grids;
        const gridIds = req.query.grid
          ? [req.query.grid].filter((g) => visible === null || visible.includes(g))
          : (visible ?? undefined);
        const [alerts, stillOffline, grids, people, households, devices] = await Promise.all([
          store.listAlertsRaisedBetween(from, to, gridIds),
          // DEVICE_OFFLINE alerts still open from before the period count towards device uptime.
          store.listAlerts({
            state: 'open',
            gridIds,
            rule: 'DEVICE_OFFLINE',
            raisedBefore: from,
            limit: 100_000,
          }),
          store.listGrids(),
          store.listStaff(),
          store.listHouseholds(gridIds ? { gridIds } : {}),
          store.listDevices(),
        ]);
        const gridOfHome = new Map(households.map((h) => [h.id, h.gridId]));
        const earlierOffline = stillOffline;
        const report = slaReport({
          from,
          to,
          now,
          zone: zone(),
          shifts: deps.directory.shifts,
          alerts: [...earlierOffline, ...alerts],
          gridNames: new Map(grids.map((g) => [g.id, g.name])),
          staffNames: new Map(people.map((p) => [p.id, p.name])),
          devices: devices
            .filter((d) => gridOfHome.has(d.homeId))
            .map((d) => ({ id: d.id, gridId: gridOfHome.get(d.homeId)!, createdAt: d.createdAt })),
        });
        if (req.query.format === 'csv') {
          const day = (t: number) => DateTime.fromMillis(t, { zone: zone() }).toISODate();
          reply
            .header('content-type', 'text/csv; charset=utf-8')
            .header('content-disposition', `attachment; filename="sla-${day(from)}-${day(to)}.csv"`);
          // A BOM so spreadsheet programs read the Chinese names as UTF-8.
          return reply.send(`\uFEFF${slaReportCsv(report)}`);
        }
        return report;
      },
    );

    /** Today's figures for the dispatch screen (SPEC §8): "today" is the community's calendar day. */
    app.get('/api/reports/today', async (req): Promise<TodayFigures> => {
      const staff = requireStaff(req);
      if (!can(staff, 'alerts.read.all') && !can(staff, 'reports.read'))
        throw new HttpError(403, 'forbidden', 'your role may not read the dispatch figures');
      const now = deps.clock.now();
      const from = DateTime.fromMillis(now, { zone: zone() }).startOf('day').toMillis();
      const gridIds = (await accessScope(deps, staff)).grids ?? undefined;
      const [today, open] = await Promise.all([
        store.listAlertsRaisedBetween(from, now + 1, gridIds),
        store.countOpenAlerts(gridIds),
      ]);
      const safety = today.filter((a) => a.acceptDueAt !== null && a.state !== 'cancelled');
      const r = slaReport({
        from,
        to: now + 1,
        now,
        zone: zone(),
        shifts: deps.directory.shifts,
        alerts: safety,
        gridNames: new Map(),
        staffNames: new Map(),
        devices: [],
      }).total;
      return {
        from,
        now,
        open: open.reduce((n, c) => n + c.count, 0),
        openSafety: open.reduce((n, c) => n + (isSafety(c.severity) ? c.count : 0), 0),
        raised: safety.length,
        acceptedWithin3: r.acceptedWithin3,
        acceptedShare: r.acceptedShare,
        acceptDecided: r.acceptDecided,
        onSiteWithin15: r.onSiteWithin15,
        onSiteShare: r.onSiteShare,
        onSiteDecided: r.onSiteDecided,
        breaches: r.breaches,
      };
    });

    /** Device health for the dispatch screen (SPEC §3, §8): offline, low battery, rejecting messages. */
    app.get(
      '/api/reports/devices',
      { schema: { querystring: z.object({ limit: z.coerce.number().int().min(1).max(1000).default(100) }) } },
      async (req): Promise<DeviceHealth> => {
        const staff = requireStaff(req);
        if (!can(staff, 'alerts.read.all') && !can(staff, 'reports.read'))
          throw new HttpError(403, 'forbidden', 'your role may not read device health');
        const gridIds = (await accessScope(deps, staff)).grids;
        const limit = req.query.limit;
        const [counts, problems, unmapped] = await Promise.all([
          store.countDeviceHealth({ gridIds, lowBattery: LOW_BATTERY }),
          store.queryDevices({ gridIds, select: 'problems', lowBattery: LOW_BATTERY, limit }),
          store.queryDevices({ gridIds, select: 'unmapped_room', lowBattery: LOW_BATTERY, limit }),
        ]);
        const strip = ({ address: _, ...d }: (typeof problems)[number]) => d;
        return {
          ...counts,
          problems: problems.map((d) => ({ ...strip(d), lowBattery: isLow(d) })),
          unmappedRooms: unmapped.map(strip),
        };
      },
    );
  };
