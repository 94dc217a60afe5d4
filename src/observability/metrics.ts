import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { PasswordJobStats } from '../auth/password-jobs';
import { COUNTED_JOB_STATES, type CatalogCensus, type JobQueueCensus } from './database-census';
import { OperationNameLabels } from './operation-name-labels';
import type { OverloadMonitor } from './overload-monitor';

/** How a caller proved who it is: the sign-in mutations, or the credentials a request carries. */
export type AuthMethod = 'login' | 'admin_login' | 'refresh' | 'access_token' | 'api_key';
export type AuthOutcome = 'ok' | 'failed' | 'error';
export type RecordAuthAttempt = (method: AuthMethod, outcome: AuthOutcome) => void;

/** An authentication attempt's outcome from what it threw (if anything). */
export function authOutcomeOf(error: unknown): AuthOutcome {
  const code = (error as { extensions?: { code?: unknown } } | null)?.extensions?.code;
  return code === 'UNAUTHENTICATED' || code === 'FORBIDDEN' ? 'failed' : 'error';
}

/** Runs an authentication attempt and reports its outcome. */
export async function countedAttempt<T>(record: RecordAuthAttempt | undefined, method: AuthMethod, attempt: () => Promise<T>): Promise<T> {
  try {
    const result = await attempt();
    record?.(method, 'ok');
    return result;
  } catch (error) {
    record?.(method, authOutcomeOf(error));
    throw error;
  }
}
/**
 * Which budget refused a request: the signed-out client address's, the tenant's or its caller's
 * request bucket, the tenant's in-flight queue, or a field's own @rateLimit.
 */
export type RateLimitBucket = 'address' | 'tenant' | 'caller' | 'tenant_in_flight' | 'field';

/** A job handler's end: returned (`ok`), or threw (`failed`: pg-boss retries it up to its queue's limit). */
export type JobRunOutcome = 'ok' | 'failed';
/** Which email: the three account emails (jobs of `send-email`) and event notifications (the EMAIL channel). */
export type EmailKind = 'invitation' | 'password_reset' | 'email_verification' | 'notification';
export const EMAIL_KINDS: readonly EmailKind[] = ['invitation', 'password_reset', 'email_verification', 'notification'];
/** `sent`: the relay accepted it (or the log transport printed it); `failed`: refused or unreachable, tried again by its job or delivery. */
export type EmailOutcome = 'sent' | 'failed';

const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
/** Provisioning and migrations take from tens of milliseconds to minutes. */
const SLOW_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];
/** Jobs: a wake-up in milliseconds, a tenant's fan-out or an SMTP exchange in seconds, up to a job's 10-minute expiry. */
const JOB_BUCKETS = [0.005, 0.025, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 600];
/** From an event's commit to its fan-out: milliseconds when all is well, up to hours behind a stuck tenant. */
const EVENT_DELAY_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600];

export interface MetricSources {
  tenantClients: () => {
    cachedClients: number;
    evictions: number;
    openConnections: number;
    connectionBudget: number;
    waitingForConnection: number;
    budgetWaits: number;
    budgetWaitTimeouts: number;
    clusters: { name: string; openConnections: number; connectionBudget: number }[];
  };
  passwordJobs: () => PasswordJobStats;
  tenantOperations: () => { tenants: number; running: number; waiting: number };
  overload: OverloadMonitor;
  /** Catalog figures; the source caches them (a scrape must not hammer pg_class). */
  catalog: () => Promise<CatalogCensus[]>;
  /** Platform audit entries queued for their tenant's log; cached by the source too. */
  auditOutboxBacklog: () => Promise<number | null>;
  /** The server's job queues by state, from pg-boss's table; cached by the source too (null: never read). */
  jobQueues: () => Promise<JobQueueCensus[] | null>;
  /** Distinct operation names kept as label values (METRICS_OPERATION_NAMES_MAX). */
  operationNamesMax: number;
}

/**
 * Prometheus metrics of one server instance (its own registry, so tests can run several).
 * Services receive this object (or one of its methods) and record what happens where it
 * happens; figures that services keep themselves are copied on scrape. No label carries a
 * tenant id: label values come from small fixed sets, and operation names are bounded
 * (OperationNameLabels).
 */
