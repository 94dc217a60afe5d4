import { createHash } from 'node:crypto';
import { Writable } from 'node:stream';
import { print } from 'graphql';
import pino from 'pino';
import type pg from 'pg';
import { graphql } from '../generated';
import { buildSchema } from '../../src/graphql/schema';
import { secretFieldsOf } from '../../src/idempotency/secret-fields';
import { bearer, codesOf, eventually, postJson, send, sleep, type RawResponse } from '../support/raw-graphql';
import { withRowLocked } from '../support/row-lock';
import { startTestServer, type TenantFixture, type TestServer } from '../support/test-server';

/*
 * Idempotency-Key on mutations, over HTTP against real PostgreSQL: a retry with the same key,
 * caller and body replays the stored answer and executes nothing; another body is refused (422);
 * concurrent requests with one key execute once; keys expire; answers holding a one-time secret
 * are never replayed; keys of other callers and other tenants never meet.
 */

let app: TestServer;
let tenant: TenantFixture;
let other: TenantFixture;
let managerToken: string;
let memberToken: string;

/** Shorter than the default 5 s, so the test of a key still in progress waits less; long enough for a loaded machine. */
const WAIT_MS = 3_000;

const CREATE_VEHICLE = graphql(`mutation IdemCreateVehicle($input: CreateVehicleInput!) { createVehicle(input: $input) { vehicle { id plate version } } }`);
const UPDATE_VEHICLE = graphql(`mutation IdemUpdateVehicle($id: ID!, $input: UpdateVehicleInput!) { updateVehicle(id: $id, input: $input) { vehicle { id make version } } }`);
const CREATE_API_KEY = graphql(`mutation IdemCreateApiKey($input: CreateApiKeyInput!) { createApiKey(input: $input) { secret apiKey { id prefix } } }`);
const INVITE = graphql(`mutation IdemInvite($input: InviteMemberInput!) { inviteMember(input: $input) { invitation { id } } }`);
const VEHICLE_COUNT = graphql(`query IdemVehicleCount { vehicles(first: 1) { totalCount } }`);
const REGISTER = graphql(`mutation IdemRegister($operations: [PersistedOperationInput!]!) { registerPersistedOperations(operations: $operations) { operations { sha256 } } }`);
const ADD_MEMBER = graphql(`mutation IdemAddMember($input: AddMemberInput!) { addMember(input: $input) { member { id } } }`);

type Doc = Parameters<typeof print>[0];

function keyed(token: string, key: string | undefined, document: Doc, variables: Record<string, unknown>, url = app.url): Promise<RawResponse> {
  return postJson(url, { query: print(document), variables }, { ...bearer(token), ...(key === undefined ? {} : { 'idempotency-key': key }) });
}

const platformPool = (): pg.Pool => app.server.services.platform.pool;
let keyCounter = 0;
const newKey = (label: string) => `${label}-${Date.now()}-${keyCounter++}`;

async function vehiclesWithPlate(fixture: TenantFixture, plate: string): Promise<number> {
  const result = await platformPool().query<{ n: number }>(`SELECT count(*)::int AS n FROM "${fixture.schemaName}"."Vehicle" WHERE plate = $1`, [plate]);
  return result.rows[0]?.n ?? -1;
}

async function versionOf(fixture: TenantFixture, rowId: string): Promise<number> {
  const result = await platformPool().query<{ version: number }>(`SELECT version FROM "${fixture.schemaName}"."Vehicle" WHERE id = $1`, [rowId]);
  return result.rows[0]?.version ?? -1;
}

async function keyRows(key: string): Promise<{ state: string; status: number | null; body: string | null; withheld: boolean }[]> {
  const result = await platformPool().query(`SELECT "state", "status", "body", "withheld" FROM platform."IdempotencyKey" WHERE "key" = $1`, [key]);
  return result.rows;
}

