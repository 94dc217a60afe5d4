import http from 'node:http';
import { generateKeyPairSync } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { expectErrors, startTestServer, uniqueSlug, type TenantFixture, type TestServer } from '../support/test-server';
import { graphql } from '../generated';
import type { Role } from '../generated/graphql';

/*
 * Forged, stale and misused credentials over HTTP. Each must be refused with UNAUTHENTICATED
 * (FORBIDDEN where the credentials are fine but aim at the wrong tenant or the wrong kind of
 * data) and return no data at all.
 */

/** The values tests/support/test-server.ts configures (JWT_SECRET) and the config defaults (issuer, audience). */
const JWT_SECRET = 'test-jwt-secret-0123456789abcdef-0123456789';
const ISSUER = 'fleet-graphql';
const AUDIENCE = 'fleet-graphql-api';

const VEHICLES = graphql(`query TokenAttacksVehicles { vehicles(first: 100) { totalCount edges { node { id plate } } } }`);
const CREATE_VEHICLE = graphql(`mutation TokenAttacksCreateVehicle($input: CreateVehicleInput!) { createVehicle(input: $input) { vehicle { id plate } } }`);
const DELETE_VEHICLE = graphql(`mutation TokenAttacksDeleteVehicle($id: ID!) { deleteVehicle(id: $id) { deletedId } }`);
const ADD_MEMBER = graphql(`mutation TokenAttacksAddMember($input: AddMemberInput!) { addMember(input: $input) { member { id role } } }`);

let app: TestServer;
let A: TenantFixture;
let B: TenantFixture;
let aVehicleId: string;

interface Claims {
  sub: string;
  sid: string;
  tid?: string;
  role: string;
  iat: number;
  exp: number;
  iss: string;
  aud: string;
}

function claimsOf(token: string): Claims {
  const decoded = jwt.decode(token);
  if (!decoded || typeof decoded === 'string') throw new Error('not a JWT');
  return decoded as Claims;
}

const b64 = (value: object) => Buffer.from(JSON.stringify(value), 'utf8').toString('base64url');

/** A's owner's real claims, minus the registered ones jwt.sign sets from its options. */
function memberClaims(token: string): { sub: string; sid: string; tid?: string; role: string } {
  const { sub, sid, tid, role } = claimsOf(token);
  return { sub, sid, role, ...(tid ? { tid } : {}) };
}

function sign(payload: object, options: jwt.SignOptions & { secret?: jwt.Secret } = {}): string {
  const { secret = JWT_SECRET, ...signOptions } = options;
  return jwt.sign(payload, secret, { algorithm: 'HS256', issuer: ISSUER, audience: AUDIENCE, expiresIn: 300, ...signOptions });
}

/** The request fails as a whole with this code and HTTP status, and no data. */
async function expectRefused(request: Promise<unknown>, code: string, status: number): Promise<void> {
  const result = await expectErrors(request);
  expect(result.errors.map((error) => error.extensions.code)).toEqual([code]);
  expect(result.status).toBe(status);
  expect(result.data ?? null).toBeNull();
}

const expectUnauthenticated = (request: Promise<unknown>) => expectRefused(request, 'UNAUTHENTICATED', 401);
const expectForbidden = (request: Promise<unknown>) => expectRefused(request, 'FORBIDDEN', 403);

/** A field-level refusal (the access policy, after authentication): the code, and the field null. */
async function expectFieldRefused(request: Promise<unknown>, code: string): Promise<void> {
  const { errors, data } = await expectErrors(request);
  expect(errors.map((error) => error.extensions.code)).toEqual([code]);
  if (data !== null && data !== undefined) {
    expect(Object.values(data as Record<string, unknown>).every((value) => value === null)).toBe(true);
  }
}

async function vehicleCount(token: string, headers: Record<string, string> = {}): Promise<number> {
  const result = await app.bearer(token, headers).request(VEHICLES);
  return result.vehicles.totalCount;
}

