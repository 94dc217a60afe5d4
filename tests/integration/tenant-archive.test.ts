import { graphql } from '../generated';
import { startTestServer, type TenantFixture, type TestServer } from '../support/test-server';

/*
 * A tenant's archive over real HTTP: a platform admin exports tenant A (a consistent stream of
 * JSON lines: header, rows, end line), imports it into a new tenant C, and C reads what A holds;
 * nothing of B's is in A's archive; importing refuses non-empty tenants, cut or malformed
 * archives, another migration version, other media types and oversized bodies, changing
 * nothing; tenant members cannot export at all.
 */

let app: TestServer;
let adminToken: string;
let A: TenantFixture;
let B: TenantFixture;

const MAX_IMPORT_BYTES = 1_000_000;

const CREATE_VEHICLE = graphql(`mutation ArchiveVehicle($input: CreateVehicleInput!) { createVehicle(input: $input) { vehicle { id } } }`);
const CREATE_DRIVER = graphql(`mutation ArchiveDriver($input: CreateDriverInput!) { createDriver(input: $input) { driver { id } } }`);
const CREATE_TRIP = graphql(`mutation ArchiveTrip($input: CreateTripInput!) { createTrip(input: $input) { trip { id } } }`);
const TRANSITION = graphql(`mutation ArchiveTransition($input: TransitionTripInput!) { transitionTrip(input: $input) { trip { status } } }`);
const SETTINGS = graphql(`mutation ArchiveSettings($input: UpdateFleetSettingsInput!) { updateFleetSettings(input: $input) { settings { currency } } }`);
const DELETE_VEHICLE = graphql(`mutation ArchiveDeleteVehicle($id: ID!) { deleteVehicle(id: $id) { deletedId } }`);
const FLEET = graphql(`query ArchiveFleet {
  vehicles(first: 10, includeDeleted: true) { edges { node { id plate year deletedAt history(first: 10) { edges { node { version action } } } } } }
  drivers(first: 10) { edges { node { id name licenseNumber } } }
  trips(first: 10) { edges { node { id reference status transitions { from to } } } }
  fleetSettings { currency timeZone }
}`);
const AUDIT = graphql(`query ArchiveAudit { auditEvents(first: 100) { totalCount edges { node { action } } } }`);

async function exportOf(slug: string, token = adminToken): Promise<Response> {
  return fetch(`${new URL(app.url).origin}/admin/tenants/${slug}/export`, { headers: { authorization: `Bearer ${token}` } });
}

async function importInto(slug: string, body: string, contentType = 'application/x-ndjson'): Promise<{ status: number; body: { counts?: Record<string, number>; errors?: { extensions: { code: string } }[] } }> {
  const response = await fetch(`${new URL(app.url).origin}/admin/tenants/${slug}/import`, {
    method: 'POST',
    headers: { authorization: `Bearer ${adminToken}`, 'content-type': contentType },
    body,
  });
  return { status: response.status, body: (await response.json()) as never };
}

const codeOf = (result: { body: { errors?: { extensions: { code: string } }[] } }) => result.body.errors?.[0]?.extensions.code;

beforeAll(async () => {
  app = await startTestServer({ env: { TENANT_IMPORT_MAX_BYTES: String(MAX_IMPORT_BYTES) } });
  adminToken = await app.adminToken();
  A = await app.createTenant();
  B = await app.createTenant();
  const vehicleId = (await A.owner.request(CREATE_VEHICLE, { input: { plate: 'ARCH-1', make: 'Volvo', model: 'FH', year: 2021 } })).createVehicle.vehicle.id;
  const gone = (await A.owner.request(CREATE_VEHICLE, { input: { plate: 'ARCH-GONE', make: 'MAN', model: 'TGX', year: 2015 } })).createVehicle.vehicle.id;
  await A.owner.request(DELETE_VEHICLE, { id: gone });
  const driverId = (await A.owner.request(CREATE_DRIVER, { input: { name: 'Archie', licenseNumber: 'ARCH-LIC' } })).createDriver.driver.id;
  const tripId = (await A.owner.request(CREATE_TRIP, { input: { reference: 'ARCH-TRIP', origin: 'Oslo', destination: 'Bergen', vehicleId, driverId } })).createTrip.trip.id;
  await A.owner.request(TRANSITION, { input: { id: tripId, to: 'PLANNED' } });
  await A.owner.request(SETTINGS, { input: { currency: 'NOK', timeZone: 'Europe/Oslo' } });
  await B.owner.request(CREATE_VEHICLE, { input: { plate: 'B-ONLY-PLATE', make: 'Scania', model: 'R', year: 2020 } });
}, 60_000);

afterAll(async () => {
  await app?.close();
});

