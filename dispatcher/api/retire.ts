/**
 * Retiring (DATA-04): a grid, household, staff member or device leaves every list, routing and the rules,
 * but stays readable where its alerts and the audit log name it, and its id is never reused. Nothing that
 * still depends on it is retired: a grid with live households, a household with open alerts, yourself.
 */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { RetiredKind } from '../store/store.ts';
import { type ApiDeps, HttpError, requireStaff } from './http.ts';
import { idParam } from './params.ts';
import type { RetirableKind } from './types.ts';

const KINDS: Record<RetirableKind, RetiredKind> = {
  grids: 'grid',
  households: 'household',
  staff: 'staff',
  devices: 'device',
};

export const retireRoutes =
  (deps: ApiDeps): FastifyPluginAsyncZod =>
  async (app) => {
    const { store } = deps;
    /** What must be true before a record may go, and what must follow it (sessions, caches). */
    const guard: Record<RetiredKind, (id: string, actorId: string) => Promise<() => Promise<void>>> = {
      grid: async (id) => {
        if (!(await store.getGrid(id))) throw new HttpError(404, 'not_found', `no grid ${id}`);
        if ((await store.listHouseholds({ gridIds: [id] })).length > 0)
          throw new HttpError(409, 'conflict', `grid ${id} still has households: move or retire them first`);
        return async () => {
          await deps.directory.invalidateHome();
          await deps.directory.invalidateRoster();
          await deps.staffChanged?.([]);
        };
      },
      household: async (id) => {
        if (!(await store.getHousehold(id))) throw new HttpError(404, 'not_found', `no household ${id}`);
        if ((await store.listAlerts({ householdId: id, state: 'open', limit: 1 })).length > 0)
          throw new HttpError(409, 'conflict', `household ${id} has open alerts: close them first`);
        const devices = await store.listDevices({ homeId: id });
        return async () => {
          for (const d of devices) deps.revokeDevice?.(d.id);
          await deps.directory.invalidateHome(id);
        };
      },
      staff: async (id, actorId) => {
        if (!(await store.getStaff(id))) throw new HttpError(404, 'not_found', `no staff ${id}`);
        // OPS-03: nobody can lock themselves out of their own service.
        if (id === actorId) throw new HttpError(409, 'conflict', 'you cannot retire yourself');
        return async () => {
          await deps.auth.endSessions(id);
          await deps.directory.invalidateRoster();
          await deps.staffChanged?.([id]);
        };
      },
      device: async (id) => {
        const d = await store.getDeviceState(id);
        if (!d) throw new HttpError(404, 'not_found', `no device ${id}`);
        return async () => {
          deps.revokeDevice?.(id);
          await deps.directory.invalidateHome(d.homeId);
        };
      },
    };

    for (const [path, kind] of Object.entries(KINDS) as [RetirableKind, RetiredKind][]) {
      app.post(`/api/${path}/:id/retire`, { schema: { params: idParam } }, async (req) => {
        const actor = requireStaff(req, 'registry.write');
        const { id } = req.params;
        if ((await store.retiredAt(kind, id)) !== null)
          throw new HttpError(404, 'not_found', `${kind} ${id} is already retired`);
        const after = await guard[kind](id, actor.id);
        const at = deps.clock.now();
        if (!(await store.retire(kind, id, at))) throw new HttpError(404, 'not_found', `no ${kind} ${id}`);
        await after();
        await store.audit({ at, actor: actor.id, action: `${kind}.retire`, target: id, detail: {} });
        return { retired: { kind: path, id, at } };
      });
    }
  };