export class Metrics {
  readonly registry = new Registry();
  readonly tenantSqlStatements = new Counter({
    name: 'fleet_tenant_sql_statements_total',
    help: 'SQL statements sent by tenant-bound connections',
    registers: [this.registry],
  });
  readonly rateLimitTakes = new Counter({
    name: 'fleet_rate_limit_takes_total',
    help: 'Round trips to the rate-limit store (one spends a request\'s points from all its buckets at once)',
    registers: [this.registry],
  });
  readonly graphqlOperations = new Histogram({
    name: 'fleet_graphql_operation_duration_seconds',
    help: 'GraphQL operations by type and outcome',
    labelNames: ['operation', 'outcome'],
    buckets: DURATION_BUCKETS,
    registers: [this.registry],
  });
  private readonly graphqlRequests = new Counter({
    name: 'fleet_graphql_requests_total',
    help: 'GraphQL requests by operation name (bounded: "(other)" past METRICS_OPERATION_NAMES_MAX, "(signed-out)", "(anonymous)", "(refused)") and outcome (ok, the one error code, or mixed)',
    labelNames: ['operation_name', 'outcome'],
    registers: [this.registry],
  });
  private readonly graphqlRequestDuration = new Histogram({
    name: 'fleet_graphql_request_duration_seconds',
    help: 'GraphQL request durations by operation name (bounded as in fleet_graphql_requests_total) and outcome (ok or error)',
    labelNames: ['operation_name', 'outcome'],
    buckets: DURATION_BUCKETS,
    registers: [this.registry],
  });
  private readonly authAttempts = new Counter({
    name: 'fleet_auth_attempts_total',
    help: 'Authentication attempts by method (login, admin_login, refresh, access_token, api_key) and outcome: ok, failed (UNAUTHENTICATED or FORBIDDEN), error (anything else: rate limited, database down)',
    labelNames: ['method', 'outcome'],
    registers: [this.registry],
  });
  private readonly rateLimitRefusals = new Counter({
    name: 'fleet_rate_limit_refusals_total',
    help: 'Requests refused RATE_LIMITED, by the budget that ran out (address, tenant, caller, tenant_in_flight, field)',
    labelNames: ['bucket'],
    registers: [this.registry],
  });
  private readonly tenantsCreated = new Counter({
    name: 'fleet_tenants_created_total',
    help: 'Tenants provisioned to ACTIVE by this instance',
    registers: [this.registry],
  });
  private readonly tenantProvisioning = new Histogram({
    name: 'fleet_tenant_provisioning_duration_seconds',
    help: 'Provisioning runs (role, schema, migrations, seed, owner) by outcome (ok, failed)',
    labelNames: ['outcome'],
    buckets: SLOW_BUCKETS,
    registers: [this.registry],
  });
  private readonly tenantMigrations = new Histogram({
    name: 'fleet_tenant_migration_duration_seconds',
    help: 'One tenant schema brought to the newest migration, by outcome (migrated, up_to_date, failed); tenants skipped without touching their schema are not counted',
    labelNames: ['outcome'],
    buckets: SLOW_BUCKETS,
    registers: [this.registry],
  });
  private readonly apiKeys = new Counter({
    name: 'fleet_api_keys_total',
    help: 'API keys by event (created, revoked); revoked counts keys revoked with their creator too',
    labelNames: ['event'],
    registers: [this.registry],
  });
  private readonly auditEntriesMoved = new Counter({
    name: 'fleet_audit_entries_moved_total',
    help: "Platform audit entries moved from the outbox into their tenant's log by this instance",
    registers: [this.registry],
  });
  private readonly notificationAttempts = new Counter({
    name: 'fleet_notification_attempts_total',
    help: 'Notification delivery attempts by this instance, by channel and outcome (delivered, retrying, dead)',
    labelNames: ['channel', 'outcome'],
    registers: [this.registry],
  });
  private readonly jobRuns = new Counter({
    name: 'fleet_job_runs_total',
    help: 'Job handlers run by this instance, by queue and outcome (ok, failed: retried by pg-boss up to the queue\'s limit)',
    labelNames: ['queue', 'outcome'],
    registers: [this.registry],
  });
  private readonly jobDuration = new Histogram({
    name: 'fleet_job_duration_seconds',
    help: 'Job handler durations on this instance, by queue (whatever their outcome)',
    labelNames: ['queue'],
    buckets: JOB_BUCKETS,
    registers: [this.registry],
  });
  private readonly emails = new Counter({
    name: 'fleet_emails_total',
    help: 'Emails handed to the relay by this instance, by kind (invitation, password_reset, email_verification, notification) and outcome (sent, failed: refused or unreachable, tried again by its job or delivery)',
    labelNames: ['kind', 'outcome'],
    registers: [this.registry],
  });
  private readonly eventsDispatched = new Counter({
    name: 'fleet_events_dispatched_total',
    help: 'Domain events fanned out into deliveries by this instance (each counted once, by the job that stamped it)',
    registers: [this.registry],
  });
  private readonly eventDispatchDelay = new Histogram({
    name: 'fleet_event_dispatch_delay_seconds',
    help: "Time from an event (its audit entry's occurredAt, as its change is written) to its fan-out, by the database's clock",
    buckets: EVENT_DELAY_BUCKETS,
    registers: [this.registry],
  });
  private readonly operationNames: OperationNameLabels;

