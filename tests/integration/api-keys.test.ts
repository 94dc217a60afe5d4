import { createHash } from 'node:crypto';
import { print } from 'graphql';
import type { GraphQLClient } from '../support/graphql-request';
import { postJson, sleep, type RawResponse } from '../support/raw-graphql';
import { withRowLocked } from '../support/row-lock';
import { errorCode, expectErrors, startTestServer, uniqueSlug, type TenantFixture, type TestServer } from '../support/test-server';
import { graphql } from '../generated';
import type { CreateApiKeyInput, CreateKeyMutation, Role } from '../generated/graphql';

/*
 * Partner API keys over HTTP: creation (the secret shown once, only a hash stored), both ways of
 * presenting a key, the key's role as a ceiling, the member and key management no key may do,
 * revocation and expiry on the very next request, malformed and foreign keys, suspended
 * tenants, and tenant isolation for a key holding another tenant's ids.
 */

const CREATE_API_KEY = graphql(`mutation CreateKey($input: CreateApiKeyInput!) {
  createApiKey(input: $input) { secret apiKey { id name prefix role createdBy persistedOnly expiresAt createdAt lastUsedAt revokedAt } }
}`);
const API_KEYS = graphql(`query ApiKeysList { apiKeys { id name prefix role createdBy persistedOnly expiresAt createdAt lastUsedAt revokedAt } }`);
const REVOKE_API_KEY = graphql(`mutation Revoke($id: ID!) { revokeApiKey(id: $id) { apiKey { id revokedAt } } }`);
const ME = graphql(`query ApiKeysMe { me { id kind name email role tenant { id slug } } }`);
const CREATE_VEHICLE = graphql(`mutation CreateVehicle($input: CreateVehicleInput!) { createVehicle(input: $input) { vehicle { id plate } } }`);
const CREATE_DRIVER = graphql(`mutation CreateDriver($input: CreateDriverInput!) { createDriver(input: $input) { driver { id name } } }`);
const UPDATE_VEHICLE = graphql(`mutation ApiKeysUpdateVehicle($id: ID!, $input: UpdateVehicleInput!) { updateVehicle(id: $id, input: $input) { vehicle { id odometerKm } } }`);
const DELETE_VEHICLE = graphql(`mutation ApiKeysDeleteVehicle($id: ID!) { deleteVehicle(id: $id) { deletedId } }`);
const UPDATE_DRIVER = graphql(`mutation ApiKeysUpdateDriver($id: ID!, $input: UpdateDriverInput!) { updateDriver(id: $id, input: $input) { driver { id name } } }`);
const DELETE_DRIVER = graphql(`mutation ApiKeysDeleteDriver($id: ID!) { deleteDriver(id: $id) { deletedId } }`);
const ASSIGN = graphql(`mutation ApiKeysAssign($vehicleId: ID!, $driverId: ID) { assignDriver(vehicleId: $vehicleId, driverId: $driverId) { vehicle { id driver { id } } } }`);
const VEHICLE = graphql(`query ApiKeysVehicle($id: ID!) { vehicle(id: $id) { id plate } }`);
const DRIVER = graphql(`query ApiKeysDriver($id: ID!) { driver(id: $id) { id name } }`);
const NODE = graphql(`query ApiKeysNode($id: ID!) { node(id: $id) { __typename id } }`);
const LISTS = graphql(`query ApiKeysLists($search: String) {
  vehicles(first: 100, filter: { search: $search }) { totalCount edges { node { id plate driver { id } } } }
  drivers(first: 100, filter: { search: $search }) { totalCount edges { node { id name vehicle { id } } } }
}`);
const ADD_MEMBER = graphql(`mutation ApiKeysAddMember($input: AddMemberInput!) { addMember(input: $input) { member { id } } }`);
const SET_ROLE = graphql(`mutation ApiKeysSetRole($userId: ID!, $role: Role!) { updateMemberRole(userId: $userId, role: $role) { member { role } } }`);
const REMOVE_MEMBER = graphql(`mutation ApiKeysRemoveCreator($userId: ID!) { removeMember(userId: $userId) { removedUserId } }`);

type CreatedKey = CreateKeyMutation['createApiKey'];

const KEY_FORMAT = /^fgk_([0-9a-f]{8})_([A-Za-z0-9_-]{43})$/;

