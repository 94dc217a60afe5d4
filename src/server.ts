import type { AddressInfo } from 'node:net';
import type { KeyValueCache } from '@apollo/utils.keyvaluecache';
import { ApiKeyService } from './api-keys/api-key-service';
import { AccessTokens } from './auth/access-tokens';
import { Authenticator } from './auth/authenticator';
import { ensureBootstrapAdmin } from './auth/bootstrap-admin';
import { InvitationService } from './auth/invitation-service';
import { MemberService } from './auth/member-service';
import { PasswordHasher } from './auth/passwords';
import { SessionService } from './auth/session-service';
import { SessionStateCache } from './auth/session-state-cache';
import { PLATFORM_CLUSTER, type Config } from './config/config';
import { TENANT_MIGRATIONS_DIR } from './config/paths';
import { clientConfigFromUrl, databaseNameOf, urlWithDatabase } from './database/connection-url';
import { connectPlatformDatabase, migratePlatformSchema, type PlatformDatabase } from './database/platform-database';
import { AuditRelay } from './audit/audit-relay';
import { JobQueue, type QueueSpec } from './jobs/job-queue';
import { AccountEmailService } from './auth/account-email-service';
import { EmailJobHandler, EmailOutbox, SEND_EMAIL_QUEUE, sendEmailQueue, type EmailJob } from './email/email-jobs';
import { createMailer } from './email/mailer';
import { EmailChannel } from './notifications/email-channel';
import { DeliveryWorker } from './notifications/delivery-worker';
import { TripLateness } from './dispatch/trip-lateness';
import { sweepUndispatchedEvents } from './notifications/event-sweep';
import { InAppChannel } from './notifications/in-app';
import { DeletedRecordPurge } from './records/retention-purge';
import { PeriodicJob } from './tenant-jobs/periodic-job';
import { TenantDeletionPurge } from './provisioning/tenant-deletion';
import { PlatformNotifications } from './database/platform-notifications';
import { EVENTS_CHANNEL } from './events/event-channel';
import { createRedis, redisReady, type RedisClient } from './database/redis';
import type { Services } from './graphql/context';
import { assertDocumentShape } from './graphql/document-shape';
import { buildSchema } from './graphql/schema';
import { createGraphQLHttpApp } from './http/graphql-http-app';
import { createMigrators } from './migrations/create-migrators';
import type { Migrator } from './migrations/migrator';
import { describeError, type Logger } from './observability/logger';
import { DatabaseCensus } from './observability/database-census';
import { Metrics } from './observability/metrics';
import { OverloadMonitor } from './observability/overload-monitor';
import { MemoryApqCache } from './persisted-queries/apq-store';
import { OperationSafelist } from './persisted-queries/operation-safelist';
import { RedisApqCache } from './persisted-queries/redis-apq-cache';
import { TenantLifecycle } from './provisioning/tenant-lifecycle';
import { TenantMigrationRunner } from './provisioning/tenant-migration-runner';
import { TenantMover } from './provisioning/tenant-mover';
import { restrictDatabaseConnections } from './provisioning/tenant-database-objects';
import { TenantProvisioner, type TenantSchemaDependencies } from './provisioning/tenant-provisioner';
import { fieldRateLimitTransformer } from './rate-limiting/field-rate-limits';
import { RequestRateLimiter } from './rate-limiting/request-rate-limiter';
import { TenantInFlight } from './rate-limiting/tenant-in-flight';
import { MemoryTokenBuckets, RedisTokenBuckets } from './rate-limiting/token-buckets';
import { ConnectionBudget } from './tenancy/connection-budget';
import { DatabaseClusters } from './clusters/database-clusters';
import { TenantClientPool } from './tenancy/tenant-client-pool';
import { tenantConnectionConfig } from './tenancy/tenant-credentials';
import { TenantDirectory } from './tenancy/tenant-directory';
import { ensureInstallationId } from './tenancy/installation';
import { createOutboundIntegrations, type OutboundIntegrations } from './outbound/outbound-integrations';
import { createEventBus } from './subscriptions/event-bus';
import { attachSubscriptionServer, type SubscriptionServer } from './subscriptions/subscription-server';
import { createErrorFormatter } from './graphql/format-error';

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
  /** Webhooks and Slack: the outbound client, the credential key and the channels. */
  integrations: OutboundIntegrations;
  metrics: Metrics;
  /** WebSocket subscriptions of this instance (the bus they listen on is services.eventBus). */
  subscriptions: SubscriptionServer;
  /** Where rate-limit buckets live: shared Redis, or this process only. */
  rateLimitStore: 'redis' | 'memory' | 'disabled';
  /**
   * The one shutdown sequence (once, however often called): readiness turns red, the listener
   * closes (after SHUTDOWN_DELAY_MS), requests in flight get most of SHUTDOWN_TIMEOUT_MS to
   * finish (those still running then are cut), then password workers, tenant pools, the
   * platform database and Redis close.
   */
  close(): Promise<void>;
}

