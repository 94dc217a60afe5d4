import bcrypt from 'bcryptjs';
import type { GraphQLClient } from '../support/graphql-request';
import {
  ADMIN_EMAIL,
  ADMIN_PASSWORD,
  errorCode,
  expectErrors,
  startTestServer,
  type TenantFixture,
  type TestServer,
} from '../support/test-server';
import { graphql } from '../generated';
import { withRowLocked } from '../support/row-lock';
import { codeIn } from '../support/smtp-server';
import type { AddMemberInput, AddMemberMutation, LoginMutation, MeQuery, Role, UpdateRoleMutation } from '../generated/graphql';

/*
 * Sign-in, refresh-token rotation, logout and membership management, over real HTTP against a
 * real server and database.
 */

let app: TestServer;
let tenant: TenantFixture;
let otherTenant: TenantFixture;

beforeAll(async () => {
  app = await startTestServer();
  // ENTERPRISE: the most generous request budget; these tests sign in and out a lot.
  tenant = await app.createTenant(undefined, 'ENTERPRISE');
  otherTenant = await app.createTenant(undefined, 'ENTERPRISE');
});

afterAll(async () => {
  await app.close();
});

type AuthPayload = LoginMutation['login'];
type Member = AddMemberMutation['addMember']['member'];
type Viewer = MeQuery['me'];

const LOGIN = graphql(`mutation Login($input: LoginInput!) { login(input: $input) { accessToken refreshToken expiresAt } }`);
const ADMIN_LOGIN = graphql(`mutation AdminLogin($email: String!, $password: String!) {
  adminLogin(email: $email, password: $password) { accessToken refreshToken expiresAt }
}`);
const REFRESH = graphql(`mutation Refresh($token: String!) { refreshToken(token: $token) { accessToken refreshToken expiresAt } }`);
const LOGOUT = graphql(`mutation Logout { logout { success } }`);
const ME = graphql(`query Me { me { id kind email name role tenant { id slug } } }`);
const MEMBERS = graphql(`query Members { members { id email name role joinedAt } }`);
const ADD_MEMBER = graphql(`mutation AddMember($input: AddMemberInput!) { addMember(input: $input) { member { id email name role joinedAt } } }`);
const UPDATE_ROLE = graphql(`mutation UpdateRole($userId: ID!, $role: Role!) { updateMemberRole(userId: $userId, role: $role) { member { id email role } } }`);
const REMOVE_MEMBER = graphql(`mutation RemoveMember($userId: ID!) { removeMember(userId: $userId) { removedUserId } }`);
const INVITE = graphql(`mutation InviteMember($input: InviteMemberInput!) { inviteMember(input: $input) { invitation { id email role invitedAt expiresAt } } }`);
const INVITATIONS = graphql(`query Invitations { invitations { id email role invitedAt expiresAt } }`);
const ACCEPT = graphql(`mutation AcceptInvitation($input: AcceptInvitationInput!) { acceptInvitation(input: $input) { tenantSlug role signedOutSessions } }`);
const DECLINE = graphql(`mutation DeclineInvitation($code: String!) { declineInvitation(code: $code) { declinedId } }`);
const JOIN = graphql(`mutation JoinByInvitation($input: JoinByInvitationInput!) { joinByInvitation(input: $input) { accessToken refreshToken expiresAt } }`);
const REVOKE_INVITATION = graphql(`mutation RevokeInvitation($id: ID!) { revokeInvitation(id: $id) { revokedId } }`);

const CHANGE_PASSWORD = graphql(`mutation ChangePassword($input: ChangePasswordInput!) { changePassword(input: $input) { signedOutSessions } }`);
const changePassword = async (client: GraphQLClient, currentPassword: string, newPassword: string) =>
  (await client.request(CHANGE_PASSWORD, { input: { currentPassword, newPassword } })).changePassword.signedOutSessions;

/** Invites `email`; the code is read from the invitation email, as the invitee would. */
const invite = async (client: GraphQLClient, email: string, role: Role) => {
  const { invitation } = (await client.request(INVITE, { input: { email, role } })).inviteMember;
  return { ...invitation, code: await app.invitationCode(invitation.email) };
};
const invitationIds = async (client: GraphQLClient) => (await client.request(INVITATIONS)).invitations.map((invitation) => invitation.id);

async function login(slug: string, email: string, password: string): Promise<AuthPayload> {
  return (await app.client().request(LOGIN, { input: { tenant: slug, email, password } })).login;
}

async function refresh(token: string): Promise<AuthPayload> {
  return (await app.client().request(REFRESH, { token })).refreshToken;
}

async function me(client: GraphQLClient): Promise<Viewer> {
  return (await client.request(ME)).me;
}

async function members(client: GraphQLClient): Promise<Member[]> {
  return (await client.request(MEMBERS)).members;
}

async function addMember(
  client: GraphQLClient,
  input: AddMemberInput,
): Promise<Member> {
  return (await client.request(ADD_MEMBER, { input })).addMember.member;
}

async function setRole(client: GraphQLClient, userId: string, role: Role): Promise<UpdateRoleMutation['updateMemberRole']['member']> {
  return (await client.request(UPDATE_ROLE, { userId, role })).updateMemberRole.member;
}

async function removeMember(client: GraphQLClient, userId: string): Promise<string> {
  return (await client.request(REMOVE_MEMBER, { userId })).removeMember.removedUserId;
}

let counter = 0;
const newEmail = (label: string) => `${label}-${(counter += 1)}-${Date.now().toString(36)}@members.test`;
const PASSWORD = 'member-password-1';

/** A new user added to `fixture` with `role`, signed in: its client, id and token pair. */
async function newMember(
  fixture: TenantFixture,
  role: Role,
  label = role.toLowerCase(),
): Promise<{ id: string; email: string; client: GraphQLClient; tokens: AuthPayload }> {
  const email = newEmail(label);
  const member = await addMember(fixture.owner, { email, name: `${label} person`, password: PASSWORD, role });
  const tokens = await login(fixture.slug, email, PASSWORD);
  return { id: member.id, email, client: app.bearer(tokens.accessToken), tokens };
}

/** The password an invitee sets on accepting an invitation (accepting always sets a new one). */
const OWN_PASSWORD = 'set-on-accepting-1';

/** `client` accepts the invitation with `code`, giving its current password and setting OWN_PASSWORD (or `newPassword`). */
const accept = (client: GraphQLClient, code: string, newPassword = OWN_PASSWORD, currentPassword = PASSWORD) =>
  client.request(ACCEPT, { input: { code, currentPassword, newPassword } });

/** `member` joins `fixture` as `role` by invitation, and so now signs in with OWN_PASSWORD. */
async function joinByInvitation(member: { email: string; client: GraphQLClient }, fixture: TenantFixture, role: Role): Promise<void> {
  const { code } = await invite(fixture.owner, member.email, role);
  expect((await accept(member.client, code)).acceptInvitation).toMatchObject({ tenantSlug: fixture.slug, role });
}

const platformPool = () => app.server.services.platform.pool;
/** The account row lock changePassword and removeMember take first. */
const LOCK_USER = 'SELECT 1 FROM platform."User" WHERE id = $1 FOR UPDATE';
/** What changing a member's role waits on; granting something (a key, an invitation) share-locks it. */
const LOCK_MEMBERSHIPS = 'SELECT 1 FROM platform."Membership" WHERE "userId" = $1 FOR UPDATE';
/** Holds off whatever ends the account's sessions (removeMember, after it locked the account). */
const LOCK_SESSIONS = 'SELECT 1 FROM platform."Session" WHERE "userId" = $1 FOR SHARE';

/** The single error of a failing request: code, message, field and HTTP status. */
async function failure(request: Promise<unknown>): Promise<{ code: string; message: string; field: unknown; status: number }> {
  const { errors, status } = await expectErrors(request);
  expect(errors).toHaveLength(1);
  const [error] = errors;
  return { code: error!.extensions.code, message: error!.message, field: error!.extensions.field, status };
}

