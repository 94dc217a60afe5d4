import type { RedisClient } from '../database/redis';
import { LRUCache } from 'lru-cache';

/** A bucket's shape: it holds up to `capacity` tokens and regains `refillPerSecond` per second. */
export interface BucketLimits {
  capacity: number;
  refillPerSecond: number;
}

/**
 * The buckets a limit may describe (plans, and platform-admin overrides, which are validated
 * against these). At least one token a day: slower refills made the arithmetic below overflow
 * (PEXPIRE out of range, Retry-After of centuries). At most a million points a second: a page
 * with its relations costs ~140 points, so one busy tenant across instances can reach a few
 * thousand pages a second, and no more.
 */
export const BUCKET_BOUNDS = {
  minCapacity: 1,
  maxCapacity: 1_000_000,
  minRefillPerSecond: 1 / 86_400,
  maxRefillPerSecond: 1_000_000,
} as const;

/** Which part of a bucket is out of BUCKET_BOUNDS, if any (the first found). */
export function bucketOutOfBounds(bucket: BucketLimits): keyof BucketLimits | null {
  const { capacity, refillPerSecond } = bucket;
  if (!Number.isInteger(capacity) || capacity < BUCKET_BOUNDS.minCapacity || capacity > BUCKET_BOUNDS.maxCapacity) return 'capacity';
  // Negated comparisons, so NaN is out of bounds too.
  if (!(refillPerSecond >= BUCKET_BOUNDS.minRefillPerSecond && refillPerSecond <= BUCKET_BOUNDS.maxRefillPerSecond)) return 'refillPerSecond';
  return null;
}

/** The nearest bucket within BUCKET_BOUNDS (for limits stored before the bounds were enforced). */
export function clampBucket(bucket: BucketLimits): BucketLimits {
  if (!bucketOutOfBounds(bucket)) return bucket;
  const within = (value: number, min: number, max: number) => (Number.isNaN(value) ? min : Math.min(max, Math.max(min, value)));
  return {
    capacity: Math.round(within(bucket.capacity, BUCKET_BOUNDS.minCapacity, BUCKET_BOUNDS.maxCapacity)),
    refillPerSecond: within(bucket.refillPerSecond, BUCKET_BOUNDS.minRefillPerSecond, BUCKET_BOUNDS.maxRefillPerSecond),
  };
}

/**
 * The longest a bucket within BUCKET_BOUNDS takes to refill from empty, plus a second. Both stores
 * clamp expiries and Retry-After to it: within bounds it never cuts a bucket short, and whatever
 * limits reach a store, its own arithmetic cannot overflow (Redis refuses a PEXPIRE beyond its
 * range, and a failing script would count as "store unavailable", i.e. not limited at all).
 */
export const MAX_BUCKET_SECONDS = Math.ceil(BUCKET_BOUNDS.maxCapacity / BUCKET_BOUNDS.minRefillPerSecond) + 1;

export interface BucketState {
  limits: BucketLimits;
  /** Tokens left after this request (fractional while refilling). */
  tokens: number;
}

export interface TakeResult {
  allowed: boolean;
  /** Each bucket, in the order of the keys given. */
  buckets: BucketState[];
  /** Seconds until the request would have been allowed (0 when allowed). */
  retryAfterSeconds: number;
}

/**
 * Takes `cost` tokens from every bucket at once (a tenant's and its caller's, or a client
 * address's), or from none. Both implementations below share the arithmetic; Redis runs it in
 * one Lua script.
 */
export interface TokenBucketStore {
  readonly kind: 'redis' | 'memory';
  take(keys: string[], limits: BucketLimits[], cost: number): Promise<TakeResult>;
}

/**
 * Continuous refill, checked and decremented atomically in one round trip. The clock is
 * Redis's own (TIME), so several API instances agree. The keys of one call share a hash tag, so
 * the script stays on one Redis Cluster slot. Numbers travel as strings: Redis truncates Lua
 * numbers in replies to integers. ARGV: cost, then capacity and refill rate per key.
 */
