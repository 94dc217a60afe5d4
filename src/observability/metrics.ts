import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

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

  constructor(sources: { tenantClients: () => { cachedClients: number; openConnections: number; connectionBudget: number } }) {
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
    collectDefaultMetrics({ register: this.registry });
  }
}
