import { createHash, randomBytes } from 'node:crypto';
import type pg from 'pg';
import { REGISTRATION_LOCK_CLASS } from '../../src/persisted-queries/operation-safelist';
import { PERSISTED_OPERATION_LIMITS } from '../../src/rate-limiting/plans';
import { bearer, codesOf, eventually, postJson, type RawResponse } from '../support/raw-graphql';
import { withRowLocked } from '../support/row-lock';
import { expectErrors, startTestServer, uniqueSlug, type TenantFixture, type TestServer } from '../support/test-server';
import type { GraphQLClient } from '../support/graphql-request';
import { graphql } from '../generated';
import type { PersistedOperationInput } from '../generated/graphql';

/*
 * What registered (safelisted) operations may take, and taking them back: a cap per tenant by
 * plan on their number and bytes (and one on global operations), held under concurrent
 * registrations; removal by the tenant's admins or a platform admin, effective at once on every
 * instance; lists that never read the documents. Over HTTP, on two instances of one database.
 */

const REGISTER = graphql(`mutation LimitsRegister($operations: [PersistedOperationInput!]!) {
  registerPersistedOperations(operations: $operations) { operations { id sha256 scope } }
}`);
const REGISTER_PLATFORM = graphql(`mutation LimitsRegisterPlatform($tenantId: ID, $operations: [PersistedOperationInput!]!) {
  registerPlatformPersistedOperations(tenantId: $tenantId, operations: $operations) { operations { id sha256 scope } }
}`);
const REMOVE = graphql(`mutation LimitsRemove($ids: [ID!]!) { removePersistedOperations(ids: $ids) { removedIds } }`);
const REMOVE_PLATFORM = graphql(`mutation LimitsRemovePlatform($tenantId: ID, $ids: [ID!]!) {
  removePlatformPersistedOperations(tenantId: $tenantId, ids: $ids) { removedIds }
}`);
const LIST = graphql(`query LimitsList { persistedOperations { id sha256 scope } }`);
const CREATE_API_KEY = graphql(`mutation LimitsCreateKey($input: CreateApiKeyInput!) { createApiKey(input: $input) { secret } }`);

const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');

let app: TestServer;
let second: TestServer;

beforeAll(async () => {
  app = await startTestServer();
  second = await startTestServer({ databaseUrl: app.databaseUrl });
});

afterAll(async () => {
  await second?.close();
  await app?.close();
});

/** `count` small, distinct, valid operations. */
function smallOperations(count: number, label = randomBytes(3).toString('hex')): PersistedOperationInput[] {
  return Array.from({ length: count }, (_, i) => ({ name: `Op${i}`, body: `query Op${i}_${label} { __typename }` }));
}

/** A valid operation of exactly `bytes` bytes (a comment pads it; comments count as stored bytes). */
function operationOf(bytes: number): PersistedOperationInput {
  const head = `query Big_${randomBytes(4).toString('hex')} { __typename } #`;
  const body = head.padEnd(bytes, 'x');
  expect(Buffer.byteLength(body)).toBe(bytes);
  return { body };
}

async function register(client: GraphQLClient, operations: PersistedOperationInput[]): Promise<{ id: string; sha256: string }[]> {
  return (await client.request(REGISTER, { operations })).registerPersistedOperations.operations;
}

async function registerInChunks(client: GraphQLClient, operations: PersistedOperationInput[], size: number): Promise<void> {
  for (let i = 0; i < operations.length; i += size) await register(client, operations.slice(i, i + size));
}

/** The tenant's own operations and their bytes, read from the platform schema. */
async function usageOf(tenantId: string): Promise<{ operations: number; bytes: number }> {
  const result = await app.server.services.platform.pool.query<{ operations: number; bytes: number }>(
    `SELECT count(*)::int AS operations, coalesce(sum(octet_length(document)), 0)::int AS bytes FROM platform."PersistedOperation" WHERE scope = $1`,
    [tenantId],
  );
  return result.rows[0] as { operations: number; bytes: number };
}

async function expectQuotaExceeded(request: Promise<unknown>, message: RegExp): Promise<void> {
  const { errors } = await expectErrors(request);
  expect(errors.map((error) => error.extensions.code)).toEqual(['QUOTA_EXCEEDED']);
  expect(errors[0]?.message).toMatch(message);
  expect(errors[0]?.extensions.field).toBe('operations');
}

