import { TRIP_STATUSES, TRIP_TRANSITIONS } from '../../src/dispatch/trip-workflow';
import { quoteIdentifier } from '../../src/tenancy/tenant-naming';
import { graphql } from '../generated';
import { tenantSqlStatements } from '../support/raw-graphql';
import type { TripStatus } from '../generated/graphql';
import type { GraphQLClient } from '../support/graphql-request';
import { expectErrors, startTestServer, type TenantFixture, type TestServer, NO_BACKGROUND_JOBS } from '../support/test-server';

/*
 * Trips and their workflow over HTTP: the path from DRAFT to DELIVERED, every (from, to, role)
 * against the one transition table, the guards with their own codes, optimistic concurrency,
 * and two dispatchers racing for one truck. The database is read directly as the oracle.
 */

const ROLES = ['OWNER', 'ADMIN', 'MANAGER', 'MEMBER', 'VIEWER'] as const;
type Role = (typeof ROLES)[number];
const RANK: Record<Role, number> = { VIEWER: 1, MEMBER: 2, MANAGER: 3, ADMIN: 4, OWNER: 5 };

/** What the product promises (README "Trips"); the code's table must say the same. */
const KNOWN_TRANSITIONS = [
  'DRAFT->PLANNED MANAGER assigned',
  'PLANNED->DRAFT MANAGER',
  'PLANNED->DISPATCHED MANAGER assigned,vehicleActive,notOnTheRoad',
  'DISPATCHED->IN_TRANSIT MEMBER',
  'IN_TRANSIT->DELIVERED MEMBER stopsCompleted',
  'DRAFT->CANCELLED MANAGER reasonGiven',
  'PLANNED->CANCELLED MANAGER reasonGiven',
  'DISPATCHED->CANCELLED MANAGER reasonGiven',
  'IN_TRANSIT->CANCELLED MANAGER reasonGiven',
];

const CREATE_VEHICLE = graphql(`mutation TripsCreateVehicle($input: CreateVehicleInput!) { createVehicle(input: $input) { vehicle { id } } }`);
const CREATE_DRIVER = graphql(`mutation TripsCreateDriver($input: CreateDriverInput!) { createDriver(input: $input) { driver { id } } }`);
const UPDATE_VEHICLE_STATUS = graphql(`mutation TripsVehicleStatus($id: ID!, $status: VehicleStatus!) { updateVehicle(id: $id, input: { status: $status }) { vehicle { id status } } }`);
const CREATE_TRIP = graphql(`mutation TripsCreate($input: CreateTripInput!) {
  createTrip(input: $input) { trip { id reference status version origin destination vehicle { id } driver { id } plannedDepartureAt plannedArrivalAt cargoWeightKg } }
}`);
const UPDATE_TRIP = graphql(`mutation TripsUpdate($id: ID!, $input: UpdateTripInput!) { updateTrip(id: $id, input: $input) { trip { id status version vehicle { id } driver { id } cargoWeightKg } } }`);
const TRANSITION = graphql(`mutation TripsTransition($input: TransitionTripInput!) { transitionTrip(input: $input) { trip { id status version } } }`);
const TRIP = graphql(`query TripsTrip($id: ID!) {
  trip(id: $id) { id status version transitions { from to reason actorKind actorId at } }
}`);
const ME = graphql(`query TripsMe { me { id } }`);
const ADD_MEMBER = graphql(`mutation TripsAddMember($input: AddMemberInput!) { addMember(input: $input) { member { id } } }`);
const CREATE_API_KEY = graphql(`mutation TripsCreateApiKey($input: CreateApiKeyInput!) { createApiKey(input: $input) { apiKey { id } secret } }`);

let app: TestServer;
let tenant: TenantFixture;
const clients = new Map<Role, GraphQLClient>();
const userIds = new Map<Role, string>();
let counter = 0;
const unique = (prefix: string) => `${prefix}-${(counter += 1)}`;

const client = (role: Role) => clients.get(role) as GraphQLClient;

