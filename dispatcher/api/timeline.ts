/**
 * The household's events from the durable log (SPEC §8, §11): what the file's 7-day activity chart draws
 * (rooms active when, door openings, falls, help presses) and the alerts raised in the same period.
 */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { mayReadHousehold } from '../access.ts';
import { type ApiDeps, accessScope, HttpError, requireStaff } from './http.ts';
import { epochMs, idParam } from './params.ts';
import type { Timeline, TimelineEvent } from './types.ts';

const DAY = 86_400_000;
const MAX_RANGE_MS = 31 * DAY;
const MAX_EVENTS = 20_000;
/**
 * Heartbeats carry no activity and are left out unless asked for (`heartbeats=true`: support staff checking
 * that a device's messages arrive); presence records are device health, not the resident's day.
 */
const ACTIVITY_TYPES = ['motion', 'door', 'fall', 'sos'] as const;

export const timelineRoutes =
  (deps: ApiDeps): FastifyPluginAsyncZod =>
  async (app) => {
    app.get(
      '/api/households/:id/timeline',
      {
        schema: {
          params: idParam,
          querystring: z.object({
            from: epochMs.optional(),
            to: epochMs.optional(),
            heartbeats: z
              .enum(['true', 'false', '1', '0'])
              .optional()
              .transform((v) => v === 'true' || v === '1'),
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
          deps.store.listHomeEvents(
            h.id,
            {
              from,
              to,
              types: req.query.heartbeats ? [...ACTIVITY_TYPES, 'heartbeat'] : [...ACTIVITY_TYPES],
            },
            MAX_EVENTS + 1,
          ),
          deps.store.listAlerts({ householdId: h.id, limit: 500 }),
        ]);
        const events = logged.slice(0, MAX_EVENTS).map((e): TimelineEvent => {
          const ev = e.event as {
            type: string;
            seq?: number;
            state?: string;
            room?: string;
            door?: string;
            battery?: number;
            rssi?: number;
            fw?: string;
          };
          const out: TimelineEvent = {
            seq: e.seq,
            deviceSeq: ev.seq ?? null,
            ts: e.ts,
            receivedAt: e.receivedAt,
            flags: e.flags,
            deviceId: e.deviceId,
            type: ev.type,
            state: ev.state ?? null,
            room: ev.room ?? null,
            door: ev.door ?? null,
          };
          if (ev.battery !== undefined) out.battery = ev.battery;
          if (ev.rssi !== undefined) out.rssi = ev.rssi;
          if (ev.fw !== undefined) out.fw = ev.fw;
          return out;
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
