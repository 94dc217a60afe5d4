import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApolloServer } from '@apollo/server';
import { ApolloServerPluginDrainHttpServer } from '@apollo/server/plugin/drainHttpServer';
import { ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import { ApolloServerPluginLandingPageLocalDefault } from '@apollo/server/plugin/landingPage/default';
import { expressMiddleware } from '@as-integrations/express5';
import cors from 'cors';
import express from 'express';
import { AccessTokens } from './auth/access-tokens';
import { Authenticator } from './auth/authenticator';
import { ensureBootstrapAdmin } from './auth/bootstrap-admin';
import { MemberService } from './auth/member-service';
import { PasswordHasher } from './auth/passwords';
import { SessionService } from './auth/session-service';
import type { Config } from './config/config';
import { PLATFORM_PRISMA_SCHEMA, TENANT_MIGRATIONS_DIR, TENANT_PRISMA_SCHEMA } from './config/paths';
import { clientConfigFromUrl } from './database/connection-url';
import { connectPlatformDatabase, migratePlatformSchema } from './database/platform-database';
import { createRequestContext, type RequestContext, type Services } from './graphql/context';
import { createErrorFormatter } from './graphql/format-error';
import { requestLifecyclePlugin } from './graphql/request-lifecycle-plugin';
import { buildSchema } from './graphql/schema';
import { createHealthRoutes } from './http/health-routes';
import { CliMigrator } from './migrations/cli-migrator';
import type { Migrator } from './migrations/migrator';
import { WasmMigrator } from './migrations/wasm-migrator';
import type { Logger } from './observability/logger';
import { Metrics } from './observability/metrics';
import { TenantLifecycle } from './provisioning/tenant-lifecycle';
import { TenantMigrationRunner } from './provisioning/tenant-migration-runner';
import { TenantProvisioner } from './provisioning/tenant-provisioner';
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
  close(): Promise<void>;
}

export function createMigrators(kind: Config['migrator']): { platform: Migrator; tenant: Migrator } {
  return kind === 'cli'
    ? { platform: new CliMigrator('prisma/platform.config.ts'), tenant: new CliMigrator('prisma/tenant.config.ts') }
    : { platform: new WasmMigrator(PLATFORM_PRISMA_SCHEMA), tenant: new WasmMigrator(TENANT_PRISMA_SCHEMA) };
}

/**
 * Composition root: prepares the platform schema, wires the services, and serves GraphQL over
 * HTTP. A request's path: HTTP (express) -> Apollo -> context factory (authenticate, resolve
 * tenant) -> access policy (SDL directives) -> resolver -> tenant-bound Prisma client -> the
 * tenant's schema, as the tenant's role.
 */
export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const { config, logger } = options;
  const migrators = createMigrators(config.migrator);
  const platformMigration = await migratePlatformSchema(config.databaseUrl, migrators.platform);
  if (platformMigration.applied.length > 0) logger.info({ applied: platformMigration.applied }, 'platform migrations applied');

  const platform = connectPlatformDatabase(config.databaseUrl, config.platformPoolMax);
  const passwords = new PasswordHasher(config.auth.bcryptRounds);
  const installationId = await ensureInstallationId(platform.prisma);
  if ((await ensureBootstrapAdmin(platform, passwords, config.bootstrapAdmin)) === 'created') {
    logger.info({ email: config.bootstrapAdmin.email }, 'bootstrap platform admin created');
  }

  const directory = new TenantDirectory(platform.prisma, clientConfigFromUrl(config.databaseUrl), logger, config.tenantCacheMax);
  await directory.start();
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
  });
  const tenantMigrationsDir = options.tenantMigrationsDir ?? TENANT_MIGRATIONS_DIR;
  const services: Services = {
    platform,
    directory,
    tenantClients,
    sessions,
    members: new MemberService({ platform, passwords }),
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
      migrator: migrators.tenant,
      tenantMigrationsDir,
      tenantDbSecret: config.tenantDbSecret,
      directory,
      logger,
      defaultConcurrency: config.migrateConcurrency,
    }),
    lifecycle: new TenantLifecycle({ platform, directory, tenantClients }),
  };
  const authenticator = new Authenticator({ platform, directory, accessTokens, tenantHostSuffix: config.tenantHostSuffix });

  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', false);
  const httpServer = http.createServer(app);
  const apollo = new ApolloServer<RequestContext>({
    schema: buildSchema(),
    introspection: config.introspection,
    includeStacktraceInErrorResponses: false,
    formatError: createErrorFormatter(logger),
    plugins: [
      ApolloServerPluginDrainHttpServer({ httpServer }),
      config.landingPage ? ApolloServerPluginLandingPageLocalDefault({ embed: true }) : ApolloServerPluginLandingPageDisabled(),
      requestLifecyclePlugin(metrics),
    ],
  });
  await apollo.start();

  app.use(createHealthRoutes({ platform, metrics }));
  const graphql = expressMiddleware(apollo, {
    context: async ({ req, res }) => {
      const requestId = typeof req.headers['x-request-id'] === 'string' && /^[\w-]{1,64}$/.test(req.headers['x-request-id'])
        ? req.headers['x-request-id']
        : randomUUID();
      res.setHeader('x-request-id', requestId);
      const principal = await authenticator.authenticate(req.headers);
      return createRequestContext({ requestId, principal, services, logger: logger.child({ requestId }) });
    },
  });
  app.use(
    ['/graphql', '/'],
    cors({
      origin: config.corsOrigins,
      methods: ['GET', 'POST', 'OPTIONS'],
      allowedHeaders: ['content-type', 'authorization', 'apollo-require-preflight', 'x-apollo-operation-name', 'x-tenant', 'x-request-id'],
      exposedHeaders: ['x-request-id'],
      maxAge: 600,
    }),
    express.json({ limit: '1mb' }),
    graphql,
  );

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
    close: () => {
      closing ??= (async () => {
        await apollo.stop();
        await tenantClients.close();
        await directory.close();
        await platform.close();
      })();
      return closing;
    },
  };
}
