/**
 * Incidents phoned in (ALERT-03): the dispatcher who took a call opens an alert for the household, with
 * what was reported, a severity and a note. It is raised through the alert service like the rules' alerts.
 */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { PHONE_CATEGORIES } from '../alerts/model.ts';
import { type ApiDeps, accessScope, HttpError, requireStaff } from './http.ts';

export const incidentBody = z.strictObject({
  householdId: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'invalid id'),
  category: z.enum(PHONE_CATEGORIES).describe('what the caller reported'),
  severity: z.enum(['critical', 'high', 'medium']).default('high'),
  note: z.string().trim().min(1).max(2000).describe('what the caller said, in the dispatcher’s words'),
  caller: z.string().trim().max(100).optional().describe('who called: "女儿", "neighbour in 302"'),
});

export const incidentRoutes =
  (deps: ApiDeps): FastifyPluginAsyncZod =>
  async (app) => {
    app.post(
      '/api/incidents',
      {
        schema: {
          tags: ['alerts'],
          summary: 'Open an incident from a phone call',
          description:
            'ALERT-03: a resident, a relative or a neighbour phoned the dispatch room. The incident is an alert ' +
            'of rule PHONE_REPORT marked `source: phone`: routed to the roster in force, escalated, SLA-timed, ' +
            'reported and audited like a sensor alert. A second call while the household has an open phoned-in ' +
            'incident adds to it (`attached: true`). Dispatchers and admins; the household must be in scope.',
          body: incidentBody,
        },
      },
      async (req, reply) => {
        const staff = requireStaff(req, 'alerts.act.all');
        const h = await deps.store.getHousehold(req.body.householdId);
        const scope = await accessScope(deps, staff);
        if (!h || !scope.has(h.gridId))
          throw new HttpError(404, 'not_found', `no household ${req.body.householdId}`);
        const r = await deps.alerts.report(req.body, { id: staff.id, channel: 'api', canOverride: true });
        if (!r) throw new HttpError(404, 'not_found', `no household ${req.body.householdId}`);
        // The note and the caller stay in the alert; the audit names what was done, not what was said.
        await deps.store.audit({
          at: deps.clock.now(),
          actor: staff.id,
          action: 'alert.report',
          target: r.alert.id,
          detail: {
            householdId: h.id,
            category: req.body.category,
            severity: req.body.severity,
            attached: r.attached,
          },
        });
        await scope.auditCrossing('alert.report', r.alert.id, h.gridId);
        return reply.code(r.attached ? 200 : 201).send(r);
      },
    );
  };
