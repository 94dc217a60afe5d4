import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { PasswordJobStats } from '../auth/password-jobs';
import type { OverloadMonitor } from './overload-monitor';

/** Prometheus metrics of one server instance (its own registry, so tests can run several). */
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
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });

  constructor(sources: {
    tenantClients: () => { cachedClients: number; openConnections: number; connectionBudget: number };
    passwordJobs: () => PasswordJobStats;
    tenantOperations: () => { tenants: number; running: number; waiting: number };
    overload: OverloadMonitor;
  }) {
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
    new Gauge({
      name: 'fleet_tenant_connections_open',
      help: 'PostgreSQL connections held by all tenant clients',
      registers: [this.registry],
      collect() {
        this.set(sources.tenantClients().openConnections);
      },
    });
    new Gauge({
      name: 'fleet_tenant_connection_budget',
      help: 'Most PostgreSQL connections all tenant clients may hold',
      registers: [this.registry],
      collect() {
        this.set(sources.tenantClients().connectionBudget);
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
}
