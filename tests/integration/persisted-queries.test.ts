import { createHash, randomBytes } from 'node:crypto';
import { stripIgnoredCharacters } from 'graphql';
import Redis from 'ioredis';
import { GraphQLClient } from '../support/graphql-request';
import { bearer, codesOf, getGraphQL, postJson, send, type RawResponse } from '../support/raw-graphql';
import { readTestServices } from '../support/services';
import { startTcpProxy } from '../support/tcp-proxy';
import { errorCode, expectErrors, startTestServer, uniqueSlug, type TenantFixture, type TestServer, NO_BACKGROUND_JOBS } from '../support/test-server';
import { graphql } from '../generated';
import type { CreateApiKeyInput, PersistedOperationInput, RegisterMutation } from '../generated/graphql';

/*
 * Persisted queries over HTTP: Apollo's automatic persisted queries (APQ) with the cache in
 * Redis, shared by two instances; and the safelist of registered operations that a partner's
 * persistedOnly key is held to (by tenant, or globally by a platform admin).
 */

const REGISTER = graphql(`mutation Register($operations: [PersistedOperationInput!]!) {
  registerPersistedOperations(operations: $operations) { operations { id sha256 operationName scope createdAt } }
}`);
const REGISTER_PLATFORM = graphql(`mutation RegisterPlatform($tenantId: ID, $operations: [PersistedOperationInput!]!) {
  registerPlatformPersistedOperations(tenantId: $tenantId, operations: $operations) { operations { id sha256 operationName scope } }
}`);
const PERSISTED_OPERATIONS = graphql(`query PersistedList { persistedOperations { id sha256 operationName scope } }`);
const CREATE_API_KEY = graphql(`mutation PersistedCreateKey($input: CreateApiKeyInput!) { createApiKey(input: $input) { secret apiKey { id persistedOnly } } }`);
const CREATE_VEHICLE = graphql(`mutation PersistedCreateVehicle($input: CreateVehicleInput!) { createVehicle(input: $input) { vehicle { id } } }`);

type RegisteredOperation = RegisterMutation['registerPersistedOperations']['operations'][number];

const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');
const persisted = (sha256Hash: string) => ({ persistedQuery: { version: 1, sha256Hash } });

function redisTarget(): { host: string; port: number } {
  const url = new URL(readTestServices().redisUrl);
  return { host: url.hostname, port: Number(url.port || 6379) };
}

/** The test Redis, reached through a proxy on `proxy.port` (same scheme, credentials and db). */
function proxiedRedisUrl(proxy: { port: number }): string {
  const url = new URL(readTestServices().redisUrl);
  url.hostname = '127.0.0.1';
  url.port = String(proxy.port);
  return url.toString();
}

let app: TestServer;
let second: TestServer;
let A: TenantFixture;
let B: TenantFixture;
/** persistedOnly keys of A and B, and an ordinary key of A. */
let aPartner: string;
let bPartner: string;
let aOrdinary: string;

async function createKey(tenant: TenantFixture, input: CreateApiKeyInput): Promise<string> {
  const result = await tenant.owner.request(CREATE_API_KEY, { input });
  expect(result.createApiKey.apiKey.persistedOnly).toBe(Boolean(input.persistedOnly));
  return result.createApiKey.secret;
}

async function register(client: GraphQLClient, operations: PersistedOperationInput[]): Promise<RegisteredOperation[]> {
  const result = await client.request(REGISTER, { operations });
  return result.registerPersistedOperations.operations;
}

/** The partner's request: a hash (and variables), never a query. */
function runByHash(key: string, sha256Hash: string, variables?: Record<string, unknown>, server: TestServer = app): Promise<RawResponse> {
  return postJson(server.url, { extensions: persisted(sha256Hash), ...(variables ? { variables } : {}) }, { 'x-api-key': key });
}

function plates(response: RawResponse): string[] {
  const vehicles = response.body.data?.vehicles as { edges: { node: { plate: string } }[] } | undefined;
  return (vehicles?.edges ?? []).map((edge) => edge.node.plate).sort();
}

async function seedVehicles(tenant: TenantFixture, label: string): Promise<void> {
  for (const [i, status] of [[1, 'ACTIVE'], [2, 'MAINTENANCE']] as const) {
    await tenant.owner.request(CREATE_VEHICLE, { input: { plate: `${label}-${i}`, make: label, model: 'M', year: 2020, status } });
  }
}

/** The test Redis, read directly: where the APQ entries must end up. */
let redis: Redis;

