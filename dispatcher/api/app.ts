/**
 * The HTTP app (SPEC §11): built in a function, never listening here (fastify's testing guide). Routes are
 * plugins with zod schemas; every error leaves through one handler with a stable code.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import fastifyCookie from '@fastify/cookie';
import fastifyRateLimit from '@fastify/rate-limit';
import fastifyStatic from '@fastify/static';
import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  LogController,
} from 'fastify';
import {
  hasZodFastifySchemaValidationErrors,
  jsonSchemaTransform,
  serializerCompiler,
  validatorCompiler,
  type ZodTypeProvider,
} from 'fastify-type-provider-zod';
import { policySchema } from '../alerts/policy.ts';
import { errorTexts } from '../words.ts';
import { alertActionBodies, alertRoutes } from './alerts.ts';
import { baselineRoutes } from './baseline.ts';
import { deviceRoutes } from './devices.ts';
import { dispatchRoutes } from './dispatch.ts';
import { DOC_TAGS, OPERATION_DOCS } from './docs.ts';
import { escalationRoutes } from './escalation.ts';
import { type ApiDeps, HttpError, requireStaff, SESSION_COOKIE, validationTexts } from './http.ts';
import { importExportRoutes } from './import-export.ts';
import { incidentRoutes } from './incidents.ts';
import { crossOriginRefusal, type OriginPolicy, SAFE_METHODS } from './origin.ts';
import { pushRoutes } from './push.ts';
import { registryRoutes } from './registry.ts';
import { reportRoutes } from './reports.ts';
import { retireRoutes } from './retire.ts';
import { searchRoutes } from './search.ts';
import { sessionRoutes } from './session.ts';
import { timelineRoutes } from './timeline.ts';

// Where they were first defined: importers outside the route files (the live channel, tests) keep working.
export {
  type ApiDeps,
  accessScope,
  HttpError,
  requireStaff,
  type Scope,
  SESSION_COOKIE,
  STATUS_BY_CODE,
  screenScope,
} from './http.ts';

/**
 * Response headers of every answer (README, Security). The console loads its script, style and images from
 * its own origin and talks to its own origin (fetch, socket.io's WebSocket); Preact sets styles through the
 * CSSOM, which style-src does not restrict. Swagger UI at /docs works under the same policy.
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self' data:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

/** Swagger UI (/docs) inserts <style> elements of its own: inline style there, still no inline script. */
export const DOCS_CONTENT_SECURITY_POLICY = CONTENT_SECURITY_POLICY.replace(
  "style-src 'self'",
  "style-src 'self' 'unsafe-inline'",
);

export const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy': CONTENT_SECURITY_POLICY,
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  // Another origin cannot embed an answer (an export as a script, a report as an image) even without CORS.
  'cross-origin-resource-policy': 'same-origin',
  'permissions-policy': 'camera=(), microphone=(), geolocation=()',
};

/**
 * The /api routes anyone may call without a session: logging in, and logging out (which ends the session it
 * carries, if any). Every other /api route needs one (the hook in buildApp).
 */
export const PUBLIC_API_ROUTES: ReadonlySet<string> = new Set([
  'POST /api/auth/login',
  'POST /api/auth/logout',
]);

/** One registered route: what the authorization matrix test walks (test/dispatcher/access-matrix.test.ts). */
export interface RouteEntry {
  method: string;
  url: string;
  /** The query parameters its schema names (the query fuzz test tries each). */
  query: string[];
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Every route as registered (fastify's onRoute), HEAD twins excluded. */
    routeTable: RouteEntry[];
  }
}