/** A vehicle of `fixture` (created by its owner): its global id and its row id. */
async function newVehicle(fixture: TenantFixture, plate: string): Promise<{ id: string; rowId: string }> {
  const created = await keyed(fixture.ownerToken, undefined, CREATE_VEHICLE, { input: { plate, make: 'Volvo', model: 'FH', year: 2020 } });
  const id = (created.body.data as { createVehicle: { vehicle: { id: string } } }).createVehicle.vehicle.id;
  return { id, rowId: Buffer.from(id, 'base64url').toString('utf8').split(':')[1] as string };
}

const replayed = (response: RawResponse) => response.headers.get('idempotency-replayed');

/** The server's log lines (a real pino logger into memory). */
const logLines: Record<string, unknown>[] = [];

beforeAll(async () => {
  const memory = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n')) if (line) logLines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  app = await startTestServer({ env: { IDEMPOTENCY_WAIT_MS: String(WAIT_MS) }, logger: pino({ level: 'info' }, memory) });
  [tenant, other] = await Promise.all([app.createTenant(undefined, 'ENTERPRISE'), app.createTenant(undefined, 'ENTERPRISE')]);
  for (const [email, role] of [['manager@idem.test', 'MANAGER'], ['member@idem.test', 'MEMBER']] as const) {
    await tenant.owner.request(ADD_MEMBER, { input: { email, name: role, password: 'idem-password-1', role } });
  }
  managerToken = await app.login(tenant.slug, 'manager@idem.test', 'idem-password-1');
  memberToken = await app.login(tenant.slug, 'member@idem.test', 'idem-password-1');
}, 60_000);

afterAll(async () => {
  await app?.close();
});

describe('a retry with the same key, caller and body', () => {
  it('gets the identical answer with Idempotency-Replayed: true, and the mutation ran once', async () => {
    const key = newKey('replay');
    const variables = { input: { plate: 'IDEM-1', make: 'Volvo', model: 'FH', year: 2021 } };
    const first = await keyed(tenant.ownerToken, key, CREATE_VEHICLE, variables);
    expect(first.status).toBe(200);
    expect(codesOf(first)).toEqual([]);
    expect(replayed(first)).toBeNull();

    const second = await keyed(tenant.ownerToken, key, CREATE_VEHICLE, variables);
    expect(second.status).toBe(200);
    expect(second.text).toBe(first.text);
    expect(replayed(second)).toBe('true');
    // Variables in another key order are the same request.
    const reordered = await keyed(tenant.ownerToken, key, CREATE_VEHICLE, { input: { year: 2021, model: 'FH', make: 'Volvo', plate: 'IDEM-1' } });
    expect(reordered.text).toBe(first.text);
    expect(replayed(reordered)).toBe('true');

    expect(await vehiclesWithPlate(tenant, 'IDEM-1')).toBe(1);
    expect(await keyRows(key)).toEqual([expect.objectContaining({ state: 'COMPLETED', status: 200, withheld: false })]);
    // Each one's log line says what its key came to.
    const logged = (response: RawResponse) =>
      logLines.filter((line) => line.requestId === response.headers.get('x-request-id') && line.msg === 'graphql operation').map((line) => line.idempotency);
    expect([first, second].map(logged)).toEqual([['executed'], ['replayed']]);
  });

  it('an operation that ran and failed for its input is replayed too (the same request, the same answer)', async () => {
    await newVehicle(tenant, 'IDEM-TAKEN');
    const key = newKey('conflict');
    const variables = { input: { plate: 'IDEM-TAKEN', make: 'Volvo', model: 'FH', year: 2021 } };
    const first = await keyed(tenant.ownerToken, key, CREATE_VEHICLE, variables);
    expect(codesOf(first)).toEqual(['CONFLICT']);
    const second = await keyed(tenant.ownerToken, key, CREATE_VEHICLE, variables);
    expect(second.text).toBe(first.text);
    expect(second.status).toBe(first.status);
    expect(replayed(second)).toBe('true');
  });

  it('a refusal before anything ran (FORBIDDEN by policy) does not burn the key', async () => {
    const key = newKey('forbidden');
    const variables = { input: { plate: 'IDEM-MEMBER', make: 'Volvo', model: 'FH', year: 2021 } };
    const refused = await keyed(memberToken, key, CREATE_VEHICLE, variables);
    expect(codesOf(refused)).toEqual(['FORBIDDEN']);
    expect(await keyRows(key)).toEqual([]);
    const again = await keyed(memberToken, key, CREATE_VEHICLE, variables);
    expect(codesOf(again)).toEqual(['FORBIDDEN']);
    expect(replayed(again)).toBeNull();
  });

  it('a caller whose role changed since does not get the answer its old role was allowed: the retry runs again, and is refused', async () => {
    const email = `demoted-${Date.now()}@idem.test`;
    const added = await tenant.owner.request(ADD_MEMBER, { input: { email, name: 'Demoted', password: 'idem-password-1', role: 'MANAGER' } });
    const token = await app.login(tenant.slug, email, 'idem-password-1');
    const key = newKey('demoted');
    const plate = `DEM-${keyCounter}`;
    const first = await keyed(token, key, CREATE_VEHICLE, { input: { plate, make: 'MAN', model: 'TGX', year: 2020 } });
    expect([first.status, JSON.stringify(first.body).slice(0, 300)]).toEqual([200, expect.stringContaining(plate)]);
    await tenant.owner.request(graphql(`mutation IdemDemote($userId: ID!) { updateMemberRole(userId: $userId, role: VIEWER) { member { role } } }`), { userId: added.addMember.member.id });
    const retry = await keyed(token, key, CREATE_VEHICLE, { input: { plate, make: 'MAN', model: 'TGX', year: 2020 } });
    expect(replayed(retry)).toBeNull();
    expect((retry.body as { errors?: { extensions: { code: string } }[] }).errors?.[0]?.extensions.code).toBe('FORBIDDEN');
    expect(await vehiclesWithPlate(tenant, plate)).toBe(1);
  });

  it('a credential that does not hold is refused before the key is looked at', async () => {
    const key = newKey('unauthenticated');
    const variables = { input: { plate: 'IDEM-NOAUTH', make: 'Volvo', model: 'FH', year: 2021 } };
    const refused = await keyed('not-a-token', key, CREATE_VEHICLE, variables);
    expect(refused.status).toBe(401);
    const served = await keyed(tenant.ownerToken, key, CREATE_VEHICLE, variables);
    expect(codesOf(served)).toEqual([]);
    expect(replayed(served)).toBeNull();
    expect(await vehiclesWithPlate(tenant, 'IDEM-NOAUTH')).toBe(1);
  });
});

