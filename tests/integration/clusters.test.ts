import pg from 'pg';
import { JOBS_APPLICATION_NAME } from '../../src/jobs/job-queue';
import { tenantConnectionConfig } from '../../src/tenancy/tenant-credentials';
import { graphql } from '../generated';
import type { GraphQLClient } from '../support/graphql-request';
import { startPostgresProxy, type PostgresProxy, type RoundTrip } from '../support/postgres-proxy';
import { bearer, eventually, postJson, send } from '../support/raw-graphql';
import { openTestPool } from '../support/test-database';
import { expectErrors, NO_BACKGROUND_JOBS, SECOND_CLUSTER, startTestServer, uniqueSlug, type TenantFixture, type TestServer } from '../support/test-server';

/*
 * Tenants on two PostgreSQL servers: the test run's own and a second one (embedded, started by
 * global-setup), as clusters `main` and `east`. Placement, isolation across them, fleet-wide
 * migrations over both, and moveTenant: under concurrent reads and writes with nothing lost,
 * and killed midway (through a wire-protocol proxy, as crash-recovery does) then resumed.
 */

const CLUSTERS = graphql(`query ClustersList { databaseClusters { name state tenantCount reachable } }`);
const TENANT = graphql(`query ClustersTenant($slug: String!) {
  tenant(slug: $slug) { id cluster readOnlySince move { fromCluster toCluster phase tables { name rows checksum } } }
}`);
const CREATE_TENANT = graphql(`mutation ClustersCreateTenant($input: CreateTenantInput!) { createTenant(input: $input) { tenant { id cluster } } }`);
const MIGRATE = graphql(`mutation ClustersMigrate { migrateTenants(force: true) { failed results { tenant { cluster } status } } }`);
const MOVE = graphql(`mutation ClustersMove($id: ID!, $to: String!) {
  moveTenant(id: $id, toCluster: $to) { readOnlyMs durationMs tenant { cluster readOnlySince } move { phase fromCluster toCluster tables { name rows checksum } } }
}`);
const CONFIRM = graphql(`mutation ClustersConfirm($id: ID!) { confirmTenantMove(id: $id) { tenant { cluster move { phase } } } }`);
const CANCEL = graphql(`mutation ClustersCancel($id: ID!) { cancelTenantMove(id: $id) { tenant { cluster readOnlySince move { phase } } } }`);
const CREATE_VEHICLE = graphql(`mutation ClustersCreateVehicle($input: CreateVehicleInput!) { createVehicle(input: $input) { vehicle { id plate } } }`);
const VEHICLES = graphql(`query ClustersVehicles { vehicles(first: 100) { totalCount edges { node { id plate } } } }`);
const NODE = graphql(`query ClustersNode($id: ID!) { node(id: $id) { id } }`);

/**
 * This file creates tenant after tenant on two instances, and the test PostgreSQL's 100
 * connections are shared with the suite running beside it: idle tenant connections go soon.
 */
const FEW_CONNECTIONS = { TENANT_CONNECTION_BUDGET: '12', TENANT_IDLE_TIMEOUT_MS: '1000', PLATFORM_POOL_MAX: '6' };

let app: TestServer;
let admin: GraphQLClient;
/** The second server's test database, reached directly (as its superuser). */
let east: pg.Pool;

beforeAll(async () => {
  app = await startTestServer({ secondCluster: true, env: { TENANT_MOVE_DRAIN_MS: '2000', ...FEW_CONNECTIONS } });
  admin = await app.admin();
  east = openTestPool({ connectionString: app.secondClusterUrl as string, max: 2 });
}, 60_000);

afterAll(async () => {
  await east?.end();
  await app?.close();
});

async function tenantState(slug: string) {
  const { tenant } = await admin.request(TENANT, { slug });
  if (!tenant) throw new Error(`no tenant ${slug}`);
  return tenant;
}

async function schemaOn(pool: pg.Pool, schema: string): Promise<boolean> {
  return (await pool.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema])).rowCount === 1;
}

async function addVehicles(tenant: TenantFixture, plates: string[]): Promise<void> {
  for (const plate of plates) await tenant.owner.request(CREATE_VEHICLE, { input: { plate, make: 'Volvo', model: 'FH', year: 2022 } });
}

async function platesOf(tenant: TenantFixture): Promise<string[]> {
  const { vehicles } = await tenant.owner.request(VEHICLES);
  return vehicles.edges.map((edge) => edge.node.plate).sort();
}

