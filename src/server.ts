import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApolloServer } from '@apollo/server';
import { ApolloServerPluginDrainHttpServer } from '@apollo/server/plugin/drainHttpServer';
import { ApolloServerPluginCacheControlDisabled, ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import { ApolloServerPluginLandingPageLocalDefault } from '@apollo/server/plugin/landingPage/default';
import { InMemoryLRUCache, type KeyValueCache } from '@apollo/utils.keyvaluecache';
import { expressMiddleware } from '@as-integrations/express5';
import cors from 'cors';
import express, { type ErrorRequestHandler } from 'express';
import type Redis from 'ioredis';
import { ApiKeyService } from './api-keys/api-key-service';
import { AccessTokens } from './auth/access-tokens';
import { Authenticator } from './auth/authenticator';
import { ensureBootstrapAdmin } from './auth/bootstrap-admin';
import { MemberService } from './auth/member-service';
import { PasswordHasher } from './auth/passwords';
import { SessionService } from './auth/session-service';
import { SessionStateCache } from './auth/session-state-cache';
import type { Config } from './config/config';
import { PLATFORM_PRISMA_SCHEMA, TENANT_MIGRATIONS_DIR, TENANT_PRISMA_SCHEMA } from './config/paths';
import { clientConfigFromUrl } from './database/connection-url';
import { connectPlatformDatabase, migratePlatformSchema } from './database/platform-database';
import { PlatformNotifications } from './database/platform-notifications';
import { createRedis, redisReady } from './database/redis';
import { AppError, ErrorCode, errorResponseBody, httpStatusOf } from './errors/app-error';
import { createRequestContext, type RequestContext, type Services } from './graphql/context';
import { createErrorFormatter } from './graphql/format-error';
import { hardeningPlugins } from './graphql/hardening';
import { requestLifecyclePlugin } from './graphql/request-lifecycle-plugin';
import { buildSchema } from './graphql/schema';
import { graphqlRequestGuard, type GuardedLocals } from './http/graphql-request-guard';
import { createHealthRoutes } from './http/health-routes';
import { CliMigrator } from './migrations/cli-migrator';
import type { Migrator } from './migrations/migrator';
import { WasmMigrator } from './migrations/wasm-migrator';
import type { Logger } from './observability/logger';
import { Metrics } from './observability/metrics';
import { OperationSafelist } from './persisted-queries/operation-safelist';
import { RedisApqCache } from './persisted-queries/redis-apq-cache';
import { TenantLifecycle } from './provisioning/tenant-lifecycle';
import { TenantMigrationRunner } from './provisioning/tenant-migration-runner';
import { restrictDatabaseConnections } from './provisioning/tenant-database-objects';
import { TenantProvisioner } from './provisioning/tenant-provisioner';
import { fieldRateLimitTransformer } from './rate-limiting/field-rate-limits';
import { TenantRateLimiter } from './rate-limiting/tenant-rate-limiter';
import { MemoryTokenBuckets, RedisTokenBuckets } from './rate-limiting/token-buckets';
import { ConnectionBudget } from './tenancy/connection-budget';
import { TenantClientPool } from './tenancy/tenant-client-pool';
import { tenantConnectionConfig } from './tenancy/tenant-credentials';
import { TenantDirectory } from './tenancy/tenant-directory';
import { ensureInstallationId } from './tenancy/installation';

export interface ServerOptions {
  config: Config & { databaseUrl: string };
  logger: Logger;
  /** Tests point this at a copy with a broken migration; default migrations/tenant. */
  tenantMigrationsDir?: string;
}

export interface RunningServer {
  url: string;
  port: number;
  installationId: string;
  services: Services;
  metrics: Metrics;
  /** Where rate-limit buckets live: shared Redis, or this process only. */
  rateLimitStore: 'redis' | 'memory' | 'disabled';
  close(): Promise<void>;
}

export function createMigrators(kind: Config['migrator']): { platform: Migrator; tenant: Migrator } {
  return kind === 'cli'
    ? { platform: new CliMigrator('prisma/platform.config.ts'), tenant: new CliMigrator('prisma/tenant.config.ts') }
    : { platform: new WasmMigrator(PLATFORM_PRISMA_SCHEMA), tenant: new WasmMigrator(TENANT_PRISMA_SCHEMA) };
}

/**
 * Composition root: prepares the platform schema, wires the services, and serves GraphQL over
 * HTTP. A request's path (docs/architecture.md): express (CORS, body) -> request guard
 * (authenticate, rate limits, persisted operations) -> Apollo (document limits) -> context
 * (principal, lazily leased tenant client) -> access policy (SDL directives) -> resolver ->
 * tenant-bound Prisma client -> the tenant's schema, as the tenant's role.
 */
export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const { config, logger } = options;
  const migrators = createMigrators(config.migrator);
  const platformMigration = await migratePlatformSchema(config.databaseUrl, migrators.platform);
  if (platformMigration.applied.length > 0) logger.info({ applied: platformMigration.applied }, 'platform migrations applied');

  const platform = connectPlatformDatabase(config.databaseUrl, config.platformPoolMax);
  const restrictClient = await platform.pool.connect();
  try {
    if (!(await restrictDatabaseConnections(restrictClient, platform.databaseName))) {
      logger.warn('could not revoke CONNECT on this database from PUBLIC (only its owner can): any role may connect to it, as PostgreSQL allows by default');
    }
  } finally {
    restrictClient.release();
  }
  const passwords = new PasswordHasher(config.auth.bcryptRounds);
  const installationId = await ensureInstallationId(platform.prisma);
  if ((await ensureBootstrapAdmin(platform, passwords, config.bootstrapAdmin)) === 'created') {
    logger.info({ email: config.bootstrapAdmin.email }, 'bootstrap platform admin created');
  }

  const notifications = new PlatformNotifications(clientConfigFromUrl(config.databaseUrl), logger);
  const directory = new TenantDirectory(platform.prisma, notifications, config.tenantCacheMax);
  const sessionCache = new SessionStateCache(notifications, config.tenantCacheMax);
  await notifications.start();
  const budget = new ConnectionBudget(config.tenantClients.connectionBudget, config.tenantClients.connectTimeoutMs);
  const metrics: Metrics = new Metrics({ tenantClients: () => tenantClients.stats() });
  const tenantClients = new TenantClientPool({
    ...config.tenantClients,
    budget,
    connectionConfig: (tenant) => tenantConnectionConfig(config.databaseUrl, tenant.dbRole, config.tenantDbSecret),
    onQuery: () => metrics.tenantSqlStatements.inc(),
    onError: (error, tenantId) => logger.warn({ tenantId, err: { name: error.name } }, 'tenant connection error'),
  });

  const accessTokens = new AccessTokens({
    secret: config.auth.jwtSecret,
    issuer: config.auth.issuer,
    audience: config.auth.audience,
    ttlSeconds: config.auth.accessTokenTtlSeconds,
  });
  const sessions = new SessionService({
    platform,
    directory,
    passwords,
    accessTokens,
    refreshTokenTtlSeconds: config.auth.refreshTokenTtlSeconds,
    logger,
    sessionCache,
  });
  const tenantMigrationsDir = options.tenantMigrationsDir ?? TENANT_MIGRATIONS_DIR;

  const redis: Redis | null = config.redisUrl ? createRedis(config.redisUrl, logger, config.rateLimit.redisCommandTimeoutMs) : null;
  // Serve only once Redis answers, or the first requests would meet the failure policy.
  if (redis && !(await redisReady(redis, 3_000))) {
    logger.warn('redis not reachable at start-up; serving under the configured failure policy until it is');
  }
  const rateLimiter = config.rateLimit.enabled
    ? new TenantRateLimiter(redis ? new RedisTokenBuckets(redis) : new MemoryTokenBuckets(), config.rateLimit.redisFailure, logger)
    : null;
  if (rateLimiter?.storeKind === 'memory') {
    logger.warn('no REDIS_URL: rate limits and persisted queries are kept in this process (single instance only)');
  }
  const apqCache: KeyValueCache<string> = redis
    ? new RedisApqCache(redis, config.apqTtlSeconds, `fleet:${installationId}:`)
    : new InMemoryLRUCache<string>({ maxSize: 20 * 1024 * 1024 });
  const schema = buildSchema({
    fieldRateLimits: config.rateLimit.enabled
      ? fieldRateLimitTransformer({ redis, failurePolicy: config.rateLimit.redisFailure, namespace: installationId })
      : undefined,
  });
  const safelist = new OperationSafelist({ platform, schema: () => schema });
  const apiKeys = new ApiKeyService({ platform, directory, notifications, cacheMax: config.tenantCacheMax });
  const services: Services = {
    platform,
    directory,
    tenantClients,
    sessions,
    members: new MemberService({ platform, passwords, sessionCache }),
    provisioner: new TenantProvisioner({
      platform,
      installationId,
      migrator: migrators.tenant,
      tenantMigrationsDir,
      tenantDbSecret: config.tenantDbSecret,
      directory,
      passwords,
      logger,
    }),
    migrations: new TenantMigrationRunner({
      platform,
      installationId,
      migrator: migrators.tenant,
      tenantMigrationsDir,
      tenantDbSecret: config.tenantDbSecret,
      directory,
      logger,
      defaultConcurrency: config.migrateConcurrency,
    }),
    lifecycle: new TenantLifecycle({ platform, directory, tenantClients }),
    apiKeys,
    safelist,
  };
  const authenticator = new Authenticator({
    platform,
    directory,
    accessTokens,
    apiKeys,
    sessions: sessionCache,
    tenantHostSuffix: config.tenantHostSuffix,
  });

  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', config.trustProxy ?? false);
  const httpServer = http.createServer(app);
  const hardening = hardeningPlugins(config.limits, () => schema);
  const apollo = new ApolloServer<RequestContext>({
    schema,
    introspection: config.introspection,
    includeStacktraceInErrorResponses: false,
    formatError: createErrorFormatter(logger),
    validationRules: hardening.validationRules,
    allowBatchedHttpRequests: config.limits.maxBatchSize > 1,
    persistedQueries: { cache: apqCache, ttl: config.apqTtlSeconds },
    plugins: [
      ApolloServerPluginDrainHttpServer({ httpServer }),
      // Responses are private to a tenant: no cache hints to compute, per field, per request.
      ApolloServerPluginCacheControlDisabled(),
      config.landingPage ? ApolloServerPluginLandingPageLocalDefault({ embed: true }) : ApolloServerPluginLandingPageDisabled(),
      ...hardening.plugins,
      requestLifecyclePlugin(metrics),
    ],
  });
  await apollo.start();

  app.use(
    createHealthRoutes({
      platform,
      metrics,
      extraChecks: redis ? [{ name: 'redis', check: async () => void (await redis.ping()) }] : [],
    }),
  );
  // The request's path: CORS -> JSON body (size-capped) -> guard (auth, rate limits, persisted
  // operations) -> Apollo (limits, policy, resolvers).
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
      ],
      exposedHeaders: ['x-request-id', 'RateLimit-Limit', 'RateLimit-Remaining', 'RateLimit-Reset', 'Retry-After'],
      maxAge: 600,
    }),
    express.json({ limit: config.limits.maxBodyBytes }),
    graphqlRequestGuard({
      authenticator,
      rateLimiter,
      safelist,
      apqCache,
      maxBatchSize: config.limits.maxBatchSize,
      maxTokens: config.limits.maxTokens,
    }),
    expressMiddleware(apollo, {
      context: async ({ req, res }) => {
        const { requestId, principal } = res.locals as GuardedLocals;
        return createRequestContext({
          requestId,
          principal,
          clientIp: req.ip ?? req.socket.remoteAddress ?? 'unknown',
          services,
          logger: logger.child({ requestId }),
        });
      },
    }),
  );
  app.use(bodyErrorHandler(config.limits.maxBodyBytes));

  await new Promise<void>((resolve, reject) => {
    httpServer.once('error', reject);
    httpServer.listen(config.port, config.host, () => resolve());
  });
  const { port } = httpServer.address() as AddressInfo;
  const displayHost = config.host === '0.0.0.0' || config.host === '::' ? 'localhost' : config.host;

  let closing: Promise<void> | undefined;
  return {
    url: `http://${displayHost}:${port}/graphql`,
    port,
    installationId,
    services,
    metrics,
    rateLimitStore: rateLimiter ? rateLimiter.storeKind : 'disabled',
    close: () => {
      closing ??= (async () => {
        await apollo.stop();
        await tenantClients.close();
        await notifications.close();
        await platform.close();
        redis?.disconnect();
      })();
      return closing;
    },
  };
}

/** Body-parser failures (too large, malformed JSON) answered like GraphQL errors. */
function bodyErrorHandler(maxBodyBytes: number): ErrorRequestHandler {
  return (error: unknown, _req, res, next) => {
    const type = (error as { type?: unknown }).type;
    const appError =
      type === 'entity.too.large'
        ? new AppError(ErrorCode.PAYLOAD_TOO_LARGE, `Request body larger than ${maxBodyBytes} bytes`)
        : type === 'entity.parse.failed'
          ? new AppError(ErrorCode.BAD_REQUEST, 'Request body is not valid JSON')
          : null;
    if (!appError) {
      next(error);
      return;
    }
    res.status(httpStatusOf(appError)).json(errorResponseBody(appError));
  };
}
