import http from 'node:http';
import { ApolloServer } from '@apollo/server';
import { ApolloServerPluginCacheControlDisabled, ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import { ApolloServerPluginLandingPageLocalDefault } from '@apollo/server/plugin/landingPage/default';
import type { KeyValueCache } from '@apollo/utils.keyvaluecache';
import { expressMiddleware } from '@as-integrations/express5';
import cors from 'cors';
import express, { type ErrorRequestHandler, type RequestHandler } from 'express';
import type { GraphQLSchema } from 'graphql';
import { isDatabaseUnavailable } from '../database/prisma-errors';
import type { Authenticator } from '../auth/authenticator';
import { isTenantPrincipal } from '../auth/principal';
import type { Config } from '../config/config';
import { AppError, ErrorCode, errorResponseBody, httpStatusOf } from '../errors/app-error';
import { createRequestContext, type RequestContext, type Services } from '../graphql/context';
import { createErrorFormatter } from '../graphql/format-error';
import { executionLimitsPlugin } from '../graphql/execution-limits';
import { hardeningPlugins, type ChargeCost } from '../graphql/hardening';
import { httpStatusPlugin } from '../graphql/http-status-plugin';
import { requestLifecyclePlugin } from '../graphql/request-lifecycle-plugin';
import { IDEMPOTENCY_KEY_HEADER, IDEMPOTENCY_REPLAYED_HEADER } from '../idempotency/idempotency-key';
import { idempotencyPlugin } from '../idempotency/idempotency-plugin';
import { IdempotencyStore } from '../idempotency/idempotency-store';
import { describeError, type Logger } from '../observability/logger';
import type { Metrics } from '../observability/metrics';
import type { OverloadMonitor } from '../observability/overload-monitor';
import { rateLimitSubjectOf, type RequestRateLimiter } from '../rate-limiting/request-rate-limiter';
import type { TenantInFlight } from '../rate-limiting/tenant-in-flight';
import { NO_SHARED_APQ_CACHE, perCallerApqPlugin } from '../persisted-queries/per-caller-apq-cache';
import { KnownCosts } from '../rate-limiting/known-costs';
import { clientIpOf, graphqlRequestGuard, type GuardedLocals } from './graphql-request-guard';
import { answerRateLimit, hold, holdRateLimitedAnswers, overloaded, refusalHoldMs } from './rate-limit-answer';
import { archiveSigningKey } from '../provisioning/tenant-archive';
import { createTenantArchiveRoutes } from './tenant-archive-routes';
import { sendRequestError } from './send-request-error';
import { createHealthRoutes, type ReadinessCheck } from './health-routes';
import { httpDrainOf } from './http-drain';

export interface GraphQLHttpApp {
  httpServer: http.Server;
  /**
   * Readiness turns red, the listener closes `delayMs` later, requests in flight may finish
   * until `drainMs` after the call (the connections left are then closed), and Apollo stops.
   * The caller closes what it opened.
   */
  stop(times: { delayMs: number; drainMs: number }): Promise<{ cut: number }>;
}

/**
 * The HTTP side, in the order a request meets it: health routes; then for GraphQL, CORS ->
 * JSON body (size-capped) -> request guard (authentication, rate limits, persisted
 * operations) -> Apollo (the caller's own automatic-persisted-query entries, document limits,
 * access policy, resolvers), whose context leases the tenant's client on first use.
 */
export async function createGraphQLHttpApp(deps: {
  config: Config;
  logger: Logger;
  schema: GraphQLSchema;
  services: Services;
  authenticator: Authenticator;
  rateLimiter: RequestRateLimiter | null;
  tenantInFlight: TenantInFlight;
  overload: OverloadMonitor;
  apqCache: KeyValueCache<string>;
  metrics: Metrics;
  readinessChecks: ReadinessCheck[];
}): Promise<GraphQLHttpApp> {
  const { config, logger, schema, services } = deps;
  const app = express();
  app.disable('x-powered-by');
  // Express hashes every response body for an ETag; GraphQL responses are tenant-private
  // answers to POSTs that no cache revalidates, so the hash is pure cost.
  app.set('etag', false);
  app.set('trust proxy', config.trustProxy);
  const httpServer = http.createServer(app);
  const drain = httpDrainOf(httpServer);
  const knownCosts = new KnownCosts();
  const executionLimits = executionLimitsPlugin(config.limits);
  const hardening = hardeningPlugins(
    config.limits,
    () => schema,
    admitOperation(deps.rateLimiter, deps.overload, { shedCost: config.overload.shedCost }, (contextValue, cost) =>
      knownCosts.remember(contextValue.costKey, cost),
    ),
  );
  const idempotencyStore = new IdempotencyStore(services.platform.pool, config.idempotency, (error) =>
    logger.warn({ err: describeError(error) }, 'expired idempotency keys could not be deleted'),
  );
  const apollo = new ApolloServer<RequestContext>({
    schema,
    introspection: config.introspection,
    includeStacktraceInErrorResponses: false,
    formatError: createErrorFormatter(logger, { hideSuggestions: config.limits.blockFieldSuggestions }),
    validationRules: hardening.validationRules,
    allowBatchedHttpRequests: config.limits.maxBatchSize > 1,
    stringifyResult: executionLimits.stringifyResult,
    persistedQueries: { cache: NO_SHARED_APQ_CACHE, ttl: config.apqTtlSeconds },
    // Shutdown is the server's, in one sequence (src/server.ts): Apollo's own handler (on outside
    // tests) would start a second stop(), and @apollo/server 5.5.1 never resolves the promise a
    // second stop() waits on when the first succeeds, so the process hung on SIGTERM.
    stopOnTerminationSignals: false,
    plugins: [
      // Responses are private to a tenant: no cache hints to compute, per field, per request.
      ApolloServerPluginCacheControlDisabled(),
      config.landingPage ? ApolloServerPluginLandingPageLocalDefault({ embed: true }) : ApolloServerPluginLandingPageDisabled(),
      perCallerApqPlugin(deps.apqCache, config.apqTtlSeconds),
      ...hardening.plugins,
      // willSendResponse runs in this order: the limits may replace the answer, which the log
      // line and the status rule then see.
      executionLimits.plugin,
      holdRateLimitedAnswers(config.rateLimit.refusalDelayMs),
      requestLifecyclePlugin(deps.metrics, logger),
      httpStatusPlugin(),
      // Last: it stores the answer as the plugins above leave it (status included).
      idempotencyPlugin(idempotencyStore, logger),
    ],
  });
  await apollo.start();

  app.use(
    createHealthRoutes({
      platform: services.platform,
      metrics: deps.metrics,
      metricsAccess: { token: config.metrics.token, exposed: config.metrics.exposed },
      extraChecks: deps.readinessChecks,
      shuttingDown: () => drain.draining,
    }),
  );
  app.use(
    createTenantArchiveRoutes({
      authenticator: deps.authenticator,
      platform: services.platform,
      directory: services.directory,
      tenantClients: services.tenantClients,
      logger,
      maxImportBytes: config.tenantImportMaxBytes,
      signingKey: archiveSigningKey(config.tenantDbSecret),
    }),
  );
  app.use(
    ['/graphql', '/'],
    cors({
      origin: config.corsOrigins,
      methods: ['GET', 'POST', 'OPTIONS'],
      allowedHeaders: [
        'content-type',
        'authorization',
        'x-api-key',
        'apollo-require-preflight',
        'x-apollo-operation-name',
        'x-tenant',
        'x-request-id',
        IDEMPOTENCY_KEY_HEADER,
      ],
      exposedHeaders: ['x-request-id', 'RateLimit-Limit', 'RateLimit-Remaining', 'RateLimit-Reset', 'Retry-After', IDEMPOTENCY_REPLAYED_HEADER],
      maxAge: 600,
    }),
    express.json({ limit: config.limits.maxBodyBytes }),
    graphqlRequestGuard({
      authenticator: deps.authenticator,
      rateLimiter: deps.rateLimiter,
      tenantInFlight: deps.tenantInFlight,
      overload: deps.overload,
      refusalHoldMaxMs: config.rateLimit.refusalDelayMs,
      safelist: services.safelist,
      maxBatchSize: config.limits.maxBatchSize,
      documentLimits: config.limits,
      knownCosts,
      tenantSpanAttribute: config.tracing.tenantAttribute,
      recordRefusal: (requestId, principal, error) => {
        const code = String(error.extensions.code);
        // operation="refused": refused before Apollo parsed it (so of no known type), took no time to run.
        deps.metrics.graphqlOperations.observe({ operation: 'refused', outcome: code }, 0);
        deps.metrics.recordRefusedRequest(code);
        // Signed-out refusals are counted, not logged: a flood of them would be a flood of lines.
        if (principal && principal.kind !== 'anonymous') {
          logger.info(
            { requestId, principal: principal.kind, tenant: isTenantPrincipal(principal) ? principal.tenant.slug : undefined, outcome: code },
            'graphql request refused',
          );
        }
      },
    }),
    expressMiddleware(apollo, {
      context: async ({ req, res }) => {
        const { requestId, principal, prepaidPoints, costKey } = res.locals as GuardedLocals;
        return createRequestContext({
          requestId,
          principal,
          prepaidPoints: prepaidPoints ?? 1,
          costKey,
          clientIp: clientIpOf(req),
          services,
        });
      },
    }),
  );
  app.use(bodyErrorHandler(config.limits.maxBodyBytes, deps.rateLimiter, config.rateLimit.refusalDelayMs));
  // Whatever nothing above answered: JSON with a code, never Express's HTML page (which shows
  // the stack outside production and writes the whole error to stderr, around pino).
  app.use(notFoundHandler);
  app.use(finalErrorHandler(logger));
  return {
    httpServer,
    stop: async (times) => {
      const drained = await drain.drain(times);
      await apollo.stop();
      return drained;
    },
  };
}

/**
 * Once an operation is priced: its price is remembered (KnownCosts); while the server is
 * overloaded, one costing OVERLOAD_SHED_COST or more is shed (503 OVERLOADED); otherwise its
 * cost, less what the guard took for it, is charged to the budgets the guard charged: the
 * tenant's and the caller's, or the signed-out client address's. Platform admins have no budget.
 */
function admitOperation(
  rateLimiter: RequestRateLimiter | null,
  overload: OverloadMonitor,
  { shedCost }: { shedCost: number },
  priced: (contextValue: RequestContext, cost: number) => void,
): ChargeCost {
  return async (contextValue, cost, headers) => {
    const { principal, clientIp, prepaidPoints } = contextValue;
    priced(contextValue, cost);
    const setHeader = (name: string, value: string) => void headers.set(name.toLowerCase(), value);
    if (cost >= shedCost && overload.overloaded) {
      overload.recordShed('expensive');
      setHeader('Retry-After', '1');
      throw overloaded(`The server is overloaded and sheds operations costing ${shedCost} or more; retry shortly`);
    }
    const due = Math.ceil(cost - prepaidPoints);
    const subject = rateLimitSubjectOf(principal, clientIp);
    if (!rateLimiter || due <= 0 || !subject) return;
    answerRateLimit(await rateLimiter.take(subject, due), setHeader, subject);
  };
}

/**
 * Body-parser failures (too large, malformed JSON, unsupported charset or encoding, a body that
 * does not inflate) answered like GraphQL errors.
 */
function bodyErrorHandler(maxBodyBytes: number, rateLimiter: RequestRateLimiter | null, refusalHoldMaxMs: number): ErrorRequestHandler {
  return async (error: unknown, req, res, next) => {
    let appError = bodyError(error, maxBodyBytes);
    if (!appError) {
      next(error);
      return;
    }
    // Read before any credential was looked at: the client address pays, by size, as a signed-out
    // request would (a flood of malformed 200 KB bodies was otherwise free).
    if (rateLimiter) {
      const bytes = Math.min(Number(req.headers['content-length']) || maxBodyBytes, maxBodyBytes);
      const subject = { kind: 'address', clientIp: clientIpOf(req) } as const;
      try {
        answerRateLimit(await rateLimiter.take(subject, Math.max(1, Math.ceil(bytes / 1024))), (name, value) => res.setHeader(name, value), subject);
      } catch (refusal) {
        if (!(refusal instanceof AppError)) throw refusal;
        appError = refusal;
        await hold(refusalHoldMs(refusal, refusalHoldMaxMs));
      }
    }
    sendRequestError(req, res, appError);
  };
}

function bodyError(error: unknown, maxBodyBytes: number): AppError | null {
  const { type, status, expose } = (error ?? {}) as { type?: unknown; status?: unknown; expose?: unknown };
  switch (type) {
    case 'entity.too.large':
      return new AppError(ErrorCode.PAYLOAD_TOO_LARGE, `Request body larger than ${maxBodyBytes} bytes`);
    case 'entity.parse.failed':
      return new AppError(ErrorCode.BAD_REQUEST, 'Request body is not valid JSON');
    case 'charset.unsupported':
      return new AppError(ErrorCode.UNSUPPORTED_MEDIA_TYPE, 'Unsupported charset: send JSON as UTF-8');
    case 'encoding.unsupported':
      return new AppError(ErrorCode.UNSUPPORTED_MEDIA_TYPE, 'Unsupported Content-Encoding: send the body as is, or gzip, deflate or br');
  }
  // Any other client-side failure to read the body (aborted, shorter than announced, corrupt
  // gzip): http-errors marks those exposable 4xx.
  if (expose === true && typeof status === 'number' && status >= 400 && status < 500) {
    return new AppError(ErrorCode.BAD_REQUEST, 'Request body could not be read');
  }
  return null;
}

const notFoundHandler: RequestHandler = (req, res) => {
  const error = new AppError(ErrorCode.NOT_FOUND, `Nothing here for ${req.method}; GraphQL is served at /graphql`);
  res.status(httpStatusOf(error)).json(errorResponseBody(error));
};

/** The last resort: anything unexpected is logged (class and code only) and masked. */
function finalErrorHandler(logger: Logger): ErrorRequestHandler {
  return (error: unknown, req, res, _next) => {
    const requestId = (res.locals as Partial<GuardedLocals>).requestId;
    const outage = isDatabaseUnavailable(error);
    if (outage) logger.warn({ err: describeError(error), method: req.method, requestId }, 'database unavailable');
    else logger.error({ err: describeError(error), method: req.method, requestId }, 'unexpected error in HTTP handling');
    if (res.headersSent) {
      // Part of a response is out: ending it cleanly would pass a truncated body for a whole one.
      res.destroy();
      return;
    }
    const masked = outage
      ? new AppError(ErrorCode.SERVICE_UNAVAILABLE, 'The database is unavailable; retry shortly', { extensions: { retryAfter: 1 } })
      : new AppError(ErrorCode.INTERNAL_SERVER_ERROR, 'Internal server error', {
          extensions: { detail: 'An unexpected error occurred; it has been logged' },
        });
    if (outage) res.setHeader('Retry-After', '1');
    res.status(httpStatusOf(masked)).json(errorResponseBody(masked));
  };
}
