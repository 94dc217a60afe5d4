import type { PlatformDatabase } from '../database/platform-database';
import type { Logger } from '../observability/logger';
import { runTenantJob, type TenantJobReport } from '../tenant-jobs/tenant-jobs';
import type { TenantProvisioner } from './tenant-provisioner';

/**
 * Purges the tenants whose deletion is due (deleteTenant, then the grace period), through the
 * one tenant-job iterator: schema, role and platform rows, one tenant at a time under its slug
 * lock (purgeTenant). Runs with the retention purge, on one instance at a time.
 */
export class TenantDeletionPurge {
  constructor(private readonly deps: { platform: PlatformDatabase; provisioner: TenantProvisioner; logger: Logger }) {}

  async run(options: { dryRun?: boolean } = {}): Promise<TenantJobReport<{ purged: boolean }>> {
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
    );
    if (report.results.length > 0) {
      this.deps.logger.info({ dryRun: report.dryRun, tenants: report.results.map((result) => ({ slug: result.slug, status: result.status })) }, 'deleted tenants purged');
    }
    return report;
  }
}
