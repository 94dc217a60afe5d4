import { QUOTA_LOCK_CLASS, quotaLockKey } from '../../src/quotas/quota-guard';
import { PLAN_QUOTAS, QUOTAS, type Quota } from '../../src/rate-limiting/plan-quotas';
import { graphql } from '../generated';
import type { QuotaLimitInput } from '../generated/graphql';
import type { GraphQLClient } from '../support/graphql-request';
import { quoteIdentifier } from '../../src/tenancy/tenant-naming';
import { eventually, tenantSqlStatements } from '../support/raw-graphql';
import { withRowLocked } from '../support/row-lock';
import { expectErrors, startTestServer, uniqueSlug, type TenantFixture, type TestServer, NO_BACKGROUND_JOBS } from '../support/test-server';

/*
 * Plan quotas over HTTP, against the real PostgreSQL: what a tenant may hold (vehicles, drivers,
 * members, API keys, open trips) per plan; QUOTA_EXCEEDED naming the quota, its limit and the
 * usage; soft-deleted, revoked and closed rows holding no place; platform-admin overrides seen
 * by every instance at once; usage for tenant admins and platform admins; and concurrent creates
 * that cannot overshoot, each race replayed with all its requests queued at the quota's lock.
 */

const CREATE_VEHICLE = graphql(`mutation QuotaCreateVehicle($input: CreateVehicleInput!) { createVehicle(input: $input) { vehicle { id } } }`);
const DELETE_VEHICLE = graphql(`mutation QuotaDeleteVehicle($id: ID!) { deleteVehicle(id: $id) { deletedId } }`);
const RESTORE_VEHICLE = graphql(`mutation QuotaRestoreVehicle($id: ID!) { restoreVehicle(id: $id) { vehicle { id deletedAt } } }`);
const CREATE_DRIVER = graphql(`mutation QuotaCreateDriver($input: CreateDriverInput!) { createDriver(input: $input) { driver { id } } }`);
const DELETE_DRIVER = graphql(`mutation QuotaDeleteDriver($id: ID!) { deleteDriver(id: $id) { deletedId } }`);
const RESTORE_DRIVER = graphql(`mutation QuotaRestoreDriver($id: ID!) { restoreDriver(id: $id) { driver { id deletedAt } } }`);
const CREATE_TRIP = graphql(`mutation QuotaCreateTrip($input: CreateTripInput!) { createTrip(input: $input) { trip { id status } } }`);
const DELETE_TRIP = graphql(`mutation QuotaDeleteTrip($id: ID!) { deleteTrip(id: $id) { deletedId } }`);
const RESTORE_TRIP = graphql(`mutation QuotaRestoreTrip($id: ID!) { restoreTrip(id: $id) { trip { id status deletedAt } } }`);
const CANCEL_TRIP = graphql(`mutation QuotaCancelTrip($id: ID!) { transitionTrip(input: { id: $id, to: CANCELLED, reason: "quota test" }) { trip { status } } }`);
const ADD_MEMBER = graphql(`mutation QuotaAddMember($input: AddMemberInput!) { addMember(input: $input) { member { id } } }`);
const REMOVE_MEMBER = graphql(`mutation QuotaRemoveMember($userId: ID!) { removeMember(userId: $userId) { removedUserId } }`);
const INVITE = graphql(`mutation QuotaInvite($input: InviteMemberInput!) { inviteMember(input: $input) { invitation { id } } }`);
const INVITATIONS = graphql(`query QuotaInvitations { invitations { id email } }`);
const ACCEPT = graphql(`mutation QuotaAccept($input: AcceptInvitationInput!) { acceptInvitation(input: $input) { tenantSlug role } }`);
const JOIN = graphql(`mutation QuotaJoin($input: JoinByInvitationInput!) { joinByInvitation(input: $input) { accessToken } }`);
const CREATE_API_KEY = graphql(`mutation QuotaCreateApiKey($input: CreateApiKeyInput!) { createApiKey(input: $input) { apiKey { id } } }`);
const REVOKE_API_KEY = graphql(`mutation QuotaRevokeApiKey($id: ID!) { revokeApiKey(id: $id) { apiKey { id revokedAt } } }`);
const API_KEYS = graphql(`query QuotaApiKeys { apiKeys { id revokedAt } }`);
const TENANT_USAGE = graphql(`query QuotaTenantUsage { tenantUsage { plan quotas { quota usage limit overridden } } }`);
const USAGE_AS_ADMIN = graphql(`query QuotaUsageAsAdmin($slug: String!) { tenant(slug: $slug) { id usage { plan quotas { quota usage limit overridden } } } }`);
const SET_QUOTA = graphql(`mutation QuotaSetQuota($id: ID!, $quota: Quota!, $limit: QuotaLimitInput) {
  setTenantQuota(id: $id, quota: $quota, limit: $limit) { tenant { id usage { quotas { quota usage limit overridden } } } }
}`);

