import { randomBytes } from 'node:crypto';
import { createRedis, redisReady, type RedisClient } from '../../src/database/redis';
import { createLogger } from '../../src/observability/logger';
import { RequestRateLimiter, type RateLimitSubject } from '../../src/rate-limiting/request-rate-limiter';
import { RedisTokenBuckets } from '../../src/rate-limiting/token-buckets';
import { readTestServices } from '../support/services';

/*
 * The Redis failure policy is for a Redis that is unreachable or hangs, not for a server whose
 * own event loop is too busy to read Redis's answer in time. Seen before: during a stall, answers
 * that had arrived counted as "store unavailable", and the `open` policy admitted requests of a
 * tenant whose budget was spent. Here the stall is real (this process blocks its own event loop
 * while a command is in flight to the real Redis) and the command timeout is the server's.
 */

const TIMEOUT_MS = 100;
let redis: RedisClient;

beforeAll(async () => {
  redis = createRedis({ url: readTestServices().redisUrl }, createLogger('silent'), TIMEOUT_MS);
  expect(await redisReady(redis, 3_000)).toBe(true);
});

afterAll(() => {
  redis.disconnect();
});

function limiter(): RequestRateLimiter {
  return new RequestRateLimiter(new RedisTokenBuckets(redis), {
    failurePolicy: 'open',
    storeTimeoutMs: TIMEOUT_MS,
    addressLimits: { capacity: 1, refillPerSecond: 1 / 86_400 },
    namespace: `stall-${randomBytes(4).toString('hex')}`,
    logger: createLogger('silent'),
  });
}

/** Blocks this process's event loop for `ms` from the check phase, so timers run before I/O next. */
function stallEventLoop(ms: number): Promise<void> {
  return new Promise((resolve) =>
    setImmediate(() => {
      const until = performance.now() + ms;
      while (performance.now() < until) {
        // busy: nothing else runs, replies wait in the socket
      }
      resolve();
    }),
  );
}

const subject: RateLimitSubject = { kind: 'address', clientIp: '192.0.2.50' };

it('a budget spent stays spent through a stall: the late answer is "overloaded" (refused), never fail-open', async () => {
  const rateLimiter = limiter();
  expect((await rateLimiter.take(subject, 1)).outcome).toBe('allowed');
  expect((await rateLimiter.take(subject, 1)).outcome).toBe('limited');

  const during = rateLimiter.take(subject, 1);
  await stallEventLoop(4 * TIMEOUT_MS);
  const decision = await during;
  expect(decision).toEqual({ outcome: 'overloaded', limit: 1, remaining: 0, resetSeconds: 1 });
});

it('without a stall the same limiter answers from Redis as usual', async () => {
  const rateLimiter = limiter();
  const first = await rateLimiter.take(subject, 1);
  expect(first).toMatchObject({ outcome: 'allowed', limit: 1, remaining: 0 });
  expect((await rateLimiter.take(subject, 1)).outcome).toBe('limited');
});