/**
 * The APQ entries of a hash, by the Redis key of the caller's entries: `fleet:<installation id>:`
 * (the server's prefix), the caller's scope as a hash tag (`{t:<tenant id>:user:<id>}` or
 * `{t:<tenant id>:key:<id>}`), then `:apq`, a hash whose fields are Apollo's keys (`apq:<hash>`).
 */
async function apqEntries(hash: string): Promise<Record<string, string>> {
  const keys = await redis.keys(`fleet:${app.server.installationId}:{*}:apq`);
  const entries: Record<string, string> = {};
  for (const key of keys) {
    const value = await redis.hget(key, `apq:${hash}`);
    if (value !== null) entries[key] = value;
  }
  return entries;
}

beforeAll(async () => {
  const env = { REDIS_URL: readTestServices().redisUrl, ...NO_BACKGROUND_JOBS };
  app = await startTestServer({ env });
  second = await startTestServer({ databaseUrl: app.databaseUrl, env });
  redis = new Redis(readTestServices().redisUrl, { maxRetriesPerRequest: 1 });
  A = await app.createTenant(uniqueSlug('pq-a'), 'ENTERPRISE');
  B = await app.createTenant(uniqueSlug('pq-b'), 'ENTERPRISE');
  await seedVehicles(A, 'ALPHA');
  await seedVehicles(B, 'BRAVO');
  aPartner = await createKey(A, { name: 'A partner', role: 'VIEWER', persistedOnly: true });
  bPartner = await createKey(B, { name: 'B partner', role: 'VIEWER', persistedOnly: true });
  aOrdinary = await createKey(A, { name: 'A ordinary', role: 'VIEWER' });
});

afterAll(async () => {
  redis?.disconnect();
  await second?.close();
  await app?.close();
});

describe('automatic persisted queries (APQ), cached in Redis', () => {
  it('answers an unknown hash with PERSISTED_QUERY_NOT_FOUND, registers hash+query, then serves the hash alone on both instances', async () => {
    expect(second.server.installationId).toBe(app.server.installationId);
    // Unique per run, so the hash is new to Redis.
    const query = `query Apq_${randomBytes(4).toString('hex')} { vehicles(first: 5) { totalCount edges { node { plate } } } }`;
    const hash = sha256(query);
    const owner = bearer(A.ownerToken);

    const unknown = await postJson(app.url, { extensions: persisted(hash) }, owner);
    expect(codesOf(unknown)).toEqual(['PERSISTED_QUERY_NOT_FOUND']);
    expect(unknown.body.data ?? null).toBeNull();
    expect(unknown.status).toBe(200);
    // Not by GET on the other instance either.
    expect(codesOf(await getGraphQL(second.url, { extensions: persisted(hash) }, owner))).toEqual(['PERSISTED_QUERY_NOT_FOUND']);

    const registered = await postJson(app.url, { query, extensions: persisted(hash) }, owner);
    expect(registered.status).toBe(200);
    expect(registered.body.errors).toBeUndefined();
    expect(plates(registered)).toEqual(['ALPHA-1', 'ALPHA-2']);
    const ownerId = (await A.owner.request(graphql(`query ApqOwnerId { me { id } } `))).me.id;
    // Stored as graphql-js prints it without what is ignored (whitespace here).
    expect(await apqEntries(hash)).toEqual({ [`fleet:${app.server.installationId}:{t:${A.id}:user:${ownerId}}:apq`]: stripIgnoredCharacters(query) });
    expect(stripIgnoredCharacters(query)).not.toBe(query);

    for (const server of [app, second]) {
      const byHash = await postJson(server.url, { extensions: persisted(hash) }, owner);
      expect(byHash.status).toBe(200);
      expect(byHash.body.errors).toBeUndefined();
      expect(plates(byHash)).toEqual(['ALPHA-1', 'ALPHA-2']);
      const viaGet = await getGraphQL(server.url, { extensions: persisted(hash) }, owner);
      expect(viaGet.status).toBe(200);
      expect(plates(viaGet)).toEqual(['ALPHA-1', 'ALPHA-2']);
    }
  });

  it("is each caller's own: a hash someone else registered is not found, and signed-out callers keep nothing", async () => {
    const query = `query ApqOwn_${randomBytes(4).toString('hex')} { vehicles(filter: { search: "ALPHA-1" }) { totalCount } }`;
    const hash = sha256(query);
    expect((await postJson(app.url, { query, extensions: persisted(hash) }, bearer(A.ownerToken))).status).toBe(200);
    // Another tenant, another caller of the same tenant, a signed-out caller: as if never sent,
    // so nobody learns which documents (and literals) anyone else sends.
    for (const headers of [bearer(B.ownerToken), { 'x-api-key': aOrdinary }, {}]) {
      expect(codesOf(await postJson(second.url, { extensions: persisted(hash) }, headers))).toEqual(['PERSISTED_QUERY_NOT_FOUND']);
    }
    // Registering it themselves, B's owner gets B's data.
    const forB = await postJson(app.url, { query, extensions: persisted(hash) }, bearer(B.ownerToken));
    expect(forB.body.data).toEqual({ vehicles: { totalCount: 0 } });
    expect(Object.keys(await apqEntries(hash))).toHaveLength(2);

    const signedOut = `query ApqSignedOut_${randomBytes(4).toString('hex')} { __typename }`;
    const served = await postJson(app.url, { query: signedOut, extensions: persisted(sha256(signedOut)) });
    expect(served.body).toEqual({ data: { __typename: 'Query' } });
    expect(codesOf(await postJson(app.url, { extensions: persisted(sha256(signedOut)) }))).toEqual(['PERSISTED_QUERY_NOT_FOUND']);
    expect(await apqEntries(sha256(signedOut))).toEqual({});
  });

  it('refuses a query whose hash does not match it, and caches nothing for that hash', async () => {
    const query = `query ApqMismatch_${randomBytes(4).toString('hex')} { vehicles(first: 1) { totalCount } }`;
    const wrong = sha256(`${query} `);
    const response = await postJson(app.url, { query, extensions: persisted(wrong) }, bearer(A.ownerToken));
    expect(response.status).toBe(400);
    expect(response.body.errors).toHaveLength(1);
    expect(response.body.data ?? null).toBeNull();
    // Apollo's "provided sha does not match query" carries no code of its own: it is the
    // client's mistake, reported as BAD_REQUEST (status 400 in the body too).
    expect(codesOf(response)).toEqual(['BAD_REQUEST']);
    expect(response.body.errors?.[0]?.extensions?.status).toBe(400);
    expect(await apqEntries(wrong)).toEqual({});
  });
});

