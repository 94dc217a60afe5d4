import { parseGlobalId } from '../../src/graphql/global-id';
import { quoteIdentifier } from '../../src/tenancy/tenant-naming';
import type { GraphQLClient } from '../support/graphql-request';
import { withRowLocked, type HeldLock } from '../support/row-lock';
import { errorCode, expectErrors, startTestServer, type TenantFixture, type TestServer, NO_BACKGROUND_JOBS } from '../support/test-server';
import { graphql } from '../generated';
import { tenantSqlStatements } from '../support/raw-graphql';
import type {
  CreateDriverInput,
  CreateVehicleInput,
  FleetDriverFieldsFragment,
  FleetDriversQueryVariables,
  FleetDriversWithVehiclesQuery,
  FleetNestedQuery,
  FleetVehicleFieldsFragment,
  FleetVehiclesQuery,
  FleetVehiclesQueryVariables,
  FleetVehiclesWithAliasedDriversQuery,
  FleetVehiclesWithDriversQuery,
} from '../generated/graphql';

/*
 * Fleet data over real HTTP against a real server and database: vehicles and drivers, their
 * validation and uniqueness rules, driver assignment, node(id:), Relay connections, and the
 * proof that nested fields are batched (a constant number of SQL statements per page).
 */

let app: TestServer;
let tenant: TenantFixture;
let owner: GraphQLClient;

beforeAll(async () => {
  app = await startTestServer({ env: NO_BACKGROUND_JOBS });
  // ENTERPRISE: the most generous request budget; this file sends several hundred requests.
  tenant = await app.createTenant(undefined, 'ENTERPRISE');
  owner = tenant.owner;
});

afterAll(async () => {
  await app.close();
});

// Spread by the documents below: the generated documents carry them along.
graphql(`fragment FleetVehicleFields on Vehicle { id plate make model year status odometerKm createdAt updatedAt driver { id name } }`);
graphql(`fragment FleetDriverFields on Driver { id name licenseNumber phone email status createdAt updatedAt vehicle { id plate } }`);

type Vehicle = FleetVehicleFieldsFragment;
type Driver = FleetDriverFieldsFragment;
/** What the bulk helpers select (their documents are built in a loop, so they are not generated). */
type BulkVehicle = Pick<Vehicle, 'id' | 'plate'>;
type BulkDriver = Pick<Driver, 'id' | 'name'>;
type VehicleInput = CreateVehicleInput;
type DriverInput = CreateDriverInput;

let counter = 0;
/** A plate / licence number no other test in this file uses. */
const unique = (prefix: string) => `${prefix}${(counter += 1).toString().padStart(4, '0')}`;

const vehicleInput = (overrides: Partial<VehicleInput> = {}): VehicleInput => ({
  plate: unique('P'),
  make: 'Volvo',
  model: 'FH16',
  year: 2020,
  ...overrides,
});

const driverInput = (overrides: Partial<DriverInput> = {}): DriverInput => ({
  name: 'Dana Driver',
  licenseNumber: unique('LIC'),
  ...overrides,
});

const CREATE_VEHICLE = graphql(`mutation FleetCreateVehicle($input: CreateVehicleInput!) { createVehicle(input: $input) { vehicle { ...FleetVehicleFields } } }`);
const UPDATE_VEHICLE = graphql(`mutation FleetUpdateVehicle($id: ID!, $input: UpdateVehicleInput!) { updateVehicle(id: $id, input: $input) { vehicle { ...FleetVehicleFields } } }`);
const DELETE_VEHICLE = graphql(`mutation FleetDeleteVehicle($id: ID!) { deleteVehicle(id: $id) { deletedId } }`);
const GET_VEHICLE = graphql(`query FleetGetVehicle($id: ID!) { vehicle(id: $id) { ...FleetVehicleFields } }`);
const CREATE_DRIVER = graphql(`mutation FleetCreateDriver($input: CreateDriverInput!) { createDriver(input: $input) { driver { ...FleetDriverFields } } }`);
const UPDATE_DRIVER = graphql(`mutation FleetUpdateDriver($id: ID!, $input: UpdateDriverInput!) { updateDriver(id: $id, input: $input) { driver { ...FleetDriverFields } } }`);
const DELETE_DRIVER = graphql(`mutation FleetDeleteDriver($id: ID!) { deleteDriver(id: $id) { deletedId } }`);
const GET_DRIVER = graphql(`query FleetGetDriver($id: ID!) { driver(id: $id) { ...FleetDriverFields } }`);
const ASSIGN = graphql(`mutation FleetAssign($vehicleId: ID!, $driverId: ID) { assignDriver(vehicleId: $vehicleId, driverId: $driverId) { vehicle { ...FleetVehicleFields } } }`);

const SEARCH_VEHICLES = graphql(`query FleetSearchVehicles($search: String) { vehicles(first: 100, filter: { search: $search }) { totalCount edges { node { id plate } } } }`);
const SEARCH_DRIVERS = graphql(`query FleetSearchDrivers($search: String) { drivers(first: 100, filter: { search: $search }) { totalCount edges { node { id licenseNumber } } } }`);

async function createVehicle(client: GraphQLClient, input: VehicleInput = vehicleInput()): Promise<Vehicle> {
  return (await client.request(CREATE_VEHICLE, { input })).createVehicle.vehicle;
}

async function createDriver(client: GraphQLClient, input: DriverInput = driverInput()): Promise<Driver> {
  return (await client.request(CREATE_DRIVER, { input })).createDriver.driver;
}

async function getVehicle(client: GraphQLClient, id: string): Promise<Vehicle | null> {
  return (await client.request(GET_VEHICLE, { id })).vehicle;
}

async function getDriver(client: GraphQLClient, id: string): Promise<Driver | null> {
  return (await client.request(GET_DRIVER, { id })).driver;
}

async function assign(client: GraphQLClient, vehicleId: string, driverId: string | null): Promise<Vehicle> {
  return (await client.request(ASSIGN, { vehicleId, driverId })).assignDriver.vehicle;
}

/*
 * Bulk set-up: a few mutations per request (well under the alias limit), one request after
 * another. Mutation fields run serially, so ids (UUIDv7) follow input order.
 */
const CHUNK = 10;

function chunks<T>(items: T[]): T[][] {
  return Array.from({ length: Math.ceil(items.length / CHUNK) }, (_, index) => items.slice(index * CHUNK, (index + 1) * CHUNK));
}

async function createVehiclesInBulk(client: GraphQLClient, inputs: VehicleInput[]): Promise<BulkVehicle[]> {
  const created: BulkVehicle[] = [];
  for (const chunk of chunks(inputs)) {
    const variables = Object.fromEntries(chunk.map((input, index) => [`v${index}`, input]));
    const definitions = chunk.map((_, index) => `$v${index}: CreateVehicleInput!`).join(', ');
    const fields = chunk.map((_, index) => `c${index}: createVehicle(input: $v${index}) { vehicle { id plate } }`).join('\n');
    const result = await client.request<Record<string, { vehicle: BulkVehicle }>>(`mutation CreateVehicles(${definitions}) { ${fields} }`, variables);
    created.push(...chunk.map((_, index) => result[`c${index}`]!.vehicle));
  }
  return created;
}

