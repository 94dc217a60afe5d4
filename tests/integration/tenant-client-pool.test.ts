import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { Prisma } from '../../src/generated/prisma/tenant/client';
import { databaseNameOf } from '../../src/database/connection-url';
import type { TenantRecord } from '../../src/tenancy/tenant-directory';
import { toGlobalId } from '../../src/graphql/global-id';
import { bearer, postJson, type RawResponse } from '../support/raw-graphql';
import { readTestServices } from '../support/services';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy';
import { createTestDatabase, dropTestDatabase } from '../support/test-database';
import { startTestServer, type TenantFixture, type TestServer, NO_BACKGROUND_JOBS } from '../support/test-server';
import { graphql } from '../generated';

/*
 * The tenant-bound client cache: LRU eviction never pulls a client from under a request, the
 * connection budget holds whatever the number of tenants, and idle tenants hold no connection.
 */

async function tenantConnections(app: TestServer): Promise<number> {
  const client = new pg.Client({ connectionString: app.databaseUrl });
  await client.connect();
  try {
    const result = await client.query<{ count: string }>(
      `SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND usename LIKE $2`,
      [databaseNameOf(app.databaseUrl), `fg\\_${app.server.installationId}\\_%`],
    );
    return Number(result.rows[0]?.count ?? 0);
  } finally {
    await client.end();
  }
}

async function record(app: TestServer, tenant: TenantFixture): Promise<TenantRecord> {
  const found = await app.server.services.directory.findById(tenant.id);
  if (!found) throw new Error(`tenant ${tenant.slug} not found`);
  return found;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('LRU eviction', () => {
  let app: TestServer;
  let tenants: TenantFixture[];

  beforeAll(async () => {
    app = await startTestServer({ env: { TENANT_CLIENT_CACHE_MAX: '2' } });
    tenants = [];
    for (let i = 0; i < 3; i += 1) tenants.push(await app.createTenant());
  });

  afterAll(async () => {
    await app.close();
  });

  it('keeps an evicted client working until its last lease is released, then disconnects it', async () => {
    const pool = app.server.services.tenantClients;
    const [a, b, c] = (await Promise.all(tenants.map((tenant) => record(app, tenant)))) as [TenantRecord, TenantRecord, TenantRecord];
    const leaseA = pool.lease(a);
    // Prisma queries are lazy; the async wrapper sends this one now.
    const slowQuery = (async () =>
      leaseA.db.$queryRaw<{ who: string }[]>`SELECT current_user AS who, pg_sleep(0.4)::text AS slept`)();
    await sleep(100); // the query is on the wire
    expect(await tenantConnections(app)).toBeGreaterThanOrEqual(1);

    // Two more tenants push A out of a cache of two.
    const leaseB = pool.lease(b);
    const leaseC = pool.lease(c);
    expect(pool.isCached(a.id)).toBe(false);
    expect(pool.isCached(b.id) && pool.isCached(c.id)).toBe(true);

    // A's in-flight query still completes on A's own role, and A's client still answers.
    const [row] = await slowQuery;
    expect(row?.who).toBe(a.dbRole);
    const count = await leaseA.db.vehicle.count();
    expect(count).toBe(0);
    leaseB.release();
    leaseC.release();

    // Released: A's connections close.
    leaseA.release();
    await sleep(200);
    const roles = await app.server.services.platform.pool.query<{ usename: string }>(
      'SELECT usename FROM pg_stat_activity WHERE usename = $1',
      [a.dbRole],
    );
    expect(roles.rowCount).toBe(0);
  });

  it('serves an evicted tenant again over HTTP with a fresh client', async () => {
    const [a] = tenants as [TenantFixture];
    const result = await a.owner.request(graphql(`query ClientPoolVehicles { vehicles { totalCount } }`));
    expect(result.vehicles.totalCount).toBe(0);
    expect(app.server.services.tenantClients.isCached(a.id)).toBe(true);
    expect(app.server.services.tenantClients.stats().cachedClients).toBeLessThanOrEqual(2);
  });
});

describe('connection budget', () => {
  const BUDGET = 3;
  let app: TestServer;
  let tenants: TenantFixture[];

  beforeAll(async () => {
    // No jobs: the suite watches connections come and go with requests alone.
    app = await startTestServer({
      env: { TENANT_CONNECTION_BUDGET: String(BUDGET), TENANT_POOL_MAX: '2', TENANT_IDLE_TIMEOUT_MS: '300', ...NO_BACKGROUND_JOBS },
    });
    tenants = [];
    for (let i = 0; i < 6; i += 1) tenants.push(await app.createTenant());
  });

  afterAll(async () => {
    await app.close();
  });

  it('holds with twice as many busy tenants as the budget, and every request is served', async () => {
    let maxObserved = 0;
    let maxReported = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        maxObserved = Math.max(maxObserved, await tenantConnections(app));
        maxReported = Math.max(maxReported, app.server.services.tenantClients.stats().openConnections);
        await sleep(5);
      }
    })();
    const requests = tenants.flatMap((tenant) =>
      Array.from({ length: 5 }, (_, i) =>
        tenant.owner.request(
          graphql(`mutation ClientPoolCreateVehicle($input: CreateVehicleInput!) { createVehicle(input: $input) { vehicle { plate } } }`),
          { input: { plate: `B-${i}`, make: 'Volvo', model: 'FH', year: 2020 } },
        ),
      ),
    );
    const results = await Promise.all(requests);
    sampling = false;
    await sampler;
    expect(results).toHaveLength(30);
    expect(maxObserved).toBeGreaterThan(0);
    expect(maxObserved).toBeLessThanOrEqual(BUDGET);
    expect(maxReported).toBeLessThanOrEqual(BUDGET);
    for (const tenant of tenants) {
      const listed = await tenant.owner.request(graphql(`query ClientPoolVehicles { vehicles { totalCount } }`));
      expect(listed.vehicles.totalCount).toBe(5);
    }
  });

  it('leaves idle tenants holding no connection, while their clients stay cached', async () => {
    await sleep(700); // idle timeout is 300 ms
    expect(await tenantConnections(app)).toBe(0);
    const stats = app.server.services.tenantClients.stats();
    expect(stats.openConnections).toBe(0);
    expect(stats.cachedClients).toBeGreaterThan(0);
  });
});

