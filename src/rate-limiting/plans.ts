import type { TenantPlan } from '../generated/prisma/platform/client';
import type { TenantRecord } from '../tenancy/tenant-directory';
import { clampBucket, type BucketLimits } from './token-buckets';

/**
 * Request budgets per plan, in cost points (see `@cost` in schema/: an operation spends what it
 * costs, so a page of 20 vehicles with their drivers, about 140 points, spends as much as 140
 * single lookups): a tenant bucket shared by everyone in the tenant, and a smaller bucket per
 * caller (user or API key) so one script cannot spend its whole tenant's budget. Capacity is the
 * burst; the refill rate is the sustained points per second. Every caller's bucket holds at
 * least MAX_COST's default (10,000), so the most expensive query a document may ask for can run.
 */
export const PLAN_LIMITS: Record<TenantPlan, { tenant: BucketLimits; principal: BucketLimits }> = {
  FREE: { tenant: { capacity: 20_000, refillPerSecond: 200 }, principal: { capacity: 10_000, refillPerSecond: 100 } },
  STANDARD: { tenant: { capacity: 100_000, refillPerSecond: 2_000 }, principal: { capacity: 50_000, refillPerSecond: 1_000 } },
  ENTERPRISE: { tenant: { capacity: 500_000, refillPerSecond: 10_000 }, principal: { capacity: 250_000, refillPerSecond: 5_000 } },
};

/**
 * The tenant's plan limits with any override a platform admin set. Clamped to BUCKET_BOUNDS:
 * an override stored before the bounds were enforced (say one token per 30 million years)
 * becomes the nearest sane bucket instead of arithmetic that overflows in the store.
 */
export function effectiveLimits(tenant: TenantRecord): { tenant: BucketLimits; principal: BucketLimits } {
  const plan = PLAN_LIMITS[tenant.plan];
  return {
    tenant: clampBucket({
      capacity: tenant.rateLimitCapacity ?? plan.tenant.capacity,
      refillPerSecond: tenant.rateLimitRefillPerSecond ?? plan.tenant.refillPerSecond,
    }),
    principal: clampBucket({
      capacity: tenant.principalRateLimitCapacity ?? plan.principal.capacity,
      refillPerSecond: tenant.principalRateLimitRefillPerSecond ?? plan.principal.refillPerSecond,
    }),
  };
}

/** What registered (safelisted) operations of one scope may take in the platform database. */
export interface PersistedOperationLimits {
  operations: number;
  /** Total UTF-8 bytes of their documents (each at most MAX_DOCUMENT_BYTES). */
  bytes: number;
}

/**
 * Registered operations per tenant, by plan. They are stored for good (until removed) in the
 * platform database and listed in full by `persistedOperations`, so, like requests, they get a
 * budget per plan; a real client's manifest is a few hundred operations of a few KB.
 */
export const PERSISTED_OPERATION_LIMITS: Record<TenantPlan, PersistedOperationLimits> = {
  FREE: { operations: 100, bytes: 500_000 },
  STANDARD: { operations: 1_000, bytes: 5_000_000 },
  ENTERPRISE: { operations: 5_000, bytes: 25_000_000 },
};

/** Operations platform admins register for every tenant (every tenant's list shows them). */
export const GLOBAL_PERSISTED_OPERATION_LIMITS: PersistedOperationLimits = { operations: 1_000, bytes: 5_000_000 };