async function createDriversInBulk(client: GraphQLClient, inputs: DriverInput[]): Promise<BulkDriver[]> {
  const created: BulkDriver[] = [];
  for (const chunk of chunks(inputs)) {
    const variables = Object.fromEntries(chunk.map((input, index) => [`d${index}`, input]));
    const definitions = chunk.map((_, index) => `$d${index}: CreateDriverInput!`).join(', ');
    const fields = chunk.map((_, index) => `c${index}: createDriver(input: $d${index}) { driver { id name } }`).join('\n');
    const result = await client.request<Record<string, { driver: BulkDriver }>>(`mutation CreateDrivers(${definitions}) { ${fields} }`, variables);
    created.push(...chunk.map((_, index) => result[`c${index}`]!.driver));
  }
  return created;
}

async function assignInBulk(client: GraphQLClient, pairs: [vehicleId: string, driverId: string][]): Promise<void> {
  for (const chunk of chunks(pairs)) {
    const fields = chunk
      .map(([vehicleId, driverId], index) => `a${index}: assignDriver(vehicleId: "${vehicleId}", driverId: "${driverId}") { vehicle { id } }`)
      .join('\n');
    await client.request(`mutation AssignDrivers { ${fields} }`);
  }
}

/** A global id of the right shape (base64url "Type:uuid") for a row that does not exist. */
const unknownId = (type: 'Vehicle' | 'Driver') =>
  Buffer.from(`${type}:00000000-0000-7000-8000-000000000000`, 'utf8').toString('base64url');

/** The one error of a failing request, with code and extensions.field. */
async function failure(request: Promise<unknown>): Promise<{ code: string; field: unknown; message: string }> {
  const { errors } = await expectErrors(request);
  expect(errors).toHaveLength(1);
  const [error] = errors;
  return { code: error!.extensions.code, field: error!.extensions.field, message: error!.message };
}

const nextYear = new Date().getUTCFullYear() + 1;

describe('vehicles', () => {
  it('creates a vehicle with every field, normalising the plate to upper case', async () => {
    const before = Date.now();
    const vehicle = await createVehicle(owner, {
      plate: '  ab-123 cd ',
      make: ' Scania ',
      model: 'R 450',
      year: 2019,
      status: 'MAINTENANCE',
      odometerKm: 123_456,
    });
    expect(vehicle).toMatchObject({
      plate: 'AB-123 CD',
      make: 'Scania',
      model: 'R 450',
      year: 2019,
      status: 'MAINTENANCE',
      odometerKm: 123_456,
      driver: null,
    });
    expect(typeof vehicle.id).toBe('string');
    expect(Date.parse(vehicle.createdAt)).toBeGreaterThanOrEqual(before - 5_000);
    expect(vehicle.updatedAt).toBe(vehicle.createdAt);
    expect(await getVehicle(owner, vehicle.id)).toEqual(vehicle);
  });

  it('defaults status to ACTIVE and odometer to 0, and accepts next year as a model year', async () => {
    const vehicle = await createVehicle(owner, vehicleInput({ year: nextYear }));
    expect(vehicle).toMatchObject({ status: 'ACTIVE', odometerKm: 0, year: nextYear });
  });

  it('updates every field, leaves omitted (and null) fields alone, and bumps updatedAt', async () => {
    const vehicle = await createVehicle(owner);
    const plate = unique('UPD');
    const result = await owner.request(UPDATE_VEHICLE, {
      id: vehicle.id,
      input: { plate: plate.toLowerCase(), make: 'MAN', model: 'TGX', year: 2021, status: 'RETIRED', odometerKm: 9_999 },
    });
    const updated = result.updateVehicle.vehicle;
    expect(updated).toMatchObject({ id: vehicle.id, plate, make: 'MAN', model: 'TGX', year: 2021, status: 'RETIRED', odometerKm: 9_999 });
    expect(updated.createdAt).toBe(vehicle.createdAt);
    expect(Date.parse(updated.updatedAt)).toBeGreaterThan(Date.parse(vehicle.updatedAt));

    const partial = await owner.request(UPDATE_VEHICLE, {
      id: vehicle.id,
      input: { odometerKm: 10_000, plate: null, make: null },
    });
    expect(partial.updateVehicle.vehicle).toMatchObject({ plate, make: 'MAN', model: 'TGX', odometerKm: 10_000 });
    expect(await getVehicle(owner, vehicle.id)).toEqual(partial.updateVehicle.vehicle);
  });

  it('deletes a vehicle; it is gone afterwards and a second delete is NOT_FOUND', async () => {
    const vehicle = await createVehicle(owner);
    const result = await owner.request(DELETE_VEHICLE, { id: vehicle.id });
    expect(result.deleteVehicle.deletedId).toBe(vehicle.id);
    expect(await getVehicle(owner, vehicle.id)).toBeNull();
    expect(await errorCode(owner.request(DELETE_VEHICLE, { id: vehicle.id }))).toBe('NOT_FOUND');
  });

  it('keeps plates unique within a tenant, whatever their case (CONFLICT on plate)', async () => {
    const plate = unique('DUP');
    const first = await createVehicle(owner, vehicleInput({ plate }));
    expect(await failure(owner.request(CREATE_VEHICLE, { input: vehicleInput({ plate: ` ${plate.toLowerCase()} ` }) }))).toMatchObject({
      code: 'CONFLICT',
      field: 'plate',
    });
    const second = await createVehicle(owner);
    expect(await failure(owner.request(UPDATE_VEHICLE, { id: second.id, input: { plate } }))).toMatchObject({
      code: 'CONFLICT',
      field: 'plate',
    });
    expect((await getVehicle(owner, second.id))?.plate).toBe(second.plate);
    // Updating a vehicle to its own plate is no conflict.
    const same = await owner.request(UPDATE_VEHICLE, { id: first.id, input: { plate } });
    expect(same.updateVehicle.vehicle.plate).toBe(plate);
  });

  it('collapses each run of whitespace inside a plate to one space: plates differing only in spacing are one plate', async () => {
    const prefix = unique('WS');
    const vehicle = await createVehicle(owner, vehicleInput({ plate: ` ${prefix.toLowerCase()}   100 ` }));
    expect(vehicle.plate).toBe(`${prefix} 100`);
    for (const plate of [`${prefix} 100`, `${prefix}  100`, `${prefix}\t \t100`]) {
      expect(await failure(owner.request(CREATE_VEHICLE, { input: vehicleInput({ plate }) }))).toMatchObject({ code: 'CONFLICT', field: 'plate' });
    }
    const other = await createVehicle(owner);
    expect(await failure(owner.request(UPDATE_VEHICLE, { id: other.id, input: { plate: `${prefix}    100` } }))).toMatchObject({
      code: 'CONFLICT',
      field: 'plate',
    });
    expect((await getVehicle(owner, other.id))?.plate).toBe(other.plate);
    // A search spaced as the client typed the plate finds it as stored.
    const found = await owner.request(SEARCH_VEHICLES, { search: `${prefix.toLowerCase()}     100` });
    expect(found.vehicles.edges.map((edge) => edge.node.id)).toEqual([vehicle.id]);
  });

  it('allows the same plate in another tenant', async () => {
    const plate = unique('SHARED');
    await createVehicle(owner, vehicleInput({ plate }));
    const other = await app.createTenant();
    const vehicle = await createVehicle(other.owner, vehicleInput({ plate }));
    expect(vehicle.plate).toBe(plate);
  });

  it.each([
    ['an empty plate', { plate: '' }, 'plate'],
    ['a blank plate', { plate: '   ' }, 'plate'],
    ['a plate with symbols', { plate: 'AB!12' }, 'plate'],
    ['a plate over 20 characters', { plate: 'A'.repeat(21) }, 'plate'],
    ['an empty make', { make: ' ' }, 'make'],
    ['an empty model', { model: '' }, 'model'],
    ['year 1800', { year: 1800 }, 'year'],
    ['year 1899', { year: 1899 }, 'year'],
    ['a year two years ahead', { year: nextYear + 1 }, 'year'],
    ['a negative odometer', { odometerKm: -1 }, 'odometerKm'],
    ['an implausible odometer', { odometerKm: 10_000_001 }, 'odometerKm'],
    ['a NUL character in make', { make: 'Vol\u0000vo' }, 'make'],
  ])('refuses %s with BAD_USER_INPUT on the field (create and update)', async (_label, overrides, field) => {
    const input = vehicleInput(overrides as Partial<VehicleInput>);
    expect(await failure(owner.request(CREATE_VEHICLE, { input }))).toMatchObject({ code: 'BAD_USER_INPUT', field });
    const vehicle = await createVehicle(owner);
    expect(await failure(owner.request(UPDATE_VEHICLE, { id: vehicle.id, input: overrides }))).toMatchObject({
      code: 'BAD_USER_INPUT',
      field,
    });
    expect(await getVehicle(owner, vehicle.id)).toEqual(vehicle);
  });

  it('accepts the boundary years 1900 and next year', async () => {
    expect((await createVehicle(owner, vehicleInput({ year: 1900 }))).year).toBe(1900);
    expect((await createVehicle(owner, vehicleInput({ year: nextYear }))).year).toBe(nextYear);
  });

  it('refuses malformed and wrongly typed ids with BAD_USER_INPUT', async () => {
    const driver = await createDriver(owner);
    for (const id of ['garbage', '', 'not base64 !', driver.id, Buffer.from('Vehicle:123', 'utf8').toString('base64url')]) {
      expect(await failure(owner.request(GET_VEHICLE, { id }))).toMatchObject({ code: 'BAD_USER_INPUT', field: 'id' });
      expect(await failure(owner.request(UPDATE_VEHICLE, { id, input: { make: 'X' } }))).toMatchObject({
        code: 'BAD_USER_INPUT',
        field: 'id',
      });
      expect(await failure(owner.request(DELETE_VEHICLE, { id }))).toMatchObject({ code: 'BAD_USER_INPUT', field: 'id' });
    }
  });

  it('answers null for an unknown well-formed id, and NOT_FOUND when a mutation names one', async () => {
    const id = unknownId('Vehicle');
    expect(await getVehicle(owner, id)).toBeNull();
    expect(await errorCode(owner.request(UPDATE_VEHICLE, { id, input: { make: 'X' } }))).toBe('NOT_FOUND');
    expect(await errorCode(owner.request(DELETE_VEHICLE, { id }))).toBe('NOT_FOUND');
  });
});