describe('a partner running a registered operation by hash', () => {
  it('keeps its API key\'s own keys: the retry by hash replays, other variables are 422', async () => {
    const created = await keyed(tenant.ownerToken, undefined, CREATE_API_KEY, { input: { name: 'idem-partner', role: 'MANAGER', persistedOnly: true } });
    const apiKey = (created.body.data as { createApiKey: { secret: string } }).createApiKey.secret;
    const body = 'mutation IdemPartnerCreate($plate: String!) { createVehicle(input: { plate: $plate, make: "Volvo", model: "FH", year: 2022 }) { vehicle { id plate } } }';
    const sha256Hash = createHash('sha256').update(body).digest('hex');
    await tenant.owner.request(REGISTER, { operations: [{ id: sha256Hash, name: 'IdemPartnerCreate', body }] });
    const byHash = (key: string, plate: string) =>
      postJson(app.url, { extensions: { persistedQuery: { version: 1, sha256Hash } }, variables: { plate } }, { 'x-api-key': apiKey, 'idempotency-key': key });

    const key = newKey('partner');
    const first = await byHash(key, 'IDEM-P1');
    expect(codesOf(first)).toEqual([]);
    const retry = await byHash(key, 'IDEM-P1');
    expect(retry.text).toBe(first.text);
    expect(replayed(retry)).toBe('true');
    expect(codesOf(await byHash(key, 'IDEM-P2'))).toEqual(['IDEMPOTENCY_KEY_REUSED']);
    expect(await vehiclesWithPlate(tenant, 'IDEM-P1')).toBe(1);
    expect(await vehiclesWithPlate(tenant, 'IDEM-P2')).toBe(0);
    // The owner's same key is the owner's own.
    const byOwner = await keyed(tenant.ownerToken, key, CREATE_VEHICLE, { input: { plate: 'IDEM-P3', make: 'Volvo', model: 'FH', year: 2022 } });
    expect(codesOf(byOwner)).toEqual([]);
  });
});

