import type { GraphQLClient } from '../support/graphql-request';
import { DatabaseInspector, shippedTenantMigrations, tenantMigrationsWith } from '../support/provisioning-inspector';
import { errorCode, expectErrors, startTestServer, uniqueSlug, type TenantFixture, type TestServer } from '../support/test-server';
import { graphql } from '../generated';
import type { MigrateMutation, MigrateMutationVariables } from '../generated/graphql';

/*
 * migrateTenants over GraphQL: a fleet of 12 tenants, a new migration rolled out by a second
 * instance (same platform database, migrations folder with one more migration), one tenant
 * deliberately broken on the way.
 */

const MIGRATE = graphql(`mutation Migrate($tenantIds: [ID!], $concurrency: Int, $force: Boolean, $dryRun: Boolean, $after: ID) {
  migrateTenants(tenantIds: $tenantIds, concurrency: $concurrency, force: $force, dryRun: $dryRun, after: $after) {
    targetVersion migrated upToDate failed skipped wouldMigrate dryRun resumeAfter durationMs
    results {
      tenantId status appliedMigrations pendingMigrations version error durationMs
      tenant { id slug status migrationVersion lastError }
    }
  }
}`);

/** Counts only: the server builds no per-tenant list for it. */
const MIGRATE_COUNTS = graphql(`mutation MigrateCounts($dryRun: Boolean, $after: ID) {
  migrateTenants(dryRun: $dryRun, after: $after) { wouldMigrate upToDate migrated dryRun resumeAfter }
}`);

type MigrateReport = MigrateMutation['migrateTenants'];
type MigrationResult = MigrateReport['results'][number];

const TENANT_COUNT = 12;
/** migrateTenants allows 10 calls a minute; this file makes more, and rate limits are tested elsewhere. */
const NO_FIELD_LIMITS = { RATE_LIMIT_ENABLED: 'false' };
const CURRENT = shippedTenantMigrations().at(-1) as string;
const NEW_MIGRATION = '29990101000000_add_vehicle_vin';

let app: TestServer;
let admin: GraphQLClient;
let db: DatabaseInspector;
let tenants: TenantFixture[];

beforeAll(async () => {
  app = await startTestServer({ env: NO_FIELD_LIMITS });
  admin = await app.admin();
  db = await DatabaseInspector.connect(app.databaseUrl);
  tenants = [];
  for (let index = 0; index < TENANT_COUNT; index += 1) tenants.push(await app.createTenant(uniqueSlug('mig')));
}, 120_000);

afterAll(async () => {
  await db?.close();
  await app?.close();
});

async function migrate(client: GraphQLClient, variables: MigrateMutationVariables = {}): Promise<MigrateReport> {
  return (await client.request(MIGRATE, variables)).migrateTenants;
}

const roleOf = (tenant: TenantFixture) => `fg_${app.server.installationId}_${tenant.slug.replaceAll('-', '_')}`;

function resultFor(report: MigrateReport, tenant: TenantFixture): MigrationResult {
  const result = report.results.find((candidate) => candidate.tenantId === tenant.id);
  if (!result) throw new Error(`no result for tenant ${tenant.slug}`);
  return result;
}

/** Finished `_prisma_migrations` rows of every tenant, by tenant id. */
async function migrationRowCounts(): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const tenant of tenants) counts[tenant.id] = (await db.migrationRows(tenant.schemaName)).length;
  return counts;
}

/**
 * Runs `work` while no tenant role may log in, and reports which roles could log in again
 * afterwards: touching a tenant (re-asserting its role, connecting as it) restores LOGIN or fails.
 */
async function withTenantLoginsDisabled<T>(work: () => Promise<T>): Promise<{ value: T; loginRestored: string[] }> {
  for (const tenant of tenants) await db.client.query(`ALTER ROLE "${roleOf(tenant)}" NOLOGIN`);
  try {
    const value = await work();
    const loginRestored: string[] = [];
    for (const tenant of tenants) if ((await db.role(roleOf(tenant)))?.rolcanlogin) loginRestored.push(tenant.id);
    return { value, loginRestored };
  } finally {
    for (const tenant of tenants) await db.client.query(`ALTER ROLE "${roleOf(tenant)}" LOGIN`);
  }
}

