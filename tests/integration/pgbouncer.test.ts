import pg from 'pg';
import type { TenantRecord } from '../../src/tenancy/tenant-directory';
import { graphql } from '../generated';
import { startPgBouncer, type RunningPgBouncer } from '../support/pgbouncer';
import { readTestServices } from '../support/services';
import { startTestServer, type TenantFixture, type TestServer } from '../support/test-server';

/*
 * The server behind a real PgBouncer in transaction mode (TENANT_POOLER_URL), each (database,
 * tenant role) pool one server connection: tenant roles log in through it with their own
 * passwords, two tenants' requests interleaved over HTTP each see only their own data, and on
 * every statement the connection is the tenant's role with its own search_path, the request
 * path's statement_timeout (set on the role, since PgBouncer passes no startup settings) and no
 * prepared statement left behind. PgBouncer's own console shows the traffic went through it.
 */

let bouncer: RunningPgBouncer;
let app: TestServer;
let A: TenantFixture;
let B: TenantFixture;

const MAX_EXECUTION_MS = 1_500;
const CREATE_VEHICLE = graphql(`mutation BouncerVehicle($input: CreateVehicleInput!) { createVehicle(input: $input) { vehicle { id } } }`);
const PLATES = graphql(`query BouncerPlates { vehicles(first: 100) { edges { node { plate } } } }`);

async function tenantRecord(tenant: TenantFixture): Promise<TenantRecord> {
  const found = await app.server.services.directory.findById(tenant.id);
  if (!found) throw new Error('tenant not found');
  return found;
}

async function console(sql: string): Promise<Record<string, unknown>[]> {
  const client = new pg.Client(bouncer.adminConfig);
  await client.connect();
  try {
    // The admin console speaks the simple protocol only.
    return (await client.query({ text: sql, queryMode: 'simple' } as pg.QueryConfig)).rows as Record<string, unknown>[];
  } finally {
    await client.end();
  }
}

beforeAll(async () => {
  bouncer = await startPgBouncer(readTestServices().postgresUrl, { poolSize: 1 });
  app = await startTestServer({ env: { TENANT_POOLER_URL: bouncer.url, MAX_EXECUTION_MS: String(MAX_EXECUTION_MS) } });
  A = await app.createTenant();
  B = await app.createTenant();
}, 60_000);

afterAll(async () => {
  await app?.close();
  await bouncer?.stop();
});

describe('behind PgBouncer in transaction mode', () => {
  it("serves two tenants' interleaved requests, each seeing only its own", async () => {
    const writes = [];
    for (let index = 0; index < 10; index += 1) {
      writes.push(A.owner.request(CREATE_VEHICLE, { input: { plate: `A-${index}`, make: 'Volvo', model: 'FH', year: 2020 } }));
      writes.push(B.owner.request(CREATE_VEHICLE, { input: { plate: `B-${index}`, make: 'MAN', model: 'TGX', year: 2021 } }));
    }
    await Promise.all(writes);
    const reads = await Promise.all(Array.from({ length: 20 }, (_, index) => (index % 2 === 0 ? A : B).owner.request(PLATES)));
    reads.forEach((read, index) => {
      const plates = read.vehicles.edges.map((edge) => edge.node.plate);
      expect(plates).toHaveLength(10);
      expect(plates.every((plate) => plate.startsWith(index % 2 === 0 ? 'A-' : 'B-'))).toBe(true);
    });
    // The tenant roles' pools are PgBouncer's: one per role, and never more server connections than the pool size.
    const pools = await console('SHOW POOLS');
    const [roleA, roleB] = [(await tenantRecord(A)).dbRole, (await tenantRecord(B)).dbRole];
    expect(pools.map((pool) => pool.user)).toEqual(expect.arrayContaining([roleA, roleB]));
    const servers = await console('SHOW SERVERS');
    for (const role of [roleA, roleB]) expect(servers.filter((server) => server.user === role).length).toBeLessThanOrEqual(1);
  });

  it("gives every statement the tenant's role, search_path and statement_timeout, and leaves no prepared statement", async () => {
    const [a, b] = [await tenantRecord(A), await tenantRecord(B)];
    const leases = [app.server.services.tenantClients.lease(a), app.server.services.tenantClients.lease(b)];
    try {
      const probes = Array.from({ length: 30 }, (_, index) => {
        const lease = leases[index % 2]!;
        // Prisma's statements (a write path) interleaved with the SQL reads, on the same pools.
        return Promise.all([
          lease.db.vehicle.count(),
          lease.sql.rows<{ role: string; path: string; timeout: string; prepared: number }>({
            text: `SELECT current_user AS role, current_setting('search_path') AS path, current_setting('statement_timeout') AS timeout,
                          (SELECT count(*)::int FROM pg_prepared_statements) AS prepared`,
            values: [],
          } as never),
        ]).then(([count, rows]) => ({ index, count, row: rows[0]! }));
      });
      for (const { index, count, row } of await Promise.all(probes)) {
        const tenant = index % 2 === 0 ? a : b;
        expect(count).toBe(10);
        expect(row.role).toBe(tenant.dbRole);
        expect(row.path.replaceAll('"', '')).toBe(tenant.schemaName);
        expect(row.timeout).toBe(`${MAX_EXECUTION_MS}ms`);
        expect(row.prepared).toBe(0);
      }
      // The role's timeout holds through the pooler: a statement past it is cancelled by PostgreSQL.
      const slow = await leases[0]!.sql.rows({ text: `SELECT pg_sleep(${(MAX_EXECUTION_MS + 1000) / 1000})`, values: [] } as never).then(
        () => null,
        (error: unknown) => (error as { code?: string }).code,
      );
      expect(slow).toBe('57014');
    } finally {
      for (const lease of leases) lease.release();
    }
  });
});