describe('drivers', () => {
  it('creates a driver with every field, normalising licence and email', async () => {
    const licenseNumber = unique('lic-');
    const driver = await createDriver(owner, {
      name: ' Alex Example ',
      licenseNumber: ` ${licenseNumber} `,
      phone: '+44 (20) 7946-0000',
      email: 'Alex.Example@Example.COM',
      status: 'ON_LEAVE',
    });
    expect(driver).toMatchObject({
      name: 'Alex Example',
      licenseNumber: licenseNumber.toUpperCase(),
      phone: '+44 (20) 7946-0000',
      email: 'alex.example@example.com',
      status: 'ON_LEAVE',
      vehicle: null,
    });
    expect(await getDriver(owner, driver.id)).toEqual(driver);
  });

  it('defaults status to ACTIVE and phone/email to null', async () => {
    const driver = await createDriver(owner);
    expect(driver).toMatchObject({ status: 'ACTIVE', phone: null, email: null });
  });

  it('updates every field, clears phone and email with null, leaves other nulls alone', async () => {
    const driver = await createDriver(owner, driverInput({ phone: '123', email: 'a@b.test' }));
    const licenseNumber = unique('NEWLIC');
    const updated = (
      await owner.request(UPDATE_DRIVER, {
        id: driver.id,
        input: { name: 'New Name', licenseNumber, phone: '555 0100', email: 'new@b.test', status: 'INACTIVE' },
      })
    ).updateDriver.driver;
    expect(updated).toMatchObject({ id: driver.id, name: 'New Name', licenseNumber, phone: '555 0100', email: 'new@b.test', status: 'INACTIVE' });
    expect(Date.parse(updated.updatedAt)).toBeGreaterThan(Date.parse(driver.updatedAt));

    const cleared = (
      await owner.request(UPDATE_DRIVER, {
        id: driver.id,
        input: { phone: null, email: null, name: null },
      })
    ).updateDriver.driver;
    expect(cleared).toMatchObject({ name: 'New Name', licenseNumber, phone: null, email: null, status: 'INACTIVE' });
    expect(await getDriver(owner, driver.id)).toEqual(cleared);
  });

  it('deletes a driver; a second delete is NOT_FOUND', async () => {
    const driver = await createDriver(owner);
    const result = await owner.request(DELETE_DRIVER, { id: driver.id });
    expect(result.deleteDriver.deletedId).toBe(driver.id);
    expect(await getDriver(owner, driver.id)).toBeNull();
    expect(await errorCode(owner.request(DELETE_DRIVER, { id: driver.id }))).toBe('NOT_FOUND');
  });

  it('keeps licence numbers unique, whatever their case (CONFLICT on licenseNumber)', async () => {
    const licenseNumber = unique('UNIQ');
    await createDriver(owner, driverInput({ licenseNumber }));
    expect(await failure(owner.request(CREATE_DRIVER, { input: driverInput({ licenseNumber: licenseNumber.toLowerCase() }) }))).toMatchObject({
      code: 'CONFLICT',
      field: 'licenseNumber',
    });
    const other = await createDriver(owner);
    expect(await failure(owner.request(UPDATE_DRIVER, { id: other.id, input: { licenseNumber } }))).toMatchObject({
      code: 'CONFLICT',
      field: 'licenseNumber',
    });
    expect((await getDriver(owner, other.id))?.licenseNumber).toBe(other.licenseNumber);
  });

  it('collapses each run of whitespace inside a licence number to one space: numbers differing only in spacing are one', async () => {
    const prefix = unique('WSL');
    const driver = await createDriver(owner, driverInput({ licenseNumber: `  ${prefix.toLowerCase()}  \t 7 ` }));
    expect(driver.licenseNumber).toBe(`${prefix} 7`);
    for (const licenseNumber of [`${prefix} 7`, `${prefix}   7`]) {
      expect(await failure(owner.request(CREATE_DRIVER, { input: driverInput({ licenseNumber }) }))).toMatchObject({
        code: 'CONFLICT',
        field: 'licenseNumber',
      });
    }
    const other = await createDriver(owner);
    expect(await failure(owner.request(UPDATE_DRIVER, { id: other.id, input: { licenseNumber: `${prefix}\n7` } }))).toMatchObject({
      code: 'CONFLICT',
      field: 'licenseNumber',
    });
    const found = await owner.request(SEARCH_DRIVERS, { search: `${prefix}      7` });
    expect(found.drivers.edges.map((edge) => edge.node.id)).toEqual([driver.id]);
  });

  it.each([
    ['an empty name', { name: '  ' }, 'name'],
    ['an empty licence number', { licenseNumber: '' }, 'licenseNumber'],
    ['a phone with letters', { phone: 'call me' }, 'phone'],
    ['a phone with a + in the middle', { phone: '12+34' }, 'phone'],
    ['a NUL character in the name', { name: 'Al\u0000ex' }, 'name'],
    ['a NUL character in the licence number', { licenseNumber: 'L\u0000X' }, 'licenseNumber'],
  ])('refuses %s with BAD_USER_INPUT on the field (create and update)', async (_label, overrides, field) => {
    expect(await failure(owner.request(CREATE_DRIVER, { input: driverInput(overrides) }))).toMatchObject({ code: 'BAD_USER_INPUT', field });
    const driver = await createDriver(owner);
    expect(await failure(owner.request(UPDATE_DRIVER, { id: driver.id, input: overrides }))).toMatchObject({ code: 'BAD_USER_INPUT', field });
    expect(await getDriver(owner, driver.id)).toEqual(driver);
  });

  it('refuses an invalid email given as a variable (BAD_USER_INPUT naming input.email)', async () => {
    const { errors, status } = await expectErrors(owner.request(CREATE_DRIVER, { input: driverInput({ email: 'not-an-email' }) }));
    expect(status).toBe(400);
    expect(errors).toHaveLength(1);
    expect(errors[0]!.extensions.code).toBe('BAD_USER_INPUT');
    expect(errors[0]!.message).toContain('"input.email"');

    const driver = await createDriver(owner);
    const update = await expectErrors(owner.request(UPDATE_DRIVER, { id: driver.id, input: { email: 'still@not@valid' } }));
    expect(update.errors[0]!.extensions.code).toBe('BAD_USER_INPUT');
    expect(update.errors[0]!.message).toContain('"input.email"');
    expect((await getDriver(owner, driver.id))?.email).toBeNull();
  });

  it('refuses an invalid email literal in the document (GRAPHQL_VALIDATION_FAILED, nothing created)', async () => {
    const licenseNumber = unique('LITERAL');
    const { errors, status } = await expectErrors(
      owner.request(`mutation { createDriver(input: { name: "Lit", licenseNumber: "${licenseNumber}", email: "nope" }) { driver { id } } }`),
    );
    expect(status).toBe(400);
    expect(errors.map((error) => error.extensions.code)).toEqual(['GRAPHQL_VALIDATION_FAILED']);
    expect(errors[0]!.message).toMatch(/email/i);
    const search = await owner.request(
      graphql(`query FleetDriverSearch($search: String) { drivers(filter: { search: $search }) { totalCount } }`),
      { search: licenseNumber },
    );
    expect(search.drivers.totalCount).toBe(0);
  });

  it('refuses malformed and wrongly typed ids with BAD_USER_INPUT', async () => {
    const vehicle = await createVehicle(owner);
    for (const id of ['garbage', vehicle.id, Buffer.from('Driver:xyz', 'utf8').toString('base64url')]) {
      expect(await failure(owner.request(GET_DRIVER, { id }))).toMatchObject({ code: 'BAD_USER_INPUT', field: 'id' });
      expect(await failure(owner.request(UPDATE_DRIVER, { id, input: { name: 'X' } }))).toMatchObject({ code: 'BAD_USER_INPUT', field: 'id' });
      expect(await failure(owner.request(DELETE_DRIVER, { id }))).toMatchObject({ code: 'BAD_USER_INPUT', field: 'id' });
    }
  });

  it('answers null for an unknown well-formed id, and NOT_FOUND when a mutation names one', async () => {
    const id = unknownId('Driver');
    expect(await getDriver(owner, id)).toBeNull();
    expect(await errorCode(owner.request(UPDATE_DRIVER, { id, input: { name: 'X' } }))).toBe('NOT_FOUND');
    expect(await errorCode(owner.request(DELETE_DRIVER, { id }))).toBe('NOT_FOUND');
  });
});