const UPDATE_TENANT = graphql(`mutation QuotaUpdateTenant($id: ID!, $plan: TenantPlan) { updateTenant(id: $id, input: { plan: $plan }) { tenant { plan } } }`);

let app: TestServer;
/** A second instance on the same database: overrides must reach it on its next request. */
let second: TestServer;
let counter = 0;
const unique = (prefix: string) => `${prefix}-${(counter += 1)}`;

beforeAll(async () => {
  // The races hold up to 8 transactions of one tenant at once, each on its own connection.
  const env = { TENANT_POOL_MAX: '12', PLATFORM_POOL_MAX: '20' };
  // The first instance runs no jobs, so its statement counter holds requests' statements only;
  // the second runs them all (emails too, into the first one's mailbox).
  app = await startTestServer({ env: { ...env, ...NO_BACKGROUND_JOBS } });
  second = await startTestServer({ databaseUrl: app.databaseUrl, env: { ...env, SMTP_URL: app.mail!.url } });
}, 60_000);

afterAll(async () => {
  await second?.close();
  await app?.close();
});

const createVehicle = async (client: GraphQLClient) =>
  (await client.request(CREATE_VEHICLE, { input: { plate: unique('QV'), make: 'DAF', model: 'XF', year: 2022 } })).createVehicle.vehicle.id;
const createDriver = async (client: GraphQLClient) =>
  (await client.request(CREATE_DRIVER, { input: { name: 'Quota Driver', licenseNumber: unique('QD') } })).createDriver.driver.id;
const createTrip = async (client: GraphQLClient) =>
  (await client.request(CREATE_TRIP, { input: { reference: unique('QT'), origin: 'Rotterdam', destination: 'Lyon' } })).createTrip.trip.id;
const createApiKey = async (client: GraphQLClient) => (await client.request(CREATE_API_KEY, { input: { name: unique('quota-key'), role: 'VIEWER' } })).createApiKey.apiKey.id;
const addMember = async (client: GraphQLClient, email = `${unique('member')}@quota.test`) =>
  (await client.request(ADD_MEMBER, { input: { email, name: 'Quota Member', password: 'quota-password-1', role: 'VIEWER' } })).addMember.member.id;

async function times<T>(count: number, create: () => Promise<T>): Promise<T[]> {
  const made: T[] = [];
  for (let i = 0; i < count; i += 1) made.push(await create());
  return made;
}

/** What the tenant holds, read straight from the database (an oracle independent of the API). */
async function heldInDatabase(tenant: TenantFixture): Promise<Record<Quota, number>> {
  const schema = quoteIdentifier(tenant.schemaName);
  const result = await app.server.services.platform.pool.query<Record<Quota, number>>(
    `SELECT
       (SELECT count(*)::int FROM ${schema}."Vehicle" WHERE "deletedAt" IS NULL) AS "VEHICLES",
       (SELECT count(*)::int FROM ${schema}."Driver" WHERE "deletedAt" IS NULL) AS "DRIVERS",
       (SELECT count(*)::int FROM platform."Membership" WHERE "tenantId" = $1) AS "MEMBERS",
       (SELECT count(*)::int FROM platform."ApiKey" WHERE "tenantId" = $1 AND "revokedAt" IS NULL) AS "API_KEYS",
       (SELECT count(*)::int FROM ${schema}."Trip" WHERE "deletedAt" IS NULL AND status NOT IN ('DELIVERED', 'CANCELLED')) AS "OPEN_TRIPS"`,
    [tenant.id],
  );
  return result.rows[0] as Record<Quota, number>;
}