async function newVehicle(): Promise<string> {
  return (await tenant.owner.request(CREATE_VEHICLE, { input: { plate: unique('TRIP'), make: 'Scania', model: 'R450', year: 2022 } })).createVehicle.vehicle.id;
}

async function newDriver(): Promise<string> {
  return (await tenant.owner.request(CREATE_DRIVER, { input: { name: 'Trip Driver', licenseNumber: unique('TRIP-LIC') } })).createDriver.driver.id;
}

async function newTrip(assigned = true): Promise<{ id: string; vehicleId: string; driverId: string }> {
  const [vehicleId, driverId] = await Promise.all([newVehicle(), newDriver()]);
  const created = await client('MANAGER').request(CREATE_TRIP, {
    input: { reference: unique('ref'), origin: 'Rotterdam', destination: 'Lyon', ...(assigned ? { vehicleId, driverId } : {}) },
  });
  return { id: created.createTrip.trip.id, vehicleId, driverId };
}

const rowId = (globalId: string) => Buffer.from(globalId, 'base64url').toString('utf8').split(':')[1] as string;

/** The trip's row and how many transitions it has, read straight from the tenant's schema. */
async function tripInDatabase(id: string): Promise<{ status: string; version: number; transitions: number }> {
  const schema = quoteIdentifier(tenant.schemaName);
  const result = await app.server.services.platform.pool.query<{ status: string; version: number; transitions: number }>(
    `SELECT t.status::text AS status, t.version, (SELECT count(*)::int FROM ${schema}."TripTransition" x WHERE x."tripId" = t.id) AS transitions
       FROM ${schema}."Trip" t WHERE t.id = $1`,
    [rowId(id)],
  );
  const row = result.rows[0];
  if (!row) throw new Error(`trip ${id} not in the database`);
  return row;
}

/** Puts a trip in `status` behind the API's back (the test's own setup, as the superuser). */
async function forceStatus(id: string, status: TripStatus): Promise<void> {
  const schema = quoteIdentifier(tenant.schemaName);
  await app.server.services.platform.pool.query(`UPDATE ${schema}."Trip" SET status = $2::text::${schema}."TripStatus" WHERE id = $1`, [rowId(id), status]);
}

async function codesOf(request: Promise<unknown>): Promise<{ codes: string[]; extensions: Record<string, unknown>[] }> {
  const { errors } = await expectErrors(request);
  return { codes: errors.map((error) => error.extensions.code as string), extensions: errors.map((error) => error.extensions) };
}

beforeAll(async () => {
  app = await startTestServer({ env: NO_BACKGROUND_JOBS });
  tenant = await app.createTenant(undefined, 'ENTERPRISE');
  clients.set('OWNER', tenant.owner);
  userIds.set('OWNER', (await tenant.owner.request(ME)).me.id);
  for (const role of ROLES.filter((each) => each !== 'OWNER')) {
    const email = `${role.toLowerCase()}@trips.test`;
    const added = await tenant.owner.request(ADD_MEMBER, { input: { email, name: `${role} member`, password: 'trips-password-1', role } });
    userIds.set(role, added.addMember.member.id);
    clients.set(role, app.bearer(await app.login(tenant.slug, email, 'trips-password-1')));
  }
}, 60_000);

afterAll(async () => {
  await app?.close();
});

