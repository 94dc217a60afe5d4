import { openTestPool } from '../support/test-database';
import { createLogger } from '../../src/observability/logger';
import { PeriodicJob } from '../../src/tenant-jobs/periodic-job';
import { quoteIdentifier } from '../../src/tenancy/tenant-naming';
import { graphql } from '../generated';
import type { GraphQLClient } from '../support/graphql-request';
import { eventually } from '../support/raw-graphql';
import { startTestServer, type TenantFixture, type TestServer } from '../support/test-server';

/*
 * The retention purge over HTTP (the platform admin's `purgeDeletedRecords`) against real
 * tenants: records deleted longer ago than the retention go for good with their history, each
 * leaving a SYSTEM entry in the audit log; younger ones, live ones, and a deleted vehicle a trip
 * still names stay; a dry run counts and changes nothing; a run limited to tenant A leaves B's
 * old deleted records alone; `after` resumes a run past the tenants it already did. The periodic
 * runner takes turns across instances through an advisory lock.
 */

let app: TestServer;
let admin: GraphQLClient;
let A: TenantFixture;
let B: TenantFixture;

const CREATE_VEHICLE = graphql(`mutation PurgeCreateVehicle($input: CreateVehicleInput!) { createVehicle(input: $input) { vehicle { id } } }`);
const DELETE_VEHICLE = graphql(`mutation PurgeDeleteVehicle($id: ID!) { deleteVehicle(id: $id) { deletedId } }`);
const CREATE_DRIVER = graphql(`mutation PurgeCreateDriver($input: CreateDriverInput!) { createDriver(input: $input) { driver { id } } }`);
const CREATE_TRIP = graphql(`mutation PurgeCreateTrip($input: CreateTripInput!) { createTrip(input: $input) { trip { id } } }`);
const DELETE_TRIP = graphql(`mutation PurgeDeleteTrip($id: ID!) { deleteTrip(id: $id) { deletedId } }`);
const OPEN_MAINTENANCE = graphql(`mutation PurgeOpenMaintenance($input: OpenMaintenanceInput!) { openMaintenance(input: $input) { maintenanceRecord { id } } }`);
const ALL_VEHICLES = graphql(`query PurgeAllVehicles { vehicles(first: 100, includeDeleted: true) { edges { node { id } } } }`);
const AUDIT = graphql(`query PurgeAudit($id: String!) { auditEvents(first: 10, filter: { targetId: $id }) { edges { node { action actorKind actorId } } } }`);
const PURGE = graphql(`mutation PurgeDeleted($input: PurgeDeletedRecordsInput) {
  purgeDeletedRecords(input: $input) { retentionDays dryRun resumeAfter results { tenantId slug status trips drivers vehicles error } }
}`);

let counter = 0;
async function vehicle(tenant: TenantFixture): Promise<string> {
  counter += 1;
  return (await tenant.owner.request(CREATE_VEHICLE, { input: { plate: `PRG-${counter}`, make: 'Scania', model: 'R', year: 2019 } })).createVehicle.vehicle.id;
}

/** Moves a record's deletion back in time, as if it had been deleted `days` ago. */
async function deletedDaysAgo(tenant: TenantFixture, table: 'Vehicle' | 'Driver' | 'Trip', globalId: string, days: number): Promise<void> {
  const id = Buffer.from(globalId, 'base64url').toString('utf8').split(':')[1];
  const result = await app.server.services.platform.pool.query(
    `UPDATE ${quoteIdentifier(tenant.schemaName)}."${table}" SET "deletedAt" = now() - make_interval(days => $2) WHERE "id" = $1 AND "deletedAt" IS NOT NULL`,
    [id, days],
  );
  expect(result.rowCount).toBe(1);
}

async function rowCount(tenant: TenantFixture, sql: string, values: unknown[] = []): Promise<number> {
  const result = await app.server.services.platform.pool.query<{ n: number }>(sql.replaceAll('$schema', quoteIdentifier(tenant.schemaName)), values);
  return result.rows[0]?.n ?? 0;
}