describe('the same key with another body', () => {
  it('answers 422 IDEMPOTENCY_KEY_REUSED and runs nothing', async () => {
    const key = newKey('reused');
    await keyed(tenant.ownerToken, key, CREATE_VEHICLE, { input: { plate: 'IDEM-R1', make: 'Volvo', model: 'FH', year: 2021 } });
    const reused = await keyed(tenant.ownerToken, key, CREATE_VEHICLE, { input: { plate: 'IDEM-R2', make: 'Volvo', model: 'FH', year: 2021 } });
    expect(reused.status).toBe(422);
    expect(codesOf(reused)).toEqual(['IDEMPOTENCY_KEY_REUSED']);
    expect(reused.body.data).toBeUndefined();
    // Another operation under the key is another body too.
    const vehicle = await newVehicle(tenant, 'IDEM-R3');
    const otherOperation = await keyed(tenant.ownerToken, key, UPDATE_VEHICLE, { id: vehicle.id, input: { make: 'Scania' } });
    expect(codesOf(otherOperation)).toEqual(['IDEMPOTENCY_KEY_REUSED']);
    expect(await vehiclesWithPlate(tenant, 'IDEM-R2')).toBe(0);
    expect(await versionOf(tenant, vehicle.rowId)).toBe(1);
  });
});

describe('the header itself', () => {
  it.each([
    ['empty', ''],
    ['256 characters', 'k'.repeat(256)],
    ['a character outside printable ASCII', 'cl\u00e9'],
  ])('%s: 400 IDEMPOTENCY_KEY_INVALID, nothing ran', async (_label, key) => {
    const response = await keyed(tenant.ownerToken, key, CREATE_VEHICLE, { input: { plate: 'IDEM-BADKEY', make: 'Volvo', model: 'FH', year: 2021 } });
    expect(response.status).toBe(400);
    expect(codesOf(response)).toEqual(['IDEMPOTENCY_KEY_INVALID']);
    expect(await vehiclesWithPlate(tenant, 'IDEM-BADKEY')).toBe(0);
  });

  it('255 printable characters are a key', async () => {
    const key = `${newKey('long')}-`.padEnd(255, '~');
    const vehicle = await newVehicle(tenant, 'IDEM-LONGKEY');
    const first = await keyed(tenant.ownerToken, key, UPDATE_VEHICLE, { id: vehicle.id, input: { make: 'MAN' } });
    const second = await keyed(tenant.ownerToken, key, UPDATE_VEHICLE, { id: vehicle.id, input: { make: 'MAN' } });
    expect(second.text).toBe(first.text);
    expect(replayed(second)).toBe('true');
  });

  it('is ignored on a query: nothing stored, nothing replayed', async () => {
    const key = newKey('query');
    const first = await keyed(tenant.ownerToken, key, VEHICLE_COUNT, {});
    const second = await keyed(tenant.ownerToken, key, VEHICLE_COUNT, {});
    expect(codesOf(first)).toEqual([]);
    expect(replayed(second)).toBeNull();
    expect(await keyRows(key)).toEqual([]);
  });

  it('CORS lets a browser send Idempotency-Key and read Idempotency-Replayed', async () => {
    const origin = 'https://studio.apollographql.com';
    const preflight = await send(app.url, {
      method: 'OPTIONS',
      headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type,authorization,idempotency-key' },
    });
    expect(preflight.headers.get('access-control-allow-headers')?.toLowerCase()).toContain('idempotency-key');
    const post = await postJson(app.url, { query: print(VEHICLE_COUNT) }, { ...bearer(tenant.ownerToken), origin });
    expect(post.headers.get('access-control-expose-headers')?.toLowerCase()).toContain('idempotency-replayed');
  });
});

