import { createHash, timingSafeEqual } from 'node:crypto';
import { Router, type RequestHandler } from 'express';
import { within } from '../concurrency/within';
import { AppError, ErrorCode } from '../errors/app-error';
import type { PlatformDatabase } from '../database/platform-database';
import type { Metrics } from '../observability/metrics';
import { sendRequestError } from './send-request-error';

export interface ReadinessCheck {
  name: string;
  check(): Promise<void>;
  /**
   * Reported but not a reason to take the instance out of rotation: a tenant cluster other than
   * the platform's (its tenants get 503s; every other tenant is still served here).
   */
  reportOnly?: boolean;
}

const CHECK_TIMEOUT_MS = 2_000;

/**
 * GET /healthz: the process is up (liveness; touches nothing), also while it shuts down.
 * GET /readyz: PostgreSQL answers (and Redis, when configured); 503 with the failing checks
 * otherwise. Each other tenant cluster is reported (`cluster:<name>`) without deciding it,
 * otherwise, and 503 `shutting down` from the moment shutdown starts, so a load balancer stops
 * routing here.
 * GET /metrics: Prometheus text format; with METRICS_TOKEN set, only for
 * `Authorization: Bearer <METRICS_TOKEN>` (401 UNAUTHENTICATED otherwise); in production
 * without a token, not served at all (404 NOT_FOUND, as for any unknown path). The figures are
 * the installation's (tenant counts, request rates, error codes), not for everyone to read.
 */
export function createHealthRoutes(deps: {
  platform: PlatformDatabase;
  metrics: Metrics;
  metricsAccess: { token: string | undefined; exposed: boolean };
  extraChecks?: ReadinessCheck[];
  shuttingDown?: () => boolean;
}): Router {
  const router = Router();
  const checks: ReadinessCheck[] = [
    { name: 'postgres', check: async () => void (await deps.platform.pool.query('SELECT 1')) },
    ...(deps.extraChecks ?? []),
  ];
  router.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  router.get('/readyz', async (_req, res) => {
    if (deps.shuttingDown?.()) {
      res.status(503).json({ status: 'shutting down' });
      return;
    }
    const results = await Promise.all(
      checks.map(async ({ name, check }) => {
        try {
          await within(check(), CHECK_TIMEOUT_MS, () => new Error('timed out'));
          return [name, 'ok'] as const;
        } catch {
          return [name, 'unavailable'] as const;
        }
      }),
    );
    const decisive = new Set(checks.filter((check) => !check.reportOnly).map((check) => check.name));
    const ready = results.every(([name, status]) => status === 'ok' || !decisive.has(name));
    res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'not ready', checks: Object.fromEntries(results) });
  });
  router.get('/metrics', metricsGuard(deps.metricsAccess), async (_req, res) => {
    res.type(deps.metrics.registry.contentType).send(await deps.metrics.registry.metrics());
  });
  return router;
}

/** Who may read /metrics (see createHealthRoutes). */
function metricsGuard({ token, exposed }: { token: string | undefined; exposed: boolean }): RequestHandler {
  // Hashes compared, so that the comparison takes as long whatever the length presented.
  const expected = token === undefined ? undefined : createHash('sha256').update(token).digest();
  return (req, res, next) => {
    if (!exposed) {
      sendRequestError(req, res, new AppError(ErrorCode.NOT_FOUND, `Nothing here for ${req.method}; GraphQL is served at /graphql`));
      return;
    }
    if (expected === undefined) return next();
    const presented = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1];
    if (presented !== undefined && timingSafeEqual(createHash('sha256').update(presented).digest(), expected)) return next();
    res.setHeader('WWW-Authenticate', 'Bearer realm="metrics"');
    sendRequestError(req, res, new AppError(ErrorCode.UNAUTHENTICATED, '/metrics requires Authorization: Bearer <METRICS_TOKEN>', { httpStatus: 401 }));
  };
}