describe('migrateTenants', () => {
  it('finds a fleet at the newest version UP_TO_DATE without touching any tenant schema', async () => {
    const rowsBefore = await migrationRowCounts();
    const { value: report, loginRestored } = await withTenantLoginsDisabled(() => migrate(admin));
    expect(loginRestored).toEqual([]);

    expect(report.targetVersion).toBe(CURRENT);
    expect(report).toMatchObject({ migrated: 0, upToDate: TENANT_COUNT, failed: 0, skipped: 0 });
    expect(report.results).toHaveLength(TENANT_COUNT);
    expect(new Set(report.results.map((result) => result.tenantId))).toEqual(new Set(tenants.map((tenant) => tenant.id)));
    for (const result of report.results) {
      expect(result).toMatchObject({ status: 'UP_TO_DATE', appliedMigrations: [], version: CURRENT, error: null, durationMs: 0 });
      expect(result.tenant?.id).toBe(result.tenantId);
    }
    expect(await migrationRowCounts()).toEqual(rowsBefore);
  });

  it('does visit each listed schema with force: true, re-asserting its role (so the check above can fail)', async () => {
    const [first, second] = tenants as [TenantFixture, TenantFixture];
    const rowsBefore = await migrationRowCounts();
    const { value: forced, loginRestored } = await withTenantLoginsDisabled(() =>
      migrate(admin, { tenantIds: [first.id, second.id], force: true }),
    );
    expect(loginRestored.sort()).toEqual([first.id, second.id].sort());
    expect(forced).toMatchObject({ targetVersion: CURRENT, upToDate: 2, failed: 0, migrated: 0 });
    for (const result of forced.results) {
      expect(result).toMatchObject({ status: 'UP_TO_DATE', appliedMigrations: [], version: CURRENT, error: null });
      expect(result.tenant?.lastError).toBeNull();
    }
    expect(await migrationRowCounts()).toEqual(rowsBefore);
  });

  it('reports unknown tenant ids as SKIPPED and migrates only the listed ones', async () => {
    const known = tenants[2] as TenantFixture;
    const unknown = '01900000-0000-7000-8000-000000000000';
    const report = await migrate(admin, { tenantIds: [unknown, known.id, 'not-a-uuid', known.id] });
    expect(report.results).toHaveLength(3);
    expect(report).toMatchObject({ upToDate: 1, skipped: 2, failed: 0, migrated: 0 });
    expect(resultFor(report, known).status).toBe('UP_TO_DATE');
    for (const id of [unknown, 'not-a-uuid']) {
      const skipped = report.results.find((result) => result.tenantId === id);
      expect(skipped).toMatchObject({ status: 'SKIPPED', tenant: null, appliedMigrations: [] });
      expect(skipped?.error).toMatch(/not found/);
    }
  });

  it('gives each tenant one result however its id is spelled (UUIDs compare case-insensitively)', async () => {
    const known = tenants[4] as TenantFixture;
    const unknown = '01900000-0000-7000-8000-0000000000AB';
    const report = await migrate(admin, {
      tenantIds: [known.id.toUpperCase(), known.id, unknown, unknown.toLowerCase(), 'NOT-A-UUID', 'NOT-A-UUID', 'x\u0000'],
    });
    expect(report).toMatchObject({ upToDate: 1, skipped: 3, failed: 0, migrated: 0 });
    expect(report.results.map((result) => [result.tenantId, result.status])).toEqual([
      [known.id, 'UP_TO_DATE'],
      [unknown.toLowerCase(), 'SKIPPED'],
      ['NOT-A-UUID', 'SKIPPED'],
      ['x\u0000', 'SKIPPED'],
    ]);
    expect(resultFor(report, known).tenant?.id).toBe(known.id);
    for (const skipped of report.results.slice(1)) expect(skipped.error).toMatch(/not found/);
  });

  it('leaves out a tenant still PROVISIONING, and skips it when asked for by id', async () => {
    const stuck = tenants[3] as TenantFixture;
    await db.client.query(`UPDATE platform."Tenant" SET status = 'PROVISIONING' WHERE id = $1`, [stuck.id]);
    try {
      const all = await migrate(admin);
      expect(all.results.map((result) => result.tenantId)).not.toContain(stuck.id);
      expect(all.results).toHaveLength(TENANT_COUNT - 1);
      const byId = await migrate(admin, { tenantIds: [stuck.id] });
      expect(byId.results[0]).toMatchObject({ tenantId: stuck.id, status: 'SKIPPED' });
      expect(byId.results[0]?.error).toMatch(/PROVISIONING/);
    } finally {
      await db.client.query(`UPDATE platform."Tenant" SET status = 'ACTIVE' WHERE id = $1`, [stuck.id]);
    }
  });

  it.each([0, 33, -1])('refuses concurrency %i as BAD_USER_INPUT', async (concurrency) => {
    const { errors } = await expectErrors(migrate(admin, { concurrency }));
    expect(errors[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'concurrency' });
  });

  it('accepts the bounds 1 and 32', async () => {
    expect((await migrate(admin, { concurrency: 1 })).upToDate).toBe(TENANT_COUNT);
    expect((await migrate(admin, { concurrency: 32 })).upToDate).toBe(TENANT_COUNT);
  });

  it('is for platform admins only', async () => {
    const owner = (tenants[0] as TenantFixture).owner;
    expect(await errorCode(owner.request(MIGRATE, {}))).toBe('FORBIDDEN');
    expect(await errorCode(app.client().request(MIGRATE, {}))).toBe('UNAUTHENTICATED');
  });
});

