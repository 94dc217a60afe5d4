import jwt from 'jsonwebtoken';
import type { GraphQLClient } from '../support/graphql-request';
import { withRowLocked } from '../support/row-lock';
import { readTestServices } from '../support/services';
import { errorCode, expectErrors, startTestServer, uniqueSlug, type TenantFixture, type TestServer } from '../support/test-server';
import { graphql } from '../generated';
import type { Role, SwitchMeQuery } from '../generated/graphql';

/*
 * An account in several tenants: `me.memberships` lists them, `switchTenant` moves the sign-in
 * from one to another without the password. Over HTTP against a real server and database.
 */

/** The values tests/support/test-server.ts configures (JWT_SECRET) and the config defaults (issuer, audience). */
const JWT_SECRET = 'test-jwt-secret-0123456789abcdef-0123456789';
const ISSUER = 'fleet-graphql';
const AUDIENCE = 'fleet-graphql-api';

const LOGIN = graphql(`mutation SwitchLogin($input: LoginInput!) { login(input: $input) { accessToken refreshToken expiresAt } }`);
const REFRESH = graphql(`mutation SwitchRefresh($token: String!) { refreshToken(token: $token) { accessToken refreshToken } }`);
const LOGOUT = graphql(`mutation SwitchLogout { logout { success } }`);
const SWITCH = graphql(`mutation SwitchTenant($tenant: String!) { switchTenant(tenant: $tenant) { accessToken refreshToken expiresAt } }`);
const ME = graphql(`query SwitchMe($first: Int, $after: String) {
  me { id kind role tenant { id slug } memberships(first: $first, after: $after) { tenant { id slug name } role joinedAt current } }
}`);
const ADD_MEMBER = graphql(`mutation SwitchAddMember($input: AddMemberInput!) { addMember(input: $input) { member { id } } }`);
const INVITE = graphql(`mutation SwitchInvite($input: InviteMemberInput!) { inviteMember(input: $input) { invitation { id } } }`);
const ACCEPT = graphql(`mutation SwitchAccept($input: AcceptInvitationInput!) { acceptInvitation(input: $input) { tenantSlug role } }`);
const UPDATE_ROLE = graphql(`mutation SwitchUpdateRole($userId: ID!, $role: Role!) { updateMemberRole(userId: $userId, role: $role) { member { role } } }`);
const REMOVE_MEMBER = graphql(`mutation SwitchRemoveMember($userId: ID!) { removeMember(userId: $userId) { removedUserId } }`);
const CREATE_VEHICLE = graphql(`mutation SwitchCreateVehicle($input: CreateVehicleInput!) { createVehicle(input: $input) { vehicle { id plate } } }`);
const VEHICLES = graphql(`query SwitchVehicles { vehicles(first: 50) { edges { node { id plate } } } }`);
const VEHICLE = graphql(`query SwitchVehicle($id: ID!) { vehicle(id: $id) { id plate } }`);
const CREATE_API_KEY = graphql(`mutation SwitchCreateApiKey($input: CreateApiKeyInput!) { createApiKey(input: $input) { secret } }`);
const SUSPEND = graphql(`mutation SwitchSuspend($id: ID!) { suspendTenant(id: $id) { tenant { status } } }`);

let app: TestServer;
/** The account's home: it was added here as a MANAGER. */
let A: TenantFixture;
/** Invited into as a VIEWER. */
let B: TenantFixture;
/** Not a member. */
let C: TenantFixture;
/** Invited into as a MEMBER, suspended by the platform halfway through. */
let S: TenantFixture;
const vehicleOf = new Map<string, { id: string; plate: string }>();

interface Account {
  id: string;
  email: string;
  password: string;
}
let account: Account;

let counter = 0;
const unique = (label: string) => `${label}-${(counter += 1)}-${Date.now().toString(36)}`;

