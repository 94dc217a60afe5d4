import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { startTestServer, uniqueSlug, type TenantFixture, type TestServer } from '../support/test-server';
import { graphql } from '../generated';

/*
 * `npm run schema:check` as an operator runs it before a deploy: a child process against the
 * platform database of a running server, where two tenants registered operations over HTTP,
 * with a schema folder changed the way a deploy would change it. It must name the operations a
 * change breaks (exit 1), list deprecated uses (exit 0 alone), and print names and hashes only,
 * never a tenant's documents.
 */

const ROOT = path.resolve(__dirname, '../..');
// Each test starts the command (node + tsx compiling the script) once or twice; on a loaded
// two-core machine that alone has taken 10 s.
jest.setTimeout(180_000);
const run = promisify(execFile);

const REGISTER = graphql(`mutation SchemaCheckRegister($operations: [PersistedOperationInput!]!) {
  registerPersistedOperations(operations: $operations) { operations { id sha256 operationName } }
}`);

const REMOVE_PLATFORM = graphql(`mutation SchemaCheckRemovePlatform($tenantId: ID, $ids: [ID!]!) {
  removePlatformPersistedOperations(tenantId: $tenantId, ids: $ids) { removedIds }
}`);

const A_BY_STATUS = `query PartnerVehiclesByStatus($status: VehicleStatus) {
  vehicles(first: 20, filter: { status: $status }) { edges { node { plate status } } }
}`;
const A_TRIPS = `query PartnerOpenTrips { trips(first: 10, filter: { status: [DISPATCHED, IN_TRANSIT] }) { edges { node { reference status } } } }`;
/** B's documents: distinctive text that must never reach the output. */
const B_ODOMETERS = `query BravoSecretOdometers { vehicles(first: 7, filter: { search: "bravo-private-search" }) { edges { node { plate odometerKm } } } }`;
const B_PLATES = `query BravoPlates { vehicles(first: 3) { edges { node { plate } } } }`;

let app: TestServer;
let A: TenantFixture;
let B: TenantFixture;
let work: string;

/** A copy of schema/ with `edit` applied to one of its files (fleet.graphql); returns the folder. */
function schemaDir(name: string, edit: (sdl: string) => string, fileName = 'fleet.graphql'): string {
  const dir = path.join(work, name);
  cpSync(path.join(ROOT, 'schema'), dir, { recursive: true });
  const file = path.join(dir, fileName);
  const before = readFileSync(file, 'utf8');
  const after = edit(before);
  expect(after).not.toBe(before);
  writeFileSync(file, after);
  return dir;
}