describe('what APQ stores for a caller', () => {
  /** Registers `query` (with its hash) for the caller, and checks it ran. */
  async function registerApq(server: TestServer, query: string, headers: Record<string, string>): Promise<RawResponse> {
    const response = await postJson(server.url, { query, extensions: persisted(sha256(query)) }, headers);
    expect(response.status).toBe(200);
    expect(response.body.errors).toBeUndefined();
    return response;
  }

  it('stores a document without its comments: a 195 KB comment costs nothing, and the hash alone still runs it on both instances', async () => {
    const query = `# ${'padding '.repeat(24_375)}\nquery ApqComment_${randomBytes(4).toString('hex')} {\n  vehicles(first: 5) { totalCount }\n}\n`;
    expect(query.length).toBeGreaterThan(195_000);
    const owner = bearer(A.ownerToken);
    await registerApq(app, query, owner);
    const stored = Object.values(await apqEntries(sha256(query)));
    expect(stored).toEqual([stripIgnoredCharacters(query)]);
    expect(stored[0]?.length).toBeLessThan(80);
    for (const server of [app, second]) {
      const byHash = await postJson(server.url, { extensions: persisted(sha256(query)) }, owner);
      expect(byHash.body).toEqual({ data: { vehicles: { totalCount: 2 } } });
    }
  });

  it('runs a document still over APQ_MAX_DOCUMENT_BYTES once stripped, but does not store it', async () => {
    // A 25 KB alias: one token, and significant (a search text that long is refused: 100 characters at most).
    const query = `query ApqHuge_${randomBytes(4).toString('hex')} { ${'z'.repeat(25_000)}: vehicles(first: 1) { totalCount } }`;
    const owner = bearer(A.ownerToken);
    const ran = await registerApq(app, query, owner);
    expect(Object.values(ran.body.data ?? {})).toEqual([{ totalCount: expect.any(Number) }]);
    expect(await apqEntries(sha256(query))).toEqual({});
    expect(codesOf(await postJson(app.url, { extensions: persisted(sha256(query)) }, owner))).toEqual(['PERSISTED_QUERY_NOT_FOUND']);
    // Control: just under the cap (20000 bytes by default), the same shape is stored.
    const fits = `query ApqFits_${randomBytes(4).toString('hex')} { ${'z'.repeat(19_000)}: vehicles(first: 1) { totalCount } }`;
    await registerApq(app, fits, owner);
    expect(Object.keys(await apqEntries(sha256(fits)))).toHaveLength(1);
  });

  describe.each([
    ['in Redis, shared by the instances', true],
    ['in memory, without Redis', false],
  ])('a budget per caller, %s', (_name, withRedis) => {
    let capped: TestServer;

    beforeAll(async () => {
      capped = await startTestServer({
        databaseUrl: app.databaseUrl,
        env: { ...(withRedis ? { REDIS_URL: readTestServices().redisUrl } : {}), APQ_MAX_ENTRIES_PER_CALLER: '3' },
      });
    });

    afterAll(async () => {
      await capped?.close();
    });

    it("keeps a caller's newest entries within APQ_MAX_ENTRIES_PER_CALLER; other callers keep theirs", async () => {
      // Fresh callers: nobody else's entries count against them.
      const key = { 'x-api-key': await createKey(A, { name: `apq budget ${randomBytes(3).toString('hex')}`, role: 'VIEWER' }) };
      const other = { 'x-api-key': await createKey(A, { name: `apq other ${randomBytes(3).toString('hex')}`, role: 'VIEWER' }) };
      const query = (n: number) => `query ApqBudget${n}_${randomBytes(4).toString('hex')} { vehicles(first: ${n}) { totalCount } }`;
      const otherQuery = query(9);
      await registerApq(capped, otherQuery, other);
      const queries = [1, 2, 3, 4].map(query);
      for (const text of queries) await registerApq(capped, text, key);

      const byHash = async (text: string, headers: Record<string, string>) =>
        postJson(capped.url, { extensions: persisted(sha256(text)) }, headers);
      // The oldest made room for the fourth; it runs again once sent in full.
      expect(codesOf(await byHash(queries[0] as string, key))).toEqual(['PERSISTED_QUERY_NOT_FOUND']);
      for (const text of queries.slice(1)) expect((await byHash(text, key)).body).toEqual({ data: { vehicles: { totalCount: 2 } } });
      expect((await byHash(otherQuery, other)).body).toEqual({ data: { vehicles: { totalCount: 2 } } });
      if (withRedis) {
        // Through Redis the other instance (with the default budget) reads the same entries.
        expect(codesOf(await postJson(second.url, { extensions: persisted(sha256(queries[0] as string)) }, key))).toEqual(['PERSISTED_QUERY_NOT_FOUND']);
        expect((await postJson(second.url, { extensions: persisted(sha256(queries[3] as string)) }, key)).body.errors).toBeUndefined();
      }
    });
  });

  it('still runs a query sent in full while Redis is unreachable, and a hash alone is then "not found"', async () => {
    const proxy = await startTcpProxy(redisTarget());
    const server = await startTestServer({ databaseUrl: app.databaseUrl, env: { REDIS_URL: proxiedRedisUrl(proxy) } });
    try {
      const owner = bearer(A.ownerToken);
      const query = `query ApqOutage_${randomBytes(4).toString('hex')} { vehicles(first: 3) { totalCount } }`;
      await proxy.stop();
      const ran = await registerApq(server, query, owner);
      expect(ran.body.data).toEqual({ vehicles: { totalCount: 2 } });
      const byHash = await postJson(server.url, { extensions: persisted(sha256(query)) }, owner);
      expect(codesOf(byHash)).toEqual(['PERSISTED_QUERY_NOT_FOUND']);
      expect(await apqEntries(sha256(query))).toEqual({});
    } finally {
      await server.close();
      await proxy.close();
    }
  });
});