describe('login', () => {
  it('returns an access token, a refresh token and an expiry about 15 minutes ahead', async () => {
    const before = Date.now();
    const payload = await login(tenant.slug, tenant.ownerEmail, tenant.ownerPassword);
    const expiresAt = Date.parse(payload.expiresAt);
    expect(expiresAt).toBeGreaterThan(before + 14 * 60_000);
    expect(expiresAt).toBeLessThan(Date.now() + 16 * 60_000);
    expect(payload.accessToken.split('.')).toHaveLength(3);
    expect(payload.refreshToken.length).toBeGreaterThanOrEqual(32);
    expect(payload.refreshToken).not.toBe(payload.accessToken);
    const viewer = await me(app.bearer(payload.accessToken));
    expect(viewer).toMatchObject({ kind: 'TENANT_MEMBER', email: tenant.ownerEmail, role: 'OWNER', tenant: { id: tenant.id, slug: tenant.slug } });
  });

  it('compares every byte of a password: bcrypt ignores bytes past 72 and NULs, these never match', async () => {
    const longest = 'p'.repeat(72);
    const person = await addMember(tenant.owner, { email: newEmail('longest'), name: 'Longest', password: longest, role: 'VIEWER' });
    expect((await login(tenant.slug, person.email, longest)).accessToken).toEqual(expect.any(String));
    expect(await errorCode(login(tenant.slug, person.email, `${longest}and-more`))).toBe('UNAUTHENTICATED');
    expect(await errorCode(login(tenant.slug, person.email, `${longest}\u0000`))).toBe('UNAUTHENTICATED');
  });

  it('refuses a password of NUL characters, which bcrypt would take for the empty one', async () => {
    const nuls = '\u0000'.repeat(8);
    const refused = await failure(addMember(tenant.owner, { email: newEmail('nul'), name: 'Nul', password: nuls, role: 'VIEWER' }));
    expect(refused).toMatchObject({ code: 'BAD_USER_INPUT', field: 'password' });
    const person = await newMember(tenant, 'VIEWER', 'nul-change');
    expect(await failure(changePassword(person.client, PASSWORD, nuls))).toMatchObject({ code: 'BAD_USER_INPUT', field: 'newPassword' });
    expect(await errorCode(login(tenant.slug, person.email, ''))).toBe('UNAUTHENTICATED');
  });

  it('matches email and tenant case-insensitively', async () => {
    const payload = await login(tenant.slug.toUpperCase(), ` ${tenant.ownerEmail.toUpperCase()} `, tenant.ownerPassword);
    expect((await me(app.bearer(payload.accessToken))).email).toBe(tenant.ownerEmail);
  });

  it('refuses wrong password, unknown email, unknown tenant and non-members alike (no enumeration)', async () => {
    const attempts = [
      { tenant: tenant.slug, email: tenant.ownerEmail, password: 'wrong-password' },
      { tenant: tenant.slug, email: 'nobody@nowhere.test', password: tenant.ownerPassword },
      { tenant: 'no-such-tenant', email: tenant.ownerEmail, password: tenant.ownerPassword },
      // A real user with the right password, but not a member of this tenant.
      { tenant: tenant.slug, email: otherTenant.ownerEmail, password: otherTenant.ownerPassword },
      { tenant: tenant.slug, email: tenant.ownerEmail, password: '' },
      { tenant: 'x'.repeat(200), email: tenant.ownerEmail, password: tenant.ownerPassword },
      { tenant: tenant.slug, email: 'nul\u0000@nowhere.test', password: tenant.ownerPassword },
      { tenant: `${tenant.slug}\u0000`, email: tenant.ownerEmail, password: tenant.ownerPassword },
    ];
    const results = [];
    for (const input of attempts) {
      const { errors, status, data } = await expectErrors(app.client().request(LOGIN, { input }));
      expect(data).toBeNull();
      expect(errors).toHaveLength(1);
      results.push({ code: errors[0]!.extensions.code, message: errors[0]!.message, status });
    }
    expect(new Set(results.map((result) => JSON.stringify(result))).size).toBe(1);
    // A field error of an operation that ran: HTTP 200 (README, "HTTP status codes").
    expect(results[0]).toEqual({ code: 'UNAUTHENTICATED', message: expect.any(String), status: 200 });
  });
});

describe('adminLogin and me', () => {
  it('signs in the platform admin; me describes the admin', async () => {
    const payload = (await app.client().request(ADMIN_LOGIN, { email: ADMIN_EMAIL, password: ADMIN_PASSWORD }))
      .adminLogin;
    expect(Date.parse(payload.expiresAt)).toBeGreaterThan(Date.now() + 14 * 60_000);
    const viewer = await me(app.bearer(payload.accessToken));
    expect(viewer).toEqual({ id: expect.any(String), kind: 'PLATFORM_ADMIN', email: ADMIN_EMAIL, name: expect.any(String), role: null, tenant: null });
  });

  it('refuses a wrong admin password or unknown admin with the same UNAUTHENTICATED error', async () => {
    const wrong = await failure(app.client().request(ADMIN_LOGIN, { email: ADMIN_EMAIL, password: 'not-the-password' }));
    const unknown = await failure(app.client().request(ADMIN_LOGIN, { email: 'who@nowhere.test', password: ADMIN_PASSWORD }));
    const member = await failure(app.client().request(ADMIN_LOGIN, { email: tenant.ownerEmail, password: tenant.ownerPassword }));
    const nul = await failure(app.client().request(ADMIN_LOGIN, { email: `${ADMIN_EMAIL}\u0000`, password: ADMIN_PASSWORD }));
    expect(wrong).toMatchObject({ code: 'UNAUTHENTICATED', status: 200 });
    expect(unknown).toEqual(wrong);
    expect(member).toEqual(wrong);
    expect(nul).toEqual(wrong);
  });

  it('describes a tenant member', async () => {
    const viewer = await me(tenant.owner);
    expect(viewer).toEqual({
      id: expect.any(String),
      kind: 'TENANT_MEMBER',
      email: tenant.ownerEmail,
      name: 'Owner',
      role: 'OWNER',
      tenant: { id: tenant.id, slug: tenant.slug },
    });
    const listed = (await members(tenant.owner)).find((member) => member.email === tenant.ownerEmail);
    expect(listed?.id).toBe(viewer.id);
  });

  it('refuses me to anonymous callers', async () => {
    expect(await errorCode(app.client().request(ME))).toBe('UNAUTHENTICATED');
  });
});

describe('refresh tokens', () => {
  it('rotates: each refresh gives a new working pair; reusing a spent token revokes the whole session', async () => {
    const first = await login(tenant.slug, tenant.ownerEmail, tenant.ownerPassword);
    const second = await refresh(first.refreshToken);
    expect(second.refreshToken).not.toBe(first.refreshToken);
    expect((await me(app.bearer(second.accessToken))).role).toBe('OWNER');
    const third = await refresh(second.refreshToken);
    expect((await me(app.bearer(third.accessToken))).email).toBe(tenant.ownerEmail);

    // Replay of a spent token: refused, and the session it belongs to ends.
    expect(await failure(refresh(first.refreshToken))).toMatchObject({ code: 'UNAUTHENTICATED' });
    expect(await failure(refresh(third.refreshToken))).toMatchObject({ code: 'UNAUTHENTICATED' });
    expect(await failure(me(app.bearer(third.accessToken)))).toMatchObject({ code: 'UNAUTHENTICATED', status: 401 });
    expect(await failure(me(app.bearer(first.accessToken)))).toMatchObject({ code: 'UNAUTHENTICATED', status: 401 });
  });

  it('a spent token cannot be used twice even before reuse detection hits another token', async () => {
    const pair = await login(tenant.slug, tenant.ownerEmail, tenant.ownerPassword);
    await refresh(pair.refreshToken);
    expect(await errorCode(refresh(pair.refreshToken))).toBe('UNAUTHENTICATED');
    expect(await errorCode(refresh(pair.refreshToken))).toBe('UNAUTHENTICATED');
  });

  it('revoking one session leaves the user\'s other sessions alone', async () => {
    const phone = await login(tenant.slug, tenant.ownerEmail, tenant.ownerPassword);
    const laptop = await login(tenant.slug, tenant.ownerEmail, tenant.ownerPassword);
    await refresh(phone.refreshToken);
    expect(await errorCode(refresh(phone.refreshToken))).toBe('UNAUTHENTICATED');
    expect((await me(app.bearer(laptop.accessToken))).role).toBe('OWNER');
    const next = await refresh(laptop.refreshToken);
    expect((await me(app.bearer(next.accessToken))).role).toBe('OWNER');
  });

  it('of two concurrent refreshes with one token, at most one succeeds', async () => {
    const pair = await login(tenant.slug, tenant.ownerEmail, tenant.ownerPassword);
    const results = await Promise.allSettled([refresh(pair.refreshToken), refresh(pair.refreshToken)]);
    expect(results.filter((result) => result.status === 'fulfilled').length).toBeLessThanOrEqual(1);
  });

  it('refuses garbage refresh tokens and access tokens used as refresh tokens', async () => {
    const pair = await login(tenant.slug, tenant.ownerEmail, tenant.ownerPassword);
    for (const token of ['', 'garbage', 'rt_garbage', pair.accessToken, 'rt_\u0000']) {
      expect(await failure(refresh(token))).toMatchObject({ code: 'UNAUTHENTICATED' });
    }
    // None of that harmed the real session.
    expect((await refresh(pair.refreshToken)).accessToken).toEqual(expect.any(String));
  });

  it('an admin session rotates too', async () => {
    const admin = (await app.client().request(ADMIN_LOGIN, { email: ADMIN_EMAIL, password: ADMIN_PASSWORD })).adminLogin;
    const next = await refresh(admin.refreshToken);
    expect((await me(app.bearer(next.accessToken))).kind).toBe('PLATFORM_ADMIN');
  });
});

