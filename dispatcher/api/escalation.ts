/**
 * Escalation policies (ESC-01): each community's ladder, read by the desks and the admin, set by the
 * admin. A policy is checked in full when saved and refused with every problem named; alerts already
 * raised keep the policy they were raised under (ESC-02).
 */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { communityPolicy, saveCommunityPolicy } from '../alerts/policies.ts';
import { DEFAULT_POLICY, policySchema } from '../alerts/policy.ts';
import type { IssueFacts } from '../words.ts';
import { type ApiDeps, accessScope, HttpError, requireStaff, validationTexts } from './http.ts';

const communityParam = z.object({ community: z.string().min(1).max(128) });

export const escalationRoutes =
  (deps: ApiDeps): FastifyPluginAsyncZod =>
  async (app) => {
    const { store } = deps;

    app.get('/api/escalation-policies', async (req) => {
      const staff = requireStaff(req, 'registry.read');
      const scope = await accessScope(deps, staff);
      const communities = [
        ...new Set((await store.listGrids()).filter((g) => scope.has(g.id)).map((g) => g.community)),
      ].sort();
      return {
        default: DEFAULT_POLICY,
        communities: await Promise.all(communities.map((c) => communityPolicy(store, c))),
      };
    });

    app.put(
      '/api/escalation-policies/:community',
      { schema: { params: communityParam, body: z.unknown() } },
      async (req) => {
        const staff = requireStaff(req, 'registry.write');
        const { community } = req.params;
        if (!(await store.listGrids()).some((g) => g.community === community))
          throw new HttpError(404, 'not_found', `no community ${community}`);
        // Every problem at once, each with its field (SPEC §11: a 400 names the field).
        const parsed = policySchema.safeParse(req.body);
        if (!parsed.success) {
          const issues = parsed.error.issues;
          const field = (i: (typeof issues)[number]) => ['body', ...i.path].join('.');
          throw new HttpError(
            400,
            'bad_request',
            issues.map((i) => `${field(i)}: ${i.message}`).join('; '),
            // WORDS-02: every problem in both languages, each naming its field.
            { field: field(issues[0]!), ...validationTexts(issues as IssueFacts[]) },
          );
        }
        await saveCommunityPolicy(store, community, parsed.data, deps.clock.now(), staff.id);
        // ESC-02: alerts raised from now on, on every dispatcher instance, keep the new policy.
        await deps.directory.invalidatePolicy(community);
        await store.audit({
          at: deps.clock.now(),
          actor: staff.id,
          action: 'escalation_policy.set',
          target: community,
          detail: { onSiteWithinMin: parsed.data.onSiteWithinMin, steps: parsed.data.steps.length },
        });
        return { policy: await communityPolicy(store, community) };
      },
    );
  };
