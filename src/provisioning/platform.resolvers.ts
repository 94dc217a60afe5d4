import type { Resolvers, TenantPurgeResult } from '../generated/graphql';
import { platformAdminActor } from '../graphql/context';
import { pageRequest, toConnection } from '../graphql/pagination';
import { effectiveLimits } from '../rate-limiting/plans';
import { selectsPath } from '../graphql/look-ahead';
import type { TenantMigrationResult } from './tenant-migration-runner';
import type { MovedTable } from './tenant-mover';

/** Platform-admin operations: tenants, provisioning (and purging what never finished), fleet-wide migrations, suspension. */
export const platformResolvers: Resolvers = {
  Query: {
    tenants: async (_root, { first, after }, ctx) => {
      const { prisma } = ctx.services.platform;
      const page = pageRequest(first, after);
      const rows = await prisma.tenant.findMany({
        where: page.after ? { id: { gt: page.after.id } } : {},
        orderBy: { id: 'asc' },
        take: page.take + 1,
      });
      return toConnection(rows, page, () => prisma.tenant.count());
    },
    tenant: (_root, { slug }, ctx) => ctx.services.directory.findBySlug(slug.trim().toLowerCase()),
    databaseClusters: (_root, _args, ctx) => ctx.services.clusters.summaries(),
  },
  Mutation: {
    createTenant: async (_root, { input }, ctx) => ({ tenant: await ctx.services.provisioner.createTenant({ ...input, requestedBy: platformAdminActor(ctx) }) }),
    purgeDeletedRecords: async (_root, { input }, ctx, info) => {
      const purge = ctx.services.retention;
      // The per-tenant list is built only when the reply asks for it (see migrateTenants).
      const results: TenantPurgeResult[] = [];
      const listed = selectsPath(info, ['results']);
      const report = await purge.run({ tenantIds: input?.tenantIds ?? null, dryRun: input?.dryRun ?? false, after: input?.after ?? null }, (result) => {
        if (!listed) return;
        results.push({
          tenantId: result.tenantId,
          slug: result.slug,
          status: result.status,
          trips: result.outcome?.Trip ?? 0,
          drivers: result.outcome?.Driver ?? 0,
          vehicles: result.outcome?.Vehicle ?? 0,
          events: result.outcome?.events ?? 0,
          error: result.error,
          durationMs: result.durationMs,
        });
      });
      return { retentionDays: purge.retentionDays, eventRetentionDays: purge.eventRetentionDays, dryRun: report.dryRun, resumeAfter: report.resumeAfter, durationMs: report.durationMs, results };
    },
    migrateTenants: async (_root, { tenantIds, concurrency, force, dryRun, after }, ctx, info) => {
      // A reply is one JSON document: its per-tenant list is held until it is sent, so it is
      // built only when selected. A fleet-wide list is then the caller's choice, bounded by the
      // fleet (or by tenantIds, or by resuming with `after`); the counts need no list at all.
      const results: TenantMigrationResult[] = [];
      const listed = selectsPath(info, ['results']);
      const report = await ctx.services.migrations.migrateTenants(
        {
          tenantIds: tenantIds ?? null,
          concurrency: concurrency ?? null,
          force: force ?? false,
          dryRun: dryRun ?? false,
          after: after ?? null,
          requestedBy: platformAdminActor(ctx),
        },
        (result) => {
          if (listed) results.push(result);
        },
      );
      return { ...report, results };
    },
    suspendTenant: async (_root, { id }, ctx) => ({ tenant: await ctx.services.lifecycle.suspend(id, platformAdminActor(ctx)) }),
    updateTenant: async (_root, { id, input }, ctx) => ({ tenant: await ctx.services.lifecycle.update(id, input, platformAdminActor(ctx)) }),
    deleteTenant: async (_root, { id }, ctx) => ({ tenant: await ctx.services.lifecycle.scheduleDeletion(id, platformAdminActor(ctx)) }),
    cancelTenantDeletion: async (_root, { id }, ctx) => ({ tenant: await ctx.services.lifecycle.cancelDeletion(id, platformAdminActor(ctx)) }),
    reactivateTenant: async (_root, { id }, ctx) => ({ tenant: await ctx.services.lifecycle.reactivate(id, platformAdminActor(ctx)) }),
    setTenantRateLimit: async (_root, { id, limit }, ctx) => ({
      tenant: await ctx.services.lifecycle.setRateLimit(id, limit ?? null, platformAdminActor(ctx)),
    }),
    moveTenant: (_root, { id, toCluster }, ctx) => ctx.services.mover.move(id, toCluster, platformAdminActor(ctx)),
    confirmTenantMove: async (_root, { id }, ctx) => ({ tenant: await ctx.services.mover.confirm(id) }),
    cancelTenantMove: async (_root, { id }, ctx) => ({ tenant: await ctx.services.mover.cancel(id) }),
    purgeTenant: async (_root, { slug }, ctx) => {
      const purged = await ctx.services.provisioner.purgeTenant(slug);
      return { purgedTenantId: purged.tenantId, slug: purged.slug };
    },
  },
  Tenant: {
    move: (tenant, _args, ctx) => ctx.services.platform.prisma.tenantMove.findUnique({ where: { tenantId: tenant.id } }),
    rateLimit: (tenant) => {
      const limits = effectiveLimits(tenant);
      return { tenant: limits.tenant, perCaller: limits.principal, overridden: tenant.rateLimitCapacity !== null };
    },
  },
  TenantMove: {
    tables: (move) => (Array.isArray(move.verification) ? (move.verification as unknown as MovedTable[]) : []),
  },
  TenantConnection: {
    totalCount: (connection) => connection.totalCount(),
  },
  MigrateTenantsPayload: {
    migrated: (report) => report.counts.MIGRATED,
    upToDate: (report) => report.counts.UP_TO_DATE,
    failed: (report) => report.counts.FAILED,
    skipped: (report) => report.counts.SKIPPED,
    wouldMigrate: (report) => report.counts.WOULD_MIGRATE,
  },
  TenantMigrationResult: {
    tenant: (result) => result.tenant,
  },
};
