/**
 * The household's events from the durable log (SPEC §8, §11): what the file's 7-day activity chart draws
 * (rooms active when, door openings, falls, help presses) and the alerts raised in the same period.
 */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { mayReadHousehold } from '../access.ts';
import { type ApiDeps, accessScope, HttpError, requireStaff } from './app.ts';
import { epochMs } from './params.ts';
import type { Timeline } from './types.ts';

const DAY = 86_400_000;
const MAX_RANGE_MS = 31 * DAY;
const MAX_EVENTS = 20_000;
/** Heartbeats carry no activity; presence records are device health, not the resident's day. */
const ACTIVITY_TYPES = ['motion', 'door', 'fall', 'sos'] as const;

export const timelineRoutes =
  (deps: ApiDeps): FastifyPluginAsyncZod =>
  async (app) => {
    app.get(
      '/api/households/:id/timeline',
      {
        schema: {
          params: z.object({ id: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'invalid id') }),
          querystring: z.object({
            from: epochMs.optional(),
            to: epochMs.optional(),
          }),
        },
      },
      async (req): Promise<Timeline> => {
        const staff = requireStaff(req);
        const h = await deps.store.getHousehold(req.params.id);
        // Another grid's household answers like a missing one: a responder learns nothing about it.
        if (!h || !mayReadHousehold(staff, h.gridId) || !(await accessScope(deps, staff)).has(h.gridId))
          throw new HttpError(404, 'not_found', `no household ${req.params.id}`);
        const to = req.query.to ?? deps.clock.now();
        const from = req.query.from ?? to - 7 * DAY;
        if (from >= to) throw new HttpError(400, 'bad_request', 'querystring.from: must be before to');
        if (to - from > MAX_RANGE_MS)
          throw new HttpError(400, 'bad_request', 'querystring.from: the range may be at most 31 days');
        const [logged, alerts] = await Promise.all([
          deps.store.listHomeEvents(h.id, { from, to, types: [...ACTIVITY_TYPES] }, MAX_EVENTS + 1),
          deps.store.listAlerts({ householdId: h.id, limit: 500 }),
        ]);
        const events = logged.slice(0, MAX_EVENTS).map((e) => {
          const ev = e.event as { type: string; state?: string; room?: string; door?: string };
          return {
            seq: e.seq,
            ts: e.ts,
            deviceId: e.deviceId,
            type: ev.type,
            state: ev.state ?? null,
            room: ev.room ?? null,
            door: ev.door ?? null,
          };
        });
        return {
          householdId: h.id,
          from,
          to,
          events,
          truncated: logged.length > MAX_EVENTS,
          alerts: alerts
            .filter((a) => a.raisedAt >= from && a.raisedAt < to)
            .map((a) => ({
              id: a.id,
              rule: a.rule,
              severity: a.severity,
              state: a.state,
              raisedAt: a.raisedAt,
            })),
        };
      },
    );
  };