  constructor(sources: MetricSources) {
    this.operationNames = new OperationNameLabels(sources.operationNamesMax);
    // Zero series from the start, so that rate() and the dashboard see them before the first event.
    for (const method of ['login', 'admin_login', 'refresh', 'access_token', 'api_key'] as const) {
      for (const outcome of ['ok', 'failed', 'error'] as const) this.authAttempts.inc({ method, outcome }, 0);
    }
    for (const bucket of ['address', 'tenant', 'caller', 'tenant_in_flight', 'field'] as const) this.rateLimitRefusals.inc({ bucket }, 0);
    for (const event of ['created', 'revoked'] as const) this.apiKeys.inc({ event }, 0);
    for (const outcome of ['ok', 'failed'] as const) this.tenantProvisioning.zero({ outcome });
    for (const outcome of ['migrated', 'up_to_date', 'failed'] as const) this.tenantMigrations.zero({ outcome });
    this.tenantsCreated.inc(0);
    this.auditEntriesMoved.inc(0);
    for (const channel of ['IN_APP', 'EMAIL', 'SLACK', 'WEBHOOK']) {
      for (const outcome of ['delivered', 'retrying', 'dead']) this.notificationAttempts.inc({ channel, outcome }, 0);
    }
    for (const kind of EMAIL_KINDS) {
      for (const outcome of ['sent', 'failed'] as const) this.emails.inc({ kind, outcome }, 0);
    }
    this.eventsDispatched.inc(0);
    new Gauge({
      name: 'fleet_jobs',
      help: "Jobs in pg-boss's table by queue and state (created, retry: waiting; active: running; failed: retries spent), all instances' (counted at most every 10 s)",
      labelNames: ['queue', 'state'],
      registers: [this.registry],
      async collect() {
        for (const census of (await sources.jobQueues()) ?? []) {
          for (const state of COUNTED_JOB_STATES) this.set({ queue: census.queue, state }, census.jobs[state]);
        }
      },
    });
    new Gauge({
      name: 'fleet_job_queue_lag_seconds',
      help: "How long each queue's oldest job due to run has waited for a worker, 0 when none waits (counted at most every 10 s); for tenant-events, how long a tenant's new events have waited for their fan-out",
      labelNames: ['queue'],
      registers: [this.registry],
      async collect() {
        for (const census of (await sources.jobQueues()) ?? []) this.set({ queue: census.queue }, census.lagSeconds);
      },
    });
    new Gauge({
      name: 'fleet_tenant_operations',
      help: 'GraphQL operations of all tenants on this instance, by state: running, or waiting for their tenant\'s turn (TENANT_MAX_IN_FLIGHT)',
      labelNames: ['state'],
      registers: [this.registry],
      collect() {
        const operations = sources.tenantOperations();
        this.set({ state: 'running' }, operations.running);
        this.set({ state: 'waiting' }, operations.waiting);
      },
    });
    new Gauge({
      name: 'fleet_event_loop_delay_p99_seconds',
      help: "The event loop's 99th-percentile delay over the overload monitor's last check",
      registers: [this.registry],
      collect() {
        this.set(sources.overload.reading().eventLoopDelayMs / 1000);
      },
    });
    new Gauge({
      name: 'fleet_heap_used_ratio',
      help: 'V8 heap in use, as a share of its limit',
      registers: [this.registry],
      collect() {
        this.set(sources.overload.reading().heapRatio);
      },
    });
    new Gauge({
      name: 'fleet_overloaded',
      help: '1 while the server sheds signed-out requests and expensive operations (503 OVERLOADED)',
      registers: [this.registry],
      collect() {
        this.set(sources.overload.overloaded ? 1 : 0);
      },
    });
    new Counter({
      name: 'fleet_shed_requests_total',
      help: 'Requests refused while overloaded, by what they were',
      labelNames: ['reason'],
      registers: [this.registry],
      collect() {
        this.reset();
        // Both reasons from the start (zero), so that the dashboard's rate() has a series.
        for (const reason of ['signed-out', 'expensive']) this.inc({ reason }, 0);
        for (const [reason, count] of sources.overload.shed()) this.inc({ reason }, count);
      },
    });
    new Gauge({
      name: 'fleet_tenant_clients_cached',
      help: 'Tenant-bound Prisma clients in the LRU',
      registers: [this.registry],
      collect() {
        this.set(sources.tenantClients().cachedClients);
      },
    });
    new Counter({
      name: 'fleet_tenant_client_evictions_total',
      help: 'Tenant clients pushed out of the full LRU (TENANT_CLIENT_CACHE_MAX) by other tenants',
      registers: [this.registry],
      collect() {
        this.reset();
        this.inc(sources.tenantClients().evictions);
      },
    });
    new Counter({
      name: 'fleet_connection_budget_waits_total',
      help: 'Tenant connections that had to queue for the connection budget, by outcome: all (every wait), timed_out (answered SERVICE_UNAVAILABLE)',
      labelNames: ['outcome'],
      registers: [this.registry],
      collect() {
        const stats = sources.tenantClients();
        this.reset();
        this.inc({ outcome: 'all' }, stats.budgetWaits);
        this.inc({ outcome: 'timed_out' }, stats.budgetWaitTimeouts);
      },
    });
    new Gauge({
      name: 'fleet_connection_budget_waiting',
      help: 'Tenant connections queued for the connection budget now',
      registers: [this.registry],
      collect() {
        this.set(sources.tenantClients().waitingForConnection);
      },
    });
    new Gauge({
      name: 'fleet_catalog_tenant_schemas',
      help: "Tenant schemas in each cluster's catalog (counted at most once a minute)",
      labelNames: ['cluster'],
      registers: [this.registry],
      async collect() {
        for (const census of await sources.catalog()) this.set({ cluster: census.cluster }, census.tenantSchemas);
      },
    });
    new Gauge({
      name: 'fleet_catalog_relations',
      help: "Relations (tables, indexes, sequences, views...) in each cluster's catalog, pg_class rows (counted at most once a minute)",
      labelNames: ['cluster'],
      registers: [this.registry],
      async collect() {
        for (const census of await sources.catalog()) this.set({ cluster: census.cluster }, census.relations);
      },
    });
    new Gauge({
      name: 'fleet_audit_outbox_backlog',
      help: 'Platform audit entries queued in the outbox, not yet moved to their tenant (counted at most every 10 s)',
      registers: [this.registry],
      async collect() {
        const backlog = await sources.auditOutboxBacklog();
        if (backlog !== null) this.set(backlog);
      },
    });
    new Gauge({
      name: 'fleet_tenant_connections_open',
      help: 'PostgreSQL connections held by all tenant clients, per cluster',
      labelNames: ['cluster'],
      registers: [this.registry],
      collect() {
        for (const cluster of sources.tenantClients().clusters) this.set({ cluster: cluster.name }, cluster.openConnections);
      },
    });
    new Gauge({
      name: 'fleet_tenant_connection_budget',
      help: 'Most PostgreSQL connections all tenant clients may hold, per cluster',
      labelNames: ['cluster'],
      registers: [this.registry],
      collect() {
        for (const cluster of sources.tenantClients().clusters) this.set({ cluster: cluster.name }, cluster.connectionBudget);
      },
    });
    new Gauge({
      name: 'fleet_password_jobs',
      help: 'bcrypt jobs by state: on a worker thread, queued for one, waiting for room in the queue',
      labelNames: ['state'],
      registers: [this.registry],
      collect() {
        const jobs = sources.passwordJobs();
        for (const state of ['running', 'queued', 'waiting'] as const) this.set({ state }, jobs[state]);
      },
    });
    new Counter({
      name: 'fleet_password_jobs_total',
      help: 'bcrypt jobs by outcome; refused: the queue stayed full, answered RATE_LIMITED',
      labelNames: ['outcome'],
      registers: [this.registry],
      collect() {
        // The jobs keep their own totals; a scrape copies them.
        const jobs = sources.passwordJobs();
        this.reset();
        for (const outcome of ['completed', 'failed', 'refused'] as const) this.inc({ outcome }, jobs[outcome]);
      },
    });
    new Gauge({
      name: 'fleet_password_threads',
      help: 'Worker threads running bcrypt',
      registers: [this.registry],
      collect() {
        this.set(sources.passwordJobs().threads);
      },
    });
    collectDefaultMetrics({ register: this.registry });
  }