const login = async (slug: string, who: Account) => (await app.client().request(LOGIN, { input: { tenant: slug, email: who.email, password: who.password } })).login;
const switchTo = async (client: GraphQLClient, slug: string) => (await client.request(SWITCH, { tenant: slug })).switchTenant;
const me = async (client: GraphQLClient, page: { first?: number; after?: string } = {}): Promise<SwitchMeQuery['me']> => (await client.request(ME, page)).me;
const plates = async (client: GraphQLClient) => (await client.request(VEHICLES)).vehicles.edges.map((edge) => edge.node.plate).sort();
const platformPool = () => app.server.services.platform.pool;

function claimsOf(token: string): { sub: string; sid: string; tid?: string; role: string } {
  const decoded = jwt.decode(token);
  if (!decoded || typeof decoded === 'string') throw new Error('not a JWT');
  return decoded as { sub: string; sid: string; tid?: string; role: string };
}

async function sessionRow(id: string): Promise<{ tenantId: string | null; expiresAt: Date; revokedAt: Date | null; revokedReason: string | null }> {
  const result = await platformPool().query('SELECT "tenantId", "expiresAt", "revokedAt", "revokedReason" FROM platform."Session" WHERE id = $1', [id]);
  const row = result.rows[0];
  if (!row) throw new Error(`no session ${id}`);
  return row;
}

const liveSessionsIn = async (userId: string, tenantId: string) =>
  Number(
    (
      await platformPool().query<{ n: string }>(
        'SELECT count(*) AS n FROM platform."Session" WHERE "userId" = $1 AND "tenantId" = $2 AND "revokedAt" IS NULL',
        [userId, tenantId],
      )
    ).rows[0]?.n,
  );

/** A new account, added to `home` as `role` by its owner. */
async function newAccount(home: TenantFixture, role: Role): Promise<Account> {
  const email = `${unique('multi')}@switch.test`;
  const password = 'switch-password-0';
  const added = await home.owner.request(ADD_MEMBER, { input: { email, name: 'Multi Tenant', password, role } });
  return { id: added.addMember.member.id, email, password };
}

/** `who` (signed in to `from`) accepts an invitation into `into` as `role`; accepting sets a new password. */
async function join(who: Account, from: TenantFixture, into: TenantFixture, role: Role): Promise<void> {
  const client = app.bearer((await login(from.slug, who)).accessToken);
  await into.owner.request(INVITE, { input: { email: who.email, role } });
  const code = await app.invitationCode(who.email);
  const newPassword = unique('switch-password');
  expect((await client.request(ACCEPT, { input: { code, currentPassword: who.password, newPassword } })).acceptInvitation).toEqual({ tenantSlug: into.slug, role });
  who.password = newPassword;
}

beforeAll(async () => {
  app = await startTestServer();
  // ENTERPRISE: the most generous request budget.
  [A, B, C, S] = await Promise.all([
    app.createTenant(uniqueSlug('alpha'), 'ENTERPRISE'),
    app.createTenant(uniqueSlug('bravo'), 'ENTERPRISE'),
    app.createTenant(uniqueSlug('charlie'), 'ENTERPRISE'),
    app.createTenant(uniqueSlug('sierra'), 'ENTERPRISE'),
  ]);
  for (const fixture of [A, B, C, S]) {
    const created = await fixture.owner.request(CREATE_VEHICLE, { input: { plate: `${fixture.slug}-1`.toUpperCase(), make: 'Volvo', model: 'FH', year: 2022 } });
    vehicleOf.set(fixture.slug, created.createVehicle.vehicle);
  }
  account = await newAccount(A, 'MANAGER');
  await join(account, A, B, 'VIEWER');
  await join(account, A, S, 'MEMBER');
});

afterAll(async () => {
  await app.close();
});