describe('placement', () => {
  it('lists both clusters, places a new tenant on the open cluster with the fewest tenants or the one named, and refuses a cluster that is not there', async () => {
    const before = await admin.request(CLUSTERS);
    expect(before.databaseClusters.map(({ name, state, reachable }) => ({ name, state, reachable }))).toEqual([
      { name: 'main', state: 'OPEN', reachable: true },
      { name: SECOND_CLUSTER, state: 'OPEN', reachable: true },
    ]);
    const counts = () => admin.request(CLUSTERS).then((result) => Object.fromEntries(result.databaseClusters.map((cluster) => [cluster.name, cluster.tenantCount])));
    const start = await counts();
    const first = await app.createTenant();
    const second = await app.createTenant();
    const placed = [(await tenantState(first.slug)).cluster, (await tenantState(second.slug)).cluster];
    // Whichever had fewer got the first; then the other (or the same, if it still had fewer).
    const expectedFirst = (start.main ?? 0) <= (start[SECOND_CLUSTER] ?? 0) ? 'main' : SECOND_CLUSTER;
    expect(placed[0]).toBe(expectedFirst);
    const after = await counts();
    expect(Math.abs((after.main ?? 0) - (after[SECOND_CLUSTER] ?? 0))).toBeLessThanOrEqual(Math.max(1, Math.abs((start.main ?? 0) - (start[SECOND_CLUSTER] ?? 0))));
    const named = await app.createTenant(uniqueSlug(), 'STANDARD', SECOND_CLUSTER);
    expect((await tenantState(named.slug)).cluster).toBe(SECOND_CLUSTER);
    // The schema is on the second server, and not on the first.
    expect(await schemaOn(east, named.schemaName)).toBe(true);
    const main = openTestPool({ connectionString: app.databaseUrl, max: 1 });
    try {
      expect(await schemaOn(main, named.schemaName)).toBe(false);
    } finally {
      await main.end();
    }
    const slug = uniqueSlug();
    const refused = await expectErrors(
      admin.request(CREATE_TENANT, { input: { slug, name: 'Nowhere', plan: 'STANDARD', cluster: 'nowhere', owner: { email: `o@${slug}.test`, name: 'O', password: 'owner-password-long' } } }),
    );
    expect(refused.errors[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'cluster' });
  });

  it('a draining cluster takes no new tenant (placed or named) and no move, and keeps serving its own; with none open, createTenant answers 503', async () => {
    const onEast = await app.createTenant(uniqueSlug(), 'STANDARD', SECOND_CLUSTER);
    await addVehicles(onEast, ['DRAIN-1']);
    const onMain = await app.createTenant(uniqueSlug(), 'STANDARD', 'main');
    // A second instance on the same databases, configured with the cluster draining (and, in
    // the second, main closed too): what an operator does to empty a server.
    const draining = await startTestServer({
      databaseUrl: app.databaseUrl,
      secondCluster: app.secondClusterUrl as string,
      env: { TENANT_CLUSTER_STATES: `${SECOND_CLUSTER}=draining`, ...FEW_CONNECTIONS, ...NO_BACKGROUND_JOBS },
    });
    try {
      const drainingAdmin = await draining.admin();
      const states = (await drainingAdmin.request(CLUSTERS)).databaseClusters.map(({ name, state }) => ({ name, state }));
      expect(states).toEqual([
        { name: 'main', state: 'OPEN' },
        { name: SECOND_CLUSTER, state: 'DRAINING' },
      ]);
      // Whatever the counts, every new tenant goes to the one open cluster.
      for (let i = 0; i < 3; i += 1) {
        const tenant = await draining.createTenant();
        expect((await drainingAdmin.request(TENANT, { slug: tenant.slug })).tenant?.cluster).toBe('main');
      }
      const slug = uniqueSlug();
      const named = await expectErrors(
        drainingAdmin.request(CREATE_TENANT, { input: { slug, name: 'Drained', plan: 'STANDARD', cluster: SECOND_CLUSTER, owner: { email: `o@${slug}.test`, name: 'O', password: 'owner-password-long' } } }),
      );
      expect(named.errors[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'cluster' });
      expect((await drainingAdmin.request(TENANT, { slug })).tenant).toBeNull();
      const move = await expectErrors(drainingAdmin.request(MOVE, { id: onMain.id, to: SECOND_CLUSTER }));
      expect(move.errors[0]?.extensions.code).toBe('BAD_USER_INPUT');
      expect((await tenantState(onMain.slug)).cluster).toBe('main');
      // The tenants already there are served as before, writes included.
      const served = draining.bearer(onEast.ownerToken);
      await served.request(CREATE_VEHICLE, { input: { plate: 'DRAIN-2', make: 'Volvo', model: 'FH', year: 2022 } });
      expect((await served.request(VEHICLES)).vehicles.edges.map((edge) => edge.node.plate).sort()).toEqual(['DRAIN-1', 'DRAIN-2']);
    } finally {
      await draining.close();
    }

    const noneOpen = await startTestServer({
      databaseUrl: app.databaseUrl,
      secondCluster: app.secondClusterUrl as string,
      env: { TENANT_CLUSTER_STATES: `main=closed,${SECOND_CLUSTER}=draining`, ...FEW_CONNECTIONS, ...NO_BACKGROUND_JOBS },
    });
    try {
      const slug = uniqueSlug();
      const refused = await expectErrors(
        (await noneOpen.admin()).request(CREATE_TENANT, { input: { slug, name: 'Nowhere open', plan: 'STANDARD', owner: { email: `o@${slug}.test`, name: 'O', password: 'owner-password-long' } } }),
      );
      expect(refused.errors[0]?.extensions).toMatchObject({ code: 'SERVICE_UNAVAILABLE', retryAfter: 60 });
      expect((await admin.request(TENANT, { slug })).tenant).toBeNull();
    } finally {
      await noneOpen.close();
    }
  }, 60_000);

  it('reports each cluster in /readyz and /metrics', async () => {
    await app.createTenant(uniqueSlug(), 'STANDARD', SECOND_CLUSTER);
    const ready = await send<{ status: string; checks: Record<string, string> }>(app.url.replace(/\/graphql$/, '/readyz'));
    expect(ready.status).toBe(200);
    expect(ready.body.checks).toMatchObject({ postgres: 'ok', [`cluster:${SECOND_CLUSTER}`]: 'ok' });
    const metrics = await send(app.url.replace(/\/graphql$/, '/metrics'));
    const text = metrics.text;
    expect(text).toMatch(new RegExp(`fleet_tenant_connection_budget\\{cluster="${SECOND_CLUSTER}"\\} \\d+`));
    const schemas = Number(new RegExp(`fleet_catalog_tenant_schemas\\{cluster="${SECOND_CLUSTER}"\\} (\\d+)`).exec(text)?.[1]);
    const placedThere = (await admin.request(CLUSTERS)).databaseClusters.find((cluster) => cluster.name === SECOND_CLUSTER)?.tenantCount;
    expect(schemas).toBe(placedThere);
  });
});