  /**
   * One GraphQL request: its operation name (bounded; new names only from callers with
   * credentials), the error codes it answered, how long it took.
   */
  recordRequest(request: { operationName: string | null | undefined; signedIn: boolean; codes: readonly string[]; seconds: number }): void {
    const operationName = this.operationNames.labelOf(request.operationName, request.signedIn);
    const distinct = [...new Set(request.codes)];
    const outcome = distinct.length === 0 ? 'ok' : distinct.length === 1 ? (distinct[0] ?? 'mixed') : 'mixed';
    this.graphqlRequests.inc({ operation_name: operationName, outcome });
    this.graphqlRequestDuration.observe({ operation_name: operationName, outcome: outcome === 'ok' ? 'ok' : 'error' }, request.seconds);
  }

  /** A request refused by the guard, before Apollo parsed it (its name is not even looked at). */
  recordRefusedRequest(code: string): void {
    this.graphqlRequests.inc({ operation_name: OperationNameLabels.REFUSED, outcome: code });
  }

  recordAuthAttempt(method: AuthMethod, outcome: AuthOutcome): void {
    this.authAttempts.inc({ method, outcome });
  }

  recordRateLimitRefusal(bucket: RateLimitBucket): void {
    this.rateLimitRefusals.inc({ bucket });
  }