describe('me.memberships', () => {
  it('lists every ACTIVE tenant of the account by slug, with its role there and which one this session acts in', async () => {
    const viewer = await me(app.bearer((await login(A.slug, account)).accessToken));
    const expected = [
      { fixture: A, role: 'MANAGER', current: true },
      { fixture: B, role: 'VIEWER', current: false },
      { fixture: S, role: 'MEMBER', current: false },
    ]
      .sort((x, y) => x.fixture.slug.localeCompare(y.fixture.slug))
      .map(({ fixture, role, current }) => ({ tenant: { id: fixture.id, slug: fixture.slug, name: `Tenant ${fixture.slug}` }, role, current }));
    expect(viewer.memberships?.map(({ joinedAt: _joinedAt, ...rest }) => rest)).toEqual(expected);
    expect(viewer.memberships?.every((membership) => !Number.isNaN(Date.parse(membership.joinedAt)))).toBe(true);
    // Nobody else's: C, where the account is no member, and its owner are nowhere.
    expect(viewer.memberships?.map((membership) => membership.tenant.id)).not.toContain(C.id);
  });

  it('pages by slug: `first` of them, then the ones after the last slug', async () => {
    const client = app.bearer((await login(A.slug, account)).accessToken);
    const all = (await me(client)).memberships?.map((membership) => membership.tenant.slug) ?? [];
    expect(all).toHaveLength(3);
    const first = (await me(client, { first: 2 })).memberships?.map((membership) => membership.tenant.slug);
    expect(first).toEqual(all.slice(0, 2));
    const rest = (await me(client, { first: 2, after: all[1] as string })).memberships?.map((membership) => membership.tenant.slug);
    expect(rest).toEqual(all.slice(2));
    expect((await me(client, { after: all[2] as string })).memberships).toEqual([]);
    const invalidPages: { first?: number; after?: string }[] = [{ first: 0 }, { first: 101 }, { first: -1 }, { after: 'Not A Slug' }, { after: 'x\u0000y' }];
    for (const page of invalidPages) {
      const { errors, data } = await expectErrors(client.request(ME, page));
      expect(errors.map((error) => error.extensions.code)).toEqual(['BAD_USER_INPUT']);
      expect((data as { me: { memberships: unknown } }).me.memberships).toBeNull();
    }
  });

  it('an account in one tenant sees that one only', async () => {
    const loner = await newAccount(C, 'VIEWER');
    const viewer = await me(app.bearer((await login(C.slug, loner)).accessToken));
    expect(viewer.memberships).toEqual([{ tenant: { id: C.id, slug: C.slug, name: `Tenant ${C.slug}` }, role: 'VIEWER', joinedAt: expect.any(String), current: true }]);
  });
});