/** Advisory-lock key (class, key) held by the instance running the retention and deletion purges (class 0x46470004 is the quotas'). */
const RETENTION_PURGE_LOCK = [0x46470005, 1] as const;

/** How often queued platform audit entries are moved when no notification said so (a crash after commit). */
const AUDIT_SWEEP_INTERVAL_MS = 30_000;

/**
 * Composition root: prepares the platform schema, wires the services, and serves GraphQL over
 * HTTP. A request's path (docs/architecture.md): express (CORS, body) -> request guard
 * (authenticate, rate limits, persisted operations) -> Apollo (document limits) -> context
 * (principal, lazily leased tenant client) -> access policy (SDL directives) -> resolver ->
 * tenant-bound Prisma client -> the tenant's schema, as the tenant's role.
 */
/** Every queue the server's jobs use; each capability adds its own. */
function jobQueues(config: Config): QueueSpec[] {
  return [...DeliveryWorker.queues(), ...TripLateness.queues(), sendEmailQueue(config.email.retryDelaySeconds)];
}

export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const { config, logger } = options;
  const migrators = createMigrators(options.config.migrator);
  const { platform, installationId, passwords } = await openPlatform(options, migrators.platform);
  const notifications = new PlatformNotifications(clientConfigFromUrl(config.databaseUrl), logger);
  const redisTarget = config.redisUrl ? { url: config.redisUrl } : config.redisClusterNodes ? { clusterNodes: config.redisClusterNodes } : null;
  const redis: RedisClient | null = redisTarget ? createRedis(redisTarget, logger, config.rateLimit.redisCommandTimeoutMs) : null;
  const wired = createServices(options, { platform, installationId, passwords, notifications, redis, tenantMigrator: migrators.tenant });
  // Not awaited: a cluster that does not answer must not keep this instance from starting.
  void prepareClusters(wired.clusters, logger);
  await notifications.start();
  // A tenant's transaction notifies fleet_events on its own cluster's database: the delivery
  // worker listens there too, before serving (as on main), but for at most 5 s: one that does
  // not answer keeps retrying by itself without holding this instance's start-up.
  const clusterEvents = wired.clusters
    .list()
    .filter((cluster) => cluster.name !== PLATFORM_CLUSTER)
    .map((cluster) => new PlatformNotifications({ ...clientConfigFromUrl(cluster.url), connectionTimeoutMillis: 5_000 }, logger, [EVENTS_CHANNEL], `cluster ${cluster.name}'s event notifications`));
  for (const listener of clusterEvents) listener.subscribe(wired.services.notifications);
  await Promise.all(clusterEvents.map((listener) => listener.start().catch(() => undefined)));
  await wired.services.jobs.start(jobQueues(config));
  await wired.services.notifications.start();
  await wired.tripLateness.start();
  if (config.jobWorkerEnabled) {
    void sweepUndispatchedEvents({ ...wired.services, logger, wake: (tenantId) => wired.services.notifications.wake(tenantId) });
  }
  const emailJobs = new EmailJobHandler({ platform, mailer: wired.services.mailer, logger });
  // Emails with codes are deleted once sent: a code stays in the job table only until then (ADR 0021).
  if (config.email.concurrency > 0) {
    await wired.services.jobs.work<EmailJob>(SEND_EMAIL_QUEUE, config.email.concurrency, (job) => emailJobs.handle(job), { deleteOnSuccess: true });
  }
  if (wired.services.mailer.kind === 'log' && config.env === 'production') {
    logger.warn('no SMTP_URL: emails (invitations, password resets, verifications, notifications) are only printed in this log, codes included');
  }
  wired.services.auditRelay.start();
  const retentionPurge = new PeriodicJob({
    name: 'purge-deleted-records',
    pool: platform.pool,
    lock: RETENTION_PURGE_LOCK,
    intervalMs: config.retention.purgeIntervalMs,
    logger,
    work: async () => {
      await wired.services.tenantDeletion.run();
      await wired.services.retention.run();
    },
  });
  retentionPurge.start();
  // Serve only once Redis answers, or the first requests would meet the failure policy.
  if (redis && !(await redisReady(redis, 3_000))) {
    logger.warn('redis not reachable at start-up; serving under the configured failure policy until it is');
  }
  if (config.outbound.allowPrivateNetworks && config.env === 'production') {
    logger.warn('OUTBOUND_ALLOW_PRIVATE_NETWORKS is on: tenant admins can make webhooks and Slack calls reach this network (for closed networks only)');
  }
  if (wired.rateLimiter?.storeKind === 'memory') {
    logger.warn('no REDIS_URL or REDIS_CLUSTER_NODES: rate limits and persisted queries are kept in this process (single instance only)');
  }

  const http = await createGraphQLHttpApp({
    config,
    logger,
    ...wired,
    readinessChecks: [
      ...(redis ? [{ name: 'redis', check: async () => void (await redis.ping()) }] : []),
      // `postgres` is main's (the platform's); the other tenant clusters are reported, not decisive.
      ...wired.clusters
        .list()
        .filter((cluster) => cluster.name !== PLATFORM_CLUSTER)
        .map((cluster) => ({ name: `cluster:${cluster.name}`, reportOnly: true, check: async () => void (await cluster.adminPool.query('SELECT 1')) })),
    ],
  });
  // Subscriptions: WebSocket on the same port and path (src/subscriptions); events through wired.services.eventBus.
  const subscriptions = attachSubscriptionServer({
    httpServer: http.httpServer,
    schema: wired.schema,
    services: wired.services,
    authenticator: wired.authenticator,
    notifications,
    rateLimiter: wired.rateLimiter,
    limits: config.limits,
    subscriptionLimits: config.subscriptions,
    formatError: createErrorFormatter(logger, { hideSuggestions: config.limits.blockFieldSuggestions }),
    logger,
  });
  await new Promise<void>((resolve, reject) => {
    http.httpServer.once('error', reject);
    http.httpServer.listen(config.port, config.host, () => resolve());
  });
  wired.overload.beginServing();
  const { port } = http.httpServer.address() as AddressInfo;
  const displayHost = config.host === '0.0.0.0' || config.host === '::' ? 'localhost' : config.host;

  let closing: Promise<void> | undefined;
  return {
    url: `http://${displayHost}:${port}/graphql`,
    port,
    installationId,
    services: wired.services,
    integrations: wired.integrations,
    metrics: wired.metrics,
    rateLimitStore: wired.rateLimiter ? wired.rateLimiter.storeKind : 'disabled',
    subscriptions,
    close: () => {
      closing ??= (async () => {
        const startedAt = performance.now();
        // Readiness red at once, synchronously; the listener closes a turn of the event loop later.
        const stopped = http.stop(config.shutdown);
        // Subscriptions have no end to wait for: their sockets are closed (1001) as the drain begins.
        const socketsClosed = subscriptions.close(Math.min(1_000, config.shutdown.drainMs));
        // Then, and synchronously marked closed: on Ctrl-C the embedded PostgreSQL gets the
        // signal too, and its LISTEN connection ending is then no loss worth a warning. Until
        // the server has stopped, caches are bypassed, which is always correct.
        await notifications.close();
        await Promise.all(clusterEvents.map((listener) => listener.close()));
        const { cut } = await stopped;
        const drainedMs = Math.round(performance.now() - startedAt);
        if (cut > 0) logger.warn({ cut, drainMs: config.shutdown.drainMs }, 'requests still in flight at the shutdown deadline were cut off');
        else logger.info({ drainedMs }, 'requests in flight drained');
        await socketsClosed;
        await wired.services.eventBus.close();
        await passwords.close();
        await retentionPurge.close();
        wired.services.notifications.stop();
        await wired.services.jobs.stop(config.shutdown.drainMs);
        wired.services.mailer.close();
        await wired.services.auditRelay.close();
        wired.overload.close();
        await wired.services.tenantClients.close();
        await wired.clusters.close();
        await platform.close();
        redis?.disconnect();
      })();
      return closing;
    },
  };
}