/** The request fails with exactly one QUOTA_EXCEEDED, as a field error of an operation that ran (HTTP 200); its extensions. */
async function expectQuotaExceeded(request: Promise<unknown>, expected: { quota: Quota; limit: number; usage: number }): Promise<string> {
  const { errors, status } = await expectErrors(request);
  expect(errors).toHaveLength(1);
  const [error] = errors;
  expect(error?.extensions).toMatchObject({ code: 'QUOTA_EXCEEDED', status: 403, ...expected });
  expect(status).toBe(200);
  return error?.message ?? '';
}

async function setQuota(tenant: TenantFixture, quota: Quota, limit: QuotaLimitInput | null) {
  const admin = await app.admin();
  return (await admin.request(SET_QUOTA, { id: tenant.id, quota, limit })).setTenantQuota.tenant;
}

const usageOf = async (client: GraphQLClient) =>
  Object.fromEntries((await client.request(TENANT_USAGE)).tenantUsage.quotas.map(({ quota, ...rest }) => [quota, rest]));

describe('each quota refuses at its limit, naming the quota, its limit and the usage', () => {
  it('the plans: FREE small, STANDARD larger, ENTERPRISE unbounded', () => {
    expect(PLAN_QUOTAS).toEqual({
      FREE: { VEHICLES: 25, DRIVERS: 25, MEMBERS: 5, API_KEYS: 3, OPEN_TRIPS: 50 },
      STANDARD: { VEHICLES: 500, DRIVERS: 500, MEMBERS: 50, API_KEYS: 25, OPEN_TRIPS: 2_000 },
      ENTERPRISE: { VEHICLES: null, DRIVERS: null, MEMBERS: null, API_KEYS: null, OPEN_TRIPS: null },
    });
  });

  it('FREE: the 26th vehicle', async () => {
    const tenant = await app.createTenant(uniqueSlug('q-veh'), 'FREE');
    await times(25, () => createVehicle(tenant.owner));
    const message = await expectQuotaExceeded(createVehicle(tenant.owner), { quota: 'VEHICLES', limit: 25, usage: 25 });
    expect(message).toMatch(/at most 25 vehicles on the FREE plan and holds 25/);
    expect((await heldInDatabase(tenant)).VEHICLES).toBe(25);
  }, 60_000);

  it('FREE: the 26th driver', async () => {
    const tenant = await app.createTenant(uniqueSlug('q-drv'), 'FREE');
    await times(25, () => createDriver(tenant.owner));
    await expectQuotaExceeded(createDriver(tenant.owner), { quota: 'DRIVERS', limit: 25, usage: 25 });
    expect((await heldInDatabase(tenant)).DRIVERS).toBe(25);
  }, 60_000);

  it('FREE: the 51st open trip; a cancelled one makes room', async () => {
    const tenant = await app.createTenant(uniqueSlug('q-trip'), 'FREE');
    const trips = await times(50, () => createTrip(tenant.owner));
    await expectQuotaExceeded(createTrip(tenant.owner), { quota: 'OPEN_TRIPS', limit: 50, usage: 50 });
    expect((await heldInDatabase(tenant)).OPEN_TRIPS).toBe(50);
    await tenant.owner.request(CANCEL_TRIP, { id: trips[0]! });
    await createTrip(tenant.owner);
    await expectQuotaExceeded(createTrip(tenant.owner), { quota: 'OPEN_TRIPS', limit: 50, usage: 50 });
  }, 90_000);

  it('FREE: the 6th member (the owner is one); no account is created', async () => {
    const tenant = await app.createTenant(uniqueSlug('q-mem'), 'FREE');
    await times(4, () => addMember(tenant.owner));
    const email = `${unique('sixth')}@quota.test`;
    await expectQuotaExceeded(addMember(tenant.owner, email), { quota: 'MEMBERS', limit: 5, usage: 5 });
    expect((await heldInDatabase(tenant)).MEMBERS).toBe(5);
    const accounts = await app.server.services.platform.pool.query('SELECT 1 FROM platform."User" WHERE email = $1', [email]);
    expect(accounts.rowCount).toBe(0);
  });

  it('FREE: the 4th live API key; a revoked one makes room', async () => {
    const tenant = await app.createTenant(uniqueSlug('q-key'), 'FREE');
    const keys = await times(3, () => createApiKey(tenant.owner));
    await expectQuotaExceeded(createApiKey(tenant.owner), { quota: 'API_KEYS', limit: 3, usage: 3 });
    await tenant.owner.request(REVOKE_API_KEY, { id: keys[0]! });
    await createApiKey(tenant.owner);
    await expectQuotaExceeded(createApiKey(tenant.owner), { quota: 'API_KEYS', limit: 3, usage: 3 });
    expect((await tenant.owner.request(API_KEYS)).apiKeys).toHaveLength(4);
    expect((await heldInDatabase(tenant)).API_KEYS).toBe(3);
  });

  it('ENTERPRISE: no quota at all', async () => {
    const tenant = await app.createTenant(uniqueSlug('q-ent'), 'ENTERPRISE');
    await times(4, () => createApiKey(tenant.owner));
    const usage = await usageOf(tenant.owner);
    expect(Object.values(usage).map((entry) => entry.limit)).toEqual([null, null, null, null, null]);
    expect(usage.API_KEYS).toEqual({ usage: 4, limit: null, overridden: false });
  });
});

