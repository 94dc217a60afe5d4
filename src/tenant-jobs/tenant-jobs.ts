import type { PlatformPrisma } from '../database/platform-database';
import { isUuid } from '../database/uuid';
import type { Prisma, TenantStatus } from '../generated/prisma/platform/client';
import { mapWithConcurrency } from '../concurrency/map-with-concurrency';
import { describeError, errorMessageOf, type Logger } from '../observability/logger';
import type { TenantRecord } from '../tenancy/tenant-directory';

/*
 * The one way work runs over every tenant (migrations, purging deleted records, ...): tenants in
 * id order, read from the platform in bounded batches (10,000 tenants are never one query's
 * answer or one array), a few at a time, each tenant's failure reported and the run going on.
 * A run reports where it got to: `resumeAfter` is the last tenant id before which every tenant
 * was done, so a run that was cut off (a deploy, a crash) resumes with `after` and does not
 * begin again. Jobs are written to be safe to run twice on a tenant, so resuming from a little
 * too early costs time, never correctness. `dryRun` is passed to the job: it reports what it
 * would do and changes nothing.
 */

export interface TenantJobSelection {
  /** Only these tenants (ids); default every tenant in `statuses`. */
  tenantIds?: readonly string[] | null;
  /** Tenants in these states (null: any); default ACTIVE and SUSPENDED (those with a complete schema). */
  statuses?: readonly TenantStatus[] | null;
  /** Resume: only tenants whose id sorts after this one. */
  after?: string | null;
  /** Only tenants whose platform row matches this too (a deletion that is due, say). */
  where?: Prisma.TenantWhereInput;
}

export interface TenantJobOptions extends TenantJobSelection {
  /** Tenants worked on at once. */
  concurrency: number;
  /** Tenants read from the platform per query. */
  batchSize?: number;
  dryRun?: boolean;
}

export type TenantJobStatus = 'DONE' | 'FAILED';

export interface TenantJobResult<Outcome> {
  tenantId: string;
  slug: string;
  tenant: TenantRecord;
  status: TenantJobStatus;
  /** The job's own report for this tenant (null when it failed). */
  outcome: Outcome | null;
  /** Why it failed: a class and code, never SQL. */
  error: string | null;
  durationMs: number;
}

export interface TenantJobReport<Outcome> {
  job: string;
  dryRun: boolean;
  results: TenantJobResult<Outcome>[];
  /** Ids asked for that are no tenant (in `statuses`). */
  missingTenantIds: string[];
  /** The last tenant id of the run, in id order: `after` for a run that goes on from here; null if there was none. */
  resumeAfter: string | null;
  durationMs: number;
}

export interface TenantJob<Outcome> {
  name: string;
  /** Does the job's work on one tenant; throws to report the tenant FAILED. */
  run(tenant: TenantRecord, context: { dryRun: boolean }): Promise<Outcome>;
}

const DEFAULT_BATCH = 100;
const DEFAULT_STATUSES: readonly TenantStatus[] = ['ACTIVE', 'SUSPENDED'];

export async function runTenantJob<Outcome>(
  deps: { prisma: PlatformPrisma; logger: Logger },
  job: TenantJob<Outcome>,
  options: TenantJobOptions,
): Promise<TenantJobReport<Outcome>> {
  const startedAt = performance.now();
  const dryRun = options.dryRun ?? false;
  const batchSize = options.batchSize ?? DEFAULT_BATCH;
  const statuses = options.statuses === undefined ? DEFAULT_STATUSES : options.statuses;
  // UUIDs compare case-insensitively: one spelling per tenant, so each gets one result.
  const requested = options.tenantIds ? [...new Set(options.tenantIds.map((id) => (isUuid(id) ? id.toLowerCase() : id)))] : null;
  const lookUp = requested?.filter(isUuid) ?? null;
  const results: TenantJobResult<Outcome>[] = [];
  let cursor = options.after && isUuid(options.after) ? options.after.toLowerCase() : null;
  for (;;) {
    if (lookUp !== null && lookUp.length === 0) break;
    const batch = await deps.prisma.tenant.findMany({
      where: { ...options.where, ...(statuses ? { status: { in: [...statuses] } } : {}), id: { ...(lookUp ? { in: lookUp } : {}), ...(cursor ? { gt: cursor } : {}) } },
      orderBy: { id: 'asc' },
      take: batchSize,
    });
    results.push(...(await mapWithConcurrency(batch, options.concurrency, (tenant) => runOne(deps.logger, job, tenant, dryRun))));
    if (batch.length < batchSize) break;
    cursor = batch.at(-1)?.id ?? null;
  }
  const found = new Set(results.map((result) => result.tenantId));
  return {
    job: job.name,
    dryRun,
    results,
    missingTenantIds: (requested ?? []).filter((id) => !found.has(id) && !(options.after && isUuid(id) && id <= options.after.toLowerCase())),
    resumeAfter: results.at(-1)?.tenantId ?? options.after ?? null,
    durationMs: Math.round(performance.now() - startedAt),
  };
}

async function runOne<Outcome>(logger: Logger, job: TenantJob<Outcome>, tenant: TenantRecord, dryRun: boolean): Promise<TenantJobResult<Outcome>> {
  const startedAt = performance.now();
  try {
    const outcome = await job.run(tenant, { dryRun });
    return { tenantId: tenant.id, slug: tenant.slug, tenant, status: 'DONE', outcome, error: null, durationMs: Math.round(performance.now() - startedAt) };
  } catch (error) {
    logger.error({ job: job.name, tenantId: tenant.id, slug: tenant.slug, err: describeError(error) }, 'tenant job failed for a tenant');
    return { tenantId: tenant.id, slug: tenant.slug, tenant, status: 'FAILED', outcome: null, error: errorMessageOf(error), durationMs: Math.round(performance.now() - startedAt) };
  }
}
