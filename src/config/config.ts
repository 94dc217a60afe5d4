import { availableParallelism } from 'node:os';
import express from 'express';
import { z } from 'zod';

/*
 * All configuration comes from the environment, parsed once at start-up. Development defaults
 * make the two-command quick start work; in production the secrets and the database must be
 * given, and start-up fails with a list of what is missing.
 */

const DEV_JWT_SECRET = 'development-only-jwt-secret-change-me-0123456789';
export const DEV_ADMIN_EMAIL = 'admin@example.com';
export const DEV_ADMIN_PASSWORD = 'admin-password';

const boolean = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((value) => value === 'true' || value === '1' || value === 'yes');
const positiveInt = z.coerce.number().int().positive();

/** Tenants migrated at once, at most: each holds a connection and a schema engine instance. */
export const MAX_MIGRATION_CONCURRENCY = 32;

/** What Express's `trust proxy` setting takes, parsed from TRUST_PROXY. */
export type TrustProxy = boolean | number | string[];

/**
 * TRUST_PROXY as Express means it: `true`/`false`, a number of hops, or a comma-separated list
 * of addresses, subnets and the names `loopback`, `linklocal`, `uniquelocal`. Passed to Express
 * as a raw string, `1` would trust the address 0.0.0.1 rather than one hop, and `true` would
 * crash start-up. Returns an error message for anything Express would refuse.
 */
export function parseTrustProxy(raw: string): { value: TrustProxy } | { error: string } {
  const text = raw.trim();
  if (/^(true|false)$/i.test(text)) return { value: text.toLowerCase() === 'true' };
  if (/^\d+$/.test(text)) {
    const hops = Number(text);
    return Number.isSafeInteger(hops) ? { value: hops } : { error: `${text} is too many hops` };
  }
  const entries = text.split(',').map((entry) => entry.trim());
  if (entries.some((entry) => entry === '')) return { error: 'an entry of the list is empty' };
  // Express compiles the list with proxy-addr; asking it is the one check that agrees with it
  // on every address and subnet notation.
  try {
    express().set('trust proxy', entries);
  } catch (error) {
    return { error: error instanceof Error ? error.message : 'not a valid trust proxy value' };
  }
  return { value: entries };
}

const trustProxy = z.string().transform((raw, context): TrustProxy => {
  const parsed = parseTrustProxy(raw);
  if ('value' in parsed) return parsed.value;
  context.addIssue({
    code: 'custom',
    message: `${parsed.error}; use true, false, a number of proxy hops, or comma-separated addresses, subnets, loopback, linklocal, uniquelocal`,
  });
  return z.NEVER;
});

export interface RedisNode {
  host: string;
  port: number;
}

/** REDIS_CLUSTER_NODES: `host:port` entries separated by commas (`[v6 address]:port` too). */
/** The cluster DATABASE_URL names: platform data, and tenants placed there. */
export const PLATFORM_CLUSTER = 'main';

export type ClusterState = 'open' | 'draining' | 'closed';
const CLUSTER_STATES: readonly ClusterState[] = ['open', 'draining', 'closed'];

/** A PostgreSQL cluster that may hold tenant schemas (TENANT_CLUSTERS; `main` is DATABASE_URL's). */
export interface ClusterSpec {
  name: string;
  /** Absent for `main` until DATABASE_URL is known (it may be the embedded PostgreSQL's). */
  url: string | undefined;
  state: ClusterState;
}

const CLUSTER_NAME = /^[a-z][a-z0-9_]{0,30}$/;

/** TENANT_CLUSTERS: `name=postgres://...` entries separated by commas; `main` is reserved for DATABASE_URL. */
export function parseTenantClusters(raw: string): { value: { name: string; url: string }[] } | { error: string } {
  const clusters: { name: string; url: string }[] = [];
  for (const entry of raw.split(',').map((part) => part.trim()).filter(Boolean)) {
    const separator = entry.indexOf('=');
    const name = entry.slice(0, Math.max(0, separator));
    const url = entry.slice(separator + 1);
    if (!CLUSTER_NAME.test(name)) return { error: `"${name || entry}" is not a cluster name (a-z, 0-9, _; starts with a letter; at most 31)` };
    if (name === PLATFORM_CLUSTER) return { error: `"${PLATFORM_CLUSTER}" is DATABASE_URL's cluster; name the others differently` };
    if (clusters.some((cluster) => cluster.name === name)) return { error: `cluster "${name}" is named twice` };
    if (!/^postgres(ql)?:\/\/./.test(url) || !URL.canParse(url)) {
      return { error: `cluster "${name}" needs a postgres:// URL (percent-encode a comma in its password as %2C)` };
    }
    clusters.push({ name, url });
  }
  return { value: clusters };
}