describe('connection budget under pressure', () => {
  // The numbers: 10 tenants at once on 3 connections, a second to get one, and idle
  // connections left to the (default) 10 s idle timeout.
  const BUDGET = 3;
  const CONNECT_TIMEOUT_MS = 1_000;
  let app: TestServer;
  let tenants: TenantFixture[];

  beforeAll(async () => {
    app = await startTestServer({
      env: {
        TENANT_CONNECTION_BUDGET: String(BUDGET),
        TENANT_CONNECT_TIMEOUT_MS: String(CONNECT_TIMEOUT_MS),
        TENANT_IDLE_TIMEOUT_MS: '10000',
      },
    });
    tenants = [];
    for (let i = 0; i < 10; i += 1) tenants.push(await app.createTenant());
  }, 60_000);

  afterAll(async () => {
    await app.close();
  });

  const countVehicles = (tenant: TenantFixture): Promise<RawResponse> =>
    postJson(app.url, { query: '{ vehicles { totalCount } }' }, { authorization: `Bearer ${tenant.ownerToken}` });

  it('hands the connections of tenants whose statements end to the tenants waiting, long before they would idle out', async () => {
    // Three tenants hold every connection of the budget, busy for 400 ms.
    const records = await Promise.all(tenants.map((tenant) => record(app, tenant)));
    const busy = records.slice(0, BUDGET).map((tenant) => {
      const lease = app.server.services.tenantClients.lease(tenant);
      return lease.sql.rows(Prisma.sql`SELECT pg_sleep(0.4)`).finally(() => lease.release());
    });
    await sleep(100);
    expect(app.server.services.tenantClients.stats().openConnections).toBe(BUDGET);

    // The seven others wait for a permit; when the sleeps end, those connections close for them.
    const startedAt = performance.now();
    const waiting = await Promise.all(tenants.slice(BUDGET).map((tenant) => countVehicles(tenant)));
    const ms = performance.now() - startedAt;
    await Promise.all(busy);
    for (const response of waiting) {
      expect(response.status).toBe(200);
      expect(response.body).toEqual({ data: { vehicles: { totalCount: 0 } } });
    }
    // The 300 ms left of the sleeps plus seven connections opened three at a time (about 400 ms
    // in all here); before, they waited out CONNECT_TIMEOUT_MS and got 503 while three idle
    // connections sat open.
    expect(ms).toBeLessThan(CONNECT_TIMEOUT_MS);
    expect(app.server.services.tenantClients.stats().openConnections).toBeLessThanOrEqual(BUDGET);
  });

  it('serves 10 tenants at once, round after round, several requests each, with no 503 and never more than the budget open', async () => {
    let maxOpen = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        maxOpen = Math.max(maxOpen, await tenantConnections(app));
        await sleep(5);
      }
    })();
    const statuses: number[] = [];
    const codes = new Set<string>();
    const startedAt = performance.now();
    for (let round = 0; round < 5; round += 1) {
      const responses = await Promise.all(
        tenants.flatMap((tenant) =>
          Array.from({ length: 3 }, (_, i) =>
            i === 0
              ? postJson(
                  app.url,
                  {
                    query: 'mutation($input: CreateVehicleInput!) { createVehicle(input: $input) { vehicle { plate } } }',
                    variables: { input: { plate: `R${round}`, make: 'Volvo', model: 'FH', year: 2020 } },
                  },
                  { authorization: `Bearer ${tenant.ownerToken}` },
                )
              : countVehicles(tenant),
          ),
        ),
      );
      for (const response of responses) {
        statuses.push(response.status);
        for (const error of response.body?.errors ?? []) codes.add(String(error.extensions?.code));
      }
    }
    const ms = performance.now() - startedAt;
    sampling = false;
    await sampler;
    expect(codes).toEqual(new Set());
    expect(statuses).toEqual(Array.from({ length: 5 * 10 * 3 }, () => 200));
    expect(maxOpen).toBeLessThanOrEqual(BUDGET);
    for (const tenant of tenants) {
      expect((await countVehicles(tenant)).body).toEqual({ data: { vehicles: { totalCount: 5 } } });
    }
    // 150 requests on 3 connections took about 1.5 s here; the bound only catches a stall.
    expect(ms).toBeLessThan(15_000);
  }, 60_000);
});

