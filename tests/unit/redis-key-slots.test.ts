import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import calculateSlot from 'cluster-key-slot';
import Redis from 'ioredis';
import { RedisApqCache } from '../../src/persisted-queries/redis-apq-cache';
import { addressBucketKey, tenantBucketKeys } from '../../src/rate-limiting/request-rate-limiter';

/*
 * On a Redis Cluster a script may only touch keys of one hash slot (else CROSSSLOT). Every
 * script's keys are built here by the code that builds them for real, for a spread of tenants
 * and callers, and must land on one slot; the scripts defined in src/ must all be listed.
 * (Field limits run rate-limiter-flexible's own script, which takes one key per call.)
 */

const tenants = ['8f14e45f-ceea-467f-a0e6-1b2c3d4e5f60', 'c9f0f895-fb98-4b91-9f42-aaaaaaaaaaaa', 't', '{odd}', 'a}b{c'];
const callers = ['user:0d1f5a3c-0000-4000-8000-000000000001', 'key:7', 'user:{x}'];

const APQ_LIMITS = { ttlSeconds: 60, maxDocumentBytes: 1_000, maxEntriesPerCaller: 10, maxBytesPerCaller: 10_000 };

const keysPerScript: Record<string, () => string[][]> = {
  fleetTakeTokens: () => [
    ...tenants.flatMap((tenant) => callers.map((caller) => tenantBucketKeys(tenant, caller))),
    ...['203.0.113.9', '2001:db8::/64', '{weird}'].map((address) => [addressBucketKey('fleet:inst-1', address)]),
  ],
  ...Object.fromEntries(
    ['fleetApqGet', 'fleetApqSet', 'fleetApqDelete'].map((script) => [
      script,
      () => {
        const cache = new RedisApqCache(lazyRedis, APQ_LIMITS, 'fleet:inst-1:');
        const apqCallers = [...tenants.flatMap((tenant) => callers.map((caller) => `t:${tenant}:${caller}`)), 'admin:42', 'ip:203.0.113.9'];
        // GET touches the first two keys, SET and DELETE all three.
        return apqCallers.map((caller) => cache.keysOf(caller).slice(0, script === 'fleetApqGet' ? 2 : 3));
      },
    ]),
  ),
};

let lazyRedis: Redis;
beforeAll(() => {
  // Never connects: only defineCommand is used.
  lazyRedis = new Redis({ lazyConnect: true });
});
afterAll(() => lazyRedis.disconnect());

describe('Redis keys a script touches together share one cluster slot', () => {
  it.each(Object.keys(keysPerScript))('%s', (script) => {
    const keySets = keysPerScript[script]!();
    expect(keySets.length).toBeGreaterThan(0);
    for (const keys of keySets) {
      const slots = new Set(keys.map((key) => calculateSlot(key)));
      expect({ keys, slots: [...slots] }).toEqual({ keys, slots: [calculateSlot(keys[0]!)] });
    }
  });

  it('different tenants spread over the slots (their buckets are not all on one node)', () => {
    const slots = new Set(tenants.map((tenant) => calculateSlot(tenantBucketKeys(tenant, 'key:1')[0])));
    expect(slots.size).toBeGreaterThan(1);
  });

  it('every script defined in src/ is listed above', () => {
    const defined = new Set<string>();
    const walk = (dir: string): void => {
      for (const entry of readdirSync(dir, { withFileTypes: true })) {
        const file = path.join(dir, entry.name);
        if (entry.isDirectory()) {
          if (entry.name !== 'generated') walk(file);
        } else if (file.endsWith('.ts')) {
          for (const match of readFileSync(file, 'utf8').matchAll(/defineCommand\(\s*'(\w+)'/g)) defined.add(match[1]!);
        }
      }
    };
    walk(path.resolve(__dirname, '../../src'));
    expect([...defined].sort()).toEqual(Object.keys(keysPerScript).sort());
  });
});