  recordProvisioning(outcome: 'ok' | 'failed', seconds: number): void {
    this.tenantProvisioning.observe({ outcome }, seconds);
    if (outcome === 'ok') this.tenantsCreated.inc();
  }

  recordTenantMigration(outcome: 'migrated' | 'up_to_date' | 'failed', seconds: number): void {
    this.tenantMigrations.observe({ outcome }, seconds);
  }

  recordApiKeys(event: 'created' | 'revoked', count = 1): void {
    this.apiKeys.inc({ event }, count);
  }

  recordAuditEntriesMoved(count: number): void {
    this.auditEntriesMoved.inc(count);
  }

  recordNotificationAttempt(channel: string, outcome: 'delivered' | 'retrying' | 'dead'): void {
    this.notificationAttempts.inc({ channel, outcome });
  }

  /** A queue this instance works: its series start at zero (queue names are the server's own, a fixed set). */
  declareJobQueue(queue: string): void {
    for (const outcome of ['ok', 'failed'] as const) this.jobRuns.inc({ queue, outcome }, 0);
    this.jobDuration.zero({ queue });
  }

  recordJobRun(queue: string, outcome: JobRunOutcome, seconds: number): void {
    this.jobRuns.inc({ queue, outcome });
    this.jobDuration.observe({ queue }, seconds);
  }

  recordEmail(kind: EmailKind, outcome: EmailOutcome): void {
    this.emails.inc({ kind, outcome });
  }

  /** Events one fan-out stamped, with each one's delay since its commit. */
  recordEventsDispatched(delaysSeconds: readonly number[]): void {
    this.eventsDispatched.inc(delaysSeconds.length);
    for (const seconds of delaysSeconds) this.eventDispatchDelay.observe(Math.max(0, seconds));
  }
}