describe('registering operations (safelist)', () => {
  it('registers Apollo manifest entries (id, name, body) for the tenant, idempotently, for its ADMINs and OWNER only', async () => {
    const body = `query RegisteredPlates { vehicles(first: 10) { edges { node { plate } } } }`;
    const first = await register(A.owner, [{ id: sha256(body), name: 'RegisteredPlates', body }]);
    expect(first).toEqual([{ id: expect.any(String), sha256: sha256(body), operationName: 'RegisteredPlates', scope: 'TENANT', createdAt: expect.any(String) }]);
    // Again, and without id: the same row.
    expect(await register(A.owner, [{ body }])).toEqual(first);
    const listed = await A.owner.request(PERSISTED_OPERATIONS);
    expect(listed.persistedOperations.filter((operation) => operation.sha256 === sha256(body))).toHaveLength(1);
    // B does not see A's operation.
    const bListed = await B.owner.request(PERSISTED_OPERATIONS);
    expect(bListed.persistedOperations.map((operation) => operation.sha256)).not.toContain(sha256(body));

    for (const role of ['MANAGER', 'VIEWER'] as const) {
      const email = `${role.toLowerCase()}@${A.slug}.test`;
      await A.owner.request(graphql(`mutation PersistedAddMember($input: AddMemberInput!) { addMember(input: $input) { member { id } } }`), {
        input: { email, name: role, password: 'member-password-1', role },
      });
      const member = app.bearer(await app.login(A.slug, email, 'member-password-1'));
      expect(await errorCode(register(member, [{ body: '{ me { id } }' }]))).toBe('FORBIDDEN');
    }
    expect(await errorCode(A.owner.request(REGISTER_PLATFORM, { tenantId: null, operations: [{ body: '{ me { id } }' }] }))).toBe('FORBIDDEN');
  });

  it('refuses an id that is not the sha256 of the body, and documents that do not parse or validate, registering nothing', async () => {
    const good = `query WouldBeFine_${randomBytes(3).toString('hex')} { vehicles(first: 1) { totalCount } }`;
    const cases: [string, PersistedOperationInput, RegExp][] = [
      ['wrong id', { id: sha256('something else'), name: 'Wrong', body: '{ me { id } }' }, /operations\.1\.id/],
      ['syntax error', { body: '{ vehicles(first: 1) { totalCount ' }, /operations\.1\.body/],
      ['unknown field', { body: '{ vehicles(first: 1) { noSuchField } }' }, /operations\.1\.body/],
      ['missing variable type', { body: 'query Q { vehicle(id: $id) { id } }' }, /operations\.1\.body/],
      // PostgreSQL text cannot hold NUL; the GraphQL lexer allows it in strings and comments.
      ['NUL in the name', { name: 'Plates\u0000', body: '{ me { id } }' }, /^operations\.1\.name$/],
      ['NUL in a string', { body: '{ vehicle(id: "a\u0000b") { id } }' }, /^operations\.1\.body$/],
      ['NUL in a comment', { body: '{ me { id } } # \u0000' }, /^operations\.1\.body$/],
      ['a 201-character name', { name: 'N'.repeat(201), body: '{ me { id } }' }, /^operations\.1\.name$/],
      // Run by hash, a registered document never passes the request guard's token count.
      ['over the token limit', { body: `mutation { migrateTenants(tenantIds: [${'"a" '.repeat(3_000)}]) { durationMs } }` }, /^operations\.1\.body$/],
      ['over 20000 bytes', { body: `{ me { id } } # ${'x'.repeat(20_000)}` }, /^operations\.1\.body$/],
    ];
    for (const [name, bad, field] of cases) {
      const { errors } = await expectErrors(register(A.owner, [{ body: good }, bad]));
      expect({ name, codes: errors.map((error) => error.extensions.code) }).toEqual({ name, codes: ['BAD_USER_INPUT'] });
      expect(String(errors[0]?.extensions.field)).toMatch(field);
    }
    // All or nothing: the valid entry next to each bad one was not registered.
    const listed = await A.owner.request(PERSISTED_OPERATIONS);
    expect(listed.persistedOperations.map((operation) => operation.sha256)).not.toContain(sha256(good));
    expect(await errorCode(register(A.owner, []))).toBe('BAD_USER_INPUT');
  });
});

