/**
 * Registry routes (SPEC §4, §11): grids, households, staff, roster, devices, and who is on duty now.
 * Access notes are sensitive: returned only on request, to roles that may see them, and every read is audited.
 */

import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { hashPassword } from '../../gateway/secrets.ts';
import { newId } from '../../kernel/ids.ts';
import { can } from '../access.ts';
import { familyOptInChanges } from '../notify/family.ts';
import { passwordProblem } from '../passwords.ts';
import { gridInput, householdInput, STAFF_ROLES, type StaffRole, staffInput } from '../registry.ts';
import { ID_PATTERN } from '../terms.ts';
import { type ApiDeps, accessScope, HttpError, requireStaff } from './http.ts';
import { epochMs, idParam } from './params.ts';
import type { RosterWeekView } from './types.ts';

/** SPEC §8: a password fit for the account's roles (passwords.ts), or a 400 naming the field. */
export function checkPassword(password: string, roles: readonly StaffRole[], field: string): void {
  const problem = passwordProblem(password, roles);
  if (problem) throw new HttpError(400, 'bad_request', `${field}: ${problem}`, { field });
}

const rosterBody = z.strictObject({
  gridId: z.string().min(1).max(64),
  entries: z
    .array(
      z.strictObject({
        shift: z.enum(['day', 'night']),
        weekdays: z.array(z.number().int().min(1).max(7)).default([]),
        staffIds: z.array(z.string().min(1).max(64)).min(1),
      }),
    )
    .max(50),
});

const overrideBody = z.strictObject({
  gridId: z.string().min(1).max(64),
  date: z.iso.date(),
  shift: z.enum(['day', 'night']),
  kind: z.enum(['leave', 'cover', 'swap']),
  staffId: z.string().min(1).max(64).nullable().default(null),
  replacementId: z.string().min(1).max(64).nullable().default(null),
});

