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
import type { Clock } from '../../kernel/clock.ts';
import type { Logger } from '../../kernel/log.ts';
import type { Permission } from '../access.ts';
import { can, screenGrids } from '../access.ts';
import type { AlertService } from '../alerts/service.ts';
import type { Auth } from '../auth.ts';
import type { Directory } from '../directory.ts';
import type { Metrics } from '../metrics.ts';
import type { Notifier } from '../notify/notifier.ts';
import type { Staff } from '../registry.ts';
import type { DutyWatch } from '../routing/duty-watch.ts';
import type { RulesConfig } from '../rules/settings.ts';
import type { Store } from '../store/store.ts';
import type { SystemHealth } from '../system-health.ts';
import { alertRoutes } from './alerts.ts';
import { baselineRoutes } from './baseline.ts';
import { deviceRoutes } from './devices.ts';
import { dispatchRoutes } from './dispatch.ts';
import { importExportRoutes } from './import-export.ts';
import { registryRoutes } from './registry.ts';
import { reportRoutes } from './reports.ts';
import { sessionRoutes } from './session.ts';
import { timelineRoutes } from './timeline.ts';

export const SESSION_COOKIE = 'g365_session';

declare module 'fastify' {
  interface FastifyRequest {
    staff: Staff | null;
    token: string | null;
  }
}

export interface ApiDeps {
  store: Store;
  clock: Clock;
  log: Logger;
  auth: Auth;
  alerts: AlertService;
  directory: Directory;
  metrics: Metrics;
  /** Folder with the built console; not served when missing. */
  consoleDir?: string;
  /** Notification channels' health (dispatch routes). */
  notifier?: Notifier;
  /** Duty gaps and shift handover (dispatch routes). */
  dutyWatch?: DutyWatch;
  /** Ends a device's live MQTT session and forgets its cached login (after disable or secret rotation). */
  revokeDevice?: (deviceId: string) => void;
  /** Ends a staff member's live connections, so they re-authenticate (after disable, grid change, logout). */
  endStaffSessions?: (staffId: string) => void;
  ready: () => boolean;
  /** The edge's faults (disk, event log, telemetry, logins): readiness reasons and the dispatch screen. */
  systemHealth?: SystemHealth;
  /** The deployment's rule thresholds (config RULES), for the baseline view's effective thresholds. */
  rules?: RulesConfig;
}

/** The grids whose alerts and notices this person's screens show (access.ts screenGrids); null: all. */
export async function screenScope(deps: Pick<ApiDeps, 'store'>, staff: Staff): Promise<string[] | null> {
  return screenGrids(staff, await deps.store.listGrids(), await deps.store.listStaff());
}

/** An expected refusal: becomes a JSON error with this status and code. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
  }
}

export const STATUS_BY_CODE: Record<string, number> = {
  not_found: 404,
  invalid_transition: 409,
  not_assignee: 403,
  conflict: 409,
  forbidden: 403,
};

export function requireStaff(req: FastifyRequest, perm?: Permission): Staff {
  if (!req.staff) throw new HttpError(401, 'unauthenticated', 'log in first');
  if (perm && !can(req.staff, perm))
    throw new HttpError(403, 'forbidden', `your role may not do this (${perm})`);
  return req.staff;
}

export async function buildApp(deps: ApiDeps): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: deps.log.child({ module: 'http' }) as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 1024 * 1024,
  }).withTypeProvider<ZodTypeProvider>();
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);

  await app.register(fastifyCookie);
  await app.register(fastifyRateLimit, { global: false, hook: 'preHandler' });
  await app.register(fastifySwagger, {
    openapi: {
      info: { title: 'Guardian 365 API', version: '1' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
    transform: jsonSchemaTransform,
  });
  await app.register(fastifySwaggerUi, { routePrefix: '/docs' });

  app.decorateRequest('staff', null);
  app.decorateRequest('token', null);
  app.addHook('onRequest', async (req) => {
    const header = req.headers.authorization;
    const token = header?.startsWith('Bearer ') ? header.slice(7) : req.cookies[SESSION_COOKIE];
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
      return reply
        .code(400)
        .send({ error: 'bad_request', message: `${where}: ${v?.message ?? 'invalid'}`, field: where });
    }
    if (error instanceof HttpError) {
      return reply
        .code(error.status)
        .send({ error: error.code, message: error.message, ...(error.details ?? {}) });
    }
    const fe = error as { statusCode?: number; code?: string; message?: string };
    if (fe.statusCode && fe.statusCode >= 400 && fe.statusCode < 500) {
      // fastify's own client errors (bad JSON, body too large, rate limit)
      return reply.code(fe.statusCode).send({ error: fe.code ?? 'bad_request', message: fe.message });
    }
    req.log.error({ err: error }, 'request failed');
    return reply.code(500).send({ error: 'internal', message: 'internal error' });
  });

  app.get('/healthz', { schema: { hide: true } }, async () => ({ ok: true }));
  // Not ready while starting, and while the event log cannot write (devices are held): with the reasons.
  app.get('/readyz', { schema: { hide: true } }, async (_req, reply) => {
    if (!deps.ready()) return reply.code(503).send({ ready: false, reasons: ['starting'] });
    const health = deps.systemHealth?.report();
    if (health && !health.ready) return reply.code(503).send({ ready: false, reasons: health.reasons });
    return { ready: true };
  });
  app.get('/metrics', { schema: { hide: true } }, async (_req, reply) => {
    reply.header('content-type', deps.metrics.registry.contentType);
    return deps.metrics.registry.metrics();
  });

  await app.register(sessionRoutes(deps));
  await app.register(alertRoutes(deps));
  await app.register(registryRoutes(deps));
  await app.register(deviceRoutes(deps));
  await app.register(baselineRoutes(deps));
  await app.register(dispatchRoutes(deps));
  await app.register(importExportRoutes(deps));
  await app.register(reportRoutes(deps));
  await app.register(timelineRoutes(deps));

  const dir = deps.consoleDir ? resolve(deps.consoleDir) : null;
  if (dir && existsSync(dir)) {
    await app.register(fastifyStatic, { root: dir, prefix: '/', index: ['index.html'] });
  }
  app.setNotFoundHandler((req, reply) =>
    reply.code(404).send({ error: 'not_found', message: `no route ${req.method} ${req.url}` }),
  );
  return app as unknown as FastifyInstance;
}
