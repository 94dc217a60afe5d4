import type pg from 'pg';
import type { DatabaseClusters } from '../clusters/database-clusters';
import { withCheckedOutClient } from '../database/checked-out-client';
import { PLATFORM_SCHEMA } from '../database/platform-database';
import { JOB_QUEUE_SCHEMA } from '../jobs/job-queue';

export interface CatalogCensus {
  cluster: string;
  /** Schemas of this installation's tenants that exist in the catalog. */
  tenantSchemas: number;
  /** pg_class rows of the cluster's database: what makes schema-per-tenant's catalog heavy. */
  relations: number;
}

/**
 * pg-boss job states counted on scrape: work waiting, running, and given up (retries spent; kept
 * until pg-boss archives it). Completed and cancelled jobs are history, the bulk of the table:
 * fleet_job_runs_total counts what finished instead.
 */
export const COUNTED_JOB_STATES = ['created', 'retry', 'active', 'failed'] as const;
export type CountedJobState = (typeof COUNTED_JOB_STATES)[number];

export interface JobQueueCensus {
  queue: string;
  jobs: Record<CountedJobState, number>;
  /** How long the oldest job due to run (created or retry, its start time passed) has waited for a worker; 0 when none. */
  lagSeconds: number;
}

const CATALOG_MAX_AGE_MS = 60_000;
const OUTBOX_MAX_AGE_MS = 10_000;
const JOBS_MAX_AGE_MS = 10_000;
/** A job table grown huge (failed jobs pile up until archived) must not hold a scrape, nor a connection, for long. */
const JOBS_STATEMENT_TIMEOUT_MS = 2_000;

/**
 * Database figures for /metrics, read on scrape but at most once per max age, however many
 * Prometheus servers scrape how often: a catalog of thousands of schemas is not free to count.
 * Concurrent scrapes share one query; a failed query answers the last figures (null before any),
 * so a scrape never fails because the database is briefly away.
 */
export class DatabaseCensus {
  private readonly catalogReadings: CachedReading<CatalogCensus>[];
  private readonly outboxReading: CachedReading<number>;
  private readonly jobsReading: CachedReading<JobQueueCensus[]>;

  /**
   * Per cluster: its tenants' schemas (named by the platform rows placed there) and its catalog's
   * size. Per job queue of `jobQueues` (the server's own: a fixed set of label values): its jobs by state.
   */
  constructor(pool: pg.Pool, clusters: DatabaseClusters, jobQueues: readonly string[] = []) {
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
    this.jobsReading = new CachedReading(JOBS_MAX_AGE_MS, () => countJobs(pool, jobQueues));
  }

  /** Each cluster's figures; a cluster never read yet (unreachable since start) is left out. */
  async catalog(): Promise<CatalogCensus[]> {
    const readings = await Promise.all(this.catalogReadings.map((reading) => reading.read()));
    return readings.filter((reading) => reading !== null);
  }

  auditOutboxBacklog(): Promise<number | null> {
    return this.outboxReading.read();
  }

  /** Each of the server's queues (every one, zeros included), or null before any reading succeeded. */
  jobQueues(): Promise<JobQueueCensus[] | null> {
    return this.jobsReading.read();
  }
}

/**
 * One statement for every queue and state, every 10 s at most. pg-boss partitions `job` by queue
 * name, so the name filter reads only our queues' partitions, and these hold live jobs plus those
 * finished within pg-boss's archive period (12 h by default; sent emails are deleted at once):
 * bounded by recent activity, not by the number of tenants. Bounded in time too: past a statement
 * timeout the census answers its last figures. (pg-boss's own countStates counts every state.)
 */
async function countJobs(pool: pg.Pool, queues: readonly string[]): Promise<JobQueueCensus[]> {
  if (queues.length === 0) return [];
  const census = new Map<string, JobQueueCensus>(
    queues.map((queue) => [queue, { queue, jobs: { created: 0, retry: 0, active: 0, failed: 0 }, lagSeconds: 0 }]),
  );
  const rows = await withCheckedOutClient(pool, async (client, discard) => {
    try {
      await client.query('BEGIN READ ONLY');
      await client.query(`SET LOCAL statement_timeout = ${JOBS_STATEMENT_TIMEOUT_MS}`);
      const counted = await client.query<{ queue: string; state: CountedJobState; jobs: number; lag_seconds: number | null }>(
        `SELECT name AS queue, state::text AS state, count(*)::int AS jobs,
                extract(epoch FROM now() - min(start_after) FILTER (WHERE state < 'active' AND start_after <= now()))::float8 AS lag_seconds
           FROM ${JOB_QUEUE_SCHEMA}.job
          WHERE name = ANY($1::text[]) AND state = ANY($2::${JOB_QUEUE_SCHEMA}.job_state[])
          GROUP BY name, state`,
        [queues, COUNTED_JOB_STATES],
      );
      await client.query('COMMIT');
      return counted.rows;
    } catch (error) {
      // Not back to the pool in an unknown state (a transaction left open): closed instead.
      discard(error);
      throw error;
    }
  });
  for (const row of rows) {
    const entry = census.get(row.queue);
    if (!entry) continue;
    entry.jobs[row.state] = row.jobs;
    entry.lagSeconds = Math.max(entry.lagSeconds, row.lag_seconds ?? 0);
  }
  return [...census.values()];
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