/** TENANT_CLUSTER_STATES: `name=open|draining|closed` entries separated by commas; unnamed clusters are open. */
export function parseClusterStates(raw: string): { value: Map<string, ClusterState> } | { error: string } {
  const states = new Map<string, ClusterState>();
  for (const entry of raw.split(',').map((part) => part.trim()).filter(Boolean)) {
    const parts = entry.split('=');
    const [name = '', state = ''] = parts;
    if (parts.length !== 2 || !CLUSTER_STATES.includes(state as ClusterState)) return { error: `"${entry}" is not name=open|draining|closed` };
    states.set(name, state as ClusterState);
  }
  return { value: states };
}

export function parseRedisClusterNodes(raw: string): { value: RedisNode[] } | { error: string } {
  const entries = raw.split(',').map((entry) => entry.trim());
  const nodes: RedisNode[] = [];
  for (const entry of entries) {
    const match = /^(\[[0-9a-fA-F:.]+\]|[^\s:[\]]+):(\d{1,5})$/.exec(entry);
    const port = Number(match?.[2]);
    if (!match || port < 1 || port > 65535) return { error: `"${entry}" is not host:port` };
    nodes.push({ host: (match[1] as string).replace(/^\[(.*)\]$/, '$1'), port });
  }
  return { value: nodes };
}

