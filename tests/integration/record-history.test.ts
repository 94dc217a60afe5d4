import { graphql } from '../generated';
import type { GraphQLClient } from '../support/graphql-request';
import { expectErrors, startTestServer, type TenantFixture, type TestServer } from '../support/test-server';

/*
 * What every record type shares, over HTTP: soft delete (hidden from lists, lookups and node;
 * listed with includeDeleted by ADMIN+; restored unless its unique value was taken), optimistic
 * concurrency (expectedVersion), and version history (who, when, which fields from what to what).
 */

let app: TestServer;
let tenant: TenantFixture;
let manager: GraphQLClient;
let managerId: string;
let ownerId: string;

const CREATE_VEHICLE = graphql(`mutation HistoryCreateVehicle($input: CreateVehicleInput!) { createVehicle(input: $input) { vehicle { id version } } }`);
const CREATE_DRIVER = graphql(`mutation HistoryCreateDriver($input: CreateDriverInput!) { createDriver(input: $input) { driver { id version } } }`);
const UPDATE_VEHICLE = graphql(`mutation HistoryUpdateVehicle($id: ID!, $input: UpdateVehicleInput!) { updateVehicle(id: $id, input: $input) { vehicle { id version make } } }`);
const UPDATE_DRIVER = graphql(`mutation HistoryUpdateDriver($id: ID!, $input: UpdateDriverInput!) { updateDriver(id: $id, input: $input) { driver { id version name } } }`);
const ASSIGN = graphql(`mutation HistoryAssign($vehicleId: ID!, $driverId: ID) { assignDriver(vehicleId: $vehicleId, driverId: $driverId) { vehicle { id } } }`);
const DELETE_VEHICLE = graphql(`mutation HistoryDeleteVehicle($id: ID!) { deleteVehicle(id: $id) { deletedId } }`);
const RESTORE_VEHICLE = graphql(`mutation HistoryRestoreVehicle($id: ID!) { restoreVehicle(id: $id) { vehicle { id version deletedAt plate } } }`);
const DELETE_DRIVER = graphql(`mutation HistoryDeleteDriver($id: ID!) { deleteDriver(id: $id) { deletedId } }`);
const RESTORE_DRIVER = graphql(`mutation HistoryRestoreDriver($id: ID!) { restoreDriver(id: $id) { driver { id deletedAt } } }`);
const CREATE_TRIP = graphql(`mutation HistoryCreateTrip($input: CreateTripInput!) { createTrip(input: $input) { trip { id } } }`);
const DELETE_TRIP = graphql(`mutation HistoryDeleteTrip($id: ID!) { deleteTrip(id: $id) { deletedId } }`);
const RESTORE_TRIP = graphql(`mutation HistoryRestoreTrip($id: ID!) { restoreTrip(id: $id) { trip { id deletedAt } } }`);
const VEHICLES = graphql(`query HistoryVehicles($includeDeleted: Boolean, $search: String) {
  vehicles(first: 100, includeDeleted: $includeDeleted, filter: { search: $search }) { totalCount edges { node { id deletedAt } } }
}`);
const TRIPS = graphql(`query HistoryTrips($includeDeleted: Boolean) { trips(first: 100, includeDeleted: $includeDeleted) { totalCount edges { node { id } } } }`);
const LOOKUPS = graphql(`query HistoryLookups($id: ID!) { vehicle(id: $id) { id } node(id: $id) { id } }`);
const VEHICLE_HISTORY = graphql(`query HistoryOfVehicle($id: ID!, $first: Int, $after: String) {
  vehicle(id: $id) { id history(first: $first, after: $after) { pageInfo { hasNextPage endCursor } edges { node { version action actorKind actorId at changes { field from to } } } } }
}`);

/** A live vehicle's history. */
async function historyOf(id: string, first = 20, after?: string) {
  const result = await tenant.owner.request(VEHICLE_HISTORY, { id, first, after });
  if (!result.vehicle) throw new Error('vehicle not found');
  return result.vehicle.history;
}

beforeAll(async () => {
  app = await startTestServer();
  tenant = await app.createTenant(undefined, 'ENTERPRISE');
  ownerId = (await tenant.owner.request(graphql(`query HistoryMe { me { id } }`))).me.id;
  const added = await tenant.owner.request(graphql(`mutation HistoryAddManager($input: AddMemberInput!) { addMember(input: $input) { member { id } } }`), {
    input: { email: 'manager@history.test', name: 'Manager', password: 'history-password-1', role: 'MANAGER' },
  });
  managerId = added.addMember.member.id;
  manager = app.bearer(await app.login(tenant.slug, 'manager@history.test', 'history-password-1'));
}, 60_000);

