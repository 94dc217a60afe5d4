import type { KeyValueCache, KeyValueCacheSetOptions } from '@apollo/utils.keyvaluecache';
import type Redis from 'ioredis';

/**
 * Apollo's automatic-persisted-query cache in Redis, so a query registered through one instance
 * is known to all. A Redis failure degrades to "not found": the client resends the full query.
 */
export class RedisApqCache implements KeyValueCache<string> {
  constructor(
    private readonly redis: Redis,
    private readonly defaultTtlSeconds: number,
    /** Keeps installations that share a Redis apart. */
    private readonly prefix: string,
  ) {}

  async get(key: string): Promise<string | undefined> {
    try {
      return (await this.redis.get(this.prefix + key)) ?? undefined;
    } catch {
      return undefined;
    }
  }

  async set(key: string, value: string, options?: KeyValueCacheSetOptions): Promise<void> {
    const ttl = options?.ttl ?? this.defaultTtlSeconds;
    try {
      if (ttl) await this.redis.set(this.prefix + key, value, 'EX', Math.max(1, Math.round(ttl)));
      else await this.redis.set(this.prefix + key, value);
    } catch {
      // The query still runs; only its registration is lost.
    }
  }

  async delete(key: string): Promise<boolean> {
    try {
      return (await this.redis.del(this.prefix + key)) > 0;
    } catch {
      return false;
    }
  }
}