describe('the transition table', () => {
  it('is what the product promises', () => {
    expect(TRIP_TRANSITIONS.map((rule) => `${rule.from}->${rule.to} ${rule.role}${rule.guards.length ? ` ${rule.guards.join(',')}` : ''}`)).toEqual(KNOWN_TRANSITIONS);
  });

  it('every (from, to, role): the table decides, and nothing it does not list happens', async () => {
    const trip = await newTrip();
    const outcomes: string[] = [];
    let expectedTransitions = 0;
    for (const role of ROLES) {
      for (const from of TRIP_STATUSES) {
        for (const to of TRIP_STATUSES) {
          await forceStatus(trip.id, from);
          const before = await tripInDatabase(trip.id);
          const rule = TRIP_TRANSITIONS.find((each) => each.from === from && each.to === to);
          // VIEWER is refused by transitionTrip's own policy (MEMBER), before the table is read.
          const expected = RANK[role] < RANK.MEMBER ? 'FORBIDDEN' : !rule ? 'INVALID_TRANSITION' : RANK[role] < RANK[rule.role] ? 'FORBIDDEN' : 'OK';
          const attempt = client(role).request(TRANSITION, { input: { id: trip.id, to, reason: 'exhaustive walk' } });
          const outcome = expected === 'OK' ? ((await attempt).transitionTrip.trip.status === to ? 'OK' : 'wrong status') : (await codesOf(attempt)).codes.join(',');
          const after = await tripInDatabase(trip.id);
          if (expected === 'OK') expectedTransitions += 1;
          const stateAsExpected =
            expected === 'OK'
              ? after.status === to && after.version === before.version + 1 && after.transitions === before.transitions + 1
              : after.status === from && after.version === before.version && after.transitions === before.transitions;
          outcomes.push(`${role} ${from}->${to}: ${outcome}${stateAsExpected ? '' : ' (database not as expected)'}`);
          expect(`${role} ${from}->${to}: ${outcome}`).toBe(`${role} ${from}->${to}: ${expected}`);
          expect(stateAsExpected).toBe(true);
        }
      }
    }
    expect(outcomes).toHaveLength(ROLES.length * TRIP_STATUSES.length ** 2);
    // Every transition recorded is one the table lists, and there are exactly as many as allowed attempts.
    const recorded = await app.server.services.platform.pool.query<{ from: string; to: string }>(
      `SELECT "fromStatus"::text AS from, "toStatus"::text AS to FROM ${quoteIdentifier(tenant.schemaName)}."TripTransition" WHERE "tripId" = $1`,
      [rowId(trip.id)],
    );
    const listed = new Set(TRIP_TRANSITIONS.map((rule) => `${rule.from}->${rule.to}`));
    expect(recorded.rows.filter((row) => !listed.has(`${row.from}->${row.to}`))).toEqual([]);
    expect(recorded.rows).toHaveLength(expectedTransitions);
  }, 120_000);
});

describe('a trip from DRAFT to DELIVERED', () => {
  it('moves through the workflow; each transition is recorded with who, when, from, to and why', async () => {
    const trip = await newTrip();
    const steps: { to: TripStatus; by: Role }[] = [
      { to: 'PLANNED', by: 'MANAGER' },
      { to: 'DRAFT', by: 'ADMIN' },
      { to: 'PLANNED', by: 'MANAGER' },
      { to: 'DISPATCHED', by: 'MANAGER' },
      { to: 'IN_TRANSIT', by: 'MEMBER' },
      { to: 'DELIVERED', by: 'MEMBER' },
    ];
    let version = 1;
    for (const [index, step] of steps.entries()) {
      const moved = await client(step.by).request(TRANSITION, { input: { id: trip.id, to: step.to, reason: `step ${index}`, expectedVersion: version } });
      version += 1;
      expect(moved.transitionTrip.trip).toEqual({ id: trip.id, status: step.to, version });
    }
    const read = await client('VIEWER').request(TRIP, { id: trip.id });
    const transitions = read.trip?.transitions ?? [];
    expect(transitions.map(({ from, to, reason, actorKind, actorId }) => ({ from, to, reason, actorKind, actorId }))).toEqual(
      steps.map((step, index) => ({ from: index === 0 ? 'DRAFT' : steps[index - 1]?.to, to: step.to, reason: `step ${index}`, actorKind: 'USER', actorId: userIds.get(step.by) })),
    );
    const times = transitions.map((transition) => Date.parse(transition.at));
    expect(times).toEqual([...times].sort((a, b) => a - b));
  });

  it("an API key's transition is recorded as the key's", async () => {
    const trip = await newTrip();
    const key = await tenant.owner.request(CREATE_API_KEY, { input: { name: unique('dispatch-key'), role: 'MANAGER' } });
    const partner = app.bearer(key.createApiKey.secret);
    await partner.request(TRANSITION, { input: { id: trip.id, to: 'PLANNED' } });
    const read = await tenant.owner.request(TRIP, { id: trip.id });
    expect(read.trip?.transitions.map(({ actorKind, actorId }) => ({ actorKind, actorId }))).toEqual([{ actorKind: 'API_KEY', actorId: key.createApiKey.apiKey.id }]);
  });
});

