/**
 * Login and logout (SPEC §11): a bearer token for the API and the same token as an HttpOnly session cookie
 * for the console. Login attempts are rate limited per address.
 */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { permissionsOf } from '../access.ts';
import { type ApiDeps, HttpError, requireStaff, SESSION_COOKIE } from './http.ts';
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
        const r = await deps.auth.login(req.body.username, req.body.password, req.ip);
        if (!r.ok && r.reason === 'throttled') {
          // Per address across usernames, in all, or too many checks waiting (auth.ts): no password work.
          deps.metrics.loginThrottled.inc({ bound: r.bound });
          deps.log.warn({ ip: req.ip, bound: r.bound }, 'login throttled');
          reply.header('retry-after', String(Math.ceil(r.retryAfterMs / 1000)));
          throw new HttpError(429, 'too_many_logins', 'too many login attempts; try again later');
        }
        if (!r.ok) {
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
          // Over TLS (directly, or behind a proxy trusted with TRUST_PROXY that says so) the cookie never
          // travels in clear text.
          secure: req.protocol === 'https',
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
        clockRate: deps.clock.rate ?? 1,
        mqttPort: deps.mqttPort?.() ?? 0,
      };
    });
    app.post('/api/auth/logout', async (req, reply) => {
      if (req.token) await deps.auth.logout(req.token);
      // The logged-out page's live connections (socket.io, MQTT with this token) must not keep receiving
      // alerts: every live connection is checked against the sessions again.
      if (req.staff) await deps.staffChanged?.([req.staff.id]);
      reply.clearCookie(SESSION_COOKIE, { path: '/' });
      return { ok: true };
    });
  };
