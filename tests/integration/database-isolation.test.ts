import { randomUUID } from 'node:crypto';
import type { TenantDatabaseRef, TenantLease } from '../../src/tenancy/tenant-client-pool';
import type { TenantRecord } from '../../src/tenancy/tenant-directory';
import { startTestServer, uniqueSlug, type TenantFixture, type TestServer } from '../support/test-server';

/*
 * Isolation enforced by PostgreSQL itself, in-process through the tenant-bound client a
 * resolver would get: whatever SQL runs on A's client, as A's role, cannot reach B's schema,
 * the platform schema, or B's role. A bug in a resolver (a raw query, a schema-qualified name)
 * still cannot cross tenants.
 */

let app: TestServer;
let A: TenantFixture;
let B: TenantFixture;
let tenantA: TenantRecord;
let tenantB: TenantRecord;

const A_PLATES = ['ALPHA-1', 'ALPHA-2'];
const B_PLATES = ['BRAVO-1', 'BRAVO-2', 'BRAVO-3'];
const CREATE_VEHICLE = `mutation($input: CreateVehicleInput!) { createVehicle(input: $input) { vehicle { id } } }`;
const B_VEHICLES = '{ vehicles(first: 100) { totalCount edges { node { id plate make model year status odometerKm createdAt updatedAt } } } }';

/** Runs `work` on a lease of the tenant's client and always returns the lease. */
async function withClient<T>(tenant: TenantDatabaseRef, work: (lease: TenantLease) => Promise<T>): Promise<T> {
  const lease = app.server.services.tenantClients.lease(tenant);
  try {
    return await work(lease);
  } finally {
    lease.release();
  }
}

/**
 * The PostgreSQL SQLSTATE and message behind a Prisma error. Prisma wraps them as
 * meta.driverAdapterError.cause.{originalCode, originalMessage}; its own code (P2010...) is not
 * PostgreSQL's.
 */
function postgresError(error: unknown): { code: string | undefined; message: string } {
  const cause = (error as { meta?: { driverAdapterError?: { cause?: { originalCode?: unknown; originalMessage?: unknown } } } })?.meta
    ?.driverAdapterError?.cause;
  return {
    code: typeof cause?.originalCode === 'string' ? cause.originalCode : undefined,
    message: typeof cause?.originalMessage === 'string' ? cause.originalMessage : String((error as Error)?.message),
  };
}

async function expectPermissionDenied(query: Promise<unknown>): Promise<void> {
  const error = await query.then(
    (result) => {
      throw new Error(`expected permission denied, got ${JSON.stringify(result)}`);
    },
    (caught: unknown) => caught,
  );
  const { code, message } = postgresError(error);
  expect({ code, deniedInMessage: /permission denied/i.test(message) }).toEqual({ code: '42501', deniedInMessage: true });
}

async function bVehiclesAsOwner(): Promise<unknown> {
  return B.owner.request(B_VEHICLES);
}

beforeAll(async () => {
  app = await startTestServer();
  [A, B] = await Promise.all([app.createTenant(uniqueSlug('alpha')), app.createTenant(uniqueSlug('bravo'))]);
  for (const [tenant, plates] of [
    [A, A_PLATES],
    [B, B_PLATES],
  ] as const) {
    for (const plate of plates) {
      await tenant.owner.request(CREATE_VEHICLE, { input: { plate, make: 'Make', model: 'Model', year: 2020, odometerKm: 100 } });
    }
  }
  const { directory } = app.server.services;
  const [a, b] = await Promise.all([directory.findById(A.id), directory.findById(B.id)]);
  if (!a || !b) throw new Error('tenants not in the directory');
  [tenantA, tenantB] = [a, b];
});

afterAll(async () => {
  await app.close();
});