describe('isolation across clusters', () => {
  let a: TenantFixture;
  let b: TenantFixture;
  let bVehicleId: string;

  beforeAll(async () => {
    a = await app.createTenant(uniqueSlug('a'), 'STANDARD', 'main');
    b = await app.createTenant(uniqueSlug('b'), 'STANDARD', SECOND_CLUSTER);
    await addVehicles(a, ['A-ONE']);
    const created = await b.owner.request(CREATE_VEHICLE, { input: { plate: 'B-ONE', make: 'MAN', model: 'TGX', year: 2021 } });
    bVehicleId = created.createVehicle.vehicle.id;
  });

  it("A's credentials read nothing of B's on the other cluster, and B's data is unchanged", async () => {
    expect((await a.owner.request(NODE, { id: bVehicleId })).node).toBeNull();
    expect(await platesOf(a)).toEqual(['A-ONE']);
    const forged = await postJson(app.url, { query: '{ vehicles(first: 10) { edges { node { plate } } } }' }, { ...bearer(a.ownerToken), 'x-tenant': b.slug });
    expect(JSON.stringify(forged.body)).not.toContain('B-ONE');
    expect(await platesOf(b)).toEqual(['B-ONE']);
  });

  it("A's database role does not exist on B's cluster, and B's role there reaches only B's schema", async () => {
    const installation = app.server.installationId;
    const secret = 'test-jwt-secret-0123456789abcdef-0123456789';
    const roleOf = (tenant: TenantFixture) => `fg_${installation}_${tenant.slug.replaceAll('-', '_')}`;
    const asA = new pg.Client(tenantConnectionConfig(app.secondClusterUrl as string, roleOf(a), secret));
    await expect(asA.connect()).rejects.toMatchObject({ code: '28P01' });
    const asB = new pg.Client(tenantConnectionConfig(app.secondClusterUrl as string, roleOf(b), secret));
    await asB.connect();
    try {
      expect((await asB.query('SELECT current_schema() AS schema')).rows[0]).toEqual({ schema: b.schemaName });
      await expect(asB.query(`SELECT 1 FROM platform."Tenant"`)).rejects.toMatchObject({ code: '42P01' });
    } finally {
      await asB.end();
    }
  });

  it('migrateTenants walks the tenants of both clusters', async () => {
    const { migrateTenants } = await admin.request(MIGRATE);
    expect(migrateTenants.failed).toBe(0);
    const clusters = new Set(migrateTenants.results.map((result) => result.tenant?.cluster));
    expect(clusters).toEqual(new Set(['main', SECOND_CLUSTER]));
    expect(migrateTenants.results.every((result) => result.status === 'MIGRATED' || result.status === 'UP_TO_DATE')).toBe(true);
  });
});