describe('me.tenant', () => {
  it("shows a member the tenant's name, plan, status and budget; schema, migration, last error and last change are for platform admins only", async () => {
    const viewer = await newMember(tenant, 'VIEWER', 'curious');
    const TENANT_OF_ME = graphql(`query MeTenant { me { tenant { slug plan status rateLimit { tenant { capacity } overridden } } } }`);
    expect((await viewer.client.request(TENANT_OF_ME)).me.tenant).toMatchObject({ slug: tenant.slug, plan: 'ENTERPRISE', status: 'ACTIVE' });
    for (const field of ['schemaName', 'migrationVersion', 'lastError', 'updatedAt']) {
      for (const client of [viewer.client, tenant.owner]) {
        const { errors, data, status } = await expectErrors(client.request(`query { me { id tenant { slug ${field} } } }`));
        expect(errors.map((error) => [error.extensions.code, error.path])).toEqual([['FORBIDDEN', ['me', 'tenant', field]]]);
        // Only the refused field is null: the tenant and its slug are still there (the operation ran, so HTTP 200).
        expect({ status, data }).toEqual({ status: 200, data: { me: { id: expect.any(String), tenant: { slug: tenant.slug, [field]: null } } } });
      }
    }
    const admin = await app.admin();
    const TENANT_FOR_ADMIN = graphql(`query MeTenantForAdmin($slug: String!) { tenant(slug: $slug) { schemaName migrationVersion lastError updatedAt } }`);
    const seen = (await admin.request(TENANT_FOR_ADMIN, { slug: tenant.slug })).tenant;
    expect(seen).toEqual({ schemaName: tenant.schemaName, migrationVersion: expect.any(String), lastError: null, updatedAt: expect.any(String) });
    expect(Date.parse(seen?.updatedAt ?? '')).toBeGreaterThan(0);
  });
});

describe('logout', () => {
  it('ends the session: its access and refresh tokens stop working, other sessions go on', async () => {
    const session = await login(tenant.slug, tenant.ownerEmail, tenant.ownerPassword);
    const other = await login(tenant.slug, tenant.ownerEmail, tenant.ownerPassword);
    const client = app.bearer(session.accessToken);
    expect((await client.request(LOGOUT)).logout.success).toBe(true);
    expect(await failure(me(client))).toMatchObject({ code: 'UNAUTHENTICATED', status: 401 });
    expect(await failure(refresh(session.refreshToken))).toMatchObject({ code: 'UNAUTHENTICATED' });
    expect((await me(app.bearer(other.accessToken))).role).toBe('OWNER');
  });

  it('ends an admin session too', async () => {
    const admin = (await app.client().request(ADMIN_LOGIN, { email: ADMIN_EMAIL, password: ADMIN_PASSWORD })).adminLogin;
    await app.bearer(admin.accessToken).request(LOGOUT);
    expect(await errorCode(me(app.bearer(admin.accessToken)))).toBe('UNAUTHENTICATED');
    expect(await errorCode(refresh(admin.refreshToken))).toBe('UNAUTHENTICATED');
  });

  it('refuses logout without a session', async () => {
    expect(await errorCode(app.client().request(LOGOUT))).toBe('UNAUTHENTICATED');
  });
});

describe('changePassword', () => {
  const NEW_PASSWORD = 'a-brand-new-password';

  it('checks the current password, signs out the other sessions (other devices, other tenants) and keeps this one', async () => {
    const user = await newMember(tenant, 'MEMBER', 'changer');
    await joinByInvitation(user, otherTenant, 'VIEWER');
    const secondDevice = await login(tenant.slug, user.email, OWN_PASSWORD);
    const otherTenantSession = await login(otherTenant.slug, user.email, OWN_PASSWORD);

    expect(await changePassword(user.client, OWN_PASSWORD, NEW_PASSWORD)).toBe(2);

    expect((await me(user.client)).id).toBe(user.id);
    const rotated = await refresh(user.tokens.refreshToken);
    expect((await me(app.bearer(rotated.accessToken))).id).toBe(user.id);
    for (const session of [secondDevice, otherTenantSession]) {
      expect(await failure(me(app.bearer(session.accessToken)))).toMatchObject({ code: 'UNAUTHENTICATED', status: 401 });
      expect(await errorCode(refresh(session.refreshToken))).toBe('UNAUTHENTICATED');
    }
    for (const slug of [tenant.slug, otherTenant.slug]) {
      expect(await errorCode(login(slug, user.email, OWN_PASSWORD))).toBe('UNAUTHENTICATED');
      expect((await login(slug, user.email, NEW_PASSWORD)).accessToken).toEqual(expect.any(String));
    }
  });

  it('refuses a wrong current password, a too-short new one and the same one, and changes nothing', async () => {
    const user = await newMember(tenant, 'VIEWER', 'unchanged');
    const other = await login(tenant.slug, user.email, PASSWORD);
    expect(await failure(changePassword(user.client, 'not-my-password', NEW_PASSWORD))).toMatchObject({ code: 'BAD_USER_INPUT', field: 'currentPassword' });
    expect(await failure(changePassword(user.client, PASSWORD, 'short'))).toMatchObject({ code: 'BAD_USER_INPUT', field: 'newPassword' });
    expect(await failure(changePassword(user.client, PASSWORD, PASSWORD))).toMatchObject({ code: 'BAD_USER_INPUT', field: 'newPassword' });
    expect(await errorCode(login(tenant.slug, user.email, NEW_PASSWORD))).toBe('UNAUTHENTICATED');
    expect((await login(tenant.slug, user.email, PASSWORD)).accessToken).toEqual(expect.any(String));
    expect((await me(app.bearer(other.accessToken))).id).toBe(user.id);
  });

  it('two concurrent changes from two sessions: one wins, the other is refused, and only the winner can sign in', async () => {
    const user = await newMember(tenant, 'MEMBER', 'racer');
    const secondDevice = app.bearer((await login(tenant.slug, user.email, PASSWORD)).accessToken);
    const candidates = ['first-device-password', 'second-device-password'];
    const outcomes = await Promise.allSettled([
      changePassword(user.client, PASSWORD, candidates[0]!),
      changePassword(secondDevice, PASSWORD, candidates[1]!),
    ]);
    const winners = outcomes.flatMap((outcome, index) => (outcome.status === 'fulfilled' ? [candidates[index]!] : []));
    expect(winners).toHaveLength(1);
    const loser = outcomes.find((outcome) => outcome.status === 'rejected')!;
    expect(['BAD_USER_INPUT', 'UNAUTHENTICATED']).toContain(await errorCode(Promise.reject(loser.reason)));
    const [winner] = winners;
    expect((await login(tenant.slug, user.email, winner!)).accessToken).toEqual(expect.any(String));
    for (const stale of [PASSWORD, ...candidates.filter((candidate) => candidate !== winner)]) {
      expect(await errorCode(login(tenant.slug, user.email, stale))).toBe('UNAUTHENTICATED');
    }
  });

  it('a sign-in with the old password caught by a password change starts no session (UNAUTHENTICATED)', async () => {
    const user = await newMember(tenant, 'MEMBER', 'caught');
    // Hold the account row as changePassword does, let the sign-in check the old password and
    // wait on the row, then put a new password in place underneath it.
    const newHash = await bcrypt.hash(NEW_PASSWORD, 4);
    const { signingIn } = await withRowLocked(platformPool(), LOCK_USER, [user.id], async (lock) => {
      const pending = failure(login(tenant.slug, user.email, PASSWORD));
      await lock.untilSomeoneWaits(1, pending);
      await lock.query('UPDATE platform."User" SET "passwordHash" = $2 WHERE id = $1', [user.id, newHash]);
      return { signingIn: pending };
    });
    expect(await signingIn).toMatchObject({ code: 'UNAUTHENTICATED', status: 200 });
    const sessions = await app.server.services.platform.pool.query('SELECT id FROM platform."Session" WHERE "userId" = $1', [user.id]);
    expect(sessions.rowCount).toBe(1); // newMember's own sign-in, from before
    expect((await login(tenant.slug, user.email, NEW_PASSWORD)).accessToken).toEqual(expect.any(String));
  });

  it("changes a platform admin's password too", async () => {
    // A second admin, so the shared bootstrap admin's sessions (used by other tests) are untouched.
    const email = newEmail('second-admin');
    await app.server.services.platform.pool.query(
      `INSERT INTO platform."PlatformAdmin" (id, email, name, "passwordHash") VALUES (gen_random_uuid(), $1, 'Second admin', $2)`,
      [email, await bcrypt.hash(PASSWORD, 4)],
    );
    const adminLogin = (password: string) => app.client().request(ADMIN_LOGIN, { email, password });
    const first = (await adminLogin(PASSWORD)).adminLogin;
    const second = (await adminLogin(PASSWORD)).adminLogin;
    expect(await changePassword(app.bearer(first.accessToken), PASSWORD, NEW_PASSWORD)).toBe(1);
    expect(await errorCode(me(app.bearer(second.accessToken)))).toBe('UNAUTHENTICATED');
    expect(await errorCode(adminLogin(PASSWORD))).toBe('UNAUTHENTICATED');
    expect((await me(app.bearer((await adminLogin(NEW_PASSWORD)).adminLogin.accessToken))).kind).toBe('PLATFORM_ADMIN');
  });

  it('is refused to API keys (FORBIDDEN) and signed-out callers (UNAUTHENTICATED)', async () => {
    const key = await tenant.owner.request(
      graphql(`mutation AuthCreateKey { createApiKey(input: { name: "no password", role: VIEWER }) { secret } }`),
    );
    expect(await errorCode(changePassword(app.bearer(key.createApiKey.secret), 'anything-at-all', NEW_PASSWORD))).toBe('FORBIDDEN');
    expect(await errorCode(changePassword(app.client(), tenant.ownerPassword, NEW_PASSWORD))).toBe('UNAUTHENTICATED');
    expect((await login(tenant.slug, tenant.ownerEmail, tenant.ownerPassword)).accessToken).toEqual(expect.any(String));
  });
});

