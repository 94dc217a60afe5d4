import type pg from 'pg';
import type { DatabaseClusters } from '../clusters/database-clusters';
import { PLATFORM_SCHEMA } from '../database/platform-database';

export interface CatalogCensus {
  cluster: string;
  /** Schemas of this installation's tenants that exist in the catalog. */
  tenantSchemas: number;
  /** pg_class rows of the cluster's database: what makes schema-per-tenant's catalog heavy. */
  relations: number;
}

const CATALOG_MAX_AGE_MS = 60_000;
const OUTBOX_MAX_AGE_MS = 10_000;

/**
 * Database figures for /metrics, read on scrape but at most once per max age, however many
 * Prometheus servers scrape how often: a catalog of thousands of schemas is not free to count.
 * Concurrent scrapes share one query; a failed query answers the last figures (null before any),
 * so a scrape never fails because the database is briefly away.
 */
export class DatabaseCensus {
  private readonly catalogReadings: CachedReading<CatalogCensus>[];
  private readonly outboxReading: CachedReading<number>;

  /** Per cluster: its tenants' schemas (named by the platform rows placed there) and its catalog's size. */
  constructor(pool: pg.Pool, clusters: DatabaseClusters) {
    this.catalogReadings = clusters.list().map(
      (cluster) =>
        new CachedReading(CATALOG_MAX_AGE_MS, async () => {
          const placed = await pool.query<{ schemaName: string }>(`SELECT "schemaName" FROM ${PLATFORM_SCHEMA}."Tenant" WHERE "cluster" = $1`, [cluster.name]);
          const { rows } = await cluster.adminPool.query<{ tenant_schemas: string; relations: string }>(
            `SELECT (SELECT count(*) FROM pg_namespace WHERE nspname = ANY($1::text[])) AS tenant_schemas, (SELECT count(*) FROM pg_class) AS relations`,
            [placed.rows.map((row) => row.schemaName)],
          );
          return { cluster: cluster.name, tenantSchemas: Number(rows[0]?.tenant_schemas ?? 0), relations: Number(rows[0]?.relations ?? 0) };
        }),
    );
    this.outboxReading = new CachedReading(OUTBOX_MAX_AGE_MS, async () => {
      const { rows } = await pool.query<{ backlog: string }>(`SELECT count(*) AS backlog FROM ${PLATFORM_SCHEMA}."TenantAuditOutbox"`);
      return Number(rows[0]?.backlog ?? 0);
    });
  }

  /** Each cluster's figures; a cluster never read yet (unreachable since start) is left out. */
  async catalog(): Promise<CatalogCensus[]> {
    const readings = await Promise.all(this.catalogReadings.map((reading) => reading.read()));
    return readings.filter((reading) => reading !== null);
  }

  auditOutboxBacklog(): Promise<number | null> {
    return this.outboxReading.read();
  }
}

class CachedReading<T> {
  private value: T | null = null;
  private readAt = -Infinity;
  private pending: Promise<T | null> | null = null;

  constructor(
    private readonly maxAgeMs: number,
    private readonly load: () => Promise<T>,
  ) {}

  read(): Promise<T | null> {
    if (performance.now() - this.readAt < this.maxAgeMs) return Promise.resolve(this.value);
    this.pending ??= this.load().then(
      (value) => {
        this.value = value;
        this.readAt = performance.now();
        return value;
      },
      // Tried now: not again before maxAgeMs either, or a database outage would be queried per scrape.
      () => {
        this.readAt = performance.now();
        return this.value;
      },
    ).finally(() => {
      this.pending = null;
    });
    return this.pending;
  }
}
