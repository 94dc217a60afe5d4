import Redis from 'ioredis';
import type { Logger } from '../observability/logger';

/**
 * A Redis connection for the request path: no request may wait long on an unreachable Redis.
 * Commands fail at once while disconnected (no offline queue, no retries per request) and time
 * out after `commandTimeoutMs` when Redis hangs; the connection keeps reconnecting in the
 * background, so everything resumes by itself when Redis is back.
 */
export function createRedis(url: string, logger: Logger, commandTimeoutMs: number): Redis {
  let downSince: number | null = null;
  const redis = new Redis(url, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: commandTimeoutMs,
    connectTimeout: 2_000,
    retryStrategy: (attempt) => Math.min(attempt * 200, 2_000),
    lazyConnect: false,
  });
  redis.on('error', () => {
    if (downSince === null) {
      downSince = Date.now();
      logger.warn('redis unreachable; applying the configured failure policy until it returns');
    }
  });
  redis.on('ready', () => {
    if (downSince !== null) logger.info({ downForMs: Date.now() - downSince }, 'redis reachable again');
    downSince = null;
  });
  return redis;
}

/** Resolves once the connection is ready, or false after `timeoutMs` (start-up goes on either way). */
export function redisReady(redis: Redis, timeoutMs: number): Promise<boolean> {
  if (redis.status === 'ready') return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      redis.off('ready', onReady);
      resolve(false);
    }, timeoutMs);
    const onReady = () => {
      clearTimeout(timer);
      resolve(true);
    };
    redis.once('ready', onReady);
  });
}
