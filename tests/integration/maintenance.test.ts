import { graphql } from '../generated';
import { tenantSqlStatements } from '../support/raw-graphql';
import { expectErrors, startTestServer, type TenantFixture, type TestServer, NO_BACKGROUND_JOBS } from '../support/test-server';

/*
 * Maintenance over HTTP: an open record puts its vehicle in MAINTENANCE (which cannot be
 * dispatched), closing the last open one puts it back to ACTIVE, each a change in the
 * vehicle's history; records list with filters, and a page of vehicles reads its records in
 * one statement.
 */

let app: TestServer;
let tenant: TenantFixture;

const CREATE_VEHICLE = graphql(`mutation MaintCreateVehicle($input: CreateVehicleInput!) { createVehicle(input: $input) { vehicle { id } } }`);
const CREATE_DRIVER = graphql(`mutation MaintCreateDriver($input: CreateDriverInput!) { createDriver(input: $input) { driver { id } } }`);
const OPEN = graphql(`mutation MaintOpen($input: OpenMaintenanceInput!) { openMaintenance(input: $input) { maintenanceRecord { id kind closedAt vehicle { id status } } } }`);
const CLOSE = graphql(`mutation MaintClose($input: CloseMaintenanceInput!) { closeMaintenance(input: $input) { maintenanceRecord { id closedAt costMinorUnits currency vehicle { id status } } } }`);
const VEHICLE = graphql(`query MaintVehicle($id: ID!) { vehicle(id: $id) { status history(first: 10) { edges { node { action changes { field from to } } } } maintenance(first: 5) { id closedAt } } }`);
const RECORDS = graphql(`query MaintRecords($filter: MaintenanceFilter) { maintenanceRecords(first: 100, filter: $filter) { totalCount edges { node { id } } } }`);

let counter = 0;
async function vehicle(status: 'ACTIVE' | 'RETIRED' = 'ACTIVE'): Promise<string> {
  counter += 1;
  return (await tenant.owner.request(CREATE_VEHICLE, { input: { plate: `MNT-${counter}`, make: 'Volvo', model: 'FM', year: 2020, status } })).createVehicle.vehicle.id;
}

beforeAll(async () => {
  app = await startTestServer({ env: NO_BACKGROUND_JOBS });
  tenant = await app.createTenant(undefined, 'ENTERPRISE');
}, 60_000);

afterAll(async () => {
  await app?.close();
});