async function schemaCheck(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = { PATH: process.env.PATH, HOME: process.env.HOME, NODE_ENV: 'test', DATABASE_URL: app.databaseUrl, LOG_LEVEL: 'silent' };
  try {
    const { stdout, stderr } = await run(process.execPath, ['scripts/operator.js', 'schema-check', ...args], { cwd: ROOT, env, timeout: 120_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code?: number; stdout: string; stderr: string };
    return { code: typeof failed.code === 'number' ? failed.code : -1, stdout: failed.stdout, stderr: failed.stderr };
  }
}

/** What a line says of a registered operation: the sha256's first 12 characters and the id. */
function tagOf(operations: { id: string; sha256: string; operationName: string | null }[], name: string): string {
  const operation = operations.find((candidate) => candidate.operationName === name);
  if (!operation) throw new Error(`${name} was not registered`);
  return `${operation.sha256.slice(0, 12)} ${operation.id}`;
}

type Registered = { id: string; sha256: string; operationName: string | null };
let aHashes: Registered[];
let bHashes: Registered[];

beforeAll(async () => {
  work = mkdtempSync(path.join(tmpdir(), 'schema-check-'));
  app = await startTestServer();
  A = await app.createTenant(uniqueSlug('sc-a'));
  B = await app.createTenant(uniqueSlug('sc-b'));
  aHashes = (await A.owner.request(REGISTER, { operations: [{ name: 'PartnerVehiclesByStatus', body: A_BY_STATUS }, { name: 'PartnerOpenTrips', body: A_TRIPS }] }))
    .registerPersistedOperations.operations;
  bHashes = (await B.owner.request(REGISTER, { operations: [{ name: 'BravoSecretOdometers', body: B_ODOMETERS }, { name: 'BravoPlates', body: B_PLATES }] }))
    .registerPersistedOperations.operations;
});

afterAll(async () => {
  await app?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('npm run schema:check against the platform database', () => {
  it('passes every registered operation against the schema as it is (exit 0)', async () => {
    const result = await schemaCheck();
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout.trim().split('\n')).toEqual([expect.stringMatching(/^schema:check: 4 registered operations of 2 tenants and global against schema: 0 broken, 0 using deprecated parts$/)]);
  });

  it("names each operation a change breaks (tenant slug, name, hash prefix, reason) and exits 1, never printing a document", async () => {
    const dir = schemaDir('broken', (fleet) =>
      fleet
        // An argument's type changed: a variable of the enum type no longer fits.
        .replace('input VehicleFilter {\n  status: VehicleStatus', 'input VehicleFilter {\n  status: [VehicleStatus!]')
        // A field removed.
        .replace(/\n {2}odometerKm: Int!\n/, '\n'),
    );
    const result = await schemaCheck('--schema', dir);
    expect(result.code).toBe(1);
    const lines = result.stdout.trim().split('\n');
    expect(lines).toEqual([
      expect.stringMatching(
        new RegExp(`^BROKEN +${A.slug} +PartnerVehiclesByStatus +${tagOf(aHashes, 'PartnerVehiclesByStatus')}  Variable "\\$status" of type "VehicleStatus" used in position expecting type "\\[VehicleStatus!\\]"\\. \\(at 1:31, 2:41\\)$`),
      ),
      expect.stringMatching(
        new RegExp(`^BROKEN +${B.slug} +BravoSecretOdometers +${tagOf(bHashes, 'BravoSecretOdometers')}  Cannot query field "odometerKm" on type "Vehicle"\\. \\(at 1:\\d+\\)$`),
      ),
      expect.stringMatching(/^schema:check: 4 registered operations of 2 tenants and global against .*broken: 2 broken, 0 using deprecated parts$/),
    ]);
    // Names and hashes only: not B's text, its literals, nor any full hash.
    expect(result.stdout).not.toContain('bravo-private-search');
    expect(result.stdout).not.toContain('edges');
    for (const { sha256 } of [...aHashes, ...bHashes]) expect(result.stdout).not.toContain(sha256);
  });

  it('lists operations using deprecated fields and still exits 0', async () => {
    const dir = schemaDir('deprecated', (fleet) => fleet.replace(/\n {2}odometerKm: Int!\n/, '\n  odometerKm: Int! @deprecated(reason: "Use odometer.")\n'));
    const result = await schemaCheck('--schema', dir);
    expect(result.code).toBe(0);
    expect(result.stdout.trim().split('\n')).toEqual([
      expect.stringMatching(new RegExp(`^DEPRECATED ${B.slug} +BravoSecretOdometers +${tagOf(bHashes, 'BravoSecretOdometers')}  Vehicle.odometerKm is deprecated: Use odometer\\.$`)),
      expect.stringMatching(/: 0 broken, 1 using deprecated parts$/),
    ]);
  });

  it('prints the id a platform admin removes a broken operation by (removePlatformPersistedOperations), after which it is not reported', async () => {
    const dir = schemaDir('after-removal', (fleet) => fleet.replace(/\n {2}odometerKm: Int!\n/, '\n'));
    const before = await schemaCheck('--schema', dir);
    expect(before.code).toBe(1);
    const id = /^BROKEN +\S+ +BravoSecretOdometers +[0-9a-f]{12} ([0-9a-f-]{36}) /m.exec(before.stdout)?.[1] as string;
    expect(id).toBe(bHashes.find((operation) => operation.operationName === 'BravoSecretOdometers')?.id);
    const admin = await app.admin();
    expect((await admin.request(REMOVE_PLATFORM, { tenantId: B.id, ids: [id] })).removePlatformPersistedOperations.removedIds).toEqual([id]);
    const result = await schemaCheck('--schema', dir);
    expect(result.code).toBe(0);
    expect(result.stdout.trim().split('\n')).toEqual([expect.stringMatching(/: 3 registered operations of 2 tenants and global against .*: 0 broken, 0 using deprecated parts$/)]);
  });

  it('checks a manifest without a database, and refuses unknown arguments', async () => {
    const result = await schemaCheck('--manifest', 'tests/fixtures/partner-operations.json', '--schema', schemaDir('manifest', (fleet) => fleet.replace(/\n {2}odometerKm: Int!\n/, '\n')));
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/^BROKEN +MANIFEST +VehiclePage +[0-9a-f]{12} {2}Cannot query field "odometerKm" on type "Vehicle"\./m);
    expect(result.stdout).toMatch(/from tests\/fixtures\/partner-operations\.json against .*: [1-9]\d* broken/);

    // With the deployed SDL as a base: a required input field added still validates, but breaks CreateTrip's $input.
    const withBase = await schemaCheck(
      '--manifest', 'tests/fixtures/partner-operations.json',
      '--base', 'schema',
      '--schema', schemaDir('required-input', (sdl) => sdl.replace('input CreateTripInput {', 'input CreateTripInput {\n  customerRef: String!'), 'dispatch.graphql'),
    );
    expect(withBase.code).toBe(1);
    expect(withBase.stdout.trim().split('\n')).toEqual([
      expect.stringMatching(/^BROKEN +MANIFEST +CreateTrip +[0-9a-f]{12} {2}CreateTripInput\.customerRef was added as a required field; this operation receives it through \$input \(at 1:21\)$/),
      expect.stringMatching(/\(changes since schema\): 1 broken, 0 using deprecated parts$/),
    ]);

    // A name is the tenant's choice: a line break in it cannot forge a line of the report.
    const body = '{ vehicles(first: 1) { edges { node { odometerKm } } } }';
    const forged = path.join(work, 'forged.json');
    writeFileSync(forged, JSON.stringify({
      format: 'apollo-persisted-query-manifest',
      version: 1,
      operations: [{ id: createHash('sha256').update(body).digest('hex'), name: 'Odometers\nBROKEN     GLOBAL forged', type: 'query', body }],
    }));
    const oneLine = await schemaCheck('--manifest', forged, '--schema', schemaDir('forged', (fleet) => fleet.replace(/\n {2}odometerKm: Int!\n/, '\n')));
    expect(oneLine.code).toBe(1);
    expect(oneLine.stdout.trim().split('\n')).toEqual([
      expect.stringMatching(/^BROKEN +MANIFEST +Odometers BROKEN +GLOBAL forged +[0-9a-f]{12} {2}Cannot query field "odometerKm"/),
      expect.stringMatching(/: 1 broken, 0 using deprecated parts$/),
    ]);

    const wrong = await schemaCheck('--nope');
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/^schema:check: unknown argument --nope; usage: npm run schema:check/);
  });
});
