import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { toGlobalId } from '../../src/graphql/global-id';
import { graphql } from '../generated';
import type { GraphQLClient } from '../support/graphql-request';
import { eventually } from '../support/raw-graphql';
import { startTestServer, type TenantFixture, type TestServer } from '../support/test-server';

/*
 * Events and in-app notifications over HTTP, with the real delivery worker (pg-boss in the test
 * database): a change commits an event, the worker fans it out to the members it concerns
 * (routing, mutes, the author left out) and the member reads, counts and marks their own.
 */

let app: TestServer;
let tenant: TenantFixture;
let manager: GraphQLClient;
let managerId: string;
/** A MEMBER who mutes nothing: when they have been told of an event, it has been fanned out. */
let watcher: GraphQLClient;

const ADD_MEMBER = graphql(`mutation NotifAddMember($input: AddMemberInput!) { addMember(input: $input) { member { id } } }`);
const CREATE_TRIP = graphql(`mutation NotifCreateTrip($input: CreateTripInput!) { createTrip(input: $input) { trip { id } } }`);
const CREATE_VEHICLE = graphql(`mutation NotifCreateVehicle($input: CreateVehicleInput!) { createVehicle(input: $input) { vehicle { id } } }`);
const CREATE_DRIVER = graphql(`mutation NotifCreateDriver($input: CreateDriverInput!) { createDriver(input: $input) { driver { id } } }`);
const TRANSITION = graphql(`mutation NotifTransition($input: TransitionTripInput!) { transitionTrip(input: $input) { trip { status } } }`);
const NOTIFICATIONS = graphql(`query NotifList($unreadOnly: Boolean) {
  notifications(first: 50, unreadOnly: $unreadOnly) { totalCount edges { node { id type title body subjectType subjectId readAt occurredAt } } }
  unreadNotificationCount
}`);
const MARK_READ = graphql(`mutation NotifMarkRead($ids: [ID!]!) { markNotificationsRead(ids: $ids) { marked unreadCount } }`);
const DELIVERIES = graphql(`query NotifDeliveries($filter: NotificationDeliveryFilter) {
  notificationDeliveries(first: 100, filter: $filter) { totalCount edges { node { id eventId eventType channel target status attempts lastError deliveredAt nextAttemptAt } } }
}`);
const MUTE = graphql(`mutation NotifMute($eventTypes: [EventType!]!, $muted: Boolean!) { setNotificationsMuted(eventTypes: $eventTypes, muted: $muted) { mutedEventTypes } }`);
const ROUTES = graphql(`mutation NotifRoutes($routes: [NotificationRouteInput!]!) { setNotificationRoutes(routes: $routes) { eventType channel enabled isDefault } }`);
const READ_ROUTES = graphql(`query NotifReadRoutes { notificationRoutes { eventType channel enabled isDefault } }`);

let counter = 0;
async function trip(by: GraphQLClient): Promise<{ id: string; reference: string }> {
  counter += 1;
  const reference = `NTF-${counter}`;
  const id = (await by.request(CREATE_TRIP, { input: { reference, origin: 'Lyon', destination: 'Turin' } })).createTrip.trip.id;
  return { id, reference };
}

async function notificationsOf(client: GraphQLClient, where: (node: { type: string; subjectId: string }) => boolean, count = 1) {
  return eventually(async () => {
    const read = await client.request(NOTIFICATIONS, {});
    const found = read.notifications.edges.map((edge) => edge.node).filter(where);
    return found.length >= count ? { found, read } : undefined;
  }, 10_000, 100);
}

beforeAll(async () => {
  // Retry wake-ups and late checks are jobs with a start time: look for them often.
  app = await startTestServer({ env: { JOB_POLL_INTERVAL_SECONDS: '0.5' } });
  tenant = await app.createTenant(undefined, 'ENTERPRISE');
  const email = `manager@${tenant.slug}.test`;
  managerId = (await tenant.owner.request(ADD_MEMBER, { input: { email, name: 'Manager', password: 'manager-password-1', role: 'MANAGER' } })).addMember.member.id;
  manager = app.bearer(await app.login(tenant.slug, email, 'manager-password-1'));
  const watcherEmail = `watcher@${tenant.slug}.test`;
  await tenant.owner.request(ADD_MEMBER, { input: { email: watcherEmail, name: 'Watcher', password: 'watcher-password-1', role: 'MEMBER' } });
  watcher = app.bearer(await app.login(tenant.slug, watcherEmail, 'watcher-password-1'));
}, 60_000);

