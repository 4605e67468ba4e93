/**
 * The learned routine baseline of one household (RULE-14): what the rules learned of the
 * resident's usual day and the thresholds in force, for the household file on the console.
 * `{ baseline: null }` until 14 days have been learned.
 */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { mayReadHousehold } from '../access.ts';
import { baselineOf, inactivityMs, morningMinute } from '../rules/baseline.ts';
import { restoreStored } from '../rules/engine.ts';
import { minutesHhmm } from '../rules/localtime.ts';
import { resolveSettings } from '../rules/settings.ts';
import { type ApiDeps, accessScope, HttpError, requireStaff } from './http.ts';
import { idParam } from './params.ts';

const MIN = 60_000;

export const baselineRoutes =
  (deps: ApiDeps): FastifyPluginAsyncZod =>
  async (app) => {
    app.get('/api/households/:id/baseline', { schema: { params: idParam } }, async (req) => {
      const staff = requireStaff(req);
      const h = await deps.store.getHousehold(req.params.id);
      if (!h || !mayReadHousehold(staff, h.gridId) || !(await accessScope(deps, staff)).has(h.gridId))
        throw new HttpError(404, 'not_found', `no household ${req.params.id}`);
      const stored = await deps.store.getHomeState(h.id);
      const b = stored === null ? null : baselineOf(restoreStored(stored).learn);
      if (!b) return { baseline: null };
      const settings = resolveSettings(h, deps.rules);
      const morning = morningMinute({ ...settings, baseline: true }, b);
      const byHour = b.longestQuietByHour.map((_, hour) =>
        inactivityMs({ ...settings, baseline: true }, b, hour),
      );
      return {
        baseline: {
          /** Whether the household opted in: the learned thresholds apply only then. */
          applied: settings.baseline,
          days: b.days,
          usualUpBy: b.usualUpBy === null ? null : minutesHhmm(b.usualUpBy),
          longestQuietMinutesByHour: b.longestQuietByHour,
          configured: {
            morningBy: minutesHhmm(settings.wake + settings.morningGraceMs / MIN),
            inactivityMinutes: settings.inactivityMs / MIN,
          },
          learned: {
            morningBy: minutesHhmm(morning.minute),
            inactivityMinutesByHour: byHour.map((t) => t.ms / MIN),
          },
        },
      };
    });
  };