describe('refusals say why and change nothing', () => {
  it('INVALID_TRANSITION names the allowed targets', async () => {
    const trip = await newTrip();
    const refused = await codesOf(client('OWNER').request(TRANSITION, { input: { id: trip.id, to: 'DELIVERED' } }));
    expect(refused.codes).toEqual(['INVALID_TRANSITION']);
    expect(refused.extensions[0]).toMatchObject({ from: 'DRAFT', to: 'DELIVERED', allowed: ['PLANNED', 'CANCELLED'] });
    await forceStatus(trip.id, 'DELIVERED');
    const final = await codesOf(client('OWNER').request(TRANSITION, { input: { id: trip.id, to: 'CANCELLED', reason: 'too late' } }));
    expect(final.extensions[0]).toMatchObject({ code: 'INVALID_TRANSITION', allowed: [] });
    expect(await tripInDatabase(trip.id)).toMatchObject({ status: 'DELIVERED', version: 1, transitions: 0 });
  });

  it('a stale expectedVersion answers CONFLICT, for a transition and for an update', async () => {
    const trip = await newTrip();
    await client('MANAGER').request(TRANSITION, { input: { id: trip.id, to: 'PLANNED', expectedVersion: 1 } });
    const stale = await codesOf(client('MANAGER').request(TRANSITION, { input: { id: trip.id, to: 'DRAFT', expectedVersion: 1 } }));
    expect(stale.codes).toEqual(['CONFLICT']);
    expect(stale.extensions[0]).toMatchObject({ currentVersion: 2 });
    const staleUpdate = await codesOf(client('MANAGER').request(UPDATE_TRIP, { id: trip.id, input: { cargoWeightKg: 5, expectedVersion: 1 } }));
    expect(staleUpdate.codes).toEqual(['CONFLICT']);
    expect(await tripInDatabase(trip.id)).toMatchObject({ status: 'PLANNED', version: 2, transitions: 1 });
    const updated = await client('MANAGER').request(UPDATE_TRIP, { id: trip.id, input: { cargoWeightKg: 5, expectedVersion: 2 } });
    expect(updated.updateTrip.trip).toMatchObject({ version: 3, cargoWeightKg: 5 });
  });

  it('guards answer their own codes: TRIP_UNASSIGNED, VEHICLE_UNAVAILABLE, VEHICLE_BUSY, DRIVER_BUSY, REASON_REQUIRED', async () => {
    const unassigned = await newTrip(false);
    expect((await codesOf(client('MANAGER').request(TRANSITION, { input: { id: unassigned.id, to: 'PLANNED' } }))).codes).toEqual(['TRIP_UNASSIGNED']);
    for (const reason of [undefined, '   ']) {
      expect((await codesOf(client('MANAGER').request(TRANSITION, { input: { id: unassigned.id, to: 'CANCELLED', reason } }))).codes).toEqual(['REASON_REQUIRED']);
    }
    expect(await tripInDatabase(unassigned.id)).toMatchObject({ status: 'DRAFT', version: 1, transitions: 0 });

    const inMaintenance = await newTrip();
    await client('MANAGER').request(TRANSITION, { input: { id: inMaintenance.id, to: 'PLANNED' } });
    await tenant.owner.request(UPDATE_VEHICLE_STATUS, { id: inMaintenance.vehicleId, status: 'MAINTENANCE' });
    expect((await codesOf(client('MANAGER').request(TRANSITION, { input: { id: inMaintenance.id, to: 'DISPATCHED' } }))).codes).toEqual(['VEHICLE_UNAVAILABLE']);
    await tenant.owner.request(UPDATE_VEHICLE_STATUS, { id: inMaintenance.vehicleId, status: 'ACTIVE' });

    // Dispatched: its vehicle and driver are on the road, for any other trip.
    const onTheRoad = await newTrip();
    for (const to of ['PLANNED', 'DISPATCHED'] as const) await client('MANAGER').request(TRANSITION, { input: { id: onTheRoad.id, to } });
    const sameVehicle = await newTrip();
    await client('MANAGER').request(UPDATE_TRIP, { id: sameVehicle.id, input: { vehicleId: onTheRoad.vehicleId } });
    await client('MANAGER').request(TRANSITION, { input: { id: sameVehicle.id, to: 'PLANNED' } });
    expect((await codesOf(client('MANAGER').request(TRANSITION, { input: { id: sameVehicle.id, to: 'DISPATCHED' } }))).codes).toEqual(['VEHICLE_BUSY']);
    const sameDriver = await newTrip();
    await client('MANAGER').request(UPDATE_TRIP, { id: sameDriver.id, input: { driverId: onTheRoad.driverId } });
    await client('MANAGER').request(TRANSITION, { input: { id: sameDriver.id, to: 'PLANNED' } });
    expect((await codesOf(client('MANAGER').request(TRANSITION, { input: { id: sameDriver.id, to: 'DISPATCHED' } }))).codes).toEqual(['DRIVER_BUSY']);
    // Once the first trip is delivered, the vehicle is free again.
    for (const to of ['IN_TRANSIT', 'DELIVERED'] as const) await client('MEMBER').request(TRANSITION, { input: { id: onTheRoad.id, to } });
    expect((await client('MANAGER').request(TRANSITION, { input: { id: sameVehicle.id, to: 'DISPATCHED' } })).transitionTrip.trip.status).toBe('DISPATCHED');
  });

  it("a dispatched trip's plan is fixed, and a PLANNED trip keeps its vehicle and driver", async () => {
    const trip = await newTrip();
    await client('MANAGER').request(TRANSITION, { input: { id: trip.id, to: 'PLANNED' } });
    expect((await codesOf(client('MANAGER').request(UPDATE_TRIP, { id: trip.id, input: { driverId: null } }))).codes).toEqual(['TRIP_UNASSIGNED']);
    const window = await codesOf(client('MANAGER').request(UPDATE_TRIP, { id: trip.id, input: { plannedDepartureAt: '2026-12-04T10:00:00Z', plannedArrivalAt: '2026-12-04T09:00:00Z' } }));
    expect(window.codes).toEqual(['BAD_USER_INPUT']);
    expect(window.extensions[0]).toMatchObject({ field: 'plannedArrivalAt' });
    await client('MANAGER').request(TRANSITION, { input: { id: trip.id, to: 'DISPATCHED' } });
    expect((await codesOf(client('MANAGER').request(UPDATE_TRIP, { id: trip.id, input: { cargoWeightKg: 1 } }))).codes).toEqual(['CONFLICT']);
    expect(await tripInDatabase(trip.id)).toMatchObject({ status: 'DISPATCHED', version: 3 });
  });

  it('a duplicate reference is a CONFLICT on reference; a vehicle or driver on the road cannot be deleted, one with past trips can', async () => {
    const created = await client('MANAGER').request(CREATE_TRIP, { input: { reference: 'dup 1', origin: 'A', destination: 'B' } });
    expect(created.createTrip.trip.reference).toBe('DUP 1');
    const duplicate = await codesOf(client('MANAGER').request(CREATE_TRIP, { input: { reference: ' DUP  1 ', origin: 'A', destination: 'B' } }));
    expect(duplicate).toMatchObject({ codes: ['CONFLICT'], extensions: [expect.objectContaining({ field: 'reference' })] });

    const deleteVehicle = graphql(`mutation TripsDeleteVehicle($id: ID!) { deleteVehicle(id: $id) { deletedId } }`);
    const deleteDriver = graphql(`mutation TripsDeleteDriver($id: ID!) { deleteDriver(id: $id) { deletedId } }`);
    const onTheRoad = await newTrip();
    for (const to of ['PLANNED', 'DISPATCHED'] as const) await client('MANAGER').request(TRANSITION, { input: { id: onTheRoad.id, to } });
    expect((await codesOf(tenant.owner.request(deleteVehicle, { id: onTheRoad.vehicleId }))).codes).toEqual(['CONFLICT']);
    expect((await codesOf(tenant.owner.request(deleteDriver, { id: onTheRoad.driverId }))).codes).toEqual(['CONFLICT']);
    const deleteTrip = graphql(`mutation TripsDeleteTrip($id: ID!) { deleteTrip(id: $id) { deletedId } }`);
    expect((await codesOf(tenant.owner.request(deleteTrip, { id: onTheRoad.id }))).codes).toEqual(['CONFLICT']);

    // A trip not on the road keeps pointing at its (soft-deleted) vehicle.
    const planned = await newTrip();
    await tenant.owner.request(deleteVehicle, { id: planned.vehicleId });
    const read = await tenant.owner.request(graphql(`query TripsVehicleOfTrip($id: ID!) { trip(id: $id) { vehicle { id deletedAt } } }`), { id: planned.id });
    expect(read.trip?.vehicle?.id).toBe(planned.vehicleId);
    expect(read.trip?.vehicle?.deletedAt).toEqual(expect.any(String));
  });
});