/**
 * The other clusters, as the platform's own database was prepared in openPlatform: CONNECT
 * taken from PUBLIC where the server's role may. A cluster unreachable now is reported and its
 * tenants get 503s until it answers; tenant rows naming a cluster this instance was not given
 * (TENANT_CLUSTERS differs between instances) are logged.
 */
async function prepareClusters(clusters: DatabaseClusters, logger: Logger): Promise<void> {
  const unconfigured = await clusters.unconfiguredInUse().catch(() => []);
  if (unconfigured.length > 0) logger.error({ clusters: unconfigured }, 'tenants are placed on clusters TENANT_CLUSTERS does not name here; they cannot be served by this instance');
  for (const cluster of clusters.list().filter((each) => each.name !== PLATFORM_CLUSTER)) {
    try {
      const client = await cluster.adminPool.connect();
      try {
        if (!(await restrictDatabaseConnections(client, cluster.databaseName))) {
          logger.warn({ cluster: cluster.name }, 'could not revoke CONNECT on the cluster database from PUBLIC (only its owner can)');
        }
      } finally {
        client.release();
      }
    } catch (error) {
      logger.warn({ cluster: cluster.name, err: describeError(error) }, 'database cluster not reachable at start-up; its tenants are unavailable until it is');
    }
  }
}

