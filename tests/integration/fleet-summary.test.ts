import { quoteIdentifier } from '../../src/tenancy/tenant-naming';
import { graphql } from '../generated';
import { tenantSqlStatements } from '../support/raw-graphql';
import { startTestServer, type TenantFixture, type TestServer, NO_BACKGROUND_JOBS } from '../support/test-server';

/*
 * fleetSummary, a dispatcher's first look: the figures against the tenant's own rows, "today"
 * in the tenant's time zone, and one SQL statement whatever the fleet's size.
 */

let app: TestServer;
let tenant: TenantFixture;

const SUMMARY = graphql(`query SummaryOfFleet {
  fleetSummary { vehiclesByStatus { status count } tripsTodayByStatus { status count } lateTrips driversOnDuty day timeZone }
}`);
const CREATE_VEHICLE = graphql(`mutation SummaryCreateVehicle($input: CreateVehicleInput!) { createVehicle(input: $input) { vehicle { id } } }`);
const CREATE_DRIVER = graphql(`mutation SummaryCreateDriver($input: CreateDriverInput!) { createDriver(input: $input) { driver { id } } }`);
const CREATE_TRIP = graphql(`mutation SummaryCreateTrip($input: CreateTripInput!) { createTrip(input: $input) { trip { id } } }`);
const SETTINGS = graphql(`mutation SummarySettings($input: UpdateFleetSettingsInput!) { updateFleetSettings(input: $input) { settings { timeZone lateToleranceMinutes } } }`);
const TRANSITION = graphql(`mutation SummaryTransition($input: TransitionTripInput!) { transitionTrip(input: $input) { trip { status } } }`);

let counter = 0;
async function vehicleAndDriver(status: 'ACTIVE' | 'MAINTENANCE' | 'RETIRED' = 'ACTIVE'): Promise<{ vehicleId: string; driverId: string }> {
  counter += 1;
  const vehicle = await tenant.owner.request(CREATE_VEHICLE, { input: { plate: `SUM-${counter}`, make: 'DAF', model: 'XF', year: 2021, status } });
  const driver = await tenant.owner.request(CREATE_DRIVER, { input: { name: `Summary ${counter}`, licenseNumber: `SUM-LIC-${counter}` } });
  return { vehicleId: vehicle.createVehicle.vehicle.id, driverId: driver.createDriver.driver.id };
}

async function trip(options: { departure?: Date; arrival?: Date; through?: ('PLANNED' | 'DISPATCHED' | 'IN_TRANSIT' | 'DELIVERED')[] }): Promise<void> {
  const { vehicleId, driverId } = await vehicleAndDriver();
  const created = await tenant.owner.request(CREATE_TRIP, {
    input: {
      reference: `SUM-TRIP-${counter}`,
      origin: 'A',
      destination: 'B',
      vehicleId,
      driverId,
      plannedDepartureAt: options.departure?.toISOString(),
      plannedArrivalAt: options.arrival?.toISOString(),
    },
  });
  for (const to of options.through ?? []) await tenant.owner.request(TRANSITION, { input: { id: created.createTrip.trip.id, to } });
}

const statements = () => tenantSqlStatements(app.url);

beforeAll(async () => {
  app = await startTestServer({ env: NO_BACKGROUND_JOBS });
  tenant = await app.createTenant(undefined, 'ENTERPRISE');
}, 60_000);

afterAll(async () => {
  await app?.close();
});

const hours = (n: number) => new Date(Date.now() + n * 3_600_000);

