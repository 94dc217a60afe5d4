import type { PlatformPrisma } from '../database/platform-database';
import { isUuid } from '../database/uuid';
import { badInput } from '../errors/app-error';
import type { Prisma, TenantStatus } from '../generated/prisma/platform/client';
import { mapWithConcurrency } from '../concurrency/map-with-concurrency';
import { describeError, errorMessageOf, type Logger } from '../observability/logger';
import type { TenantRecord } from '../tenancy/tenant-directory';

/*
 * The one way work runs over every tenant (migrations, exports, purging deleted records, ...):
 * tenants in id order, read from the platform in bounded batches, a few at a time, each
 * tenant's failure reported and the run going on. Memory is bounded by the batch, not the
 * fleet: a tenant's result goes to the caller's `onResult` and is then let go; the report keeps
 * counts and at most MAX_FAILURES_KEPT failures. A caller that wants a list (a GraphQL reply)
 * builds it in `onResult`, and so bounds it itself.
 *
 * `onResult` hears a batch's tenants in id order once the whole batch is done, so every tenant
 * up to the one it hears is done: its id is a valid `after`, also for a run that is cut off (a
 * deploy, a crash) before it reports. A finished run's `resumeAfter` is its last tenant. Jobs
 * are written to be safe to run twice on a tenant, so resuming from a little too early costs
 * time, never correctness. `dryRun` is passed to the job: it reports what it would do and
 * changes nothing.
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
  /** Tenants the run went through (DONE + FAILED). */
  visited: number;
  done: number;
  failed: number;
  /** The first MAX_FAILURES_KEPT failures, in id order (`failed` counts them all). */
  failures: TenantJobResult<Outcome>[];
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
/** Failures a report keeps for its caller; past this a fleet-wide breakage is counted, and logged per tenant. */
export const MAX_FAILURES_KEPT = 100;
const DEFAULT_STATUSES: readonly TenantStatus[] = ['ACTIVE', 'SUSPENDED'];

export async function runTenantJob<Outcome>(
  deps: { prisma: PlatformPrisma; logger: Logger },
  job: TenantJob<Outcome>,
  options: TenantJobOptions,
  onResult?: (result: TenantJobResult<Outcome>) => void | Promise<void>,
): Promise<TenantJobReport<Outcome>> {
  const startedAt = performance.now();
  const dryRun = options.dryRun ?? false;
  const batchSize = options.batchSize ?? DEFAULT_BATCH;
  const statuses = options.statuses === undefined ? DEFAULT_STATUSES : options.statuses;
  // UUIDs compare case-insensitively: one spelling per tenant, so each gets one result.
  const requested = options.tenantIds ? [...new Set(options.tenantIds.map((id) => (isUuid(id) ? id.toLowerCase() : id)))] : null;
  const lookUp = requested?.filter(isUuid) ?? null;
  const failures: TenantJobResult<Outcome>[] = [];
  const found = new Set<string>();
  let visited = 0;
  let failed = 0;
  let lastVisited: string | null = null;
  // A resume point that is no tenant id is refused: ignored, a typo would restart the run from
  // the first tenant (the CLIs refuse it the same way before they start).
  if (options.after !== null && options.after !== undefined && !isUuid(options.after)) throw badInput('after must be a tenant id (a report\'s resumeAfter)', 'after');
  let cursor = options.after ? options.after.toLowerCase() : null;
  for (;;) {
    if (lookUp !== null && lookUp.length === 0) break;
    const batch = await deps.prisma.tenant.findMany({
      where: { ...options.where, ...(statuses ? { status: { in: [...statuses] } } : {}), id: { ...(lookUp ? { in: lookUp } : {}), ...(cursor ? { gt: cursor } : {}) } },
      orderBy: { id: 'asc' },
      take: batchSize,
    });
    const results = await mapWithConcurrency(batch, options.concurrency, (tenant) => runOne(deps.logger, job, tenant, dryRun));
    for (const result of results) {
      visited += 1;
      lastVisited = result.tenantId;
      // Only asked-for ids are remembered (to name the missing ones): bounded by the request.
      if (requested) found.add(result.tenantId);
      if (result.status === 'FAILED') {
        failed += 1;
        if (failures.length < MAX_FAILURES_KEPT) failures.push(result);
      }
      await onResult?.(result);
    }
    if (batch.length < batchSize) break;
    cursor = batch.at(-1)?.id ?? null;
  }
  return {
    job: job.name,
    dryRun,
    visited,
    done: visited - failed,
    failed,
    failures,
    missingTenantIds: (requested ?? []).filter((id) => !found.has(id) && !(options.after && isUuid(id) && id <= options.after.toLowerCase())),
    resumeAfter: lastVisited ?? options.after ?? null,
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