describe('tenant archive', () => {
  let archive: string;

  it("exports A's data as JSON lines: header, rows in order, end line; nothing of B's", async () => {
    const response = await exportOf(A.slug);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toContain('application/x-ndjson');
    archive = await response.text();
    const lines = archive.trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(lines[0]).toMatchObject({ format: 'fleet-graphql-tenant-export', version: 1, tenant: { slug: A.slug } });
    expect((lines[0] as { migrationVersion: string }).migrationVersion).toMatch(/^\d{14}_/);
    const end = lines.at(-1) as { end: boolean; counts: Record<string, number> };
    expect(end).toMatchObject({ end: true, counts: { Vehicle: 2, Driver: 1, Trip: 1, TripTransition: 1, FleetSettings: 1 }, signature: expect.stringMatching(/^[0-9a-f]{64}$/) as unknown });
    expect(end.counts.RecordChange).toBeGreaterThan(4);
    expect(end.counts.AuditEvent).toBeGreaterThan(4);
    expect(lines.length).toBe(Object.values(end.counts).reduce((sum, n) => sum + n, 0) + 2);
    expect(archive).not.toContain('B-ONLY-PLATE');
    expect(archive).not.toContain(B.id);
  });

  it('imports into a new tenant, which then reads what A holds', async () => {
    const C = await app.createTenant();
    const result = await importInto(C.slug, archive);
    expect(result.status).toBe(200);
    expect(result.body.counts).toMatchObject({ Vehicle: 2, Driver: 1, Trip: 1 });
    const [fromA, fromC] = await Promise.all([A.owner.request(FLEET), C.owner.request(FLEET)]);
    expect(fromC).toEqual(fromA);
    expect(fromC.fleetSettings).toEqual({ currency: 'NOK', timeZone: 'Europe/Oslo' });
    const audit = (await C.owner.request(AUDIT)).auditEvents;
    expect(audit.edges[0]?.node.action).toBe('tenant.imported');
    // A's record changes came along; the tenant's own lifecycle entries (created, exported, imported) are each tenant's.
    const records = (events: { edges: { node: { action: string } }[] }) => events.edges.filter((edge) => !edge.node.action.startsWith('tenant.')).length;
    expect(records(audit)).toBe(records((await A.owner.request(AUDIT)).auditEvents));
    expect(records(audit)).toBeGreaterThan(4);
    expect((await A.owner.request(AUDIT)).auditEvents.edges.map((edge) => edge.node.action)).toContain('tenant.exported');

    // Again into the same tenant: it holds data now.
    const again = await importInto(C.slug, archive);
    expect([again.status, codeOf(again)]).toEqual([409, 'CONFLICT']);
    expect((await C.owner.request(FLEET)).vehicles.edges).toHaveLength(2);
  });

  it('refuses a cut, malformed or other-version archive, another media type and an oversized body, importing nothing', async () => {
    const D = await app.createTenant();
    const lines = archive.trim().split('\n');
    const cut = await importInto(D.slug, lines.slice(0, -1).join('\n'));
    expect([cut.status, codeOf(cut)]).toEqual([400, 'BAD_REQUEST']);
    const malformed = await importInto(D.slug, [...lines.slice(0, 3), '{not json', ...lines.slice(3)].join('\n'));
    expect([malformed.status, codeOf(malformed)]).toEqual([400, 'BAD_REQUEST']);
    const header = JSON.parse(lines[0] as string) as Record<string, unknown>;
    const older = await importInto(D.slug, [JSON.stringify({ ...header, migrationVersion: '20261123201854_init' }), ...lines.slice(1)].join('\n'));
    expect([older.status, codeOf(older)]).toEqual([409, 'CONFLICT']);
    // Rows are inserted as they are, so the archive must be this installation's, unaltered.
    const tampered = await importInto(D.slug, archive.replace('"plate":"ARCH-1"', '"plate":"FORGED"'));
    expect([tampered.status, codeOf(tampered)]).toEqual([400, 'BAD_REQUEST']);
    const unsigned = await importInto(D.slug, [...lines.slice(0, -1), JSON.stringify({ ...(JSON.parse(lines.at(-1) as string) as object), signature: 'f'.repeat(64) })].join('\n'));
    expect([unsigned.status, codeOf(unsigned)]).toEqual([400, 'BAD_REQUEST']);
    const nulls = await importInto(D.slug, ['null', ...lines.slice(1)].join('\n'));
    expect([nulls.status, codeOf(nulls)]).toEqual([400, 'BAD_REQUEST']);
    const json = await importInto(D.slug, archive, 'application/json');
    expect([json.status, codeOf(json)]).toEqual([415, 'UNSUPPORTED_MEDIA_TYPE']);
    const huge = await importInto(D.slug, `${lines[0]}\n${'x'.repeat(MAX_IMPORT_BYTES)}`);
    expect([huge.status, codeOf(huge)]).toEqual([413, 'PAYLOAD_TOO_LARGE']);
    expect((await D.owner.request(FLEET)).vehicles.edges).toEqual([]);
  });

  it("refuses an archive holding more than the tenant's plan allows, importing nothing", async () => {
    const E = await app.createTenant();
    const admin = app.bearer(adminToken);
    await admin.request(graphql(`mutation ArchiveQuota($id: ID!) { setTenantQuota(id: $id, quota: VEHICLES, limit: { max: 0 }) { tenant { id } } }`), { id: E.id });
    const over = await importInto(E.slug, archive);
    expect([over.status, codeOf(over)]).toEqual([403, 'QUOTA_EXCEEDED']);
    expect((await E.owner.request(FLEET)).vehicles.edges).toEqual([]);
  });

  it('is for platform admins only', async () => {
    const asOwner = await exportOf(A.slug, A.ownerToken);
    expect(asOwner.status).toBe(403);
    expect(((await asOwner.json()) as { errors: { extensions: { code: string } }[] }).errors[0]?.extensions.code).toBe('FORBIDDEN');
    const signedOut = await fetch(`${new URL(app.url).origin}/admin/tenants/${A.slug}/export`);
    expect(signedOut.status).toBe(401);
    const asOwnerImport = await fetch(`${new URL(app.url).origin}/admin/tenants/${B.slug}/import`, {
      method: 'POST',
      headers: { authorization: `Bearer ${B.ownerToken}`, 'content-type': 'application/x-ndjson' },
      body: archive,
    });
    expect(asOwnerImport.status).toBe(403);
    expect((await B.owner.request(FLEET)).vehicles.edges.map((edge) => edge.node.plate)).toEqual(['B-ONLY-PLATE']);
    expect((await exportOf('no-such-tenant')).status).toBe(404);
  });
});