describe('callers and tenants', () => {
  it('another caller of the same tenant with the same key and body executes separately', async () => {
    const vehicle = await newVehicle(tenant, 'IDEM-CALLERS');
    const key = newKey('callers');
    const variables = { id: vehicle.id, input: { make: 'DAF' } };
    const byOwner = await keyed(tenant.ownerToken, key, UPDATE_VEHICLE, variables);
    const byManager = await keyed(managerToken, key, UPDATE_VEHICLE, variables);
    expect(replayed(byManager)).toBeNull();
    expect(byManager.text).not.toBe(byOwner.text);
    expect(await versionOf(tenant, vehicle.rowId)).toBe(3);
    expect(await keyRows(key)).toHaveLength(2);
  });

  it("cross-tenant: tenant B's key used by tenant A runs A's own mutation and never replays B's answer", async () => {
    const key = newKey('cross-tenant');
    const variables = { input: { plate: 'IDEM-XT', make: 'Volvo', model: 'FH', year: 2021 } };
    const byB = await keyed(other.ownerToken, key, CREATE_VEHICLE, variables);
    const byA = await keyed(tenant.ownerToken, key, CREATE_VEHICLE, variables);
    expect(codesOf(byA)).toEqual([]);
    expect(replayed(byA)).toBeNull();
    const idOf = (response: RawResponse) => (response.body.data as { createVehicle: { vehicle: { id: string } } }).createVehicle.vehicle.id;
    expect(idOf(byA)).not.toBe(idOf(byB));
    expect(await vehiclesWithPlate(tenant, 'IDEM-XT')).toBe(1);
    expect(await vehiclesWithPlate(other, 'IDEM-XT')).toBe(1);
    // Each replays its own.
    expect((await keyed(other.ownerToken, key, CREATE_VEHICLE, variables)).text).toBe(byB.text);
    expect((await keyed(tenant.ownerToken, key, CREATE_VEHICLE, variables)).text).toBe(byA.text);
  });
});

describe('platform admins', () => {
  const SUSPEND = graphql(`mutation IdemSuspend($id: ID!) { suspendTenant(id: $id) { tenant { id status } } }`);
  const REACTIVATE = graphql(`mutation IdemReactivate($id: ID!) { reactivateTenant(id: $id) { tenant { id status } } }`);

  it("keep their own keys: the retry replays, and does not suspend the tenant again once it was reactivated", async () => {
    const third = await app.createTenant();
    const adminToken = await app.adminToken();
    const key = newKey('admin');
    const first = await keyed(adminToken, key, SUSPEND, { id: third.id });
    expect((first.body.data as { suspendTenant: { tenant: { status: string } } }).suspendTenant.tenant.status).toBe('SUSPENDED');
    await keyed(adminToken, undefined, REACTIVATE, { id: third.id });
    const retry = await keyed(adminToken, key, SUSPEND, { id: third.id });
    expect(retry.text).toBe(first.text);
    expect(replayed(retry)).toBe('true');
    const status = await platformPool().query<{ status: string }>(`SELECT "status" FROM platform."Tenant" WHERE "id" = $1`, [third.id]);
    expect(status.rows[0]?.status).toBe('ACTIVE');
  });
});