let app: TestServer;
let A: TenantFixture;
let B: TenantFixture;
let aVehicle: string;
let aDriver: string;
let bVehicles: string[];
let bDrivers: string[];

async function createKey(client: GraphQLClient, input: CreateApiKeyInput): Promise<CreatedKey> {
  const result = await client.request(CREATE_API_KEY, { input });
  return result.createApiKey;
}

/** A graphql-request client presenting the key, the usual way or in X-Api-Key. */
function keyClient(secret: string, how: 'bearer' | 'x-api-key' = 'bearer', headers: Record<string, string> = {}): GraphQLClient {
  return app.client({ ...headers, ...(how === 'bearer' ? { authorization: `Bearer ${secret}` } : { 'x-api-key': secret }) });
}

function rawMe(headers: Record<string, string>): Promise<RawResponse> {
  return postJson(app.url, { query: print(ME) }, headers);
}

async function addMember(tenant: TenantFixture, role: Role): Promise<GraphQLClient> {
  return (await addMemberWithId(tenant, role)).client;
}

async function addMemberWithId(tenant: TenantFixture, role: Role): Promise<{ id: string; client: GraphQLClient }> {
  const email = `${role.toLowerCase()}-${uniqueSlug('m')}@${tenant.slug}.test`;
  const password = `password-${role.toLowerCase()}-1`;
  const added = await tenant.owner.request(ADD_MEMBER, { input: { email, name: `A ${role}`, password, role } });
  return { id: added.addMember.member.id, client: app.bearer(await app.login(tenant.slug, email, password)) };
}

async function seed(tenant: TenantFixture, label: string): Promise<{ vehicles: string[]; drivers: string[] }> {
  const vehicles: string[] = [];
  const drivers: string[] = [];
  for (let i = 1; i <= 2; i += 1) {
    const vehicle = await tenant.owner.request(CREATE_VEHICLE, {
      input: { plate: `${label}-${i}`, make: `${label}make`, model: 'M', year: 2021, odometerKm: 100 * i },
    });
    vehicles.push(vehicle.createVehicle.vehicle.id);
    const driver = await tenant.owner.request(CREATE_DRIVER, {
      input: { name: `${label} driver ${i}`, licenseNumber: `${label}-LIC-${i}` },
    });
    drivers.push(driver.createDriver.driver.id);
  }
  await tenant.owner.request(ASSIGN, { vehicleId: vehicles[0] as string, driverId: drivers[0] as string });
  return { vehicles, drivers };
}

beforeAll(async () => {
  app = await startTestServer();
  A = await app.createTenant(uniqueSlug('keys-a'), 'ENTERPRISE');
  B = await app.createTenant(uniqueSlug('keys-b'), 'ENTERPRISE');
  const a = await seed(A, 'ALPHA');
  const b = await seed(B, 'BRAVO');
  [aVehicle, aDriver] = [a.vehicles[1] as string, a.drivers[1] as string];
  bVehicles = b.vehicles;
  bDrivers = b.drivers;
});

afterAll(async () => {
  await app?.close();
});

