/**
 * Web Push and delivery routes (NOTIFY-03, NOTIFY-02): a responder's phone subscribes to push notices and
 * confirms the ones it showed; a dispatcher sends an alert's notice again.
 *
 *   GET    /api/push/key                 the deployment's VAPID public key (applicationServerKey)
 *   POST   /api/push/subscriptions       { endpoint, keys: { p256dh, auth }, lang } → 201
 *   DELETE /api/push/subscriptions       { endpoint } → 204
 *   POST   /api/push/receipts            { alertId } → 204: this phone showed the alert's notice
 *   POST   /api/alerts/{id}/resend       { staffId? } → 202: every channel again (dispatch roles)
 */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { can } from '../access.ts';
import { type ApiDeps, accessScope, HttpError, type PushDeps, requireStaff, STATUS_BY_CODE } from './http.ts';

export type { PushDeps } from './http.ts';

const base64url = z.string().regex(/^[A-Za-z0-9_-]+={0,2}$/, 'expected base64url');
const subscriptionBody = z.strictObject({
  // RFC 8030: a push service is reached over HTTPS.
  endpoint: z.url({ protocol: /^https$/, message: 'expected an https push service URL' }).max(2000),
  keys: z.object({ p256dh: base64url.min(80).max(120), auth: base64url.min(16).max(40) }),
  lang: z.enum(['zh', 'en']).default('zh'),
  // The Push API's subscription JSON also carries this; it is not kept.
  expirationTime: z.number().nullable().optional(),
});

export const pushRoutes =
  (deps: ApiDeps & { push?: PushDeps }): FastifyPluginAsyncZod =>
  async (app) => {
    const push = deps.push;
    if (push) {
      app.get('/api/push/key', { schema: { tags: ['push'], summary: 'VAPID public key' } }, async (req) => {
        requireStaff(req);
        return { publicKey: push.publicKey };
      });

      app.post(
        '/api/push/subscriptions',
        {
          schema: {
            tags: ['push'],
            summary: 'Subscribe this phone to alert notices',
            body: subscriptionBody,
          },
        },
        async (req, reply) => {
          const staff = requireStaff(req);
          const { endpoint, keys, lang } = req.body;
          await push.subscriptions.add(staff.id, { endpoint, keys, lang, createdAt: deps.clock.now() });
          // The endpoint is a capability URL: the audit names the push service's host only.
          await deps.store.audit({
            at: deps.clock.now(),
            actor: staff.id,
            action: 'push.subscribe',
            target: staff.id,
            detail: { service: new URL(endpoint).host },
          });
          return reply.code(201).send({ subscribed: true });
        },
      );

      app.delete(
        '/api/push/subscriptions',
        {
          schema: {
            tags: ['push'],
            summary: 'Unsubscribe this phone',
            body: z.strictObject({ endpoint: z.string().min(1).max(2000) }),
          },
        },
        async (req, reply) => {
          const staff = requireStaff(req);
          const removed = await push.subscriptions.remove(staff.id, req.body.endpoint);
          if (removed)
            await deps.store.audit({
              at: deps.clock.now(),
              actor: staff.id,
              action: 'push.unsubscribe',
              target: staff.id,
              detail: {},
            });
          return reply.code(204).send();
        },
      );

      app.post(
        '/api/push/receipts',
        {
          schema: {
            tags: ['push'],
            summary: "The phone showed an alert's notice",
            body: z.strictObject({ alertId: z.string().min(1).max(80) }),
          },
        },
        async (req, reply) => {
          const staff = requireStaff(req);
          const alert = await deps.store.getAlert(req.body.alertId);
          const told = alert && (alert.responders.includes(staff.id) || alert.assigneeId === staff.id);
          if (!alert || !told) throw new HttpError(404, 'not_found', `no alert ${req.body.alertId} for you`);
          await deps.notifier?.recordReceipt(alert.id, staff.id, 'push');
          return reply.code(204).send();
        },
      );
    }

    app.post(
      '/api/alerts/:id/resend',
      {
        schema: {
          tags: ['alerts'],
          summary: "Send an alert's notice again",
          description:
            'Every channel, to one staff member or to everyone the alert has named (its responders and assignee).',
          params: z.object({ id: z.string().max(80) }),
          body: z.strictObject({ staffId: z.string().min(1).max(64).optional() }).optional(),
        },
      },
      async (req, reply) => {
        const staff = requireStaff(req, 'alerts.act.all');
        if (!can(staff, 'alerts.read.all')) throw new HttpError(403, 'forbidden', 'dispatch roles only');
        const alert = await deps.store.getAlert(req.params.id);
        // SPEC §8 community walls, as for the other alert actions.
        const scope = await accessScope(deps, staff);
        if (!alert || !scope.has(alert.gridId))
          throw new HttpError(404, 'not_found', `no alert ${req.params.id}`);
        const named = [...new Set([...alert.responders, ...(alert.assigneeId ? [alert.assigneeId] : [])])];
        const to = req.body?.staffId ? [req.body.staffId] : named;
        if (req.body?.staffId && !(await deps.store.getStaff(req.body.staffId)))
          throw new HttpError(400, 'bad_request', `body.staffId: no staff member ${req.body.staffId}`, {
            field: 'body.staffId',
          });
        if (to.length === 0) throw new HttpError(409, 'nobody', 'nobody to send to: assign the alert first');
        const r = await deps.alerts.resend(alert.id, to);
        await deps.store.audit({
          at: deps.clock.now(),
          actor: staff.id,
          action: 'alert.resend',
          target: alert.id,
          detail: { to, ok: r.ok },
        });
        if (r.ok) await scope.auditCrossing('alert.resend', alert.id, alert.gridId);
        if (!r.ok) throw new HttpError(STATUS_BY_CODE[r.code] ?? 409, r.code, r.message);
        return reply.code(202).send({ sentTo: to });
      },
    );
  };