describe('invitations take a member place when they are accepted, not when sent', () => {
  it('accepting or joining a full tenant is refused and spends nothing; once a member leaves, the same code works', async () => {
    const full = await app.createTenant(uniqueSlug('q-inv'), 'FREE');
    const leaving = await times(4, () => addMember(full.owner));
    // Someone with an account elsewhere, signed in there.
    const elsewhere = await app.createTenant(uniqueSlug('q-home'));
    const email = `${unique('invitee')}@quota.test`;
    await addMember(elsewhere.owner, email);
    const invitee = app.bearer(await app.login(elsewhere.slug, email, 'quota-password-1'));

    await full.owner.request(INVITE, { input: { email, role: 'VIEWER' } });
    const invitedCode = await app.invitationCode(email);
    const accept = () => invitee.request(ACCEPT, { input: { code: invitedCode, currentPassword: 'quota-password-1', newPassword: 'quota-password-2' } });
    await expectQuotaExceeded(accept(), { quota: 'MEMBERS', limit: 5, usage: 5 });

    const newcomer = `${unique('newcomer')}@quota.test`;
    await full.owner.request(INVITE, { input: { email: newcomer, role: 'VIEWER' } });
    const joiningCode = await app.invitationCode(newcomer);
    await expectQuotaExceeded(app.client().request(JOIN, { input: { code: joiningCode, name: 'Newcomer', password: 'newcomer-password' } }), {
      quota: 'MEMBERS',
      limit: 5,
      usage: 5,
    });
    const accounts = await app.server.services.platform.pool.query('SELECT 1 FROM platform."User" WHERE email = $1', [newcomer]);
    expect(accounts.rowCount).toBe(0);
    // Both invitations are still pending: the refusals rolled back their use.
    expect((await full.owner.request(INVITATIONS)).invitations.map((invitation) => invitation.email).sort()).toEqual([email, newcomer].sort());

    await full.owner.request(REMOVE_MEMBER, { userId: leaving[0]! });
    expect((await accept()).acceptInvitation).toEqual({ tenantSlug: full.slug, role: 'VIEWER' });
    expect((await heldInDatabase(full)).MEMBERS).toBe(5);
  }, 60_000);
});

describe('soft-deleted rows hold no place; restoring one at the limit is refused', () => {
  let tenant: TenantFixture;

  beforeAll(async () => {
    tenant = await app.createTenant(uniqueSlug('q-del'));
    for (const quota of ['VEHICLES', 'DRIVERS', 'OPEN_TRIPS'] as const) await setQuota(tenant, quota, { max: 3 });
  });

  it.each([
    ['VEHICLES', createVehicle, DELETE_VEHICLE, RESTORE_VEHICLE],
    ['DRIVERS', createDriver, DELETE_DRIVER, RESTORE_DRIVER],
  ] as const)('%s', async (quota, create, remove, restore) => {
    const [first, second_] = await times(3, () => create(tenant.owner));
    await tenant.owner.request(remove, { id: first! });
    await create(tenant.owner);
    expect((await heldInDatabase(tenant))[quota]).toBe(3);
    await expectQuotaExceeded(tenant.owner.request(restore, { id: first! }), { quota, limit: 3, usage: 3 });
    await tenant.owner.request(remove, { id: second_! });
    await tenant.owner.request(restore, { id: first! });
    expect((await heldInDatabase(tenant))[quota]).toBe(3);
  });

  it('OPEN_TRIPS: a deleted open trip comes back only with room; a closed one always (it holds no open place)', async () => {
    const [first, second_, third] = await times(3, () => createTrip(tenant.owner));
    await tenant.owner.request(DELETE_TRIP, { id: first! });
    const fourth = await createTrip(tenant.owner);
    await expectQuotaExceeded(tenant.owner.request(RESTORE_TRIP, { id: first! }), { quota: 'OPEN_TRIPS', limit: 3, usage: 3 });
    // A cancelled trip, deleted, comes back at the limit: it is not open.
    await tenant.owner.request(CANCEL_TRIP, { id: second_! });
    await createTrip(tenant.owner);
    await tenant.owner.request(DELETE_TRIP, { id: second_! });
    expect((await tenant.owner.request(RESTORE_TRIP, { id: second_! })).restoreTrip.trip).toMatchObject({ status: 'CANCELLED', deletedAt: null });
    await tenant.owner.request(CANCEL_TRIP, { id: third! });
    expect((await tenant.owner.request(RESTORE_TRIP, { id: first! })).restoreTrip.trip).toMatchObject({ status: 'DRAFT', deletedAt: null });
    expect((await heldInDatabase(tenant)).OPEN_TRIPS).toBe(3);
    expect(fourth).toBeDefined();
  });
});