const TAKE_SCRIPT = `
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local cost = tonumber(ARGV[1])
local max_seconds = ${MAX_BUCKET_SECONDS}
local capacities, rates, tokens = {}, {}, {}
local allowed = true
for i = 1, #KEYS do
  capacities[i] = tonumber(ARGV[2 * i])
  rates[i] = tonumber(ARGV[2 * i + 1])
  local state = redis.call('HMGET', KEYS[i], 'tokens', 'at')
  local left, at = tonumber(state[1]), tonumber(state[2])
  if left == nil or at == nil then tokens[i] = capacities[i]
  else tokens[i] = math.min(capacities[i], left + math.max(0, now - at) * rates[i] / 1000) end
  if tokens[i] < cost then allowed = false end
end
local retry = 0
local reply = { allowed and 1 or 0 }
for i = 1, #KEYS do
  if allowed then tokens[i] = tokens[i] - cost
  elseif tokens[i] < cost then retry = math.max(retry, (cost - tokens[i]) / rates[i]) end
  redis.call('HSET', KEYS[i], 'tokens', tostring(tokens[i]), 'at', tostring(now))
  local ttl = (capacities[i] - tokens[i]) / rates[i] + 1
  -- 'not <' also catches NaN and infinity (a zero or denormal rate)
  if not (ttl < max_seconds) then ttl = max_seconds end
  redis.call('PEXPIRE', KEYS[i], math.ceil(ttl * 1000))
  reply[#reply + 1] = tostring(tokens[i])
end
if not (retry < max_seconds) then retry = max_seconds end
reply[#reply + 1] = tostring(retry)
return reply
`;

type TakeCommand = (numberOfKeys: number, ...keysAndArgs: (string | number)[]) => Promise<[number, ...string[]]>;

export class RedisTokenBuckets implements TokenBucketStore {
  readonly kind = 'redis';

  constructor(private readonly redis: RedisClient) {
    if (!(redis as unknown as { fleetTakeTokens?: unknown }).fleetTakeTokens) {
      // The number of keys varies (one bucket or two), so it is given per call.
      redis.defineCommand('fleetTakeTokens', { lua: TAKE_SCRIPT });
    }
  }

  async take(keys: string[], limits: BucketLimits[], cost: number): Promise<TakeResult> {
    const take = (this.redis as unknown as { fleetTakeTokens: TakeCommand }).fleetTakeTokens.bind(this.redis);
    const args = limits.flatMap((limit) => [limit.capacity, limit.refillPerSecond]);
    const [allowed, ...rest] = await take(keys.length, ...keys, cost, ...args);
    return {
      allowed: allowed === 1,
      buckets: limits.map((limit, i) => ({ limits: limit, tokens: Number(rest[i]) })),
      retryAfterSeconds: Number(rest[keys.length]),
    };
  }
}

/**
 * The same buckets in this process's memory, for a server without Redis. Correct for a single
 * instance only: two instances would each grant the full budget.
 */
export class MemoryTokenBuckets implements TokenBucketStore {
  readonly kind = 'memory';
  private readonly buckets = new LRUCache<string, { tokens: number; at: number }>({ max: 100_000 });

  async take(keys: string[], limits: BucketLimits[], cost: number): Promise<TakeResult> {
    const now = Date.now();
    const tokens = keys.map((key, i) => {
      const { capacity, refillPerSecond } = limits[i] as BucketLimits;
      const state = this.buckets.get(key);
      return state ? Math.min(capacity, state.tokens + (Math.max(0, now - state.at) * refillPerSecond) / 1000) : capacity;
    });
    const allowed = tokens.every((left) => left >= cost);
    let retry = 0;
    keys.forEach((key, i) => {
      const { refillPerSecond } = limits[i] as BucketLimits;
      let left = tokens[i] as number;
      if (allowed) left -= cost;
      else if (left < cost) retry = Math.max(retry, Math.min(MAX_BUCKET_SECONDS, (cost - left) / refillPerSecond));
      tokens[i] = left;
      this.buckets.set(key, { tokens: left, at: now });
    });
    return {
      allowed,
      buckets: limits.map((limit, i) => ({ limits: limit, tokens: tokens[i] as number })),
      retryAfterSeconds: retry,
    };
  }
}