describe('assignDriver', () => {
  it('assigns a driver, both sides see it, and re-assigning the same driver is a no-op', async () => {
    const vehicle = await createVehicle(owner);
    const driver = await createDriver(owner);
    const assigned = await assign(owner, vehicle.id, driver.id);
    expect(assigned.driver).toEqual({ id: driver.id, name: driver.name });
    expect((await getVehicle(owner, vehicle.id))?.driver).toEqual({ id: driver.id, name: driver.name });
    expect((await getDriver(owner, driver.id))?.vehicle).toEqual({ id: vehicle.id, plate: vehicle.plate });

    const again = await assign(owner, vehicle.id, driver.id);
    expect(again.driver).toEqual({ id: driver.id, name: driver.name });
    expect((await getDriver(owner, driver.id))?.vehicle).toEqual({ id: vehicle.id, plate: vehicle.plate });
  });

  it('replaces a vehicle\'s driver with another free driver', async () => {
    const vehicle = await createVehicle(owner);
    const first = await createDriver(owner);
    const second = await createDriver(owner);
    await assign(owner, vehicle.id, first.id);
    expect((await assign(owner, vehicle.id, second.id)).driver?.id).toBe(second.id);
    expect((await getDriver(owner, first.id))?.vehicle).toBeNull();
    expect((await getDriver(owner, second.id))?.vehicle?.id).toBe(vehicle.id);
  });

  it('refuses a driver who already drives another vehicle with CONFLICT on driverId', async () => {
    const first = await createVehicle(owner);
    const second = await createVehicle(owner);
    const driver = await createDriver(owner);
    await assign(owner, first.id, driver.id);
    expect(await failure(owner.request(ASSIGN, { vehicleId: second.id, driverId: driver.id }))).toMatchObject({
      code: 'CONFLICT',
      field: 'driverId',
    });
    expect((await getVehicle(owner, second.id))?.driver).toBeNull();
    expect((await getDriver(owner, driver.id))?.vehicle?.id).toBe(first.id);
  });

  it('unassigns with driverId null', async () => {
    const vehicle = await createVehicle(owner);
    const driver = await createDriver(owner);
    await assign(owner, vehicle.id, driver.id);
    expect((await assign(owner, vehicle.id, null)).driver).toBeNull();
    expect((await getVehicle(owner, vehicle.id))?.driver).toBeNull();
    expect((await getDriver(owner, driver.id))?.vehicle).toBeNull();
    // The freed driver can now take another vehicle.
    const other = await createVehicle(owner);
    expect((await assign(owner, other.id, driver.id)).driver?.id).toBe(driver.id);
  });

  it('refuses driverId "" with BAD_USER_INPUT on driverId, leaving the driver in place; only null or an omitted driverId unassigns', async () => {
    const vehicle = await createVehicle(owner);
    const driver = await createDriver(owner);
    await assign(owner, vehicle.id, driver.id);
    expect(await failure(owner.request(ASSIGN, { vehicleId: vehicle.id, driverId: '' }))).toMatchObject({
      code: 'BAD_USER_INPUT',
      field: 'driverId',
    });
    expect((await getVehicle(owner, vehicle.id))?.driver?.id).toBe(driver.id);
    expect((await owner.request(ASSIGN, { vehicleId: vehicle.id })).assignDriver.vehicle.driver).toBeNull();
    expect((await getDriver(owner, driver.id))?.vehicle).toBeNull();
  });

  it('deleting a driver takes them out of their vehicle', async () => {
    const vehicle = await createVehicle(owner);
    const driver = await createDriver(owner);
    await assign(owner, vehicle.id, driver.id);
    await owner.request(DELETE_DRIVER, { id: driver.id });
    expect((await getVehicle(owner, vehicle.id))?.driver).toBeNull();
    const hasDriver = await owner.request(
      graphql(`query FleetVehiclesWithDriver($search: String) { vehicles(first: 100, filter: { search: $search, hasDriver: true }) { edges { node { id } } } }`),
      { search: vehicle.plate },
    );
    expect(hasDriver.vehicles.edges).toEqual([]);
  });

  it('deleting a vehicle frees its driver', async () => {
    const vehicle = await createVehicle(owner);
    const driver = await createDriver(owner);
    await assign(owner, vehicle.id, driver.id);
    await owner.request(DELETE_VEHICLE, { id: vehicle.id });
    expect((await getDriver(owner, driver.id))?.vehicle).toBeNull();
  });

  it('answers NOT_FOUND for an unknown vehicle or driver, BAD_USER_INPUT for malformed ids', async () => {
    const vehicle = await createVehicle(owner);
    const driver = await createDriver(owner);
    expect(await errorCode(owner.request(ASSIGN, { vehicleId: unknownId('Vehicle'), driverId: driver.id }))).toBe('NOT_FOUND');
    expect(await errorCode(owner.request(ASSIGN, { vehicleId: unknownId('Vehicle'), driverId: null }))).toBe('NOT_FOUND');
    expect(await errorCode(owner.request(ASSIGN, { vehicleId: vehicle.id, driverId: unknownId('Driver') }))).toBe('NOT_FOUND');
    expect(await failure(owner.request(ASSIGN, { vehicleId: 'nope', driverId: driver.id }))).toMatchObject({
      code: 'BAD_USER_INPUT',
      field: 'vehicleId',
    });
    expect(await failure(owner.request(ASSIGN, { vehicleId: vehicle.id, driverId: vehicle.id }))).toMatchObject({
      code: 'BAD_USER_INPUT',
      field: 'driverId',
    });
    expect((await getVehicle(owner, vehicle.id))?.driver).toBeNull();
  });
});

