import type pg from 'pg';
import { PLATFORM_SCHEMA } from '../database/platform-database';

export interface CatalogCensus {
  /** Schemas of this installation's tenants that exist in the catalog. */
  tenantSchemas: number;
  /** pg_class rows of the whole database: what makes schema-per-tenant's catalog heavy. */
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
  private readonly catalogReading: CachedReading<CatalogCensus>;
  private readonly outboxReading: CachedReading<number>;

  constructor(pool: pg.Pool) {
    this.catalogReading = new CachedReading(CATALOG_MAX_AGE_MS, async () => {
      const { rows } = await pool.query<{ tenant_schemas: string; relations: string }>(
        `SELECT (SELECT count(*) FROM pg_namespace n JOIN ${PLATFORM_SCHEMA}."Tenant" t ON t."schemaName" = n.nspname) AS tenant_schemas,
                (SELECT count(*) FROM pg_class) AS relations`,
      );
      return { tenantSchemas: Number(rows[0]?.tenant_schemas ?? 0), relations: Number(rows[0]?.relations ?? 0) };
    });
    this.outboxReading = new CachedReading(OUTBOX_MAX_AGE_MS, async () => {
      const { rows } = await pool.query<{ backlog: string }>(`SELECT count(*) AS backlog FROM ${PLATFORM_SCHEMA}."TenantAuditOutbox"`);
      return Number(rows[0]?.backlog ?? 0);
    });
  }

  catalog(): Promise<CatalogCensus | null> {
    return this.catalogReading.read();
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