const environmentSchema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  PORT: z.coerce.number().int().min(0).max(65535).default(4000),
  HOST: z.string().default('0.0.0.0'),
  DATABASE_URL: z.string().url().optional(),
  REDIS_URL: z.string().url().optional(),
  /** A Redis Cluster instead of REDIS_URL: some of its nodes (`host:port,...`); the rest are discovered. */
  REDIS_CLUSTER_NODES: z.string().transform((raw, context): RedisNode[] => {
    const parsed = parseRedisClusterNodes(raw);
    if ('value' in parsed) return parsed.value;
    context.addIssue({ code: 'custom', message: `${parsed.error}; use host:port,host:port,...` });
    return z.NEVER;
  }).optional(),
  /**
   * A connection pooler (PgBouncer in transaction mode) in front of DATABASE_URL's server, for
   * tenant connections only: host, port and database are taken from it, logins stay the tenant
   * roles'. Platform connections, migrations and provisioning keep DATABASE_URL (they use session
   * advisory locks and LISTEN, which transaction pooling does not carry).
   */
  TENANT_POOLER_URL: z.string().url().optional(),
  /**
   * More PostgreSQL clusters for tenant schemas, besides DATABASE_URL's (named `main`):
   * `name=postgres://user:password@host:5432/db,...`. The user is the server's own there (it
   * creates tenant roles and schemas, as on DATABASE_URL).
   */
  TENANT_CLUSTERS: z.string().transform((raw, context) => {
    const parsed = parseTenantClusters(raw);
    if ('value' in parsed) return parsed.value;
    context.addIssue({ code: 'custom', message: parsed.error });
    return z.NEVER;
  }).optional(),
  /**
   * moveTenant: how long the source's sessions opened before the tenant's writes stopped may
   * finish (instances close them as their requests end); then they are terminated.
   */
  TENANT_MOVE_DRAIN_MS: z.coerce.number().int().min(0).max(60_000).default(5_000),
  /** Which clusters take new tenants: `name=open|draining|closed,...`; a cluster not named is open. */
  TENANT_CLUSTER_STATES: z.string().transform((raw, context) => {
    const parsed = parseClusterStates(raw);
    if ('value' in parsed) return parsed.value;
    context.addIssue({ code: 'custom', message: parsed.error });
    return z.NEVER;
  }).optional(),
  JWT_SECRET: z.string().min(32, 'JWT_SECRET must be at least 32 characters').optional(),
  JWT_ISSUER: z.string().default('fleet-graphql'),
  JWT_AUDIENCE: z.string().default('fleet-graphql-api'),
  ACCESS_TOKEN_TTL_SECONDS: positiveInt.default(900),
  REFRESH_TOKEN_TTL_SECONDS: positiveInt.default(30 * 24 * 3600),
  ADMIN_EMAIL: z.string().email().optional(),
  ADMIN_PASSWORD: z.string().min(8, 'ADMIN_PASSWORD must be at least 8 characters').optional(),
  /** Derives each tenant database role's password; defaults to JWT_SECRET. */
  TENANT_DB_SECRET: z.string().min(32).optional(),
  BCRYPT_ROUNDS: z.coerce.number().int().min(4).max(15).default(10),
  // One core is left to the event loop.
  PASSWORD_HASH_THREADS: positiveInt.max(64).default(Math.max(1, availableParallelism() - 1)),
  PASSWORD_HASH_QUEUE_MAX: z.coerce.number().int().min(0).max(10_000).default(32),
  PASSWORD_HASH_QUEUE_WAIT_MS: z.coerce.number().int().min(0).max(60_000).default(500),
  // bcrypt at cost 10 is ~70 ms of a core: two checks a second per core beyond the first kept the
  // other tenants' p99 within 2x during a login flood on two cores (npm run bench -- --only noisy).
  PASSWORD_CHECKS_PER_SECOND: z.coerce.number().positive().max(100_000).default(2 * Math.max(1, availableParallelism() - 1)),
  PASSWORD_CHECKS_BURST: positiveInt.max(100_000).default(40),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  // Below `docker stop`'s 10 s and Kubernetes' 30 s before they kill: the process should be the
  // one to end its requests.
  SHUTDOWN_TIMEOUT_MS: z.coerce.number().int().min(100).max(600_000).default(8_000),
  SHUTDOWN_DELAY_MS: z.coerce.number().int().min(0).max(600_000).default(0),
  PLATFORM_POOL_MAX: positiveInt.default(10),
  TENANT_CLIENT_CACHE_MAX: positiveInt.default(500),
  TENANT_POOL_MAX: positiveInt.default(4),
  TENANT_CONNECTION_BUDGET: positiveInt.default(60),
  TENANT_IDLE_TIMEOUT_MS: positiveInt.default(10_000),
  TENANT_CONNECT_TIMEOUT_MS: positiveInt.default(5_000),
  TENANT_CACHE_MAX: positiveInt.default(10_000),
  // `wasm` is what the in-process migrator was called while it drove Prisma's WebAssembly engine.
  MIGRATOR: z
    .enum(['in-process', 'wasm', 'cli'])
    .default('in-process')
    .transform((kind) => (kind === 'wasm' ? 'in-process' : kind)),
  MIGRATE_CONCURRENCY: positiveInt.max(MAX_MIGRATION_CONCURRENCY).default(4),
  /** Soft-deleted vehicles, drivers and trips are purged for good after this many days. */
  DELETED_RECORD_RETENTION_DAYS: positiveInt.max(3650).default(30),
  /** Events fanned out and finished (every delivery DELIVERED or DEAD) go, with their deliveries, after this many days. */
  EVENT_RETENTION_DAYS: positiveInt.max(3650).default(30),
  /** deleteTenant: days between the request (the tenant stops serving at once) and its data going for good. */
  /** The largest tenant archive POST /admin/tenants/:slug/import reads. */
  TENANT_IMPORT_MAX_BYTES: positiveInt.default(256 * 1024 * 1024),
  TENANT_DELETION_GRACE_DAYS: z.coerce.number().int().min(0).max(3650).default(30),
  /** How often an instance runs the purge (one instance at a time); 0 never (the operator command still can). */
  RETENTION_PURGE_INTERVAL_MS: z.coerce.number().int().min(0).max(7 * 24 * 3600 * 1000).default(3_600_000),
  /** Attempts of one notification delivery before it is DEAD. */
  NOTIFICATION_MAX_ATTEMPTS: positiveInt.max(50).default(8),
  /** The wait before the second attempt; doubled each time (with jitter), up to NOTIFICATION_RETRY_MAX_MS. */
  NOTIFICATION_RETRY_BASE_MS: positiveInt.max(3_600_000).default(10_000),
  NOTIFICATION_RETRY_MAX_MS: positiveInt.max(24 * 3_600_000).default(3_600_000),
  /** Tenants whose notifications one instance sends at once. */
  NOTIFICATION_WORKER_CONCURRENCY: positiveInt.max(64).default(4),
  /** Whether this instance runs jobs (notification deliveries, late checks); false: it only queues them for the others. */
  JOB_WORKER_ENABLED: boolean.default(true),
  /** How often an idle job worker looks for jobs (retries' wake-ups; new events wake it at once). */
  JOB_POLL_INTERVAL_SECONDS: z.coerce.number().min(0.5).max(60).default(2),
  EMBEDDED_PG_DIR: z.string().default('.data/postgres'),
  EMBEDDED_PG_PORT: positiveInt.default(54329),
  CORS_ORIGINS: z.string().optional(),
  INTROSPECTION: boolean.optional(),
  LANDING_PAGE: boolean.optional(),
  TENANT_HOST_SUFFIX: z.string().optional(),
  /** Outgoing mail: smtp://user:pass@host:587 (STARTTLS when offered) or smtps://...:465; none: emails are printed in the log. */
  SMTP_URL: z
    .string()
    .url()
    .refine((url) => /^smtps?:\/\//i.test(url), 'SMTP_URL must start with smtp:// or smtps://')
    .optional(),
  EMAIL_FROM: z.string().min(3).default('Fleet <no-reply@localhost>'),
  /** Seconds before a failed email's first retry; doubled at each of its retries. */
  EMAIL_RETRY_DELAY_SECONDS: z.coerce.number().int().min(1).max(3600).default(10),
  /** Emails this instance sends at once; 0: none (other instances send them). */
  EMAIL_CONCURRENCY: z.coerce.number().int().min(0).max(32).default(2),
  RATE_LIMIT_ENABLED: boolean.default(true),
  RATE_LIMIT_REDIS_FAILURE: z.enum(['open', 'closed']).default('open'),
  REDIS_COMMAND_TIMEOUT_MS: positiveInt.default(100),
  RATE_LIMIT_REFUSAL_DELAY_MS: z.coerce.number().int().min(0).max(10_000).default(1_000),
  SIGNED_OUT_RATE_LIMIT_CAPACITY: positiveInt.max(1_000_000).default(600),
  SIGNED_OUT_RATE_LIMIT_REFILL_PER_SECOND: z.coerce.number().positive().max(100_000).default(10),
  APQ_TTL_SECONDS: positiveInt.default(24 * 3600),
  APQ_MAX_DOCUMENT_BYTES: positiveInt.default(20_000),
  APQ_MAX_ENTRIES_PER_CALLER: positiveInt.default(1_000),
  APQ_MAX_BYTES_PER_CALLER: positiveInt.default(1_000_000),
  MAX_BODY_BYTES: positiveInt.default(200_000),
  MAX_BATCH_SIZE: positiveInt.default(1),
  MAX_DEPTH: positiveInt.default(12),
  MAX_ALIASES: positiveInt.default(20),
  MAX_DIRECTIVES: positiveInt.default(20),
  MAX_TOKENS: positiveInt.default(3_000),
  MAX_SELECTIONS: positiveInt.default(500),
  MAX_FRAGMENTS: positiveInt.default(50),
  MAX_FIELD_REPEATS: positiveInt.default(20),
  MAX_COST: positiveInt.default(10_000),
  MAX_EXECUTION_MS: positiveInt.default(5_000),
  MAX_RESPONSE_BYTES: positiveInt.default(5_000_000),
  TENANT_MAX_IN_FLIGHT: positiveInt.max(10_000).default(8),
  TENANT_MAX_IN_FLIGHT_ALONE: positiveInt.max(10_000).optional(),
  TENANT_IN_FLIGHT_QUIET_MS: z.coerce.number().int().min(0).max(60_000).default(1_000),
  TENANT_IN_FLIGHT_QUEUE: z.coerce.number().int().min(0).max(100_000).default(64),
  TENANT_IN_FLIGHT_WAIT_MS: z.coerce.number().int().min(0).max(60_000).default(5_000),
  IDEMPOTENCY_WAIT_MS: z.coerce.number().int().min(0).max(60_000).default(5_000),
  IDEMPOTENCY_STALE_CLAIM_MS: z.coerce.number().int().min(1_000).max(86_400_000).default(120_000),
  OVERLOAD_SHEDDING: boolean.default(true),
  OVERLOAD_EVENT_LOOP_DELAY_MS: positiveInt.default(200),
  OVERLOAD_HEAP_RATIO: z.coerce.number().gt(0).max(1).default(0.9),
  OVERLOAD_SHED_COST: positiveInt.default(1_000),
  OVERLOAD_CHECK_INTERVAL_MS: positiveInt.max(60_000).default(500),
  OVERLOAD_HOLD_MS: positiveInt.max(600_000).default(5_000),
  BLOCK_FIELD_SUGGESTIONS: boolean.optional(),
  TRUST_PROXY: trustProxy.optional(),
  /** Bearer token GET /metrics requires; without it /metrics is open outside production and absent in production. */
  METRICS_TOKEN: z.string().min(16, 'METRICS_TOKEN must be at least 16 characters').optional(),
  /** Distinct operation names the per-name metrics keep before counting the rest as "(other)". */
  METRICS_OPERATION_NAMES_MAX: z.coerce.number().int().min(0).max(1_000).default(100),
  /** Read (again) by src/observability/tracing.ts before anything loads; here so that it is validated and listed. */
  OTEL_ENABLED: boolean.optional(),
  OTEL_EXPORTER_OTLP_ENDPOINT: z.string().url().optional(),
  OTEL_TENANT_ATTRIBUTE: boolean.default(false),
  /**
   * Lets webhooks and Slack reach loopback, private, link-local and other non-public addresses
   * (and plain http:// in production). For tests and closed networks only: on, any tenant admin
   * can make the server call into its own network.
   */
  OUTBOUND_ALLOW_PRIVATE_NETWORKS: boolean.default(false),
  OUTBOUND_CONNECT_TIMEOUT_MS: positiveInt.max(60_000).default(5_000),
  OUTBOUND_TIMEOUT_MS: positiveInt.max(120_000).default(10_000),
  OUTBOUND_MAX_RESPONSE_BYTES: positiveInt.max(10_000_000).default(64 * 1024),
  /** A webhook endpoint is disabled after this many deliveries in a row failed. */
  WEBHOOK_DISABLE_AFTER_FAILURES: positiveInt.max(10_000).default(15),
  /** Subscriptions one WebSocket connection may run at once. */
  SUBSCRIPTIONS_PER_CONNECTION: positiveInt.max(1_000).default(20),
  /** WebSocket connections one tenant may hold on one instance. */
  WS_CONNECTIONS_PER_TENANT: positiveInt.max(100_000).default(100),
  /** How long a WebSocket may stay open without its connection_init (closed with 4408). */
  WS_CONNECTION_INIT_TIMEOUT_MS: positiveInt.max(60_000).default(3_000),
  /** How often every connection's credentials are checked again, besides the platform's change notifications. */
  WS_RECHECK_INTERVAL_MS: positiveInt.max(3_600_000).default(60_000),
});