/** Brings the platform schema up to date and makes sure the installation and its admin exist. */
async function openPlatform({ config, logger }: ServerOptions, migrator: Migrator): Promise<{
  platform: PlatformDatabase;
  installationId: string;
  passwords: PasswordHasher;
}> {
  const platformMigration = await migratePlatformSchema(config.databaseUrl, migrator);
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
  // Per instance, in memory: what it bounds is this machine's CPU.
  const passwordChecks = new MemoryTokenBuckets();
  const passwords = new PasswordHasher(config.auth.bcryptRounds, {
    ...config.auth.passwordJobs,
    takeCheck: async () => {
      const taken = await passwordChecks.take(['password-checks'], [config.auth.passwordChecks], 1);
      return taken.allowed ? null : taken.retryAfterSeconds;
    },
    onWorkerError: (error) => logger.error({ err: describeError(error) }, 'password worker thread failed'),
  });
  const installationId = await ensureInstallationId(platform.prisma);
  if ((await ensureBootstrapAdmin(platform, passwords, config.bootstrapAdmin)) === 'created') {
    logger.info({ email: config.bootstrapAdmin.email }, 'bootstrap platform admin created');
  }
  return { platform, installationId, passwords };
}

/** Every long-lived service, built once; nothing here touches the network yet. */
function createServices(
  { config, logger, tenantMigrationsDir = TENANT_MIGRATIONS_DIR }: ServerOptions,
  deps: {
    platform: PlatformDatabase;
    installationId: string;
    passwords: PasswordHasher;
    notifications: PlatformNotifications;
    redis: RedisClient | null;
    tenantMigrator: Migrator;
  },
) {
  const { platform, installationId, passwords, notifications, redis } = deps;
  const apqLimits = { ttlSeconds: config.apqTtlSeconds, ...config.apqLimits };
  const apqCache: KeyValueCache<string> = redis
    ? new RedisApqCache(redis, apqLimits, `fleet:${installationId}:`)
    : new MemoryApqCache(apqLimits);
  const directory = new TenantDirectory(platform.prisma, notifications, config.tenantCacheMax);
  const sessionCache = new SessionStateCache(notifications, config.tenantCacheMax);
  // A pooler URL without a database of its own reaches DATABASE_URL's database.
  const tenantServerUrl = !config.tenantPoolerUrl
    ? config.databaseUrl
    : new URL(config.tenantPoolerUrl).pathname.length > 1
      ? config.tenantPoolerUrl
      : urlWithDatabase(config.tenantPoolerUrl, databaseNameOf(config.databaseUrl));
  const clusters = new DatabaseClusters(config.clusters, platform, tenantServerUrl);
  // Each cluster its own budget: TENANT_CONNECTION_BUDGET is per PostgreSQL server.
  const budgets = new Map(clusters.names().map((name): [string, ConnectionBudget] => [name, new ConnectionBudget(config.tenantClients.connectionBudget, config.tenantClients.connectTimeoutMs)]));
  const tenantInFlight = new TenantInFlight(config.tenantInFlight, () => metrics.recordRateLimitRefusal('tenant_in_flight'));
  const overload = new OverloadMonitor(config.overload, logger);
  const census = new DatabaseCensus(
    platform.pool,
    clusters,
    jobQueues(config).map((queue) => queue.name),
  );
  const metrics: Metrics = new Metrics({
    tenantClients: () => tenantClients.stats(),
    passwordJobs: () => passwords.stats(),
    tenantOperations: () => tenantInFlight.stats(),
    overload,
    catalog: () => census.catalog(),
    auditOutboxBacklog: () => census.auditOutboxBacklog(),
    jobQueues: () => census.jobQueues(),
    operationNamesMax: config.metrics.operationNamesMax,
  });
  const onAuthAttempt = metrics.recordAuthAttempt.bind(metrics);
  const tenantClients = new TenantClientPool({
    ...config.tenantClients,
    // A pooler refuses per-connection startup settings: there the role's own setting holds (ensureTenantRole).
    statementTimeoutMs: config.tenantPoolerUrl ? undefined : config.limits.maxExecutionMs,
    budgets,
    connectionConfig: (tenant) => tenantConnectionConfig(clusters.get(tenant.cluster).tenantServerUrl, tenant.dbRole, config.tenantDbSecret),
    onQuery: () => metrics.tenantSqlStatements.inc(),
    onError: (error, tenantId) => logger.warn({ tenantId, err: { name: error.name } }, 'tenant connection error'),
  });
  const accessTokens = new AccessTokens({
    secret: config.auth.jwtSecret,
    issuer: config.auth.issuer,
    audience: config.auth.audience,
    ttlSeconds: config.auth.accessTokenTtlSeconds,
  });
  const apiKeys = new ApiKeyService({ platform, directory, notifications, cacheMax: config.tenantCacheMax, metrics });
  const schema = buildSchema({
    maxExecutionMs: config.limits.maxExecutionMs,
    fieldRateLimits: config.rateLimit.enabled
      ? fieldRateLimitTransformer({
          redis,
          failurePolicy: config.rateLimit.redisFailure,
          commandTimeoutMs: config.rateLimit.redisCommandTimeoutMs,
          namespace: installationId,
          onRefused: () => metrics.recordRateLimitRefusal('field'),
        })
      : undefined,
  });
  const tenantSchemas: TenantSchemaDependencies = {
    platform,
    clusters,
    installationId,
    migrator: deps.tenantMigrator,
    tenantMigrationsDir,
    tenantDbSecret: config.tenantDbSecret,
    directory,
    logger,
    metrics,
    tenantStatementTimeoutMs: config.limits.maxExecutionMs,
  };
  const mailer = createMailer(config.email, logger, (kind, outcome) => metrics.recordEmail(kind, outcome));
  // Webhooks and Slack; the delivery worker takes integrations.webhookChannel and .slackChannel.
  const integrations = createOutboundIntegrations(config, logger);
  // Every committed event goes here (the events worker: `eventBus.publish(event)`), and per-user messages (`publishToUser`).
  const eventBus = createEventBus(redis, installationId, logger);
  const jobs = new JobQueue(clientConfigFromUrl(config.databaseUrl), logger, {
    pollingIntervalSeconds: config.jobPollIntervalSeconds,
    fetchJobs: config.jobWorkerEnabled,
    metrics,
  });
  const outbox = new EmailOutbox(jobs);
  const provisioner = new TenantProvisioner({ ...tenantSchemas, passwords, outbox });
  const migrations = new TenantMigrationRunner({ ...tenantSchemas, defaultConcurrency: config.migrateConcurrency });
  const tripLateness = new TripLateness({ platformPool: jobs.pool, tenantClients, jobs });
  const deliveryWorker = new DeliveryWorker({
    platformPool: jobs.pool,
    tenantClients,
    jobs,
    channels: [
      // Each notification written reaches its member's open subscriptions, on whichever instance.
      new InAppChannel((tenantId, added) => void eventBus.publishToUser(tenantId, added.userId, added).catch(() => undefined)),
      new EmailChannel({ mailer, platform }),
      integrations.webhookChannel,
      integrations.slackChannel,
    ],
    logger,
    retry: {
      maxAttempts: config.notifications.maxAttempts,
      baseDelayMs: config.notifications.retryBaseMs,
      maxDelayMs: config.notifications.retryMaxMs,
      claimMs: 120_000,
    },
    concurrency: config.notifications.workerConcurrency,
    // Subscriptions: every event fanned out reaches the subscribers of its tenant, on every
    // instance; a dispatch queues its trip's late check. Both run, whichever fails.
    onDispatched: async (event) => void (await Promise.all([eventBus.publish(event), tripLateness.onEvent(event)])),
    metrics,
  });
  notifications.subscribe(deliveryWorker);
  const services: Services = {
    platform,
    directory,
    tenantClients,
    sessions: new SessionService({
      platform,
      directory,
      passwords,
      accessTokens,
      refreshTokenTtlSeconds: config.auth.refreshTokenTtlSeconds,
      logger,
      sessionCache,
      onAuthAttempt,
    }),
    members: new MemberService({ platform, passwords, sessionCache, apiKeys, outbox }),
    invitations: new InvitationService({ platform, passwords, sessionCache, outbox }),
    mailer,
    accountEmails: new AccountEmailService({
      platform,
      passwords,
      sessionCache,
      outbox,
      buckets: redis ? new RedisTokenBuckets(redis) : new MemoryTokenBuckets(),
      failurePolicy: config.rateLimit.redisFailure,
      namespace: installationId,
      logger,
    }),
    provisioner,
    tenantDeletion: new TenantDeletionPurge({ platform, provisioner, logger }),
    migrations,
    mover: new TenantMover({ ...tenantSchemas, provisioner, migrations, tenantClients, sessionDrainMs: config.tenantMoveDrainMs }),
    clusters,
    lifecycle: new TenantLifecycle({ platform, directory, tenantClients, deletionGraceDays: config.retention.tenantDeletionGraceDays }),
    retention: new DeletedRecordPurge({ platform, tenantClients, logger, retentionDays: config.retention.deletedRecordDays, eventRetentionDays: config.retention.eventDays }),
    jobs,
    notifications: deliveryWorker,
    auditRelay: new AuditRelay({ platform, tenantClients, logger, notifications, sweepIntervalMs: AUDIT_SWEEP_INTERVAL_MS, metrics }),
    apiKeys,
    webhooks: integrations.webhooks,
    slack: integrations.slack,
    eventBus,
    safelist: new OperationSafelist({
      platform,
      schema: () => schema,
      checkDocumentShape: (document) => assertDocumentShape(document, config.limits),
      notifications,
    }),
  };
  // Whoever changed a tenant's row (a move's switch, a suspension, a migration), on whichever
  // instance: its client here is rebuilt for the next request, from the row as it is now, and
  // its old connections close once their requests end.
  notifications.subscribe({
    onNotification: (channel, payload) => {
      if (channel === 'fleet_tenant_changes') tenantClients.forget(payload);
    },
    onReset: () => undefined,
  });
  return {
    schema,
    services,
    clusters,
    tripLateness,
    integrations,
    metrics,
    authenticator: new Authenticator({
      platform,
      directory,
      accessTokens,
      apiKeys,
      sessions: sessionCache,
      tenantHostSuffix: config.tenantHostSuffix,
      onAuthAttempt,
    }),
    rateLimiter: config.rateLimit.enabled
      ? new RequestRateLimiter(redis ? new RedisTokenBuckets(redis) : new MemoryTokenBuckets(), {
          failurePolicy: config.rateLimit.redisFailure,
          storeTimeoutMs: config.rateLimit.redisCommandTimeoutMs,
          addressLimits: config.rateLimit.signedOut,
          namespace: installationId,
          logger,
          onTake: () => metrics.rateLimitTakes.inc(),
          onRefused: (bucket) => metrics.recordRateLimitRefusal(bucket),
        })
      : null,
    tenantInFlight,
    overload,
    apqCache,
  };
}