describe('migrateTenants with a new migration', () => {
  let next: TestServer;
  let nextAdmin: GraphQLClient;
  let cleanup: () => void;
  let broken: TenantFixture;
  let suspended: TenantFixture;

  beforeAll(async () => {
    const migrations = tenantMigrationsWith({ [NEW_MIGRATION]: '-- AlterTable\nALTER TABLE "Vehicle" ADD COLUMN "vin" TEXT;\n' });
    cleanup = migrations.cleanup;
    next = await startTestServer({ tenantMigrationsDir: migrations.dir, databaseUrl: app.databaseUrl, env: NO_FIELD_LIMITS });
    nextAdmin = await next.admin();
    // In the middle of the id order, so the run has to carry on past it.
    broken = tenants[5] as TenantFixture;
    suspended = tenants[8] as TenantFixture;
  });

  afterAll(async () => {
    await next?.close();
    cleanup?.();
  });

  it('dry-runs: names per tenant the migration a run would apply, and changes no schema, _prisma_migrations row, platform row or role', async () => {
    const sorted = tenants.map((tenant) => tenant.id).sort();
    const rowsBefore = await migrationRowCounts();
    const objectsBefore = await Promise.all(tenants.map((tenant) => db.objectsIn(tenant.schemaName)));
    const platformBefore = await Promise.all(tenants.map((tenant) => db.tenantRow(tenant.slug)));

    // `force` in a dry run reads every schema but re-asserts no role (which would restore LOGIN).
    const { value: report, loginRestored } = await withTenantLoginsDisabled(() => migrate(nextAdmin, { dryRun: true, force: true, concurrency: 4 }));
    expect(loginRestored).toEqual([]);
    expect(report).toMatchObject({ targetVersion: NEW_MIGRATION, dryRun: true, wouldMigrate: TENANT_COUNT, migrated: 0, upToDate: 0, failed: 0, skipped: 0, resumeAfter: sorted.at(-1) });
    expect(report.results.map((result) => result.tenantId)).toEqual(sorted);
    for (const result of report.results) {
      expect(result).toMatchObject({ status: 'WOULD_MIGRATE', pendingMigrations: [NEW_MIGRATION], appliedMigrations: [], version: CURRENT, error: null });
    }
    // Without force too: the platform rows say CURRENT, behind the target, so each schema is read.
    expect(await migrate(nextAdmin, { dryRun: true })).toMatchObject({ wouldMigrate: TENANT_COUNT, migrated: 0 });

    expect(await migrationRowCounts()).toEqual(rowsBefore);
    expect(await Promise.all(tenants.map((tenant) => db.objectsIn(tenant.schemaName)))).toEqual(objectsBefore);
    expect(await Promise.all(tenants.map((tenant) => db.tenantRow(tenant.slug)))).toEqual(platformBefore);
    for (const tenant of tenants) expect(await db.columnExists(tenant.schemaName, 'Vehicle', 'vin')).toBe(false);
  });

  it('resumes with `after` (a dry run here): only the tenants after it, in id order; counts alone without the list', async () => {
    const sorted = tenants.map((tenant) => tenant.id).sort();
    const resumed = await migrate(nextAdmin, { dryRun: true, after: sorted[5] });
    expect(resumed.results.map((result) => result.tenantId)).toEqual(sorted.slice(6));
    expect(resumed).toMatchObject({ wouldMigrate: TENANT_COUNT - 6, resumeAfter: sorted.at(-1) });
    // Past the last tenant: nothing to do, and resumeAfter stays where it was.
    expect(await migrate(nextAdmin, { dryRun: true, after: sorted.at(-1) })).toMatchObject({ results: [], wouldMigrate: 0, resumeAfter: sorted.at(-1) });
    // A resume point that is no tenant id is refused, not read as 'from the start'.
    for (const after of ['garbage', '', `${sorted[5]}x`]) {
      const { errors } = await expectErrors(migrate(nextAdmin, { dryRun: true, after }));
      expect(errors.map((error) => [error.extensions.code, error.extensions.field])).toEqual([['BAD_USER_INPUT', 'after']]);
    }
    // A schema gone missing is reported FAILED, as the real run would find it, not as 'would create it all'.
    const lost = tenants[7] as TenantFixture;
    await db.client.query(`ALTER SCHEMA "${lost.schemaName}" RENAME TO "${lost.schemaName}_away"`);
    try {
      const missing = await migrate(nextAdmin, { dryRun: true, tenantIds: [lost.id, (tenants[6] as TenantFixture).id] });
      expect(missing).toMatchObject({ failed: 1, wouldMigrate: 1 });
      expect(resultFor(missing, lost)).toMatchObject({ status: 'FAILED', error: 'the tenant schema is missing', pendingMigrations: [] });
    } finally {
      await db.client.query(`ALTER SCHEMA "${lost.schemaName}_away" RENAME TO "${lost.schemaName}"`);
    }
    expect((await nextAdmin.request(MIGRATE_COUNTS, { dryRun: true, after: sorted[9] })).migrateTenants).toEqual({
      wouldMigrate: 2,
      upToDate: 0,
      migrated: 0,
      dryRun: true,
      resumeAfter: sorted.at(-1),
    });
  });

  it('migrates every tenant but a broken one, which FAILS with a reason that is not SQL', async () => {
    // Break one tenant: a column in the way of the new migration.
    await db.client.query(`ALTER TABLE "${broken.schemaName}"."Vehicle" ADD COLUMN "vin" TEXT`);
    // A suspended tenant is still migrated.
    await admin.request(graphql(`mutation MigrateTenantsSuspendTenant($id: ID!) { suspendTenant(id: $id) { tenant { id } } }`), { id: suspended.id });

    const report = await migrate(nextAdmin, { concurrency: 4 });
    expect(report.targetVersion).toBe(NEW_MIGRATION);
    expect(report).toMatchObject({ migrated: TENANT_COUNT - 1, failed: 1, upToDate: 0, skipped: 0 });
    expect(report.results).toHaveLength(TENANT_COUNT);

    const failed = resultFor(report, broken);
    expect(failed).toMatchObject({ status: 'FAILED', appliedMigrations: [], version: CURRENT });
    expect(failed.error).toContain(NEW_MIGRATION);
    expect(failed.error).not.toMatch(/ALTER|ADD COLUMN|"Vehicle"|TEXT/);
    expect(failed.tenant).toMatchObject({ status: 'ACTIVE', migrationVersion: CURRENT, lastError: `migrate: ${failed.error}` });

    for (const tenant of tenants.filter((candidate) => candidate !== broken)) {
      const result = resultFor(report, tenant);
      expect(result).toMatchObject({ status: 'MIGRATED', appliedMigrations: [NEW_MIGRATION], version: NEW_MIGRATION, error: null });
      expect(result.tenant).toMatchObject({ migrationVersion: NEW_MIGRATION, lastError: null });
      expect(await db.columnExists(tenant.schemaName, 'Vehicle', 'vin')).toBe(true);
      const rows = await db.migrationRows(tenant.schemaName);
      expect(rows.at(-1)).toMatchObject({ migration_name: NEW_MIGRATION, rolled_back_at: null, applied_steps_count: 1 });
      expect(rows.at(-1)?.finished_at).toBeInstanceOf(Date);
    }
    expect(resultFor(report, suspended).tenant?.status).toBe('SUSPENDED');

    // The broken tenant's schema holds no trace of the new migration having applied.
    const brokenRows = await db.migrationRows(broken.schemaName);
    expect(brokenRows.filter((row) => row.finished_at !== null).map((row) => row.migration_name)).toEqual(shippedTenantMigrations());
    expect(await db.tenantRow(broken.slug)).toMatchObject({ status: 'ACTIVE', migrationVersion: CURRENT, lastError: `migrate: ${failed.error}` });
  });

  it('on the next run finds the others UP_TO_DATE and the broken one FAILED again', async () => {
    const report = await migrate(nextAdmin, { concurrency: 4 });
    expect(report).toMatchObject({ targetVersion: NEW_MIGRATION, migrated: 0, upToDate: TENANT_COUNT - 1, failed: 1, skipped: 0 });
    expect(resultFor(report, broken).status).toBe('FAILED');
    for (const tenant of tenants.filter((candidate) => candidate !== broken)) {
      expect(resultFor(report, tenant)).toMatchObject({ status: 'UP_TO_DATE', durationMs: 0, appliedMigrations: [] });
    }
  });

  it('migrates the broken tenant once it is fixed, by id, and clears its lastError', async () => {
    await db.client.query(`ALTER TABLE "${broken.schemaName}"."Vehicle" DROP COLUMN "vin"`);
    const report = await migrate(nextAdmin, { tenantIds: [broken.id] });
    expect(report.results).toHaveLength(1);
    expect(report.results[0]).toMatchObject({
      tenantId: broken.id,
      status: 'MIGRATED',
      appliedMigrations: [NEW_MIGRATION],
      version: NEW_MIGRATION,
      error: null,
      tenant: { migrationVersion: NEW_MIGRATION, lastError: null },
    });
    expect(await db.columnExists(broken.schemaName, 'Vehicle', 'vin')).toBe(true);

    const all = await migrate(nextAdmin);
    expect(all).toMatchObject({ upToDate: TENANT_COUNT, failed: 0, migrated: 0 });
  });

  it('lets an instance of the older release find the fleet UP_TO_DATE without moving versions back', async () => {
    const tenant = tenants[0] as TenantFixture;
    // Versions differ from the old instance's newest, so it asks each schema: all are ahead of it.
    const report = await migrate(admin, { tenantIds: [tenant.id, broken.id] });
    expect(report.targetVersion).toBe(CURRENT);
    expect(report).toMatchObject({ upToDate: 2, failed: 0, migrated: 0 });
    for (const result of report.results) {
      expect(result).toMatchObject({ status: 'UP_TO_DATE', appliedMigrations: [], version: NEW_MIGRATION });
    }
    expect((await db.tenantRow(tenant.slug))?.migrationVersion).toBe(NEW_MIGRATION);
    expect((await migrate(nextAdmin, { tenantIds: [tenant.id] })).results[0]).toMatchObject({ status: 'UP_TO_DATE', durationMs: 0 });
  });

  it('keeps serving the migrated tenants, suspended ones once reactivated', async () => {
    await admin.request(graphql(`mutation MigrateTenantsReactivateTenant($id: ID!) { reactivateTenant(id: $id) { tenant { id } } }`), { id: suspended.id });
    for (const tenant of [broken, suspended, tenants[0] as TenantFixture]) {
      expect(await tenant.owner.request(graphql(`query MigrateTenantsVehicles { vehicles { totalCount } }`))).toEqual({ vehicles: { totalCount: 0 } });
    }
  });

  it("writes tenant.migrated, by the platform admin who asked, into each migrated tenant's audit log; the broken one's only for the run that migrated it", async () => {
    const migratedOf = async (tenant: TenantFixture) =>
      (await tenant.owner.request(graphql(`query MigrateTenantsAudit { auditEvents(first: 5, filter: { action: "tenant.migrated" }) { edges { node { actorKind metadata } } } }`))).auditEvents.edges.map(
        (edge) => edge.node,
      );
    expect(await migratedOf(tenants[0] as TenantFixture)).toEqual([{ actorKind: 'PLATFORM_ADMIN', metadata: { applied: [NEW_MIGRATION], version: NEW_MIGRATION } }]);
    // Its failed runs wrote nothing; the run after the fix, one entry.
    expect(await migratedOf(broken)).toHaveLength(1);
  });
});