describe('platform-admin overrides', () => {
  it('raise, lower below usage (nothing removed), unbound and reset a quota, on every instance at once', async () => {
    const tenant = await app.createTenant(uniqueSlug('q-ovr'), 'FREE');
    // The second instance caches the tenant (and its quotas) before the overrides change.
    const elsewhere = second.bearer(tenant.ownerToken);
    await times(3, () => createApiKey(elsewhere));
    await expectQuotaExceeded(createApiKey(elsewhere), { quota: 'API_KEYS', limit: 3, usage: 3 });

    const raised = await setQuota(tenant, 'API_KEYS', { max: 5 });
    expect(raised.usage?.quotas.find((entry) => entry.quota === 'API_KEYS')).toEqual({ quota: 'API_KEYS', usage: 3, limit: 5, overridden: true });
    await times(2, () => createApiKey(elsewhere));
    const message = await expectQuotaExceeded(createApiKey(elsewhere), { quota: 'API_KEYS', limit: 5, usage: 5 });
    expect(message).toMatch(/at most 5 live API keys as set for this tenant and holds 5/);

    await setQuota(tenant, 'API_KEYS', { max: 2 });
    await expectQuotaExceeded(createApiKey(elsewhere), { quota: 'API_KEYS', limit: 2, usage: 5 });
    expect((await elsewhere.request(API_KEYS)).apiKeys.filter((key) => key.revokedAt === null)).toHaveLength(5);
    expect((await usageOf(elsewhere)).API_KEYS).toEqual({ usage: 5, limit: 2, overridden: true });

    // Another quota's override leaves this one as it is.
    await setQuota(tenant, 'VEHICLES', { max: 0 });
    await expectQuotaExceeded(createVehicle(elsewhere), { quota: 'VEHICLES', limit: 0, usage: 0 });
    expect((await usageOf(elsewhere)).API_KEYS).toEqual({ usage: 5, limit: 2, overridden: true });

    await setQuota(tenant, 'API_KEYS', { max: null });
    await createApiKey(elsewhere);
    expect((await usageOf(elsewhere)).API_KEYS).toEqual({ usage: 6, limit: null, overridden: true });

    await setQuota(tenant, 'API_KEYS', null);
    await setQuota(tenant, 'VEHICLES', null);
    expect(await usageOf(elsewhere)).toMatchObject({
      API_KEYS: { usage: 6, limit: 3, overridden: false },
      VEHICLES: { usage: 0, limit: 25, overridden: false },
    });
    await createVehicle(elsewhere);
    const stored = await app.server.services.platform.pool.query('SELECT "quotaOverrides" FROM platform."Tenant" WHERE id = $1', [tenant.id]);
    expect(stored.rows[0]).toEqual({ quotaOverrides: null });
  }, 60_000);

  it('a plan change applies at once: a downgrade below what the tenant holds removes nothing, and refuses more', async () => {
    const tenant = await app.createTenant(uniqueSlug('q-plan'));
    const elsewhere = second.bearer(tenant.ownerToken);
    await times(4, () => createApiKey(elsewhere));
    await (await app.admin()).request(UPDATE_TENANT, { id: tenant.id, plan: 'FREE' });
    await expectQuotaExceeded(createApiKey(elsewhere), { quota: 'API_KEYS', limit: 3, usage: 4 });
    expect((await usageOf(elsewhere)).VEHICLES).toEqual({ usage: 0, limit: 25, overridden: false });
    expect((await heldInDatabase(tenant)).API_KEYS).toBe(4);
  });

  it('refuses a limit out of bounds and an unknown tenant', async () => {
    const tenant = await app.createTenant(uniqueSlug('q-bad'), 'FREE');
    const admin = await app.admin();
    for (const max of [-1, 1_000_001]) {
      const { errors } = await expectErrors(admin.request(SET_QUOTA, { id: tenant.id, quota: 'VEHICLES', limit: { max } }));
      expect(errors.map((error) => [error.extensions.code, error.extensions.field])).toEqual([['BAD_USER_INPUT', 'limit.max']]);
    }
    for (const id of ['00000000-0000-7000-8000-000000000000', 'not-a-tenant']) {
      const { errors } = await expectErrors(admin.request(SET_QUOTA, { id, quota: 'VEHICLES', limit: { max: 1 } }));
      expect(errors.map((error) => error.extensions.code)).toEqual(['NOT_FOUND']);
    }
    expect((await usageOf(tenant.owner)).VEHICLES).toEqual({ usage: 0, limit: 25, overridden: false });
  });
});