describe('a persistedOnly key', () => {
  const BY_STATUS = `query VehiclesByStatus($status: VehicleStatus) {
  vehicles(first: 20, filter: { status: $status }) { edges { node { plate status } } }
}`;
  let aOnlyHash: string;
  let bOnlyHash: string;

  beforeAll(async () => {
    aOnlyHash = (await register(A.owner, [{ id: sha256(BY_STATUS), name: 'VehiclesByStatus', body: BY_STATUS }]))[0]?.sha256 as string;
    const bBody = `query BravoOnly { vehicles(first: 3) { totalCount } }`;
    bOnlyHash = (await register(B.owner, [{ body: bBody }]))[0]?.sha256 as string;
  });

  it("runs its tenant's registered operations by hash, by POST and by GET, on its own tenant's data", async () => {
    const all = await runByHash(aPartner, aOnlyHash);
    expect(all.status).toBe(200);
    expect(all.body.errors).toBeUndefined();
    expect(plates(all)).toEqual(['ALPHA-1', 'ALPHA-2']);

    const active = await runByHash(aPartner, aOnlyHash, { status: 'ACTIVE' });
    expect(active.body.data).toEqual({ vehicles: { edges: [{ node: { plate: 'ALPHA-1', status: 'ACTIVE' } }] } });
    // Served from the safelist as a plain query: nothing is written to the APQ cache per request.
    expect(await apqEntries(aOnlyHash)).toEqual({});

    const viaGet = await getGraphQL(app.url, { extensions: persisted(aOnlyHash), variables: { status: 'MAINTENANCE' } }, { 'x-api-key': aPartner });
    expect(viaGet.status).toBe(200);
    expect(viaGet.body.data).toEqual({ vehicles: { edges: [{ node: { plate: 'ALPHA-2', status: 'MAINTENANCE' } }] } });
    // A GET must show it is not a browser form (Apollo's CSRF prevention): without
    // apollo-require-preflight (or a JSON content-type) it is refused before anything runs.
    const search = new URLSearchParams({ extensions: JSON.stringify(persisted(aOnlyHash)) });
    const bare = await send(`${app.url}?${search.toString()}`, { headers: { 'x-api-key': aPartner } });
    expect(bare.status).toBe(400);
    expect(codesOf(bare)).toEqual(['BAD_REQUEST']);
    expect(bare.body.data ?? null).toBeNull();
    // And on the other instance, which never saw the text of the operation.
    expect(plates(await runByHash(aPartner, aOnlyHash, undefined, second))).toEqual(['ALPHA-1', 'ALPHA-2']);
  });

  it("runs a registered operation by GET for its own tenant only: the hash is not shared through the APQ cache", async () => {
    const body = `query GetOnly_${randomBytes(3).toString('hex')}($status: VehicleStatus) { vehicles(first: 5, filter: { status: $status }) { edges { node { plate } } } }`;
    const hash = (await register(A.owner, [{ body }]))[0]?.sha256 as string;
    const byGet = (headers: Record<string, string>, server: TestServer = app, variables: Record<string, unknown> = {}) =>
      getGraphQL(server.url, { extensions: persisted(hash), variables }, headers);

    const viaGet = await byGet({ 'x-api-key': aPartner }, app, { status: 'ACTIVE' });
    expect(viaGet.status).toBe(200);
    expect(plates(viaGet)).toEqual(['ALPHA-1']);
    expect(await apqEntries(hash)).toEqual({});

    // Anyone else who knows (or guesses) the hash learns nothing: the same answer as for a hash
    // never seen, by GET and by POST, on both instances.
    const strangers: [string, Record<string, string>][] = [
      ["tenant B's owner", bearer(B.ownerToken)],
      ['a signed-out caller', {}],
    ];
    for (const [who, headers] of strangers) {
      for (const server of [app, second]) {
        expect({ who, get: codesOf(await byGet(headers, server)) }).toEqual({ who, get: ['PERSISTED_QUERY_NOT_FOUND'] });
        const posted = await postJson(server.url, { extensions: persisted(hash) }, headers);
        expect({ who, post: codesOf(posted) }).toEqual({ who, post: ['PERSISTED_QUERY_NOT_FOUND'] });
        expect(posted.body.data ?? null).toBeNull();
      }
    }
    // Members of A may still run it by hash alone, by GET too.
    expect(plates(await byGet(bearer(A.ownerToken), second, { status: 'MAINTENANCE' }))).toEqual(['ALPHA-2']);
  });

  it('keeps other extensions of a GET for a registered operation', async () => {
    const response = await getGraphQL(
      app.url,
      { extensions: { ...persisted(aOnlyHash), clientLibrary: { name: 'partner-sdk' } }, variables: { status: 'ACTIVE' } },
      { 'x-api-key': aPartner },
    );
    expect(response.status).toBe(200);
    expect(response.body.data).toEqual({ vehicles: { edges: [{ node: { plate: 'ALPHA-1', status: 'ACTIVE' } }] } });
  });

  it('is refused any free-form query with PERSISTED_QUERY_REQUIRED, quickly and without running anything', async () => {
    const expensive = `{ vehicles(first: 100) { totalCount edges { node { plate driver { name } } } } drivers(first: 100) { totalCount } }`;
    // Control: the same query from an ordinary key of the tenant reaches the tenant's schema.
    const sqlBefore = (await app.server.metrics.tenantSqlStatements.get()).values[0]?.value ?? 0;
    expect((await postJson(app.url, { query: expensive }, { 'x-api-key': aOrdinary })).status).toBe(200);
    const sqlAfterControl = (await app.server.metrics.tenantSqlStatements.get()).values[0]?.value ?? 0;
    expect(sqlAfterControl).toBeGreaterThan(sqlBefore);

    const operationsBefore = await operationCount();
    const refusalsBefore = await refusalCount('PERSISTED_QUERY_REQUIRED');
    const attempts: [string, Promise<RawResponse>][] = [
      ['query', postJson(app.url, { query: expensive }, { 'x-api-key': aPartner })],
      ['query + registered hash', postJson(app.url, { query: BY_STATUS, extensions: persisted(aOnlyHash) }, { 'x-api-key': aPartner })],
      ['nothing', postJson(app.url, {}, { 'x-api-key': aPartner })],
      ['GET query', getGraphQL(app.url, { query: expensive }, { 'x-api-key': aPartner })],
      ['as bearer', postJson(app.url, { query: expensive }, bearer(aPartner))],
    ];
    for (const [name, request] of attempts) {
      const response = await request;
      expect({ name, status: response.status, codes: codesOf(response) }).toEqual({ name, status: 403, codes: ['PERSISTED_QUERY_REQUIRED'] });
      expect(response.body.data ?? null).toBeNull();
      expect(response.ms).toBeLessThan(1_000);
    }
    expect((await app.server.metrics.tenantSqlStatements.get()).values[0]?.value ?? 0).toBe(sqlAfterControl);
    expect(await operationCount()).toBe(operationsBefore);
    // Refused in the guard, each is still counted (as refused).
    expect((await refusalCount('PERSISTED_QUERY_REQUIRED')) - refusalsBefore).toBe(attempts.length);
  });

  it("is refused unregistered hashes, including another tenant's, with PERSISTED_QUERY_NOT_REGISTERED", async () => {
    // Known to APQ (an ordinary caller ran it), but not registered for the partner's tenant.
    const apqOnly = `query ApqOnly_${randomBytes(3).toString('hex')} { vehicles(first: 2) { totalCount } }`;
    expect((await postJson(app.url, { query: apqOnly, extensions: persisted(sha256(apqOnly)) }, bearer(A.ownerToken))).status).toBe(200);

    const cases: [string, string][] = [
      ['never seen', sha256(`nothing-${randomBytes(4).toString('hex')}`)],
      ['not hex', 'not-a-hash'],
      ['in the APQ cache only', sha256(apqOnly)],
      ["tenant B's operation", bOnlyHash],
    ];
    for (const [name, hash] of cases) {
      const response = await runByHash(aPartner, hash);
      expect({ name, status: response.status, codes: codesOf(response) }).toEqual({ name, status: 404, codes: ['PERSISTED_QUERY_NOT_REGISTERED'] });
      expect(response.ms).toBeLessThan(1_000);
    }
    // B's own partner runs it.
    const own = await runByHash(bPartner, bOnlyHash);
    expect(own.body.data).toEqual({ vehicles: { totalCount: 2 } });
    // A's hash is unknown to B's partner the same way.
    expect(codesOf(await runByHash(bPartner, aOnlyHash))).toEqual(['PERSISTED_QUERY_NOT_REGISTERED']);
  });

  it("runs a platform admin's global operation for every tenant, each on its own data; a per-tenant one only for that tenant", async () => {
    const admin = await app.admin();
    const globalBody = `query GlobalPlates_${randomBytes(3).toString('hex')} { vehicles(first: 10) { edges { node { plate } } } }`;
    const global = await admin.request(REGISTER_PLATFORM, {
      tenantId: null,
      operations: [{ id: sha256(globalBody), name: 'GlobalPlates', body: globalBody }],
    });
    expect(global.registerPlatformPersistedOperations.operations).toEqual([
      { id: expect.any(String), sha256: sha256(globalBody), operationName: 'GlobalPlates', scope: 'GLOBAL' },
    ]);
    const globalHash = sha256(globalBody);
    expect(plates(await runByHash(aPartner, globalHash))).toEqual(['ALPHA-1', 'ALPHA-2']);
    expect(plates(await runByHash(bPartner, globalHash, undefined, second))).toEqual(['BRAVO-1', 'BRAVO-2']);
    for (const tenant of [A, B]) {
      const listed = await tenant.owner.request(PERSISTED_OPERATIONS);
      expect(listed.persistedOperations.find((operation) => operation.sha256 === globalHash)?.scope).toBe('GLOBAL');
    }

    const forB = `query ForBravoOnly_${randomBytes(3).toString('hex')} { vehicles(first: 1) { totalCount } }`;
    const scoped = await admin.request(REGISTER_PLATFORM, {
      tenantId: B.id,
      operations: [{ body: forB }],
    });
    expect(scoped.registerPlatformPersistedOperations.operations[0]?.scope).toBe('TENANT');
    expect((await runByHash(bPartner, sha256(forB))).body.data).toEqual({ vehicles: { totalCount: 2 } });
    expect(codesOf(await runByHash(aPartner, sha256(forB)))).toEqual(['PERSISTED_QUERY_NOT_REGISTERED']);
    expect(await errorCode(admin.request(REGISTER_PLATFORM, { tenantId: '00000000-0000-4000-8000-000000000000', operations: [{ body: forB }] }))).toBe(
      'NOT_FOUND',
    );
  });

  it("refuses an empty tenantId as NOT_FOUND, and files an upper-case tenant id under the tenant's own id", async () => {
    const admin = await app.admin();
    const body = `query ForBravoByUpperId_${randomBytes(3).toString('hex')} { vehicles(first: 1) { totalCount } }`;
    expect(await errorCode(admin.request(REGISTER_PLATFORM, { tenantId: '', operations: [{ body }] }))).toBe('NOT_FOUND');
    expect((await B.owner.request(PERSISTED_OPERATIONS)).persistedOperations.map((operation) => operation.sha256)).not.toContain(sha256(body));

    const registered = await admin.request(REGISTER_PLATFORM, { tenantId: B.id.toUpperCase(), operations: [{ body }] });
    expect(registered.registerPlatformPersistedOperations.operations).toEqual([
      { id: expect.any(String), sha256: sha256(body), operationName: null, scope: 'TENANT' },
    ]);
    // B lists and runs it; A does not.
    expect((await B.owner.request(PERSISTED_OPERATIONS)).persistedOperations.map((operation) => operation.sha256)).toContain(sha256(body));
    expect((await runByHash(bPartner, sha256(body))).body.data).toEqual({ vehicles: { totalCount: 2 } });
    expect(codesOf(await runByHash(aPartner, sha256(body)))).toEqual(['PERSISTED_QUERY_NOT_REGISTERED']);
    // Registering again under the lower-case id is the same operation, not a second one.
    const again = await admin.request(REGISTER_PLATFORM, { tenantId: B.id, operations: [{ body }] });
    expect(again.registerPlatformPersistedOperations.operations).toEqual(registered.registerPlatformPersistedOperations.operations);
  });

  it('lets ordinary keys and members run registered operations by hash alone, too', async () => {
    expect(plates(await runByHash(aOrdinary, aOnlyHash))).toEqual(['ALPHA-1', 'ALPHA-2']);
    const member = await postJson(second.url, { extensions: persisted(aOnlyHash), variables: { status: 'ACTIVE' } }, bearer(A.ownerToken));
    expect(plates(member)).toEqual(['ALPHA-1']);
  });
});