describe('concurrent requests with one key', () => {
  const LOCK_VEHICLE = (fixture: TenantFixture) => `SELECT 1 FROM "${fixture.schemaName}"."Vehicle" WHERE id = $1 FOR UPDATE`;

  it('execute once: the others wait for the first and replay its answer', async () => {
    const vehicle = await newVehicle(tenant, 'IDEM-RACE');
    const key = newKey('race');
    const variables = { id: vehicle.id, input: { make: 'Iveco' } };
    const responses = await withRowLocked(platformPool(), LOCK_VEHICLE(tenant), [vehicle.rowId], async (lock) => {
      const sent = Array.from({ length: 6 }, () => keyed(tenant.ownerToken, key, UPDATE_VEHICLE, variables));
      // One of them holds the key and waits on the row; the rest poll for its answer.
      await lock.untilSomeoneWaits(1);
      await sleep(300);
      return sent;
    });
    const answers = await Promise.all(responses);
    expect(answers.map((answer) => answer.status)).toEqual(Array(6).fill(200));
    expect(new Set(answers.map((answer) => answer.text)).size).toBe(1);
    expect(answers.filter((answer) => replayed(answer) === 'true')).toHaveLength(5);
    expect(await versionOf(tenant, vehicle.rowId)).toBe(2);
    const changes = await platformPool().query<{ n: number }>(`SELECT count(*)::int AS n FROM "${tenant.schemaName}"."RecordChange" WHERE "recordId" = $1`, [vehicle.rowId]);
    expect(changes.rows[0]?.n).toBe(2); // created, updated once
  });

  it('a request still running past the wait answers 409 IDEMPOTENCY_KEY_IN_PROGRESS with Retry-After; later, the answer', async () => {
    const vehicle = await newVehicle(tenant, 'IDEM-SLOW');
    const key = newKey('slow');
    const variables = { id: vehicle.id, input: { make: 'Renault' } };
    const { first, waiting } = await withRowLocked(platformPool(), LOCK_VEHICLE(tenant), [vehicle.rowId], async (lock) => {
      const first = keyed(tenant.ownerToken, key, UPDATE_VEHICLE, variables);
      await lock.untilSomeoneWaits(1);
      const waiting = await keyed(tenant.ownerToken, key, UPDATE_VEHICLE, variables);
      return { first, waiting };
    });
    expect(waiting.status).toBe(409);
    expect(codesOf(waiting)).toEqual(['IDEMPOTENCY_KEY_IN_PROGRESS']);
    expect(waiting.headers.get('retry-after')).toBe('1');
    expect(waiting.ms).toBeGreaterThanOrEqual(WAIT_MS - 50);
    const answered = await first;
    const retried = await keyed(tenant.ownerToken, key, UPDATE_VEHICLE, variables);
    expect(retried.text).toBe(answered.text);
    expect(replayed(retried)).toBe('true');
    expect(await versionOf(tenant, vehicle.rowId)).toBe(2);
  });
});

describe('expiry and abandoned claims', () => {
  it('a key past its 24 h counts as absent: the request runs again, whatever its body', async () => {
    const vehicle = await newVehicle(tenant, 'IDEM-EXPIRY');
    const key = newKey('expiry');
    await keyed(tenant.ownerToken, key, UPDATE_VEHICLE, { id: vehicle.id, input: { make: 'A' } });
    const expiresIn = await platformPool().query<{ hours: number }>(
      `SELECT round(extract(epoch FROM "expiresAt" - "createdAt") / 3600)::int AS hours FROM platform."IdempotencyKey" WHERE "key" = $1`,
      [key],
    );
    expect(expiresIn.rows[0]?.hours).toBe(24);
    await platformPool().query(`UPDATE platform."IdempotencyKey" SET "expiresAt" = now() - interval '1 second' WHERE "key" = $1`, [key]);
    const again = await keyed(tenant.ownerToken, key, UPDATE_VEHICLE, { id: vehicle.id, input: { make: 'A' } });
    expect(replayed(again)).toBeNull();
    expect(await versionOf(tenant, vehicle.rowId)).toBe(3);
    await platformPool().query(`UPDATE platform."IdempotencyKey" SET "expiresAt" = now() - interval '1 second' WHERE "key" = $1`, [key]);
    const otherBody = await keyed(tenant.ownerToken, key, UPDATE_VEHICLE, { id: vehicle.id, input: { make: 'B' } });
    expect(codesOf(otherBody)).toEqual([]);
    expect(await versionOf(tenant, vehicle.rowId)).toBe(4);
  });

  it('a claim left IN_PROGRESS past IDEMPOTENCY_STALE_CLAIM_MS (its instance died) is taken over: the retry runs', async () => {
    const vehicle = await newVehicle(tenant, 'IDEM-STALE');
    const key = newKey('stale');
    const variables = { id: vehicle.id, input: { make: 'C' } };
    await keyed(tenant.ownerToken, key, UPDATE_VEHICLE, variables);
    // What a crash between claiming and storing leaves, two minutes on.
    await platformPool().query(
      `UPDATE platform."IdempotencyKey" SET "state" = 'IN_PROGRESS', "status" = NULL, "body" = NULL, "completedAt" = NULL, "createdAt" = now() - interval '121 seconds' WHERE "key" = $1`,
      [key],
    );
    const retried = await keyed(tenant.ownerToken, key, UPDATE_VEHICLE, variables);
    expect(codesOf(retried)).toEqual([]);
    expect(replayed(retried)).toBeNull();
    expect(await versionOf(tenant, vehicle.rowId)).toBe(3);
    expect(await keyRows(key)).toEqual([expect.objectContaining({ state: 'COMPLETED' })]);
  });
});

