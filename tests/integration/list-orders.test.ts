import pg from 'pg';
import { stopList } from '../../src/dispatch/stop-list';
import { tripList } from '../../src/dispatch/trip-tables';
import { driverList, vehicleList } from '../../src/fleet/fleet-tables';
import { maintenanceList } from '../../src/fleet/maintenance';
import { auditList } from '../../src/records/audit-events';
import { tripNoteList } from '../../src/dispatch/trip-notes';
import { toGlobalId, type NodeType } from '../../src/graphql/global-id';
import { pageQueryOf, type RecordList } from '../../src/records/record-list';
import { quoteIdentifier } from '../../src/tenancy/tenant-naming';
import { graphql } from '../generated';
import type { OrderDirection } from '../generated/graphql';
import { expectErrors, startTestServer, type TenantFixture, type TestServer } from '../support/test-server';

/*
 * Lists a frontend can build screens on: every order a type declares, both directions, paged
 * in small pages over HTTP, against the database's own ORDER BY as the oracle (ties broken by
 * id, NULLs where PostgreSQL puts them); cursors refused in another order; the filters a
 * dispatcher needs; and, on a tenant of 10,000 rows per table, no order read by a sequential scan.
 */

let app: TestServer;
let tenant: TenantFixture;

const VEHICLES = graphql(`query OrdersVehicles($first: Int, $after: String, $orderBy: VehicleOrder, $filter: VehicleFilter) {
  vehicles(first: $first, after: $after, orderBy: $orderBy, filter: $filter) { totalCount pageInfo { hasNextPage endCursor } edges { node { id } } }
}`);
const DRIVERS = graphql(`query OrdersDrivers($first: Int, $after: String, $orderBy: DriverOrder) {
  drivers(first: $first, after: $after, orderBy: $orderBy) { pageInfo { hasNextPage endCursor } edges { node { id } } }
}`);
const TRIPS = graphql(`query OrdersTrips($first: Int, $after: String, $orderBy: TripOrder) {
  trips(first: $first, after: $after, orderBy: $orderBy) { pageInfo { hasNextPage endCursor } edges { node { id } } }
}`);

const MAINTENANCE = graphql(`query OrdersMaintenance($first: Int, $after: String, $orderBy: MaintenanceOrder, $filter: MaintenanceFilter) {
  maintenanceRecords(first: $first, after: $after, orderBy: $orderBy, filter: $filter) { totalCount pageInfo { hasNextPage endCursor } edges { node { id } } }
}`);
const STOPS = graphql(`query OrdersStops($first: Int, $after: String, $orderBy: StopOrder, $filter: StopFilter) {
  stops(first: $first, after: $after, orderBy: $orderBy, filter: $filter) { totalCount pageInfo { hasNextPage endCursor } edges { node { id } } }
}`);
const TRANSITION = graphql(`mutation OrdersTransition($input: TransitionTripInput!) { transitionTrip(input: $input) { trip { id } } }`);

interface Page {
  pageInfo: { hasNextPage: boolean; endCursor?: string | null };
  edges: { node: { id: string } }[];
}

/** Every id of a list, read in pages of `size` through its cursors. */
async function pageThrough(read: (after: string | undefined) => Promise<Page>): Promise<string[]> {
  const ids: string[] = [];
  let after: string | undefined;
  for (let guard = 0; guard < 100; guard += 1) {
    const page = await read(after);
    ids.push(...page.edges.map((edge) => edge.node.id));
    if (!page.pageInfo.hasNextPage) return ids;
    after = page.pageInfo.endCursor ?? undefined;
  }
  throw new Error('did not reach the last page');
}

/** The ids in the database's own order: the oracle. */
async function idsInDatabase(table: NodeType, column: string, direction: OrderDirection): Promise<string[]> {
  const quoted = (name: string) => `"${name}"`; // our own column and table names, from the declarations
  const sort = column === 'id' ? `id ${direction}` : `${quoted(column)} ${direction}, id ${direction}`;
  const result = await app.server.services.platform.pool.query<{ id: string }>(`SELECT id FROM ${quoteIdentifier(tenant.schemaName)}.${quoted(table)} ORDER BY ${sort}`);
  return result.rows.map((row) => toGlobalId(table, row.id));
}

/** The seeded trips (index i has vehicle i and driver i), and the vehicles that had maintenance. */
const tripIds: string[] = [];
const vehicleIds: string[] = [];