/** Operations Apollo ran (or tried to), and requests the guard refused before, by outcome code. */
async function operationCount(): Promise<number> {
  const metric = await app.server.metrics.graphqlOperations.get();
  return metric.values
    .filter((value) => value.metricName?.endsWith('_count') && value.labels.operation !== 'refused')
    .reduce((sum, value) => sum + value.value, 0);
}

async function refusalCount(code: string): Promise<number> {
  const metric = await app.server.metrics.graphqlOperations.get();
  return metric.values.find((value) => value.metricName?.endsWith('_count') && value.labels.operation === 'refused' && value.labels.outcome === code)?.value ?? 0;
}

describe('the partner flow shown in the README', () => {
  it('admin registers with graphql-request, partner runs by hash with fetch', async () => {
    // Admin side: a signed-in OWNER or ADMIN, with graphql-request.
    const url = app.url;
    const admin = new GraphQLClient(url, { headers: { authorization: `Bearer ${A.ownerToken}` } });
    const body = 'query ActiveVehicles($first: Int!) { vehicles(first: $first, filter: { status: ACTIVE }) { edges { node { plate } } } }';
    const sha256Hash = createHash('sha256').update(body).digest('hex');
    await admin.request(REGISTER, { operations: [{ id: sha256Hash, name: 'ActiveVehicles', body }] });
    const { createApiKey } = await admin.request(CREATE_API_KEY, {
      input: { name: 'Acme telematics', role: 'VIEWER', persistedOnly: true },
    });
    const apiKey = createApiKey.secret;

    // Partner side: the key and the hash, nothing else.
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': apiKey },
      body: JSON.stringify({ extensions: { persistedQuery: { version: 1, sha256Hash } }, variables: { first: 10 } }),
    });
    const { data, errors } = (await response.json()) as { data?: unknown; errors?: unknown[] };
    expect(response.status).toBe(200);
    expect(errors).toBeUndefined();
    expect(data).toEqual({ vehicles: { edges: [{ node: { plate: 'ALPHA-1' } }] } });
  });
});