afterAll(async () => {
  await app?.close();
});

describe('soft delete and restore', () => {
  it('hides a deleted vehicle from lists, lookups and node; ADMIN+ list it with includeDeleted, MANAGERs may not', async () => {
    const { createVehicle } = await manager.request(CREATE_VEHICLE, { input: { plate: 'SOFT-1', make: 'Volvo', model: 'FH', year: 2020 } });
    const before = await tenant.owner.request(VEHICLES, {});
    await tenant.owner.request(DELETE_VEHICLE, { id: createVehicle.vehicle.id });
    const after = await tenant.owner.request(VEHICLES, {});
    expect(after.vehicles.totalCount).toBe(before.vehicles.totalCount - 1);
    expect(after.vehicles.edges.map((edge) => edge.node.id)).not.toContain(createVehicle.vehicle.id);
    expect(await tenant.owner.request(LOOKUPS, { id: createVehicle.vehicle.id })).toEqual({ vehicle: null, node: null });
    const withDeleted = await tenant.owner.request(VEHICLES, { includeDeleted: true });
    expect(withDeleted.vehicles.edges.find((edge) => edge.node.id === createVehicle.vehicle.id)?.node.deletedAt).toEqual(expect.any(String));
    const { errors } = await expectErrors(manager.request(VEHICLES, { includeDeleted: true }));
    expect(errors.map((error) => error.extensions.code)).toEqual(['FORBIDDEN']);
    // Deleting again: it is not there to delete.
    const again = await expectErrors(tenant.owner.request(DELETE_VEHICLE, { id: createVehicle.vehicle.id }));
    expect(again.errors.map((error) => error.extensions.code)).toEqual(['NOT_FOUND']);
    const restored = await tenant.owner.request(RESTORE_VEHICLE, { id: createVehicle.vehicle.id });
    expect(restored.restoreVehicle.vehicle).toMatchObject({ deletedAt: null, plate: 'SOFT-1', version: 3 });
    expect((await tenant.owner.request(LOOKUPS, { id: createVehicle.vehicle.id })).vehicle?.id).toBe(createVehicle.vehicle.id);
  });

  it("a deleted vehicle's plate can be reused; restoring it then is a CONFLICT on plate, and changes nothing", async () => {
    const first = await manager.request(CREATE_VEHICLE, { input: { plate: 'REUSED-1', make: 'DAF', model: 'XF', year: 2020 } });
    await tenant.owner.request(DELETE_VEHICLE, { id: first.createVehicle.vehicle.id });
    const second = await manager.request(CREATE_VEHICLE, { input: { plate: 'reused-1', make: 'DAF', model: 'XG', year: 2022 } });
    expect(second.createVehicle.vehicle.id).not.toBe(first.createVehicle.vehicle.id);
    const refused = await expectErrors(tenant.owner.request(RESTORE_VEHICLE, { id: first.createVehicle.vehicle.id }));
    expect(refused.errors.map((error) => [error.extensions.code, error.extensions.field])).toEqual([['CONFLICT', 'plate']]);
    expect((await tenant.owner.request(VEHICLES, { search: 'REUSED-1' })).vehicles.edges.map((edge) => edge.node.id)).toEqual([second.createVehicle.vehicle.id]);
    const live = await expectErrors(tenant.owner.request(RESTORE_VEHICLE, { id: second.createVehicle.vehicle.id }));
    expect(live.errors.map((error) => error.extensions.code)).toEqual(['NOT_FOUND']);
  });

  it('a deleted driver leaves their vehicle (recorded in its history); drivers and trips restore too', async () => {
    const vehicle = await manager.request(CREATE_VEHICLE, { input: { plate: 'SOFT-2', make: 'MAN', model: 'TGX', year: 2021 } });
    const driver = await manager.request(CREATE_DRIVER, { input: { name: 'Leaving', licenseNumber: 'SOFT-LIC-2' } });
    await manager.request(ASSIGN, { vehicleId: vehicle.createVehicle.vehicle.id, driverId: driver.createDriver.driver.id });
    await tenant.owner.request(DELETE_DRIVER, { id: driver.createDriver.driver.id });
    const history = await historyOf(vehicle.createVehicle.vehicle.id);
    expect(history.edges[0]?.node).toMatchObject({ action: 'UPDATED', actorId: ownerId, changes: [{ field: 'driverId', to: null }] });
    expect((await tenant.owner.request(RESTORE_DRIVER, { id: driver.createDriver.driver.id })).restoreDriver.driver.deletedAt).toBeNull();

    const trip = await manager.request(CREATE_TRIP, { input: { reference: 'SOFT-TRIP', origin: 'A', destination: 'B' } });
    await tenant.owner.request(DELETE_TRIP, { id: trip.createTrip.trip.id });
    expect((await tenant.owner.request(TRIPS, {})).trips.edges.map((edge) => edge.node.id)).not.toContain(trip.createTrip.trip.id);
    expect((await tenant.owner.request(TRIPS, { includeDeleted: true })).trips.edges.map((edge) => edge.node.id)).toContain(trip.createTrip.trip.id);
    expect((await tenant.owner.request(RESTORE_TRIP, { id: trip.createTrip.trip.id })).restoreTrip.trip.deletedAt).toBeNull();
  });
});