describe("a tenant's registered operations are capped by its plan", () => {
  it('FREE: 100 operations; the 101st is QUOTA_EXCEEDED naming the cap and the usage, and registers nothing', async () => {
    expect(PERSISTED_OPERATION_LIMITS.FREE).toEqual({ operations: 100, bytes: 500_000 });
    const tenant = await app.createTenant(uniqueSlug('cap-count'), 'FREE');
    const first = smallOperations(100);
    const registered = await register(tenant.owner, first);
    expect(registered).toHaveLength(100);
    const before = await usageOf(tenant.id);
    expect(before.operations).toBe(100);

    const extra = smallOperations(2);
    await expectQuotaExceeded(
      register(tenant.owner, [first[0] as PersistedOperationInput, ...extra]),
      new RegExp(`limited to 100 operations and 500000 bytes for a FREE tenant; 100 operations \\(${before.bytes} bytes\\) are registered and this call adds 2 \\(`),
    );
    expect(await usageOf(tenant.id)).toEqual(before);
    // A platform admin registering for the tenant meets the same cap.
    const admin = await app.admin();
    await expectQuotaExceeded(admin.request(REGISTER_PLATFORM, { tenantId: tenant.id, operations: extra.slice(0, 1) }), /for a FREE tenant/);

    // Operations already registered cost nothing: registering them again still answers them.
    expect(await register(tenant.owner, first.slice(0, 3))).toEqual(registered.slice(0, 3).map((operation) => ({ ...operation, scope: 'TENANT' })));
    // Removing one makes room for one.
    await tenant.owner.request(REMOVE, { ids: [registered[0]?.id as string] });
    expect((await register(tenant.owner, extra.slice(0, 1))).map((operation) => operation.sha256)).toEqual([sha256(extra[0]?.body as string)]);
    await expectQuotaExceeded(register(tenant.owner, extra.slice(1)), /100 operations \(\d+ bytes\) are registered and this call adds 1 /);
  });

  it('FREE: 500000 bytes of documents, whatever their number', async () => {
    const tenant = await app.createTenant(uniqueSlug('cap-bytes'), 'FREE');
    // 25 documents of 19,990 bytes: 499,750 bytes, in calls that fit the request body limit.
    await registerInChunks(tenant.owner, Array.from({ length: 25 }, () => operationOf(19_990)), 8);
    expect(await usageOf(tenant.id)).toEqual({ operations: 25, bytes: 499_750 });
    await expectQuotaExceeded(
      register(tenant.owner, [operationOf(300)]),
      /500000 bytes for a FREE tenant; 25 operations \(499750 bytes\) are registered and this call adds 1 \(300 bytes\)/,
    );
    // Just fitting is fine.
    await register(tenant.owner, [operationOf(250)]);
    expect(await usageOf(tenant.id)).toEqual({ operations: 26, bytes: 500_000 });
  });

  it('holds under concurrent registrations: three calls queued behind one another, only what fits is registered', async () => {
    const tenant = await app.createTenant(uniqueSlug('cap-race'), 'FREE');
    await register(tenant.owner, smallOperations(98));
    const calls = [smallOperations(2), smallOperations(2), smallOperations(2)];
    const outcomes = await withRowLocked(
      app.server.services.platform.pool,
      'SELECT pg_advisory_xact_lock($1, hashtext($2))',
      [REGISTRATION_LOCK_CLASS, tenant.id],
      async (lock) => {
        // Each call reads the usage only once it holds the scope's lock: 98 for the first.
        const pending = calls.map((operations) =>
          register(tenant.owner, operations).then(
            () => 'REGISTERED',
            async (error: unknown) => {
              const { errors } = await expectErrors(Promise.reject(error));
              return errors.map((each) => each.extensions.code).join(',');
            },
          ),
        );
        await lock.untilSomeoneWaits(3);
        return pending;
      },
    );
    expect((await Promise.all(outcomes)).sort()).toEqual(['QUOTA_EXCEEDED', 'QUOTA_EXCEEDED', 'REGISTERED']);
    expect((await usageOf(tenant.id)).operations).toBe(100);
  });
});

describe('global operations are capped too', () => {
  it('at 1000 operations: the next is QUOTA_EXCEEDED; removing one makes room', async () => {
    // A database of its own: 1000 global operations would show in every tenant's list elsewhere.
    const own = await startTestServer();
    try {
      const admin = await own.admin();
      const label = randomBytes(3).toString('hex');
      const operations = smallOperations(1_000, label);
      let firstId = '';
      for (let i = 0; i < operations.length; i += 500) {
        const result = await admin.request(REGISTER_PLATFORM, { tenantId: null, operations: operations.slice(i, i + 500) });
        firstId ||= result.registerPlatformPersistedOperations.operations[0]?.id ?? '';
      }
      const more = smallOperations(1);
      await expectQuotaExceeded(
        admin.request(REGISTER_PLATFORM, { tenantId: null, operations: more }),
        /limited to 1000 operations and 5000000 bytes for global operations; 1000 operations \(\d+ bytes\) are registered and this call adds 1 /,
      );
      expect((await admin.request(REMOVE_PLATFORM, { tenantId: null, ids: [firstId] })).removePlatformPersistedOperations.removedIds).toEqual([firstId]);
      const added = await admin.request(REGISTER_PLATFORM, { tenantId: null, operations: more });
      expect(added.registerPlatformPersistedOperations.operations.map((operation) => operation.scope)).toEqual(['GLOBAL']);
    } finally {
      await own.close();
    }
  });
});