describe('assignDriver racing other writes', () => {
  /*
   * The competing write comes through a second instance on the same database, as it would in
   * production (the held assignDriver keeps its own connection of this instance busy).
   */
  let elsewhere: TestServer;
  let ownerElsewhere: GraphQLClient;

  beforeAll(async () => {
    elsewhere = await startTestServer({ databaseUrl: app.databaseUrl, env: NO_BACKGROUND_JOBS });
    ownerElsewhere = elsewhere.bearer(tenant.ownerToken);
  });

  afterAll(async () => {
    await elsewhere.close();
  });

  const rowId = (globalId: string): string => {
    const parsed = parseGlobalId(globalId);
    if (!parsed) throw new Error(`not a global id: ${globalId}`);
    return parsed.id;
  };

  /*
   * Holds the vehicle's row as a competing write would, so assignDriver stops at its UPDATE
   * with its own checks already passed; the scene changes things underneath it meanwhile.
   */
  const holdingVehicle = <T>(vehicleId: string, scene: (lock: HeldLock) => Promise<T>): Promise<T> =>
    withRowLocked(
      app.server.services.platform.pool,
      `SELECT 1 FROM ${quoteIdentifier(tenant.schemaName)}."Vehicle" WHERE id = $1 FOR UPDATE`,
      [rowId(vehicleId)],
      scene,
    );

  it('a driver deleted while being assigned is NOT_FOUND (Driver), and the vehicle is left without one', async () => {
    const vehicle = await createVehicle(owner);
    const driver = await createDriver(owner);
    const { assigning } = await holdingVehicle(vehicle.id, async (lock) => {
      const pending = failure(owner.request(ASSIGN, { vehicleId: vehicle.id, driverId: driver.id }));
      await lock.untilSomeoneWaits();
      await ownerElsewhere.request(DELETE_DRIVER, { id: driver.id });
      return { assigning: pending };
    });
    expect(await assigning).toEqual({ code: 'NOT_FOUND', field: undefined, message: 'Driver not found' });
    expect((await getVehicle(owner, vehicle.id))?.driver).toBeNull();
  });

  it('two vehicles taking the same driver at once: the second is CONFLICT on driverId, not on plate', async () => {
    const first = await createVehicle(owner);
    const second = await createVehicle(owner);
    const driver = await createDriver(owner);
    const { assigning } = await holdingVehicle(second.id, async (lock) => {
      const pending = failure(owner.request(ASSIGN, { vehicleId: second.id, driverId: driver.id }));
      await lock.untilSomeoneWaits();
      // The other assignment passes its checks and commits while the first one waits.
      expect((await assign(ownerElsewhere, first.id, driver.id)).driver?.id).toBe(driver.id);
      return { assigning: pending };
    });
    expect(await assigning).toMatchObject({ code: 'CONFLICT', field: 'driverId', message: expect.stringMatching(/already assigned to another vehicle/) });
    expect((await getVehicle(owner, second.id))?.driver).toBeNull();
    expect((await getDriver(owner, driver.id))?.vehicle?.id).toBe(first.id);
  });

  it('a vehicle deleted while its driver is being assigned is NOT_FOUND (Vehicle), and the driver stays free', async () => {
    const vehicle = await createVehicle(owner);
    const driver = await createDriver(owner);
    const { assigning } = await holdingVehicle(vehicle.id, async (lock) => {
      const pending = failure(owner.request(ASSIGN, { vehicleId: vehicle.id, driverId: driver.id }));
      await lock.untilSomeoneWaits();
      // deleteVehicle itself would queue behind the held row, so the holder deletes it.
      await lock.query(`DELETE FROM ${quoteIdentifier(tenant.schemaName)}."Vehicle" WHERE id = $1`, [rowId(vehicle.id)]);
      return { assigning: pending };
    });
    expect(await assigning).toEqual({ code: 'NOT_FOUND', field: undefined, message: 'Vehicle not found' });
    expect((await getDriver(owner, driver.id))?.vehicle).toBeNull();
  });
});

