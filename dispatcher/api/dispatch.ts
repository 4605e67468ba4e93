/**
 * Dispatch-room routes beyond the alert queue (SPEC §4, §6, §7, §9): notification channel health, the
 * edge's faults (disk, event log, telemetry, logins), grids with nobody on duty, the shift handover list, the maintenance queue and "who covers this household now".
 */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { can, mayReadHousehold } from '../access.ts';
import { type ApiDeps, accessScope, HttpError, requireStaff, screenScope } from './http.ts';
import { epochMs, idParam } from './params.ts';
import type { CoverageView, MaintenanceQueue } from './types.ts';

export const dispatchRoutes =
  (deps: ApiDeps): FastifyPluginAsyncZod =>
  async (app) => {
    const watch = () => {
      if (!deps.dutyWatch) throw new HttpError(503, 'unavailable', 'the duty watch is not running');
      return deps.dutyWatch;
    };

    /** SPEC §7: a channel that keeps failing shows on the dispatch screen. */
    app.get('/api/notify/health', async (req) => {
      requireStaff(req, 'alerts.read.all');
      return { channels: deps.notifier?.channelHealth() ?? [], now: deps.clock.now() };
    });

    /**
     * The edge's faults for the dispatch screen: free space low or full, the event log unable to write
     * (devices held), InfluxDB away (telemetry buffered), a login flood; readiness and its reasons.
     */
    app.get('/api/system/health', async (req) => {
      requireStaff(req, 'alerts.read.all');
      const h = deps.systemHealth;
      if (!h) throw new HttpError(503, 'unavailable', 'the system health watch is not running');
      return h.report();
    });

    /** SPEC §4: grids with nobody on duty now, or in the coming shift (the default). */
    app.get(
      '/api/duty/gaps',
      { schema: { querystring: z.object({ phase: z.enum(['now', 'upcoming']).default('upcoming') }) } },
      async (req) => {
        const staff = requireStaff(req, 'alerts.read.all');
        // A dispatcher's communities, as on the live screen.
        const mine = await screenScope(deps, staff);
        const report = await watch().gaps(req.query.phase);
        return mine === null
          ? report
          : { ...report, grids: report.grids.filter((g) => mine.includes(g.gridId)) };
      },
    );

    /** SPEC §6: the open alerts the shift in force inherited, with their kept assignees. */
    app.get('/api/duty/handover', async (req) => {
      const staff = requireStaff(req);
      if (!can(staff, 'alerts.read.all') && !can(staff, 'alerts.respond'))
        throw new HttpError(403, 'forbidden', 'your role may not read the handover list');
      return watch().handover(await screenScope(deps, staff));
    });

    /** SPEC §6: technical alerts, due the next working day. */
    app.get('/api/maintenance', async (req): Promise<MaintenanceQueue> => {
      const staff = requireStaff(req);
      const grids = (await accessScope(deps, staff)).grids;
      return { alerts: await deps.alerts.maintenanceQueue(grids ?? undefined), now: deps.clock.now() };
    });

    /** SPEC §6 routing: who covers this household now (or `at`), in order. */
    app.get(
      '/api/households/:id/coverage',
      {
        schema: {
          params: idParam,
          querystring: z.object({ at: epochMs.optional() }),
        },
      },
      async (req): Promise<CoverageView> => {
        const staff = requireStaff(req);
        const h = await deps.store.getHousehold(req.params.id);
        if (!h || !mayReadHousehold(staff, h.gridId) || !(await accessScope(deps, staff)).has(h.gridId))
          throw new HttpError(404, 'not_found', `no household ${req.params.id}`);
        const c = await deps.directory.coverage(h.id, req.query.at ?? deps.clock.now());
        if (!c) throw new HttpError(404, 'not_found', `no household ${req.params.id}`);
        const people = new Map((await deps.store.listStaff()).map((s) => [s.id, s]));
        return {
          householdId: h.id,
          gridId: c.gridId,
          shift: c.shift.shift,
          shiftDate: c.shift.date,
          startsAt: c.shift.startsAt,
          endsAt: c.shift.endsAt,
          staff: c.staffIds.map((id) => {
            const p = people.get(id);
            return { id, name: p?.name ?? id, phone: p?.phone ?? '', roles: p?.roles ?? [] };
          }),
        };
      },
    );
  };