afterAll(async () => {
  await app?.close();
});

describe('in-app notifications', () => {
  it('a change by one member reaches the others it concerns, not its author; read, counted and marked by their owner only', async () => {
    const { id: tripId, reference } = await trip(manager);
    const { found } = await notificationsOf(tenant.owner, (node) => node.type === 'TRIP_CREATED' && node.subjectId === tripId);
    expect(found[0]).toMatchObject({ subjectType: 'Trip', title: `Trip ${reference} was created`, readAt: null });
    expect(found[0]?.body).toContain(`Tenant ${tenant.slug}`);
    // The author is not told of their own change.
    const managersOwn = await manager.request(NOTIFICATIONS, {});
    expect(managersOwn.notifications.edges.filter((edge) => edge.node.subjectId === tripId)).toEqual([]);

    const before = (await tenant.owner.request(NOTIFICATIONS, {})).unreadNotificationCount;
    expect(before).toBeGreaterThanOrEqual(1);
    const id = found[0]?.id as string;
    // Someone else's id marks nothing.
    expect((await manager.request(MARK_READ, { ids: [id] })).markNotificationsRead.marked).toBe(0);
    const marked = await tenant.owner.request(MARK_READ, { ids: [id, id, 'not-an-id'] });
    expect(marked.markNotificationsRead).toEqual({ marked: 1, unreadCount: before - 1 });
    const unread = await tenant.owner.request(NOTIFICATIONS, { unreadOnly: true });
    expect(unread.notifications.edges.map((edge) => edge.node.id)).not.toContain(id);

    // Each delivery is on record: IN_APP to the owner, delivered at the first attempt.
    const deliveries = await tenant.owner.request(DELIVERIES, { filter: { eventType: 'TRIP_CREATED', channel: 'IN_APP' } });
    const ours = deliveries.notificationDeliveries.edges.map((edge) => edge.node).filter((node) => node.target !== managerId);
    expect(ours.length).toBeGreaterThanOrEqual(1);
    expect(ours[0]).toMatchObject({ eventType: 'TRIP_CREATED', channel: 'IN_APP', status: 'DELIVERED', attempts: 1, lastError: null, nextAttemptAt: null });
  });

  it('a transition is one event with its from and to; a member who muted its type is not told', async () => {
    await manager.request(MUTE, { eventTypes: ['TRIP_TRANSITIONED'], muted: true });
    const vehicleId = (await tenant.owner.request(CREATE_VEHICLE, { input: { plate: `NTF-V-${counter}`, make: 'Volvo', model: 'FH', year: 2022 } })).createVehicle.vehicle.id;
    const driverId = (await tenant.owner.request(CREATE_DRIVER, { input: { name: 'Ntf Driver', licenseNumber: `NTF-L-${counter}` } })).createDriver.driver.id;
    const { id: tripId, reference } = await trip(tenant.owner);
    await tenant.owner.request(graphql(`mutation NotifAssign($id: ID!, $input: UpdateTripInput!) { updateTrip(id: $id, input: $input) { trip { id } } }`), { id: tripId, input: { vehicleId, driverId } });
    await tenant.owner.request(TRANSITION, { input: { id: tripId, to: 'PLANNED' } });
    // Once the watcher is told of the transition, it was fanned out: the manager, muted, was not.
    await notificationsOf(watcher, (node) => node.type === 'TRIP_TRANSITIONED' && node.subjectId === tripId);
    const muted = await manager.request(NOTIFICATIONS, {});
    expect(muted.notifications.edges.filter((edge) => edge.node.subjectId === tripId).map((edge) => edge.node.type)).toEqual(['TRIP_CREATED']);
    await manager.request(MUTE, { eventTypes: ['TRIP_TRANSITIONED'], muted: false });
    await tenant.owner.request(TRANSITION, { input: { id: tripId, to: 'DRAFT', reason: 'back to planning' } });
    const { found } = await notificationsOf(manager, (node) => node.type === 'TRIP_TRANSITIONED' && node.subjectId === tripId);
    // Only the transition after unmuting: the one while muted never became a delivery.
    expect(found).toHaveLength(1);
    const deliveries = await tenant.owner.request(DELIVERIES, { filter: { eventType: 'TRIP_TRANSITIONED', channel: 'IN_APP' } });
    expect(deliveries.notificationDeliveries.edges.filter((edge) => edge.node.target === managerId)).toHaveLength(1);
    expect(found[0]?.title).toBe(`Trip ${reference}: PLANNED → DRAFT`);
    expect(found[0]?.body).toContain('reason: back to planning');
  });

  it("the tenant's routing turns an event type off for a channel", async () => {
    const routes = await tenant.owner.request(ROUTES, { routes: [{ eventType: 'TRIP_CREATED', channel: 'IN_APP', enabled: false }] });
    expect(routes.setNotificationRoutes).toContainEqual({ eventType: 'TRIP_CREATED', channel: 'IN_APP', enabled: false, isDefault: false });
    expect((await tenant.owner.request(READ_ROUTES)).notificationRoutes).toContainEqual({ eventType: 'TRIP_LATE', channel: 'EMAIL', enabled: true, isDefault: true });
    const { id: quietTrip } = await trip(manager);
    // A later event of a type still routed is delivered; by then the quiet one was fanned out too.
    await manager.request(TRANSITION, { input: { id: quietTrip, to: 'CANCELLED', reason: 'not needed' } });
    await notificationsOf(tenant.owner, (node) => node.type === 'TRIP_TRANSITIONED' && node.subjectId === quietTrip);
    const owners = await tenant.owner.request(NOTIFICATIONS, {});
    expect(owners.notifications.edges.filter((edge) => edge.node.subjectId === quietTrip).map((edge) => edge.node.type)).toEqual(['TRIP_TRANSITIONED']);
    await tenant.owner.request(ROUTES, { routes: [{ eventType: 'TRIP_CREATED', channel: 'IN_APP', enabled: true }] });
    const refused = await tenant.owner.request(ROUTES, { routes: [{ eventType: 'TRIP_CREATED', channel: 'WEBHOOK', enabled: false }] }).catch((error: unknown) => error);
    expect(JSON.stringify(refused)).toContain('BAD_USER_INPUT');
  });

  it('platform-side changes (a member added) are events too, through the audit outbox', async () => {
    const email = `second-admin@${tenant.slug}.test`;
    await tenant.owner.request(ADD_MEMBER, { input: { email, name: 'Admin Two', password: 'admin-two-password', role: 'ADMIN' } });
    const admin = app.bearer(await app.login(tenant.slug, email, 'admin-two-password'));
    const third = await tenant.owner.request(ADD_MEMBER, { input: { email: `third@${tenant.slug}.test`, name: 'Third', password: 'third-password-1', role: 'VIEWER' } });
    await notificationsOf(admin, (node) => node.type === 'MEMBER_ADDED' && node.subjectId === third.addMember.member.id);
    // Not for those below the event's audience: the manager hears nothing of members.
    const managers = await manager.request(NOTIFICATIONS, {});
    expect(managers.notifications.edges.filter((edge) => edge.node.type === 'MEMBER_ADDED')).toEqual([]);
  });

  it('TRIP_LATE: a trip on the road past its planned arrival (plus the tolerance) is late once; one delivered in time never is', async () => {
    await tenant.owner.request(graphql(`mutation NotifTolerance { updateFleetSettings(input: { lateToleranceMinutes: 0 }) { settings { lateToleranceMinutes } } }`));
    const onTheRoad = async (arrivalInMs: number) => {
      counter += 1;
      const vehicleId = (await tenant.owner.request(CREATE_VEHICLE, { input: { plate: `LATE-V-${counter}`, make: 'Volvo', model: 'FH', year: 2022 } })).createVehicle.vehicle.id;
      const driverId = (await tenant.owner.request(CREATE_DRIVER, { input: { name: 'Late Driver', licenseNumber: `LATE-L-${counter}` } })).createDriver.driver.id;
      const created = await tenant.owner.request(CREATE_TRIP, {
        input: { reference: `LATE-${counter}`, origin: 'A', destination: 'B', vehicleId, driverId, plannedArrivalAt: new Date(Date.now() + arrivalInMs).toISOString() },
      });
      const id = created.createTrip.trip.id;
      for (const to of ['PLANNED', 'DISPATCHED'] as const) await tenant.owner.request(TRANSITION, { input: { id, to } });
      return id;
    };
    // Already past its arrival when dispatched: late at once.
    const overdue = await onTheRoad(-60_000);
    // Due in 2 s: late when its check, queued for then, runs.
    const soon = await onTheRoad(2_000);
    // Due in 2 s but delivered before: never late.
    const onTime = await onTheRoad(2_000);
    await tenant.owner.request(TRANSITION, { input: { id: onTime, to: 'IN_TRANSIT' } });
    await tenant.owner.request(TRANSITION, { input: { id: onTime, to: 'DELIVERED' } });
    const { found } = await notificationsOf(watcher, (node) => node.type === 'TRIP_LATE' && (node.subjectId === overdue || node.subjectId === soon), 2);
    expect(found.map((node) => node.title).sort()).toEqual([expect.stringMatching(/^Trip LATE-\d+ is late$/), expect.stringMatching(/^Trip LATE-\d+ is late$/)]);
    // Past the moment it would have been late, the delivered trip has no TRIP_LATE, and no trip has two.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    const all = (await watcher.request(NOTIFICATIONS, {})).notifications.edges.map((edge) => edge.node).filter((node) => node.type === 'TRIP_LATE');
    expect(all.map((node) => node.subjectId).sort()).toEqual([overdue, soon].sort());
  });

  it('an event committed while no instance listened is found by the next start-up sweep', async () => {
    // As if the server had died between the commit and anyone hearing its notification: the
    // entry and its outbox row are written without one.
    const vehicleId = (await tenant.owner.request(CREATE_VEHICLE, { input: { plate: `SWEEP-${counter}`, make: 'MAN', model: 'TGX', year: 2021 } })).createVehicle.vehicle.id;
    // The creation's own job is done (the manager was told), so no job of this instance is left to find it.
    await notificationsOf(manager, (node) => node.type === 'VEHICLE_CREATED' && node.subjectId === vehicleId);
    await new Promise((resolve) => setTimeout(resolve, 500));
    const database = new pg.Client({ connectionString: app.databaseUrl });
    await database.connect();
    const schema = pg.escapeIdentifier(tenant.schemaName);
    const [{ id: ownerId }] = (await database.query<{ id: string }>(`SELECT id FROM platform."User" WHERE email = $1`, [tenant.ownerEmail])).rows as [{ id: string }];
    const vehicleRowId = (await database.query<{ id: string }>(`SELECT id FROM ${schema}."Vehicle" WHERE plate = $1`, [`SWEEP-${counter}`])).rows[0]?.id;
    const eventId = randomUUID();
    await database.query(
      `WITH entry AS (INSERT INTO ${schema}."AuditEvent" (id, "occurredAt", "actorKind", "actorId", action, "targetType", "targetId", metadata)
         VALUES ($1, now(), 'USER', $2, 'vehicle.deleted', 'Vehicle', $3, '{}'))
       INSERT INTO ${schema}."DomainEvent" (id, type, "occurredAt") VALUES ($1, 'vehicle.deleted', now())`,
      [eventId, ownerId, vehicleRowId],
    );
    await database.end();
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const unheard = await manager.request(NOTIFICATIONS, {});
    expect(unheard.notifications.edges.filter((edge) => edge.node.type === 'VEHICLE_DELETED')).toEqual([]);
    // A second instance starts: its sweep finds the tenant's undispatched event and wakes its job.
    const second = await startTestServer({ databaseUrl: app.databaseUrl });
    try {
      const { found } = await notificationsOf(manager, (node) => node.type === 'VEHICLE_DELETED');
      expect(found[0]?.subjectId).toBe(vehicleId);
      expect(vehicleId).toBe(toGlobalId('Vehicle', vehicleRowId as string));
    } finally {
      await second.close();
    }
  });
});