describe('removing registered operations', () => {
  let A: TenantFixture;
  let B: TenantFixture;
  let aPartner: string;
  let bPartner: string;

  const runByHash = (server: TestServer, key: string, hash: string): Promise<RawResponse> =>
    postJson(server.url, { extensions: { persistedQuery: { version: 1, sha256Hash: hash } } }, { 'x-api-key': key });
  const listed = async (tenant: TenantFixture) => (await tenant.owner.request(LIST)).persistedOperations.map((operation) => operation.id);

  beforeAll(async () => {
    A = await app.createTenant(uniqueSlug('rm-a'), 'ENTERPRISE');
    B = await app.createTenant(uniqueSlug('rm-b'), 'ENTERPRISE');
    const partnerOf = async (tenant: TenantFixture) =>
      (await tenant.owner.request(CREATE_API_KEY, { input: { name: 'partner', role: 'VIEWER', persistedOnly: true } })).createApiKey.secret;
    aPartner = await partnerOf(A);
    bPartner = await partnerOf(B);
  });

  it('stops an operation running by hash at once, on the instance that removed it and on the other, whose cache had it', async () => {
    const [operation] = await register(A.owner, smallOperations(1));
    const { id, sha256: hash } = operation as { id: string; sha256: string };
    // Served, and so cached, by both instances.
    for (const server of [app, second]) expect((await runByHash(server, aPartner, hash)).body).toEqual({ data: { __typename: 'Query' } });

    const removed = await A.owner.request(REMOVE, { ids: [id.toUpperCase()] });
    expect(removed.removePersistedOperations.removedIds).toEqual([id]);
    expect(await listed(A)).not.toContain(id);
    expect(codesOf(await runByHash(app, aPartner, hash))).toEqual(['PERSISTED_QUERY_NOT_REGISTERED']);
    // The other instance hears it from PostgreSQL's notification: a moment, no more.
    await eventually(async () => (codesOf(await runByHash(second, aPartner, hash))[0] === 'PERSISTED_QUERY_NOT_REGISTERED' ? true : undefined), 2_000, 10);
    // A member sending the hash alone gets the answer for a hash never registered.
    expect(codesOf(await postJson(second.url, { extensions: { persistedQuery: { version: 1, sha256Hash: hash } } }, bearer(A.ownerToken)))).toEqual([
      'PERSISTED_QUERY_NOT_FOUND',
    ]);
    // Removing it again: it is no longer there.
    expect(await codeOf(A.owner.request(REMOVE, { ids: [id] }))).toBe('NOT_FOUND');
  });

  it("is all or none: one id that is not the tenant's own (unknown, malformed, global, another tenant's) removes nothing", async () => {
    const own = await register(A.owner, smallOperations(1));
    const ownId = own[0]?.id as string;
    const admin = await app.admin();
    const global = (await admin.request(REGISTER_PLATFORM, { tenantId: null, operations: smallOperations(1) })).registerPlatformPersistedOperations
      .operations[0] as { id: string; sha256: string };
    const bOperation = (await register(B.owner, smallOperations(1)))[0] as { id: string; sha256: string };
    for (const other of ['00000000-0000-4000-8000-000000000000', 'not-an-id', global.id, bOperation.id]) {
      expect({ other, code: await codeOf(A.owner.request(REMOVE, { ids: [ownId, other] })) }).toEqual({ other, code: 'NOT_FOUND' });
    }
    expect(await listed(A)).toEqual(expect.arrayContaining([ownId, global.id]));
    expect(await listed(B)).toContain(bOperation.id);
    expect((await runByHash(app, aPartner, global.sha256)).body).toEqual({ data: { __typename: 'Query' } });
    expect((await runByHash(app, bPartner, bOperation.sha256)).body).toEqual({ data: { __typename: 'Query' } });
    expect(await codeOf(A.owner.request(REMOVE, { ids: [] }))).toBe('BAD_USER_INPUT');
  });

  it("lets a platform admin remove a tenant's operations or global ones, each in its own scope", async () => {
    const admin = await app.admin();
    const bOperation = (await register(B.owner, smallOperations(1)))[0] as { id: string; sha256: string };
    const global = (await admin.request(REGISTER_PLATFORM, { tenantId: null, operations: smallOperations(1) })).registerPlatformPersistedOperations
      .operations[0] as { id: string; sha256: string };
    // Each id only in its own scope.
    expect(await codeOf(admin.request(REMOVE_PLATFORM, { tenantId: null, ids: [bOperation.id] }))).toBe('NOT_FOUND');
    expect(await codeOf(admin.request(REMOVE_PLATFORM, { tenantId: A.id, ids: [bOperation.id] }))).toBe('NOT_FOUND');
    expect(await codeOf(admin.request(REMOVE_PLATFORM, { tenantId: B.id, ids: [global.id] }))).toBe('NOT_FOUND');
    expect(await codeOf(admin.request(REMOVE_PLATFORM, { tenantId: '00000000-0000-4000-8000-000000000000', ids: [bOperation.id] }))).toBe('NOT_FOUND');
    expect((await runByHash(app, bPartner, bOperation.sha256)).body).toEqual({ data: { __typename: 'Query' } });

    const removedB = await admin.request(REMOVE_PLATFORM, { tenantId: B.id.toUpperCase(), ids: [bOperation.id] });
    expect(removedB.removePlatformPersistedOperations.removedIds).toEqual([bOperation.id]);
    expect(codesOf(await runByHash(app, bPartner, bOperation.sha256))).toEqual(['PERSISTED_QUERY_NOT_REGISTERED']);

    expect((await runByHash(second, aPartner, global.sha256)).body).toEqual({ data: { __typename: 'Query' } });
    await admin.request(REMOVE_PLATFORM, { tenantId: null, ids: [global.id] });
    for (const key of [aPartner, bPartner]) {
      await eventually(async () => (codesOf(await runByHash(second, key, global.sha256))[0] === 'PERSISTED_QUERY_NOT_REGISTERED' ? true : undefined), 2_000, 10);
    }
    expect(await listed(A)).not.toContain(global.id);
  });
});

