import type { AuditActor, AuditMetadata } from '../audit/audit-entry';
import { queueAudit } from '../audit/audit-log';
import type { PlatformDatabase } from '../database/platform-database';
import { assertNoNul, badInput, conflict, notFound } from '../errors/app-error';
import type { Prisma, TenantPlan } from '../generated/prisma/platform/client';
import { MAX_QUOTA_OVERRIDE, type Quota } from '../rate-limiting/plan-quotas';
import { BUCKET_BOUNDS, bucketOutOfBounds, type BucketLimits } from '../rate-limiting/token-buckets';
import type { TenantClientPool } from '../tenancy/tenant-client-pool';
import type { TenantDirectory, TenantRecord } from '../tenancy/tenant-directory';

/**
 * Suspension, reactivation, renaming and replanning, deletion with a grace period. The platform
 * trigger notifies every instance, which drops the tenant from its cache: the next request
 * anywhere sees the new status, plan or limits. Changes a tenant's admins should know of are in
 * its audit log (by PLATFORM_ADMIN).
 */
export class TenantLifecycle {
  constructor(
    private readonly deps: { platform: PlatformDatabase; directory: TenantDirectory; tenantClients: TenantClientPool; deletionGraceDays: number },
  ) {}

  /** Renames a tenant or moves it to another plan (its rate limits and quotas follow on the next request). */
  async update(tenantId: string, input: { name?: string | null; plan?: TenantPlan | null }, by: AuditActor): Promise<TenantRecord> {
    const tenant = await this.find(tenantId);
    const name = input.name === undefined || input.name === null ? undefined : input.name.trim();
    if (name !== undefined && (name.length === 0 || name.length > 200)) throw badInput('name must be 1 to 200 characters', 'input.name');
    if (name !== undefined) assertNoNul(name, 'input.name');
    const data = { ...(name !== undefined ? { name } : {}), ...(input.plan ? { plan: input.plan } : {}) };
    const updated = await this.deps.platform.prisma.$transaction(async (tx) => {
      const row = await tx.tenant.update({ where: { id: tenant.id }, data });
      const changed = Object.keys(data).filter((field) => tenant[field as keyof typeof data] !== row[field as keyof typeof data]);
      if (changed.length > 0) {
        await queueAudit(tx, tenant.id, by, { action: 'tenant.updated', targetType: 'Tenant', targetId: tenant.id, metadata: { fields: changed, plan: row.plan } });
      }
      return row;
    });
    this.deps.directory.invalidate(tenant.id);
    return updated;
  }

  /**
   * Deletes a tenant after a grace period: it stops serving at once (SUSPENDED) and its data,
   * schema, role and platform rows go once `purgeAfter` has passed (TenantDeletionPurge), unless
   * cancelDeletion comes first. Asking again changes nothing.
   */
  async scheduleDeletion(tenantId: string, by: AuditActor): Promise<TenantRecord> {
    const tenant = await this.find(tenantId);
    if (tenant.status !== 'ACTIVE' && tenant.status !== 'SUSPENDED') {
      throw conflict(`Only a provisioned tenant is deleted this way; this one is ${tenant.status} (purgeTenant removes it)`, 'id');
    }
    if (tenant.purgeAfter) return tenant;
    const now = new Date();
    const purgeAfter = new Date(now.getTime() + this.deps.deletionGraceDays * 24 * 3600 * 1000);
    const updated = await this.changeRow(tenant, { status: 'SUSPENDED', deletionRequestedAt: now, purgeAfter }, by, 'tenant.deletionScheduled', {
      purgeAfter: purgeAfter.toISOString(),
    });
    this.deps.directory.invalidate(tenant.id);
    this.deps.tenantClients.forget(tenant.id);
    return updated;
  }

  /** Keeps a tenant whose deletion is scheduled; it stays SUSPENDED until reactivateTenant. */
  async cancelDeletion(tenantId: string, by: AuditActor): Promise<TenantRecord> {
    const tenant = await this.find(tenantId);
    const updated = await this.deps.platform.prisma.$transaction(async (tx) => {
      // Only while it is still scheduled: a purge that already began has the row locked or gone.
      const { count } = await tx.tenant.updateMany({ where: { id: tenant.id, purgeAfter: { not: null } }, data: { deletionRequestedAt: null, purgeAfter: null } });
      if (count === 0) throw conflict('This tenant has no deletion to cancel', 'id');
      await queueAudit(tx, tenant.id, by, { action: 'tenant.deletionCancelled', targetType: 'Tenant', targetId: tenant.id });
      return tx.tenant.findUniqueOrThrow({ where: { id: tenant.id } });
    });
    this.deps.directory.invalidate(tenant.id);
    return updated;
  }

  async suspend(tenantId: string, by: AuditActor): Promise<TenantRecord> {
    const tenant = await this.find(tenantId);
    if (tenant.status !== 'ACTIVE' && tenant.status !== 'SUSPENDED') {
      throw conflict(`Only an ACTIVE tenant can be suspended; this one is ${tenant.status}`, 'id');
    }
    const updated = await this.changeRow(tenant, { status: 'SUSPENDED' }, by, 'tenant.suspended');
    this.deps.directory.invalidate(tenant.id);
    this.deps.tenantClients.forget(tenant.id);
    return updated;
  }