describe('members', () => {
  it('adds a new user with a password; they sign in with the role given', async () => {
    const email = newEmail('New.Person');
    const before = Date.now();
    const member = await addMember(tenant.owner, { email: ` ${email.toUpperCase()} `, name: ' New Person ', password: PASSWORD, role: 'MANAGER' });
    expect(member).toEqual({ id: expect.any(String), email: email.toLowerCase(), name: 'New Person', role: 'MANAGER', joinedAt: expect.any(String) });
    expect(Date.parse(member.joinedAt)).toBeGreaterThanOrEqual(before - 5_000);
    expect((await members(tenant.owner)).find((listed) => listed.id === member.id)).toEqual(member);

    const tokens = await login(tenant.slug, email, PASSWORD);
    expect(await me(app.bearer(tokens.accessToken))).toMatchObject({ id: member.id, role: 'MANAGER', tenant: { slug: tenant.slug } });
  });

  it("refuses an email that already has an account, whatever the password, and shows nothing of it", async () => {
    const third = await app.createTenant(undefined, 'ENTERPRISE');
    const right = await failure(addMember(tenant.owner, { email: third.ownerEmail, name: 'Taken', password: third.ownerPassword, role: 'MEMBER' }));
    const wrong = await failure(addMember(tenant.owner, { email: third.ownerEmail, name: 'Taken', password: 'some-other-password', role: 'MEMBER' }));
    // The same answer either way: no password oracle, and the account's name never appears.
    expect(right).toMatchObject({ code: 'CONFLICT', field: 'email', status: 200 });
    expect(right.message).toMatch(/inviteMember/);
    expect(wrong).toEqual(right);
    expect(right.message).not.toContain('Owner');
    expect((await members(tenant.owner)).some((member) => member.email === third.ownerEmail)).toBe(false);
    // Their own password still signs them in at home; the one tried here does not.
    const home = await login(third.slug, third.ownerEmail, third.ownerPassword);
    expect((await me(app.bearer(home.accessToken))).role).toBe('OWNER');
    expect(await errorCode(login(third.slug, third.ownerEmail, 'some-other-password'))).toBe('UNAUTHENTICATED');
  });

  it('refuses someone who is already a member (CONFLICT on email)', async () => {
    expect(await failure(addMember(tenant.owner, { email: tenant.ownerEmail, name: 'Again', password: PASSWORD, role: 'VIEWER' }))).toMatchObject({
      code: 'CONFLICT',
      field: 'email',
    });
    const viewer = await newMember(tenant, 'VIEWER');
    expect(await failure(addMember(tenant.owner, { email: viewer.email.toUpperCase(), name: 'Again', password: PASSWORD, role: 'ADMIN' }))).toMatchObject({
      code: 'CONFLICT',
      field: 'email',
    });
    expect((await me(viewer.client)).role).toBe('VIEWER');
  });

  it.each([
    ['a blank name', { name: '   ', password: PASSWORD }, 'name'],
    ['a NUL in the name', { name: 'Nu\u0000l', password: PASSWORD }, 'name'],
    ['a name over 200 characters', { name: 'n'.repeat(201), password: PASSWORD }, 'name'],
    ['a short password', { name: 'Short', password: 'short' }, 'password'],
  ])('refuses %s with BAD_USER_INPUT', async (_label, extra, field) => {
    const email = newEmail('invalid');
    expect(await failure(addMember(tenant.owner, { email, role: 'VIEWER', ...extra }))).toMatchObject({ code: 'BAD_USER_INPUT', field });
    expect((await members(tenant.owner)).some((member) => member.email === email)).toBe(false);
    expect(await errorCode(login(tenant.slug, email, PASSWORD))).toBe('UNAUTHENTICATED');
  });

  it('refuses an invalid email with BAD_USER_INPUT on email', async () => {
    // 255 characters: longer than any deliverable address.
    const tooLong = `${'a'.repeat(64)}@${'d'.repeat(63)}.${'e'.repeat(63)}.${'f'.repeat(57)}.test`;
    for (const email of ['not-an-email', '', 'a@b@c', tooLong]) {
      expect(await failure(addMember(tenant.owner, { email, name: 'X', password: PASSWORD, role: 'VIEWER' }))).toMatchObject({
        code: 'BAD_USER_INPUT',
        field: 'email',
      });
    }
  });

  it('changes a member\'s role; it takes effect at once, even for tokens issued before', async () => {
    const viewer = await newMember(tenant, 'VIEWER');
    expect(await errorCode(viewer.client.request(graphql(`mutation AuthCreateVehicle { createVehicle(input: { plate: "ROLE-1", make: "A", model: "B", year: 2020 }) { vehicle { id } } }`)))).toBe(
      'FORBIDDEN',
    );
    expect(await setRole(tenant.owner, viewer.id, 'MANAGER')).toEqual({ id: viewer.id, email: viewer.email, role: 'MANAGER' });
    expect((await me(viewer.client)).role).toBe('MANAGER');
    const created = await viewer.client.request(
      graphql(`mutation AuthCreateVehicle2 { createVehicle(input: { plate: "ROLE-1", make: "A", model: "B", year: 2020 }) { vehicle { id } } }`),
    );
    expect(created.createVehicle.vehicle.id).toEqual(expect.any(String));
    expect((await members(tenant.owner)).find((member) => member.id === viewer.id)?.role).toBe('MANAGER');
  });

  it('removes a member: gone from the list, their access and refresh tokens stop working, they cannot sign in', async () => {
    const member = await newMember(tenant, 'MEMBER');
    expect(await removeMember(tenant.owner, member.id)).toBe(member.id);
    expect((await members(tenant.owner)).some((listed) => listed.id === member.id)).toBe(false);
    expect(await failure(me(member.client))).toMatchObject({ code: 'UNAUTHENTICATED', status: 401 });
    expect(await failure(refresh(member.tokens.refreshToken))).toMatchObject({ code: 'UNAUTHENTICATED' });
    expect(await errorCode(login(tenant.slug, member.email, PASSWORD))).toBe('UNAUTHENTICATED');
    // Removing again, or an unknown or malformed id: NOT_FOUND.
    expect(await errorCode(removeMember(tenant.owner, member.id))).toBe('NOT_FOUND');
    expect(await errorCode(removeMember(tenant.owner, '00000000-0000-7000-8000-000000000000'))).toBe('NOT_FOUND');
    expect(await errorCode(removeMember(tenant.owner, 'garbage'))).toBe('NOT_FOUND');
    expect(await errorCode(setRole(tenant.owner, member.id, 'VIEWER'))).toBe('NOT_FOUND');
  });

  it('removing the last membership deletes the account, so the email can be added afresh; old tokens stay dead', async () => {
    const member = await newMember(tenant, 'MEMBER');
    await removeMember(tenant.owner, member.id);
    const accounts = await app.server.services.platform.pool.query('SELECT id FROM platform."User" WHERE email = $1', [member.email]);
    expect(accounts.rows).toEqual([]);
    const again = await addMember(tenant.owner, { email: member.email, name: 'Back Again', password: `${PASSWORD}-2`, role: 'MEMBER' });
    expect(again.id).not.toBe(member.id);
    expect(await errorCode(refresh(member.tokens.refreshToken))).toBe('UNAUTHENTICATED');
    expect(await errorCode(me(member.client))).toBe('UNAUTHENTICATED');
    expect(await errorCode(login(tenant.slug, member.email, PASSWORD))).toBe('UNAUTHENTICATED');
    const fresh = await login(tenant.slug, member.email, `${PASSWORD}-2`);
    expect(await me(app.bearer(fresh.accessToken))).toMatchObject({ id: again.id, name: 'Back Again', role: 'MEMBER' });
  });

  it('cannot manage members of another tenant', async () => {
    const foreign = await newMember(otherTenant, 'VIEWER');
    expect(await errorCode(setRole(tenant.owner, foreign.id, 'MEMBER'))).toBe('NOT_FOUND');
    expect(await errorCode(removeMember(tenant.owner, foreign.id))).toBe('NOT_FOUND');
    expect((await me(foreign.client)).role).toBe('VIEWER');
  });
});

