/**
 * Login and logout (SPEC §11): a bearer token for the API and the same token as an HttpOnly session cookie
 * for the console. Login attempts are rate limited per address.
 */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { permissionsOf } from '../access.ts';
import { type ApiDeps, HttpError, requireStaff, SESSION_COOKIE } from './app.ts';
import type { LoginResponse, SessionInfo } from './types.ts';

export const sessionRoutes =
  (deps: ApiDeps): FastifyPluginAsyncZod =>
  async (app) => {
    app.post(
      '/api/auth/login',
      {
        // Brute-force limit per address and account: 10 attempts a minute.
        config: {
          rateLimit: {
            max: 10,
            timeWindow: '1 minute',
            keyGenerator: (req) =>
              `${req.ip}|${String((req.body as { username?: unknown } | undefined)?.username ?? '')}`,
          },
        },
        schema: {
          body: z.strictObject({ username: z.string().min(1).max(64), password: z.string().min(1).max(200) }),
        },
      },
      async (req, reply) => {
        const r = await deps.auth.login(req.body.username, req.body.password);
        if (!r) {
          deps.log.info({ ip: req.ip }, 'login refused');
          throw new HttpError(401, 'bad_credentials', 'wrong username or password');
        }
        await deps.store.audit({
          at: deps.clock.now(),
          actor: r.staff.id,
          action: 'login',
          target: r.staff.id,
          detail: {},
        });
        reply.setCookie(SESSION_COOKIE, r.token, {
          httpOnly: true,
          sameSite: 'strict',
          path: '/',
          expires: new Date(r.expiresAt),
        });
        const body: LoginResponse = { token: r.token, expiresAt: r.expiresAt, staff: r.staff };
        return body;
      },
    );
    /**
     * Who is logged in, what they may do, and the community's time zone and shift boundaries, so the console
     * shows every time in the community's zone (SPEC §4, §8), not the browser's.
     */
    app.get('/api/session', async (req): Promise<SessionInfo> => {
      const staff = requireStaff(req);
      return {
        staff,
        permissions: permissionsOf(staff),
        zone: deps.directory.zone,
        shifts: deps.directory.shifts,
        now: deps.clock.now(),
        mqttPort: deps.mqttPort?.() ?? 0,
      };
    });
    app.post('/api/auth/logout', async (req, reply) => {
      if (req.token) await deps.auth.logout(req.token);
      // The logged-out page's live connection must not keep receiving alerts.
      if (req.staff) deps.endStaffSessions?.(req.staff.id);
      reply.clearCookie(SESSION_COOKIE, { path: '/' });
      return { ok: true };
    });
  };