describe('a tenant pool that grows with demand inside the budget', () => {
  const BUDGET = 8; // a quarter (2) stays free for tenants without a connection: a tenant grows while fewer than 6 are open
  let app: TestServer;
  let busy: TenantRecord;
  let other: TenantRecord;

  beforeAll(async () => {
    app = await startTestServer({ env: { TENANT_CONNECTION_BUDGET: String(BUDGET), TENANT_POOL_MAX: '4', TENANT_IDLE_TIMEOUT_MS: '5000' } });
    busy = await record(app, await app.createTenant());
    other = await record(app, await app.createTenant());
  });

  afterAll(async () => {
    await app.close();
  });

  /** `count` statements of `tenant` sleeping `seconds` each, all sent at once. */
  function sleepers(tenant: TenantRecord, count: number, seconds: number): Promise<unknown[]> {
    const lease = app.server.services.tenantClients.lease(tenant);
    return Promise.all(Array.from({ length: count }, () => lease.sql.rows(Prisma.sql`SELECT pg_sleep(${seconds})`))).finally(() => lease.release());
  }

  async function openConnectionsOf(tenant: TenantRecord): Promise<number> {
    const client = new pg.Client({ connectionString: app.databaseUrl });
    await client.connect();
    try {
      const result = await client.query<{ count: string }>(`SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND usename = $2`, [
        databaseNameOf(app.databaseUrl),
        tenant.dbRole,
      ]);
      return Number(result.rows[0]?.count ?? 0);
    } finally {
      await client.end();
    }
  }

  it('opens up to TENANT_POOL_MAX connections for one busy tenant, and stops growing before the budget runs short', async () => {
    const running = sleepers(busy, 6, 0.5);
    await sleep(250);
    // Six statements at once: the pool grew to its ceiling of 4; the other two wait their turn.
    expect(await openConnectionsOf(busy)).toBe(4);
    await running;

    // With 4 of 8 held, a second busy tenant may grow to 2 more (6 open), not to 4: two stay free.
    const both = Promise.all([sleepers(busy, 6, 0.5), sleepers(other, 6, 0.5)]);
    await sleep(250);
    expect([await openConnectionsOf(busy), await openConnectionsOf(other)]).toEqual([4, 2]);
    const stats = app.server.services.tenantClients.stats();
    expect({ open: stats.openConnections, waiting: stats.waitingForConnection }).toEqual({ open: 6, waiting: 0 });
    await both;
  });
});

