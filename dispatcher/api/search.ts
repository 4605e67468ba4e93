/**
 * Search (CONSOLE-04, SPEC §8): any household by address, resident name or phone, with or without an
 * alert, in the reader's scope (SEC-02). The store runs the search as a query on either backend.
 */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { can } from '../access.ts';
import { householdSearch } from '../store/store.ts';
import { type ApiDeps, accessScope, HttpError, requireStaff } from './http.ts';
import type { HouseholdHit } from './types.ts';

const LIMIT = 50;

export const searchRoutes =
  (deps: ApiDeps): FastifyPluginAsyncZod =>
  async (app) => {
    app.get(
      '/api/search/households',
      {
        schema: {
          tags: ['households'],
          summary: 'Find households by address, resident name or phone',
          description:
            'CONSOLE-04: every whitespace-separated term must be part of the address (building, unit, room), ' +
            'the id, a resident’s name, or (digits) a resident’s or a contact’s phone; Chinese as typed. At ' +
            'most 50, by id, in the reader’s grids. Names, phones and addresses go only to roles that read ' +
            'household files; access notes never (they are read one household at a time, audited).',
          querystring: z.object({ q: z.string().trim().min(1).max(100) }),
        },
      },
      async (req) => {
        const staff = requireStaff(req);
        if (!can(staff, 'households.read.all') && !can(staff, 'households.read.own'))
          throw new HttpError(403, 'forbidden', 'your role may not read household files');
        const search = householdSearch(req.query.q);
        if (!search) return { households: [], truncated: false };
        const scope = await accessScope(deps, staff);
        const [found, grids] = await Promise.all([
          deps.store.searchHouseholds(search, {
            gridIds: scope.grids ?? undefined,
            limit: LIMIT + 1,
          }),
          deps.store.listGrids(),
        ]);
        const gridNames = new Map(grids.map((g) => [g.id, g.name]));
        const households: HouseholdHit[] = found.slice(0, LIMIT).map((h) => ({
          id: h.id,
          gridId: h.gridId,
          gridName: gridNames.get(h.gridId) ?? h.gridId,
          address: h.address,
          residents: h.residents.map((r) => ({ name: r.name, phone: r.phone ?? null })),
          awayUntil: h.awayUntil,
          awayReason: h.awayReason,
        }));
        return { households, truncated: found.length > LIMIT };
      },
    );
  };