describe('creating and listing keys', () => {
  it('shows the secret once, with its prefix; the listing and the schema never expose the secret or its hash', async () => {
    const created = await createKey(A.owner, { name: 'Telematics partner', role: 'MANAGER' });
    const match = KEY_FORMAT.exec(created.secret);
    expect(match).not.toBeNull();
    expect(created.apiKey).toEqual({
      id: expect.any(String),
      name: 'Telematics partner',
      prefix: match?.[1],
      role: 'MANAGER',
      createdBy: (await A.owner.request(ME)).me.id,
      persistedOnly: false,
      expiresAt: null,
      createdAt: expect.any(String),
      lastUsedAt: null,
      revokedAt: null,
    });

    const listing = await A.owner.request(API_KEYS);
    expect(listing.apiKeys.find((key) => key.id === created.apiKey.id)).toEqual(created.apiKey);
    const listed = JSON.stringify(listing);
    const hash = createHash('sha256').update(created.secret).digest('hex');
    expect(listed).not.toContain(created.secret);
    expect(listed).not.toContain(match?.[2]);
    expect(listed).not.toContain(hash);

    // Nothing in the schema could return them: ApiKey has no secret or hash field.
    const type = await A.owner.request(graphql(`query ApiKeysType { __type(name: "ApiKey") { fields { name } } }`));
    expect(type.__type?.fields?.map((field) => field.name).sort()).toEqual(
      ['createdAt', 'createdBy', 'expiresAt', 'id', 'lastUsedAt', 'name', 'persistedOnly', 'prefix', 'revokedAt', 'role'].sort(),
    );
  });

  it('stores only the sha256 hex of the key and its prefix', async () => {
    const created = await createKey(A.owner, { name: 'Stored as a hash', role: 'VIEWER' });
    const [, prefix, secretPart] = KEY_FORMAT.exec(created.secret) ?? [];
    const { rows } = await app.server.services.platform.pool.query<Record<string, unknown>>(
      `SELECT * FROM platform."ApiKey" WHERE id = $1`,
      [created.apiKey.id],
    );
    expect(rows).toHaveLength(1);
    const row = rows[0] as Record<string, unknown>;
    expect(row.prefix).toBe(prefix);
    expect(row.secretHash).toBe(createHash('sha256').update(created.secret).digest('hex'));
    expect(row.secretHash).toMatch(/^[0-9a-f]{64}$/);
    const stored = JSON.stringify(row);
    expect(stored).not.toContain(created.secret);
    expect(stored).not.toContain(secretPart);
    // No other table of the platform schema holds it either.
    const { rows: dump } = await app.server.services.platform.pool.query<{ text: string }>(
      `SELECT string_agg(t::text, ' ') AS text FROM (
         SELECT row_to_json(k)::text AS t FROM platform."ApiKey" k
         UNION ALL SELECT row_to_json(s)::text FROM platform."Session" s
         UNION ALL SELECT row_to_json(p)::text FROM platform."PersistedOperation" p
       ) all_rows`,
    );
    expect(dump[0]?.text ?? '').not.toContain(secretPart);
  });

  it('records when a key was last used', async () => {
    const created = await createKey(A.owner, { name: 'Last used', role: 'VIEWER' });
    await keyClient(created.secret).request(ME);
    const deadline = Date.now() + 5_000;
    let lastUsedAt: string | null = null;
    while (!lastUsedAt && Date.now() < deadline) {
      const listing = await A.owner.request(API_KEYS);
      lastUsedAt = listing.apiKeys.find((key) => key.id === created.apiKey.id)?.lastUsedAt ?? null;
      if (!lastUsedAt) await sleep(100);
    }
    expect(lastUsedAt).not.toBeNull();
    expect(new Date(lastUsedAt as string).getTime()).toBeGreaterThanOrEqual(new Date(created.apiKey.createdAt).getTime());
  });

  it('holds creators to their role: no MANAGER creates keys, an ADMIN cannot mint an OWNER key, and no key is OWNER', async () => {
    const manager = await addMember(A, 'MANAGER');
    expect(await errorCode(createKey(manager, { name: 'escalate', role: 'ADMIN' }))).toBe('FORBIDDEN');
    expect(await errorCode(createKey(manager, { name: 'even lower', role: 'VIEWER' }))).toBe('FORBIDDEN');

    const admin = await addMember(A, 'ADMIN');
    expect((await createKey(admin, { name: 'admin key', role: 'ADMIN' })).apiKey.role).toBe('ADMIN');
    expect(await errorCode(createKey(admin, { name: 'above me', role: 'OWNER' }))).toBe('FORBIDDEN');

    const ownerKey = await expectErrors(createKey(A.owner, { name: 'owner key', role: 'OWNER' }));
    expect(ownerKey.errors.map((error) => error.extensions.code)).toEqual(['BAD_USER_INPUT']);
    expect(ownerKey.errors[0]?.extensions.field).toBe('role');

    expect(await errorCode(createKey(A.owner, { name: 'expired already', role: 'VIEWER', expiresAt: new Date(Date.now() - 1000).toISOString() }))).toBe(
      'BAD_USER_INPUT',
    );
    expect(await errorCode(createKey(A.owner, { name: '   ', role: 'VIEWER' }))).toBe('BAD_USER_INPUT');
    const names = (await A.owner.request(API_KEYS)).apiKeys.map((key) => key.name);
    expect(names).not.toEqual(expect.arrayContaining(['escalate']));
    expect(names.filter((name) => ['escalate', 'even lower', 'above me', 'owner key', 'expired already'].includes(name))).toEqual([]);
  });
});