describe('tenant clients across a switch', () => {
  it('an older view of the tenant row (read just before a switch) does not take the client back to the other cluster; a newer one does', async () => {
    const tenant = await app.createTenant(uniqueSlug('v'), 'STANDARD', 'main');
    const { services } = app.server;
    const row = await services.directory.findById(tenant.id);
    if (!row) throw new Error('no row');
    const lease = (ref: typeof row) => {
      const leased = services.tenantClients.lease(ref);
      leased.release();
      return leased.db;
    };
    try {
      const current = lease(row);
      const staleElsewhere = { ...row, cluster: SECOND_CLUSTER, updatedAt: new Date(row.updatedAt.getTime() - 60_000) };
      // Compared as a boolean: a failed toBe would print two Prisma clients in full.
      expect(lease(staleElsewhere) === current).toBe(true);
      const newerElsewhere = { ...row, cluster: SECOND_CLUSTER, updatedAt: new Date(row.updatedAt.getTime() + 60_000) };
      expect(lease(newerElsewhere) === current).toBe(false);
    } finally {
      services.tenantClients.forget(tenant.id);
    }
    expect(await platesOf(tenant)).toEqual([]);
  });
});

describe('lifecycle on the other cluster', () => {
  it("a deleted tenant's purge drops its schema and role on its own cluster", async () => {
    const tenant = await app.createTenant(uniqueSlug('gone'), 'STANDARD', SECOND_CLUSTER);
    const role = `fg_${app.server.installationId}_${tenant.slug.replaceAll('-', '_')}`;
    const roleThere = async () => (await east.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [role])).rowCount;
    expect(await roleThere()).toBe(1);
    await admin.request(graphql(`mutation ClustersDelete($id: ID!) { deleteTenant(id: $id) { tenant { status } } }`), { id: tenant.id });
    await app.server.services.platform.pool.query(`UPDATE platform."Tenant" SET "purgeAfter" = now() - interval '1 minute' WHERE "id" = $1`, [tenant.id]);
    await admin.request(graphql(`mutation ClustersPurge($slug: String!) { purgeTenant(slug: $slug) { slug } }`), { slug: tenant.slug });
    expect(await schemaOn(east, tenant.schemaName)).toBe(false);
    expect(await roleThere()).toBe(0);
  });
});