describe('tenantUsage', () => {
  it('counts what the quotas count, in two statements whatever the size (one in the tenant schema); platform admins read the same', async () => {
    const tenant = await app.createTenant(uniqueSlug('q-use'));
    const vehicles = await times(3, () => createVehicle(tenant.owner));
    await tenant.owner.request(DELETE_VEHICLE, { id: vehicles[0]! });
    await times(2, () => createDriver(tenant.owner));
    const trips = await times(2, () => createTrip(tenant.owner));
    await tenant.owner.request(CANCEL_TRIP, { id: trips[0]! });
    await addMember(tenant.owner);
    const keys = await times(2, () => createApiKey(tenant.owner));
    await tenant.owner.request(REVOKE_API_KEY, { id: keys[0]! });

    // The audit entries of the platform-side changes above reach the tenant schema after their
    // commit (an outbox); the statement counter is the server's, so let them land first.
    await eventually(async () => {
      const queued = await app.server.services.platform.pool.query('SELECT 1 FROM platform."TenantAuditOutbox" WHERE "tenantId" = $1 LIMIT 1', [tenant.id]);
      return queued.rowCount === 0 ? true : undefined;
    }, 10_000, 50);
    const before = await tenantSqlStatements(app.url);
    const own = (await tenant.owner.request(TENANT_USAGE)).tenantUsage;
    expect((await tenantSqlStatements(app.url)) - before).toBe(1);
    expect(own.plan).toBe('STANDARD');
    expect(own.quotas.map((entry) => entry.quota)).toEqual([...QUOTAS]);
    expect(Object.fromEntries(own.quotas.map((entry) => [entry.quota, entry.usage]))).toEqual(await heldInDatabase(tenant));
    expect(Object.fromEntries(own.quotas.map((entry) => [entry.quota, entry.usage]))).toEqual({ VEHICLES: 2, DRIVERS: 2, MEMBERS: 2, API_KEYS: 1, OPEN_TRIPS: 1 });
    expect(own.quotas.every((entry) => entry.limit === PLAN_QUOTAS.STANDARD[entry.quota] && !entry.overridden)).toBe(true);

    const asAdmin = await (await app.admin()).request(USAGE_AS_ADMIN, { slug: tenant.slug });
    expect(asAdmin.tenant?.usage).toEqual(own);
  });

  it('a tenant MANAGER is refused; a tenant OWNER cannot read Tenant.usage', async () => {
    const tenant = await app.createTenant(uniqueSlug('q-mgr'));
    const email = `${unique('manager')}@quota.test`;
    await tenant.owner.request(ADD_MEMBER, { input: { email, name: 'Manager', password: 'quota-password-1', role: 'MANAGER' } });
    const manager = app.bearer(await app.login(tenant.slug, email, 'quota-password-1'));
    const { errors } = await expectErrors(manager.request(TENANT_USAGE));
    expect(errors.map((error) => error.extensions.code)).toEqual(['FORBIDDEN']);
    const asOwner = await expectErrors(tenant.owner.request(USAGE_AS_ADMIN, { slug: tenant.slug }));
    expect(asOwner.errors.map((error) => error.extensions.code)).toEqual(['FORBIDDEN']);
  });
});