describe('lists of registered operations', () => {
  it('never read the documents, and read once per request however many aliases ask', async () => {
    const tenant = await app.createTenant(uniqueSlug('list'), 'STANDARD');
    const registered = await register(tenant.owner, smallOperations(3));
    const statements = await recordPlatformSql(app.server.services.platform.pool, async () => {
      const aliased = `{ ${Array.from({ length: 20 }, (_, i) => `l${i}: persistedOperations { id sha256 }`).join(' ')} }`;
      const result = await tenant.owner.request<Record<string, { id: string }[]>>(aliased);
      expect(Object.keys(result)).toHaveLength(20);
      // The tenant's own, after the global ones other tests registered here.
      expect(result.l19?.slice(-3).map((operation) => operation.id)).toEqual(registered.map((operation) => operation.id));
      expect(new Set(Object.values(result).map((list) => JSON.stringify(list))).size).toBe(1);
    });
    const reads = statements.filter((sql) => sql.includes('PersistedOperation'));
    expect(reads).toHaveLength(1);
    expect(reads[0]).not.toMatch(/document/i);

    // Control: running one by hash does read its document, and the recorder sees it.
    const key = (await tenant.owner.request(CREATE_API_KEY, { input: { name: 'p', role: 'VIEWER', persistedOnly: true } })).createApiKey.secret;
    const byHash = await recordPlatformSql(app.server.services.platform.pool, async () => {
      const response = await postJson(app.url, { extensions: { persistedQuery: { version: 1, sha256Hash: registered[0]?.sha256 } } }, { 'x-api-key': key });
      expect(response.body.errors).toBeUndefined();
    });
    expect(byHash.filter((sql) => sql.includes('PersistedOperation') && /document/.test(sql))).toHaveLength(1);
  });
});

async function codeOf(request: Promise<unknown>): Promise<string> {
  const { errors } = await expectErrors(request);
  return errors.map((error) => error.extensions.code).join(',');
}

/**
 * The SQL text the server sent on its platform pool while `work` ran: each connection checked out
 * of the pool reports its queries to the recorder (queries still run, unchanged).
 */
async function recordPlatformSql(pool: pg.Pool, work: () => Promise<void>): Promise<string[]> {
  const statements: string[] = [];
  const instrumented = new WeakSet<pg.PoolClient>();
  const onAcquire = (client: pg.PoolClient) => {
    if (instrumented.has(client)) return;
    instrumented.add(client);
    const original = client.query.bind(client) as (...args: unknown[]) => unknown;
    (client as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
      if (recording) {
        const [first] = args;
        statements.push(typeof first === 'string' ? first : String((first as { text?: unknown } | undefined)?.text ?? ''));
      }
      return original(...args);
    };
  };
  let recording = true;
  pool.on('acquire', onAcquire);
  try {
    await work();
  } finally {
    recording = false;
    pool.off('acquire', onAcquire);
  }
  return statements;
}