describe('maintenance', () => {
  it('open records hold the vehicle in MAINTENANCE, which cannot be dispatched; closing the last puts it back', async () => {
    const vehicleId = await vehicle();
    const first = await tenant.owner.request(OPEN, { input: { vehicleId, kind: 'SERVICE', description: 'Yearly service', odometerKm: 120_000 } });
    expect(first.openMaintenance.maintenanceRecord).toMatchObject({ kind: 'SERVICE', closedAt: null, vehicle: { id: vehicleId, status: 'MAINTENANCE' } });
    const second = await tenant.owner.request(OPEN, { input: { vehicleId, kind: 'TIRES', description: 'Winter tyres', costMinorUnits: 80_000, currency: 'eur' } });

    // In MAINTENANCE: a trip with it cannot be dispatched.
    const driverId = (await tenant.owner.request(CREATE_DRIVER, { input: { name: 'Maint Driver', licenseNumber: `MNT-LIC-${counter}` } })).createDriver.driver.id;
    const trip = await tenant.owner.request(graphql(`mutation MaintTrip($input: CreateTripInput!) { createTrip(input: $input) { trip { id } } }`), {
      input: { reference: `MNT-TRIP-${counter}`, origin: 'A', destination: 'B', vehicleId, driverId },
    });
    const move = graphql(`mutation MaintMove($input: TransitionTripInput!) { transitionTrip(input: $input) { trip { status } } }`);
    await tenant.owner.request(move, { input: { id: trip.createTrip.trip.id, to: 'PLANNED' } });
    const refused = await expectErrors(tenant.owner.request(move, { input: { id: trip.createTrip.trip.id, to: 'DISPATCHED' } }));
    expect(refused.errors.map((error) => error.extensions.code)).toEqual(['VEHICLE_UNAVAILABLE']);

    const closedOne = await tenant.owner.request(CLOSE, { input: { id: first.openMaintenance.maintenanceRecord.id, costMinorUnits: 45_000, currency: 'EUR' } });
    expect(closedOne.closeMaintenance.maintenanceRecord).toMatchObject({ costMinorUnits: 45_000, currency: 'EUR', vehicle: { status: 'MAINTENANCE' } });
    expect(closedOne.closeMaintenance.maintenanceRecord.closedAt).toEqual(expect.any(String));
    const closedLast = await tenant.owner.request(CLOSE, { input: { id: second.openMaintenance.maintenanceRecord.id } });
    expect(closedLast.closeMaintenance.maintenanceRecord.vehicle.status).toBe('ACTIVE');
    expect((await tenant.owner.request(move, { input: { id: trip.createTrip.trip.id, to: 'DISPATCHED' } })).transitionTrip.trip.status).toBe('DISPATCHED');

    const again = await expectErrors(tenant.owner.request(CLOSE, { input: { id: second.openMaintenance.maintenanceRecord.id } }));
    expect(again.errors.map((error) => error.extensions.code)).toEqual(['CONFLICT']);
    // The vehicle's status changes are in its history, with the rest of its life.
    const read = await tenant.owner.request(VEHICLE, { id: vehicleId });
    const statusChanges = read.vehicle?.history.edges.flatMap((edge) => edge.node.changes.filter((change) => change.field === 'status'));
    expect(statusChanges).toEqual([
      { field: 'status', from: 'MAINTENANCE', to: 'ACTIVE' },
      { field: 'status', from: 'ACTIVE', to: 'MAINTENANCE' },
      { field: 'status', from: null, to: 'ACTIVE' },
    ]);
    expect(read.vehicle?.maintenance.map((record) => record.id)).toEqual([second.openMaintenance.maintenanceRecord.id, first.openMaintenance.maintenanceRecord.id]);
  });

  it('refuses a RETIRED vehicle, a vehicle on the road, a cost without currency, and an unknown record', async () => {
    const retired = await vehicle('RETIRED');
    const codes = async (request: Promise<unknown>) => (await expectErrors(request)).errors.map((error) => [error.extensions.code, error.extensions.field]);
    expect(await codes(tenant.owner.request(OPEN, { input: { vehicleId: retired, kind: 'REPAIR', description: 'x' } }))).toEqual([['CONFLICT', 'vehicleId']]);
    const active = await vehicle();
    expect(await codes(tenant.owner.request(OPEN, { input: { vehicleId: active, kind: 'REPAIR', description: 'x', costMinorUnits: 5 } }))).toEqual([['BAD_USER_INPUT', 'currency']]);
    expect(await codes(tenant.owner.request(OPEN, { input: { vehicleId: active, kind: 'REPAIR', description: 'x', costMinorUnits: 5, currency: 'EURO' } }))).toEqual([['BAD_USER_INPUT', 'currency']]);
    const unknownRecord = Buffer.from('MaintenanceRecord:01900000-0000-7000-8000-000000000000').toString('base64url');
    expect((await codes(tenant.owner.request(CLOSE, { input: { id: unknownRecord } }))).map(([code]) => code)).toEqual(['NOT_FOUND']);
    expect((await tenant.owner.request(VEHICLE, { id: active })).vehicle?.status).toBe('ACTIVE');
  });

  it('lists records with filters, and a page of vehicles reads their records in one statement', async () => {
    const all = await tenant.owner.request(RECORDS, {});
    const open = await tenant.owner.request(RECORDS, { filter: { open: true } });
    const closed = await tenant.owner.request(RECORDS, { filter: { open: false } });
    expect(open.maintenanceRecords.totalCount + closed.maintenanceRecords.totalCount).toBe(all.maintenanceRecords.totalCount);
    expect((await tenant.owner.request(RECORDS, { filter: { kind: 'TIRES' } })).maintenanceRecords.totalCount).toBe(1);

    const statements = () => tenantSqlStatements(app.url);
    const page = graphql(`query MaintPage($first: Int!) { vehicles(first: $first) { edges { node { id maintenance(first: 3) { id kind } } } } }`);
    const measure = async (first: number) => {
      const before = await statements();
      await tenant.owner.request(page, { first });
      return (await statements()) - before;
    };
    expect(await measure(1)).toBe(2);
    expect(await measure(5)).toBe(2);
  });
});
