import type { TenantPlan } from '../generated/prisma/platform/client';
import type { TenantRecord } from '../tenancy/tenant-directory';
import { clampBucket, type BucketLimits } from './token-buckets';

/**
 * Request budgets per plan: a tenant bucket shared by everyone in the tenant, and a smaller
 * bucket per caller (user or API key) so one script cannot spend its whole tenant's budget.
 * Capacity is the burst; the refill rate is the sustained requests per second.
 */
export const PLAN_LIMITS: Record<TenantPlan, { tenant: BucketLimits; principal: BucketLimits }> = {
  FREE: { tenant: { capacity: 60, refillPerSecond: 1 }, principal: { capacity: 30, refillPerSecond: 0.5 } },
  STANDARD: { tenant: { capacity: 600, refillPerSecond: 10 }, principal: { capacity: 300, refillPerSecond: 5 } },
  ENTERPRISE: { tenant: { capacity: 3000, refillPerSecond: 50 }, principal: { capacity: 1500, refillPerSecond: 25 } },
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