beforeAll(async () => {
  app = await startTestServer();
  tenant = await app.createTenant(undefined, 'ENTERPRISE');
  // Few distinct years, statuses, departures and windows: most of each order is ties, broken by id.
  for (let index = 0; index < 13; index += 1) {
    const vehicle = await tenant.owner.request(graphql(`mutation OrdersCreateVehicle($input: CreateVehicleInput!) { createVehicle(input: $input) { vehicle { id } } }`), {
      input: { plate: `ORD-${(index * 7) % 13}`, make: 'MAN', model: 'TGX', year: 2018 + (index % 3), odometerKm: (index % 4) * 1000, status: index % 5 === 0 ? 'RETIRED' : 'ACTIVE' },
    });
    const driver = await tenant.owner.request(graphql(`mutation OrdersCreateDriver($input: CreateDriverInput!) { createDriver(input: $input) { driver { id } } }`), {
      input: { name: `Driver ${index % 4}`, licenseNumber: `ORD-LIC-${(index * 5) % 13}`, status: index % 2 === 0 ? 'ACTIVE' : 'ON_LEAVE' },
    });
    const trip = await tenant.owner.request(graphql(`mutation OrdersCreateTrip($input: CreateTripInput!) { createTrip(input: $input) { trip { id } } }`), {
      input: {
        reference: `ORD-REF-${(index * 3) % 13}`,
        origin: 'A',
        destination: 'B',
        vehicleId: vehicle.createVehicle.vehicle.id,
        driverId: driver.createDriver.driver.id,
        ...(index % 3 === 0 ? {} : { plannedDepartureAt: `2026-12-0${1 + (index % 2)}T08:00:00Z` }),
      },
    });
    vehicleIds.push(vehicle.createVehicle.vehicle.id);
    tripIds.push(trip.createTrip.trip.id);
    // A pickup and a drop-off per trip; windows from three starts and two ends, some open.
    for (const kind of ['PICKUP', 'DROP_OFF'] as const) {
      const hour = 8 + ((index + (kind === 'PICKUP' ? 0 : 1)) % 3);
      await tenant.owner.request(graphql(`mutation OrdersAddStop($input: AddStopInput!) { addStop(input: $input) { stop { id } } }`), {
        input: {
          tripId: trip.createTrip.trip.id,
          kind,
          address: `${kind} ${index}`,
          ...(index % 4 === 3 ? {} : { windowStart: `2026-12-05T${String(hour).padStart(2, '0')}:00:00Z` }),
          ...(index % 2 === 0 ? { windowEnd: `2026-12-05T1${2 + (index % 4 === 0 ? 0 : 1)}:00:00Z` } : {}),
        },
      });
    }
  }
  // Trips 1 and 2 (ACTIVE vehicles) go on the road: trip 1's pickup is completed and its
  // drop-off arrived at, trip 2's pickup completed.
  for (const index of [1, 2]) {
    for (const to of ['PLANNED', 'DISPATCHED'] as const) await tenant.owner.request(TRANSITION, { input: { id: tripIds[index] as string, to } });
  }
  const stopsOf = graphql(`query OrdersStopsOf($id: ID!) { trip(id: $id) { stops { id kind } } }`);
  const [first, second] = await Promise.all([1, 2].map(async (index) => (await tenant.owner.request(stopsOf, { id: tripIds[index] as string })).trip?.stops ?? []));
  for (const stop of [first?.[0], second?.[0]]) {
    await tenant.owner.request(graphql(`mutation OrdersCompleteStop($id: ID!) { completeStop(input: { id: $id }) { stop { id } } }`), { id: stop?.id as string });
  }
  await tenant.owner.request(graphql(`mutation OrdersArriveStop($id: ID!) { markStopArrived(id: $id) { stop { id } } }`), { id: first?.[1]?.id as string });
  // Maintenance on eight ACTIVE vehicles not on the road, each record closed again (in reverse
  // order, so that updatedAt does not follow creation): the vehicles' statuses stay as seeded.
  const maintained = [3, 4, 6, 7, 8, 9, 11, 12].map((index) => vehicleIds[index] as string);
  const records: string[] = [];
  for (const vehicleId of maintained) {
    const opened = await tenant.owner.request(
      graphql(`mutation OrdersOpenMaintenance($vehicleId: ID!) { openMaintenance(input: { vehicleId: $vehicleId, kind: SERVICE, description: "Orders" }) { maintenanceRecord { id } } }`),
      { vehicleId },
    );
    records.push(opened.openMaintenance.maintenanceRecord.id);
  }
  for (const id of [...records].reverse()) {
    await tenant.owner.request(graphql(`mutation OrdersCloseMaintenance($id: ID!) { closeMaintenance(input: { id: $id }) { maintenanceRecord { id } } }`), { id });
  }
}, 120_000);