describe('concurrent creates cannot overshoot a quota', () => {
  /**
   * Fires `count` creates while the quota's lock is held elsewhere, waits until every one of
   * them is queued at that lock (so all got past authentication and into their transactions
   * before any counted), then lets them go; their outcomes, sorted.
   */
  async function race(tenant: TenantFixture, quota: Quota, count: number, create: () => Promise<unknown>): Promise<string[]> {
    const pending = await withRowLocked(
      app.server.services.platform.pool,
      'SELECT pg_advisory_xact_lock($1, hashtext($2))',
      [QUOTA_LOCK_CLASS, quotaLockKey(tenant.id, quota)],
      async (lock) => {
        const outcomes = Array.from({ length: count }, () =>
          create().then(
            () => 'CREATED',
            async (error: unknown) => (await expectErrors(Promise.reject(error))).errors.map((each) => each.extensions.code).join(','),
          ),
        );
        await lock.untilSomeoneWaits(count, outcomes);
        return outcomes;
      },
    );
    return (await Promise.all(pending)).sort();
  }

  const created = (count: number) => Array.from({ length: count }, () => 'CREATED');
  const refused = (count: number) => Array.from({ length: count }, () => 'QUOTA_EXCEEDED');

  it('VEHICLES (tenant schema): 8 at once with room for 3, exactly 3 are created', async () => {
    const tenant = await app.createTenant(uniqueSlug('q-race-v'));
    await times(2, () => createVehicle(tenant.owner));
    await setQuota(tenant, 'VEHICLES', { max: 5 });
    expect(await race(tenant, 'VEHICLES', 8, () => createVehicle(tenant.owner))).toEqual([...created(3), ...refused(5)]);
    expect((await heldInDatabase(tenant)).VEHICLES).toBe(5);
  });

  it('OPEN_TRIPS: 6 at once with room for 1, over two instances', async () => {
    const tenant = await app.createTenant(uniqueSlug('q-race-t'));
    await setQuota(tenant, 'OPEN_TRIPS', { max: 1 });
    let turn = 0;
    const outcomes = await race(tenant, 'OPEN_TRIPS', 6, () => createTrip((turn += 1) % 2 === 0 ? tenant.owner : second.bearer(tenant.ownerToken)));
    expect(outcomes).toEqual([...created(1), ...refused(5)]);
    expect((await heldInDatabase(tenant)).OPEN_TRIPS).toBe(1);
  });

  it('API_KEYS (platform schema): 6 at once with room for 2', async () => {
    const tenant = await app.createTenant(uniqueSlug('q-race-k'), 'FREE');
    await createApiKey(tenant.owner);
    expect(await race(tenant, 'API_KEYS', 6, () => createApiKey(tenant.owner))).toEqual([...created(2), ...refused(4)]);
    expect((await heldInDatabase(tenant)).API_KEYS).toBe(3);
  });

  it('MEMBERS: 4 additions at once with room for 1', async () => {
    const tenant = await app.createTenant(uniqueSlug('q-race-m'), 'FREE');
    await times(3, () => addMember(tenant.owner));
    expect(await race(tenant, 'MEMBERS', 4, () => addMember(tenant.owner))).toEqual([...created(1), ...refused(3)]);
    expect((await heldInDatabase(tenant)).MEMBERS).toBe(5);
  });

  it('DRIVERS, nothing held: 10 at once with room for 4', async () => {
    const tenant = await app.createTenant(uniqueSlug('q-race-d'));
    await setQuota(tenant, 'DRIVERS', { max: 4 });
    const outcomes = await Promise.all(
      Array.from({ length: 10 }, () =>
        createDriver(tenant.owner).then(
          () => 'CREATED',
          async (error: unknown) => (await expectErrors(Promise.reject(error))).errors.map((each) => each.extensions.code).join(','),
        ),
      ),
    );
    expect(outcomes.sort()).toEqual([...created(4), ...refused(6)]);
    expect((await heldInDatabase(tenant)).DRIVERS).toBe(4);
  });
});