describe('invitations', () => {
  const DAY = 24 * 60 * 60 * 1000;

  /** A member of the other tenant: someone an invitation can reach. */
  const invitee = (label: string) => newMember(otherTenant, 'MEMBER', label);

  it('name an email only; the addressee accepts with the code, sets a new password and signs in with it', async () => {
    const person = await invitee('invitee');
    const secondDevice = await login(otherTenant.slug, person.email, PASSWORD);
    const before = Date.now();
    const invitation = await invite(tenant.owner, ` ${person.email.toUpperCase()} `, 'MANAGER');
    expect(invitation).toEqual({
      id: expect.any(String),
      email: person.email,
      role: 'MANAGER',
      invitedAt: expect.any(String),
      expiresAt: expect.any(String),
      code: expect.stringMatching(/^inv_[A-Za-z0-9_-]{43}$/),
    });
    expect(Date.parse(invitation.expiresAt) - before).toBeGreaterThan(7 * DAY - 60_000);
    expect(Date.parse(invitation.expiresAt) - before).toBeLessThan(7 * DAY + 60_000);
    expect(await invitationIds(tenant.owner)).toContain(invitation.id);
    // The code is shown once: stored only as a hash.
    const stored = await app.server.services.platform.pool.query('SELECT * FROM platform."Invitation" WHERE id = $1', [invitation.id]);
    expect(JSON.stringify(stored.rows)).not.toContain(invitation.code.slice(4));
    // Pending: not a member, cannot sign in to the inviting tenant.
    expect((await members(tenant.owner)).some((member) => member.email === person.email)).toBe(false);
    expect(await errorCode(login(tenant.slug, person.email, PASSWORD))).toBe('UNAUTHENTICATED');

    expect((await accept(person.client, invitation.code)).acceptInvitation).toEqual({ tenantSlug: tenant.slug, role: 'MANAGER', signedOutSessions: 1 });

    const joined = await login(tenant.slug, person.email, OWN_PASSWORD);
    expect(await me(app.bearer(joined.accessToken))).toMatchObject({ id: person.id, role: 'MANAGER', tenant: { id: tenant.id } });
    // The session that accepted lives on; the account's other sessions and its old password do not.
    expect((await me(person.client)).role).toBe('MEMBER');
    expect(await errorCode(refresh(secondDevice.refreshToken))).toBe('UNAUTHENTICATED');
    for (const slug of [tenant.slug, otherTenant.slug]) expect(await errorCode(login(slug, person.email, PASSWORD))).toBe('UNAUTHENTICATED');
    expect((await members(tenant.owner)).find((member) => member.id === person.id)).toMatchObject({ name: 'invitee person', role: 'MANAGER' });
    // Used up.
    expect(await invitationIds(tenant.owner)).not.toContain(invitation.id);
    expect(await failure(accept(person.client, invitation.code, 'yet-another-password'))).toMatchObject({ code: 'NOT_FOUND' });
    // Removed from the inviting tenant, the account lives on at home.
    await removeMember(tenant.owner, person.id);
    expect((await me(app.bearer((await login(otherTenant.slug, person.email, OWN_PASSWORD)).accessToken))).role).toBe('MEMBER');
  });

  it('the email alone is not enough: an account an admin made for that address cannot take the invitation without the code', async () => {
    // An ADMIN of one tenant creates an account for an address they do not own, then another
    // tenant invites that address: the squatter must not end up in the other tenant.
    const address = newEmail('cfo');
    await addMember(otherTenant.owner, { email: address, name: 'Squatter', password: PASSWORD, role: 'VIEWER' });
    const squatter = app.bearer((await login(otherTenant.slug, address, PASSWORD)).accessToken);
    const invitation = await invite(tenant.owner, address, 'ADMIN');
    for (const code of ['inv_guess', invitation.code.slice(0, -1) + (invitation.code.endsWith('A') ? 'B' : 'A'), '']) {
      expect(await failure(accept(squatter, code))).toMatchObject({ code: 'NOT_FOUND', status: 200 });
      expect(await failure(squatter.request(DECLINE, { code }))).toMatchObject({ code: 'NOT_FOUND', status: 200 });
    }
    expect(await errorCode(login(tenant.slug, address, PASSWORD))).toBe('UNAUTHENTICATED');
    expect(await errorCode(login(tenant.slug, address, OWN_PASSWORD))).toBe('UNAUTHENTICATED');
    expect(await invitationIds(tenant.owner)).toContain(invitation.id);
    // Nothing about the account changed either: the squatter still signs in where they were.
    expect((await login(otherTenant.slug, address, PASSWORD)).accessToken).toEqual(expect.any(String));
  });

  it('refuses a wrong current password, a new one too short or the same as the current one, and then nothing changes', async () => {
    const person = await invitee('same-password');
    const invitation = await invite(tenant.owner, person.email, 'MEMBER');
    // A session alone (a leaked token) cannot set the account's password.
    expect(await failure(accept(person.client, invitation.code, OWN_PASSWORD, 'not-the-password'))).toMatchObject({ code: 'BAD_USER_INPUT', field: 'currentPassword' });
    expect(await failure(accept(person.client, invitation.code, PASSWORD))).toMatchObject({ code: 'BAD_USER_INPUT', field: 'newPassword' });
    expect(await failure(accept(person.client, invitation.code, 'short'))).toMatchObject({ code: 'BAD_USER_INPUT', field: 'newPassword' });
    expect(await invitationIds(tenant.owner)).toContain(invitation.id);
    expect(await errorCode(login(tenant.slug, person.email, PASSWORD))).toBe('UNAUTHENTICATED');
    expect((await login(otherTenant.slug, person.email, PASSWORD)).accessToken).toEqual(expect.any(String));
    expect((await accept(person.client, invitation.code)).acceptInvitation.role).toBe('MEMBER');
  });

  it('the code works only for the addressee', async () => {
    const person = await invitee('addressee');
    const bystander = await newMember(otherTenant, 'ADMIN', 'bystander');
    const invitation = await invite(tenant.owner, person.email, 'VIEWER');
    for (const client of [bystander.client, otherTenant.owner, tenant.owner]) {
      expect(await failure(accept(client, invitation.code))).toMatchObject({ code: 'NOT_FOUND', status: 200 });
      expect(await failure(client.request(DECLINE, { code: invitation.code }))).toMatchObject({ code: 'NOT_FOUND', status: 200 });
    }
    expect(await invitationIds(tenant.owner)).toContain(invitation.id);
    expect(await errorCode(login(tenant.slug, bystander.email, PASSWORD))).toBe('UNAUTHENTICATED');
    expect((await login(otherTenant.slug, bystander.email, PASSWORD)).accessToken).toEqual(expect.any(String));
    expect((await accept(person.client, invitation.code)).acceptInvitation.role).toBe('VIEWER');
  });

  it('declined or revoked, it is gone and its code no longer works', async () => {
    const person = await invitee('decliner');
    const declined = await invite(tenant.owner, person.email, 'MEMBER');
    expect((await person.client.request(DECLINE, { code: declined.code })).declineInvitation.declinedId).toBe(declined.id);
    expect(await invitationIds(tenant.owner)).not.toContain(declined.id);
    expect(await errorCode(accept(person.client, declined.code))).toBe('NOT_FOUND');

    const revoked = await invite(tenant.owner, person.email, 'MEMBER');
    expect((await tenant.owner.request(REVOKE_INVITATION, { id: revoked.id })).revokeInvitation.revokedId).toBe(revoked.id);
    expect(await errorCode(accept(person.client, revoked.code))).toBe('NOT_FOUND');
    expect(await errorCode(person.client.request(DECLINE, { code: revoked.code }))).toBe('NOT_FOUND');
    expect(await errorCode(tenant.owner.request(REVOKE_INVITATION, { id: revoked.id }))).toBe('NOT_FOUND');
    expect(await errorCode(tenant.owner.request(REVOKE_INVITATION, { id: 'garbage' }))).toBe('NOT_FOUND');
    expect(await errorCode(login(tenant.slug, person.email, PASSWORD))).toBe('UNAUTHENTICATED');
    expect((await login(otherTenant.slug, person.email, PASSWORD)).accessToken).toEqual(expect.any(String));
  });

  it('inviting the same email again replaces the offer: one invitation, the new role, a fresh expiry, a new code', async () => {
    const person = await invitee('reinvited');
    const first = await invite(tenant.owner, person.email, 'VIEWER');
    const second = await invite(tenant.owner, person.email, 'MEMBER');
    expect(second).toMatchObject({ id: first.id, email: person.email, role: 'MEMBER' });
    expect(second.code).not.toBe(first.code);
    expect(Date.parse(second.expiresAt)).toBeGreaterThanOrEqual(Date.parse(first.expiresAt));
    const listed = (await tenant.owner.request(INVITATIONS)).invitations.filter((invitation) => invitation.email === person.email);
    const { code: _code, ...secondListed } = second;
    expect(listed).toEqual([secondListed]);
    expect(await errorCode(accept(person.client, first.code))).toBe('NOT_FOUND');
    expect((await accept(person.client, second.code)).acceptInvitation.role).toBe('MEMBER');
  });

  it('an old code caught mid-accept by a new invitation of the same email takes nothing (NOT_FOUND); the new code still works', async () => {
    for (const taker of ['accept', 'join'] as const) {
      const person = taker === 'accept' ? await invitee(`mid-${taker}`) : { email: newEmail(`mid-${taker}`), client: app.client() };
      const old = await invite(tenant.owner, person.email, 'ADMIN');
      // Hold the invitation row, let the taker find it by the old code and wait on the row, then
      // re-invite as VIEWER underneath it (what inviteMember writes: a new code, a new role).
      const { taking } = await withRowLocked(platformPool(), 'SELECT 1 FROM platform."Invitation" WHERE id = $1 FOR UPDATE', [old.id], async (lock) => {
        const pending = failure(
          taker === 'accept'
            ? accept(person.client, old.code)
            : app.client().request(JOIN, { input: { code: old.code, name: 'Mid Join', password: OWN_PASSWORD } }),
        );
        await lock.untilSomeoneWaits();
        await lock.query(`UPDATE platform."Invitation" SET "codeHash" = 'rewritten', role = 'VIEWER' WHERE id = $1`, [old.id]);
        return { taking: pending };
      });
      expect({ taker, outcome: await taking }).toMatchObject({ taker, outcome: { code: 'NOT_FOUND' } });
      const renewed = await invite(tenant.owner, person.email, 'VIEWER');
      expect(await errorCode(login(tenant.slug, person.email, OWN_PASSWORD))).toBe('UNAUTHENTICATED');
      const taken =
        taker === 'accept'
          ? (await accept(person.client, renewed.code)).acceptInvitation.role
          : (await me(app.bearer((await app.client().request(JOIN, { input: { code: renewed.code, name: 'Mid Join', password: OWN_PASSWORD } })).joinByInvitation.accessToken))).role;
      expect({ taker, taken }).toEqual({ taker, taken: 'VIEWER' });
    }
  });

  it('two concurrent invitations of one email leave one offer, whose code is the last one issued', async () => {
    const person = await invitee('twice');
    const offers = await Promise.all([0, 1].map(() => tenant.owner.request(INVITE, { input: { email: person.email, role: 'VIEWER' } })));
    expect(new Set(offers.map((offer) => offer.inviteMember.invitation.id)).size).toBe(1);
    // The email of a code already replaced when its job runs is not sent: one or two emails.
    await app.mail!.take(person.email, 'You are invited');
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    const codes = app.mail!.to(person.email).filter((mail) => mail.subject.includes('You are invited')).slice(-2).map((mail) => codeIn(mail, 'Invitation code'));
    const outcomes = await Promise.allSettled(codes.map((code) => accept(person.client, code)));
    expect(outcomes.filter((outcome) => outcome.status === 'fulfilled')).toHaveLength(1);
  });

  it('to an email whose account is created later, the same code can be accepted then', async () => {
    const email = newEmail('future');
    const invitation = await invite(tenant.owner, email, 'VIEWER');
    expect(Object.keys(invitation).sort()).toEqual(['code', 'email', 'expiresAt', 'id', 'invitedAt', 'role']);
    await addMember(otherTenant.owner, { email, name: 'Future Person', password: PASSWORD, role: 'VIEWER' });
    const client = app.bearer((await login(otherTenant.slug, email, PASSWORD)).accessToken);
    expect((await accept(client, invitation.code)).acceptInvitation).toEqual({ tenantSlug: tenant.slug, role: 'VIEWER', signedOutSessions: 0 });
  });

  it('someone with no account joins with the code, their own name and password, and is signed in to the tenant', async () => {
    const email = newEmail('newcomer');
    const invitation = await invite(tenant.owner, email, 'MANAGER');
    const signedIn = (await app.client().request(JOIN, { input: { code: invitation.code, name: ' New Comer ', password: OWN_PASSWORD } })).joinByInvitation;
    const newcomer = app.bearer(signedIn.accessToken);
    expect(await me(newcomer)).toMatchObject({ email, name: 'New Comer', role: 'MANAGER', tenant: { id: tenant.id } });
    expect((await refresh(signedIn.refreshToken)).accessToken).toEqual(expect.any(String));
    expect((await login(tenant.slug, email, OWN_PASSWORD)).accessToken).toEqual(expect.any(String));
    expect(await invitationIds(tenant.owner)).not.toContain(invitation.id);
    expect(await errorCode(app.client().request(JOIN, { input: { code: invitation.code, name: 'Again', password: OWN_PASSWORD } }))).toBe('NOT_FOUND');
    // A second tenant's invitation is accepted the usual way.
    const elsewhere = await invite(otherTenant.owner, email, 'VIEWER');
    expect((await accept(newcomer, elsewhere.code, 'another-own-password', OWN_PASSWORD)).acceptInvitation).toMatchObject({ tenantSlug: otherTenant.slug, role: 'VIEWER' });
  });

  it('joining is refused for an email that has an account (CONFLICT), a wrong or expired code (NOT_FOUND) and bad input, creating nothing', async () => {
    const person = await invitee('has-account');
    const toExisting = await invite(tenant.owner, person.email, 'VIEWER');
    const join = (input: { code: string; name: string; password: string }) => app.client().request(JOIN, { input });
    expect(await failure(join({ code: toExisting.code, name: 'Impostor', password: 'impostor-password' }))).toMatchObject({ code: 'CONFLICT', field: 'code' });
    expect(await errorCode(login(tenant.slug, person.email, 'impostor-password'))).toBe('UNAUTHENTICATED');
    expect(await invitationIds(tenant.owner)).toContain(toExisting.id);

    const email = newEmail('not-yet');
    const pending = await invite(tenant.owner, email, 'VIEWER');
    expect(await failure(join({ code: 'inv_wrong', name: 'X', password: OWN_PASSWORD }))).toMatchObject({ code: 'NOT_FOUND' });
    expect(await failure(join({ code: pending.code, name: '  ', password: OWN_PASSWORD }))).toMatchObject({ code: 'BAD_USER_INPUT', field: 'name' });
    expect(await failure(join({ code: pending.code, name: 'Short', password: 'short' }))).toMatchObject({ code: 'BAD_USER_INPUT', field: 'password' });
    await app.server.services.platform.pool.query(`UPDATE platform."Invitation" SET "expiresAt" = now() - interval '1 second' WHERE id = $1`, [pending.id]);
    expect(await failure(join({ code: pending.code, name: 'Late', password: OWN_PASSWORD }))).toMatchObject({ code: 'NOT_FOUND' });
    const accounts = await app.server.services.platform.pool.query('SELECT 1 FROM platform."User" WHERE email = $1', [email]);
    expect(accounts.rowCount).toBe(0);
  });

  it('refuses current members (CONFLICT), invalid emails (BAD_USER_INPUT) and roles above the inviter (FORBIDDEN)', async () => {
    const viewer = await newMember(tenant, 'VIEWER', 'already');
    expect(await failure(tenant.owner.request(INVITE, { input: { email: viewer.email, role: 'ADMIN' } }))).toMatchObject({ code: 'CONFLICT', field: 'email' });
    expect(await failure(tenant.owner.request(INVITE, { input: { email: 'not-an-email', role: 'VIEWER' } }))).toMatchObject({ code: 'BAD_USER_INPUT', field: 'email' });
    const admin = await newMember(tenant, 'ADMIN', 'inviter');
    const email = newEmail('too-high');
    expect(await failure(admin.client.request(INVITE, { input: { email, role: 'OWNER' } }))).toMatchObject({ code: 'FORBIDDEN' });
    expect((await tenant.owner.request(INVITATIONS)).invitations.some((invitation) => invitation.email === email)).toBe(false);
    expect((await me(viewer.client)).role).toBe('VIEWER');
  });

  it("never outlive the inviter's role: a demotion voids those above the new role, a removal all of them", async () => {
    const inviter = await newMember(tenant, 'ADMIN', 'inviter');
    const asAdmin = await invite(inviter.client, newEmail('admin-offer'), 'ADMIN');
    const asViewer = await invite(inviter.client, newEmail('viewer-offer'), 'VIEWER');
    const asMember = await invite(inviter.client, newEmail('member-offer'), 'MEMBER');
    const join = (code: string) => app.client().request(JOIN, { input: { code, name: 'Joiner', password: OWN_PASSWORD } });

    await setRole(tenant.owner, inviter.id, 'MEMBER');
    expect(await invitationIds(tenant.owner)).not.toContain(asAdmin.id);
    expect(await errorCode(join(asAdmin.code))).toBe('NOT_FOUND');
    expect((await join(asViewer.code)).joinByInvitation.accessToken).toEqual(expect.any(String));

    await removeMember(tenant.owner, inviter.id);
    expect(await invitationIds(tenant.owner)).not.toContain(asMember.id);
    expect(await errorCode(join(asMember.code))).toBe('NOT_FOUND');
  });

  it('an invitation sent while the inviter is being demoted waits for the demotion, and is refused', async () => {
    const inviter = await newMember(tenant, 'ADMIN', 'demoted-inviter');
    const email = newEmail('mid-demotion');
    const { inviting } = await withRowLocked(platformPool(), LOCK_MEMBERSHIPS, [inviter.id], async (lock) => {
      const inviting = failure(invite(inviter.client, email, 'ADMIN'));
      await lock.untilSomeoneWaits();
      await lock.query(`UPDATE platform."Membership" SET role = 'VIEWER' WHERE "userId" = $1`, [inviter.id]);
      return { inviting };
    });
    expect(await inviting).toMatchObject({ code: 'FORBIDDEN' });
    const offered = await app.server.services.platform.pool.query('SELECT 1 FROM platform."Invitation" WHERE email = $1', [email]);
    expect(offered.rowCount).toBe(0);
  });

  it('an expired invitation is neither listed nor accepted', async () => {
    const person = await invitee('late');
    const invitation = await invite(tenant.owner, person.email, 'VIEWER');
    await app.server.services.platform.pool.query(`UPDATE platform."Invitation" SET "expiresAt" = now() - interval '1 second' WHERE id = $1`, [invitation.id]);
    expect(await invitationIds(tenant.owner)).not.toContain(invitation.id);
    expect(await errorCode(accept(person.client, invitation.code))).toBe('NOT_FOUND');
    expect(await errorCode(login(tenant.slug, person.email, OWN_PASSWORD))).toBe('UNAUTHENTICATED');
    // The tenant's next invitation sweeps it away.
    await invite(tenant.owner, newEmail('sweeper'), 'VIEWER');
    const rows = await app.server.services.platform.pool.query('SELECT id FROM platform."Invitation" WHERE id = $1', [invitation.id]);
    expect(rows.rows).toEqual([]);
  });

  it('accepted while the account is being deleted with its last membership: NOT_FOUND, no orphan membership', async () => {
    const person = await invitee('vanishing');
    const invitation = await invite(tenant.owner, person.email, 'MEMBER');
    // Catch the removal of the person's last membership after it locked the account, at its
    // sessions (held here), and send the accept in then: it queues on the account row.
    const { removing, accepting } = await withRowLocked(platformPool(), LOCK_SESSIONS, [person.id], async (lock) => {
      const removing = removeMember(otherTenant.owner, person.id);
      await lock.untilSomeoneWaits();
      const accepting = failure(accept(person.client, invitation.code));
      await lock.untilSomeoneWaits(2);
      return { removing, accepting };
    });
    expect(await removing).toBe(person.id);
    expect(await accepting).toMatchObject({ code: 'NOT_FOUND', status: 200 });
    const left = await app.server.services.platform.pool.query('SELECT 1 FROM platform."Membership" WHERE "userId" = $1', [person.id]);
    expect(left.rowCount).toBe(0);
    // The offer was not used up: it is still the tenant's, for whoever registers that email later.
    expect(await invitationIds(tenant.owner)).toContain(invitation.id);
  });

  it("of a suspended tenant: TENANT_SUSPENDED, and the code still works once it is reactivated", async () => {
    const paused = await app.createTenant(undefined, 'ENTERPRISE');
    const person = await invitee('paused');
    const forMember = await invite(paused.owner, person.email, 'VIEWER');
    const newcomerEmail = newEmail('paused-newcomer');
    const forNewcomer = await invite(paused.owner, newcomerEmail, 'VIEWER');
    const admin = await app.admin();
    const SUSPEND = graphql(`mutation AuthSuspendTenant($id: ID!) { suspendTenant(id: $id) { tenant { status } } }`);
    const REACTIVATE = graphql(`mutation AuthReactivateTenant($id: ID!) { reactivateTenant(id: $id) { tenant { status } } }`);
    await admin.request(SUSPEND, { id: paused.id });
    const join = () => app.client().request(JOIN, { input: { code: forNewcomer.code, name: 'Paused Newcomer', password: OWN_PASSWORD } });
    expect(await failure(accept(person.client, forMember.code))).toMatchObject({ code: 'TENANT_SUSPENDED' });
    expect(await failure(join())).toMatchObject({ code: 'TENANT_SUSPENDED' });
    const accounts = await app.server.services.platform.pool.query('SELECT 1 FROM platform."User" WHERE email = $1', [newcomerEmail]);
    expect(accounts.rowCount).toBe(0);

    await admin.request(REACTIVATE, { id: paused.id });
    expect((await accept(person.client, forMember.code)).acceptInvitation.tenantSlug).toBe(paused.slug);
    expect((await join()).joinByInvitation.accessToken).toEqual(expect.any(String));
  });

  it('is refused to platform admins and signed-out callers', async () => {
    const admin = await app.admin();
    const { code } = await invite(tenant.owner, newEmail('for-admin'), 'VIEWER');
    expect(await errorCode(accept(admin, code))).toBe('FORBIDDEN');
    expect(await errorCode(admin.request(INVITE, { input: { email: newEmail('by-admin'), role: 'VIEWER' } }))).toBe('FORBIDDEN');
    expect(await errorCode(accept(app.client(), code))).toBe('UNAUTHENTICATED');
  });
});