export type Environment = z.infer<typeof environmentSchema>;

export interface Config {
  env: 'development' | 'production' | 'test';
  port: number;
  host: string;
  /** Absent: start an embedded PostgreSQL (development only). */
  databaseUrl: string | undefined;
  redisUrl: string | undefined;
  /** REDIS_CLUSTER_NODES: seed nodes of a Redis Cluster (never set together with redisUrl). */
  redisClusterNodes: RedisNode[] | undefined;
  /** PgBouncer (transaction mode) for tenant connections; absent: straight to DATABASE_URL. */
  tenantPoolerUrl: string | undefined;
  /** Every cluster tenant schemas may live on, `main` (DATABASE_URL's) first. */
  clusters: ClusterSpec[];
  /** TENANT_MOVE_DRAIN_MS. */
  tenantMoveDrainMs: number;
  auth: {
    jwtSecret: string;
    issuer: string;
    audience: string;
    accessTokenTtlSeconds: number;
    refreshTokenTtlSeconds: number;
    bcryptRounds: number;
    /** bcrypt's worker threads, the jobs that may queue for them, and how long one may wait for room. */
    passwordJobs: { threads: number; queueMax: number; queueWaitMs: number };
    /** Password checks one instance makes at most: burst, then per second. */
    passwordChecks: { capacity: number; refillPerSecond: number };
  };
  bootstrapAdmin: { email: string; password: string };
  tenantDbSecret: string;
  logLevel: Environment['LOG_LEVEL'];
  platformPoolMax: number;
  tenantClients: {
    /** Most tenant clients kept (LRU). */
    cacheMax: number;
    /** Connections one tenant's pool may open. */
    poolMax: number;
    /** Connections all tenant pools together may hold. */
    connectionBudget: number;
    idleTimeoutMs: number;
    connectTimeoutMs: number;
  };
  tenantCacheMax: number;
  migrator: 'in-process' | 'cli';
  migrateConcurrency: number;
  retention: { deletedRecordDays: number; eventDays: number; purgeIntervalMs: number; tenantDeletionGraceDays: number };
  tenantImportMaxBytes: number;
  notifications: { maxAttempts: number; retryBaseMs: number; retryMaxMs: number; workerConcurrency: number };
  jobPollIntervalSeconds: number;
  jobWorkerEnabled: boolean;
  embeddedPostgres: { dataDir: string; port: number };
  corsOrigins: string[];
  introspection: boolean;
  landingPage: boolean;
  /** e.g. `.fleet.example.com`: a request to `acme.fleet.example.com` names tenant `acme`. */
  tenantHostSuffix: string | undefined;
  email: {
    /** SMTP_URL; undefined: the log transport (every email printed through the logger). */
    smtpUrl: string | undefined;
    from: string;
    retryDelaySeconds: number;
    concurrency: number;
  };
  rateLimit: {
    enabled: boolean;
    /** What happens while Redis is unreachable: `open` serves requests unlimited, `closed` refuses them. */
    redisFailure: 'open' | 'closed';
    redisCommandTimeoutMs: number;
    /** The longest a 429 of a rate limit is held before it is sent (0: at once). */
    refusalDelayMs: number;
    /** The budget of each client address for requests without valid credentials, in cost points. */
    signedOut: { capacity: number; refillPerSecond: number };
  };
  apqTtlSeconds: number;
  /**
   * What one caller's automatic persisted queries may hold: each document is stored without
   * comments and insignificant whitespace, and only if that is at most `maxDocumentBytes`; past
   * `maxEntriesPerCaller` or `maxBytesPerCaller` the caller's oldest entries make room.
   */
  apqLimits: { maxDocumentBytes: number; maxEntriesPerCaller: number; maxBytesPerCaller: number };
  limits: {
    maxBodyBytes: number;
    /** 1 turns batched (array) requests off. */
    maxBatchSize: number;
    maxDepth: number;
    maxAliases: number;
    maxDirectives: number;
    maxTokens: number;
    /** Fields, fragment spreads and inline fragments in a document's text. */
    maxSelections: number;
    /** Fragment definitions in a document. */
    maxFragments: number;
    /** One response name in one selection set, or with a selection set of its own in a document. */
    maxFieldRepeats: number;
    maxCost: number;
    /** An operation still resolving after this long is stopped (OPERATION_TIMEOUT). */
    maxExecutionMs: number;
    /** An answer larger than this is not sent (RESPONSE_TOO_LARGE). */
    maxResponseBytes: number;
    blockFieldSuggestions: boolean;
  };
  /** Each tenant's operations at once on one instance, and how many may wait for a turn. */
  tenantInFlight: { maxInFlight: number; maxInFlightAlone: number; quietMs: number; maxQueued: number; maxWaitMs: number };
  /** Idempotency-Key on mutations (src/idempotency; docs/decisions/0012-idempotency-keys.md). */
  idempotency: {
    /** How long a key and its answer are kept: 24 h. */
    ttlMs: number;
    /** How long a request waits for another holding its key before answering 409. */
    waitMs: number;
    /** An unanswered claim older than this is taken as abandoned, and a retry runs again. */
    staleClaimMs: number;
  };
  shutdown: {
    /** From SIGTERM/SIGINT to exit; past it the process exits 1. */
    timeoutMs: number;
    /** Readiness red while still serving, before the listener closes (for load balancers to notice). */
    delayMs: number;
    /** When requests still in flight are cut, counted from the signal: what closing leaves of timeoutMs. */
    drainMs: number;
  };
  overload: {
    enabled: boolean;
    eventLoopDelayMs: number;
    heapRatio: number;
    /** Operations costing at least this are shed while overloaded. */
    shedCost: number;
    checkIntervalMs: number;
    holdMs: number;
  };
  /** Express `trust proxy` (hops, or trusted addresses): where the client IP comes from behind a proxy. */
  trustProxy: TrustProxy;
  metrics: {
    /** GET /metrics then requires `Authorization: Bearer <token>`. */
    token: string | undefined;
    /** False in production without a token: /metrics answers 404. */
    exposed: boolean;
    operationNamesMax: number;
  };
  tracing: {
    /** Spans carry the tenant id (fleet.tenant_id) only when this is on. */
    tenantAttribute: boolean;
  };
  /** Calls the server makes to URLs tenants give it (webhooks, Slack): src/outbound. */
  outbound: {
    allowPrivateNetworks: boolean;
    /** https:// only, unless off (development, tests) or allowPrivateNetworks. */
    httpsOnly: boolean;
    connectTimeoutMs: number;
    timeoutMs: number;
    maxResponseBytes: number;
  };
  webhooks: { disableAfterFailures: number };
  /** GraphQL subscriptions over WebSocket (src/subscriptions). */
  subscriptions: { perConnection: number; connectionsPerTenant: number; connectionInitTimeoutMs: number; recheckIntervalMs: number };
}

