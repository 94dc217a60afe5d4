import { principalKey, type TenantPrincipal } from '../auth/principal';
import type { Logger } from '../observability/logger';
import { effectiveLimits } from './plans';
import type { BucketState, TokenBucketStore } from './token-buckets';

export type RedisFailurePolicy = 'open' | 'closed';

export type RateLimitDecision =
  | { outcome: 'allowed' | 'limited'; limit: number; remaining: number; resetSeconds: number; retryAfterSeconds: number }
  /** The store failed: `open` let the request through, `closed` refuses it. */
  | { outcome: 'store-unavailable'; policy: RedisFailurePolicy };

/**
 * The per-request check: one token from the tenant's bucket and one from the caller's, before
 * anything is parsed or executed. Limits come from the tenant record (plan plus overrides), so
 * an override applies on the next request.
 */
export class TenantRateLimiter {
  private lastFailureLog = 0;

  constructor(
    private readonly store: TokenBucketStore,
    private readonly failurePolicy: RedisFailurePolicy,
    private readonly logger: Logger,
  ) {}

  get storeKind(): TokenBucketStore['kind'] {
    return this.store.kind;
  }

  async check(principal: TenantPrincipal, cost = 1): Promise<RateLimitDecision> {
    const limits = effectiveLimits(principal.tenant);
    // `{t:<id>}` is a Redis Cluster hash tag: both keys live on the tenant's slot.
    const tag = `{t:${principal.tenant.id}}`;
    try {
      const result = await this.store.take(
        [`rl:${tag}:tenant`, `rl:${tag}:${principalKey(principal)}`],
        [limits.tenant, limits.principal],
        cost,
      );
      const tightest = tighter(result.buckets[0], result.buckets[1]);
      return {
        outcome: result.allowed ? 'allowed' : 'limited',
        limit: tightest.limits.capacity,
        remaining: Math.max(0, Math.floor(tightest.tokens)),
        resetSeconds: Math.ceil((tightest.limits.capacity - tightest.tokens) / tightest.limits.refillPerSecond),
        retryAfterSeconds: Math.ceil(result.retryAfterSeconds),
      };
    } catch {
      const now = Date.now();
      if (now - this.lastFailureLog > 10_000) {
        this.lastFailureLog = now;
        this.logger.warn({ policy: this.failurePolicy }, 'rate-limit store unavailable');
      }
      return { outcome: 'store-unavailable', policy: this.failurePolicy };
    }
  }
}

/** The bucket closer to empty, relative to its size: the one the caller should watch. */
function tighter(a: BucketState, b: BucketState): BucketState {
  return a.tokens / a.limits.capacity <= b.tokens / b.limits.capacity ? a : b;
}
