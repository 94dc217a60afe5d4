import { randomBytes } from 'node:crypto';
import { print } from 'graphql';
import Redis from 'ioredis';
import pg from 'pg';
import { MAX_BUCKET_SECONDS, RedisTokenBuckets, type BucketLimits, type TakeResult } from '../../src/rate-limiting/token-buckets';
import { readTestServices } from '../support/services';
import { bearer, codesOf, eventually, postJson, sleep, type RawResponse } from '../support/raw-graphql';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy';
import { errorCode, expectErrors, startTestServer, uniqueSlug, type TenantFixture, type TestServer } from '../support/test-server';
import { graphql } from '../generated';
import type { RateLimitBucketInput, RateLimitsPingQuery, SetLimitMutation } from '../generated/graphql';

/*
 * Request budgets over real HTTP, with the real Redis: tenant and per-caller token buckets
 * (RateLimit-* headers, 429 + Retry-After), overrides, two instances sharing one budget, the
 * Redis failure policies (Redis taken away through a TCP proxy; the machine's Redis is never
 * touched), the login limits declared in the SDL, and the in-memory fallback without Redis.
 *
 * Plans are far too generous to exhaust in a test, so every case first shrinks its tenant's
 * budget with setTenantRateLimit (small capacities, slow refills: fast and robust on a loaded
 * machine).
 */

/** Posted with fetch (the headers matter here), as the text of a typed document. */
/** The cheapest operation there is: it costs one point, so each hit spends exactly one. */
const PING = graphql(`query RateLimitsPing { __typename }`);
const LOGIN = graphql(`mutation RateLimitsLogin($input: LoginInput!) { login(input: $input) { accessToken } }`);
const CREATE_TENANT = graphql(`mutation RateLimitsCreateTenant($input: CreateTenantInput!) { createTenant(input: $input) { tenant { id } } }`);
const SET_LIMIT = graphql(`mutation SetLimit($id: ID!, $limit: TenantRateLimitInput) {
  setTenantRateLimit(id: $id, limit: $limit) {
    tenant { rateLimit { tenant { capacity refillPerSecond } perCaller { capacity refillPerSecond } overridden } }
  }
}`);
const TENANT_LIMIT = graphql(`query TenantLimit($slug: String!) {
  tenant(slug: $slug) { rateLimit { tenant { capacity refillPerSecond } perCaller { capacity refillPerSecond } overridden } }
}`);

type Bucket = RateLimitBucketInput;
type TenantRateLimit = SetLimitMutation['setTenantRateLimit']['tenant']['rateLimit'];

function limitedEnv(extra: Record<string, string> = {}): Record<string, string> {
  return { REDIS_URL: readTestServices().redisUrl, RATE_LIMIT_ENABLED: 'true', ...extra };
}

async function setLimit(app: TestServer, tenantId: string, tenant: Bucket | null, perCaller: Bucket | null = tenant): Promise<TenantRateLimit> {
  const admin = await app.admin();
  const result = await admin.request(SET_LIMIT, {
    id: tenantId,
    limit: tenant && perCaller ? { tenant, perCaller } : null,
  });
  return result.setTenantRateLimit.tenant.rateLimit;
}

async function tenantLimit(app: TestServer, slug: string): Promise<TenantRateLimit> {
  const admin = await app.admin();
  const result = await admin.request(TENANT_LIMIT, { slug });
  if (!result.tenant) throw new Error(`no tenant ${slug}`);
  return result.tenant.rateLimit;
}

/** One request of cost 1 as this caller (a JWT, or headers such as X-Api-Key). */
function hit(app: TestServer, caller: string | Record<string, string>): Promise<RawResponse> {
  return postJson(app.url, { query: print(PING) }, typeof caller === 'string' ? bearer(caller) : caller);
}

async function hitSequentially(app: TestServer, caller: string | Record<string, string>, count: number): Promise<RawResponse[]> {
  const responses: RawResponse[] = [];
  for (let i = 0; i < count; i += 1) responses.push(await hit(app, caller));
  return responses;
}

const statuses = (responses: RawResponse[]) => responses.map((response) => response.status);
const header = (response: RawResponse, name: string) => response.headers.get(name);

/** A 429 in every detail: code, retryAfter, Retry-After and RateLimit-* headers. */
function expectRateLimited(response: RawResponse, limit: number): void {
  expect(response.status).toBe(429);
  expect(response.body.data ?? null).toBeNull();
  const error = response.body.errors?.[0];
  expect(response.body.errors).toHaveLength(1);
  expect(error?.extensions?.code).toBe('RATE_LIMITED');
  const retryAfter = error?.extensions?.retryAfter;
  expect(typeof retryAfter).toBe('number');
  expect(retryAfter as number).toBeGreaterThan(0);
  expect(Number.isInteger(retryAfter)).toBe(true);
  expect(header(response, 'retry-after')).toBe(String(retryAfter));
  expect(header(response, 'ratelimit-limit')).toBe(String(limit));
  expect(header(response, 'ratelimit-remaining')).toBe('0');
  expect(Number(header(response, 'ratelimit-reset'))).toBeGreaterThan(0);
}

function expectAdmitted(response: RawResponse, limit?: number): void {
  expect(response.status).toBe(200);
  expect(response.body.errors).toBeUndefined();
  expect((response.body.data as RateLimitsPingQuery | undefined)?.__typename).toBe('Query');
  if (limit !== undefined) expect(header(response, 'ratelimit-limit')).toBe(String(limit));
  expect(Number(header(response, 'ratelimit-remaining'))).toBeGreaterThanOrEqual(0);
  expect(Number(header(response, 'ratelimit-reset'))).toBeGreaterThanOrEqual(0);
  expect(header(response, 'retry-after')).toBeNull();
}

/** The test Redis, reached through a proxy on `proxy.port` (same scheme, credentials and db). */
function proxiedRedisUrl(proxy: TcpProxy): string {
  const url = new URL(readTestServices().redisUrl);
  url.hostname = '127.0.0.1';
  url.port = String(proxy.port);
  return url.toString();
}

function redisTarget(): { host: string; port: number } {
  const url = new URL(readTestServices().redisUrl);
  return { host: url.hostname, port: Number(url.port || 6379) };
}

let app: TestServer;

beforeAll(async () => {
  app = await startTestServer({ env: limitedEnv() });
});

afterAll(async () => {
  await app?.close();
});