afterAll(async () => {
  await app?.close();
});

const DIRECTIONS: OrderDirection[] = ['ASC', 'DESC'];

describe('every declared order, both directions, paged over HTTP', () => {
  const cases = [
    ...Object.entries(vehicleList.orders).map(([field, { column }]) => ({ type: 'Vehicle' as const, field, column })),
    ...Object.entries(driverList.orders).map(([field, { column }]) => ({ type: 'Driver' as const, field, column })),
    ...Object.entries(tripList.orders).map(([field, { column }]) => ({ type: 'Trip' as const, field, column })),
    ...Object.entries(maintenanceList.orders).map(([field, { column }]) => ({ type: 'MaintenanceRecord' as const, field, column })),
    ...Object.entries(stopList.orders).map(([field, { column }]) => ({ type: 'Stop' as const, field, column })),
  ].flatMap((each) => DIRECTIONS.map((direction) => ({ ...each, direction })));
  const seeded: Partial<Record<NodeType, number>> = { Vehicle: 13, Driver: 13, Trip: 13, MaintenanceRecord: 8, Stop: 26 };

  it.each(cases)('$type by $field $direction (pages of 4)', async ({ type, field, column, direction }) => {
    const read = async (after: string | undefined): Promise<Page> => {
      const variables = { first: 4, after, orderBy: { field: field as never, direction } };
      if (type === 'Vehicle') return (await tenant.owner.request(VEHICLES, variables)).vehicles;
      if (type === 'Driver') return (await tenant.owner.request(DRIVERS, variables)).drivers;
      if (type === 'MaintenanceRecord') return (await tenant.owner.request(MAINTENANCE, variables)).maintenanceRecords;
      if (type === 'Stop') return (await tenant.owner.request(STOPS, variables)).stops;
      return (await tenant.owner.request(TRIPS, variables)).trips;
    };
    const listed = await pageThrough(read);
    expect(listed).toEqual(await idsInDatabase(type, column, direction));
    expect(new Set(listed).size).toBe(seeded[type]);
  });
});