describe('switchTenant', () => {
  it("issues a session in the other tenant, with the account's role there: that tenant's data, never the first's", async () => {
    const start = await login(A.slug, account);
    const inA = app.bearer(start.accessToken);
    expect(await plates(inA)).toEqual([vehicleOf.get(A.slug)?.plate]);

    const switched = await switchTo(inA, B.slug);
    const inB = app.bearer(switched.accessToken);
    const viewer = await me(inB);
    expect(viewer).toMatchObject({ id: account.id, kind: 'TENANT_MEMBER', role: 'VIEWER', tenant: { id: B.id, slug: B.slug } });
    expect(viewer.memberships?.find((membership) => membership.current)?.tenant.id).toBe(B.id);
    expect(claimsOf(switched.accessToken)).toMatchObject({ sub: account.id, tid: B.id, role: 'VIEWER' });
    expect(await plates(inB)).toEqual([vehicleOf.get(B.slug)?.plate]);
    expect((await inB.request(VEHICLE, { id: vehicleOf.get(A.slug)?.id as string })).vehicle).toBeNull();
    // A VIEWER in B, whatever it is in A.
    expect(await errorCode(inB.request(CREATE_VEHICLE, { input: { plate: unique('NO').toUpperCase(), make: 'x', model: 'y', year: 2020 } }))).toBe('FORBIDDEN');
    // The request must not name the other tenant than the token's.
    expect(await errorCode(app.bearer(switched.accessToken, { 'x-tenant': A.slug }).request(VEHICLES))).toBe('FORBIDDEN');

    // The first session has ended: its access token and its refresh token.
    expect(await errorCode(inA.request(VEHICLES))).toBe('UNAUTHENTICATED');
    expect(await errorCode(app.client().request(REFRESH, { token: start.refreshToken }))).toBe('UNAUTHENTICATED');
    const oldSession = await sessionRow(claimsOf(start.accessToken).sid);
    expect(oldSession).toMatchObject({ tenantId: A.id, revokedReason: 'switched tenant' });
    expect(oldSession.revokedAt).not.toBeNull();
    // The new one lasts no longer than the sign-in it came from.
    const newSession = await sessionRow(claimsOf(switched.accessToken).sid);
    expect(newSession).toMatchObject({ tenantId: B.id, revokedAt: null });
    expect(newSession.expiresAt.getTime()).toBe(oldSession.expiresAt.getTime());

    // Its refresh token rotates within B.
    const rotated = (await app.client().request(REFRESH, { token: switched.refreshToken })).refreshToken;
    expect(claimsOf(rotated.accessToken)).toMatchObject({ tid: B.id, role: 'VIEWER' });
    // And back, by a slug written any which way; the role is A's again.
    const back = await switchTo(app.bearer(rotated.accessToken), `  ${A.slug.toUpperCase()} `);
    expect(await me(app.bearer(back.accessToken))).toMatchObject({ role: 'MANAGER', tenant: { id: A.id } });
    expect(await plates(app.bearer(back.accessToken))).toEqual([vehicleOf.get(A.slug)?.plate]);
    expect(await errorCode(app.bearer(rotated.accessToken).request(VEHICLES))).toBe('UNAUTHENTICATED');
    expect(await errorCode(app.client().request(REFRESH, { token: rotated.refreshToken }))).toBe('UNAUTHENTICATED');
  });

  it("takes the role the account has in the target now, not when it joined", async () => {
    await B.owner.request(UPDATE_ROLE, { userId: account.id, role: 'MANAGER' });
    try {
      const switched = await switchTo(app.bearer((await login(A.slug, account)).accessToken), B.slug);
      expect(claimsOf(switched.accessToken).role).toBe('MANAGER');
      expect((await me(app.bearer(switched.accessToken))).role).toBe('MANAGER');
    } finally {
      await B.owner.request(UPDATE_ROLE, { userId: account.id, role: 'VIEWER' });
    }
  });

  it('to the tenant the session is already in: a new session there, the old one ended', async () => {
    const start = await login(A.slug, account);
    const again = await switchTo(app.bearer(start.accessToken), A.slug);
    expect(await me(app.bearer(again.accessToken))).toMatchObject({ role: 'MANAGER', tenant: { id: A.id } });
    expect(await errorCode(app.bearer(start.accessToken).request(VEHICLES))).toBe('UNAUTHENTICATED');
  });

  it('NOT_FOUND, word for word alike, for a tenant the account is not in, an unknown slug, a suspended tenant of the account, and slugs no tenant can have', async () => {
    const admin = await app.admin();
    expect((await admin.request(SUSPEND, { id: S.id })).suspendTenant.tenant.status).toBe('SUSPENDED');
    const start = await login(A.slug, account);
    const client = app.bearer(start.accessToken);
    // Suspended: no longer listed.
    expect((await me(client)).memberships?.map((membership) => membership.tenant.id).sort()).toEqual([A.id, B.id].sort());
    const before = await liveSessionsIn(account.id, S.id) + (await liveSessionsIn(account.id, C.id));
    const answers = new Set<string>();
    for (const slug of [C.slug, `${C.slug}-nope`, 'no-such-tenant', S.slug, '', '   ', 'x'.repeat(5000), 'a\u0000b', '../b', C.id]) {
      const { errors, data, status } = await expectErrors(client.request(SWITCH, { tenant: slug }));
      expect(data).toBeNull();
      expect(errors).toHaveLength(1);
      answers.add(JSON.stringify({ status, code: errors[0]?.extensions.code, message: errors[0]?.message }));
    }
    expect([...answers].map((answer) => JSON.parse(answer) as { code: string })).toEqual([expect.objectContaining({ code: 'NOT_FOUND' })]);
    // No session anywhere, and the caller's own is still live: a wrong slug costs nothing.
    expect(await liveSessionsIn(account.id, S.id) + (await liveSessionsIn(account.id, C.id))).toBe(before);
    expect((await me(client)).tenant?.id).toBe(A.id);
  });

  it('a session that was logged out cannot switch', async () => {
    const start = await login(A.slug, account);
    const client = app.bearer(start.accessToken);
    expect((await client.request(LOGOUT)).logout.success).toBe(true);
    const before = await liveSessionsIn(account.id, B.id);
    expect(await errorCode(client.request(SWITCH, { tenant: B.slug }))).toBe('UNAUTHENTICATED');
    expect(await liveSessionsIn(account.id, B.id)).toBe(before);
  });

  it('a removed membership cannot be switched into, and is no longer listed', async () => {
    const leaver = await newAccount(A, 'MEMBER');
    await join(leaver, A, B, 'MEMBER');
    const client = app.bearer((await login(A.slug, leaver)).accessToken);
    expect((await me(client)).memberships).toHaveLength(2);
    await B.owner.request(REMOVE_MEMBER, { userId: leaver.id });
    expect((await me(client)).memberships?.map((membership) => membership.tenant.id)).toEqual([A.id]);
    expect(await errorCode(client.request(SWITCH, { tenant: B.slug }))).toBe('NOT_FOUND');
    expect(await liveSessionsIn(leaver.id, B.id)).toBe(0);
    // And the refusal left the caller signed in.
    expect((await me(client)).tenant?.id).toBe(A.id);
  });

  it('API keys, platform admins and anonymous callers can neither switch nor list memberships', async () => {
    const secret = (await A.owner.request(CREATE_API_KEY, { input: { name: unique('switch-key'), role: 'ADMIN' } })).createApiKey.secret;
    const key = app.client({ 'x-api-key': secret });
    const admin = await app.admin();
    for (const caller of [key, admin]) {
      expect(await errorCode(caller.request(SWITCH, { tenant: A.slug }))).toBe('FORBIDDEN');
      const { errors, data } = await expectErrors(caller.request(ME, {}));
      expect(errors.map((error) => [error.extensions.code, error.path?.join('.')])).toEqual([['FORBIDDEN', 'me.memberships']]);
      expect((data as { me: { memberships: unknown } }).me.memberships).toBeNull();
    }
    expect(await errorCode(app.client().request(SWITCH, { tenant: A.slug }))).toBe('UNAUTHENTICATED');
    expect(await errorCode(app.client().request(ME, {}))).toBe('UNAUTHENTICATED');
  });

  it('two switches with one session: one goes through, the other finds the session ended', async () => {
    const start = await login(A.slug, account);
    const client = app.bearer(start.accessToken);
    const outcomes = await Promise.allSettled([switchTo(client, B.slug), switchTo(client, B.slug), switchTo(client, A.slug)]);
    expect(outcomes.filter((outcome) => outcome.status === 'fulfilled')).toHaveLength(1);
    const refused = outcomes.filter((outcome): outcome is PromiseRejectedResult => outcome.status === 'rejected');
    for (const refusal of refused) expect(await errorCode(Promise.reject(refusal.reason))).toBe('UNAUTHENTICATED');
  });

  it("a forged token (the account's live session in A, B's id as its tenant) or an expired one cannot switch", async () => {
    const start = await login(A.slug, account);
    const { sub, sid } = claimsOf(start.accessToken);
    const sign = (payload: object, expiresIn: number) => jwt.sign(payload, JWT_SECRET, { algorithm: 'HS256', issuer: ISSUER, audience: AUDIENCE, expiresIn });
    const before = await liveSessionsIn(account.id, C.id);
    for (const token of [
      sign({ sub, sid, tid: B.id, role: 'OWNER' }, 300),
      sign({ sub, sid, tid: C.id, role: 'OWNER' }, 300),
      sign({ sub, sid, tid: A.id, role: 'MANAGER' }, -10),
    ]) {
      expect(await errorCode(app.bearer(token).request(SWITCH, { tenant: C.slug }))).toBe('UNAUTHENTICATED');
    }
    expect(await liveSessionsIn(account.id, C.id)).toBe(before);
    // The real session was not disturbed by any of it.
    expect((await me(app.bearer(start.accessToken))).tenant?.id).toBe(A.id);
  });

  it("replaying the first session's refresh tokens after a switch ends nothing but that session", async () => {
    const start = await login(A.slug, account);
    const rotated = (await app.client().request(REFRESH, { token: start.refreshToken })).refreshToken;
    const switched = await switchTo(app.bearer(rotated.accessToken), B.slug);
    for (const token of [start.refreshToken, rotated.refreshToken, start.refreshToken]) {
      expect(await errorCode(app.client().request(REFRESH, { token }))).toBe('UNAUTHENTICATED');
    }
    expect((await me(app.bearer(switched.accessToken))).tenant?.id).toBe(B.id);
    const next = (await app.client().request(REFRESH, { token: switched.refreshToken })).refreshToken;
    expect(claimsOf(next.accessToken).tid).toBe(B.id);
  });

  it('is rate limited per caller (30 a minute): the 31st is RATE_LIMITED and leaves its session live', async () => {
    const limited = await startTestServer({ databaseUrl: app.databaseUrl, env: { REDIS_URL: readTestServices().redisUrl, RATE_LIMIT_ENABLED: 'true', SMTP_URL: app.mail!.url } });
    try {
      const who = await newAccount(A, 'VIEWER');
      let token = (await limited.client().request(LOGIN, { input: { tenant: A.slug, email: who.email, password: who.password } })).login.accessToken;
      for (let switches = 0; switches < 30; switches += 1) token = (await switchTo(limited.bearer(token), A.slug)).accessToken;
      expect(await errorCode(limited.bearer(token).request(SWITCH, { tenant: A.slug }))).toBe('RATE_LIMITED');
      expect((await me(limited.bearer(token))).tenant?.id).toBe(A.id);
    } finally {
      await limited.close();
    }
  });

  describe('racing what the account row lock orders', () => {
    /** The lock a password change and a member's removal take first (src/auth/account-lock.ts). */
    const LOCK_USER = 'SELECT 1 FROM platform."User" WHERE id = $1 FOR UPDATE';

    it('a removal from the target that commits while the switch waits: NOT_FOUND, no session there', async () => {
      const racer = await newAccount(A, 'VIEWER');
      await join(racer, A, B, 'VIEWER');
      const client = app.bearer((await login(A.slug, racer)).accessToken);
      const { switching } = await withRowLocked(platformPool(), LOCK_USER, [racer.id], async (lock) => {
        const pending = errorCode(client.request(SWITCH, { tenant: B.slug }));
        await lock.untilSomeoneWaits();
        await lock.query('DELETE FROM platform."Membership" WHERE "userId" = $1 AND "tenantId" = $2', [racer.id, B.id]);
        return { switching: pending };
      });
      expect(await switching).toBe('NOT_FOUND');
      expect(await liveSessionsIn(racer.id, B.id)).toBe(0);
      expect((await me(client)).tenant?.id).toBe(A.id);
    });

    it("a password change that ends the account's sessions while the switch waits: UNAUTHENTICATED, no session anywhere", async () => {
      const racer = await newAccount(A, 'VIEWER');
      await join(racer, A, B, 'VIEWER');
      const client = app.bearer((await login(A.slug, racer)).accessToken);
      const { switching } = await withRowLocked(platformPool(), LOCK_USER, [racer.id], async (lock) => {
        const pending = errorCode(client.request(SWITCH, { tenant: B.slug }));
        await lock.untilSomeoneWaits();
        await lock.query(`UPDATE platform."Session" SET "revokedAt" = now(), "revokedReason" = 'password changed' WHERE "userId" = $1 AND "revokedAt" IS NULL`, [racer.id]);
        return { switching: pending };
      });
      expect(await switching).toBe('UNAUTHENTICATED');
      expect((await liveSessionsIn(racer.id, A.id)) + (await liveSessionsIn(racer.id, B.id))).toBe(0);
    });
  });
});
