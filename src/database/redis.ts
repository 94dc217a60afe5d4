import Redis, { Cluster } from 'ioredis';
import type { RedisNode } from '../config/config';
import type { Logger } from '../observability/logger';

/**
 * What the request path talks to: one Redis (REDIS_URL) or a Redis Cluster (REDIS_CLUSTER_NODES).
 * Both share ioredis' commands, scripts (defineCommand) and events; every user keeps the keys a
 * script touches together under one hash tag, so the same code runs on either
 * (tests/unit/redis-key-slots.test.ts checks it).
 */
export type RedisClient = Redis | Cluster;

export type RedisTarget = { url: string } | { clusterNodes: RedisNode[] };

/**
 * A Redis connection for the request path: no request may wait long on an unreachable Redis.
 * Commands fail at once while disconnected (no offline queue, no retries per request) and time
 * out after `commandTimeoutMs` when Redis hangs; the connection keeps reconnecting in the
 * background, so everything resumes by itself when Redis is back.
 */
export function createRedis(target: RedisTarget, logger: Logger, commandTimeoutMs: number): RedisClient {
  let downSince: number | null = null;
  const redis = 'url' in target ? createSingle(target.url, commandTimeoutMs) : createCluster(target.clusterNodes, commandTimeoutMs);
  const onDown = () => {
    if (downSince === null) {
      downSince = Date.now();
      logger.warn('redis unreachable; applying the configured failure policy until it returns');
    }
  };
  redis.on('error', onDown);
  redis.on('ready', () => {
    if (downSince !== null) logger.info({ downForMs: Date.now() - downSince }, 'redis reachable again');
    downSince = null;
  });
  if (redis instanceof Cluster) {
    // One node lost is not the cluster lost: its slots fail (failure policy) until a replica
    // takes over. Fetching the slot map at once, rather than at the next periodic refresh,
    // finds the promoted replica as soon as the cluster has elected it.
    // (Not once the client is closing: a refresh would connect again.)
    const refresh = () => {
      if (redis.status === 'ready') redis.refreshSlotsCache();
    };
    let lastNodeLog = 0;
    redis.on('node error', (_error: unknown, node: string) => {
      if (Date.now() - lastNodeLog > 10_000) {
        lastNodeLog = Date.now();
        logger.warn({ node }, 'redis cluster node unreachable; its slots follow the failure policy until a replica takes over');
      }
      refresh();
    });
    redis.on('-node', refresh);
  }
  return redis;
}

function createSingle(url: string, commandTimeoutMs: number): Redis {
  return new Redis(url, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: commandTimeoutMs,
    connectTimeout: 2_000,
    retryStrategy: (attempt) => Math.min(attempt * 200, 2_000),
    lazyConnect: false,
  });
}

/**
 * The same request-path semantics on a cluster. ioredis would otherwise hold a command through
 * a failover (a retry every 100 ms, up to 16 times, with no command timeout while it waits):
 * here a command whose node is gone fails at once and the failure policy answers, like a lost
 * single Redis. The slot map is refreshed every second and whenever a node fails, so requests
 * reach the promoted replica within about a second of its election.
 */
function createCluster(nodes: RedisNode[], commandTimeoutMs: number): Cluster {
  return new Cluster(nodes, {
    enableOfflineQueue: false,
    // Writes and reads both go to masters: a bucket read from a lagging replica would over-grant.
    scaleReads: 'master',
    retryDelayOnFailover: 0,
    retryDelayOnClusterDown: 0,
    retryDelayOnTryAgain: 0,
    // MOVED during a resharding is answered at once by the right node; a few hops suffice.
    maxRedirections: 4,
    slotsRefreshInterval: 1_000,
    slotsRefreshTimeout: Math.max(commandTimeoutMs, 1_000),
    clusterRetryStrategy: (attempt) => Math.min(attempt * 200, 2_000),
    lazyConnect: false,
    redisOptions: {
      maxRetriesPerRequest: 0,
      commandTimeout: commandTimeoutMs,
      connectTimeout: 2_000,
    },
  });
}

/** Resolves once the connection is ready, or false after `timeoutMs` (start-up goes on either way). */
export function redisReady(redis: RedisClient, timeoutMs: number): Promise<boolean> {
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