/**
 * Closing the pools, Redis and the databases gets a quarter of the shutdown time, at most 2 s;
 * requests in flight get the rest, less the readiness delay, which must leave them some.
 */
function shutdownTimes(timeoutMs: number, delayMs: number): Config['shutdown'] {
  const drainMs = timeoutMs - Math.min(2_000, Math.floor(timeoutMs / 4));
  if (delayMs >= drainMs) {
    throw new ConfigError([`SHUTDOWN_DELAY_MS (${delayMs}) must be shorter than ${drainMs} ms: SHUTDOWN_TIMEOUT_MS less what closing needs`]);
  }
  return { timeoutMs, delayMs, drainMs };
}

function clusterSpecs(others: { name: string; url: string }[], states: Map<string, ClusterState>, databaseUrl: string | undefined): ClusterSpec[] {
  return [{ name: PLATFORM_CLUSTER, url: databaseUrl }, ...others].map((cluster) => ({ ...cluster, state: states.get(cluster.name) ?? 'open' }));
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

/** Apollo Sandbox, which admins use against a development server. */
const SANDBOX_ORIGIN = 'https://studio.apollographql.com';

export function loadConfig(source: NodeJS.ProcessEnv = process.env): Config {
  const parsed = environmentSchema.safeParse(
    Object.fromEntries(Object.entries(source).filter(([, value]) => value !== undefined && value !== '')),
  );
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`));
  }
  const env = parsed.data;
  const production = env.NODE_ENV === 'production';
  if (production) {
    const missing = (['DATABASE_URL', 'JWT_SECRET', 'ADMIN_EMAIL', 'ADMIN_PASSWORD'] as const).filter((key) => !env[key]);
    if (missing.length > 0) {
      throw new ConfigError(missing.map((key) => `${key} must be set when NODE_ENV=production`));
    }
  }
  if (env.TENANT_MAX_IN_FLIGHT_ALONE !== undefined && env.TENANT_MAX_IN_FLIGHT_ALONE < env.TENANT_MAX_IN_FLIGHT) {
    throw new ConfigError([`TENANT_MAX_IN_FLIGHT_ALONE (${env.TENANT_MAX_IN_FLIGHT_ALONE}) must be at least TENANT_MAX_IN_FLIGHT (${env.TENANT_MAX_IN_FLIGHT})`]);
  }
  if (env.REDIS_URL && env.REDIS_CLUSTER_NODES) {
    throw new ConfigError(['REDIS_URL and REDIS_CLUSTER_NODES are both set: use REDIS_URL for one Redis, REDIS_CLUSTER_NODES for a Redis Cluster']);
  }
  const unknownStates = [...(env.TENANT_CLUSTER_STATES?.keys() ?? [])].filter(
    (name) => name !== PLATFORM_CLUSTER && !env.TENANT_CLUSTERS?.some((cluster) => cluster.name === name),
  );
  if (unknownStates.length > 0) throw new ConfigError([`TENANT_CLUSTER_STATES names clusters TENANT_CLUSTERS does not: ${unknownStates.join(', ')}`]);
  const jwtSecret = env.JWT_SECRET ?? DEV_JWT_SECRET;
  return {
    env: env.NODE_ENV,
    port: env.PORT,
    host: env.HOST,
    databaseUrl: env.DATABASE_URL,
    redisUrl: env.REDIS_URL,
    redisClusterNodes: env.REDIS_CLUSTER_NODES,
    tenantPoolerUrl: env.TENANT_POOLER_URL,
    clusters: clusterSpecs(env.TENANT_CLUSTERS ?? [], env.TENANT_CLUSTER_STATES ?? new Map(), env.DATABASE_URL),
    tenantMoveDrainMs: env.TENANT_MOVE_DRAIN_MS,
    auth: {
      jwtSecret,
      issuer: env.JWT_ISSUER,
      audience: env.JWT_AUDIENCE,
      accessTokenTtlSeconds: env.ACCESS_TOKEN_TTL_SECONDS,
      refreshTokenTtlSeconds: env.REFRESH_TOKEN_TTL_SECONDS,
      bcryptRounds: env.BCRYPT_ROUNDS,
      passwordJobs: { threads: env.PASSWORD_HASH_THREADS, queueMax: env.PASSWORD_HASH_QUEUE_MAX, queueWaitMs: env.PASSWORD_HASH_QUEUE_WAIT_MS },
      passwordChecks: { capacity: env.PASSWORD_CHECKS_BURST, refillPerSecond: env.PASSWORD_CHECKS_PER_SECOND },
    },
    bootstrapAdmin: {
      email: (env.ADMIN_EMAIL ?? DEV_ADMIN_EMAIL).toLowerCase(),
      password: env.ADMIN_PASSWORD ?? DEV_ADMIN_PASSWORD,
    },
    tenantDbSecret: env.TENANT_DB_SECRET ?? jwtSecret,
    logLevel: env.LOG_LEVEL,
    platformPoolMax: env.PLATFORM_POOL_MAX,
    tenantClients: {
      cacheMax: env.TENANT_CLIENT_CACHE_MAX,
      poolMax: env.TENANT_POOL_MAX,
      connectionBudget: env.TENANT_CONNECTION_BUDGET,
      idleTimeoutMs: env.TENANT_IDLE_TIMEOUT_MS,
      connectTimeoutMs: env.TENANT_CONNECT_TIMEOUT_MS,
    },
    tenantCacheMax: env.TENANT_CACHE_MAX,
    migrator: env.MIGRATOR,
    migrateConcurrency: env.MIGRATE_CONCURRENCY,
    tenantImportMaxBytes: env.TENANT_IMPORT_MAX_BYTES,
    retention: {
      deletedRecordDays: env.DELETED_RECORD_RETENTION_DAYS,
      eventDays: env.EVENT_RETENTION_DAYS,
      purgeIntervalMs: env.RETENTION_PURGE_INTERVAL_MS,
      tenantDeletionGraceDays: env.TENANT_DELETION_GRACE_DAYS,
    },
    notifications: {
      maxAttempts: env.NOTIFICATION_MAX_ATTEMPTS,
      retryBaseMs: env.NOTIFICATION_RETRY_BASE_MS,
      retryMaxMs: Math.max(env.NOTIFICATION_RETRY_MAX_MS, env.NOTIFICATION_RETRY_BASE_MS),
      workerConcurrency: env.NOTIFICATION_WORKER_CONCURRENCY,
    },
    jobPollIntervalSeconds: env.JOB_POLL_INTERVAL_SECONDS,
    jobWorkerEnabled: env.JOB_WORKER_ENABLED,
    embeddedPostgres: { dataDir: env.EMBEDDED_PG_DIR, port: env.EMBEDDED_PG_PORT },
    corsOrigins: env.CORS_ORIGINS
      ? env.CORS_ORIGINS.split(',').map((origin) => origin.trim()).filter(Boolean)
      : production
        ? []
        : [SANDBOX_ORIGIN],
    introspection: env.INTROSPECTION ?? !production,
    landingPage: env.LANDING_PAGE ?? !production,
    tenantHostSuffix: env.TENANT_HOST_SUFFIX,
    email: { smtpUrl: env.SMTP_URL, from: env.EMAIL_FROM, retryDelaySeconds: env.EMAIL_RETRY_DELAY_SECONDS, concurrency: env.EMAIL_CONCURRENCY },
    rateLimit: {
      enabled: env.RATE_LIMIT_ENABLED,
      redisFailure: env.RATE_LIMIT_REDIS_FAILURE,
      redisCommandTimeoutMs: env.REDIS_COMMAND_TIMEOUT_MS,
      refusalDelayMs: env.RATE_LIMIT_REFUSAL_DELAY_MS,
      signedOut: { capacity: env.SIGNED_OUT_RATE_LIMIT_CAPACITY, refillPerSecond: env.SIGNED_OUT_RATE_LIMIT_REFILL_PER_SECOND },
    },
    apqTtlSeconds: env.APQ_TTL_SECONDS,
    apqLimits: {
      maxDocumentBytes: env.APQ_MAX_DOCUMENT_BYTES,
      maxEntriesPerCaller: env.APQ_MAX_ENTRIES_PER_CALLER,
      maxBytesPerCaller: env.APQ_MAX_BYTES_PER_CALLER,
    },
    limits: {
      maxBodyBytes: env.MAX_BODY_BYTES,
      maxBatchSize: env.MAX_BATCH_SIZE,
      maxDepth: env.MAX_DEPTH,
      maxAliases: env.MAX_ALIASES,
      maxDirectives: env.MAX_DIRECTIVES,
      maxTokens: env.MAX_TOKENS,
      maxSelections: env.MAX_SELECTIONS,
      maxFragments: env.MAX_FRAGMENTS,
      maxFieldRepeats: env.MAX_FIELD_REPEATS,
      maxCost: env.MAX_COST,
      maxExecutionMs: env.MAX_EXECUTION_MS,
      maxResponseBytes: env.MAX_RESPONSE_BYTES,
      blockFieldSuggestions: env.BLOCK_FIELD_SUGGESTIONS ?? production,
    },
    trustProxy: env.TRUST_PROXY ?? false,
    metrics: {
      token: env.METRICS_TOKEN,
      // Production without a token: not served at all (Prometheus scrapes with the token).
      exposed: env.METRICS_TOKEN !== undefined || !production,
      operationNamesMax: env.METRICS_OPERATION_NAMES_MAX,
    },
    tracing: { tenantAttribute: env.OTEL_TENANT_ATTRIBUTE },
    outbound: {
      allowPrivateNetworks: env.OUTBOUND_ALLOW_PRIVATE_NETWORKS,
      httpsOnly: production && !env.OUTBOUND_ALLOW_PRIVATE_NETWORKS,
      connectTimeoutMs: env.OUTBOUND_CONNECT_TIMEOUT_MS,
      timeoutMs: env.OUTBOUND_TIMEOUT_MS,
      maxResponseBytes: env.OUTBOUND_MAX_RESPONSE_BYTES,
    },
    webhooks: { disableAfterFailures: env.WEBHOOK_DISABLE_AFTER_FAILURES },
    subscriptions: {
      perConnection: env.SUBSCRIPTIONS_PER_CONNECTION,
      connectionsPerTenant: env.WS_CONNECTIONS_PER_TENANT,
      connectionInitTimeoutMs: env.WS_CONNECTION_INIT_TIMEOUT_MS,
      recheckIntervalMs: env.WS_RECHECK_INTERVAL_MS,
    },
    tenantInFlight: {
      maxInFlight: env.TENANT_MAX_IN_FLIGHT,
      maxInFlightAlone: env.TENANT_MAX_IN_FLIGHT_ALONE ?? 4 * env.TENANT_MAX_IN_FLIGHT,
      quietMs: env.TENANT_IN_FLIGHT_QUIET_MS,
      maxQueued: env.TENANT_IN_FLIGHT_QUEUE,
      maxWaitMs: env.TENANT_IN_FLIGHT_WAIT_MS,
    },
    idempotency: { ttlMs: 24 * 60 * 60 * 1_000, waitMs: env.IDEMPOTENCY_WAIT_MS, staleClaimMs: env.IDEMPOTENCY_STALE_CLAIM_MS },
    shutdown: shutdownTimes(env.SHUTDOWN_TIMEOUT_MS, env.SHUTDOWN_DELAY_MS),
    overload: {
      enabled: env.OVERLOAD_SHEDDING,
      eventLoopDelayMs: env.OVERLOAD_EVENT_LOOP_DELAY_MS,
      heapRatio: env.OVERLOAD_HEAP_RATIO,
      shedCost: env.OVERLOAD_SHED_COST,
      checkIntervalMs: env.OVERLOAD_CHECK_INTERVAL_MS,
      holdMs: env.OVERLOAD_HOLD_MS,
    },
  };
}