describe('fleetSummary', () => {
  it("counts the tenant's vehicles, today's trips, late trips and drivers on duty, in one statement however many rows", async () => {
    // No tolerance: a trip is late the moment it is past its window.
    await tenant.owner.request(SETTINGS, { input: { lateToleranceMinutes: 0 } });
    const empty = await tenant.owner.request(SUMMARY);
    expect(empty.fleetSummary).toMatchObject({ lateTrips: 0, driversOnDuty: 0, timeZone: 'UTC', day: new Date().toISOString().slice(0, 10) });
    expect(empty.fleetSummary.vehiclesByStatus).toEqual([
      { status: 'ACTIVE', count: 0 },
      { status: 'MAINTENANCE', count: 0 },
      { status: 'RETIRED', count: 0 },
    ]);
    const before = await statements();
    await tenant.owner.request(SUMMARY);
    const statementsEmpty = (await statements()) - before;

    await vehicleAndDriver('MAINTENANCE');
    await vehicleAndDriver('RETIRED');
    // Departing within the day whatever the hour: a minute from now is today until 23:59.
    const soon = new Date(Math.min(Date.now() + 60_000, new Date(new Date().toISOString().slice(0, 10) + 'T23:59:00Z').getTime()));
    await trip({ departure: soon, through: ['PLANNED'] }); // today, PLANNED, not late
    await trip({ departure: hours(-1000), through: ['PLANNED'] }); // late: not on the road after departure
    // Departed earlier today, due a second later: on the road, late arriving.
    const earlierToday = new Date(Math.max(Date.parse(`${new Date().toISOString().slice(0, 10)}T00:00:00Z`), Date.now() - 120_000));
    await trip({ departure: earlierToday, arrival: new Date(earlierToday.getTime() + 1_000), through: ['PLANNED', 'DISPATCHED'] });
    await trip({ departure: hours(-1000), arrival: hours(-999), through: ['PLANNED', 'DISPATCHED', 'IN_TRANSIT', 'DELIVERED'] }); // delivered: never late
    await trip({ through: ['PLANNED', 'DISPATCHED', 'IN_TRANSIT'] }); // on duty, no window

    const beforeFull = await statements();
    const full = await tenant.owner.request(SUMMARY);
    const statementsFull = (await statements()) - beforeFull;
    expect({ statementsEmpty, statementsFull }).toEqual({ statementsEmpty: 1, statementsFull: 1 });

    // The oracle: the tenant's rows, read straight from its schema.
    const schema = quoteIdentifier(tenant.schemaName);
    const vehicles = await app.server.services.platform.pool.query<{ status: string; n: number }>(`SELECT status::text, count(*)::int AS n FROM ${schema}."Vehicle" GROUP BY status`);
    const expectedVehicles = Object.fromEntries(vehicles.rows.map((row) => [row.status, row.n]));
    expect(Object.fromEntries(full.fleetSummary.vehiclesByStatus.map((entry) => [entry.status, entry.count]))).toEqual({ MAINTENANCE: 0, RETIRED: 0, ...expectedVehicles });
    expect(full.fleetSummary.vehiclesByStatus.reduce((sum, entry) => sum + entry.count, 0)).toBe(7);
    const today = Object.fromEntries(full.fleetSummary.tripsTodayByStatus.map((entry) => [entry.status, entry.count]));
    expect(today).toMatchObject({ PLANNED: 1, DISPATCHED: 1, DRAFT: 0, DELIVERED: 0 });
    // Within the last minute of the UTC day, "soon" is already past: that PLANNED trip is late too.
    const nearMidnight = soon.getTime() <= Date.now();
    expect(full.fleetSummary.lateTrips).toBe(nearMidnight ? 3 : 2);
    expect(full.fleetSummary.driversOnDuty).toBe(2);

    // With the settings' tolerance, the trip a couple of minutes late arriving is not late yet.
    await tenant.owner.request(SETTINGS, { input: { lateToleranceMinutes: 15 } });
    expect((await tenant.owner.request(SUMMARY)).fleetSummary.lateTrips).toBe(nearMidnight ? 2 : 1);
  });

  it("counts the day in the tenant's time zone", async () => {
    await tenant.owner.request(SETTINGS, { input: { timeZone: 'Pacific/Kiritimati' } });
    const summary = await tenant.owner.request(SUMMARY);
    const expected = new Intl.DateTimeFormat('en-CA', { timeZone: 'Pacific/Kiritimati', year: 'numeric', month: '2-digit', day: '2-digit' }).format(new Date());
    expect(summary.fleetSummary).toMatchObject({ timeZone: 'Pacific/Kiritimati', day: expected });
    await tenant.owner.request(SETTINGS, { input: { timeZone: 'UTC' } });
  });
});
