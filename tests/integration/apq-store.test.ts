import { randomBytes } from 'node:crypto';
import type { KeyValueCache } from '@apollo/utils.keyvaluecache';
import Redis from 'ioredis';
import { MemoryApqCache, memoryCallerOverhead, type ApqLimits } from '../../src/persisted-queries/apq-store';
import { callerKey } from '../../src/persisted-queries/per-caller-apq-cache';
import { RedisApqCache } from '../../src/persisted-queries/redis-apq-cache';
import { readTestServices } from '../support/services';

/*
 * The two automatic-persisted-query stores (Redis, the real test Redis; and the in-memory twin
 * of a server without Redis) held to one contract: documents stored without comments and
 * insignificant whitespace, and only under the size cap; each caller within its own budget of
 * entries and bytes, the oldest making room; expired entries gone and their room given back.
 * Time is the stores' clock, moved forward by the test instead of waited for. The same budget
 * over HTTP, through Apollo, is in persisted-queries.test.ts.
 */

const TTL_SECONDS = 600;
const LIMITS: ApqLimits = { ttlSeconds: TTL_SECONDS, maxDocumentBytes: 200, maxEntriesPerCaller: 3, maxBytesPerCaller: 400 };

interface Harness {
  cache: KeyValueCache<string>;
  /** Entries and bytes the store accounts for the caller, read from where the store keeps them. */
  usage(caller: string): Promise<{ entries: number; bytes: number }>;
}

let now = Date.UTC(2026, 0, 1);
const clock = () => now;
let redis: Redis;
/** This file's own installation prefix in the shared Redis. */
const prefix = `fleet:apq-store-test-${randomBytes(4).toString('hex')}:`;

beforeAll(() => {
  redis = new Redis(readTestServices().redisUrl, { maxRetriesPerRequest: 1 });
});

afterAll(async () => {
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length > 0) await redis.del(...keys);
  redis.disconnect();
});

const backends: [string, () => Harness][] = [
  [
    'Redis',
    () => {
      const cache = new RedisApqCache(redis, LIMITS, prefix, clock);
      return {
        cache,
        usage: async (caller) => {
          const [, expiries, bytes] = cache.keysOf(caller);
          return { entries: await redis.zcard(expiries), bytes: Number((await redis.get(bytes)) ?? 0) };
        },
      };
    },
  ],
  [
    'memory',
    () => {
      const cache = new MemoryApqCache(LIMITS, clock);
      return { cache, usage: async (caller) => cache.usage(caller) };
    },
  ],
];

/** A valid document of exactly `bytes` bytes once stripped (`{a:__typename}` plus padding in the alias). */
function documentOf(bytes: number, label = randomBytes(3).toString('hex')): string {
  const alias = `a${label}`.padEnd(bytes - '{:__typename}'.length, 'x');
  const document = `{${alias}:__typename}`;
  expect(Buffer.byteLength(document)).toBe(bytes);
  return document;
}

