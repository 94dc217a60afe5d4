import { isTenantPrincipal, principalKey, type Principal, type TenantPrincipal } from '../auth/principal';
import type { Logger } from '../observability/logger';
import { rateLimitAddress } from './client-address';
import { effectiveLimits } from './plans';
import type { BucketLimits, BucketState, TokenBucketStore } from './token-buckets';

export type RedisFailurePolicy = 'open' | 'closed';

/** Whose budget a request spends: its tenant's and caller's, or, signed out, its client address's. */
export type RateLimitSubject = { kind: 'tenant'; principal: TenantPrincipal } | { kind: 'address'; clientIp: string };

/** The budgets a request of `principal` spends; null for platform admins, who have none. */
export function rateLimitSubjectOf(principal: Principal, clientIp: string): RateLimitSubject | null {
  if (isTenantPrincipal(principal)) return { kind: 'tenant', principal };
  return principal.kind === 'anonymous' ? { kind: 'address', clientIp } : null;
}

/** Whose budget it is, as a refusal says it. */
export const subjectName = (subject: RateLimitSubject) => (subject.kind === 'tenant' ? subject.principal.tenant.slug : 'your address');

/** What the response's RateLimit-* headers say: the bucket closest to empty. */
export interface RateLimitState {
  limit: number;
  remaining: number;
  resetSeconds: number;
}

export type RateLimitDecision =
  | ({ outcome: 'allowed' | 'limited'; retryAfterSeconds: number } & RateLimitState)
  /** The store is unreachable: `open` let the request through, `closed` refuses it. */
  | ({ outcome: 'store-unavailable'; policy: RedisFailurePolicy } & RateLimitState)
  /**
   * The store's answer came too late because this process was busy (a stalled event loop), not
   * because the store is gone: refused whatever the policy, since admitting it would let a
   * stall lift every limit, and shedding work is what a stalled server needs.
   */
  | ({ outcome: 'overloaded' } & RateLimitState);

/**
 * Spends points from request budgets: a tenant's bucket and its caller's (user or API key), or
 * the client address's for a request without valid credentials. The guard takes one point per
 * operation before parsing; once an operation is priced, it takes the rest of its cost
 * (src/graphql/hardening.ts), so a budget is spent by what operations cost. An operation priced
 * before (known-costs.ts) spends its whole cost in the guard's one take. Tenant limits come
 * from the tenant record (plan plus overrides), so an override applies on the next request.
 */
export class RequestRateLimiter {
  private lastFailureLog = 0;

  constructor(
    private readonly store: TokenBucketStore,
    private readonly options: {
      failurePolicy: RedisFailurePolicy;
      /** The store's answer is due within this (REDIS_COMMAND_TIMEOUT_MS). */
      storeTimeoutMs: number;
      /** The bucket of each signed-out client address. */
      addressLimits: BucketLimits;
      /** Keeps installations that share a Redis apart (tenant ids are unique anyway; addresses are not). */
      namespace: string;
      logger: Logger;
      /** Called for every round trip to the store (metrics; tests count them). */
      onTake?: () => void;
      /** Called for every refusal, with the bucket that was short (metrics). */
      onRefused?: (bucket: 'address' | 'tenant' | 'caller') => void;
    },
  ) {}

  get storeKind(): TokenBucketStore['kind'] {
    return this.store.kind;
  }

  async take(subject: RateLimitSubject, points: number): Promise<RateLimitDecision> {
    const { keys, limits } = this.bucketsOf(subject);
    const startedAt = performance.now();
    this.options.onTake?.();
    try {
      const result = await this.store.take(keys, limits, points);
      const tightest = result.buckets.reduce(tighter);
      if (!result.allowed) this.options.onRefused?.(refusingBucket(subject, result.buckets, points));
      return { outcome: result.allowed ? 'allowed' : 'limited', retryAfterSeconds: Math.ceil(result.retryAfterSeconds), ...stateOf(tightest) };
    } catch {
      // Unknown now, so the headers say "nothing left, look again in a second".
      const unknown: RateLimitState = { limit: Math.min(...limits.map((limit) => limit.capacity)), remaining: 0, resetSeconds: 1 };
      if (firedLate(performance.now() - startedAt, this.options.storeTimeoutMs)) return { outcome: 'overloaded', ...unknown };
      const now = Date.now();
      if (now - this.lastFailureLog > 10_000) {
        this.lastFailureLog = now;
        this.options.logger.warn({ policy: this.options.failurePolicy }, 'rate-limit store unavailable');
      }
      return { outcome: 'store-unavailable', policy: this.options.failurePolicy, ...unknown };
    }
  }

  private bucketsOf(subject: RateLimitSubject): { keys: string[]; limits: BucketLimits[] } {
    if (subject.kind === 'address') {
      return { keys: [addressBucketKey(this.options.namespace, rateLimitAddress(subject.clientIp))], limits: [this.options.addressLimits] };
    }
    const { principal } = subject;
    const limits = effectiveLimits(principal.tenant);
    return { keys: tenantBucketKeys(principal.tenant.id, principalKey(principal)), limits: [limits.tenant, limits.principal] };
  }
}

/** Which of a refused take's buckets was short: the first holding fewer tokens than asked. */
function refusingBucket(subject: RateLimitSubject, buckets: BucketState[], points: number): 'address' | 'tenant' | 'caller' {
  if (subject.kind === 'address') return 'address';
  const short = buckets.findIndex((bucket) => bucket.tokens < points);
  return short === 1 ? 'caller' : 'tenant';
}

/**
 * A tenant's bucket and its caller's, which one script takes from together: `{t:<id>}` is a
 * Redis Cluster hash tag, so both live on the tenant's slot (and tenants spread over the slots).
 */
export function tenantBucketKeys(tenantId: string, caller: string): [tenant: string, caller: string] {
  const tag = `{t:${tenantId}}`;
  return [`rl:${tag}:tenant`, `rl:${tag}:${caller}`];
}

/** A signed-out client address's bucket; `{a:...}` hash-tags it (one bucket, one slot). */
export function addressBucketKey(namespace: string, address: string): string {
  return `rl:{a:${namespace}:${address}}`;
}

/**
 * Whether a store call that failed after `elapsedMs` failed by a timeout that fired late: this
 * process was too busy to run its timers (and to read the answer, which may well have arrived).
 * A timer on an idle loop fires within a few milliseconds of its time; a Redis that is down
 * fails at once, and one that hangs times out on time.
 */
export function firedLate(elapsedMs: number, timeoutMs: number): boolean {
  return elapsedMs - timeoutMs > Math.max(20, timeoutMs / 5);
}

function stateOf(bucket: BucketState): RateLimitState {
  return {
    limit: bucket.limits.capacity,
    remaining: Math.max(0, Math.floor(bucket.tokens)),
    resetSeconds: Math.ceil((bucket.limits.capacity - bucket.tokens) / bucket.limits.refillPerSecond),
  };
}

/** The bucket closer to empty, relative to its size: the one the caller should watch. */
function tighter(a: BucketState, b: BucketState): BucketState {
  return a.tokens / a.limits.capacity <= b.tokens / b.limits.capacity ? a : b;
}