describe('cursors and filters', () => {
  it('a cursor from one order used with another answers BAD_USER_INPUT; so does a forged one', async () => {
    const byYear = (await tenant.owner.request(VEHICLES, { first: 2, orderBy: { field: 'YEAR', direction: 'DESC' } })).vehicles;
    const byCreation = (await tenant.owner.request(VEHICLES, { first: 2 })).vehicles;
    for (const [after, orderBy] of [
      [byYear.pageInfo.endCursor, { field: 'YEAR', direction: 'ASC' }],
      [byYear.pageInfo.endCursor, undefined],
      [byCreation.pageInfo.endCursor, { field: 'PLATE' }],
      [Buffer.from('cursor:YEAR DESC|{"x":1}|0190a000-0000-7000-8000-000000000000').toString('base64url'), { field: 'YEAR', direction: 'DESC' }],
      [Buffer.from('cursor:YEAR DESC|2019').toString('base64url'), { field: 'YEAR', direction: 'DESC' }],
    ] as const) {
      const { errors } = await expectErrors(tenant.owner.request(VEHICLES, { first: 2, after: after ?? undefined, orderBy: orderBy as never }));
      expect(errors.map((error) => [error.extensions.code, error.extensions.field])).toEqual([['BAD_USER_INPUT', 'after']]);
    }
    // The same order continues.
    const next = await tenant.owner.request(VEHICLES, { first: 2, after: byYear.pageInfo.endCursor ?? undefined, orderBy: { field: 'YEAR', direction: 'DESC' } });
    expect(next.vehicles.edges).toHaveLength(2);
  });

  it('a cursor whose value its column could not hold answers BAD_USER_INPUT, never a database error', async () => {
    const id = '0190a000-0000-7000-8000-000000000000';
    const forged = (order: string, value: string) => Buffer.from(`cursor:${order}|${value}|${id}`).toString('base64url');
    const refused = async (request: Promise<unknown>) => (await expectErrors(request)).errors.map((error) => [error.extensions.code, error.extensions.field]);
    // Timestamps (nullable or not), numbers and enums, each with values of the wrong shape.
    for (const value of ['"garbage"', '5', 'true', '"0000-01-01T00:00:00.000Z"', '"2026-02-30T00:00:00.000Z"', '"2026-12-05T09:00:00Z"']) {
      expect(await refused(tenant.owner.request(STOPS, { first: 2, after: forged('WINDOW_START ASC', value), orderBy: { field: 'WINDOW_START', direction: 'ASC' } }))).toEqual([['BAD_USER_INPUT', 'after']]);
      expect(await refused(tenant.owner.request(MAINTENANCE, { first: 2, after: forged('OPENED_AT DESC', value), orderBy: { field: 'OPENED_AT', direction: 'DESC' } }))).toEqual([['BAD_USER_INPUT', 'after']]);
    }
    for (const value of ['"garbage"', '"2019"', 'true', 'null', '1e999']) {
      expect(await refused(tenant.owner.request(VEHICLES, { first: 2, after: forged('YEAR ASC', value), orderBy: { field: 'YEAR', direction: 'ASC' } }))).toEqual([['BAD_USER_INPUT', 'after']]);
    }
    for (const value of ['"garbage"', '"active"', '3', 'null']) {
      expect(await refused(tenant.owner.request(TRIPS, { first: 2, after: forged('STATUS DESC', value), orderBy: { field: 'STATUS', direction: 'DESC' } }))).toEqual([['BAD_USER_INPUT', 'after']]);
    }
    // Well-formed values of the right kind still page (a request with errors would throw here).
    await tenant.owner.request(STOPS, { first: 2, after: forged('WINDOW_START ASC', 'null'), orderBy: { field: 'WINDOW_START', direction: 'ASC' } });
    expect((await tenant.owner.request(VEHICLES, { first: 2, after: forged('YEAR ASC', '2019'), orderBy: { field: 'YEAR', direction: 'ASC' } })).vehicles.edges.length).toBeGreaterThan(0);
    await tenant.owner.request(TRIPS, { first: 2, after: forged('STATUS DESC', '"PLANNED"'), orderBy: { field: 'STATUS', direction: 'DESC' } });
    expect((await tenant.owner.request(MAINTENANCE, { first: 2, after: forged('OPENED_AT DESC', '"2099-01-01T00:00:00.000Z"'), orderBy: { field: 'OPENED_AT', direction: 'DESC' } })).maintenanceRecords.edges.length).toBeGreaterThan(0);
  });

  it('several statuses at once, a single status as before, ranges on year and odometer', async () => {
    const count = async (filter: object) => (await tenant.owner.request(VEHICLES, { first: 100, filter })).vehicles.totalCount;
    const all = await count({});
    const retired = await count({ status: 'RETIRED' });
    expect(retired).toBe(3);
    expect(await count({ statuses: ['RETIRED'] })).toBe(retired);
    expect(await count({ statuses: ['RETIRED', 'ACTIVE'] })).toBe(all);
    expect(await count({ status: 'ACTIVE', statuses: ['RETIRED'] })).toBe(all);
    expect(await count({ statuses: ['MAINTENANCE'] })).toBe(0);
    expect(await count({ year: { min: 2019, max: 2019 } })).toBe(4);
    expect(await count({ year: { min: 2019 } })).toBe(8);
    expect(await count({ odometerKm: { max: 999 } })).toBe(4);
    expect(await count({ year: { min: 2020 }, odometerKm: { min: 1000, max: 2000 } })).toBe(2);
  });

  /** How many of the tenant's rows of `table` match `where` (an SQL condition over its columns): the oracle. */
  async function countInDatabase(table: NodeType, where: string, values: unknown[]): Promise<number> {
    const result = await app.server.services.platform.pool.query<{ count: number }>(
      `SELECT count(*)::int AS count FROM ${quoteIdentifier(tenant.schemaName)}."${table}" WHERE ${where}`,
      values,
    );
    return result.rows[0]?.count ?? -1;
  }

  it("stops across trips: by trip, several kinds, arrived or completed, a window range, their trips' statuses", async () => {
    const count = async (filter: object) => (await tenant.owner.request(STOPS, { first: 100, filter })).stops.totalCount;
    expect(await count({})).toBe(26);
    expect(await count({ tripId: tripIds[1] })).toBe(2);
    expect(await count({ kinds: ['PICKUP'] })).toBe(13);
    expect(await count({ kinds: ['PICKUP', 'DROP_OFF'] })).toBe(26);
    expect(await count({ completed: true })).toBe(2);
    expect(await count({ completed: false })).toBe(24);
    expect(await count({ arrived: true })).toBe(3);
    expect(await count({ arrived: true, completed: false })).toBe(1);
    expect(await count({ tripStatuses: ['DISPATCHED'] })).toBe(4);
    expect(await count({ tripStatuses: ['DISPATCHED'], completed: false, kinds: ['DROP_OFF'] })).toBe(2);
    expect(await count({ tripStatuses: ['DRAFT', 'DISPATCHED'] })).toBe(26);
    expect(await count({ tripStatuses: ['DELIVERED'] })).toBe(0);
    expect(await count({ tripId: tripIds[3], tripStatuses: ['DISPATCHED'] })).toBe(0);

    const [from, to] = ['2026-12-05T09:00:00.000Z', '2026-12-05T10:00:00.000Z'];
    const inWindow = await countInDatabase('Stop', '"windowStart" >= $1 AND "windowStart" < $2', [from, to]);
    expect(inWindow).toBeGreaterThan(0);
    expect(await count({ windowFrom: from, windowTo: to })).toBe(inWindow);
    expect(await count({ windowFrom: from })).toBe(await countInDatabase('Stop', '"windowStart" >= $1', [from]));
    expect(await count({ windowTo: from })).toBe(await countInDatabase('Stop', '"windowStart" < $1', [from]));
    // A range leaves out the stops without a window start, in its own order too.
    const byWindow = (await tenant.owner.request(STOPS, { first: 100, filter: { windowFrom: from }, orderBy: { field: 'WINDOW_START', direction: 'DESC' } })).stops;
    const expected = await app.server.services.platform.pool.query<{ id: string }>(
      `SELECT id FROM ${quoteIdentifier(tenant.schemaName)}."Stop" WHERE "windowStart" >= $1 ORDER BY "windowStart" DESC, id DESC`,
      [from],
    );
    expect(byWindow.edges.map((edge) => edge.node.id)).toEqual(expected.rows.map((row) => toGlobalId('Stop', row.id)));

    const vehicleAsTrip = await expectErrors(tenant.owner.request(STOPS, { first: 5, filter: { tripId: vehicleIds[0] } }));
    expect(vehicleAsTrip.errors.map((error) => [error.extensions.code, error.extensions.field])).toEqual([['BAD_USER_INPUT', 'filter.tripId']]);
    // An empty id is no id: refused, not read as "no filter" (which listed every stop).
    const emptyTrip = await expectErrors(tenant.owner.request(STOPS, { first: 5, filter: { tripId: '' } }));
    expect(emptyTrip.errors.map((error) => [error.extensions.code, error.extensions.field])).toEqual([['BAD_USER_INPUT', 'filter.tripId']]);
    const emptyVehicle = await expectErrors(tenant.owner.request(MAINTENANCE, { first: 5, filter: { vehicleId: '' } }));
    expect(emptyVehicle.errors.map((error) => [error.extensions.code, error.extensions.field])).toEqual([['BAD_USER_INPUT', 'filter.vehicleId']]);
    const byCompletion = (await tenant.owner.request(STOPS, { first: 2, orderBy: { field: 'COMPLETED_AT', direction: 'DESC' } })).stops;
    const otherOrder = await expectErrors(tenant.owner.request(STOPS, { first: 2, after: byCompletion.pageInfo.endCursor ?? undefined, orderBy: { field: 'WINDOW_END', direction: 'DESC' } }));
    expect(otherOrder.errors.map((error) => [error.extensions.code, error.extensions.field])).toEqual([['BAD_USER_INPUT', 'after']]);
  });

  it('maintenance records: an opened-at range, beside the vehicle and open filters', async () => {
    const count = async (filter: object) => (await tenant.owner.request(MAINTENANCE, { first: 100, filter })).maintenanceRecords.totalCount;
    const opened = await app.server.services.platform.pool.query<{ openedAt: Date }>(
      `SELECT "openedAt" FROM ${quoteIdentifier(tenant.schemaName)}."MaintenanceRecord" ORDER BY "openedAt", id`,
    );
    expect(opened.rows).toHaveLength(8);
    const [from, to] = [opened.rows[2]!.openedAt.toISOString(), opened.rows[6]!.openedAt.toISOString()];
    const between = await countInDatabase('MaintenanceRecord', '"openedAt" >= $1 AND "openedAt" < $2', [from, to]);
    expect(between).toBeGreaterThan(0);
    expect(between).toBeLessThan(8);
    expect(await count({ openedFrom: from, openedTo: to })).toBe(between);
    expect(await count({ openedFrom: from })).toBe(await countInDatabase('MaintenanceRecord', '"openedAt" >= $1', [from]));
    expect(await count({ openedTo: to })).toBe(await countInDatabase('MaintenanceRecord', '"openedAt" < $1', [to]));
    expect(await count({ openedFrom: to, openedTo: from })).toBe(0);
    expect(await count({ open: false, openedFrom: from })).toBe(await count({ openedFrom: from }));
    expect(await count({ open: true })).toBe(0);
    const vehicleId = vehicleIds[3] as string;
    expect(await count({ vehicleId })).toBe(1);
    expect(await count({ vehicleId, openedTo: opened.rows[0]!.openedAt.toISOString() })).toBe(0);
  });
});