const rawId = (globalId: string) => Buffer.from(globalId, 'base64url').toString('utf8').split(':')[1] as string;

beforeAll(async () => {
  app = await startTestServer();
  admin = await app.admin();
  A = await app.createTenant();
  B = await app.createTenant();
}, 60_000);

afterAll(async () => {
  await app?.close();
});

describe('retention purge', () => {
  it('purges what was deleted before the retention, with its history, and keeps the rest', async () => {
    const old = await vehicle(A);
    await A.owner.request(OPEN_MAINTENANCE, { input: { vehicleId: old, kind: 'SERVICE', description: 'Before it was sold' } });
    await app.server.services.platform.pool.query(`UPDATE ${quoteIdentifier(A.schemaName)}."MaintenanceRecord" SET "closedAt" = now() WHERE "vehicleId" = $1`, [rawId(old)]);
    await app.server.services.platform.pool.query(`UPDATE ${quoteIdentifier(A.schemaName)}."Vehicle" SET "status" = 'ACTIVE' WHERE "id" = $1`, [rawId(old)]);
    await A.owner.request(DELETE_VEHICLE, { id: old });
    await deletedDaysAgo(A, 'Vehicle', old, 31);
    const young = await vehicle(A);
    await A.owner.request(DELETE_VEHICLE, { id: young });
    await deletedDaysAgo(A, 'Vehicle', young, 29);
    const live = await vehicle(A);
    // A deleted vehicle that a (younger) deleted trip still names stays until that trip goes.
    const named = await vehicle(A);
    const driver = (await A.owner.request(CREATE_DRIVER, { input: { name: 'Purge Driver', licenseNumber: `PRG-LIC-${counter}` } })).createDriver.driver.id;
    const trip = (await A.owner.request(CREATE_TRIP, { input: { reference: `PRG-TRIP-${counter}`, origin: 'A', destination: 'B', vehicleId: named, driverId: driver } })).createTrip.trip.id;
    await A.owner.request(DELETE_TRIP, { id: trip });
    await A.owner.request(DELETE_VEHICLE, { id: named });
    await deletedDaysAgo(A, 'Vehicle', named, 40);
    await deletedDaysAgo(A, 'Trip', trip, 10);
    // B has an old deleted vehicle too; the runs below name A only.
    const bOld = await vehicle(B);
    await B.owner.request(DELETE_VEHICLE, { id: bOld });
    await deletedDaysAgo(B, 'Vehicle', bOld, 90);

    const dry = (await admin.request(PURGE, { input: { tenantIds: [A.id], dryRun: true } })).purgeDeletedRecords;
    expect(dry).toMatchObject({ retentionDays: 30, dryRun: true, results: [{ tenantId: A.id, status: 'DONE', vehicles: 1, drivers: 0, trips: 0 }] });
    expect((await A.owner.request(ALL_VEHICLES)).vehicles.edges.map((edge) => edge.node.id)).toContain(old);

    const done = (await admin.request(PURGE, { input: { tenantIds: [A.id] } })).purgeDeletedRecords;
    expect(done.results).toEqual([{ tenantId: A.id, slug: A.slug, status: 'DONE', vehicles: 1, drivers: 0, trips: 0, error: null }]);
    const left = (await A.owner.request(ALL_VEHICLES)).vehicles.edges.map((edge) => edge.node.id);
    expect(left).not.toContain(old);
    expect(left).toEqual(expect.arrayContaining([young, live, named]));
    expect(await rowCount(A, `SELECT count(*)::int AS n FROM $schema."RecordChange" WHERE "recordId" = $1`, [rawId(old)])).toBe(0);
    expect(await rowCount(A, `SELECT count(*)::int AS n FROM $schema."MaintenanceRecord" WHERE "vehicleId" = $1`, [rawId(old)])).toBe(0);
    expect(await rowCount(A, `SELECT count(*)::int AS n FROM $schema."RecordChange" WHERE "recordId" = $1`, [rawId(young)])).toBeGreaterThan(0);
    // The audit log keeps that it went, and who did it: the system.
    const audit = (await A.owner.request(AUDIT, { id: old })).auditEvents.edges.map((edge) => edge.node);
    expect(audit[0]).toEqual({ action: 'vehicle.purged', actorKind: 'SYSTEM', actorId: null });
    // B's old deleted vehicle is untouched: the run named A only.
    expect(await rowCount(B, `SELECT count(*)::int AS n FROM $schema."Vehicle" WHERE "id" = $1`, [rawId(bOld)])).toBe(1);

    // Once the trip that names it is old enough, trip and vehicle go in one run (trip first).
    await deletedDaysAgo(A, 'Trip', trip, 31);
    const next = (await admin.request(PURGE, { input: { tenantIds: [A.id] } })).purgeDeletedRecords;
    expect(next.results[0]).toMatchObject({ trips: 1, vehicles: 1 });
    // Nothing left to purge: a second run is a no-op.
    expect((await admin.request(PURGE, { input: { tenantIds: [A.id] } })).purgeDeletedRecords.results[0]).toMatchObject({ trips: 0, drivers: 0, vehicles: 0 });
  });

  it('removes finished events fanned out before the event retention with their deliveries; unfinished or younger ones, audit entries and in-app notifications stay', async () => {
    const C = await app.createTenant();
    const vehicles = [await vehicle(C), await vehicle(C), await vehicle(C)];
    const [finished, unfinished, young] = vehicles.map(rawId) as [string, string, string];
    // vehicle.created is an event whose id is its audit entry's; wait for the fan-out to stamp all three.
    const schema = quoteIdentifier(C.schemaName);
    const pool = app.server.services.platform.pool;
    const eventOf = async (vehicleId: string): Promise<string> => {
      const row = await pool.query<{ id: string }>(`SELECT e."id" FROM ${schema}."DomainEvent" e JOIN ${schema}."AuditEvent" a ON a."id" = e."id" WHERE a."targetId" = $1 AND e."dispatchedAt" IS NOT NULL`, [vehicleId]);
      return row.rows[0]?.id as string;
    };
    const events = await eventually(async () => {
      const ids = await Promise.all([finished, unfinished, young].map(eventOf));
      return ids.every(Boolean) ? ids : undefined;
    }, 10_000, 100);
    const [finishedEvent, unfinishedEvent, youngEvent] = events as [string, string, string];
    await pool.query(`UPDATE ${schema}."DomainEvent" SET "dispatchedAt" = now() - interval '31 days' WHERE "id" = ANY($1::uuid[])`, [[finishedEvent, unfinishedEvent]]);
    // One delivery that ended, one still being retried (a webhook that keeps failing), one on the
    // young event. The retry is due in an hour: the server's own delivery worker, running beside
    // this test, would otherwise take it now and end it (its endpoint does not exist).
    const delivery = (eventId: string, status: string, target: string) =>
      pool.query(
        `INSERT INTO ${schema}."NotificationDelivery" ("id", "eventId", "channel", "target", "status", "nextAttemptAt", "updatedAt")
         VALUES (gen_random_uuid(), $1, 'WEBHOOK', $3, $2::${schema}."DeliveryStatus", now() + interval '1 hour', now())`,
        [eventId, status, target],
      );
    await delivery(finishedEvent, 'DELIVERED', 'endpoint-1');
    await delivery(finishedEvent, 'DEAD', 'endpoint-2');
    await delivery(unfinishedEvent, 'RETRYING', 'endpoint-1');
    await delivery(youngEvent, 'DELIVERED', 'endpoint-1');
    // A member's in-app notification of the finished event: their inbox, not the outbox.
    await pool.query(
      `INSERT INTO ${schema}."Notification" ("id", "userId", "eventId", "type", "title", "body", "subjectType", "subjectId", "occurredAt") VALUES (gen_random_uuid(), gen_random_uuid(), $1, 'vehicle.created', 'Vehicle added', 'A vehicle was added', 'Vehicle', $2, now())`,
      [finishedEvent, finished],
    );
    const count = (table: string, eventId: string, column = 'eventId') => rowCount(C, `SELECT count(*)::int AS n FROM $schema."${table}" WHERE "${column}" = $1`, [eventId]);

    const PURGE_EVENTS = graphql(`mutation PurgeEvents($input: PurgeDeletedRecordsInput) {
      purgeDeletedRecords(input: $input) { eventRetentionDays results { tenantId status events vehicles } }
    }`);
    const dry = (await admin.request(PURGE_EVENTS, { input: { tenantIds: [C.id], dryRun: true } })).purgeDeletedRecords;
    expect(dry).toEqual({ eventRetentionDays: 30, results: [{ tenantId: C.id, status: 'DONE', events: 1, vehicles: 0 }] });
    expect(await count('DomainEvent', finishedEvent, 'id')).toBe(1);

    const done = (await admin.request(PURGE_EVENTS, { input: { tenantIds: [C.id] } })).purgeDeletedRecords;
    expect(done.results).toEqual([{ tenantId: C.id, status: 'DONE', events: 1, vehicles: 0 }]);
    expect(await count('DomainEvent', finishedEvent, 'id')).toBe(0);
    expect(await count('NotificationDelivery', finishedEvent)).toBe(0);
    // Still being delivered, or not old enough: kept, deliveries and all.
    expect(await count('DomainEvent', unfinishedEvent, 'id')).toBe(1);
    expect(await count('NotificationDelivery', unfinishedEvent)).toBe(1);
    expect(await count('DomainEvent', youngEvent, 'id')).toBe(1);
    expect(await count('NotificationDelivery', youngEvent)).toBe(1);
    // The audit entry the event was made from stays: the audit log is append-only.
    expect(await count('AuditEvent', finishedEvent, 'id')).toBe(1);
    expect(await count('Notification', finishedEvent)).toBe(1);
    // Nothing else is due: a second run removes nothing.
    expect((await admin.request(PURGE_EVENTS, { input: { tenantIds: [C.id] } })).purgeDeletedRecords.results[0]?.events).toBe(0);
  });

  it('walks every tenant in id order and resumes after a given tenant', async () => {
    const all = (await admin.request(PURGE, { input: { dryRun: true } })).purgeDeletedRecords;
    const ids = all.results.map((result) => result.tenantId);
    expect(ids).toEqual([...ids].sort());
    expect(ids).toEqual(expect.arrayContaining([A.id, B.id]));
    expect(all.resumeAfter).toBe(ids.at(-1));
    const first = ids[0] as string;
    const resumed = (await admin.request(PURGE, { input: { dryRun: true, after: first } })).purgeDeletedRecords;
    expect(resumed.results.map((result) => result.tenantId)).toEqual(ids.slice(1));
  });

  it('runs on one instance at a time', async () => {
    const pool = openTestPool({ connectionString: app.databaseUrl, max: 4 });
    try {
      let release!: () => void;
      const held = new Promise<void>((resolve) => (release = resolve));
      const logger = createLogger('silent');
      const lock = [0x7e57, 1] as const;
      let runs = 0;
      const first = new PeriodicJob({ name: 'probe', pool, lock, intervalMs: 0, logger, work: async () => { runs += 1; await held; } });
      const second = new PeriodicJob({ name: 'probe', pool, lock, intervalMs: 0, logger, work: async () => void (runs += 1) });
      const running = first.runOnce();
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(await second.runOnce()).toBe(false);
      release();
      expect(await running).toBe(true);
      expect(await second.runOnce()).toBe(true);
      expect(runs).toBe(2);
    } finally {
      await pool.end();
    }
  });
});
