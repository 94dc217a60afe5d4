import type { PlatformDatabase } from '../database/platform-database';
import type { Logger } from '../observability/logger';
import { runTenantJob, type TenantJobReport, type TenantJobResult } from '../tenant-jobs/tenant-jobs';
import type { TenantProvisioner } from './tenant-provisioner';

/**
 * Purges the tenants whose deletion is due (deleteTenant, then the grace period), through the
 * one tenant-job iterator: schema, role and platform rows, one tenant at a time under its slug
 * lock (purgeTenant). Runs with the retention purge, on one instance at a time.
 */
export class TenantDeletionPurge {
  constructor(private readonly deps: { platform: PlatformDatabase; provisioner: TenantProvisioner; logger: Logger }) {}

  /** `onResult` hears each tenant (purged, or in a dry run due) as its batch finishes. */
  async run(options: { dryRun?: boolean } = {}, onResult?: (result: TenantJobResult<{ purged: boolean }>) => void): Promise<TenantJobReport<{ purged: boolean }>> {
    const report = await runTenantJob(
      { prisma: this.deps.platform.prisma, logger: this.deps.logger },
      {
        name: 'purge-deleted-tenants',
        run: async (tenant, { dryRun }) => {
          if (dryRun) return { purged: false };
          await this.deps.provisioner.purgeTenant(tenant.slug);
          return { purged: true };
        },
      },
      { statuses: ['SUSPENDED'], where: { purgeAfter: { lte: new Date() } }, concurrency: 1, dryRun: options.dryRun ?? false },
      (result) => {
        // One line per tenant, as it goes: a purge is rare and each one worth a line of its own.
        this.deps.logger.info({ dryRun: options.dryRun ?? false, tenantId: result.tenantId, slug: result.slug, status: result.status }, 'due tenant deletion purged (or, dry, found)');
        onResult?.(result);
      },
    );
    return report;
  }
}