describe('on 10,000 rows per table, no order is read by a sequential scan', () => {
  let big: TenantFixture;
  let client: pg.Client;
  /** The filter a type is always listed with, if any (a trip's notes). */
  const filters: Record<string, unknown> = {};

  beforeAll(async () => {
    big = await app.createTenant();
    const schema = quoteIdentifier(big.schemaName);
    client = new pg.Client({ connectionString: app.databaseUrl });
    await client.connect();
    await client.query(`SET search_path TO ${schema}`);
    await client.query(`INSERT INTO "Vehicle" (id, plate, make, model, year, status, "odometerKm", "updatedAt")
      SELECT gen_random_uuid(), 'BIG-' || i, 'Make', 'Model', 1990 + i % 35, (ARRAY['ACTIVE', 'MAINTENANCE', 'RETIRED'])[1 + i % 3]::"VehicleStatus", (i * 7919) % 900000, now() - i * interval '1 minute'
        FROM generate_series(1, 10000) i`);
    await client.query(`INSERT INTO "Driver" (id, name, "licenseNumber", status, "updatedAt")
      SELECT gen_random_uuid(), 'Driver ' || (i * 31) % 10000, 'LIC-' || i, (ARRAY['ACTIVE', 'INACTIVE', 'ON_LEAVE'])[1 + i % 3]::"DriverStatus", now() - i * interval '1 minute'
        FROM generate_series(1, 10000) i`);
    await client.query(`INSERT INTO "Trip" (id, reference, origin, destination, "plannedDepartureAt", status, "updatedAt")
      SELECT gen_random_uuid(), 'REF-' || i, 'A', 'B', CASE WHEN i % 10 = 0 THEN NULL ELSE now() + (i % 500) * interval '1 hour' END,
             (ARRAY['DRAFT', 'PLANNED', 'DELIVERED', 'CANCELLED'])[1 + i % 4]::"TripStatus", now() - i * interval '1 minute'
        FROM generate_series(1, 10000) i`);
    await client.query(`INSERT INTO "MaintenanceRecord" (id, "vehicleId", kind, description, "openedAt", "updatedAt")
      SELECT gen_random_uuid(), v.id, 'SERVICE', 'Service', now() - (row_number() OVER ()) * interval '1 hour', now() FROM "Vehicle" v`);
    // One stop per trip: windows from 300 hours, some open; a third arrived at, half of those completed.
    await client.query(`INSERT INTO "Stop" (id, "tripId", kind, sequence, address, "windowStart", "windowEnd", "arrivedAt", "completedAt", "updatedAt")
      SELECT gen_random_uuid(), t.id, (ARRAY['PICKUP', 'DROP_OFF'])[1 + t.n % 2]::"StopKind", 1, 'Address ' || t.n,
             CASE WHEN t.n % 7 = 0 THEN NULL ELSE now() + (t.n % 300) * interval '1 hour' END,
             CASE WHEN t.n % 5 = 0 THEN NULL ELSE now() + (t.n % 300 + 4) * interval '1 hour' END,
             CASE WHEN t.n % 3 = 0 THEN now() - t.n * interval '1 minute' END,
             CASE WHEN t.n % 6 = 0 THEN now() - t.n * interval '1 minute' END,
             now() - t.n * interval '1 minute'
        FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM "Trip") t`);
    await client.query(`INSERT INTO "AuditEvent" (id, "occurredAt", "actorKind", "actorId", action, "targetType", "targetId")
      SELECT gen_random_uuid(), now() - i * interval '1 minute', 'USER', gen_random_uuid(), 'vehicle.updated', 'Vehicle', gen_random_uuid()::text
        FROM generate_series(1, 10000) i`);
    // Notes are only listed per trip: half of them on one trip (the one the plans are read for), the rest spread over 100 others.
    await client.query(`WITH trips AS (SELECT id, row_number() OVER (ORDER BY id) AS n FROM "Trip" ORDER BY id LIMIT 101)
      INSERT INTO "TripNote" (id, "tripId", "authorKind", "authorId", body, "updatedAt")
      SELECT gen_random_uuid(), t.id, 'USER', gen_random_uuid(), 'Note ' || i, now() - i * interval '1 minute'
        FROM generate_series(1, 10000) i JOIN trips t ON t.n = CASE WHEN i % 2 = 0 THEN 1 ELSE 2 + i % 100 END`);
    filters.TripNote = { tripId: (await client.query<{ id: string }>('SELECT id FROM "Trip" ORDER BY id LIMIT 1')).rows[0]!.id };
    await client.query('ANALYZE "Vehicle"; ANALYZE "Driver"; ANALYZE "Trip"; ANALYZE "MaintenanceRecord"; ANALYZE "TripNote"; ANALYZE "AuditEvent"; ANALYZE "Stop"');
  }, 60_000);

  afterAll(async () => {
    await client?.end();
  });

  /** The plan's node types, depth first. */
  function nodeTypes(plan: { 'Node Type': string; Plans?: unknown[] }): string[] {
    return [plan['Node Type'], ...((plan.Plans ?? []) as (typeof plan)[]).flatMap(nodeTypes)];
  }

  async function planOf(list: RecordList<{ id: string }, unknown, string>, type: string, field: string, direction: OrderDirection, after?: string): Promise<string[]> {
    const { query } = pageQueryOf(list, { first: 20, after, orderBy: { field, direction }, filter: filters[type] });
    const statement = list.table.pageStatement(query);
    const result = await client.query<{ 'QUERY PLAN': [{ Plan: { 'Node Type': string } }] }>(`EXPLAIN (FORMAT JSON) ${statement.text}`, statement.values);
    return nodeTypes(result.rows[0]!['QUERY PLAN'][0].Plan);
  }

  const lists = { Vehicle: vehicleList, Driver: driverList, Trip: tripList, MaintenanceRecord: maintenanceList, AuditEvent: auditList, TripNote: tripNoteList, Stop: stopList } as unknown as Record<string, RecordList<{ id: string }, unknown, string>>;
  const cases = Object.entries(lists).flatMap(([type, list]) => Object.keys(list.orders).flatMap((field) => DIRECTIONS.map((direction) => ({ type, field, direction }))));

  it.each(cases)('$type by $field $direction: first page and a page from the middle', async ({ type, field, direction }) => {
    const list = lists[type]!;
    // A middle row's cursor, as the API would hand it out.
    const { query } = pageQueryOf(list, { first: 100, orderBy: { field, direction }, filter: filters[type] });
    const middle = await client.query<Record<string, unknown>>(list.table.pageStatement({ ...query, limit: 5000 }).text, list.table.pageStatement({ ...query, limit: 5000 }).values);
    const row = middle.rows.at(-1)!;
    const column = list.orders[field]!.column;
    const value = row[column] instanceof Date ? (row[column] as Date).toISOString() : row[column];
    const order = field === 'CREATED_AT' && direction === 'ASC' ? '' : `${field} ${direction}`;
    const after = Buffer.from(order === '' ? `cursor:${row.id as string}` : `cursor:${order}|${JSON.stringify(value ?? null)}|${row.id as string}`).toString('base64url');
    for (const plan of [await planOf(list, type, field, direction), await planOf(list, type, field, direction, after)]) {
      expect({ type, field, direction, plan }).toEqual({ type, field, direction, plan: expect.not.arrayContaining(['Seq Scan']) as unknown });
    }
  });
});