describe('answers holding a one-time secret', () => {
  it('createApiKey: the retry answers IDEMPOTENT_SECRET_NOT_REPLAYED, never the secret, and creates no second key', async () => {
    const key = newKey('api-key');
    const variables = { input: { name: `idem-${key}`, role: 'VIEWER' } };
    const first = await keyed(tenant.ownerToken, key, CREATE_API_KEY, variables);
    const secret = (first.body.data as { createApiKey: { secret: string } }).createApiKey.secret;
    expect(secret).toMatch(/^fgk_/);
    const retry = await keyed(tenant.ownerToken, key, CREATE_API_KEY, variables);
    expect(retry.status).toBe(409);
    expect(codesOf(retry)).toEqual(['IDEMPOTENT_SECRET_NOT_REPLAYED']);
    expect(retry.body.errors?.[0]?.extensions?.completedAt).toEqual(expect.any(String));
    expect(replayed(retry)).toBe('true');
    expect(retry.text).not.toContain(secret);
    expect(await keyRows(key)).toEqual([{ state: 'COMPLETED', status: null, body: null, withheld: true }]);
    const keys = await platformPool().query<{ n: number }>(`SELECT count(*)::int AS n FROM platform."ApiKey" WHERE "name" = $1`, [`idem-${key}`]);
    expect(keys.rows[0]?.n).toBe(1);
  });

  it("inviteMember: the answer holds no code (it is emailed), so a retry replays it, and sends no second email", async () => {
    const key = newKey('invite');
    const variables = { input: { email: 'invitee@idem.test', role: 'VIEWER' } };
    const first = await keyed(tenant.ownerToken, key, INVITE, variables);
    const code = await app.invitationCode('invitee@idem.test');
    const retry = await keyed(tenant.ownerToken, key, INVITE, variables);
    expect(replayed(retry)).toBe('true');
    expect(retry.body).toEqual(first.body);
    const stored = await platformPool().query(`SELECT 1 FROM platform."IdempotencyKey" WHERE "body" LIKE $1`, [`%${code}%`]);
    expect(stored.rowCount).toBe(0);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(app.mail!.to('invitee@idem.test')).toHaveLength(1);
  });

  it('the @secret fields are the ones that carry secrets', () => {
    expect(secretFieldsOf(buildSchema())).toEqual([
      'AuthPayload.accessToken',
      'AuthPayload.refreshToken',
      'CreateApiKeyPayload.secret',
      'CreateWebhookEndpointPayload.secret',
      'RotateWebhookSecretPayload.secret',
    ]);
  });
});