describe('node(id:)', () => {
  const NODE = graphql(`query Node($id: ID!) {
    node(id: $id) {
      __typename id
      ... on Vehicle { plate make model year vehicleStatus: status odometerKm driver { id } }
      ... on Driver { name licenseNumber phone email driverStatus: status vehicle { id } }
    }
  }`);

  it('returns a vehicle with its fields and __typename Vehicle', async () => {
    const vehicle = await createVehicle(owner, vehicleInput({ status: 'RETIRED', odometerKm: 42 }));
    const driver = await createDriver(owner);
    await assign(owner, vehicle.id, driver.id);
    const { node } = await owner.request(NODE, { id: vehicle.id });
    expect(node).toEqual({
      __typename: 'Vehicle',
      id: vehicle.id,
      plate: vehicle.plate,
      make: vehicle.make,
      model: vehicle.model,
      year: vehicle.year,
      vehicleStatus: 'RETIRED',
      odometerKm: 42,
      driver: { id: driver.id },
    });
  });

  it('returns a driver with its fields and __typename Driver', async () => {
    const driver = await createDriver(owner, driverInput({ phone: '+1 555', email: 'node@driver.test', status: 'INACTIVE' }));
    const { node } = await owner.request(NODE, { id: driver.id });
    expect(node).toEqual({
      __typename: 'Driver',
      id: driver.id,
      name: driver.name,
      licenseNumber: driver.licenseNumber,
      phone: '+1 555',
      email: 'node@driver.test',
      driverStatus: 'INACTIVE',
      vehicle: null,
    });
  });

  it('returns null for unknown, garbage and other tenants\' ids', async () => {
    const other = await app.createTenant();
    const foreign = await createVehicle(other.owner);
    for (const id of [unknownId('Vehicle'), unknownId('Driver'), 'garbage', '', Buffer.from('Tenant:x', 'utf8').toString('base64url'), foreign.id]) {
      const { node } = await owner.request(NODE, { id });
      expect(node).toBeNull();
    }
  });
});

type VehiclePage = FleetVehiclesQuery['vehicles'];