describe('moveTenant', () => {
  it('moves a tenant under concurrent reads and writes: every acknowledged write arrives, no read fails, refused writes say TENANT_READ_ONLY', async () => {
    const tenant = await app.createTenant(uniqueSlug('m'), 'STANDARD', 'main');
    await addVehicles(tenant, ['BEFORE-1', 'BEFORE-2', 'BEFORE-3']);
    let running = true;
    const acknowledged: string[] = [];
    const refusedCodes: string[] = [];
    const readFailures: string[] = [];
    let reads = 0;
    const writer = (async () => {
      for (let n = 0; running; n += 1) {
        const plate = `DURING-${n}`;
        const response = await postJson(app.url, { query: 'mutation($input: CreateVehicleInput!) { createVehicle(input: $input) { vehicle { plate } } }', variables: { input: { plate, make: 'DAF', model: 'XF', year: 2020 } } }, bearer(tenant.ownerToken));
        const code = response.body.errors?.[0]?.extensions?.code;
        if (code) refusedCodes.push(String(code));
        else acknowledged.push(plate);
      }
    })();
    const reader = (async () => {
      while (running) {
        const response = await postJson(app.url, { query: '{ vehicles(first: 5) { totalCount } }' }, bearer(tenant.ownerToken));
        reads += 1;
        if (response.body.errors) readFailures.push(JSON.stringify(response.body.errors[0]?.extensions));
      }
    })();
    let moved;
    try {
      await new Promise((resolve) => setTimeout(resolve, 300));
      moved = await admin.request(MOVE, { id: tenant.id, to: SECOND_CLUSTER });
      await new Promise((resolve) => setTimeout(resolve, 300));
    } finally {
      running = false;
      await Promise.all([writer, reader]);
    }
    const { moveTenant } = moved;

    expect(moveTenant.tenant).toEqual({ cluster: SECOND_CLUSTER, readOnlySince: null });
    expect(moveTenant.move).toMatchObject({ phase: 'SWITCHED', fromCluster: 'main', toCluster: SECOND_CLUSTER });
    expect(readFailures).toEqual([]);
    expect(reads).toBeGreaterThan(5);
    expect(new Set(refusedCodes)).toEqual(new Set(refusedCodes.length ? ['TENANT_READ_ONLY'] : []));
    const plates = await platesOf(tenant);
    for (const plate of ['BEFORE-1', 'BEFORE-2', 'BEFORE-3', ...acknowledged]) expect(plates).toContain(plate);
    expect(acknowledged.length).toBeGreaterThan(0);
    // Verified per table; the rows the copy counted are on the second server.
    const vehicleTable = moveTenant.move.tables.find((table) => table.name === 'Vehicle');
    expect(vehicleTable?.checksum).toMatch(/^[0-9a-f]{32}$/);
    const copiedVehicles = Number((await east.query(`SELECT count(*) AS n FROM "${tenant.schemaName}"."Vehicle"`)).rows[0].n);
    expect(copiedVehicles).toBeGreaterThanOrEqual(vehicleTable?.rows ?? Infinity);
    // Writes go on, on the target.
    await addVehicles(tenant, ['AFTER-1']);
    expect(Number((await east.query(`SELECT count(*) AS n FROM "${tenant.schemaName}"."Vehicle" WHERE plate = 'AFTER-1'`)).rows[0].n)).toBe(1);
    // The source stays until confirmed, then goes.
    const main = openTestPool({ connectionString: app.databaseUrl, max: 1 });
    try {
      expect(await schemaOn(main, tenant.schemaName)).toBe(true);
      const confirmed = await admin.request(CONFIRM, { id: tenant.id });
      expect(confirmed.confirmTenantMove.tenant).toEqual({ cluster: SECOND_CLUSTER, move: null });
      expect(await schemaOn(main, tenant.schemaName)).toBe(false);
    } finally {
      await main.end();
    }
    expect(await platesOf(tenant)).toContain('AFTER-1');
  });

  it('goes back before confirming: moveTenant to the old cluster refills the kept copy from the new one; elsewhere, or cancel, says how', async () => {
    const tenant = await app.createTenant(uniqueSlug('back'), 'STANDARD', 'main');
    await addVehicles(tenant, ['BACK-1']);
    await admin.request(MOVE, { id: tenant.id, to: SECOND_CLUSTER });
    // Written on the new cluster after the switch: the old copy does not have it.
    await addVehicles(tenant, ['BACK-2']);
    const cancel = await expectErrors(admin.request(CANCEL, { id: tenant.id }));
    expect(cancel.errors[0]?.extensions.code).toBe('CONFLICT');
    expect(cancel.errors[0]?.message).toContain('moveTenant to "main" goes back');

    const { moveTenant } = await admin.request(MOVE, { id: tenant.id, to: 'main' });
    expect(moveTenant.tenant).toEqual({ cluster: 'main', readOnlySince: null });
    expect(moveTenant.move).toMatchObject({ phase: 'SWITCHED', fromCluster: SECOND_CLUSTER, toCluster: 'main' });
    expect(moveTenant.move.tables.find((table) => table.name === 'Vehicle')?.rows).toBe(2);
    expect(await platesOf(tenant)).toEqual(['BACK-1', 'BACK-2']);
    await addVehicles(tenant, ['BACK-3']);
    expect(await platesOf(tenant)).toEqual(['BACK-1', 'BACK-2', 'BACK-3']);
    // Confirming now drops the copy on the cluster it came back from.
    await admin.request(CONFIRM, { id: tenant.id });
    expect(await schemaOn(east, tenant.schemaName)).toBe(false);
    expect((await tenantState(tenant.slug)).move).toBeNull();

    // A tenant scheduled for deletion does not move.
    const leaving = await app.createTenant(uniqueSlug('leaving'), 'STANDARD', 'main');
    await admin.request(graphql(`mutation ClustersDeleteLeaving($id: ID!) { deleteTenant(id: $id) { tenant { status } } }`), { id: leaving.id });
    const refused = await expectErrors(admin.request(MOVE, { id: leaving.id, to: SECOND_CLUSTER }));
    expect(refused.errors[0]?.extensions.code).toBe('CONFLICT');
    expect((await tenantState(leaving.slug)).cluster).toBe('main');
  });

  it('refuses a move to the cluster the tenant is on, to one that does not exist, and confirm or cancel without a move', async () => {
    const tenant = await app.createTenant(uniqueSlug('r'), 'STANDARD', 'main');
    expect((await expectErrors(admin.request(MOVE, { id: tenant.id, to: 'main' }))).errors[0]?.extensions.code).toBe('BAD_USER_INPUT');
    expect((await expectErrors(admin.request(MOVE, { id: tenant.id, to: 'nowhere' }))).errors[0]?.extensions.code).toBe('BAD_USER_INPUT');
    expect((await expectErrors(admin.request(CONFIRM, { id: tenant.id }))).errors[0]?.extensions.code).toBe('CONFLICT');
    expect((await expectErrors(admin.request(CANCEL, { id: tenant.id }))).errors[0]?.extensions.code).toBe('CONFLICT');
    // A member is no platform admin.
    expect((await expectErrors(tenant.owner.request(MOVE, { id: tenant.id, to: SECOND_CLUSTER }))).errors[0]?.extensions.code).toBe('FORBIDDEN');
  });
});