describe('two dispatchers racing for one truck', () => {
  it('never both win: the database refuses the second (VEHICLE_BUSY), round after round', async () => {
    for (let round = 0; round < 8; round += 1) {
      const vehicleId = await newVehicle();
      const trips = await Promise.all(
        [0, 1].map(async () => {
          const created = await client('MANAGER').request(CREATE_TRIP, { input: { reference: unique('race'), origin: 'A', destination: 'B', vehicleId, driverId: await newDriver() } });
          await client('MANAGER').request(TRANSITION, { input: { id: created.createTrip.trip.id, to: 'PLANNED' } });
          return created.createTrip.trip.id;
        }),
      );
      const results = await Promise.allSettled(trips.map((id, index) => client(index === 0 ? 'MANAGER' : 'ADMIN').request(TRANSITION, { input: { id, to: 'DISPATCHED' } })));
      expect(results.filter((result) => result.status === 'fulfilled')).toHaveLength(1);
      const loser = results.find((result) => result.status === 'rejected') as PromiseRejectedResult;
      expect(String(loser.reason)).toContain('VEHICLE_BUSY');
      const onRoad = await app.server.services.platform.pool.query(
        `SELECT count(*)::int AS n FROM ${quoteIdentifier(tenant.schemaName)}."Trip" WHERE "vehicleId" = $1 AND status IN ('DISPATCHED', 'IN_TRANSIT')`,
        [rowId(vehicleId)],
      );
      expect(onRoad.rows[0]).toEqual({ n: 1 });
      if (round === 0) {
        // The database's own rule, whatever the application checks: a second trip of that vehicle on the road is refused.
        const schema = quoteIdentifier(tenant.schemaName);
        const other = trips.find((_, index) => results[index]?.status === 'rejected') as string;
        await expect(
          app.server.services.platform.pool.query(`UPDATE ${schema}."Trip" SET status = 'IN_TRANSIT' WHERE id = $1`, [rowId(other)]),
        ).rejects.toThrow(/Trip_vehicleId_on_the_road_key/);
      }
    }
  });
});