describe('another instance on the same database', () => {
  it('replays what the first stored, and deletes expired keys in a bounded batch', async () => {
    const key = newKey('instances');
    const variables = { input: { plate: 'IDEM-INST', make: 'Volvo', model: 'FH', year: 2021 } };
    const first = await keyed(tenant.ownerToken, key, CREATE_VEHICLE, variables);
    await platformPool().query(
      `INSERT INTO platform."IdempotencyKey" ("id", "scope", "key", "fingerprint", "claim", "state", "status", "body", "createdAt", "completedAt", "expiresAt")
       SELECT gen_random_uuid(), 'sweep-test', 'old-' || n, 'f', gen_random_uuid(), 'COMPLETED', 200, '{}', now() - interval '25 hours', now() - interval '25 hours', now() - interval '1 hour'
       FROM generate_series(1, 5) n`,
    );
    const second = await startTestServer({ databaseUrl: app.databaseUrl, env: { IDEMPOTENCY_WAIT_MS: String(WAIT_MS) } });
    try {
      const replay = await keyed(tenant.ownerToken, key, CREATE_VEHICLE, variables, second.url);
      expect(replay.text).toBe(first.text);
      expect(replayed(replay)).toBe('true');
      // Its first claim sweeps.
      await keyed(tenant.ownerToken, newKey('sweep'), CREATE_VEHICLE, { input: { plate: 'IDEM-SWEEP', make: 'Volvo', model: 'FH', year: 2021 } }, second.url);
      await eventually(async () => {
        const left = await platformPool().query(`SELECT 1 FROM platform."IdempotencyKey" WHERE "scope" = 'sweep-test'`);
        return left.rowCount === 0 ? true : undefined;
      }, 5_000, 50);
    } finally {
      await second.close();
    }
    expect(await vehiclesWithPlate(tenant, 'IDEM-INST')).toBe(1);
  });
});

describe('a key store that cannot be reached', () => {
  it('answers 503 with Retry-After and runs nothing: a keyed mutation never runs unchecked', async () => {
    const pool = platformPool();
    const original = pool.query.bind(pool) as (...args: unknown[]) => Promise<unknown>;
    const spy = jest.spyOn(pool, 'query').mockImplementation(((...args: unknown[]) => {
      const [statement] = args;
      const sql = typeof statement === 'string' ? statement : ((statement as { text?: string }).text ?? '');
      if (sql.includes('IdempotencyKey')) return Promise.reject(new Error('connection terminated unexpectedly'));
      return original(...args);
    }) as unknown as typeof pool.query);
    let response: RawResponse;
    try {
      response = await keyed(tenant.ownerToken, newKey('down'), CREATE_VEHICLE, { input: { plate: 'IDEM-DOWN', make: 'Volvo', model: 'FH', year: 2021 } });
    } finally {
      spy.mockRestore();
    }
    expect(response.status).toBe(503);
    expect(codesOf(response)).toEqual(['SERVICE_UNAVAILABLE']);
    expect(response.headers.get('retry-after')).toBe('1');
    expect(await vehiclesWithPlate(tenant, 'IDEM-DOWN')).toBe(0);
  });
});

describe('cost', () => {
  it('a mutation without the header never touches the key table; with it, one statement claims and one stores', async () => {
    const pool = platformPool();
    const spy = jest.spyOn(pool, 'query');
    // The claim's INSERT and the answer's UPDATE (a sweep of expired keys, when due, is a DELETE sent without waiting).
    const keyStatements = () =>
      spy.mock.calls
        .map(([statement]) => (typeof statement === 'string' ? statement : (statement as { text?: string }).text ?? ''))
        .filter((sql) => sql.includes('IdempotencyKey') && !sql.trim().startsWith('DELETE'))
        .map((sql) => sql.trim().split(/\s+/)[0]);
    try {
      const unkeyed = await keyed(tenant.ownerToken, undefined, CREATE_VEHICLE, { input: { plate: 'IDEM-COST-1', make: 'Volvo', model: 'FH', year: 2021 } });
      expect(codesOf(unkeyed)).toEqual([]);
      expect(keyStatements()).toEqual([]);
      await keyed(tenant.ownerToken, newKey('cost'), CREATE_VEHICLE, { input: { plate: 'IDEM-COST-2', make: 'Volvo', model: 'FH', year: 2021 } });
      expect(keyStatements()).toEqual(['INSERT', 'UPDATE']);
    } finally {
      spy.mockRestore();
    }
  });
});
