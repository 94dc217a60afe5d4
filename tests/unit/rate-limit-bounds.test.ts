import type { TenantRecord } from '../../src/tenancy/tenant-directory';
import { PLAN_LIMITS, effectiveLimits } from '../../src/rate-limiting/plans';
import {
  BUCKET_BOUNDS,
  MAX_BUCKET_SECONDS,
  MemoryTokenBuckets,
  bucketOutOfBounds,
  clampBucket,
  type BucketLimits,
} from '../../src/rate-limiting/token-buckets';

/** The rate-limit fields of a tenant row (all null: the plan's limits). */
function tenantRow(overrides: Partial<TenantRecord> = {}): TenantRecord {
  return {
    plan: 'STANDARD',
    rateLimitCapacity: null,
    rateLimitRefillPerSecond: null,
    principalRateLimitCapacity: null,
    principalRateLimitRefillPerSecond: null,
    ...overrides,
  } as TenantRecord;
}

describe('bucket bounds', () => {
  it('hold for every plan', () => {
    for (const [plan, limits] of Object.entries(PLAN_LIMITS)) {
      expect({ plan, tenant: bucketOutOfBounds(limits.tenant), principal: bucketOutOfBounds(limits.principal) }).toEqual({
        plan,
        tenant: null,
        principal: null,
      });
    }
  });

  it.each<[BucketLimits, keyof BucketLimits | null]>([
    [{ capacity: 1, refillPerSecond: 1 / 86_400 }, null],
    [{ capacity: 1_000_000, refillPerSecond: 1_000_000 }, null],
    [{ capacity: 2, refillPerSecond: 1_000_001 }, 'refillPerSecond'],
    [{ capacity: 2, refillPerSecond: 1e-15 }, 'refillPerSecond'],
    [{ capacity: 2, refillPerSecond: 5e-324 }, 'refillPerSecond'],
    [{ capacity: 2, refillPerSecond: 0 }, 'refillPerSecond'],
    [{ capacity: 2, refillPerSecond: Number.NaN }, 'refillPerSecond'],
    [{ capacity: 2, refillPerSecond: Number.POSITIVE_INFINITY }, 'refillPerSecond'],
    [{ capacity: 0, refillPerSecond: 1 }, 'capacity'],
    [{ capacity: 1.5, refillPerSecond: 1 }, 'capacity'],
    [{ capacity: 1_000_001, refillPerSecond: 1 }, 'capacity'],
  ])('%j: out of bounds on %p', (bucket, problem) => {
    expect(bucketOutOfBounds(bucket)).toBe(problem);
  });

  it('clamps overrides stored before the bounds held into the nearest bucket within them', () => {
    const limits = effectiveLimits(
      tenantRow({
        rateLimitCapacity: 5_000_000,
        rateLimitRefillPerSecond: 1e9,
        principalRateLimitCapacity: 2,
        principalRateLimitRefillPerSecond: 1e-15,
      }),
    );
    expect(limits).toEqual({
      tenant: { capacity: BUCKET_BOUNDS.maxCapacity, refillPerSecond: BUCKET_BOUNDS.maxRefillPerSecond },
      principal: { capacity: 2, refillPerSecond: BUCKET_BOUNDS.minRefillPerSecond },
    });
    expect(clampBucket({ capacity: 3, refillPerSecond: Number.NaN })).toEqual({ capacity: 3, refillPerSecond: BUCKET_BOUNDS.minRefillPerSecond });
    // Within bounds: the plan's (or the override's) own values, untouched.
    expect(effectiveLimits(tenantRow())).toEqual(PLAN_LIMITS.STANDARD);
  });

  it('never lets the in-memory store report an unbounded Retry-After', async () => {
    const store = new MemoryTokenBuckets();
    const limits: [BucketLimits, BucketLimits] = [
      { capacity: 10, refillPerSecond: 1 },
      { capacity: 1, refillPerSecond: 5e-324 },
    ];
    expect((await store.take(['t', 'p'], limits, 1)).allowed).toBe(true);
    const refused = await store.take(['t', 'p'], limits, 1);
    expect(refused.allowed).toBe(false);
    expect(refused.retryAfterSeconds).toBeGreaterThan(0);
    expect(refused.retryAfterSeconds).toBeLessThanOrEqual(MAX_BUCKET_SECONDS);
  });
});
