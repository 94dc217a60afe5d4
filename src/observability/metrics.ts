import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { PasswordJobStats } from '../auth/password-jobs';

/** Prometheus metrics of one server instance (its own registry, so tests can run several). */
export class Metrics {
  readonly registry = new Registry();
  readonly tenantSqlStatements = new Counter({
    name: 'fleet_tenant_sql_statements_total',
    help: 'SQL statements sent by tenant-bound connections',
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
  }) {
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
