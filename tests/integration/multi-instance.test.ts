import pg from 'pg';
import { databaseNameOf } from '../../src/database/connection-url';
import { errorCode, startTestServer, type TenantFixture, type TestServer } from '../support/test-server';
import { graphql } from '../generated';

/*
 * Two API instances on one platform database. Each caches tenants and live sessions; a change
 * made through one must take effect on the other at once (PostgreSQL notifications), and while
 * notifications are down the caches must be bypassed rather than trusted.
 */

const VEHICLES = '{ vehicles { totalCount } }';
const ADD_MEMBER = 'mutation($input: AddMemberInput!) { addMember(input: $input) { member { id } } }';

let first: TestServer;
let second: TestServer;
let tenant: TenantFixture;

beforeAll(async () => {
  first = await startTestServer();
  second = await startTestServer({ databaseUrl: first.databaseUrl });
  tenant = await first.createTenant();
});

afterAll(async () => {
  await second.close();
  await first.close();
});

/** Notifications travel asynchronously: allow them a moment, no more. */
async function within<T>(ms: number, attempt: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const result = await attempt();
    if (result !== undefined) return result;
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

async function codeOn(server: TestServer, token: string, query = VEHICLES): Promise<string> {
  try {
    await server.bearer(token).request(query);
    return 'OK';
  } catch {
    return errorCode(server.bearer(token).request(query));
  }
}

it('a logout through one instance ends the session on the other, whose cache had it', async () => {
  const token = await first.login(tenant.slug, tenant.ownerEmail, tenant.ownerPassword);
  expect(await codeOn(second, token)).toBe('OK'); // now cached on the second instance
  await first.bearer(token).request(graphql(`mutation MultiInstanceLogout { logout { success } }`));
  expect(await within(1_000, async () => ((await codeOn(second, token)) === 'UNAUTHENTICATED' ? true : undefined))).toBe(true);
});

it('a switchTenant through one instance ends the switched-from session on the other, whose cache had it', async () => {
  const token = await first.login(tenant.slug, tenant.ownerEmail, tenant.ownerPassword);
  expect(await codeOn(second, token)).toBe('OK'); // now cached on the second instance
  const switched = await first
    .bearer(token)
    .request(graphql(`mutation MultiInstanceSwitchTenant($tenant: String!) { switchTenant(tenant: $tenant) { accessToken } }`), { tenant: tenant.slug });
  expect(await within(1_000, async () => ((await codeOn(second, token)) === 'UNAUTHENTICATED' ? true : undefined))).toBe(true);
  expect(await codeOn(second, switched.switchTenant.accessToken)).toBe('OK');
});

it("a password changed through one instance ends the account's other sessions on the other", async () => {
  const email = `changer-${Date.now()}@example.test`;
  await tenant.owner.request(ADD_MEMBER, { input: { email, name: 'Changer', password: 'changer-password', role: 'VIEWER' } });
  const here = await first.login(tenant.slug, email, 'changer-password');
  const there = await second.login(tenant.slug, email, 'changer-password');
  expect(await codeOn(second, there)).toBe('OK'); // now cached on the second instance
  const changed = await first
    .bearer(here)
    .request(graphql(`mutation MultiInstanceChangePassword($input: ChangePasswordInput!) { changePassword(input: $input) { signedOutSessions } }`), {
      input: { currentPassword: 'changer-password', newPassword: 'changer-password-2' },
    });
  expect(changed.changePassword.signedOutSessions).toBe(1);
  expect(await within(1_000, async () => ((await codeOn(second, there)) === 'UNAUTHENTICATED' ? true : undefined))).toBe(true);
  expect(await codeOn(second, here)).toBe('OK');
});

it('a demotion through one instance applies to the member on the other', async () => {
  const email = `demoted-${Date.now()}@example.test`;
  await tenant.owner.request(ADD_MEMBER, { input: { email, name: 'Demoted', password: 'demoted-password', role: 'ADMIN' } });
  const token = await second.login(tenant.slug, email, 'demoted-password');
  const addViewer = `mutation { addMember(input: { email: "viewer-${Date.now()}@example.test", name: "V", password: "viewer-password", role: VIEWER }) { member { id } } }`;
  expect(await codeOn(second, token, addViewer)).toBe('OK');
  const me = await second.bearer(token).request(graphql(`query MultiInstanceMe { me { id } }`));
  await tenant.owner.request(graphql(`mutation MultiInstanceUpdateMemberRole($id: ID!) { updateMemberRole(userId: $id, role: VIEWER) { member { role } } }`), { id: me.me.id });
  const later = `mutation { addMember(input: { email: "late-${Date.now()}@example.test", name: "L", password: "late-password", role: VIEWER }) { member { id } } }`;
  expect(await within(1_000, async () => ((await codeOn(second, token, later)) === 'FORBIDDEN' ? true : undefined))).toBe(true);
});

it('a key revoked through one instance is refused on the other, whose cache had it', async () => {
  const created = await tenant.owner.request(
    graphql(`mutation MultiInstanceCreateApiKey($input: CreateApiKeyInput!) { createApiKey(input: $input) { secret apiKey { id } } }`),
    { input: { name: 'Revoked elsewhere', role: 'VIEWER' } },
  );
  const { secret, apiKey } = created.createApiKey;
  expect(await codeOn(second, secret)).toBe('OK'); // now cached on the second instance
  expect(await codeOn(second, secret)).toBe('OK');
  await tenant.owner.request(graphql(`mutation MultiInstanceRevokeApiKey($id: ID!) { revokeApiKey(id: $id) { apiKey { id } } }`), { id: apiKey.id });
  expect(await within(1_000, async () => ((await codeOn(second, secret)) === 'UNAUTHENTICATED' ? true : undefined))).toBe(true);
});

it('a suspension through one instance stops the tenant on the other; reactivation restores it', async () => {
  const token = await second.login(tenant.slug, tenant.ownerEmail, tenant.ownerPassword);
  expect(await codeOn(second, token)).toBe('OK');
  const admin = await first.admin();
  await admin.request(graphql(`mutation MultiInstanceSuspendTenant($id: ID!) { suspendTenant(id: $id) { tenant { status } } }`), { id: tenant.id });
  expect(await within(1_000, async () => ((await codeOn(second, token)) === 'TENANT_SUSPENDED' ? true : undefined))).toBe(true);
  await admin.request(graphql(`mutation MultiInstanceReactivateTenant($id: ID!) { reactivateTenant(id: $id) { tenant { status } } }`), { id: tenant.id });
  expect(await within(1_000, async () => ((await codeOn(second, token)) === 'OK' ? true : undefined))).toBe(true);
});

it('with its notification connection cut, an instance reads through: a suspension still applies on its next request', async () => {
  const token = await second.login(tenant.slug, tenant.ownerEmail, tenant.ownerPassword);
  expect(await codeOn(second, token)).toBe('OK');
  const superuser = new pg.Client({ connectionString: first.databaseUrl });
  await superuser.connect();
  try {
    // Cut every instance's LISTEN connection, then change the tenant while they are deaf.
    await superuser.query(
      `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND application_name = 'fleet-graphql-listen'`,
      [databaseNameOf(first.databaseUrl)],
    );
    // The instance notices the closed socket at once (a partition without one is the limit
    // docs/decisions/0004 describes); give its event loop that moment.
    await new Promise((resolve) => setTimeout(resolve, 100));
    await superuser.query(`UPDATE platform."Tenant" SET status = 'SUSPENDED' WHERE id = $1`, [tenant.id]);
    expect(await codeOn(second, token)).toBe('TENANT_SUSPENDED');
    await superuser.query(`UPDATE platform."Tenant" SET status = 'ACTIVE' WHERE id = $1`, [tenant.id]);
    expect(await codeOn(second, token)).toBe('OK');
    // It reconnects by itself (about a second later) and caching resumes.
    await within(5_000, async () => {
      const listening = await superuser.query(
        `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND application_name = 'fleet-graphql-listen'`,
        [databaseNameOf(first.databaseUrl)],
      );
      return (listening.rows[0] as { n: number }).n >= 2 ? true : undefined;
    });
  } finally {
    await superuser.end();
  }
});