describe.each(backends)('%s store', (_name, makeHarness) => {
  let harness: Harness;
  let caller: string;
  const key = (entry: string, who = caller) => callerKey(who, `apq:${entry}`);

  beforeEach(() => {
    harness = makeHarness();
    caller = `t:${randomBytes(4).toString('hex')}:user:1`;
  });

  it('stores the document without comments and insignificant whitespace, and serves that', async () => {
    const sent = `# a comment that is longer than the cap ${'#'.repeat(5_000)}\nquery   Plates {\n  vehicles( first: 5 ) {\n    totalCount # trailing\n  }\n}\n`;
    await harness.cache.set(key('plates'), sent);
    expect(await harness.cache.get(key('plates'))).toBe('query Plates{vehicles(first:5){totalCount}}');
    expect(await harness.usage(caller)).toEqual({ entries: 1, bytes: 'query Plates{vehicles(first:5){totalCount}}'.length });
  });

  it('does not store a document still over maxDocumentBytes once stripped, nor text that does not lex', async () => {
    await harness.cache.set(key('big'), documentOf(201));
    // Apollo registers only documents that parsed; a store handed anything else keeps nothing.
    await harness.cache.set(key('text'), '{ a(b: "unterminated) }');
    await harness.cache.set(key('fits'), documentOf(200));
    expect(await harness.cache.get(key('big'))).toBeUndefined();
    expect(await harness.cache.get(key('text'))).toBeUndefined();
    expect(await harness.cache.get(key('fits'))).toEqual(expect.any(String));
    expect(await harness.usage(caller)).toEqual({ entries: 1, bytes: 200 });
  });

  it('keeps each caller within its entry budget: the oldest entry makes room; other callers untouched', async () => {
    const other = `t:${randomBytes(4).toString('hex')}:key:2`;
    await harness.cache.set(key('o1', other), documentOf(20));
    for (const entry of ['e1', 'e2', 'e3']) {
      await harness.cache.set(key(entry), documentOf(20));
      now += 1_000;
    }
    // Reading the oldest does not save it: eviction goes by age, not by use.
    expect(await harness.cache.get(key('e1'))).toEqual(expect.any(String));
    await harness.cache.set(key('e4'), documentOf(20));
    expect(await harness.cache.get(key('e1'))).toBeUndefined();
    for (const entry of ['e2', 'e3', 'e4']) expect(await harness.cache.get(key(entry))).toEqual(expect.any(String));
    expect(await harness.usage(caller)).toEqual({ entries: 3, bytes: 60 });
    expect(await harness.cache.get(key('o1', other))).toEqual(expect.any(String));
    expect(await harness.usage(other)).toEqual({ entries: 1, bytes: 20 });
  });

  it('keeps each caller within its byte budget, evicting as many old entries as the new one needs', async () => {
    await harness.cache.set(key('b1'), documentOf(150));
    now += 1_000;
    await harness.cache.set(key('b2'), documentOf(150));
    now += 1_000;
    await harness.cache.set(key('b3'), documentOf(50));
    expect(await harness.usage(caller)).toEqual({ entries: 3, bytes: 350 });
    // 350 + 200 > 400: b1 alone (150 freed, 400 after) is enough.
    await harness.cache.set(key('b4'), documentOf(200));
    expect(await harness.cache.get(key('b1'))).toBeUndefined();
    expect(await harness.usage(caller)).toEqual({ entries: 3, bytes: 400 });
    // A single document over the caller's whole budget is not stored, and evicts nothing.
    const tight = makeHarnessWith({ ...LIMITS, maxDocumentBytes: 1_000, maxBytesPerCaller: 400 });
    await tight.cache.set(key('small'), documentOf(100));
    await tight.cache.set(key('huge'), documentOf(401));
    expect(await tight.cache.get(key('huge'))).toBeUndefined();
    expect(await tight.cache.get(key('small'))).toEqual(expect.any(String));
  });

  it('counts the same entry once when it is written again', async () => {
    await harness.cache.set(key('same'), documentOf(40));
    await harness.cache.set(key('same'), documentOf(60));
    expect(await harness.usage(caller)).toEqual({ entries: 1, bytes: 60 });
    expect(Buffer.byteLength((await harness.cache.get(key('same'))) ?? '')).toBe(60);
  });

  it('expires entries after their TTL; the next write gives their room back, and live entries stay', async () => {
    await harness.cache.set(key('old1'), documentOf(100));
    await harness.cache.set(key('old2'), documentOf(100));
    now += (TTL_SECONDS - 60) * 1_000;
    await harness.cache.set(key('live'), documentOf(100));
    now += 61 * 1_000;
    // old1 and old2 expired a second ago; live has a minute left.
    expect(await harness.cache.get(key('old1'))).toBeUndefined();
    expect(await harness.cache.get(key('live'))).toEqual(expect.any(String));
    // The next write gives the expired entries' room back: they no longer count.
    await harness.cache.set(key('new1'), documentOf(100));
    expect(await harness.usage(caller)).toEqual({ entries: 2, bytes: 200 });
    await harness.cache.set(key('new2'), documentOf(100));
    expect(await harness.cache.get(key('live'))).toEqual(expect.any(String));
    expect(await harness.usage(caller)).toEqual({ entries: 3, bytes: 300 });
    // And a TTL Apollo passes is honoured.
    await harness.cache.set(key('short'), documentOf(50), { ttl: 5 });
    now += 6_000;
    expect(await harness.cache.get(key('short'))).toBeUndefined();
  });

  it('deletes an entry and its accounting', async () => {
    await harness.cache.set(key('d1'), documentOf(30));
    await harness.cache.set(key('d2'), documentOf(70));
    expect(await harness.cache.delete(key('d1'))).toBe(true);
    expect(await harness.cache.delete(key('d1'))).toBe(false);
    expect(await harness.cache.get(key('d1'))).toBeUndefined();
    expect(await harness.usage(caller)).toEqual({ entries: 1, bytes: 70 });
  });

  it('ignores keys that name no caller', async () => {
    await harness.cache.set('apq:no-caller', documentOf(20));
    expect(await harness.cache.get('apq:no-caller')).toBeUndefined();
  });

  function makeHarnessWith(limits: ApqLimits): Harness {
    return _name === 'Redis'
      ? { cache: new RedisApqCache(redis, limits, `${prefix}tight:`, clock), usage: async () => ({ entries: -1, bytes: -1 }) }
      : { cache: new MemoryApqCache(limits, clock), usage: async () => ({ entries: -1, bytes: -1 }) };
  }
});