describe('optimistic concurrency', () => {
  it('a stale expectedVersion answers CONFLICT with the current version and changes nothing', async () => {
    const { createVehicle } = await manager.request(CREATE_VEHICLE, { input: { plate: 'VER-1', make: 'Iveco', model: 'S-Way', year: 2023 } });
    expect(createVehicle.vehicle.version).toBe(1);
    const changed = await manager.request(UPDATE_VEHICLE, { id: createVehicle.vehicle.id, input: { make: 'Iveco Trucks', expectedVersion: 1 } });
    expect(changed.updateVehicle.vehicle).toMatchObject({ version: 2, make: 'Iveco Trucks' });
    const stale = await expectErrors(manager.request(UPDATE_VEHICLE, { id: createVehicle.vehicle.id, input: { make: 'Lost update', expectedVersion: 1 } }));
    expect(stale.errors.map((error) => [error.extensions.code, error.extensions.field, error.extensions.currentVersion])).toEqual([['CONFLICT', 'expectedVersion', 2]]);
    const history = await historyOf(createVehicle.vehicle.id);
    expect(history.edges.map((edge) => edge.node.version)).toEqual([2, 1]);

    const { createDriver } = await manager.request(CREATE_DRIVER, { input: { name: 'Versioned', licenseNumber: 'VER-LIC-1' } });
    await manager.request(UPDATE_DRIVER, { id: createDriver.driver.id, input: { name: 'Versioned Two' } });
    const staleDriver = await expectErrors(manager.request(UPDATE_DRIVER, { id: createDriver.driver.id, input: { name: 'Lost', expectedVersion: 1 } }));
    expect(staleDriver.errors.map((error) => error.extensions.code)).toEqual(['CONFLICT']);
  });
});

describe('version history', () => {
  it('keeps who, when and which fields changed from what to what, newest first, paged', async () => {
    const { createVehicle } = await manager.request(CREATE_VEHICLE, { input: { plate: 'HIST-1', make: 'Scania', model: 'R', year: 2019, odometerKm: 100 } });
    const id = createVehicle.vehicle.id;
    await manager.request(UPDATE_VEHICLE, { id, input: { odometerKm: 250, model: 'R500' } });
    await tenant.owner.request(DELETE_VEHICLE, { id });
    await tenant.owner.request(RESTORE_VEHICLE, { id });
    const history = await historyOf(id);
    const nodes = history.edges.map((edge) => edge.node);
    expect(nodes.map(({ version, action, actorKind, actorId }) => ({ version, action, actorKind, actorId }))).toEqual([
      { version: 4, action: 'RESTORED', actorKind: 'USER', actorId: ownerId },
      { version: 3, action: 'DELETED', actorKind: 'USER', actorId: ownerId },
      { version: 2, action: 'UPDATED', actorKind: 'USER', actorId: managerId },
      { version: 1, action: 'CREATED', actorKind: 'USER', actorId: managerId },
    ]);
    expect(nodes[2]?.changes).toEqual(expect.arrayContaining([{ field: 'model', from: 'R', to: 'R500' }, { field: 'odometerKm', from: '100', to: '250' }]));
    expect(nodes[2]?.changes).toHaveLength(2);
    expect(nodes[3]?.changes).toEqual(expect.arrayContaining([{ field: 'plate', from: null, to: 'HIST-1' }, { field: 'year', from: null, to: '2019' }]));
    expect(nodes[1]?.changes.map((change) => change.field)).toEqual(['deletedAt']);
    const times = nodes.map((node) => Date.parse(node.at));
    expect(times).toEqual([...times].sort((a, b) => b - a));
    // Paged: two and two, the same entries.
    const firstPage = await historyOf(id, 2);
    const secondPage = await historyOf(id, 2, firstPage.pageInfo.endCursor ?? undefined);
    expect([...firstPage.edges, ...secondPage.edges].map((edge) => edge.node.version)).toEqual([4, 3, 2, 1]);
    expect(secondPage.pageInfo.hasNextPage).toBe(false);
  });
});