export const registryRoutes =
  (deps: ApiDeps): FastifyPluginAsyncZod =>
  async (app) => {
    const { store } = deps;
    const audit = (actor: string, action: string, target: string, detail: Record<string, unknown> = {}) =>
      store.audit({ at: deps.clock.now(), actor, action, target, detail });
    /** A roster line or override naming nobody we know would leave a shift silently short. */
    const checkStaff = async (ids: string[], field: string) => {
      const known = new Set((await store.listStaff()).map((s) => s.id));
      const missing = [...new Set(ids)].filter((s) => !known.has(s));
      if (missing.length)
        throw new HttpError(400, 'bad_request', `${field}: no staff ${missing.join(', ')}`, { field });
    };
    /** DATA-04: a retired id names its history for good; it is never given to a new record. */
    const refuseRetired = async (kind: 'grid' | 'household', id: string) => {
      if ((await store.retiredAt(kind, id)) !== null)
        throw new HttpError(409, 'conflict', `${kind} ${id} was retired; its id is not reused`);
    };
    /** Staff may only cover grids that exist (a typo would leave a grid silently unstaffed). */
    const checkGrids = async (gridIds: string[] | undefined) => {
      if (!gridIds?.length) return;
      const known = new Set((await store.listGrids()).map((g) => g.id));
      const missing = gridIds.filter((g) => !known.has(g));
      if (missing.length)
        throw new HttpError(400, 'bad_request', `body.gridIds: no grid ${missing.join(', ')}`, {
          field: 'body.gridIds',
        });
    };

    app.get('/api/me', async (req) => ({ staff: requireStaff(req) }));

    app.get('/api/grids', async (req) => {
      const staff = requireStaff(req);
      const scope = await accessScope(deps, staff);
      const grids = await store.listGrids();
      return { grids: grids.filter((g) => scope.has(g.id)) };
    });
    app.post('/api/grids', { schema: { body: gridInput } }, async (req, reply) => {
      const staff = requireStaff(req, 'registry.write');
      await refuseRetired('grid', req.body.id);
      if (req.body.leaderId) await checkStaff([req.body.leaderId], 'body.leaderId');
      await store.upsertGrid(req.body);
      // Cached homes carry their grid (name, community): a changed grid must reach the next alert.
      await deps.directory.invalidateHome();
      await audit(staff.id, 'grid.upsert', req.body.id);
      // A grid's community decides which desks follow it: live screens are re-scoped.
      await deps.staffChanged?.([]);
      return reply.code(201).send({ grid: req.body });
    });

    app.get('/api/staff', async (req) => {
      const staff = requireStaff(req, 'registry.read');
      const scope = await accessScope(deps, staff);
      // A community's desk sees the staff of its community and the street-level staff (no grid).
      const people = await store.listStaff();
      return {
        staff:
          scope.grids === null
            ? people
            : people.filter((p) => p.gridIds.length === 0 || p.gridIds.some((g) => scope.has(g))),
      };
    });
    app.post('/api/staff', { schema: { body: staffInput } }, async (req, reply) => {
      const actor = requireStaff(req, 'registry.write');
      const { password, ...rest } = req.body;
      await checkGrids(rest.gridIds);
      if (await store.getStaffByUsername(rest.username))
        throw new HttpError(409, 'conflict', `username ${rest.username} is taken`);
      if (await store.getStaff(rest.id)) throw new HttpError(409, 'conflict', `staff ${rest.id} exists`);
      checkPassword(password, rest.roles, 'body.password');
      await store.createStaff({ ...rest, passwordHash: await hashPassword(password) });
      await audit(actor.id, 'staff.create', rest.id);
      // A new desk changes which communities nobody follows (access.ts dispatchCommunities).
      await deps.staffChanged?.([rest.id]);
      return reply.code(201).send({ staff: { ...rest, disabled: false } });
    });

    app.get(
      '/api/roster',
      { schema: { querystring: z.object({ grid: z.string().max(64).optional() }) } },
      async (req) => {
        const staff = requireStaff(req, 'registry.read');
        const scope = await accessScope(deps, staff);
        const [entries, overrides] = await Promise.all([
          store.listRoster(req.query.grid),
          store.listOverrides(req.query.grid),
        ]);
        return {
          entries: entries.filter((e) => scope.has(e.gridId)),
          overrides: overrides.filter((o) => scope.has(o.gridId)),
        };
      },
    );
    /**
     * The week grid (SPEC §4): per day and shift, the rotation, the overrides and who is on duty, computed
     * as routing computes it; `running` is the shift in force at `at` (default now), which an override of
     * the running shift must name (a night shift is dated by its evening).
     */
    app.get(
      '/api/roster/week',
      {
        schema: {
          querystring: z.object({
            grid: z.string().min(1).max(64),
            at: z.coerce.number().int().positive().optional(),
          }),
        },
      },
      async (req): Promise<RosterWeekView> => {
        const staff = requireStaff(req, 'registry.read');
        // SEC-02: another community's week is not there for this desk.
        if (!(await store.getGrid(req.query.grid)) || !(await accessScope(deps, staff)).has(req.query.grid))
          throw new HttpError(404, 'not_found', `no grid ${req.query.grid}`);
        const at = req.query.at ?? deps.clock.now();
        return { gridId: req.query.grid, at, ...(await deps.directory.week(req.query.grid, at)) };
      },
    );
    app.post('/api/roster', { schema: { body: rosterBody } }, async (req) => {
      const actor = requireStaff(req, 'registry.write');
      if (!(await store.getGrid(req.body.gridId)))
        throw new HttpError(400, 'bad_request', `body.gridId: no grid ${req.body.gridId}`);
      await checkStaff(
        req.body.entries.flatMap((e) => e.staffIds),
        'body.entries.staffIds',
      );
      await store.setRoster(
        req.body.gridId,
        req.body.entries.map((e) => ({ ...e, gridId: req.body.gridId })),
      );
      await deps.directory.invalidateRoster();
      await audit(actor.id, 'roster.set', req.body.gridId);
      return { entries: await store.listRoster(req.body.gridId) };
    });
    app.post('/api/roster/overrides', { schema: { body: overrideBody } }, async (req, reply) => {
      const actor = requireStaff(req, 'registry.write');
      const o = { id: newId('ov', deps.clock.now()), ...req.body };
      if (!(await store.getGrid(o.gridId)))
        throw new HttpError(400, 'bad_request', `body.gridId: no grid ${o.gridId}`, { field: 'body.gridId' });
      // Leave names who is off, cover who stands in, a swap both (SPEC §4).
      if ((o.kind === 'leave' || o.kind === 'swap') && !o.staffId)
        throw new HttpError(400, 'bad_request', `body.staffId: required for ${o.kind}`, {
          field: 'body.staffId',
        });
      if ((o.kind === 'cover' || o.kind === 'swap') && !o.replacementId)
        throw new HttpError(400, 'bad_request', `body.replacementId: required for ${o.kind}`, {
          field: 'body.replacementId',
        });
      await checkStaff(
        [o.staffId, o.replacementId].filter((x): x is string => x !== null),
        'body',
      );
      await store.addOverride(o);
      await deps.directory.invalidateRoster();
      await audit(actor.id, 'roster.override', o.gridId, { date: o.date, shift: o.shift, kind: o.kind });
      return reply.code(201).send({ override: o });
    });
    /** An override entered by mistake is withdrawn; routing follows at once (SPEC §4). */
    app.delete('/api/roster/overrides/:id', { schema: { params: idParam } }, async (req) => {
      const actor = requireStaff(req, 'registry.write');
      const deleted = await store.deleteOverride(req.params.id);
      if (!deleted) throw new HttpError(404, 'not_found', `no roster override ${req.params.id}`);
      await deps.directory.invalidateRoster();
      await audit(actor.id, 'roster.override_delete', deleted.gridId, {
        date: deleted.date,
        shift: deleted.shift,
        kind: deleted.kind,
      });
      return { deleted };
    });

    /** Who is on duty now, per visible grid (the dispatch screen's duty panel). */
    app.get('/api/duty', async (req) => {
      const staff = requireStaff(req);
      const scope = await accessScope(deps, staff);
      const [grids, people] = await Promise.all([store.listGrids(), store.listStaff()]);
      const names = new Map(people.map((p) => [p.id, p.name]));
      const now = deps.clock.now();
      const out = [];
      for (const g of grids.filter((g) => scope.has(g.id))) {
        const d = await deps.directory.duty(g.id, now);
        out.push({
          gridId: g.id,
          gridName: g.name,
          shift: d.shift.shift,
          staff: d.staffIds.map((id) => ({ id, name: names.get(id) ?? id })),
        });
      }
      return { duty: out, now };
    });

    app.get('/api/households', async (req) => {
      const staff = requireStaff(req);
      if (!can(staff, 'households.read.all') && !can(staff, 'households.read.own'))
        throw new HttpError(403, 'forbidden', 'no access');
      const grids = (await accessScope(deps, staff)).grids;
      const list = await store.listHouseholds(grids === null ? {} : { gridIds: grids });
      return {
        households: list.map(({ accessNotes: _hidden, ...h }) => ({
          ...h,
          hasAccessNotes: _hidden.length > 0,
        })),
      };
    });
    app.post('/api/households', { schema: { body: householdInput } }, async (req, reply) => {
      const actor = requireStaff(req, 'registry.write');
      await refuseRetired('household', req.body.id);
      if (
        !(await store.getGrid(req.body.gridId)) ||
        (await store.retiredAt('grid', req.body.gridId)) !== null
      )
        throw new HttpError(400, 'bad_request', `body.gridId: no grid ${req.body.gridId}`);
      const family = familyOptInChanges(await store.getHousehold(req.body.id), req.body);
      await store.upsertHousehold(req.body);
      await deps.directory.invalidateHome(req.body.id);
      await audit(actor.id, 'household.upsert', req.body.id);
      if (family.length) await audit(actor.id, 'household.family_updates', req.body.id, { contacts: family });
      const { accessNotes: _hidden, ...h } = req.body;
      return reply.code(201).send({ household: h });
    });
    app.get(
      '/api/households/:id',
      { schema: { params: idParam, querystring: z.object({ include: z.enum(['accessNotes']).optional() }) } },
      async (req) => {
        const staff = requireStaff(req);
        const h = await store.getHousehold(req.params.id);
        const scope = await accessScope(deps, staff);
        const allowed =
          h &&
          (can(staff, 'households.read.all') || can(staff, 'households.read.own')) &&
          scope.has(h.gridId);
        if (!h || !allowed) throw new HttpError(404, 'not_found', `no household ${req.params.id}`);
        await scope.auditCrossing('household.read', h.id, h.gridId);
        const { accessNotes, ...rest } = h;
        let notes: string | undefined;
        if (req.query.include === 'accessNotes') {
          if (!can(staff, 'households.sensitive'))
            throw new HttpError(403, 'forbidden', 'your role may not read access notes');
          notes = accessNotes;
          await audit(staff.id, 'household.read_access_notes', h.id);
        }
        const [devices, alerts] = await Promise.all([
          store.listDevices({ homeId: h.id }),
          store.listAlerts({ householdId: h.id, limit: 100 }),
        ]);
        return { household: notes === undefined ? rest : { ...rest, accessNotes: notes }, devices, alerts };
      },
    );

    /** SPEC §8: every action and every read of sensitive fields, queryable by admins. */
    app.get(
      '/api/audit',
      {
        schema: {
          querystring: z.object({
            actor: z.string().min(1).max(64).optional(),
            target: z.string().min(1).max(80).optional(),
            action: z.string().min(1).max(80).optional(),
            from: epochMs.optional(),
            to: epochMs.optional(),
            limit: z.coerce.number().int().min(1).max(1000).default(100),
          }),
        },
      },
      async (req) => {
        requireStaff(req, 'audit.read');
        return { entries: await store.queryAudit(req.query) };
      },
    );

    const staffPatch = z.strictObject({
      name: z.string().min(1).max(100).optional(),
      phone: z.string().max(40).optional(),
      roles: z.array(z.enum(STAFF_ROLES)).min(1).optional(),
      gridIds: z.array(z.string().regex(ID_PATTERN, 'invalid grid id')).optional(),
      disabled: z.boolean().optional(),
      password: z.string().min(8).max(200).optional(),
    });
    app.patch('/api/staff/:id', { schema: { params: idParam, body: staffPatch } }, async (req) => {
      const actor = requireStaff(req, 'registry.write');
      const { password, ...patch } = req.body;
      await checkGrids(patch.gridIds);
      const target = await store.getStaff(req.params.id);
      if (!target || (await store.retiredAt('staff', target.id)) !== null)
        throw new HttpError(404, 'not_found', `no staff ${req.params.id}`);
      if (password) checkPassword(password, patch.roles ?? target.roles, 'body.password');
      const passwordHash = password ? await hashPassword(password) : undefined;
      if (!(await store.updateStaff(req.params.id, { ...patch, passwordHash })))
        throw new HttpError(404, 'not_found', `no staff ${req.params.id}`);
      // SPEC §8: a new password or a disabled account ends every session at once (old tokens stop working).
      const ended = password || patch.disabled ? await deps.auth.endSessions(req.params.id) : 0;
      await audit(actor.id, 'staff.update', req.params.id, {
        fields: Object.keys(req.body),
        sessionsEnded: ended,
      });
      // Who may be on duty changed (disabled, roles): routing reads the roster afresh.
      await deps.directory.invalidateRoster();
      // Live pages and apps: closed if their session ended, re-scoped to the new rights otherwise.
      await deps.staffChanged?.([req.params.id]);
      const { passwordHash: _omit, ...staff } = (await store.getStaff(req.params.id))!;
      return { staff };
    });

    /** SPEC §4: the `away` status (hospital, staying with family) with an end date; suspends activity rules. */
    app.post(
      '/api/households/:id/away',
      {
        schema: {
          params: idParam,
          body: z.strictObject({
            until: z.union([epochMs, z.iso.datetime({ offset: true })]),
            reason: z.string().min(1).max(200),
          }),
        },
      },
      async (req) => {
        const actor = requireStaff(req, 'registry.write');
        const h = await store.getHousehold(req.params.id);
        if (!h) throw new HttpError(404, 'not_found', `no household ${req.params.id}`);
        const until = typeof req.body.until === 'number' ? req.body.until : Date.parse(req.body.until);
        if (until <= deps.clock.now())
          throw new HttpError(400, 'bad_request', 'body.until: must be in the future', {
            field: 'body.until',
          });
        await store.upsertHousehold({ ...h, awayUntil: until, awayReason: req.body.reason });
        await deps.directory.invalidateHome(h.id);
        await audit(actor.id, 'household.away', h.id, { until });
        return { householdId: h.id, awayUntil: until, awayReason: req.body.reason };
      },
    );
    app.delete('/api/households/:id/away', { schema: { params: idParam } }, async (req) => {
      const actor = requireStaff(req, 'registry.write');
      const h = await store.getHousehold(req.params.id);
      if (!h) throw new HttpError(404, 'not_found', `no household ${req.params.id}`);
      await store.upsertHousehold({ ...h, awayUntil: null, awayReason: null });
      await deps.directory.invalidateHome(h.id);
      await audit(actor.id, 'household.back', h.id);
      return { householdId: h.id, awayUntil: null, awayReason: null };
    });
  };