describe('tenant and per-caller token buckets (Redis)', () => {
  it('keeps its buckets in Redis', () => {
    expect(app.server.rateLimitStore).toBe('redis');
  });

  it('answers a noisy tenant driven at 10x its rate with 429s while a neighbour at its normal rate is always admitted', async () => {
    const noisy = await app.createTenant(uniqueSlug('noisy'));
    const calm = await app.createTenant(uniqueSlug('calm'));
    // The same small budget for both: if they shared a bucket, the calm tenant would be refused.
    const budget = { capacity: 5, refillPerSecond: 2 };
    await setLimit(app, noisy.id, budget);
    await setLimit(app, calm.id, budget);

    const started = performance.now();
    const noisyRequests: Promise<RawResponse>[] = [];
    const calmRequests: Promise<RawResponse>[] = [];
    await Promise.all([
      (async () => {
        // 20 requests per second, ten times the sustained 2/s, without waiting for answers.
        for (let i = 0; i < 60; i += 1) {
          noisyRequests.push(hit(app, noisy.ownerToken));
          await sleep(50);
        }
      })(),
      (async () => {
        // 2 per second: exactly the sustained rate.
        for (let i = 0; i < 7; i += 1) {
          calmRequests.push(hit(app, calm.ownerToken));
          await sleep(500);
        }
      })(),
    ]);
    const noisyResponses = await Promise.all(noisyRequests);
    const calmResponses = await Promise.all(calmRequests);
    const elapsedSeconds = (performance.now() - started) / 1000;

    const admitted = noisyResponses.filter((response) => response.status === 200);
    const refused = noisyResponses.filter((response) => response.status !== 200);
    // The burst, plus what refilled while the test ran (and one for timing at the edges).
    expect(admitted.length).toBeGreaterThanOrEqual(budget.capacity);
    expect(admitted.length).toBeLessThanOrEqual(budget.capacity + Math.ceil(elapsedSeconds * budget.refillPerSecond) + 1);
    expect(refused.length).toBeGreaterThanOrEqual(60 - (budget.capacity + Math.ceil(elapsedSeconds * budget.refillPerSecond) + 1));
    for (const response of admitted) expectAdmitted(response, budget.capacity);
    for (const response of refused) expectRateLimited(response, budget.capacity);

    expect(statuses(calmResponses)).toEqual(calmResponses.map(() => 200));
    for (const response of calmResponses) expectAdmitted(response, budget.capacity);
  });

  it('sends RateLimit-Limit, a decreasing RateLimit-Remaining and a growing RateLimit-Reset', async () => {
    const tenant = await app.createTenant(uniqueSlug('headers'));
    await setLimit(app, tenant.id, { capacity: 10, refillPerSecond: 0.1 });
    const responses = await hitSequentially(app, tenant.ownerToken, 6);
    for (const response of responses) expectAdmitted(response, 10);
    expect(responses.map((response) => Number(header(response, 'ratelimit-remaining')))).toEqual([9, 8, 7, 6, 5, 4]);
    const resets = responses.map((response) => Number(header(response, 'ratelimit-reset')));
    expect(resets[0]).toBeGreaterThan(0);
    for (let i = 1; i < resets.length; i += 1) expect(resets[i]).toBeGreaterThan(resets[i - 1] as number);
  });

  it('admits again once the bucket has refilled, at the refill rate rather than a new burst', async () => {
    const tenant = await app.createTenant(uniqueSlug('refill'));
    // One token every 2 s.
    await setLimit(app, tenant.id, { capacity: 3, refillPerSecond: 0.5 });
    const burst = await Promise.all(Array.from({ length: 8 }, () => hit(app, tenant.ownerToken)));
    const admitted = burst.filter((response) => response.status === 200).length;
    expect(admitted).toBeGreaterThanOrEqual(3);
    expect(admitted).toBeLessThanOrEqual(4);
    const refused = burst.filter((response) => response.status === 429);
    expect(refused.length).toBe(8 - admitted);
    for (const response of refused) expectRateLimited(response, 3);

    const rightAway = await hit(app, tenant.ownerToken);
    expectRateLimited(rightAway, 3);
    const retryAfter = Number(header(rightAway, 'retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(2);

    // Wait what the server said (~1/rate), plus a margin.
    await sleep(retryAfter * 1000 + 500);
    expectAdmitted(await hit(app, tenant.ownerToken), 3);
    // One token came back, not the burst.
    expectRateLimited(await hit(app, tenant.ownerToken), 3);
  });

  it('applies a platform admin override on the very next request, and null restores the plan', async () => {
    const tenant = await app.createTenant(uniqueSlug('override'), 'STANDARD');
    expect(await tenantLimit(app, tenant.slug)).toEqual({
      tenant: { capacity: 100_000, refillPerSecond: 2_000 },
      perCaller: { capacity: 50_000, refillPerSecond: 1_000 },
      overridden: false,
    });
    // STANDARD: the caller bucket (50,000 points) is the tighter one.
    expectAdmitted(await hit(app, tenant.ownerToken), 50_000);

    const override = { capacity: 3, refillPerSecond: 0.2 };
    expect(await setLimit(app, tenant.id, override)).toEqual({ tenant: override, perCaller: override, overridden: true });
    expect(await tenantLimit(app, tenant.slug)).toEqual({ tenant: override, perCaller: override, overridden: true });
    const underOverride = await hitSequentially(app, tenant.ownerToken, 4);
    expect(statuses(underOverride)).toEqual([200, 200, 200, 429]);
    expect(underOverride.slice(0, 3).map((response) => header(response, 'ratelimit-remaining'))).toEqual(['2', '1', '0']);
    expectRateLimited(underOverride[3] as RawResponse, 3);
    // One token per 5 s under the override.
    expect(Number(header(underOverride[3] as RawResponse, 'retry-after'))).toBeGreaterThanOrEqual(4);

    expect(await setLimit(app, tenant.id, null)).toEqual({
      tenant: { capacity: 100_000, refillPerSecond: 2_000 },
      perCaller: { capacity: 50_000, refillPerSecond: 1_000 },
      overridden: false,
    });
    expect((await tenantLimit(app, tenant.slug)).overridden).toBe(false);
    // The plan's rates apply at once: the emptied buckets regain 1,000 (caller) and 2,000
    // (tenant) points a second instead of 0.2, so half a second later requests pass again.
    await sleep(500);
    const restored = await hit(app, tenant.ownerToken);
    expectAdmitted(restored, 50_000);
  });

  it('rejects an invalid override with BAD_USER_INPUT and refuses overrides to tenant members', async () => {
    const tenant = await app.createTenant(uniqueSlug('badlimit'));
    const admin = await app.admin();
    const bad = await expectErrors(
      admin.request(SET_LIMIT, {
        id: tenant.id,
        limit: { tenant: { capacity: 0, refillPerSecond: 1 }, perCaller: { capacity: 1, refillPerSecond: 1 } },
      }),
    );
    expect(bad.errors.map((error) => error.extensions.code)).toEqual(['BAD_USER_INPUT']);
    expect(
      await errorCode(
        tenant.owner.request(SET_LIMIT, {
          id: tenant.id,
          limit: { tenant: { capacity: 100000, refillPerSecond: 1000 }, perCaller: { capacity: 100000, refillPerSecond: 1000 } },
        }),
      ),
    ).toBe('FORBIDDEN');
    expect((await tenantLimit(app, tenant.slug)).overridden).toBe(false);
  });

  it('refuses buckets out of bounds (under one token a day, over 1000000 a second, capacity over 1000000) on their field', async () => {
    const tenant = await app.createTenant(uniqueSlug('bounds'));
    const admin = await app.admin();
    const sane = { capacity: 2, refillPerSecond: 1 };
    const cases: [string, Bucket, Bucket, string][] = [
      ['refill 1e-15', sane, { capacity: 2, refillPerSecond: 1e-15 }, 'limit.perCaller.refillPerSecond'],
      ['refill 1e-20', sane, { capacity: 2, refillPerSecond: 1e-20 }, 'limit.perCaller.refillPerSecond'],
      ['refill 5e-324', sane, { capacity: 2, refillPerSecond: 5e-324 }, 'limit.perCaller.refillPerSecond'],
      ['refill 1e-12', { capacity: 2, refillPerSecond: 1e-12 }, sane, 'limit.tenant.refillPerSecond'],
      ['just under one a day', { capacity: 2, refillPerSecond: 0.99 / 86_400 }, sane, 'limit.tenant.refillPerSecond'],
      ['refill over 1000000', sane, { capacity: 2, refillPerSecond: 1_000_001 }, 'limit.perCaller.refillPerSecond'],
      ['refill 0', { capacity: 2, refillPerSecond: 0 }, sane, 'limit.tenant.refillPerSecond'],
      ['capacity over 1000000', { capacity: 1_000_001, refillPerSecond: 1 }, sane, 'limit.tenant.capacity'],
    ];
    for (const [name, tenantBucket, perCaller, field] of cases) {
      const { errors } = await expectErrors(admin.request(SET_LIMIT, { id: tenant.id, limit: { tenant: tenantBucket, perCaller } }));
      expect({ name, errors: errors.map((error) => error.extensions) }).toEqual({
        name,
        errors: [expect.objectContaining({ code: 'BAD_USER_INPUT', field })],
      });
    }
    expect((await tenantLimit(app, tenant.slug)).overridden).toBe(false);
    // The bounds themselves are accepted.
    const slowest = { capacity: 1_000_000, refillPerSecond: 1 / 86_400 };
    expect(await setLimit(app, tenant.id, slowest)).toEqual({ tenant: slowest, perCaller: slowest, overridden: true });
  });

  it('still limits a tenant whose stored override predates the bounds, with a finite Retry-After', async () => {
    const tenant = await app.createTenant(uniqueSlug('stale'));
    await setLimit(app, tenant.id, { capacity: 2, refillPerSecond: 1 });
    // As setTenantRateLimit stored it before it checked bounds.
    const db = new pg.Client({ connectionString: app.databaseUrl });
    await db.connect();
    try {
      await db.query('UPDATE platform."Tenant" SET "principalRateLimitRefillPerSecond" = 1e-15 WHERE id = $1', [tenant.id]);
    } finally {
      await db.end();
    }
    await eventually(async () => ((await tenantLimit(app, tenant.slug)).perCaller.refillPerSecond !== 1 ? true : undefined), 5_000, 50);
    expect((await tenantLimit(app, tenant.slug)).perCaller).toEqual({ capacity: 2, refillPerSecond: 1 / 86_400 });

    const responses = await hitSequentially(app, tenant.ownerToken, 3);
    expect(statuses(responses)).toEqual([200, 200, 429]);
    expectRateLimited(responses[2] as RawResponse, 2);
    expect(Number(header(responses[2] as RawResponse, 'retry-after'))).toBeLessThanOrEqual(86_400);
  });

  it('gives every caller its own bucket inside the tenant bucket', async () => {
    const tenant = await app.createTenant(uniqueSlug('callers'));
    const memberEmail = `member@${tenant.slug}.test`;
    await tenant.owner.request(graphql(`mutation RateLimitsAddMember($input: AddMemberInput!) { addMember(input: $input) { member { id } } }`), {
      input: { email: memberEmail, name: 'Second caller', password: 'member-password-1', role: 'MEMBER' },
    });
    const memberToken = await app.login(tenant.slug, memberEmail, 'member-password-1');
    const key = await tenant.owner.request(
      graphql(`mutation RateLimitsCreateApiKey($input: CreateApiKeyInput!) { createApiKey(input: $input) { secret } }`),
      { input: { name: 'third caller', role: 'VIEWER' } },
    );
    const apiKey = { 'x-api-key': key.createApiKey.secret };

    // Tenant bucket 5, each caller 3; refills too slow to matter during the test.
    await setLimit(app, tenant.id, { capacity: 5, refillPerSecond: 0.02 }, { capacity: 3, refillPerSecond: 0.02 });

    const owner = await hitSequentially(app, tenant.ownerToken, 4);
    expect(statuses(owner)).toEqual([200, 200, 200, 429]);
    for (const response of owner.slice(0, 3)) expectAdmitted(response, 3);
    expectRateLimited(owner[3] as RawResponse, 3);

    // The owner's bucket is empty, the tenant's is not: other callers are still admitted.
    expectAdmitted(await hit(app, memberToken));
    expectAdmitted(await hit(app, apiKey));
    // Now the tenant bucket (5) is spent, whoever asks.
    const member = await hit(app, memberToken);
    expectRateLimited(member, 5);
    expectRateLimited(await hit(app, apiKey), 5);
  });

  it('enforces one budget across two instances sharing Redis and the platform database', async () => {
    const second = await startTestServer({ databaseUrl: app.databaseUrl, env: limitedEnv() });
    try {
      expect(second.server.installationId).toBe(app.server.installationId);
      expect(second.server.rateLimitStore).toBe('redis');
      const tenant = await app.createTenant(uniqueSlug('shared'));
      // Warm the second instance's tenant cache with the plan's limits first.
      expectAdmitted(await hit(second, tenant.ownerToken), 50_000);

      const budget = { capacity: 10, refillPerSecond: 0.02 };
      await setLimit(app, tenant.id, budget);
      // The second instance learns of the change by notification (no restart, no TTL).
      await eventually(async () => ((await tenantLimit(second, tenant.slug)).tenant.capacity === 10 ? true : undefined), 5_000, 50);

      const responses = await Promise.all(Array.from({ length: 40 }, (_, i) => hit(i % 2 === 0 ? app : second, tenant.ownerToken)));
      const admitted = responses.filter((response) => response.status === 200);
      // One budget: about its capacity in total (the warm-up request came before the override
      // shrank the bucket, which starts full). Two budgets would admit about 20.
      expect(admitted.length).toBeGreaterThanOrEqual(budget.capacity);
      expect(admitted.length).toBeLessThanOrEqual(budget.capacity + 1);
      for (const response of admitted) expectAdmitted(response, budget.capacity);
      for (const response of responses.filter((r) => r.status !== 200)) expectRateLimited(response, budget.capacity);
      // Both instances took part: each answered 20, some of them refusals.
      expect(responses.filter((response, i) => i % 2 === 1 && response.status === 429).length).toBeGreaterThan(0);
      expect(responses.filter((response, i) => i % 2 === 0 && response.status === 429).length).toBeGreaterThan(0);
    } finally {
      await second.close();
    }
  });
});

describe('budgets spend what operations cost (the @cost of the SDL), not one token per request', () => {
  // `vehicles(first: 5) { totalCount }`: (1 + totalCount's 10) × first = 55 points.
  const FIFTY_FIVE = '{ vehicles(first: 5) { totalCount } }';

  it('an operation spends its cost; one that costs more than is left is refused 429 and runs nothing, a cheap one still runs', async () => {
    const tenant = await app.createTenant(uniqueSlug('cost'));
    await setLimit(app, tenant.id, { capacity: 120, refillPerSecond: 0.001 });
    const first = await hit(app, tenant.ownerToken);
    expectAdmitted(first, 120);
    expect(header(first, 'ratelimit-remaining')).toBe('119');

    const priced = await postJson(app.url, { query: FIFTY_FIVE }, bearer(tenant.ownerToken));
    expect(priced.status).toBe(200);
    expect(priced.body.errors).toBeUndefined();
    expect(header(priced, 'ratelimit-remaining')).toBe('64');
    expect(header(await postJson(app.url, { query: FIFTY_FIVE }, bearer(tenant.ownerToken)), 'ratelimit-remaining')).toBe('9');

    // 9 left. An operation never priced before: the guard's point is taken (8 left), and once
    // priced, the other 54 are not there.
    const refused = await postJson(app.url, { query: `{ again: ${FIFTY_FIVE.slice(2)}` }, bearer(tenant.ownerToken));
    expect({ status: refused.status, codes: codesOf(refused), data: refused.body.data ?? null }).toEqual({ status: 429, codes: ['RATE_LIMITED'], data: null });
    const retryAfter = refused.body.errors?.[0]?.extensions?.retryAfter as number;
    // 46 points missing at one per 1,000 s.
    expect(retryAfter).toBeGreaterThan(40_000);
    expect(header(refused, 'retry-after')).toBe(String(retryAfter));
    expect([header(refused, 'ratelimit-limit'), header(refused, 'ratelimit-remaining')]).toEqual(['120', '8']);
    // The operation priced before: the guard asks for all 55 points at once, is refused, and
    // nothing is spent. Refused before Apollo saw it, it is still counted in the metrics.
    const refusalsCounted = async () => {
      const text = await (await fetch(app.url.replace(/\/graphql$/, '/metrics'))).text();
      const line = text.split('\n').find((row) => row.startsWith('fleet_graphql_operation_duration_seconds_count{operation="refused",outcome="RATE_LIMITED"}'));
      return Number(line?.split(' ')[1] ?? 0);
    };
    const countedBefore = await refusalsCounted();
    const known = await postJson(app.url, { query: FIFTY_FIVE }, bearer(tenant.ownerToken));
    expect({ status: known.status, codes: codesOf(known), data: known.body.data ?? null }).toEqual({ status: 429, codes: ['RATE_LIMITED'], data: null });
    expect([header(known, 'ratelimit-limit'), header(known, 'ratelimit-remaining')]).toEqual(['120', '8']);
    expect((await refusalsCounted()) - countedBefore).toBe(1);
    // What is left still serves operations that fit.
    const cheap = await hit(app, tenant.ownerToken);
    expectAdmitted(cheap, 120);
    expect(header(cheap, 'ratelimit-remaining')).toBe('7');
  });

  it("another caller's price is not charged: a persisted-only key refused the text someone else ran spends one point", async () => {
    const a = await app.createTenant(uniqueSlug('price-a'));
    const b = await app.createTenant(uniqueSlug('price-b'));
    await setLimit(app, b.id, { capacity: 1000, refillPerSecond: 0.001 });
    const query = `query Priced_${randomBytes(3).toString('hex')} { vehicles(first: 20) { totalCount edges { node { plate } } } }`;
    expect((await postJson(app.url, { query }, bearer(a.ownerToken))).status).toBe(200); // priced, for A's owner
    const created = await postJson(
      app.url,
      { query: 'mutation Key($input: CreateApiKeyInput!) { createApiKey(input: $input) { secret } }', variables: { input: { name: 'partner', role: 'VIEWER', persistedOnly: true } } },
      bearer(b.ownerToken),
    );
    const secret = (created.body.data as { createApiKey: { secret: string } }).createApiKey.secret;
    const remaining: number[] = [];
    for (let i = 0; i < 3; i += 1) {
      const refused = await postJson(app.url, { query }, { 'x-api-key': secret });
      expect({ status: refused.status, codes: codesOf(refused) }).toEqual({ status: 403, codes: ['PERSISTED_QUERY_REQUIRED'] });
      remaining.push(Number(header(refused, 'ratelimit-remaining')));
    }
    expect([remaining[0]! - remaining[1]!, remaining[1]! - remaining[2]!]).toEqual([1, 1]);
  });

  it('an operation priced before spends its whole cost in one round trip to Redis; a new one takes two', async () => {
    const tenant = await app.createTenant(uniqueSlug('trips'));
    await setLimit(app, tenant.id, { capacity: 1000, refillPerSecond: 0.001 });
    const takes = async () => {
      const response = await fetch(app.url.replace(/\/graphql$/, '/metrics'));
      const line = (await response.text()).split('\n').find((row) => row.startsWith('fleet_rate_limit_takes_total '));
      if (!line) throw new Error('fleet_rate_limit_takes_total missing from /metrics');
      return Number(line.split(' ')[1]);
    };
    const roundTrips = async (query: string, variables: Record<string, unknown> = {}) => {
      const before = await takes();
      const response = await postJson(app.url, { query, variables }, bearer(tenant.ownerToken));
      expect({ status: response.status, errors: response.body.errors }).toEqual({ status: 200, errors: undefined });
      return { trips: (await takes()) - before, remaining: Number(header(response, 'ratelimit-remaining')) };
    };
    const query = 'query Trips($first: Int) { vehicles(first: $first) { totalCount } }';
    const first = await roundTrips(query, { first: 5 });
    const again = await roundTrips(query, { first: 5 });
    const otherVariables = await roundTrips(query, { first: 6 });
    expect([first.trips, again.trips, otherVariables.trips]).toEqual([2, 1, 2]);
    // Either way the operation spent its cost, 55 points (66 with first: 6).
    expect([first.remaining - again.remaining, again.remaining - otherVariables.remaining]).toEqual([55, 66]);
  });
});

describe('signed-out requests spend a budget of their client address', () => {
  let server: TestServer;
  let tenant: TenantFixture;
  const BUDGET = 6;

  beforeAll(async () => {
    server = await startTestServer({
      env: limitedEnv({ TRUST_PROXY: 'loopback', SIGNED_OUT_RATE_LIMIT_CAPACITY: String(BUDGET), SIGNED_OUT_RATE_LIMIT_REFILL_PER_SECOND: '0.001' }),
    });
    tenant = await server.createTenant(uniqueSlug('signedout'));
  });

  afterAll(async () => {
    await server?.close();
  });

  const from = (address: string, headers: Record<string, string> = {}) => ({ 'x-forwarded-for': address, ...headers });

  it('every signed-out request spends, valid or not, with a bad credential or none, until its address is refused 429', async () => {
    const address = '198.51.100.21';
    const answers = [
      await postJson(server.url, { query: '{ __typename }' }, from(address)),
      await postJson(server.url, { query: '{ nope }' }, from(address)),
      await postJson(server.url, { query: `{ ${'me{id} '.repeat(50)}}` }, from(address)),
      await postJson(server.url, { query: '{ __typename }' }, from(address, { authorization: 'Bearer not-a-token' })),
      await postJson(server.url, { query: '{ __typename }' }, from(address, { 'x-api-key': 'fgk_unknown_key' })),
      await postJson(server.url, { query: '{ __typename }' }, from(address)),
    ];
    expect(answers.map((answer) => [answer.status, codesOf(answer)[0] ?? 'ok'])).toEqual([
      [200, 'ok'],
      [400, 'GRAPHQL_VALIDATION_FAILED'],
      [400, 'TOO_MANY_SELECTIONS'],
      [401, 'UNAUTHENTICATED'],
      [401, 'UNAUTHENTICATED'],
      [200, 'ok'],
    ]);
    expect(answers.map((answer) => header(answer, 'ratelimit-remaining'))).toEqual(['5', '4', '3', '2', '1', '0']);
    for (const refused of [
      await postJson(server.url, { query: '{ __typename }' }, from(address)),
      await postJson(server.url, { query: '{ __typename }' }, from(address, { authorization: 'Bearer not-a-token' })),
      await postJson(server.url, { query: `{ ${'me{id} '.repeat(50)}}` }, from(address)),
    ]) {
      expect(refused.status).toBe(429);
      expect(codesOf(refused)).toEqual(['RATE_LIMITED']);
      expect(Number(header(refused, 'retry-after'))).toBeGreaterThan(0);
    }
    // Another address, and a signed-in caller from the same one, are served.
    expect((await postJson(server.url, { query: '{ __typename }' }, from('198.51.100.22'))).status).toBe(200);
    expectAdmitted(await postJson(server.url, { query: print(PING) }, from(address, bearer(tenant.ownerToken))));
  });

  it('a signed-out operation spends its cost too', async () => {
    const address = '198.51.100.23';
    // login costs 2 (the field and accessToken): the guard's point, then one more once priced.
    const signIn = await postJson(
      server.url,
      { query: 'mutation($input: LoginInput!) { login(input: $input) { accessToken } }', variables: { input: { tenant: tenant.slug, email: tenant.ownerEmail, password: tenant.ownerPassword } } },
      from(address),
    );
    expect(signIn.status).toBe(200);
    expect(header(signIn, 'ratelimit-remaining')).toBe(String(BUDGET - 2));
  });

  it('a credential that names another tenant, and a body that is not JSON, spend the address budget too (by size)', async () => {
    const address = '198.51.100.25';
    const other = await server.createTenant(uniqueSlug('elsewhere'));
    const wrongTenant = await postJson(server.url, { query: '{ __typename }' }, from(address, { ...bearer(tenant.ownerToken), 'x-tenant': other.slug }));
    expect({ status: wrongTenant.status, codes: codesOf(wrongTenant), remaining: header(wrongTenant, 'ratelimit-remaining') }).toEqual({
      status: 403,
      codes: ['FORBIDDEN'],
      remaining: String(BUDGET - 1),
    });
    const malformed = await postJson(server.url, `{"query": "${'x'.repeat(2_500)}",}`, from(address));
    expect({ status: malformed.status, codes: codesOf(malformed), remaining: header(malformed, 'ratelimit-remaining') }).toEqual({
      status: 400,
      codes: ['BAD_REQUEST'],
      remaining: String(BUDGET - 1 - 3),
    });
  });

  it('a long document spends a point per KB of its text before anything reads it, comments included', async () => {
    const address = '198.51.100.24';
    const padded = `# ${'x'.repeat(3_000)}\n{ __typename }`;
    expect(Math.ceil(padded.length / 1024)).toBe(3);
    const answer = await postJson(server.url, { query: padded }, from(address));
    expect(answer.body).toEqual({ data: { __typename: 'Query' } });
    expect(header(answer, 'ratelimit-remaining')).toBe(String(BUDGET - 3));
  });
});

describe('the Redis token-bucket script, given limits outside the bounds', () => {
  let redis: Redis;
  const prefix = `rl-test:{${randomBytes(4).toString('hex')}}`;

  beforeAll(() => {
    redis = new Redis(readTestServices().redisUrl, { maxRetriesPerRequest: 1 });
  });

  afterAll(async () => {
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
  });

  // Checked at the API, but the script must not fail on them either: a failing script counts as
  // "store unavailable", and the default policy then lets every request through.
  it.each([1e-12, 1e-15, 1e-20, 5e-324, 0])('still limits at refillPerSecond %p, with a bounded expiry and Retry-After', async (rate) => {
    const store = new RedisTokenBuckets(redis);
    const keys: [string, string] = [`${prefix}:tenant:${rate}`, `${prefix}:caller:${rate}`];
    const limits: [BucketLimits, BucketLimits] = [
      { capacity: 100, refillPerSecond: 1 },
      { capacity: 2, refillPerSecond: rate },
    ];
    const results = [];
    for (let i = 0; i < 3; i += 1) results.push(await store.take(keys, limits, 1));
    expect(results.map((result) => result.allowed)).toEqual([true, true, false]);
    const refused = results[2] as TakeResult;
    expect(Number.isFinite(refused.retryAfterSeconds)).toBe(true);
    expect(refused.retryAfterSeconds).toBeGreaterThan(0);
    expect(refused.retryAfterSeconds).toBeLessThanOrEqual(MAX_BUCKET_SECONDS);
    const ttl = await redis.pttl(keys[1]);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(MAX_BUCKET_SECONDS * 1000);
  });
});

describe('when Redis goes away (a proxy in front of the real Redis)', () => {
  async function limitedTenant(server: TestServer, budget: Bucket): Promise<TenantFixture> {
    const tenant = await server.createTenant(uniqueSlug('redisdown'));
    await setLimit(server, tenant.id, budget);
    return tenant;
  }

  async function readiness(server: TestServer): Promise<{ status: number; body: unknown }> {
    const response = await fetch(server.url.replace(/\/graphql$/, '/readyz'));
    return { status: response.status, body: await response.json() };
  }

  /**
   * startServer listens before its Redis connection is ready; /readyz says when it is (a load
   * balancer would wait for it too). Until then the failure policy applies.
   */
  async function untilReady(server: TestServer): Promise<void> {
    await eventually(async () => ((await readiness(server)).status === 200 ? true : undefined), 10_000, 50);
  }

  describe('with the default policy (open)', () => {
    let proxy: TcpProxy;
    let server: TestServer;

    beforeAll(async () => {
      proxy = await startTcpProxy(redisTarget());
      server = await startTestServer({ env: limitedEnv({ REDIS_URL: proxiedRedisUrl(proxy) }) });
      await untilReady(server);
    });

    afterAll(async () => {
      await server?.close();
      await proxy?.close();
    });

    it('serves requests unlimited and fast while Redis is down, and limits again by itself once it is back', async () => {
      expect(server.server.rateLimitStore).toBe('redis');
      const tenant = await limitedTenant(server, { capacity: 3, refillPerSecond: 0.05 });
      expect(statuses(await hitSequentially(server, tenant.ownerToken, 4))).toEqual([200, 200, 200, 429]);

      await proxy.stop();
      try {
        // About two seconds down: several reconnect attempts fail (refused) in the meantime.
        const during: RawResponse[] = [];
        for (let i = 0; i < 8; i += 1) {
          during.push(await hit(server, tenant.ownerToken));
          await sleep(250);
        }
        for (const response of during) {
          expect(response.status).toBe(200);
          expect(response.body.errors).toBeUndefined();
          expect(response.ms).toBeLessThan(1_000);
          // Nothing could be counted: the headers say so (nothing known to be left; look again in a second).
          expect([header(response, 'ratelimit-limit'), header(response, 'ratelimit-remaining'), header(response, 'ratelimit-reset')]).toEqual(['3', '0', '1']);
        }
        // Signed-out fields with SDL limits (login) are served too.
        expect(await server.login(tenant.slug, tenant.ownerEmail, tenant.ownerPassword)).toEqual(expect.any(String));
        expect(await readiness(server)).toEqual({ status: 503, body: { status: 'not ready', checks: { postgres: 'ok', redis: 'unavailable' } } });
      } finally {
        await proxy.start();
      }

      // No restart: the connection comes back by itself and the (still empty) bucket applies.
      const limited = await eventually(async () => {
        const response = await hit(server, tenant.ownerToken);
        expect(response.status === 200 || response.status === 429).toBe(true);
        return response.status === 429 ? response : undefined;
      }, 15_000);
      expectRateLimited(limited, 3);
      expect((await readiness(server)).status).toBe(200);
    });

    it('answers within the command timeout while Redis hangs, and limits again when it answers', async () => {
      const tenant = await limitedTenant(server, { capacity: 2, refillPerSecond: 0.05 });
      expect(statuses(await hitSequentially(server, tenant.ownerToken, 3))).toEqual([200, 200, 429]);

      proxy.hang();
      try {
        const during = await hitSequentially(server, tenant.ownerToken, 4);
        for (const response of during) {
          expect(response.status).toBe(200);
          expect(response.ms).toBeLessThan(1_000);
        }
      } finally {
        proxy.resume();
      }
      const limited = await eventually(async () => {
        const response = await hit(server, tenant.ownerToken);
        return response.status === 429 ? response : undefined;
      }, 15_000);
      expectRateLimited(limited, 2);
    });
  });

  describe('with RATE_LIMIT_REDIS_FAILURE=closed', () => {
    let proxy: TcpProxy;
    let server: TestServer;

    beforeAll(async () => {
      proxy = await startTcpProxy(redisTarget());
      server = await startTestServer({ env: limitedEnv({ REDIS_URL: proxiedRedisUrl(proxy), RATE_LIMIT_REDIS_FAILURE: 'closed' }) });
      await untilReady(server);
    });

    afterAll(async () => {
      await server?.close();
      await proxy?.close();
    });

    function expectUnavailable(response: RawResponse): void {
      expect(response.status).toBe(503);
      expect(header(response, 'retry-after')).toBe('1');
      expect(response.body.errors?.map((error) => error.extensions?.code)).toEqual(['SERVICE_UNAVAILABLE']);
      expect(response.body.errors?.[0]?.extensions?.retryAfter).toBe(1);
      expect(response.ms).toBeLessThan(1_000);
    }

    it('refuses requests quickly with SERVICE_UNAVAILABLE (503) while Redis is down, and serves again once it is back', async () => {
      const tenant = await limitedTenant(server, { capacity: 100, refillPerSecond: 10 });
      expectAdmitted(await hit(server, tenant.ownerToken), 100);

      await proxy.stop();
      try {
        for (const response of await hitSequentially(server, tenant.ownerToken, 4)) expectUnavailable(response);
        // The SDL's login limits cannot be checked either: refused, not unlimited.
        const login = await postJson(server.url, {
          query: print(LOGIN),
          variables: { input: { tenant: tenant.slug, email: tenant.ownerEmail, password: tenant.ownerPassword } },
        });
        expectUnavailable(login);
        // A platform admin has no request budget, so only createTenant's own limit meets the
        // outage, once the operation runs; nothing of it can be served, so it is a refusal of the
        // whole request all the same: 503 and Retry-After, not 200.
        const created = await postJson(
          server.url,
          { query: print(CREATE_TENANT), variables: { input: { slug: uniqueSlug('closed'), name: 'Closed', plan: 'FREE', owner: { email: 'o@closed.test', name: 'O', password: 'a-long-password' } } } },
          bearer(await server.adminToken()),
        );
        expectUnavailable(created);
        expect(created.body.data).toBeNull();
        expect(created.body.errors?.[0]?.path).toEqual(['createTenant']);
      } finally {
        await proxy.start();
      }

      const served = await eventually(async () => {
        const response = await hit(server, tenant.ownerToken);
        if (response.status !== 200) expectUnavailable(response);
        return response.status === 200 ? response : undefined;
      }, 15_000);
      expectAdmitted(served, 100);
    });

    it('refuses quickly while Redis hangs and serves once it answers', async () => {
      const tenant = await limitedTenant(server, { capacity: 100, refillPerSecond: 10 });
      expectAdmitted(await hit(server, tenant.ownerToken));
      proxy.hang();
      try {
        for (const response of await hitSequentially(server, tenant.ownerToken, 3)) expectUnavailable(response);
      } finally {
        proxy.resume();
      }
      expectAdmitted(await eventually(async () => {
        const response = await hit(server, tenant.ownerToken);
        return response.status === 200 ? response : undefined;
      }, 15_000));
    });
  });
});

describe('login limits declared in the SDL (@rateLimit 20/min per IP; failures per email per hour: 10 from one address, 100 in all)', () => {
  // Behind a trusted proxy (loopback), the client address comes from X-Forwarded-For, which
  // lets one test act as many clients.
  let server: TestServer;
  let tenant: TenantFixture;
  // Added by the owner, never signed in: no login has counted for these emails yet.
  const targetEmail = 'target@login-limits.test';
  const besiegedEmail = 'besieged@login-limits.test';
  const ipv6Email = 'ipv6@login-limits.test';
  const targetPassword = 'target-password-1';

  beforeAll(async () => {
    server = await startTestServer({ env: limitedEnv({ TRUST_PROXY: 'loopback' }) });
    tenant = await server.createTenant(uniqueSlug('logins'));
    for (const email of [targetEmail, besiegedEmail, ipv6Email]) {
      await tenant.owner.request(graphql(`mutation RateLimitsAddMember($input: AddMemberInput!) { addMember(input: $input) { member { id } } }`), {
        input: { email, name: 'Target', password: targetPassword, role: 'MEMBER' },
      });
    }
  });

  afterAll(async () => {
    await server?.close();
  });

  const login = (ip: string, email: string, password: string) =>
    server.client({ 'x-forwarded-for': ip }).request(LOGIN, {
      input: { tenant: tenant.slug, email, password },
    });

  it('counts only failures: successes never add up, and 10 failures from one address lock out that address only, for that email only', async () => {
    // More successful sign-ins than either limit, from one address: none of them counts.
    for (let i = 1; i <= 12; i += 1) {
      expect((await login('198.51.100.1', targetEmail, targetPassword)).login.accessToken).toEqual(expect.any(String));
    }
    const attacker = '198.51.100.66';
    for (let i = 1; i <= 9; i += 1) expect(await errorCode(login(attacker, targetEmail, 'wrong-password'))).toBe('UNAUTHENTICATED');
    // A success between failures neither counts nor wipes the failures before it.
    expect((await login(attacker, targetEmail, targetPassword)).login.accessToken).toEqual(expect.any(String));
    expect(await errorCode(login(attacker, targetEmail, 'wrong-password'))).toBe('UNAUTHENTICATED');

    const eleventh = await expectErrors(login(attacker, targetEmail, targetPassword));
    expect(eleventh.errors.map((error) => error.extensions.code)).toEqual(['RATE_LIMITED']);
    expect(eleventh.status).toBe(200); // the operation ran; its one field was refused
    expect(eleventh.errors[0]?.message).toMatch(/failed login attempts for this email from your address/);
    expect(eleventh.errors[0]?.extensions.retryAfter as number).toBeGreaterThan(300);
    expect(eleventh.errors[0]?.extensions.retryAfter as number).toBeLessThanOrEqual(3600);
    // The same address in another spelling is the same email.
    expect(await errorCode(login(attacker, `  ${targetEmail.toUpperCase()} `, targetPassword))).toBe('RATE_LIMITED');

    // The person themselves, from their own address, is not locked out by someone else's failures.
    expect((await login('198.51.100.1', targetEmail, targetPassword)).login.accessToken).toEqual(expect.any(String));
    // Other emails are not affected, from the very address that was refused.
    expect((await login(attacker, tenant.ownerEmail, tenant.ownerPassword)).login.accessToken).toEqual(expect.any(String));
  });

  it('counts an IPv6 client by its /64: hopping addresses inside one network does not get past the per-address limit', async () => {
    for (let i = 1; i <= 10; i += 1) expect(await errorCode(login(`2001:db8:a:b::${i}`, ipv6Email, 'wrong-password'))).toBe('UNAUTHENTICATED');
    const hopped = await expectErrors(login('2001:db8:a:b:ffff::1', ipv6Email, targetPassword));
    expect(hopped.errors[0]?.message).toMatch(/from your address/);
    // Another network is another client.
    expect((await login('2001:db8:a:c::1', ipv6Email, targetPassword)).login.accessToken).toEqual(expect.any(String));
  });

  it('counts only refused credentials: sign-ins refused because the tenant is suspended cost the email nothing', async () => {
    const paused = await server.createTenant(uniqueSlug('paused'));
    const admin = await server.admin();
    await admin.request(graphql(`mutation RateLimitsSuspend($id: ID!) { suspendTenant(id: $id) { tenant { status } } }`), { id: paused.id });
    const attempt = () => server.client({ 'x-forwarded-for': '198.51.100.77' }).request(LOGIN, { input: { tenant: paused.slug, email: paused.ownerEmail, password: paused.ownerPassword } });
    for (let i = 1; i <= 12; i += 1) expect(await errorCode(attempt())).toBe('TENANT_SUSPENDED');
    await admin.request(graphql(`mutation RateLimitsReactivate($id: ID!) { reactivateTenant(id: $id) { tenant { status } } }`), { id: paused.id });
    expect((await attempt()).login.accessToken).toEqual(expect.any(String));
  });

  it('after 100 failures within the hour from any number of addresses, the email is refused everywhere, even the right password', async () => {
    // 10 addresses × 10 failures: each address reaches its own limit exactly as the email reaches its cap.
    for (let address = 1; address <= 10; address += 1) {
      for (let attempt = 1; attempt <= 10; attempt += 1) {
        expect(await errorCode(login(`198.18.1.${address}`, besiegedEmail, `guess-${attempt}`))).toBe('UNAUTHENTICATED');
      }
    }
    const refused = await expectErrors(login('198.18.2.1', besiegedEmail, targetPassword));
    expect(refused.errors.map((error) => error.extensions.code)).toEqual(['RATE_LIMITED']);
    expect(refused.errors[0]?.message).toMatch(/failed login attempts for this email:/);
    expect(refused.errors[0]?.extensions.retryAfter as number).toBeLessThanOrEqual(3600);
    // Refusing it cost that fresh address nothing: it is refused by the email's cap, not its own.
    for (let i = 1; i <= 11; i += 1) expect(await errorCode(login('198.18.2.1', besiegedEmail, targetPassword))).toBe('RATE_LIMITED');
    const again = await expectErrors(login('198.18.2.1', besiegedEmail, targetPassword));
    expect(again.errors[0]?.message).not.toMatch(/from your address/);
    // Other emails are not affected.
    expect((await login('198.18.1.1', tenant.ownerEmail, tenant.ownerPassword)).login.accessToken).toEqual(expect.any(String));
  });

  it('refuses the 21st login from one address within a minute, whatever the emails, and serves other addresses', async () => {
    const ip = '203.0.113.50';
    for (let i = 1; i <= 20; i += 1) {
      expect(await errorCode(login(ip, `stranger-${i}@nowhere.test`, 'wrong-password'))).toBe('UNAUTHENTICATED');
    }
    const refused = await expectErrors(login(ip, tenant.ownerEmail, tenant.ownerPassword));
    expect(refused.errors.map((error) => error.extensions.code)).toEqual(['RATE_LIMITED']);
    expect(refused.status).toBe(200); // a field's own limit: the operation ran
    expect(refused.errors[0]?.message).toMatch(/login calls/);
    expect(refused.errors[0]?.extensions.retryAfter as number).toBeGreaterThan(0);
    expect(refused.errors[0]?.extensions.retryAfter as number).toBeLessThanOrEqual(60);
    // Refused before the password was looked at, these are no failures of the email: past its
    // per-address count of 10 they are still refused for the address's login calls, not for it.
    for (let i = 1; i <= 11; i += 1) {
      expect((await expectErrors(login(ip, tenant.ownerEmail, 'wrong-password'))).errors[0]?.message).toMatch(/login calls/);
    }

    const elsewhere = await login('203.0.113.51', tenant.ownerEmail, tenant.ownerPassword);
    expect(elsewhere.login.accessToken).toEqual(expect.any(String));
  });

  it('counts login calls per address even when they carry a credential: no API key or session is a fresh budget', async () => {
    const ip = '203.0.113.70';
    const key = (await tenant.owner.request(graphql(`mutation RateLimitsLoginKey { createApiKey(input: { name: "sprayer", role: VIEWER }) { secret } }`)))
      .createApiKey.secret;
    const carrying: Record<string, string>[] = [{}, { authorization: `Bearer ${tenant.ownerToken}` }, { 'x-api-key': key }];
    for (let i = 1; i <= 20; i += 1) {
      const client = server.client({ 'x-forwarded-for': ip, ...carrying[i % carrying.length] });
      const attempt = client.request(LOGIN, { input: { tenant: tenant.slug, email: `spray-${i}@nowhere.test`, password: 'wrong-password' } });
      expect(await errorCode(attempt)).toBe('UNAUTHENTICATED');
    }
    for (const headers of carrying) {
      const refused = await expectErrors(server.client({ 'x-forwarded-for': ip, ...headers }).request(LOGIN, { input: { tenant: tenant.slug, email: 'one-more@nowhere.test', password: 'wrong-password' } }));
      expect(refused.errors[0]?.extensions.code).toBe('RATE_LIMITED');
    }
  });
});

describe('without REDIS_URL', () => {
  let server: TestServer;
  let limited: TenantFixture;
  let logins: TenantFixture;

  beforeAll(async () => {
    server = await startTestServer({ env: { RATE_LIMIT_ENABLED: 'true' } });
    // Each createTenant signs its owner in once, from 127.0.0.1: two logins so far.
    limited = await server.createTenant(uniqueSlug('memory'));
    logins = await server.createTenant(uniqueSlug('memlogin'));
  });

  afterAll(async () => {
    await server?.close();
  });

  it('reports the memory store and still limits tenants and callers', async () => {
    expect(server.server.rateLimitStore).toBe('memory');
    await setLimit(server, limited.id, { capacity: 3, refillPerSecond: 0.05 });
    const responses = await hitSequentially(server, limited.ownerToken, 4);
    expect(statuses(responses)).toEqual([200, 200, 200, 429]);
    for (const response of responses.slice(0, 3)) expectAdmitted(response, 3);
    expectRateLimited(responses[3] as RawResponse, 3);
  });

  it('still limits logins per address, and ignores X-Forwarded-For without TRUST_PROXY', async () => {
    const loginsSoFar = 2;
    for (let i = loginsSoFar + 1; i <= 20; i += 1) {
      const spoofed = server.client({ 'x-forwarded-for': `192.0.2.${i}` });
      expect(
        await errorCode(spoofed.request(LOGIN, { input: { tenant: logins.slug, email: `stranger-${i}@nowhere.test`, password: 'nope' } })),
      ).toBe('UNAUTHENTICATED');
    }
    const refused = await expectErrors(
      server
        .client({ 'x-forwarded-for': '192.0.2.99' })
        .request(LOGIN, { input: { tenant: logins.slug, email: logins.ownerEmail, password: logins.ownerPassword } }),
    );
    expect(refused.errors.map((error) => error.extensions.code)).toEqual(['RATE_LIMITED']);
    expect(refused.status).toBe(200); // a field's own limit: the operation ran
    expect(refused.errors[0]?.message).toMatch(/login calls/);
  });
});

describe('without REDIS_URL, failed logins per email', () => {
  let server: TestServer;
  let tenant: TenantFixture;
  const email = 'memory-target@login-limits.test';
  const password = 'memory-target-password';

  beforeAll(async () => {
    server = await startTestServer({ env: { RATE_LIMIT_ENABLED: 'true', TRUST_PROXY: 'loopback' } });
    tenant = await server.createTenant(uniqueSlug('mememail'));
    await tenant.owner.request(graphql(`mutation RateLimitsMemoryAddMember($input: AddMemberInput!) { addMember(input: $input) { member { id } } }`), {
      input: { email, name: 'Memory Target', password, role: 'MEMBER' },
    });
  });

  afterAll(async () => {
    await server?.close();
  });

  const login = (ip: string, attempt: string) =>
    server.client({ 'x-forwarded-for': ip }).request(LOGIN, { input: { tenant: tenant.slug, email, password: attempt } });

  it('count the same way in memory: successes give their points back; 10 failures lock out one address, 100 every address', async () => {
    expect(server.server.rateLimitStore).toBe('memory');
    for (let i = 1; i <= 12; i += 1) expect((await login('192.0.2.1', password)).login.accessToken).toEqual(expect.any(String));
    for (let i = 1; i <= 10; i += 1) expect(await errorCode(login('198.18.0.1', 'wrong-password'))).toBe('UNAUTHENTICATED');
    expect(await errorCode(login('198.18.0.1', password))).toBe('RATE_LIMITED');
    expect((await login('192.0.2.1', password)).login.accessToken).toEqual(expect.any(String));
    for (let address = 2; address <= 10; address += 1) {
      for (let attempt = 1; attempt <= 10; attempt += 1) expect(await errorCode(login(`198.18.0.${address}`, 'wrong-password'))).toBe('UNAUTHENTICATED');
    }
    const refused = await expectErrors(login('192.0.2.1', password));
    expect(refused.errors.map((error) => error.extensions.code)).toEqual(['RATE_LIMITED']);
    expect(refused.status).toBe(200); // a field's own limit: the operation ran
  });
});