const LIST = graphql(`query TripsList($filter: TripFilter, $first: Int, $after: String) {
  trips(first: $first, after: $after, filter: $filter) { totalCount pageInfo { hasNextPage endCursor } edges { node { id reference status } } }
}`);
const VEHICLES_WITH_TRIPS = graphql(`query TripsOfVehicles($first: Int!) {
  vehicles(first: $first) { edges { node { id trips(first: 2) { id reference vehicle { id } driver { id trips(first: 1) { id } } } } } }
}`);

describe('lists', () => {
  let fleet: TenantFixture;
  let manager: GraphQLClient;
  const created: { id: string; reference: string; vehicleId: string; status: string }[] = [];

  beforeAll(async () => {
    fleet = await app.createTenant(undefined, 'ENTERPRISE');
    manager = fleet.owner;
    for (let index = 0; index < 6; index += 1) {
      const vehicleId = (await manager.request(CREATE_VEHICLE, { input: { plate: `LIST-${index}`, make: 'DAF', model: 'XF', year: 2021 } })).createVehicle.vehicle.id;
      const driverId = (await manager.request(CREATE_DRIVER, { input: { name: `List driver ${index}`, licenseNumber: `LIST-LIC-${index}` } })).createDriver.driver.id;
      for (const leg of [0, 1, 2]) {
        const trip = await manager.request(CREATE_TRIP, {
          input: {
            reference: `LIST-${index}-${leg}`,
            origin: leg === 0 ? 'Hamburg' : 'Antwerp',
            destination: 'Milan',
            vehicleId,
            driverId,
            plannedDepartureAt: `2026-12-0${leg + 1}T08:00:00Z`,
          },
        });
        if (leg === 2) await manager.request(TRANSITION, { input: { id: trip.createTrip.trip.id, to: 'CANCELLED', reason: 'not needed' } });
        created.push({ id: trip.createTrip.trip.id, reference: `LIST-${index}-${leg}`, vehicleId, status: leg === 2 ? 'CANCELLED' : 'DRAFT' });
      }
    }
  }, 60_000);

  it('filters by several statuses, vehicle, departure range and search, and pages with cursors', async () => {
    const references = async (filter: object) => (await manager.request(LIST, { filter, first: 100 })).trips.edges.map((edge) => edge.node.reference).sort();
    expect(await references({ status: ['CANCELLED'] })).toEqual(created.filter((trip) => trip.status === 'CANCELLED').map((trip) => trip.reference).sort());
    expect(await references({ status: ['CANCELLED', 'DRAFT'] })).toHaveLength(created.length);
    expect(await references({ vehicleId: created[0]?.vehicleId })).toEqual(['LIST-0-0', 'LIST-0-1', 'LIST-0-2']);
    expect(await references({ departureFrom: '2026-12-02T00:00:00Z', departureTo: '2026-12-03T00:00:00Z' })).toEqual(created.filter((trip) => trip.reference.endsWith('-1')).map((trip) => trip.reference).sort());
    expect(await references({ search: 'hamburg' })).toEqual(created.filter((trip) => trip.reference.endsWith('-0')).map((trip) => trip.reference).sort());
    expect(await references({ search: 'list-3-' })).toEqual(['LIST-3-0', 'LIST-3-1', 'LIST-3-2']);
    const first = await manager.request(LIST, { first: 10 });
    expect(first.trips).toMatchObject({ totalCount: created.length, pageInfo: { hasNextPage: true } });
    const second = await manager.request(LIST, { first: 10, after: first.trips.pageInfo.endCursor });
    expect([...first.trips.edges, ...second.trips.edges].map((edge) => edge.node.id)).toEqual(created.map((trip) => trip.id));
  });

  it("vehicles' and drivers' trips come batched: the same statements for 2 vehicles as for 6", async () => {
    const statements = () => tenantSqlStatements(app.url);
    const measure = async (first: number) => {
      const before = await statements();
      const result = await manager.request(VEHICLES_WITH_TRIPS, { first });
      return { statements: (await statements()) - before, result };
    };
    const two = await measure(2);
    const six = await measure(6);
    expect(six.statements).toBe(two.statements);
    // The page, its vehicles' trips, those trips' vehicles and drivers... each one statement.
    expect(six.statements).toBeLessThanOrEqual(5);
    const firstVehicle = six.result.vehicles.edges[0]?.node;
    // Newest first, two of them, each pointing back at its vehicle.
    expect(firstVehicle?.trips.map((trip) => trip.reference)).toEqual(['LIST-0-2', 'LIST-0-1']);
    expect(firstVehicle?.trips.every((trip) => trip.vehicle?.id === firstVehicle.id)).toBe(true);
  });
});