describe("A's tenant-bound client", () => {
  it("runs as A's own role with A's schema as search_path; the role has no powers beyond it", async () => {
    expect(tenantA.dbRole).not.toBe(tenantB.dbRole);
    const rows = await withClient(tenantA, ({ db }) =>
      db.$queryRawUnsafe<{ current_user: string; search_path: string; session_user: string }[]>(
        `SELECT current_user, session_user, current_setting('search_path') AS search_path`,
      ),
    );
    expect(rows).toEqual([{ current_user: tenantA.dbRole, session_user: tenantA.dbRole, search_path: tenantA.schemaName }]);

    const role = await withClient(tenantA, ({ db }) =>
      db.$queryRawUnsafe<Record<string, unknown>[]>(
        `SELECT rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolbypassrls, rolreplication,
                (SELECT count(*)::int FROM pg_auth_members m WHERE m.member = r.oid) AS member_of
           FROM pg_roles r WHERE rolname = current_user`,
      ),
    );
    expect(role).toEqual([
      { rolsuper: false, rolinherit: false, rolcreaterole: false, rolcreatedb: false, rolbypassrls: false, rolreplication: false, member_of: 0 },
    ]);
  });

  it('reads only A\'s rows through raw SQL without a schema name, and through the model API', async () => {
    const raw = await withClient(tenantA, ({ db }) => db.$queryRawUnsafe<{ plate: string }[]>('SELECT plate FROM "Vehicle" ORDER BY plate'));
    expect(raw.map((row) => row.plate)).toEqual(A_PLATES);
    const modelled = await withClient(tenantA, ({ db }) => db.vehicle.findMany({ orderBy: { plate: 'asc' } }));
    expect(modelled.map((row) => row.plate)).toEqual(A_PLATES);
    // Control: B's client sees B's rows the same way.
    const rawB = await withClient(tenantB, ({ db }) => db.$queryRawUnsafe<{ plate: string }[]>('SELECT plate FROM "Vehicle" ORDER BY plate'));
    expect(rawB.map((row) => row.plate)).toEqual(B_PLATES);
  });

  it("cannot SELECT from B's schema by name (permission denied, 42501)", async () => {
    await withClient(tenantA, async ({ db }) => {
      await expectPermissionDenied(db.$queryRawUnsafe(`SELECT * FROM "${tenantB.schemaName}"."Vehicle"`));
      await expectPermissionDenied(db.$queryRawUnsafe(`SELECT count(*) FROM "${tenantB.schemaName}"."Driver"`));
      await expectPermissionDenied(db.$queryRawUnsafe(`SELECT * FROM "${tenantB.schemaName}"."_prisma_migrations"`));
    });
    // Control: the same statement through B's own client works.
    const own = await withClient(tenantB, ({ db }) => db.$queryRawUnsafe<{ plate: string }[]>(`SELECT plate FROM "${tenantB.schemaName}"."Vehicle"`));
    expect(own).toHaveLength(B_PLATES.length);
  });

  it("cannot reach B's tables by pointing search_path at B's schema", async () => {
    await withClient(tenantA, async ({ db }) => {
      const error = await db
        .$transaction(async (tx) => {
          await tx.$executeRawUnsafe(`SET LOCAL search_path = "${tenantB.schemaName}"`);
          return tx.$queryRawUnsafe<{ plate: string }[]>('SELECT plate FROM "Vehicle"');
        })
        .then(
          (rows) => new Error(`read ${JSON.stringify(rows)} from B`),
          (caught: unknown) => caught,
        );
      // Without USAGE on B's schema its tables are invisible: "relation does not exist" (42P01).
      expect(postgresError(error).code).toBe('42P01');
      // The connection went back to A's search_path afterwards.
      const raw = await db.$queryRawUnsafe<{ plate: string }[]>('SELECT plate FROM "Vehicle" ORDER BY plate');
      expect(raw.map((row) => row.plate)).toEqual(A_PLATES);
    });
  });

  it('cannot read the platform schema (users, sessions, memberships)', async () => {
    await withClient(tenantA, async ({ db }) => {
      await expectPermissionDenied(db.$queryRawUnsafe('SELECT * FROM platform."User"'));
      await expectPermissionDenied(db.$queryRawUnsafe('SELECT * FROM platform."Session"'));
      await expectPermissionDenied(db.$queryRawUnsafe('SELECT * FROM platform."Membership"'));
      await expectPermissionDenied(db.$queryRawUnsafe('SELECT * FROM platform."Tenant"'));
    });
  });

  it("cannot SET ROLE to B's role (nor become a superuser)", async () => {
    await withClient(tenantA, async ({ db }) => {
      await expectPermissionDenied(db.$executeRawUnsafe(`SET ROLE "${tenantB.dbRole}"`));
      await expectPermissionDenied(db.$executeRawUnsafe('SET ROLE postgres'));
      await expectPermissionDenied(db.$executeRawUnsafe('SET SESSION AUTHORIZATION postgres'));
      const [row] = await db.$queryRawUnsafe<{ current_user: string }[]>('SELECT current_user');
      expect(row?.current_user).toBe(tenantA.dbRole);
    });
  });

  it("cannot UPDATE, DELETE or INSERT into B's schema; B's data is unchanged", async () => {
    const before = await bVehiclesAsOwner();
    const raw = `"${tenantB.schemaName}"."Vehicle"`;
    await withClient(tenantA, async ({ db }) => {
      await expectPermissionDenied(db.$executeRawUnsafe(`UPDATE ${raw} SET "odometerKm" = 999999, make = 'Hijacked'`));
      await expectPermissionDenied(db.$executeRawUnsafe(`DELETE FROM ${raw}`));
      await expectPermissionDenied(
        db.$executeRawUnsafe(`INSERT INTO ${raw} (id, plate, make, model, year, "updatedAt") VALUES ('${randomUUID()}', 'EVIL-1', 'M', 'M', 2020, now())`),
      );
      await expectPermissionDenied(db.$executeRawUnsafe(`CREATE TABLE "${tenantB.schemaName}".planted (id int)`));
      await expectPermissionDenied(db.$executeRawUnsafe(`DROP TABLE "${tenantB.schemaName}"."Driver"`));
    });
    expect(await bVehiclesAsOwner()).toEqual(before);
    const plates = await withClient(tenantB, ({ db }) => db.$queryRawUnsafe<{ plate: string; odometerKm: number }[]>('SELECT plate, "odometerKm" FROM "Vehicle" ORDER BY plate'));
    expect(plates).toEqual(B_PLATES.map((plate) => ({ plate, odometerKm: 100 })));
  });

  it('cannot create objects outside its own schema (new schemas, public)', async () => {
    await withClient(tenantA, async ({ db }) => {
      await expectPermissionDenied(db.$executeRawUnsafe(`CREATE SCHEMA "planted_${randomUUID().slice(0, 8)}"`));
      await expectPermissionDenied(db.$executeRawUnsafe('CREATE TABLE public.planted (id int)'));
      await expectPermissionDenied(db.$executeRawUnsafe(`CREATE FUNCTION public.planted() RETURNS int LANGUAGE sql AS 'SELECT 1'`));
    });
  });

  it("a client misconfigured with B's schema but A's role is still refused by the database", async () => {
    const misbound = { id: randomUUID(), schemaName: tenantB.schemaName, dbRole: tenantA.dbRole, cluster: tenantA.cluster, updatedAt: tenantA.updatedAt };
    const error = await withClient(misbound, ({ db }) => db.vehicle.findMany()).then(
      (rows) => new Error(`read ${JSON.stringify(rows)} from B`),
      (caught: unknown) => caught,
    );
    expect(postgresError(error)).toMatchObject({ code: '42501', message: expect.stringMatching(/permission denied/i) });
    app.server.services.tenantClients.forget(misbound.id);
  });
});