describe('connections', () => {
  let fleet: TenantFixture;
  let vehicles: BulkVehicle[];
  let drivers: BulkDriver[];

  const VEHICLES = graphql(`query FleetVehicles($first: Int, $after: String, $filter: VehicleFilter) {
    vehicles(first: $first, after: $after, filter: $filter) {
      edges { cursor node { id plate } }
      pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
      totalCount
    }
  }`);
  const DRIVERS = graphql(`query FleetDrivers($first: Int, $after: String, $filter: DriverFilter) {
    drivers(first: $first, after: $after, filter: $filter) {
      edges { cursor node { id name } }
      pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
      totalCount
    }
  }`);

  const listVehicles = async (variables: FleetVehiclesQueryVariables) =>
    (await fleet.owner.request(VEHICLES, variables)).vehicles;
  const listDrivers = async (variables: FleetDriversQueryVariables) =>
    (await fleet.owner.request(DRIVERS, variables)).drivers;

  beforeAll(async () => {
    fleet = await app.createTenant(undefined, 'ENTERPRISE');
    // 45 vehicles: every 3rd in MAINTENANCE, every 5th a Scania "Citywide", the rest Volvo "FH16".
    vehicles = await createVehiclesInBulk(
      fleet.owner,
      Array.from({ length: 45 }, (_, index) => ({
        plate: `CN-${index.toString().padStart(3, '0')}`,
        make: index % 5 === 0 ? 'Scania' : 'Volvo',
        model: index % 5 === 0 ? 'Citywide' : 'FH16',
        year: 2015 + (index % 8),
        status: index % 3 === 0 ? 'MAINTENANCE' : 'ACTIVE',
      })),
    );
    // 12 drivers: every 4th ON_LEAVE; the first 7 drive vehicles 0..6.
    drivers = await createDriversInBulk(
      fleet.owner,
      Array.from({ length: 12 }, (_, index) => ({
        name: index % 2 === 0 ? `Morgan ${index}` : `Riley ${index}`,
        licenseNumber: `CONN-${index}`,
        email: `driver${index}@conn.test`,
        status: index % 4 === 0 ? 'ON_LEAVE' : 'ACTIVE',
      })),
    );
    await assignInBulk(
      fleet.owner,
      drivers.slice(0, 7).map((driver, index) => [vehicles[index]!.id, driver.id]),
    );
  });

  it('pages through 45 vehicles with first: 20 and after: every vehicle once, in creation order', async () => {
    const seen: string[] = [];
    const pages: VehiclePage[] = [];
    let after: string | null = null;
    for (let round = 0; round < 5; round += 1) {
      const page: VehiclePage = await listVehicles({ first: 20, after });
      pages.push(page);
      seen.push(...page.edges.map((edge) => edge.node.id));
      if (!page.pageInfo.hasNextPage) break;
      after = page.pageInfo.endCursor;
    }
    expect(pages.map((page) => page.edges.length)).toEqual([20, 20, 5]);
    expect(pages.map((page) => page.pageInfo.hasNextPage)).toEqual([true, true, false]);
    expect(pages.map((page) => page.pageInfo.hasPreviousPage)).toEqual([false, true, true]);
    expect(pages.map((page) => page.totalCount)).toEqual([45, 45, 45]);
    for (const page of pages) {
      expect(page.pageInfo.startCursor).toBe(page.edges[0]!.cursor);
      expect(page.pageInfo.endCursor).toBe(page.edges.at(-1)!.cursor);
    }
    expect(seen).toEqual(vehicles.map((vehicle) => vehicle.id));
    expect(new Set(seen).size).toBe(45);
  });

  it('defaults to 20 per page and serves up to 100', async () => {
    const defaults = await listVehicles({});
    expect(defaults.edges).toHaveLength(20);
    expect(defaults.pageInfo.hasNextPage).toBe(true);
    const all = await listVehicles({ first: 100 });
    expect(all.edges.map((edge) => edge.node.plate)).toEqual(vehicles.map((vehicle) => vehicle.plate));
    expect(all.pageInfo.hasNextPage).toBe(false);
    const exact = await listVehicles({ first: 45 });
    expect(exact.edges).toHaveLength(45);
    expect(exact.pageInfo.hasNextPage).toBe(false);
  });

  it('answers an empty page after the last cursor', async () => {
    const all = await listVehicles({ first: 100 });
    const after = await listVehicles({ first: 10, after: all.pageInfo.endCursor });
    expect(after.edges).toEqual([]);
    expect(after.pageInfo).toMatchObject({ hasNextPage: false, startCursor: null, endCursor: null });
    expect(after.totalCount).toBe(45);
  });

  it.each([0, 101, -1])('refuses first: %i with BAD_USER_INPUT on first', async (first) => {
    expect(await failure(listVehicles({ first }))).toMatchObject({ code: 'BAD_USER_INPUT', field: 'first' });
    expect(await failure(listDrivers({ first }))).toMatchObject({ code: 'BAD_USER_INPUT', field: 'first' });
  });

  it.each(['garbage', 'bm90LWEtY3Vyc29y', Buffer.from('cursor:not-a-uuid').toString('base64url'), '!!!!'])(
    'refuses a garbage after cursor %p with BAD_USER_INPUT on after',
    async (after) => {
      expect(await failure(listVehicles({ first: 5, after }))).toMatchObject({ code: 'BAD_USER_INPUT', field: 'after' });
      expect(await failure(listDrivers({ first: 5, after }))).toMatchObject({ code: 'BAD_USER_INPUT', field: 'after' });
    },
  );

  it('filters vehicles by status, with a matching totalCount, and pages within the filter', async () => {
    const expected = vehicles.filter((_, index) => index % 3 === 0).map((vehicle) => vehicle.id);
    const first = await listVehicles({ first: 10, filter: { status: 'MAINTENANCE' } });
    expect(first.totalCount).toBe(expected.length);
    expect(first.pageInfo.hasNextPage).toBe(true);
    const rest = await listVehicles({ first: 10, after: first.pageInfo.endCursor, filter: { status: 'MAINTENANCE' } });
    expect(rest.totalCount).toBe(expected.length);
    expect([...first.edges, ...rest.edges].map((edge) => edge.node.id)).toEqual(expected);
    const retired = await listVehicles({ filter: { status: 'RETIRED' } });
    expect(retired).toMatchObject({ edges: [], totalCount: 0 });
  });

  it('searches vehicles case-insensitively on plate, make and model', async () => {
    const scania = vehicles.filter((_, index) => index % 5 === 0).map((vehicle) => vehicle.id);
    for (const search of ['scania', 'SCANIA', 'cityWIDE', ' itywid ']) {
      const page = await listVehicles({ first: 100, filter: { search } });
      expect(page.edges.map((edge) => edge.node.id)).toEqual(scania);
      expect(page.totalCount).toBe(scania.length);
    }
    const byPlate = await listVehicles({ first: 100, filter: { search: 'cn-01' } });
    expect(byPlate.edges.map((edge) => edge.node.plate)).toEqual(vehicles.slice(10, 20).map((vehicle) => vehicle.plate));
    expect(byPlate.totalCount).toBe(10);
    expect((await listVehicles({ filter: { search: 'no-such-thing' } })).totalCount).toBe(0);
  });

  it('filters vehicles by hasDriver, and combines filters', async () => {
    const withDriver = await listVehicles({ first: 100, filter: { hasDriver: true } });
    expect(withDriver.edges.map((edge) => edge.node.id)).toEqual(vehicles.slice(0, 7).map((vehicle) => vehicle.id));
    expect(withDriver.totalCount).toBe(7);
    const without = await listVehicles({ first: 100, filter: { hasDriver: false } });
    expect(without.edges.map((edge) => edge.node.id)).toEqual(vehicles.slice(7).map((vehicle) => vehicle.id));
    expect(without.totalCount).toBe(38);
    // Vehicles 0..6 with a driver, every 3rd in MAINTENANCE, every 5th a Scania: 0 only.
    const combined = await listVehicles({ first: 100, filter: { hasDriver: true, status: 'MAINTENANCE', search: 'scania' } });
    expect(combined.edges.map((edge) => edge.node.id)).toEqual([vehicles[0]!.id]);
    expect(combined.totalCount).toBe(1);
  });

  it('pages through drivers and filters them by status, search and assigned', async () => {
    const firstPage = await listDrivers({ first: 5 });
    const secondPage = await listDrivers({ first: 5, after: firstPage.pageInfo.endCursor });
    const thirdPage = await listDrivers({ first: 5, after: secondPage.pageInfo.endCursor });
    expect([...firstPage.edges, ...secondPage.edges, ...thirdPage.edges].map((edge) => edge.node.id)).toEqual(
      drivers.map((driver) => driver.id),
    );
    expect([firstPage, secondPage, thirdPage].map((page) => page.pageInfo.hasNextPage)).toEqual([true, true, false]);
    expect([firstPage, secondPage, thirdPage].map((page) => page.totalCount)).toEqual([12, 12, 12]);

    const onLeave = await listDrivers({ first: 100, filter: { status: 'ON_LEAVE' } });
    expect(onLeave.edges.map((edge) => edge.node.id)).toEqual([0, 4, 8].map((index) => drivers[index]!.id));
    expect(onLeave.totalCount).toBe(3);

    const riley = await listDrivers({ first: 100, filter: { search: 'rILEY' } });
    expect(riley.edges.map((edge) => edge.node.id)).toEqual(drivers.filter((_, index) => index % 2 === 1).map((driver) => driver.id));
    expect(riley.totalCount).toBe(6);
    const byLicence = await listDrivers({ first: 100, filter: { search: 'conn-1' } });
    expect(byLicence.edges.map((edge) => edge.node.id)).toEqual([1, 10, 11].map((index) => drivers[index]!.id));
    const byEmail = await listDrivers({ first: 100, filter: { search: 'DRIVER3@' } });
    expect(byEmail.edges.map((edge) => edge.node.id)).toEqual([drivers[3]!.id]);
    expect(byEmail.totalCount).toBe(1);

    const assigned = await listDrivers({ first: 100, filter: { assigned: true } });
    expect(assigned.edges.map((edge) => edge.node.id)).toEqual(drivers.slice(0, 7).map((driver) => driver.id));
    expect(assigned.totalCount).toBe(7);
    const free = await listDrivers({ first: 100, filter: { assigned: false } });
    expect(free.edges.map((edge) => edge.node.id)).toEqual(drivers.slice(7).map((driver) => driver.id));
    expect(free.totalCount).toBe(5);
    const combined = await listDrivers({ first: 100, filter: { assigned: true, status: 'ON_LEAVE' } });
    expect(combined.edges.map((edge) => edge.node.id)).toEqual([0, 4].map((index) => drivers[index]!.id));
  });

  it('refuses a search containing a NUL character with BAD_USER_INPUT', async () => {
    expect(await failure(listVehicles({ filter: { search: 'a\u0000b' } }))).toMatchObject({ code: 'BAD_USER_INPUT', field: 'filter.search' });
    expect(await failure(listDrivers({ filter: { search: 'a\u0000b' } }))).toMatchObject({ code: 'BAD_USER_INPUT', field: 'filter.search' });
  });

  it('a cursor from one filter still pages correctly without it (cursors are positions, not filters)', async () => {
    const filtered = await listVehicles({ first: 3, filter: { status: 'MAINTENANCE' } });
    const next = await listVehicles({ first: 2, after: filtered.pageInfo.endCursor });
    const afterIndex = vehicles.findIndex((vehicle) => vehicle.id === filtered.edges.at(-1)!.node.id);
    expect(next.edges.map((edge) => edge.node.id)).toEqual(vehicles.slice(afterIndex + 1, afterIndex + 3).map((vehicle) => vehicle.id));
  });
});

describe('search is a literal, case-insensitive substring match', () => {
  let fleet: TenantFixture;
  let vehicles: BulkVehicle[];
  let drivers: BulkDriver[];

  beforeAll(async () => {
    fleet = await app.createTenant(undefined, 'ENTERPRISE');
    // Each row holds one of LIKE's special characters, next to a row it would match as a pattern.
    vehicles = await createVehiclesInBulk(fleet.owner, [
      { plate: 'AB-100', make: 'Volvo', model: 'FH16', year: 2020 },
      { plate: 'AB 100', make: 'Rated 100%', model: 'FH16', year: 2020 },
      { plate: 'LIT-2', make: 'AB_100', model: 'Special', year: 2020 },
      { plate: 'LIT-3', make: 'back\\slash', model: 'FH16', year: 2020 },
      { plate: 'LIT-4', make: 'backslash', model: 'FH16', year: 2020 },
    ]);
    drivers = await createDriversInBulk(fleet.owner, [
      { name: 'Rated 100%', licenseNumber: 'LIT-D0' },
      { name: 'snake_case', licenseNumber: 'LIT-D1' },
      { name: 'snakeXcase', licenseNumber: 'LIT-D2' },
      { name: 'back\\slash', licenseNumber: 'LIT-D3' },
      { name: 'backslash', licenseNumber: 'LIT-D4' },
    ]);
  });

  it.each([
    ['%', [1]],
    ['100%', [1]],
    ['_', [2]],
    ['ab_100', [2]],
    ['\\', [3]],
    ['BACK\\SLASH', [3]],
  ])('vehicles: search %p finds only the vehicles containing exactly that', async (search, expected) => {
    const { vehicles: page } = await fleet.owner.request(SEARCH_VEHICLES, { search });
    expect(page.edges.map((edge) => edge.node.id)).toEqual(expected.map((index) => vehicles[index]!.id));
    expect(page.totalCount).toBe(expected.length);
  });

  it.each([
    ['%', [0]],
    ['_', [1]],
    ['SNAKE_case', [1]],
    ['\\', [3]],
    ['back\\slash', [3]],
  ])('drivers: search %p finds only the drivers containing exactly that', async (search, expected) => {
    const { drivers: page } = await fleet.owner.request(SEARCH_DRIVERS, { search });
    expect(page.edges.map((edge) => edge.node.id)).toEqual(expected.map((index) => drivers[index]!.id));
    expect(page.totalCount).toBe(expected.length);
  });
});

