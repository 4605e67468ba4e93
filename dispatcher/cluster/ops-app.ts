/**
 * The gateway role's own small HTTP port (CLU-01, OPS-02): liveness, readiness with its reasons, and
 * Prometheus metrics. No API and no console: those are the dispatcher's.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';

export interface OpsAppDeps {
  /** Not ready while starting or stopping. */
  started: () => boolean;
  /** Reasons this process is not ready now (empty: ready). */
  reasons: () => Promise<string[]>;
  registry: Registry;
}

export async function buildOpsApp(deps: OpsAppDeps): Promise<FastifyInstance> {
  const app = Fastify({ logger: false });
  app.get('/healthz', async () => ({ ok: true }));
  app.get('/readyz', async (_req, reply) => {
    if (!deps.started())
      return reply.code(503).send({ ready: false, reason: 'starting', reasons: ['starting'] });
    const reasons = await deps.reasons();
    if (reasons.length) return reply.code(503).send({ ready: false, reason: reasons[0], reasons });
    return { ready: true };
  });
  app.get('/metrics', async (_req, reply) => {
    reply.header('content-type', deps.registry.contentType);
    return deps.registry.metrics();
  });
  app.setNotFoundHandler((req, reply) =>
    reply.code(404).send({ error: 'not_found', message: `no route ${req.method} ${req.url}` }),
  );
  await app.ready();
  return app;
}