async function addAndLogin(tenant: TenantFixture, role: Role): Promise<{ id: string; email: string; token: string }> {
  const email = `${role.toLowerCase()}-${uniqueSlug('m')}@${tenant.slug}.test`;
  const password = `password-${email}`;
  const added = await tenant.owner.request(ADD_MEMBER, {
    input: { email, name: `A ${role}`, password, role },
  });
  expect(added.addMember.member.role).toBe(role);
  return { id: added.addMember.member.id, email, token: await app.login(tenant.slug, email, password) };
}

beforeAll(async () => {
  app = await startTestServer();
  [A, B] = await Promise.all([app.createTenant(uniqueSlug('alpha')), app.createTenant(uniqueSlug('bravo'))]);
  const created = await A.owner.request(CREATE_VEHICLE, {
    input: { plate: 'ALPHA-1', make: 'Make', model: 'Model', year: 2020 },
  });
  aVehicleId = created.createVehicle.vehicle.id;
  await B.owner.request(CREATE_VEHICLE, { input: { plate: 'BRAVO-1', make: 'Make', model: 'Model', year: 2020 } });
});

afterAll(async () => {
  await app.close();
});

describe('controls: the forging recipe is right', () => {
  it("a token signed here with the test secret, issuer and audience and A's real claims is accepted", async () => {
    expect(await vehicleCount(sign(memberClaims(A.ownerToken)))).toBe(1);
    expect(claimsOf(A.ownerToken)).toMatchObject({ iss: ISSUER, aud: AUDIENCE, tid: A.id, role: 'OWNER' });
  });

  it("A's owner's token reads A's data, without and with X-Tenant naming A by slug or id", async () => {
    expect(await vehicleCount(A.ownerToken)).toBe(1);
    expect(await vehicleCount(A.ownerToken, { 'x-tenant': A.slug })).toBe(1);
    expect(await vehicleCount(A.ownerToken, { 'x-tenant': A.id })).toBe(1);
  });
});