describe('authenticating with a key', () => {
  let manager: CreatedKey;

  beforeAll(async () => {
    manager = await createKey(A.owner, { name: 'Dispatch integration', role: 'MANAGER' });
  });

  it('accepts the key as a bearer token and in X-Api-Key', async () => {
    const expected = { id: manager.apiKey.id, kind: 'API_KEY', name: 'Dispatch integration', email: null, role: 'MANAGER', tenant: { id: A.id, slug: A.slug } };
    for (const how of ['bearer', 'x-api-key'] as const) {
      const result = await keyClient(manager.secret, how).request(ME);
      expect(result.me).toEqual(expected);
    }
  });

  it('refuses a request carrying both an Authorization header and X-Api-Key', async () => {
    const response = await rawMe({ authorization: `Bearer ${A.ownerToken}`, 'x-api-key': manager.secret });
    expect(response.status).toBe(401);
    expect(response.body.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  });

  it('refuses garbage, unknown and tampered keys with UNAUTHENTICATED (401)', async () => {
    const [, prefix, secretPart] = KEY_FORMAT.exec(manager.secret) ?? [];
    const lastChar = (secretPart as string).slice(-1);
    const tampered = `fgk_${prefix}_${(secretPart as string).slice(0, -1)}${lastChar === 'A' ? 'B' : 'A'}`;
    const attempts: Record<string, string>[] = [
      { authorization: 'Bearer fgk_garbage' },
      { authorization: `Bearer fgk_deadbeef_${'x'.repeat(43)}` },
      { authorization: `Bearer ${tampered}` },
      { authorization: `Bearer ${manager.secret}x` },
      { authorization: 'Bearer not-a-token-at-all' },
      { authorization: manager.secret },
      { 'x-api-key': 'not-a-key' },
      { 'x-api-key': tampered },
      { 'x-api-key': `fgk_00000000_${'A'.repeat(43)}` },
    ];
    for (const headers of attempts) {
      const response = await rawMe(headers);
      expect({ headers, status: response.status, codes: response.body.errors?.map((error) => error.extensions?.code) }).toEqual({
        headers,
        status: 401,
        codes: ['UNAUTHENTICATED'],
      });
      expect(response.body.data ?? null).toBeNull();
    }
  });

  it('refuses a key whose request names another tenant in X-Tenant (403 FORBIDDEN), and accepts its own', async () => {
    const foreign = await rawMe({ 'x-api-key': manager.secret, 'x-tenant': B.slug });
    expect(foreign.status).toBe(403);
    expect(foreign.body.errors?.map((error) => error.extensions?.code)).toEqual(['FORBIDDEN']);
    expect(await errorCode(keyClient(manager.secret, 'bearer', { 'x-tenant': B.id }).request(ME))).toBe('FORBIDDEN');

    for (const own of [A.slug, A.id]) {
      const result = await keyClient(manager.secret, 'x-api-key', { 'x-tenant': own }).request(ME);
      expect(result.me.tenant?.id).toBe(A.id);
    }
  });

  it('refuses a revoked key on its very next request', async () => {
    const key = await createKey(A.owner, { name: 'To revoke', role: 'VIEWER' });
    const client = keyClient(key.secret);
    expect((await client.request(ME)).me.kind).toBe('API_KEY');

    const revoked = await A.owner.request(REVOKE_API_KEY, {
      id: key.apiKey.id,
    });
    expect(revoked.revokeApiKey.apiKey.revokedAt).not.toBeNull();
    const presentations: Record<string, string>[] = [{ authorization: `Bearer ${key.secret}` }, { 'x-api-key': key.secret }];
    for (const headers of presentations) {
      const response = await rawMe(headers);
      expect(response.status).toBe(401);
      expect(response.body.errors?.map((error) => error.extensions?.code)).toEqual(['UNAUTHENTICATED']);
    }
    const listed = (await A.owner.request(API_KEYS)).apiKeys.find((k) => k.id === key.apiKey.id);
    expect(listed?.revokedAt).toBe(revoked.revokeApiKey.apiKey.revokedAt);
  });

  it('refuses an expired key', async () => {
    const expiresAt = new Date(Date.now() + 2_000);
    const key = await createKey(A.owner, { name: 'Short-lived', role: 'VIEWER', expiresAt: expiresAt.toISOString() });
    expect(new Date(key.apiKey.expiresAt as string).getTime()).toBe(expiresAt.getTime());
    expect((await keyClient(key.secret).request(ME)).me.kind).toBe('API_KEY');

    await sleep(Math.max(0, expiresAt.getTime() - Date.now()) + 300);
    const response = await rawMe({ 'x-api-key': key.secret });
    expect(response.status).toBe(401);
    expect(response.body.errors?.map((error) => error.extensions?.code)).toEqual(['UNAUTHENTICATED']);
  });

  it("refuses a suspended tenant's keys with TENANT_SUSPENDED, and serves them again after reactivation", async () => {
    const C = await app.createTenant(uniqueSlug('keys-c'));
    const key = await createKey(C.owner, { name: 'C partner', role: 'VIEWER' });
    expect((await keyClient(key.secret).request(ME)).me.kind).toBe('API_KEY');
    const admin = await app.admin();
    await admin.request(graphql(`mutation ApiKeysSuspendTenant($id: ID!) { suspendTenant(id: $id) { tenant { status } } }`), { id: C.id });
    const response = await rawMe({ 'x-api-key': key.secret });
    expect(response.status).toBe(403);
    expect(response.body.errors?.map((error) => error.extensions?.code)).toEqual(['TENANT_SUSPENDED']);

    await admin.request(graphql(`mutation ApiKeysReactivateTenant($id: ID!) { reactivateTenant(id: $id) { tenant { status } } }`), { id: C.id });
    expect((await keyClient(key.secret).request(ME)).me.kind).toBe('API_KEY');
  });
});

describe("a key's role is its ceiling", () => {
  it('lets a VIEWER key read but not write', async () => {
    const viewer = keyClient((await createKey(A.owner, { name: 'Reader', role: 'VIEWER' })).secret, 'x-api-key');
    const lists = await viewer.request(LISTS, { search: 'ALPHA' });
    expect(lists.vehicles.totalCount).toBe(2);
    expect(await errorCode(viewer.request(CREATE_VEHICLE, { input: { plate: 'VIEW-1', make: 'X', model: 'Y', year: 2020 } }))).toBe('FORBIDDEN');
    expect(await errorCode(viewer.request(UPDATE_VEHICLE, { id: aVehicle, input: { odometerKm: 1 } }))).toBe('FORBIDDEN');
    expect((await A.owner.request(LISTS, { search: 'VIEW-1' })).vehicles.totalCount).toBe(0);
  });

  it('lets a MANAGER key create vehicles, but not delete them (ADMIN)', async () => {
    const manager = keyClient((await createKey(A.owner, { name: 'Writer', role: 'MANAGER' })).secret);
    const created = await manager.request(CREATE_VEHICLE, {
      input: { plate: 'MGR-KEY-1', make: 'Key', model: 'Made', year: 2022 },
    });
    expect(created.createVehicle.vehicle.plate).toBe('MGR-KEY-1');
    expect(await errorCode(manager.request(DELETE_VEHICLE, { id: created.createVehicle.vehicle.id }))).toBe('FORBIDDEN');
    expect((await A.owner.request(VEHICLE, { id: created.createVehicle.vehicle.id })).vehicle).not.toBeNull();
  });

  it('never lets a key manage members or keys, not even an ADMIN key', async () => {
    const adminKey = await createKey(A.owner, { name: 'Almighty', role: 'ADMIN' });
    const members = await A.owner.request(graphql(`query ApiKeysMembers { members { id role } }`));
    const ownerId = members.members.find((member) => member.role === 'OWNER')?.id as string;
    const registered = await A.owner.request(
      graphql(`mutation ApiKeysRegisterKept($o: [PersistedOperationInput!]!) { registerPersistedOperations(operations: $o) { operations { id } } }`),
      { o: [{ body: 'query KeptFromKeys { __typename }' }] },
    );
    const operationId = registered.registerPersistedOperations.operations[0]?.id as string;
    for (const how of ['bearer', 'x-api-key'] as const) {
      const key = keyClient(adminKey.secret, how);
      // ADMIN work on fleet data is fine...
      const vehicle = await key.request(CREATE_VEHICLE, {
        input: { plate: `ADM-${how}`, make: 'A', model: 'B', year: 2020 },
      });
      expect((await key.request(DELETE_VEHICLE, { id: vehicle.createVehicle.vehicle.id })).deleteVehicle.deletedId).toBe(
        vehicle.createVehicle.vehicle.id,
      );
      // ...people and credentials are not.
      const refused: [string, Promise<unknown>][] = [
        ['members', key.request(graphql(`query ApiKeysMembers2 { members { id } }`))],
        ['membersConnection', key.request(graphql(`query ApiKeysMembersConnection { membersConnection { totalCount } }`))],
        ['addMember', key.request(ADD_MEMBER, { input: { email: `sneaky-${how}@evil.test`, name: 'S', password: 'sneaky-password', role: 'OWNER' } })],
        ['updateMemberRole', key.request(graphql(`mutation ApiKeysUpdateMemberRole($u: ID!) { updateMemberRole(userId: $u, role: VIEWER) { member { id } } }`), { u: ownerId })],
        ['removeMember', key.request(graphql(`mutation ApiKeysRemoveMember($u: ID!) { removeMember(userId: $u) { removedUserId } }`), { u: ownerId })],
        ['apiKeys', key.request(API_KEYS)],
        ['createApiKey', key.request(CREATE_API_KEY, { input: { name: 'child key', role: 'VIEWER' } })],
        ['revokeApiKey', key.request(REVOKE_API_KEY, { id: adminKey.apiKey.id })],
        ['persistedOperations', key.request(graphql(`query ApiKeysPersistedOperations { persistedOperations { id } }`))],
        [
          'registerPersistedOperations',
          key.request(graphql(`mutation ApiKeysRegisterPersistedOperations($o: [PersistedOperationInput!]!) { registerPersistedOperations(operations: $o) { operations { id } } }`), {
            o: [{ body: '{ me { id } }' }],
          }),
        ],
        [
          'removePersistedOperations',
          key.request(graphql(`mutation ApiKeysRemovePersistedOperations($ids: [ID!]!) { removePersistedOperations(ids: $ids) { removedIds } }`), {
            ids: [operationId],
          }),
        ],
        ['invitations', key.request(graphql(`query ApiKeysInvitations { invitations { id } }`))],
        [
          'inviteMember',
          key.request(graphql(`mutation ApiKeysInviteMember($input: InviteMemberInput!) { inviteMember(input: $input) { invitation { id } } }`), {
            input: { email: `sneaky-invite-${how}@evil.test`, role: 'ADMIN' },
          }),
        ],
        ['revokeInvitation', key.request(graphql(`mutation ApiKeysRevokeInvitation($id: ID!) { revokeInvitation(id: $id) { revokedId } }`), { id: ownerId })],
        [
          'acceptInvitation',
          key.request(graphql(`mutation ApiKeysAcceptInvitation($input: AcceptInvitationInput!) { acceptInvitation(input: $input) { role } }`), {
            input: { code: 'inv_x', currentPassword: 'unknown', newPassword: 'sneaky-password' },
          }),
        ],
        ['declineInvitation', key.request(graphql(`mutation ApiKeysDeclineInvitation($code: String!) { declineInvitation(code: $code) { declinedId } }`), { code: 'inv_x' })],
        ['webhookEndpoints', key.request(graphql(`query ApiKeysWebhookEndpoints { webhookEndpoints { id } }`))],
        [
          'createWebhookEndpoint',
          key.request(graphql(`mutation ApiKeysCreateWebhook($input: CreateWebhookEndpointInput!) { createWebhookEndpoint(input: $input) { secret } }`), {
            input: { url: 'https://93.184.215.14/exfiltrate', eventTypes: ['TRIP_TRANSITIONED'] },
          }),
        ],
        ['setSlackWebhook', key.request(graphql(`mutation ApiKeysSetSlack($url: String!) { setSlackWebhook(url: $url) { slackWebhook { configured } } }`), { url: 'https://93.184.215.14/services/x' })],
        ['switchTenant', key.request(graphql(`mutation ApiKeysSwitchTenant($tenant: String!) { switchTenant(tenant: $tenant) { accessToken } }`), { tenant: A.slug })],
      ];
      for (const [field, request] of refused) {
        expect({ field, code: await errorCode(request) }).toEqual({ field, code: 'FORBIDDEN' });
      }
    }
    // Nothing happened: the owner is still OWNER, no member or key was added, the key still works.
    const after = await A.owner.request(graphql(`query ApiKeysMembers3 { members { id email role } }`));
    expect(after.members.find((member) => member.id === ownerId)?.role).toBe('OWNER');
    expect(after.members.filter((member) => member.email.startsWith('sneaky'))).toEqual([]);
    const operations = await A.owner.request(graphql(`query ApiKeysOperationsAfter { persistedOperations { id } }`));
    expect(operations.persistedOperations.map((operation) => operation.id)).toContain(operationId);
    const invited = await A.owner.request(graphql(`query ApiKeysInvitationsAfter { invitations { email } }`));
    expect(invited.invitations.filter((invitation) => invitation.email.startsWith('sneaky'))).toEqual([]);
    const keys = (await A.owner.request(API_KEYS)).apiKeys;
    expect(keys.filter((key) => key.name === 'child key')).toEqual([]);
    expect(keys.find((key) => key.id === adminKey.apiKey.id)?.revokedAt).toBeNull();
  });
});

describe("a key never outlives its creator's role", () => {
  const keyRoleOf = async (secret: string) => (await keyClient(secret).request(ME)).me.role;
  const listed = async (id: string) => (await A.owner.request(API_KEYS)).apiKeys.find((key) => key.id === id);

  it('names its creator; demoting the creator revokes the keys above the new role at once, and keeps the others', async () => {
    const admin = await addMemberWithId(A, 'ADMIN');
    const adminKey = await createKey(admin.client, { name: 'integration (admin)', role: 'ADMIN' });
    const managerKey = await createKey(admin.client, { name: 'integration (manager)', role: 'MANAGER' });
    expect((await listed(adminKey.apiKey.id))?.createdBy).toBe(admin.id);
    expect(await keyRoleOf(adminKey.secret)).toBe('ADMIN');

    await A.owner.request(SET_ROLE, { userId: admin.id, role: 'MANAGER' });
    expect(await errorCode(keyClient(adminKey.secret).request(ME))).toBe('UNAUTHENTICATED');
    expect(await errorCode(keyClient(adminKey.secret).request(DELETE_VEHICLE, { id: aVehicle }))).toBe('UNAUTHENTICATED');
    expect((await listed(adminKey.apiKey.id))?.revokedAt).not.toBeNull();
    expect(await keyRoleOf(managerKey.secret)).toBe('MANAGER');
    expect((await listed(managerKey.apiKey.id))?.revokedAt).toBeNull();
    // Promoting them back revives nothing.
    await A.owner.request(SET_ROLE, { userId: admin.id, role: 'ADMIN' });
    expect(await errorCode(keyClient(adminKey.secret).request(ME))).toBe('UNAUTHENTICATED');
  });

  it("removing the creator revokes all of their keys, and no one else's", async () => {
    const admin = await addMemberWithId(A, 'ADMIN');
    const theirs = await createKey(admin.client, { name: 'leaves with them', role: 'VIEWER' });
    const owners = await createKey(A.owner, { name: 'stays', role: 'VIEWER' });
    await A.owner.request(REMOVE_MEMBER, { userId: admin.id });
    expect(await errorCode(keyClient(theirs.secret).request(ME))).toBe('UNAUTHENTICATED');
    expect((await listed(theirs.apiKey.id))?.revokedAt).not.toBeNull();
    expect(await keyRoleOf(owners.secret)).toBe('VIEWER');
  });

  it('a key requested while its creator is being demoted waits for the demotion, and is refused', async () => {
    const admin = await addMemberWithId(A, 'ADMIN');
    const lockMembership = 'SELECT 1 FROM platform."Membership" WHERE "userId" = $1 FOR UPDATE';
    const { creating } = await withRowLocked(app.server.services.platform.pool, lockMembership, [admin.id], async (lock) => {
      const creating = errorCode(createKey(admin.client, { name: 'minted mid-demotion', role: 'ADMIN' }));
      await lock.untilSomeoneWaits();
      // The demotion commits with the lock; the request was authorised as ADMIN before it.
      await lock.query(`UPDATE platform."Membership" SET role = 'MANAGER' WHERE "userId" = $1`, [admin.id]);
      return { creating };
    });
    expect(await creating).toBe('FORBIDDEN');
    expect((await A.owner.request(API_KEYS)).apiKeys.map((key) => key.name)).not.toContain('minted mid-demotion');
  });
});

describe('tenant isolation for keys', () => {
  let aKey: GraphQLClient;
  let bKey: CreatedKey;

  beforeAll(async () => {
    aKey = keyClient((await createKey(A.owner, { name: 'A admin key', role: 'ADMIN' })).secret);
    bKey = await createKey(B.owner, { name: 'B partner', role: 'VIEWER' });
  });

  const snapshotB = () => B.owner.request(LISTS, {});

  it("finds nothing of tenant B with B's ids, changes nothing of B, and lists only A's rows", async () => {
    const before = await snapshotB();
    expect(before.vehicles.totalCount).toBe(2);
    expect(before.drivers.totalCount).toBe(2);

    for (const id of bVehicles) {
      expect((await aKey.request(VEHICLE, { id })).vehicle).toBeNull();
      expect((await aKey.request(NODE, { id })).node).toBeNull();
    }
    for (const id of bDrivers) {
      expect((await aKey.request(DRIVER, { id })).driver).toBeNull();
      expect((await aKey.request(NODE, { id })).node).toBeNull();
    }
    // Controls: the same queries find A's own rows.
    expect((await aKey.request(VEHICLE, { id: aVehicle })).vehicle?.id).toBe(aVehicle);
    expect((await aKey.request(NODE, { id: aDriver })).node?.id).toBe(aDriver);

    const attacks: [string, Promise<unknown>][] = [
      ['updateVehicle', aKey.request(UPDATE_VEHICLE, { id: bVehicles[0] as string, input: { odometerKm: 999_999 } })],
      ['deleteVehicle', aKey.request(DELETE_VEHICLE, { id: bVehicles[1] as string })],
      ['updateDriver', aKey.request(UPDATE_DRIVER, { id: bDrivers[0] as string, input: { name: 'Hijacked' } })],
      ['deleteDriver', aKey.request(DELETE_DRIVER, { id: bDrivers[1] as string })],
      ["assignDriver(B's vehicle, A's driver)", aKey.request(ASSIGN, { vehicleId: bVehicles[1] as string, driverId: aDriver })],
      ["assignDriver(A's vehicle, B's driver)", aKey.request(ASSIGN, { vehicleId: aVehicle, driverId: bDrivers[1] as string })],
      ["assignDriver(B's vehicle, null)", aKey.request(ASSIGN, { vehicleId: bVehicles[0] as string, driverId: null })],
    ];
    for (const [name, request] of attacks) {
      const { errors, data } = await expectErrors(request);
      expect({ name, codes: errors.map((error) => error.extensions.code), data }).toEqual({ name, codes: ['NOT_FOUND'], data: null });
    }

    const lists = await aKey.request(LISTS, {});
    const seen = [
      ...lists.vehicles.edges.flatMap((edge) => [edge.node.id, edge.node.driver?.id]),
      ...lists.drivers.edges.flatMap((edge) => [edge.node.id, edge.node.vehicle?.id]),
    ];
    expect(seen.filter((id) => id !== undefined && [...bVehicles, ...bDrivers].includes(id))).toEqual([]);
    expect(lists.vehicles.edges.map((edge) => edge.node.plate)).toEqual(expect.arrayContaining(['ALPHA-1', 'ALPHA-2']));
    expect((await aKey.request(LISTS, { search: 'BRAVO' })).vehicles.totalCount).toBe(0);
    expect((await aKey.request(LISTS, { search: 'BRAVO' })).drivers.totalCount).toBe(0);

    expect(await snapshotB()).toEqual(before);
  });

  it("does not let A's admin revoke or see B's key", async () => {
    const admin = await addMember(A, 'ADMIN');
    const { errors } = await expectErrors(admin.request(REVOKE_API_KEY, { id: bKey.apiKey.id }));
    expect(errors.map((error) => error.extensions.code)).toEqual(['NOT_FOUND']);
    expect(await errorCode(A.owner.request(REVOKE_API_KEY, { id: bKey.apiKey.id }))).toBe('NOT_FOUND');
    expect((await admin.request(API_KEYS)).apiKeys.map((key) => key.id)).not.toContain(bKey.apiKey.id);

    const stillWorks = await keyClient(bKey.secret, 'x-api-key').request(ME);
    expect(stillWorks.me.tenant?.id).toBe(B.id);
    expect((await B.owner.request(API_KEYS)).apiKeys.find((key) => key.id === bKey.apiKey.id)?.revokedAt).toBeNull();
  });

  it("gives B's key only B's data", async () => {
    const lists = await keyClient(bKey.secret).request(LISTS, {});
    expect(lists.vehicles.edges.map((edge) => edge.node.id).sort()).toEqual([...bVehicles].sort());
    expect(lists.drivers.edges.map((edge) => edge.node.id).sort()).toEqual([...bDrivers].sort());
  });
});