export async function buildApp(deps: ApiDeps): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: deps.log.child({ module: 'http' }) as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 1024 * 1024,
    // X-Forwarded-For / -Proto only from a configured proxy: the address the login limits key on, and
    // whether the cookie is Secure, must not be a client's claim.
    trustProxy: deps.security?.trustProxy ?? false,
  }).withTypeProvider<ZodTypeProvider>();
  const originPolicy: OriginPolicy = { publicOrigins: deps.security?.publicOrigins ?? [] };
  const routeTable: RouteEntry[] = [];
  app.decorate('routeTable', routeTable);
  app.addHook('onRoute', (r) => {
    // What /docs says of the operation (OPS-05): one table, laid on each route as it is registered.
    const doc = OPERATION_DOCS[`${[r.method].flat()[0]} ${r.url}`];
    if (doc && !r.schema?.hide)
      r.schema = {
        ...r.schema,
        tags: r.schema?.tags ?? [doc.tag],
        summary: r.schema?.summary ?? doc.summary,
        description: r.schema?.description ?? doc.description,
      };
    const qs = r.schema?.querystring as { shape?: Record<string, unknown> } | undefined;
    const query = Object.keys(qs?.shape ?? {});
    for (const method of [r.method].flat())
      if (method !== 'HEAD') routeTable.push({ method, url: r.url, query });
  });
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);

  await app.register(fastifyCookie);
  await app.register(fastifyRateLimit, { global: false, hook: 'preHandler' });
  await app.register(fastifySwagger, {
    openapi: {
      info: {
        title: 'Guardian 365 API',
        version: '1',
        description:
          'Log in with POST /api/auth/login and send the token as `Authorization: Bearer …`. The staff app’s MQTT login uses username `staff:{id}` and the same token as password (see the README).',
      },
      tags: DOC_TAGS,
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
    // The alert actions are one route whose body depends on the action: documented as the union of them.
    // The policy route validates its body itself (every problem at once): documented as the policy.
    transform: (input) =>
      jsonSchemaTransform(
        input.url === '/api/alerts/:id/:action'
          ? { ...input, schema: { ...input.schema, body: alertActionBodies } }
          : input.url === '/api/escalation-policies/:community'
            ? { ...input, schema: { ...input.schema, body: policySchema } }
            : input,
      ),
  });
  await app.register(fastifySwaggerUi, { routePrefix: '/docs' });

  // SPEC §8: the console runs from its own files only (no inline script or style, no other origin), is
  // never framed, and tells other sites nothing. Every answer carries these, errors and static files too.
  app.addHook('onRequest', async (req, reply) => {
    reply.headers(SECURITY_HEADERS);
    if (req.url === '/docs' || req.url.startsWith('/docs/'))
      reply.header('content-security-policy', DOCS_CONTENT_SECURITY_POLICY);
    if (req.protocol === 'https') reply.header('strict-transport-security', 'max-age=15552000');
  });

  // Only the bodies the API reads: JSON everywhere, text/csv for the CSV imports (import-export.ts). A
  // text/plain body (what an HTML form of another origin can send without a preflight) is refused (415).
  app.removeContentTypeParser('text/plain');

  app.decorateRequest('staff', null);
  app.decorateRequest('token', null);
  app.addHook('onRequest', async (req) => {
    const header = req.headers.authorization;
    const bearer = header?.startsWith('Bearer ') ? header.slice(7) : undefined;
    const cookie = bearer ? undefined : req.cookies[SESSION_COOKIE];
    // SPEC §8, SEC-03: requests from other origins are refused. The cookie is what a forged request rides on, so
    // any change it would authorize, and a login from a browser (login CSRF), must come from the console.
    const browserLogin =
      req.url.startsWith('/api/auth/login') &&
      !bearer &&
      (req.headers.origin !== undefined || req.headers['sec-fetch-site'] !== undefined);
    if (!SAFE_METHODS.has(req.method) && (cookie !== undefined || browserLogin)) {
      const why = crossOriginRefusal(req.headers, originPolicy);
      if (why) {
        deps.metrics.httpCrossOrigin.inc();
        req.log.warn({ method: req.method, path: req.routeOptions.url, why }, 'cross-origin request refused');
        throw new HttpError(403, 'cross_origin', `refused: not from the console's origin (${why})`);
      }
    }
    const token = bearer ?? cookie;
    if (token) {
      req.token = token;
      req.staff = await deps.auth.authenticate(token);
    }
  });

  app.setErrorHandler((error: unknown, req: FastifyRequest, reply: FastifyReply) => {
    if (hasZodFastifySchemaValidationErrors(error)) {
      const v = error.validation[0];
      const where = `${error.validationContext ?? 'body'}${v?.instancePath ? v.instancePath.replace(/\//g, '.') : ''}`;
      deps.metrics.httpBadRequests.inc();
      const issues = error.validation.map((x) => ({
        code: x.keyword,
        path: x.instancePath
          .split('/')
          .filter(Boolean)
          .map((p) => (/^\d+$/.test(p) ? Number(p) : p)),
        message: x.message ?? 'invalid',
        ...(x.params as object),
      }));
      return reply.code(400).send({
        error: 'bad_request',
        message: `${where}: ${v?.message ?? 'invalid'}`,
        field: where,
        ...validationTexts(issues),
      });
    }
    if (error instanceof HttpError) {
      return (
        reply
          .code(error.status)
          // WORDS-03: every refusal says itself in both languages (a refusal with its own `text` keeps it).
          .send({
            error: error.code,
            message: error.message,
            text: errorTexts(error.code, error.message, error.details),
            ...(error.details ?? {}),
          })
      );
    }
    const fe = error as { statusCode?: number; code?: string; message?: string };
    if (fe.statusCode && fe.statusCode >= 400 && fe.statusCode < 500) {
      // fastify's own client errors (bad JSON, body too large, rate limit), in both languages (WORDS-03).
      const kind =
        fe.statusCode === 413
          ? 'too_large'
          : fe.statusCode === 415
            ? 'unsupported_media'
            : fe.statusCode === 429
              ? 'too_many_requests'
              : fe.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || fe.code === 'FST_ERR_CTP_EMPTY_JSON_BODY'
                ? 'bad_body'
                : 'bad_request';
      return reply.code(fe.statusCode).send({
        error: fe.code ?? 'bad_request',
        message: fe.message,
        text: errorTexts(kind, fe.message ?? ''),
      });
    }
    req.log.error({ err: error }, 'request failed');
    return reply.code(500).send({ error: 'internal', message: 'internal error' });
  });

  app.get('/healthz', { schema: { hide: true } }, async () => ({ ok: true }));
  // Not ready while starting, while the database does not answer, or while the event log cannot write
  // (devices are held): with the reasons (SPEC §12).
  app.get('/readyz', { schema: { hide: true } }, async (_req, reply) => {
    if (!deps.ready()) return reply.code(503).send({ ready: false, reasons: ['starting'] });
    const db = await deps.store.health?.();
    const health = deps.systemHealth?.report();
    const reasons = [
      ...(db && !db.ok ? [db.reason] : []),
      ...(health && !health.ready ? health.reasons : []),
    ];
    if (reasons.length) return reply.code(503).send({ ready: false, reason: reasons[0], reasons });
    // CLU-04: ready, but with less than everything (a load balancer keeps sending; an operator sees why).
    // CLU-08: separate dispatchers say which communities each instance works for.
    const cluster = health?.cluster ? { cluster: health.cluster } : {};
    if (health?.degraded.length) return { ready: true, degraded: health.degraded, ...cluster };
    return { ready: true, ...cluster };
  });
  app.get('/metrics', { schema: { hide: true } }, async (_req, reply) => {
    reply.header('content-type', deps.metrics.registry.contentType);
    return deps.metrics.registry.metrics();
  });

  // The /api subtree (SEC-01, "the API checks every request"): one hook refuses every request without a
  // session (401) before its route runs, except the routes listed as public; each route then asks for the
  // permission it needs (requireStaff). A new route is protected without doing anything.
  await app.register(async (api) => {
    api.addHook('onRequest', async (req) => {
      if (!PUBLIC_API_ROUTES.has(`${req.method} ${req.routeOptions.url}`)) requireStaff(req);
    });
    await api.register(sessionRoutes(deps));
    await api.register(alertRoutes(deps));
    await api.register(registryRoutes(deps));
    await api.register(escalationRoutes(deps));
    await api.register(deviceRoutes(deps));
    await api.register(retireRoutes(deps));
    await api.register(baselineRoutes(deps));
    await api.register(dispatchRoutes(deps));
    await api.register(importExportRoutes(deps));
    await api.register(reportRoutes(deps));
    await api.register(timelineRoutes(deps));
    await api.register(pushRoutes(deps));
    await api.register(incidentRoutes(deps));
    await api.register(searchRoutes(deps));
  });

  const dir = deps.consoleDir ? resolve(deps.consoleDir) : null;
  if (dir && existsSync(dir)) {
    await app.register(fastifyStatic, { root: dir, prefix: '/', index: ['index.html'] });
  }
  app.setNotFoundHandler((req, reply) =>
    reply.code(404).send({ error: 'not_found', message: `no route ${req.method} ${req.url}` }),
  );
  return app as unknown as FastifyInstance;
}