  async reactivate(tenantId: string, by: AuditActor): Promise<TenantRecord> {
    const tenant = await this.find(tenantId);
    if (tenant.status !== 'ACTIVE' && tenant.status !== 'SUSPENDED') {
      throw conflict(`Only a SUSPENDED tenant can be reactivated; this one is ${tenant.status} (createTenant resumes it)`, 'id');
    }
    if (tenant.purgeAfter) throw conflict('This tenant is scheduled for deletion; cancelTenantDeletion first', 'id');
    const updated = await this.changeRow(tenant, { status: 'ACTIVE' }, by, 'tenant.reactivated');
    this.deps.directory.invalidate(tenant.id);
    return updated;
  }

  /** Overrides the tenant's request budget (null: back to its plan's); applies on the next request. */
  async setRateLimit(
    tenantId: string,
    limit: { tenant: BucketLimits; perCaller: BucketLimits } | null,
    by: AuditActor,
  ): Promise<TenantRecord> {
    const tenant = await this.find(tenantId);
    if (limit) {
      for (const [field, bucket] of [['limit.tenant', limit.tenant], ['limit.perCaller', limit.perCaller]] as const) {
        const problem = bucketOutOfBounds(bucket);
        if (problem === 'capacity') {
          throw badInput(
            `${field}.capacity must be an integer from ${BUCKET_BOUNDS.minCapacity} to ${BUCKET_BOUNDS.maxCapacity}`,
            `${field}.capacity`,
          );
        }
        if (problem === 'refillPerSecond') {
          throw badInput(
            `${field}.refillPerSecond must be from 1/86400 (one token a day) to ${BUCKET_BOUNDS.maxRefillPerSecond}`,
            `${field}.refillPerSecond`,
          );
        }
      }
    }
    const updated = await this.changeRow(
      tenant,
      {
        rateLimitCapacity: limit?.tenant.capacity ?? null,
        rateLimitRefillPerSecond: limit?.tenant.refillPerSecond ?? null,
        principalRateLimitCapacity: limit?.perCaller.capacity ?? null,
        principalRateLimitRefillPerSecond: limit?.perCaller.refillPerSecond ?? null,
      },
      by,
      'tenant.rateLimitSet',
      { overridden: limit !== null },
    );
    this.deps.directory.invalidate(tenant.id);
    return updated;
  }

  /**
   * Overrides one plan quota of the tenant: a number of rows, null for unbounded, undefined to
   * follow the plan again. Nothing held is removed; a limit below what the tenant holds only
   * refuses new rows. One statement on the JSON column, so two overrides of different quotas at
   * once both stay; the trigger's notification drops the tenant from every instance's cache.
   */
  async setQuota(tenantId: string, quota: Quota, limit: number | null | undefined): Promise<TenantRecord> {
    const tenant = await this.find(tenantId);
    if (typeof limit === 'number' && (!Number.isInteger(limit) || limit < 0 || limit > MAX_QUOTA_OVERRIDE)) {
      throw badInput(`limit.max must be an integer from 0 to ${MAX_QUOTA_OVERRIDE}, or null for unbounded`, 'limit.max');
    }
    const { prisma } = this.deps.platform;
    if (limit === undefined) {
      await prisma.$executeRaw`
        UPDATE platform."Tenant" SET "quotaOverrides" = nullif(coalesce("quotaOverrides", '{}'::jsonb) - ${quota}::text, '{}'::jsonb), "updatedAt" = now()
        WHERE "id" = ${tenant.id}::uuid`;
    } else {
      await prisma.$executeRaw`
        UPDATE platform."Tenant" SET "quotaOverrides" = coalesce("quotaOverrides", '{}'::jsonb) || jsonb_build_object(${quota}::text, ${limit}::int), "updatedAt" = now()
        WHERE "id" = ${tenant.id}::uuid`;
    }
    this.deps.directory.invalidate(tenant.id);
    return prisma.tenant.findUniqueOrThrow({ where: { id: tenant.id } });
  }

  /** Updates the tenant's row with its audit entry in the same transaction. */
  private changeRow(tenant: TenantRecord, data: Prisma.TenantUpdateInput, by: AuditActor, action: string, metadata?: AuditMetadata): Promise<TenantRecord> {
    return this.deps.platform.prisma.$transaction(async (tx) => {
      const row = await tx.tenant.update({ where: { id: tenant.id }, data });
      await queueAudit(tx, tenant.id, by, { action, targetType: 'Tenant', targetId: tenant.id, ...(metadata ? { metadata } : {}) });
      return row;
    });
  }

  private async find(tenantId: string): Promise<TenantRecord> {
    const tenant = await this.deps.directory.findById(tenantId);
    if (!tenant) throw notFound('Tenant');
    return tenant;
  }
}