describe('a move killed midway', () => {
  let mainProxy: PostgresProxy;
  let eastProxy: PostgresProxy;
  let crashing: TestServer;

  beforeAll(async () => {
    const direct = new URL(app.databaseUrl);
    mainProxy = await startPostgresProxy({ host: direct.hostname, port: Number(direct.port || 5432) });
    const second = new URL(app.secondClusterUrl as string);
    eastProxy = await startPostgresProxy({ host: second.hostname, port: Number(second.port) });
    crashing = await startTestServer({
      databaseUrl: mainProxy.urlFor(app.databaseUrl),
      secondCluster: eastProxy.urlFor(app.secondClusterUrl as string),
      env: {
        ...NO_BACKGROUND_JOBS,
        ...FEW_CONNECTIONS,
        EMAIL_CONCURRENCY: '0',
        TENANT_MOVE_DRAIN_MS: '500',
        // And a cluster nobody listens on.
        TENANT_CLUSTERS: `${SECOND_CLUSTER}=${eastProxy.urlFor(app.secondClusterUrl as string)},dead=postgres://postgres@127.0.0.1:1/nothing`,
      },
    });
  }, 60_000);

  afterAll(async () => {
    mainProxy?.recover();
    eastProxy?.recover();
    await crashing?.close();
    await mainProxy?.close();
    await eastProxy?.close();
  });

  const isWork = (trip: RoundTrip) => trip.application !== JOBS_APPLICATION_NAME && !/^\s*LISTEN\b/i.test(trip.statements.join(' '));

  /**
   * Runs the move on the crashing instance until `proxy` cuts it at the round trip `select`
   * picks: `killed`, its connections to both servers at once (the process died: nothing it
   * would do next reaches either); otherwise only that server's (an error the process lives
   * through).
   */
  async function moveCrashingAt(proxy: PostgresProxy, tenantId: string, select: (trip: RoundTrip) => boolean, killed = true): Promise<RoundTrip> {
    const crashingAdmin = await crashing.admin();
    const other = proxy === mainProxy ? eastProxy : mainProxy;
    const crashed = proxy.crashAt((trip) => {
      if (!isWork(trip) || !select(trip)) return false;
      if (killed) other.crashNow();
      return true;
    });
    await crashingAdmin.request(MOVE, { id: tenantId, to: SECOND_CLUSTER }).catch(() => undefined);
    expect(proxy.crashed).toBe(true);
    const trip = await crashed;
    for (const each of [proxy, other]) {
      each.disarm();
      each.recover();
    }
    return trip;
  }

  it('killed while copying: the tenant serves reads from its source and refuses writes with TENANT_READ_ONLY (503, Retry-After); moving again finishes it', async () => {
    const tenant = await app.createTenant(uniqueSlug('k'), 'STANDARD', 'main');
    await addVehicles(tenant, ['K-1', 'K-2']);
    const trip = await moveCrashingAt(eastProxy, tenant.id, (round) => round.statements.some((sql) => /COPY .*"Vehicle" FROM STDIN/.test(sql)));
    expect(trip.statements.join(' ')).toContain('"Vehicle"');
    const state = await tenantState(tenant.slug);
    expect(state).toMatchObject({ cluster: 'main', move: { phase: 'COPYING', toCluster: SECOND_CLUSTER } });
    expect(state.readOnlySince).not.toBeNull();
    // Nothing half-copied on the target: its one transaction rolled back.
    expect(Number((await east.query(`SELECT count(*) AS n FROM "${tenant.schemaName}"."Vehicle"`)).rows[0].n)).toBe(0);
    expect(await platesOf(tenant)).toEqual(['K-1', 'K-2']);
    const write = await postJson(app.url, { query: 'mutation { createVehicle(input: { plate: "K-3", make: "Iveco", model: "S-Way", year: 2023 }) { vehicle { id } } }' }, bearer(tenant.ownerToken));
    expect(write.status).toBe(503);
    expect(write.headers.get('retry-after')).toBe('5');
    expect(write.body.errors?.[0]?.extensions).toMatchObject({ code: 'TENANT_READ_ONLY', retryAfter: 5 });

    const { moveTenant } = await admin.request(MOVE, { id: tenant.id, to: SECOND_CLUSTER });
    expect(moveTenant.tenant.cluster).toBe(SECOND_CLUSTER);
    expect(moveTenant.move.tables.find((table) => table.name === 'Vehicle')?.rows).toBe(2);
    expect(await platesOf(tenant)).toEqual(['K-1', 'K-2']);
    await addVehicles(tenant, ['K-3']);
    expect(await platesOf(tenant)).toEqual(['K-1', 'K-2', 'K-3']);
    // The other instance (the one that died mid-move) heard of the switch too: it writes to the target.
    const viaOther = await postJson(crashing.url, { query: 'mutation { createVehicle(input: { plate: "K-4", make: "Iveco", model: "S-Way", year: 2023 }) { vehicle { plate } } }' }, bearer(tenant.ownerToken));
    expect(viaOther.body.errors).toBeUndefined();
    expect((await east.query(`SELECT plate FROM "${tenant.schemaName}"."Vehicle" ORDER BY plate`)).rows.map((row: { plate: string }) => row.plate)).toEqual(['K-1', 'K-2', 'K-3', 'K-4']);
  });

  it('killed right after the switch committed: the tenant serves from the target only, and moving again reports the switched move', async () => {
    const tenant = await app.createTenant(uniqueSlug('s'), 'STANDARD', 'main');
    await addVehicles(tenant, ['S-1']);
    let switching = false;
    await moveCrashingAt(mainProxy, tenant.id, (round) => {
      if (round.statements.some((sql) => /UPDATE "platform"\."Tenant" SET "cluster"/.test(sql))) switching = true;
      return switching && round.statements.some((sql) => /^\s*COMMIT/i.test(sql));
    });
    const state = await tenantState(tenant.slug);
    expect(state).toMatchObject({ cluster: SECOND_CLUSTER, readOnlySince: null, move: { phase: 'SWITCHED' } });
    await addVehicles(tenant, ['S-2']);
    expect(Number((await east.query(`SELECT count(*) AS n FROM "${tenant.schemaName}"."Vehicle"`)).rows[0].n)).toBe(2);
    const again = await admin.request(MOVE, { id: tenant.id, to: SECOND_CLUSTER });
    expect(again.moveTenant).toMatchObject({ readOnlyMs: 0, move: { phase: 'SWITCHED' } });
  });

  it('killed at boundaries spread over the move up to its switch, its connections to both servers cut at once: the tenant serves its rows from its source, and moving again finishes it', async () => {
    const crashingAdmin = await crashing.admin();
    // A dry run counts the move's round trips on both servers, in the order they completed.
    const dry = await app.createTenant(uniqueSlug('d'), 'STANDARD', 'main');
    await addVehicles(dry, ['D-1']);
    let total = 0;
    let beforeSwitch = 0;
    const count = (trip: RoundTrip) => {
      if (!isWork(trip)) return;
      total += 1;
      if (!beforeSwitch && trip.statements.some((sql) => /UPDATE "platform"\."TenantMove" SET "phase"/.test(sql))) beforeSwitch = total - 1;
    };
    const stops = [mainProxy.observe(count), eastProxy.observe(count)];
    await crashingAdmin.request(MOVE, { id: dry.id, to: SECOND_CLUSTER });
    for (const stop of stops) stop();
    expect(beforeSwitch).toBeGreaterThan(20);
    // Spread up to a few round trips before the switch (a run may take a few fewer than the dry
    // run: the drain polls as long as sessions take to end). The switch itself: the next test.
    const POINTS = 7;
    const last = beforeSwitch - 3;
    const boundaries = [...new Set(Array.from({ length: POINTS }, (_, index) => 1 + Math.floor((index * (last - 1)) / (POINTS - 1))))];
    const outcomes: string[] = [];
    for (const k of boundaries) {
      const tenant = await app.createTenant(uniqueSlug('p'), 'STANDARD', 'main');
      await addVehicles(tenant, ['P-1', 'P-2']);
      let seen = 0;
      const dies = (other: PostgresProxy) => (trip: RoundTrip) => {
        if (!isWork(trip) || ++seen !== k) return false;
        other.crashNow();
        return true;
      };
      void mainProxy.crashAt(dies(eastProxy));
      void eastProxy.crashAt(dies(mainProxy));
      await crashingAdmin.request(MOVE, { id: tenant.id, to: SECOND_CLUSTER }).catch(() => undefined);
      const died = mainProxy.crashed && eastProxy.crashed;
      for (const proxy of [mainProxy, eastProxy]) {
        proxy.disarm();
        proxy.recover();
      }
      expect(died).toBe(true);
      const state = await tenantState(tenant.slug);
      outcomes.push(`${k}:${state.cluster}/${state.move?.phase ?? 'none'}`);
      // Its source, read-only once the move row exists; nothing served from the target yet.
      expect(state.cluster).toBe('main');
      expect(state.move?.phase ?? 'COPYING').toBe('COPYING');
      expect(await platesOf(tenant)).toEqual(['P-1', 'P-2']);
      const { moveTenant } = await admin.request(MOVE, { id: tenant.id, to: SECOND_CLUSTER });
      expect(moveTenant.tenant).toEqual({ cluster: SECOND_CLUSTER, readOnlySince: null });
      await addVehicles(tenant, ['P-3']);
      expect((await east.query(`SELECT plate FROM "${tenant.schemaName}"."Vehicle" ORDER BY plate`)).rows.map((row: { plate: string }) => row.plate)).toEqual(['P-1', 'P-2', 'P-3']);
    }
    // Before and after the move row (and so the read-only window) began.
    expect(outcomes.some((outcome) => outcome.endsWith('/none'))).toBe(true);
    expect(outcomes.some((outcome) => outcome.endsWith('/COPYING'))).toBe(true);
  }, 120_000);

  it('the target lost while copying (an error the process lives through): the move undoes itself at once, writes on the source again', async () => {
    const tenant = await app.createTenant(uniqueSlug('u'), 'STANDARD', 'main');
    await addVehicles(tenant, ['U-1']);
    await moveCrashingAt(eastProxy, tenant.id, (round) => round.statements.some((sql) => /COPY .*"Vehicle" FROM STDIN/.test(sql)), false);
    expect(await tenantState(tenant.slug)).toMatchObject({ cluster: 'main', readOnlySince: null, move: null });
    await addVehicles(tenant, ['U-2']);
    expect(await platesOf(tenant)).toEqual(['U-1', 'U-2']);
    const { moveTenant } = await admin.request(MOVE, { id: tenant.id, to: SECOND_CLUSTER });
    expect(moveTenant.move.tables.find((table) => table.name === 'Vehicle')?.rows).toBe(2);
  });

  it('the target lost in the middle of a large table: the move answers, and the source connection is closed, not left in COPY OUT with its backend writing to nobody', async () => {
    const tenant = await app.createTenant(uniqueSlug('b'), 'STANDARD', 'main');
    const main = openTestPool({ connectionString: app.databaseUrl, max: 1 });
    try {
      // About 30 MB of COPY text in one table: far more than the sockets between the source and
      // the server hold, so the source is still sending when the target goes.
      await main.query(
        `INSERT INTO "${tenant.schemaName}"."Vehicle" ("id", "plate", "make", "model", "year", "updatedAt")
         SELECT gen_random_uuid(), 'BIG-' || n, repeat('m', 100), repeat('x', 100), 2020, now() FROM generate_series(1, 150000) n`,
      );
      const copyingFromSource = async () =>
        Number((await main.query(`SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'COPY %"Vehicle" TO STDOUT'`)).rows[0].n);
      // The target's COPY session ends mid-stream, as a server shut down or a connection cut would end it.
      const move = expectErrors(admin.request(MOVE, { id: tenant.id, to: SECOND_CLUSTER }));
      await eventually(
        async () => {
          const cut = await east.query(`SELECT pg_terminate_backend(pid) AS cut FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'COPY %"Vehicle" FROM STDIN'`);
          return cut.rows.some((row: { cut: boolean }) => row.cut) ? true : undefined;
        },
        20_000,
        5,
      );
      // Before, the move never answered (its ROLLBACK waited behind a COPY nobody read) and the
      // source's backend sat in ClientWrite.
      expect((await move).errors[0]?.extensions.code).toBeDefined();
      await eventually(async () => ((await copyingFromSource()) === 0 ? true : undefined), 5_000, 100);
      expect(await tenantState(tenant.slug)).toMatchObject({ cluster: 'main', readOnlySince: null, move: null });
    } finally {
      await main.end();
    }
  }, 60_000);

  it('places no tenant on a cluster that does not answer: passed over when the server picks, refused (503, no tenant row) when named', async () => {
    const crashingAdmin = await crashing.admin();
    const dead = (await crashingAdmin.request(CLUSTERS)).databaseClusters.find((cluster) => cluster.name === 'dead');
    // It holds the fewest tenants (none), so it would be picked first.
    expect(dead).toMatchObject({ state: 'OPEN', tenantCount: 0, reachable: false });
    const placed = await crashing.createTenant(uniqueSlug('p'));
    expect(['main', SECOND_CLUSTER]).toContain((await tenantState(placed.slug)).cluster);
    const slug = uniqueSlug('p');
    const refused = await expectErrors(
      crashingAdmin.request(CREATE_TENANT, { input: { slug, name: 'Dead', plan: 'STANDARD', cluster: 'dead', owner: { email: `o@${slug}.test`, name: 'O', password: 'owner-password-long' } } }),
    );
    expect(refused.errors[0]?.extensions).toMatchObject({ code: 'SERVICE_UNAVAILABLE', retryAfter: 30 });
    expect((await admin.request(TENANT, { slug })).tenant).toBeNull();
  });

  it('refuses at once, changing nothing, a move to a cluster that does not answer', async () => {
    const tenant = await app.createTenant(uniqueSlug('n'), 'STANDARD', 'main');
    const crashingAdmin = await crashing.admin();
    const refused = await expectErrors(crashingAdmin.request(MOVE, { id: tenant.id, to: 'dead' }));
    expect(refused.errors[0]?.extensions).toMatchObject({ code: 'SERVICE_UNAVAILABLE' });
    expect(JSON.stringify(refused.errors)).not.toMatch(/127\.0\.0\.1|postgres:/);
    expect(await tenantState(tenant.slug)).toMatchObject({ cluster: 'main', readOnlySince: null, move: null });
    await addVehicles(tenant, ['N-1']);
  });

  it('killed before the switch, then cancelled: the target is dropped and the tenant writes on its source again', async () => {
    const tenant = await app.createTenant(uniqueSlug('c'), 'STANDARD', 'main');
    await addVehicles(tenant, ['C-1']);
    await moveCrashingAt(eastProxy, tenant.id, (round) => round.statements.some((sql) => /COPY .*"Driver" FROM STDIN/.test(sql)));
    expect((await tenantState(tenant.slug)).readOnlySince).not.toBeNull();
    const { cancelTenantMove } = await admin.request(CANCEL, { id: tenant.id });
    expect(cancelTenantMove.tenant).toEqual({ cluster: 'main', readOnlySince: null, move: null });
    expect(await schemaOn(east, tenant.schemaName)).toBe(false);
    await addVehicles(tenant, ['C-2']);
    expect(await platesOf(tenant)).toEqual(['C-1', 'C-2']);
  });
});
