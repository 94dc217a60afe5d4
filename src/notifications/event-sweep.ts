import type { PlatformDatabase } from '../database/platform-database';
import { Prisma } from '../generated/prisma/tenant/client';
import { describeError, type Logger } from '../observability/logger';
import { runTenantJob, type TenantJob } from '../tenant-jobs/tenant-jobs';
import type { TenantClientPool } from '../tenancy/tenant-client-pool';

/*
 * The one case a wake-up can be missed: an event committed while no instance was listening (all
 * of them down, or the LISTEN connection being re-made). So, at start, one look per active tenant
 * for events not yet fanned out; a tenant with some is woken. This is the only time the worker
 * reads every tenant, and it is one indexed query each (docs/decisions/0018).
 */

export async function sweepUndispatchedEvents(deps: {
  platform: PlatformDatabase;
  tenantClients: TenantClientPool;
  logger: Logger;
  wake: (tenantId: string) => Promise<void>;
  concurrency?: number;
}): Promise<number> {
  const job: TenantJob<boolean> = {
    name: 'sweep-undispatched-events',
    run: async (tenant) => {
      const lease = deps.tenantClients.lease(tenant);
      try {
        const [row] = await lease.sql.rows<{ pending: boolean }>(
          Prisma.sql`SELECT EXISTS (SELECT 1 FROM "DomainEvent" WHERE "dispatchedAt" IS NULL) AS "pending"`,
        );
        if (row?.pending) await deps.wake(tenant.id);
        return row?.pending ?? false;
      } finally {
        lease.release();
      }
    },
  };
  try {
    let woken = 0;
    const report = await runTenantJob(
      { prisma: deps.platform.prisma, logger: deps.logger },
      job,
      { statuses: ['ACTIVE'], concurrency: deps.concurrency ?? 2, dryRun: false },
      (result) => {
        if (result.outcome) woken += 1;
      },
    );
    deps.logger.info({ tenants: report.visited, failed: report.failed, woken, durationMs: report.durationMs }, 'swept tenants for events not yet delivered');
    return woken;
  } catch (error) {
    deps.logger.warn({ err: describeError(error) }, 'the start-up sweep for undelivered events failed; their tenants wake with their next event');
    return 0;
  }
}