describe('nested fields are batched (no N+1)', () => {
  const tenantStatements = () => tenantSqlStatements(app.url);

  const NESTED = graphql(`query FleetNested($first: Int) {
    vehicles(first: $first) { edges { node { plate driver { name vehicle { plate } } } } totalCount }
  }`);

  type Nested = FleetNestedQuery;

  /** A tenant with `count` vehicles, each with its own driver. */
  async function tenantWithAssignedFleet(count: number): Promise<TenantFixture> {
    const fixture = await app.createTenant(undefined, 'ENTERPRISE');
    const created = await createVehiclesInBulk(
      fixture.owner,
      Array.from({ length: count }, (_, index) => ({ plate: `NP-${index}`, make: 'DAF', model: 'XF', year: 2022 })),
    );
    const crew = await createDriversInBulk(
      fixture.owner,
      Array.from({ length: count }, (_, index) => ({ name: `Crew ${index}`, licenseNumber: `NP-LIC-${index}` })),
    );
    await assignInBulk(
      fixture.owner,
      created.map((vehicle, index) => [vehicle.id, crew[index]!.id]),
    );
    return fixture;
  }

  /** SQL statements tenant connections sent for one request (nothing else runs meanwhile). */
  async function measure(client: GraphQLClient, first: number): Promise<{ statements: number; result: Nested }> {
    const before = await tenantStatements();
    const result = await client.request(NESTED, { first });
    const after = await tenantStatements();
    return { statements: after - before, result };
  }

  function expectEveryDriverLoaded(result: Nested, count: number): void {
    expect(result.vehicles.totalCount).toBe(count);
    expect(result.vehicles.edges).toHaveLength(count);
    for (const [index, edge] of result.vehicles.edges.entries()) {
      expect(edge.node).toEqual({ plate: `NP-${index}`, driver: { name: `Crew ${index}`, vehicle: { plate: `NP-${index}` } } });
    }
  }

  it('lists 10 and 100 vehicles with driver and driver.vehicle in the same small number of statements', async () => {
    const small = await tenantWithAssignedFleet(10);
    const large = await tenantWithAssignedFleet(100);
    // Warm up: the first request of a tenant may open connections; measure steady state.
    await small.owner.request(NESTED, { first: 10 });
    await large.owner.request(NESTED, { first: 100 });

    const ten = await measure(small.owner, 10);
    expectEveryDriverLoaded(ten.result, 10);
    const hundred = await measure(large.owner, 100);
    expectEveryDriverLoaded(hundred.result, 100);
    const tenOfHundred = await measure(large.owner, 10);
    expect(tenOfHundred.result.vehicles.edges).toHaveLength(10);

    process.stdout.write(
      `\nN+1 check: tenant SQL statements for 10 vehicles: ${ten.statements}, for 100: ${hundred.statements}, first 10 of 100: ${tenOfHundred.statements}\n`,
    );
    expect(ten.statements).toBeGreaterThan(0);
    expect(ten.statements).toBe(2); // the page with drivers (and their vehicles, the same rows), then totalCount
    expect(hundred.statements).toBe(ten.statements);
    expect(tenOfHundred.statements).toBe(ten.statements);
  });

  const VEHICLES_WITH_DRIVERS = graphql(`query FleetVehiclesWithDrivers { vehicles(first: 20) { edges { node { plate driver { name } } } } }`);
  const VEHICLES_WITH_ALIASED_DRIVERS = graphql(`query FleetVehiclesWithAliasedDrivers {
    vehicles(first: 20) { edges { ... on VehicleEdge { node { ...FleetCrew } } } }
  }
  fragment FleetCrew on Vehicle { plate crew: driver { name } }`);
  const DRIVERS_WITH_VEHICLES = graphql(`query FleetDriversWithVehicles { drivers(first: 20) { edges { node { name vehicle { plate } } } } }`);

  it('a page and its to-one relation are one statement, however the query spells the relation', async () => {
    const fleet = await tenantWithAssignedFleet(5);
    await fleet.owner.request(VEHICLES_WITH_DRIVERS); // the tenant's first request may open connections
    const statementsOf = async (run: () => Promise<unknown>) => {
      const before = await tenantStatements();
      await run();
      return (await tenantStatements()) - before;
    };

    let vehicles: FleetVehiclesWithDriversQuery | undefined;
    expect(await statementsOf(async () => (vehicles = await fleet.owner.request(VEHICLES_WITH_DRIVERS)))).toBe(1);
    expect(vehicles?.vehicles.edges.map((edge) => edge.node)).toEqual(
      Array.from({ length: 5 }, (_, index) => ({ plate: `NP-${index}`, driver: { name: `Crew ${index}` } })),
    );
    let aliased: FleetVehiclesWithAliasedDriversQuery | undefined;
    expect(await statementsOf(async () => (aliased = await fleet.owner.request(VEHICLES_WITH_ALIASED_DRIVERS)))).toBe(1);
    expect(aliased?.vehicles.edges.map((edge) => edge.node)).toEqual(
      Array.from({ length: 5 }, (_, index) => ({ plate: `NP-${index}`, crew: { name: `Crew ${index}` } })),
    );
    let drivers: FleetDriversWithVehiclesQuery | undefined;
    expect(await statementsOf(async () => (drivers = await fleet.owner.request(DRIVERS_WITH_VEHICLES)))).toBe(1);
    expect(drivers?.drivers.edges.map((edge) => edge.node)).toEqual(
      Array.from({ length: 5 }, (_, index) => ({ name: `Crew ${index}`, vehicle: { plate: `NP-${index}` } })),
    );
  });

  it('the probe is sensitive: three requests count three times the statements of one', async () => {
    const vehicle = await createVehicle(owner);
    const before = await tenantStatements();
    await owner.request(GET_VEHICLE, { id: vehicle.id });
    const once = (await tenantStatements()) - before;
    await owner.request(GET_VEHICLE, { id: vehicle.id });
    await owner.request(GET_VEHICLE, { id: vehicle.id });
    const thrice = (await tenantStatements()) - before;
    expect(once).toBeGreaterThan(0);
    expect(thrice).toBe(once * 3);
  });
});