describe('memory store', () => {
  it('bounds all callers together, LRUs and documents: the least recently active caller goes first', async () => {
    // Room for three callers holding 100 bytes each.
    const cache = new MemoryApqCache(LIMITS, clock, 3 * (memoryCallerOverhead(LIMITS.maxEntriesPerCaller) + 100));
    const callers = ['c1', 'c2', 'c3', 'c4'].map((name) => `t:${randomBytes(4).toString('hex')}:user:${name}`);
    for (const caller of callers.slice(0, 3)) await cache.set(callerKey(caller, 'apq:x'), documentOf(100));
    // c1 is read, so c2 is now the least recently active.
    expect(await cache.get(callerKey(callers[0] as string, 'apq:x'))).toEqual(expect.any(String));
    await cache.set(callerKey(callers[3] as string, 'apq:x'), documentOf(100));
    const held = await Promise.all(callers.map(async (caller) => (await cache.get(callerKey(caller, 'apq:x'))) !== undefined));
    expect(held).toEqual([true, false, true, true]);
  });
});

describe('Redis store', () => {
  it("keeps one caller's keys in one hash slot (Redis Cluster), and an idle caller's keys expire with its newest entry", async () => {
    const cache = new RedisApqCache(redis, LIMITS, prefix, clock);
    const caller = `t:${randomBytes(4).toString('hex')}:user:9`;
    const keys = cache.keysOf(caller);
    const slots = await Promise.all(keys.map((key) => redis.call('CLUSTER', 'KEYSLOT', key).catch(() => null)));
    // CLUSTER KEYSLOT answers on a standalone Redis too (7.0); the hash tag decides the slot.
    expect(new Set(slots).size).toBe(1);
    expect(keys.every((key) => key.includes(`{${caller}}`))).toBe(true);

    await cache.set(callerKey(caller, 'apq:x'), documentOf(20));
    for (const key of keys) {
      const ttl = await redis.pttl(key);
      expect(ttl).toBeGreaterThan((TTL_SECONDS - 5) * 1_000);
      expect(ttl).toBeLessThanOrEqual(TTL_SECONDS * 1_000);
    }
  });

  it('degrades to "not found" and stores nothing, without throwing, when Redis is unreachable', async () => {
    // A real client to a port nobody listens on: every command fails at once.
    const dead = new Redis({ host: '127.0.0.1', port: 1, lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0, retryStrategy: () => null });
    try {
      const cache = new RedisApqCache(dead, LIMITS, prefix, clock);
      const key = callerKey('t:dead:user:1', 'apq:x');
      await expect(cache.set(key, documentOf(20))).resolves.toBeUndefined();
      await expect(cache.get(key)).resolves.toBeUndefined();
      await expect(cache.delete(key)).resolves.toBe(false);
    } finally {
      dead.disconnect();
    }
  });
});