describe('role rules', () => {
  let admin: Awaited<ReturnType<typeof newMember>>;
  let ownerId: string;

  beforeAll(async () => {
    admin = await newMember(tenant, 'ADMIN');
    ownerId = (await me(tenant.owner)).id;
  });

  it('an ADMIN cannot grant OWNER, by adding or by promoting', async () => {
    const email = newEmail('would-be-owner');
    expect(await failure(addMember(admin.client, { email, name: 'X', password: PASSWORD, role: 'OWNER' }))).toMatchObject({ code: 'FORBIDDEN' });
    expect((await members(tenant.owner)).some((member) => member.email === email)).toBe(false);
    const viewer = await newMember(tenant, 'VIEWER');
    expect(await failure(setRole(admin.client, viewer.id, 'OWNER'))).toMatchObject({ code: 'FORBIDDEN' });
    expect(await failure(setRole(admin.client, admin.id, 'OWNER'))).toMatchObject({ code: 'FORBIDDEN' });
    expect((await me(viewer.client)).role).toBe('VIEWER');
    expect((await me(admin.client)).role).toBe('ADMIN');
  });

  it('an ADMIN cannot change or remove an OWNER', async () => {
    expect(await failure(setRole(admin.client, ownerId, 'VIEWER'))).toMatchObject({ code: 'FORBIDDEN' });
    expect(await failure(removeMember(admin.client, ownerId))).toMatchObject({ code: 'FORBIDDEN' });
    expect((await me(tenant.owner)).role).toBe('OWNER');
  });

  it('an ADMIN can add, promote up to ADMIN, demote and remove lower members', async () => {
    const email = newEmail('by-admin');
    const added = await addMember(admin.client, { email, name: 'By Admin', password: PASSWORD, role: 'ADMIN' });
    expect(added.role).toBe('ADMIN');
    expect((await setRole(admin.client, added.id, 'VIEWER')).role).toBe('VIEWER');
    expect((await setRole(admin.client, added.id, 'MANAGER')).role).toBe('MANAGER');
    expect(await removeMember(admin.client, added.id)).toBe(added.id);
  });

  it("an ADMIN demoted while their removal of someone is under way removes no one (FORBIDDEN)", async () => {
    const demoted = await newMember(tenant, 'ADMIN', 'demoted-remover');
    const target = await newMember(tenant, 'MEMBER', 'spared');
    // Member changes queue on the tenant's OWNER rows: hold them, demote the ADMIN meanwhile.
    const lockOwners = `SELECT 1 FROM platform."Membership" WHERE "tenantId" = $1 AND role = 'OWNER' FOR UPDATE`;
    const { removing } = await withRowLocked(platformPool(), lockOwners, [tenant.id], async (lock) => {
      const removing = failure(removeMember(demoted.client, target.id));
      await lock.untilSomeoneWaits();
      await lock.query(`UPDATE platform."Membership" SET role = 'VIEWER' WHERE "userId" = $1 AND "tenantId" = $2`, [demoted.id, tenant.id]);
      return { removing };
    });
    expect(await removing).toMatchObject({ code: 'FORBIDDEN' });
    expect((await me(target.client)).role).toBe('MEMBER');
  });

  it('the last OWNER can be neither demoted nor removed (CONFLICT)', async () => {
    const solo = await app.createTenant(undefined, 'ENTERPRISE');
    const soloOwnerId = (await me(solo.owner)).id;
    expect(await failure(setRole(solo.owner, soloOwnerId, 'ADMIN'))).toMatchObject({ code: 'CONFLICT', field: 'role' });
    expect(await failure(removeMember(solo.owner, soloOwnerId))).toMatchObject({ code: 'CONFLICT', field: 'userId' });
    // Setting the last OWNER to OWNER again is no demotion.
    expect((await setRole(solo.owner, soloOwnerId, 'OWNER')).role).toBe('OWNER');
    expect(await me(solo.owner)).toMatchObject({ role: 'OWNER' });
  });

  it('with two OWNERs one can be demoted or removed, and then the other is the last', async () => {
    const duo = await app.createTenant(undefined, 'ENTERPRISE');
    const firstId = (await me(duo.owner)).id;
    const second = await newMember(duo, 'ADMIN', 'second-owner');
    expect((await setRole(duo.owner, second.id, 'OWNER')).role).toBe('OWNER');
    expect((await setRole(second.client, firstId, 'ADMIN')).role).toBe('ADMIN');
    expect(await failure(setRole(second.client, second.id, 'ADMIN'))).toMatchObject({ code: 'CONFLICT' });
    // The demoted first owner is now an ADMIN and cannot touch the remaining OWNER.
    expect(await failure(removeMember(duo.owner, second.id))).toMatchObject({ code: 'FORBIDDEN' });
    // Promote back, then remove the first owner entirely.
    await setRole(second.client, firstId, 'OWNER');
    expect(await removeMember(second.client, firstId)).toBe(firstId);
    expect(await failure(removeMember(second.client, second.id))).toMatchObject({ code: 'CONFLICT' });
    expect((await members(second.client)).filter((member) => member.role === 'OWNER').map((member) => member.id)).toEqual([second.id]);
  });

  it('two concurrent demotions of the only two OWNERs leave at least one OWNER', async () => {
    const duo = await app.createTenant(undefined, 'ENTERPRISE');
    const firstId = (await me(duo.owner)).id;
    const second = await newMember(duo, 'ADMIN', 'racing-owner');
    const clients = new Map([
      [firstId, duo.owner],
      [second.id, second.client],
    ]);
    await setRole(duo.owner, second.id, 'OWNER');

    for (let round = 0; round < 6; round += 1) {
      // Alternate between "each demotes the other" and "each demotes themself".
      const [firstTarget, secondTarget] = round % 2 === 0 ? [second.id, firstId] : [firstId, second.id];
      const results = await Promise.allSettled([
        setRole(duo.owner, firstTarget, 'MEMBER'),
        setRole(second.client, secondTarget, 'MEMBER'),
      ]);
      // Demoted members keep their sessions and may still list members.
      const owners = (await members(duo.owner)).filter((member) => member.role === 'OWNER');
      expect(owners.length).toBeGreaterThanOrEqual(1);
      expect(results.filter((result) => result.status === 'fulfilled')).toHaveLength(1);
      for (const result of results) {
        if (result.status === 'rejected') {
          const { errors } = await expectErrors(Promise.reject(result.reason));
          expect(['CONFLICT', 'FORBIDDEN']).toContain(errors[0]!.extensions.code);
        }
      }
      // The surviving OWNER makes the other one OWNER again for the next round.
      const survivor = owners[0]!.id;
      await setRole(clients.get(survivor)!, survivor === firstId ? second.id : firstId, 'OWNER');
    }
  });

  it('two concurrent removals of the only two OWNERs leave one OWNER', async () => {
    const duo = await app.createTenant(undefined, 'ENTERPRISE');
    const firstId = (await me(duo.owner)).id;
    const second = await newMember(duo, 'ADMIN', 'removing-owner');
    await setRole(duo.owner, second.id, 'OWNER');
    const results = await Promise.allSettled([removeMember(duo.owner, second.id), removeMember(second.client, firstId)]);
    expect(results.filter((result) => result.status === 'fulfilled')).toHaveLength(1);
    const survivor = results[0]!.status === 'fulfilled' ? duo.owner : second.client;
    const left = await members(survivor);
    expect(left.filter((member) => member.role === 'OWNER')).toHaveLength(1);
  });
});
