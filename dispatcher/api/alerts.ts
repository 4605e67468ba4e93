/**
 * Alert routes: the queue, one alert with its evidence and history, and the lifecycle actions (SPEC §11).
 */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { can } from '../access.ts';
import type { Action } from '../alerts/lifecycle.ts';
import { ALERT_STATES, type Alert, PERSON_OUTCOMES, type PersonOutcome } from '../alerts/model.ts';
import type { Staff } from '../registry.ts';
import type { IssueFacts } from '../words.ts';
import {
  type ApiDeps,
  accessScope,
  HttpError,
  requireStaff,
  type Scope,
  STATUS_BY_CODE,
  screenScope,
  validationTexts,
} from './http.ts';

const actionBody = {
  accept: z.object({}).optional(),
  'en-route': z.object({}).optional(),
  'on-site': z.object({}).optional(),
  resolve: z.strictObject({
    outcome: z.enum(PERSON_OUTCOMES as [PersonOutcome, ...PersonOutcome[]]),
    note: z.string().min(1).max(4000),
  }),
  cancel: z.strictObject({ reason: z.string().min(1).max(1000) }),
  assign: z.strictObject({ staffId: z.string().min(1).max(64) }),
  note: z.strictObject({ text: z.string().min(1).max(4000) }),
  call: z.strictObject({ to: z.string().min(1).max(100), result: z.string().min(1).max(1000) }),
  /** A responder cannot go (ALERT-02): the alert passes to the next responder at once. */
  decline: z.strictObject({ reason: z.string().min(1).max(500) }),
} as const;
type ActionName = keyof typeof actionBody;
/** For /docs (OPS-05): every body an action takes; the route checks the one its action names. */
export const alertActionBodies = z.union([
  actionBody.resolve,
  actionBody.cancel,
  actionBody.assign,
  actionBody.note,
  actionBody.call,
  actionBody.decline,
  z.strictObject({}).describe('accept, en-route, on-site: no body'),
]);

/**
 * Anyone sees the alerts of their scope (SPEC §8 community walls: a responder's grids, a desk's
 * communities and those nobody follows, everything for a street-level desk), any alert assigned to them,
 * and any alert whose escalation chain names them (cover from another grid is notified, so must be able to
 * open and accept it).
 */
const mayViewAlert = (staff: Staff, scope: Scope, alert: Alert): boolean =>
  scope.has(alert.gridId) || alert.assigneeId === staff.id || alert.responders.includes(staff.id);
const ACTIONS = Object.keys(actionBody) as ActionName[];
/** Actions a responder may take on alerts of their own grids; the rest need the dispatch role. */
const RESPONDER_ACTIONS: ActionName[] = [
  'accept',
  'en-route',
  'on-site',
  'resolve',
  'note',
  'call',
  'decline',
];