describe('forged and malformed tokens: UNAUTHENTICATED, no data', () => {
  it('an expired token (everything else valid)', async () => {
    const now = Math.floor(Date.now() / 1000);
    const token = jwt.sign({ ...memberClaims(A.ownerToken), iat: now - 3600, exp: now - 60 }, JWT_SECRET, {
      algorithm: 'HS256',
      issuer: ISSUER,
      audience: AUDIENCE,
    });
    await expectUnauthenticated(app.bearer(token).request(VEHICLES));
  });

  it('a token signed with another secret', async () => {
    await expectUnauthenticated(app.bearer(sign(memberClaims(A.ownerToken), { secret: 'another-secret-0123456789abcdef-0123456789' })).request(VEHICLES));
  });

  it('an alg "none" token with an empty signature', async () => {
    const now = Math.floor(Date.now() / 1000);
    const payload = { ...memberClaims(A.ownerToken), iss: ISSUER, aud: AUDIENCE, iat: now, exp: now + 300 };
    for (const alg of ['none', 'None', 'NONE']) {
      await expectUnauthenticated(app.bearer(`${b64({ alg, typ: 'JWT' })}.${b64(payload)}.`).request(VEHICLES));
    }
  });

  it('an RS256 token (with its own key pair)', async () => {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    await expectUnauthenticated(app.bearer(sign(memberClaims(A.ownerToken), { algorithm: 'RS256', secret: privateKey })).request(VEHICLES));
  });

  it('HS384 and HS512 tokens signed with the right secret (the algorithm is pinned to HS256)', async () => {
    for (const algorithm of ['HS384', 'HS512'] as const) {
      await expectUnauthenticated(app.bearer(sign(memberClaims(A.ownerToken), { algorithm })).request(VEHICLES));
    }
  });

  it("A's real token with tid changed to B's id, signature kept", async () => {
    const [header, payload, signature] = A.ownerToken.split('.') as [string, string, string];
    const tampered = { ...JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')), tid: B.id };
    await expectUnauthenticated(app.bearer(`${header}.${b64(tampered)}.${signature}`).request(VEHICLES));
  });

  it("A's real token with its payload changed in other ways (role, sub, exp), signature kept", async () => {
    const [header, payload, signature] = A.ownerToken.split('.') as [string, string, string];
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Claims;
    for (const change of [{ role: 'PLATFORM_ADMIN' }, { sub: '00000000-0000-4000-8000-000000000000' }, { exp: claims.exp + 86_400 }]) {
      await expectUnauthenticated(app.bearer(`${header}.${b64({ ...claims, ...change })}.${signature}`).request(VEHICLES));
    }
  });

  it("even correctly signed, a token naming B's tenant on A's session is refused (session binds the tenant)", async () => {
    await expectUnauthenticated(app.bearer(sign({ ...memberClaims(A.ownerToken), tid: B.id })).request(VEHICLES));
    await expectUnauthenticated(app.bearer(sign({ ...memberClaims(B.ownerToken), sub: claimsOf(A.ownerToken).sub })).request(VEHICLES));
  });

  it("even correctly signed, a PLATFORM_ADMIN role claim on a member's session is refused", async () => {
    const { sub, sid } = memberClaims(A.ownerToken);
    await expectUnauthenticated(app.bearer(sign({ sub, sid, role: 'PLATFORM_ADMIN' })).request(graphql(`query TokenAttacksTenants { tenants { totalCount } }`)));
  });

  it('a wrong issuer', async () => {
    await expectUnauthenticated(app.bearer(sign(memberClaims(A.ownerToken), { issuer: 'evil-issuer' })).request(VEHICLES));
  });

  it('a wrong audience', async () => {
    await expectUnauthenticated(app.bearer(sign(memberClaims(A.ownerToken), { audience: 'another-api' })).request(VEHICLES));
  });

  it('garbage Authorization headers', async () => {
    for (const authorization of [
      'Bearer',
      'Bearer ',
      'Bearer not-a-jwt',
      'Bearer a.b.c',
      `Basic ${Buffer.from('owner:password').toString('base64')}`,
      `Token ${A.ownerToken}`,
      `Bearer ${A.ownerToken} extra`,
      `Bearer ${A.ownerToken.slice(0, -4)}`,
    ]) {
      await expectUnauthenticated(app.client({ authorization }).request(VEHICLES));
    }
  });
});

describe('the X-Tenant header must name the token tenant', () => {
  it("A's token with X-Tenant: B's slug is FORBIDDEN", async () => {
    await expectForbidden(app.bearer(A.ownerToken, { 'x-tenant': B.slug }).request(VEHICLES));
  });

  it("A's token with X-Tenant: B's id is FORBIDDEN", async () => {
    await expectForbidden(app.bearer(A.ownerToken, { 'x-tenant': B.id }).request(VEHICLES));
  });

  it("A's token with X-Tenant: A's slug works and returns A's data only", async () => {
    const result = await app.bearer(A.ownerToken, { 'x-tenant': A.slug }).request(VEHICLES);
    expect(result.vehicles.edges.map((edge) => edge.node.plate)).toEqual(['ALPHA-1']);
  });
});

describe('tokens whose session or membership ended', () => {
  it('an access token of a logged-out session (and its refresh token)', async () => {
    const login = await app.client().request(
      graphql(`mutation TokenAttacksLogin($input: LoginInput!) { login(input: $input) { accessToken refreshToken } }`),
      { input: { tenant: A.slug, email: A.ownerEmail, password: A.ownerPassword } },
    );
    const { accessToken, refreshToken } = login.login;
    expect(await vehicleCount(accessToken)).toBe(1);
    const out = await app.bearer(accessToken).request(graphql(`mutation TokenAttacksLogout { logout { success } }`));
    expect(out.logout.success).toBe(true);
    await expectUnauthenticated(app.bearer(accessToken).request(VEHICLES));
    await expectFieldRefused(
      app.client().request(graphql(`mutation TokenAttacksRefreshToken($token: String!) { refreshToken(token: $token) { accessToken } }`), { token: refreshToken }),
      'UNAUTHENTICATED',
    );
    // Only that session ended: the fixture's own owner session still works.
    expect(await vehicleCount(A.ownerToken)).toBe(1);
  });

  it("a removed member's old token", async () => {
    const member = await addAndLogin(A, 'MEMBER');
    expect(await vehicleCount(member.token)).toBe(1);
    await A.owner.request(graphql(`mutation TokenAttacksRemoveMember($userId: ID!) { removeMember(userId: $userId) { removedUserId } }`), { userId: member.id });
    await expectUnauthenticated(app.bearer(member.token).request(VEHICLES));
    // Even re-signed with the secret on the same session: the membership is gone.
    await expectUnauthenticated(app.bearer(sign(memberClaims(member.token))).request(VEHICLES));
    await expectFieldRefused(
      app.login(A.slug, member.email, `password-${member.email}`),
      'UNAUTHENTICATED',
    );
  });

  it('an ADMIN demoted to VIEWER cannot use an ADMIN mutation with the old ADMIN token (FORBIDDEN), but can still read', async () => {
    const admin = await addAndLogin(A, 'ADMIN');
    expect(claimsOf(admin.token).role).toBe('ADMIN');
    const throwaway = async (plate: string) =>
      (await A.owner.request(CREATE_VEHICLE, {
        input: { plate, make: 'Make', model: 'Model', year: 2020 },
      })).createVehicle.vehicle.id;
    const first = await throwaway('DEMOTE-1');
    const second = await throwaway('DEMOTE-2');
    // Control: as ADMIN the token can delete.
    const deleted = await app.bearer(admin.token).request(DELETE_VEHICLE, { id: first });
    expect(deleted.deleteVehicle.deletedId).toBe(first);

    await A.owner.request(graphql(`mutation TokenAttacksUpdateMemberRole($userId: ID!) { updateMemberRole(userId: $userId, role: VIEWER) { member { role } } }`), { userId: admin.id });
    await expectFieldRefused(app.bearer(admin.token).request(DELETE_VEHICLE, { id: second }), 'FORBIDDEN');
    await expectFieldRefused(
      app.bearer(admin.token).request(ADD_MEMBER, { input: { email: `x-${uniqueSlug()}@a.test`, name: 'X', password: 'password-123456', role: 'VIEWER' } }),
      'FORBIDDEN',
    );
    const me = await app.bearer(admin.token).request(graphql(`query TokenAttacksMe { me { role } }`));
    expect(me.me.role).toBe('VIEWER');
    const still = await A.owner.request(graphql(`query TokenAttacksVehicle($id: ID!) { vehicle(id: $id) { id } }`), { id: second });
    expect(still.vehicle?.id).toBe(second);
    await A.owner.request(DELETE_VEHICLE, { id: second });
  });

  it("a suspended tenant's token gets TENANT_SUSPENDED; after reactivateTenant it works again", async () => {
    const C = await app.createTenant(uniqueSlug('charlie'));
    const admin = await app.admin();
    expect(await vehicleCount(C.ownerToken)).toBe(0);
    const REFRESH = graphql(`mutation TokenAttacksSuspendedRefresh($token: String!) { refreshToken(token: $token) { accessToken refreshToken } }`);
    const { refreshToken } = (
      await app.client().request(graphql(`mutation TokenAttacksSuspendedLogin($input: LoginInput!) { login(input: $input) { refreshToken } }`), {
        input: { tenant: C.slug, email: C.ownerEmail, password: C.ownerPassword },
      })
    ).login;
    const suspended = await admin.request(
      graphql(`mutation TokenAttacksSuspendTenant($id: ID!) { suspendTenant(id: $id) { tenant { status } } }`),
      { id: C.id },
    );
    expect(suspended.suspendTenant.tenant.status).toBe('SUSPENDED');
    await expectRefused(app.bearer(C.ownerToken).request(VEHICLES), 'TENANT_SUSPENDED', 403);
    await expectRefused(app.bearer(C.ownerToken).request(CREATE_VEHICLE, { input: { plate: 'C-1', make: 'M', model: 'M', year: 2020 } }), 'TENANT_SUSPENDED', 403);
    await expectFieldRefused(app.login(C.slug, C.ownerEmail, C.ownerPassword), 'TENANT_SUSPENDED');
    await expectFieldRefused(app.client().request(REFRESH, { token: refreshToken }), 'TENANT_SUSPENDED');
    // Other tenants are unaffected.
    expect(await vehicleCount(A.ownerToken)).toBe(1);

    await admin.request(graphql(`mutation TokenAttacksReactivateTenant($id: ID!) { reactivateTenant(id: $id) { tenant { status } } }`), { id: C.id });
    expect(await vehicleCount(C.ownerToken)).toBe(0);
    expect(await vehicleCount(await app.login(C.slug, C.ownerEmail, C.ownerPassword))).toBe(0);
    // The refresh token refused during the suspension was not spent: it rotates now.
    const rotated = (await app.client().request(REFRESH, { token: refreshToken })).refreshToken;
    expect(await vehicleCount(rotated.accessToken)).toBe(0);
  });
});

describe('a platform admin token on tenant data: FORBIDDEN', () => {
  it('refuses tenant queries and mutations, with or without X-Tenant', async () => {
    const adminToken = await app.adminToken();
    for (const headers of [{}, { 'x-tenant': A.slug }] as Record<string, string>[]) {
      const admin = app.bearer(adminToken, headers);
      await expectFieldRefused(admin.request(VEHICLES), 'FORBIDDEN');
      await expectFieldRefused(admin.request(graphql(`query TokenAttacksNode($id: ID!) { node(id: $id) { id } }`), { id: aVehicleId }), 'FORBIDDEN');
      await expectFieldRefused(admin.request(graphql(`query TokenAttacksMembers { members { id } }`)), 'FORBIDDEN');
      await expectFieldRefused(admin.request(CREATE_VEHICLE, { input: { plate: 'ADMIN-1', make: 'M', model: 'M', year: 2020 } }), 'FORBIDDEN');
      await expectFieldRefused(admin.request(DELETE_VEHICLE, { id: aVehicleId }), 'FORBIDDEN');
    }
    const admin = await app.admin();
    const me = await admin.request(graphql(`query TokenAttacksMe2 { me { kind tenant { id } } }`));
    expect(me.me).toEqual({ kind: 'PLATFORM_ADMIN', tenant: null });
    expect(await vehicleCount(A.ownerToken)).toBe(1);
  });
});

describe('API keys', () => {
  const CREATE_API_KEY = graphql(`mutation TokenAttacksCreateApiKey($input: CreateApiKeyInput!) { createApiKey(input: $input) { apiKey { id } secret } }`);
  const createKey = async (tenant: TenantFixture, role: Role = 'MANAGER') =>
    (await tenant.owner.request(CREATE_API_KEY, {
      input: { name: `key ${uniqueSlug()}`, role },
    })).createApiKey;

  it("B's key reads B only; with X-Tenant naming A it is FORBIDDEN", async () => {
    const key = await createKey(B);
    const asKey = await app.client({ 'x-api-key': key.secret }).request(VEHICLES);
    expect(asKey.vehicles.edges.map((edge) => edge.node.plate)).toEqual(['BRAVO-1']);
    await expectForbidden(app.client({ 'x-api-key': key.secret, 'x-tenant': A.slug }).request(VEHICLES));
    await expectForbidden(app.bearer(key.secret, { 'x-tenant': A.id }).request(VEHICLES));
  });

  it('a revoked key, a tampered key, and a key sent alongside a token: UNAUTHENTICATED', async () => {
    const key = await createKey(A);
    expect((await app.bearer(key.secret).request(VEHICLES)).vehicles.totalCount).toBe(1);
    const last = key.secret.at(-1) === 'A' ? 'B' : 'A';
    await expectUnauthenticated(app.client({ 'x-api-key': `${key.secret.slice(0, -1)}${last}` }).request(VEHICLES));
    await expectUnauthenticated(app.client({ 'x-api-key': key.secret, authorization: `Bearer ${B.ownerToken}` }).request(VEHICLES));
    await A.owner.request(graphql(`mutation TokenAttacksRevokeApiKey($id: ID!) { revokeApiKey(id: $id) { apiKey { revokedAt } } }`), { id: key.apiKey.id });
    await expectUnauthenticated(app.client({ 'x-api-key': key.secret }).request(VEHICLES));
    await expectUnauthenticated(app.bearer(key.secret).request(VEHICLES));
  });

  it('a key, whatever its role, cannot manage members or keys (FORBIDDEN)', async () => {
    const key = await createKey(A, 'ADMIN');
    const asKey = app.client({ 'x-api-key': key.secret });
    await expectFieldRefused(asKey.request(graphql(`query TokenAttacksMembers2 { members { id } }`)), 'FORBIDDEN');
    await expectFieldRefused(asKey.request(ADD_MEMBER, { input: { email: `k-${uniqueSlug()}@a.test`, name: 'K', password: 'password-123456', role: 'VIEWER' } }), 'FORBIDDEN');
    await expectFieldRefused(asKey.request(CREATE_API_KEY, { input: { name: 'child', role: 'VIEWER' } }), 'FORBIDDEN');
    // Control: the key does reach ADMIN fleet operations.
    const created = await asKey.request(CREATE_VEHICLE, {
      input: { plate: 'KEY-1', make: 'M', model: 'M', year: 2020 },
    });
    await asKey.request(DELETE_VEHICLE, { id: created.createVehicle.vehicle.id });
  });
});

describe('logins across tenants', () => {
  it("A's owner's credentials do not log in to tenant B: UNAUTHENTICATED, same answer as a wrong password or an unknown tenant", async () => {
    const otherTenant = await expectErrors(app.login(B.slug, A.ownerEmail, A.ownerPassword));
    const wrongPassword = await expectErrors(app.login(A.slug, A.ownerEmail, `${A.ownerPassword}-nope`));
    const wrongTenant = await expectErrors(app.login(`${A.slug}-nope`, A.ownerEmail, A.ownerPassword));
    for (const result of [otherTenant, wrongPassword, wrongTenant]) {
      expect(result.errors.map((error) => error.extensions.code)).toEqual(['UNAUTHENTICATED']);
      expect(result.data ?? null).toBeNull();
    }
    expect(new Set([otherTenant, wrongPassword, wrongTenant].map((result) => result.errors[0]?.message)).size).toBe(1);
    // Control: the same credentials log in to A.
    expect(claimsOf(await app.login(A.slug, A.ownerEmail, A.ownerPassword)).tid).toBe(A.id);
  });
});

describe('a host name naming another tenant (TENANT_HOST_SUFFIX)', () => {
  let hosted: TestServer;
  let tenantA: TenantFixture;
  let tenantB: TenantFixture;

  beforeAll(async () => {
    hosted = await startTestServer({ env: { TENANT_HOST_SUFFIX: '.tenants.fleet.test' } });
    tenantA = await hosted.createTenant(uniqueSlug('hosta'));
    tenantB = await hosted.createTenant(uniqueSlug('hostb'));
  });

  afterAll(async () => {
    await hosted.close();
  });

  /** fetch may not set Host; node:http may. */
  function postWithHost(host: string, token: string): Promise<{ status: number; body: { data?: unknown; errors?: { extensions: { code: string } }[] } }> {
    const payload = JSON.stringify({ query: '{ vehicles { totalCount } }' });
    const url = new URL(hosted.url);
    return new Promise((resolve, reject) => {
      const request = http.request(
        {
          host: url.hostname,
          port: url.port,
          path: url.pathname,
          method: 'POST',
          headers: { host, 'content-type': 'application/json', authorization: `Bearer ${token}`, 'content-length': Buffer.byteLength(payload) },
        },
        (response) => {
          let text = '';
          response.on('data', (chunk: Buffer) => (text += chunk.toString()));
          response.on('end', () => resolve({ status: response.statusCode ?? 0, body: JSON.parse(text) }));
        },
      );
      request.on('error', reject);
      request.end(payload);
    });
  }

  it("A's token on B's host name is FORBIDDEN, with no data", async () => {
    const response = await postWithHost(`${tenantB.slug}.tenants.fleet.test`, tenantA.ownerToken);
    expect(response.status).toBe(403);
    expect(response.body.errors?.map((error) => error.extensions.code)).toEqual(['FORBIDDEN']);
    expect(response.body.data ?? null).toBeNull();
  });

  it("A's token on A's host name, and on a host outside the suffix, is served", async () => {
    for (const host of [`${tenantA.slug}.tenants.fleet.test:4000`, 'localhost']) {
      const response = await postWithHost(host, tenantA.ownerToken);
      expect(response.status).toBe(200);
      expect(response.body.data).toEqual({ vehicles: { totalCount: 0 } });
    }
  });
});