describe('a tenant connection that cannot be had in time', () => {
  const CONNECT_TIMEOUT_MS = 500;
  let proxy: TcpProxy;
  let app: TestServer;
  let databaseUrl: string;
  let a: TenantFixture;
  let b: TenantFixture;

  beforeAll(async () => {
    // The server reaches PostgreSQL through a proxy that the test can make stop answering.
    const services = readTestServices();
    databaseUrl = await createTestDatabase(services.postgresUrl, services.runId);
    const direct = new URL(databaseUrl);
    proxy = await startTcpProxy({ host: direct.hostname, port: Number(direct.port || 5432) });
    const throughProxy = new URL(databaseUrl);
    throughProxy.host = `127.0.0.1:${proxy.port}`;
    app = await startTestServer({
      databaseUrl: throughProxy.toString(),
      env: {
        TENANT_CONNECTION_BUDGET: '1',
        TENANT_POOL_MAX: '1',
        TENANT_CONNECT_TIMEOUT_MS: String(CONNECT_TIMEOUT_MS),
        TENANT_IDLE_TIMEOUT_MS: '200',
        // Requests alone: a delivery job stuck on the database that does not answer would outlive
        // the server in this process (pg queries have no client-side deadline).
        ...NO_BACKGROUND_JOBS,
      },
    });
    a = await app.createTenant();
    b = await app.createTenant();
  });

  afterAll(async () => {
    proxy?.resume();
    await app?.close();
    await proxy?.close();
    if (databaseUrl) await dropTestDatabase(databaseUrl, readTestServices().postgresUrl);
  });

  const countVehicles = (tenant: TenantFixture): Promise<RawResponse> =>
    postJson(app.url, { query: '{ vehicles { totalCount } }' }, { authorization: `Bearer ${tenant.ownerToken}` });

  /**
   * SERVICE_UNAVAILABLE with its 503 problem status and retry guidance, as the response's HTTP
   * status and Retry-After too (nothing of the operation was served); no driver message.
   */
  function expectUnavailable(response: RawResponse): void {
    expect(response.status).toBe(503);
    expect(response.headers.get('retry-after')).toBe('1');
    expect(response.body.data).toBeNull();
    expect(response.body.errors?.map((error) => error.extensions?.code)).toEqual(['SERVICE_UNAVAILABLE']);
    expect(response.body.errors?.[0]?.extensions).toMatchObject({ status: 503, retryAfter: 1 });
    expect(response.text).not.toMatch(/terminated|ECONN|prisma|Invalid `/i);
  }

  it('is SERVICE_UNAVAILABLE when every connection of the budget stays busy for longer than the timeout', async () => {
    const pool = app.server.services.tenantClients;
    const lease = pool.lease(await record(app, a));
    try {
      // A holds the only permit of the budget, in use, for longer than B may wait.
      const slow = (async () => lease.db.$queryRaw`SELECT pg_sleep(${(CONNECT_TIMEOUT_MS * 3) / 1000})::text AS slept`)();
      await sleep(100);
      const startedAt = Date.now();
      const [response, partly] = await Promise.all([
        countVehicles(b),
        // A field that needs no tenant connection is served: a partial answer is no refusal.
        postJson(app.url, { query: `{ me { name } vehicle(id: "${toGlobalId('Vehicle', randomUUID())}") { id } }` }, bearer(b.ownerToken)),
      ]);
      expect(Date.now() - startedAt).toBeGreaterThanOrEqual(CONNECT_TIMEOUT_MS - 50);
      expectUnavailable(response);
      expect(partly.status).toBe(200);
      expect(partly.headers.get('retry-after')).toBeNull();
      expect(partly.body.data).toEqual({ me: { name: 'Owner' }, vehicle: null });
      expect(partly.body.errors?.map((error) => [error.path, error.extensions?.code])).toEqual([[['vehicle'], 'SERVICE_UNAVAILABLE']]);
      await slow;
    } finally {
      lease.release();
    }
    expect((await countVehicles(b)).body).toEqual({ data: { vehicles: { totalCount: 0 } } });
  });

  it('is SERVICE_UNAVAILABLE when the database accepts the connection but does not answer, and serves once it does', async () => {
    // Signed in and looked up once: the session and the tenant are cached, so only the tenant
    // connection still needs the database.
    expect((await countVehicles(a)).body).toEqual({ data: { vehicles: { totalCount: 0 } } });
    app.server.services.tenantClients.forget(a.id);
    await sleep(300);
    expect(app.server.services.tenantClients.stats().openConnections).toBe(0);

    proxy.hang();
    try {
      const startedAt = Date.now();
      const response = await countVehicles(a);
      const waited = Date.now() - startedAt;
      expect(waited).toBeGreaterThanOrEqual(CONNECT_TIMEOUT_MS - 50);
      expect(waited).toBeLessThan(CONNECT_TIMEOUT_MS * 4);
      expectUnavailable(response);
      // The permit of the connection that never opened went back to the budget.
      expect(app.server.services.tenantClients.stats().openConnections).toBe(0);
    } finally {
      proxy.resume();
    }
    expect((await countVehicles(a)).body).toEqual({ data: { vehicles: { totalCount: 0 } } });
  });
});