export const alertRoutes =
  (deps: ApiDeps): FastifyPluginAsyncZod =>
  async (app) => {
    app.get(
      '/api/alerts',
      {
        schema: {
          querystring: z.object({
            state: z.union([z.literal('open'), z.enum(ALERT_STATES)]).optional(),
            grid: z.string().max(64).optional(),
            limit: z.coerce.number().int().min(1).max(2000).default(500),
          }),
        },
      },
      async (req) => {
        const staff = requireStaff(req);
        // The same scope as the live rooms: a responder's grids, a dispatcher's communities (every
        // community for one who covers no grid), so a screen's first page and its live updates agree.
        const grids = await screenScope(deps, staff);
        const want = req.query.grid ? [req.query.grid] : undefined;
        const gridIds = grids === null ? want : want ? want.filter((g) => grids.includes(g)) : grids;
        // Read the change sequence first: live events after it are newer than this snapshot.
        const changeSeq = await deps.store.currentChangeSeq();
        const alerts = await deps.store.listAlerts({
          state: req.query.state,
          gridIds,
          limit: req.query.limit,
        });
        if (grids !== null && !want && req.query.state === 'open') {
          // Open alerts assigned to this person outside their scope (cover) are theirs too.
          const mine = await deps.store.listAlerts({
            state: 'open',
            involving: staff.id,
            notGridIds: grids,
            limit: 100_000,
          });
          alerts.push(...mine);
        }
        return { alerts, changeSeq, now: deps.clock.now(), rate: deps.clock.rate ?? 1 };
      },
    );

    app.get('/api/alerts/:id', { schema: { params: z.object({ id: z.string().max(80) }) } }, async (req) => {
      const staff = requireStaff(req);
      const alert = await deps.store.getAlert(req.params.id);
      if (!alert || !mayViewAlert(staff, await accessScope(deps, staff), alert))
        throw new HttpError(404, 'not_found', `no alert ${req.params.id}`);
      const [history, deliveries] = await Promise.all([
        deps.store.alertHistory(alert.id),
        deps.store.listDeliveries(alert.id),
      ]);
      return { alert, history, deliveries };
    });

    app.post(
      '/api/alerts/:id/:action',
      {
        schema: {
          params: z.object({ id: z.string().max(80), action: z.enum(ACTIONS) }),
          body: z.unknown(),
        },
      },
      async (req) => {
        const staff = requireStaff(req);
        const name = req.params.action;
        const parsed = actionBody[name].safeParse(req.body ?? undefined);
        if (!parsed.success) {
          const i = parsed.error.issues[0]!;
          throw new HttpError(
            400,
            'bad_request',
            `body${i.path.length ? `.${i.path.join('.')}` : ''}: ${i.message}`,
            {
              field: `body.${i.path.join('.')}`,
              ...validationTexts(parsed.error.issues as IssueFacts[]),
            },
          );
        }
        const alert = await deps.store.getAlert(req.params.id);
        const scope = await accessScope(deps, staff);
        if (!alert || !mayViewAlert(staff, scope, alert))
          throw new HttpError(404, 'not_found', `no alert ${req.params.id}`);
        const dispatch = can(staff, 'alerts.act.all');
        if (!dispatch && !(can(staff, 'alerts.respond') && RESPONDER_ACTIONS.includes(name))) {
          throw new HttpError(403, 'forbidden', `your role may not ${name} alerts`);
        }
        const body = (parsed.data ?? {}) as Record<string, string>;
        let action: Action;
        switch (name) {
          case 'resolve':
            action = {
              type: 'resolve',
              outcome: body.outcome as Exclude<Action & { type: 'resolve' }, never>['outcome'],
              note: body.note!,
            };
            break;
          case 'cancel':
            action = { type: 'cancel', reason: body.reason! };
            break;
          case 'assign': {
            const target = await deps.store.getStaff(body.staffId!);
            if (!target)
              throw new HttpError(400, 'bad_request', `body.staffId: no staff member ${body.staffId}`, {
                field: 'body.staffId',
              });
            action = { type: 'assign', staffId: target.id };
            break;
          }
          case 'note':
            action = { type: 'note', text: body.text! };
            break;
          case 'call':
            action = { type: 'call', to: body.to!, result: body.result! };
            break;
          case 'decline':
            action = { type: 'decline', reason: body.reason!, onDuty: [] };
            break;
          default:
            action = { type: name };
        }
        const actor = { id: staff.id, channel: 'api' as const, canOverride: dispatch };
        const r =
          action.type === 'decline'
            ? await deps.alerts.decline(alert.id, action.reason, actor)
            : await deps.alerts.act(alert.id, action, actor);
        await deps.store.audit({
          at: deps.clock.now(),
          actor: staff.id,
          action: `alert.${name}`,
          target: alert.id,
          detail: { ok: r.ok },
        });
        // An alert of a community nobody follows, acted on by another community's desk (SPEC §8).
        if (r.ok) await scope.auditCrossing(`alert.${name}`, alert.id, alert.gridId);
        if (!r.ok) throw new HttpError(STATUS_BY_CODE[r.code] ?? 409, r.code, r.message, r.details);
        return { alert: r.value };
      },
    );
  };
