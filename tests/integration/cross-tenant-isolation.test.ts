import { Kind, isObjectType, type GraphQLSchema } from 'graphql';
import { buildSchema } from '../../src/graphql/schema';
import { toGlobalId } from '../../src/graphql/global-id';
import { quoteIdentifier } from '../../src/tenancy/tenant-naming';
import type { GraphQLClient } from '../support/graphql-request';
import { graphql } from '../generated';
import type {
  IsolationCreateDriverMutation,
  IsolationCreateVehicleMutation,
  IsolationDriverIdsQueryVariables,
  IsolationSnapshotQuery,
  IsolationVehicleIdsQueryVariables,
} from '../generated/graphql';
import { errorCode, expectErrors, SECOND_CLUSTER, startTestServer, uniqueSlug, type TenantFixture, type TestServer } from '../support/test-server';
import { codeIn } from '../support/smtp-server';
import { randomUUID } from 'node:crypto';
import type { DomainEvent } from '../../src/events/domain-event';
import { parseGlobalId } from '../../src/graphql/global-id';
import { eventually, sleep } from '../support/raw-graphql';
import { connectSubscriptions, type SubscriptionConnection } from '../support/subscription-client';

/*
 * Cross-tenant isolation over HTTP: tenant A's OWNER, holding tenant B's ids, names, plates and
 * emails, tries every tenant-scoped root field against B. Each attack must find nothing (null,
 * empty, NOT_FOUND) and leave B exactly as it was, read back by B's own OWNER.
 *
 * The attack table is keyed by root field name, and a meta-test checks it against the SDL: a new
 * `@auth(requires: ...)` field without an isolation case fails this file.
 *
 * A and B live on different PostgreSQL servers (clusters `main` and the second one global-setup
 * starts): every case holds across clusters too.
 */

let app: TestServer;
let A: SeededTenant;
let B: SeededTenant;

type SeededVehicle = IsolationCreateVehicleMutation['createVehicle']['vehicle'];
type SeededDriver = IsolationCreateDriverMutation['createDriver']['driver'];
interface SeededTenant extends TenantFixture {
  ownerId: string;
  vehicles: SeededVehicle[];
  drivers: SeededDriver[];
  /** A PLANNED trip (vehicle 1, driver 1), so it has a transition. */
  trip: { id: string; reference: string };
  /** An open maintenance record on vehicle 2. */
  maintenanceId: string;
  /** The PLANNED trip's stops (a pickup, a drop-off) and a note on it. */
  stopIds: string[];
  noteId: string;
  /** A soft-deleted vehicle, driver and trip (restorable by the tenant's ADMIN+). */
  deleted: { vehicleId: string; driverId: string; tripId: string };
  /** A second member (ADMIN), so member attacks do not only hit the last-OWNER rule. */
  admin: { id: string; email: string; client: GraphQLClient };
  apiKey: { id: string; secret: string };
  /** An operation registered (safelisted) for this tenant only. */
  operation: { id: string; sha256: string; body: string };
  /** A pending invitation of this tenant, addressed to someone outside both tenants. */
  invitation: { id: string; email: string; code: string };
  /** A webhook endpoint (public address, never called here) and its secret. */
  webhook: { id: string; url: string; secret: string };
  /** The host of the tenant's Slack webhook. */
  slackHost: string;
}

/** Same plate and licence number in both tenants: unique per tenant, never a cross-tenant CONFLICT. */
const SHARED_PLATE = 'SHARED-1';
const SHARED_LICENSE = 'SHARED-LIC';

const CREATE_VEHICLE = graphql(`mutation IsolationCreateVehicle($input: CreateVehicleInput!) { createVehicle(input: $input) { vehicle { id plate } } }`);
const CREATE_DRIVER = graphql(`mutation IsolationCreateDriver($input: CreateDriverInput!) { createDriver(input: $input) { driver { id name licenseNumber email } } }`);
const CREATE_TRIP = graphql(`mutation IsolationCreateTrip($input: CreateTripInput!) { createTrip(input: $input) { trip { id reference } } }`);
const TRANSITION_TRIP = graphql(`mutation IsolationTransitionTrip($input: TransitionTripInput!) { transitionTrip(input: $input) { trip { id status } } }`);
const ASSIGN = graphql(`mutation IsolationAssign($vehicleId: ID!, $driverId: ID) { assignDriver(vehicleId: $vehicleId, driverId: $driverId) { vehicle { id driver { id } } } }`);

const AUDIT_EVENTS = graphql(`query IsolationAuditEvents($filter: AuditEventFilter) { auditEvents(first: 100, filter: $filter) { totalCount edges { node { targetId actorId } } } }`);
const CREATE_API_KEY = graphql(`mutation IsolationCreateApiKey($input: CreateApiKeyInput!) { createApiKey(input: $input) { apiKey { id name role } secret } }`);
const INVITE_MEMBER = graphql(`mutation IsolationInviteMember($input: InviteMemberInput!) {
  inviteMember(input: $input) { invitation { id email role invitedAt expiresAt } }
}`);
const CREATE_WEBHOOK = graphql(`mutation IsolationCreateWebhook($input: CreateWebhookEndpointInput!) {
  createWebhookEndpoint(input: $input) { secret webhookEndpoint { id url } }
}`);
const SET_SLACK = graphql(`mutation IsolationSetSlack($url: String!) { setSlackWebhook(url: $url) { slackWebhook { configured host } } }`);
const REGISTER_OPERATIONS = graphql(`mutation IsolationRegisterOperations($operations: [PersistedOperationInput!]!) {
  registerPersistedOperations(operations: $operations) { operations { id sha256 operationName scope } }
}`);

/** ENTERPRISE: the plan with the largest request budget, so rate limits never decide a case here. */
async function seedTenant(label: 'alpha' | 'bravo'): Promise<SeededTenant> {
  const tenant = await app.createTenant(uniqueSlug(label), 'ENTERPRISE', label === 'alpha' ? 'main' : SECOND_CLUSTER);
  const prefix = label.toUpperCase();
  const vehicles: SeededVehicle[] = [];
  for (const [plate, make] of [
    [`${prefix}-1`, `${label}make`],
    [`${prefix}-2`, `${label}make`],
    [SHARED_PLATE, 'Sharedmake'],
  ] as const) {
    const result = await tenant.owner.request(CREATE_VEHICLE, {
      input: { plate, make, model: `${label} model`, year: 2020, odometerKm: 1000 },
    });
    vehicles.push(result.createVehicle.vehicle);
  }
  const drivers: SeededDriver[] = [];
  for (const [name, licenseNumber] of [
    [`${label} driver one`, `${prefix}-LIC-1`],
    [`${label} driver two`, `${prefix}-LIC-2`],
    [`${label} driver three`, SHARED_LICENSE],
  ] as const) {
    const result = await tenant.owner.request(CREATE_DRIVER, {
      input: { name, licenseNumber, email: `${licenseNumber.toLowerCase()}@${label}.test`, phone: '+1 555 0100' },
    });
    drivers.push(result.createDriver.driver);
  }
  await tenant.owner.request(ASSIGN, { vehicleId: vehicles[0]?.id as string, driverId: drivers[0]?.id as string });
  const trip = await tenant.owner.request(CREATE_TRIP, {
    input: { reference: `${prefix}-TRIP`, origin: `${label} depot`, destination: 'Shared city', vehicleId: vehicles[1]?.id, driverId: drivers[1]?.id },
  });
  await tenant.owner.request(TRANSITION_TRIP, { input: { id: trip.createTrip.trip.id, to: 'PLANNED' } });
  const maintenance = await tenant.owner.request(
    graphql(`mutation IsolationSeedMaintenance($vehicleId: ID!) { openMaintenance(input: { vehicleId: $vehicleId, kind: SERVICE, description: "seeded" }) { maintenanceRecord { id } } }`),
    { vehicleId: vehicles[2]?.id as string },
  );
  const stopIds: string[] = [];
  for (const kind of ['PICKUP', 'DROP_OFF'] as const) {
    const stop = await tenant.owner.request(
      graphql(`mutation IsolationSeedStop($tripId: ID!, $kind: StopKind!) { addStop(input: { tripId: $tripId, kind: $kind, address: "seeded" }) { stop { id } } }`),
      { tripId: trip.createTrip.trip.id, kind },
    );
    stopIds.push(stop.addStop.stop.id);
  }
  const note = await tenant.owner.request(
    graphql(`mutation IsolationSeedNote($tripId: ID!) { addTripNote(input: { tripId: $tripId, body: "seeded" }) { note { id } } }`),
    { tripId: trip.createTrip.trip.id },
  );
  const gone = {
    vehicleId: (await tenant.owner.request(CREATE_VEHICLE, { input: { plate: `${prefix}-GONE`, make: 'Gone', model: 'Gone', year: 2010 } })).createVehicle.vehicle.id,
    driverId: (await tenant.owner.request(CREATE_DRIVER, { input: { name: `${label} gone`, licenseNumber: `${prefix}-GONE` } })).createDriver.driver.id,
    tripId: (await tenant.owner.request(CREATE_TRIP, { input: { reference: `${prefix}-GONE`, origin: 'x', destination: 'y' } })).createTrip.trip.id,
  };
  await tenant.owner.request(graphql(`mutation IsolationSeedDeleteVehicle($id: ID!) { deleteVehicle(id: $id) { deletedId } }`), { id: gone.vehicleId });
  await tenant.owner.request(graphql(`mutation IsolationSeedDeleteDriver($id: ID!) { deleteDriver(id: $id) { deletedId } }`), { id: gone.driverId });
  await tenant.owner.request(graphql(`mutation IsolationSeedDeleteTrip($id: ID!) { deleteTrip(id: $id) { deletedId } }`), { id: gone.tripId });

  const me = await tenant.owner.request(graphql(`query IsolationSeedMe { me { id } }`));
  const adminEmail = `admin@${tenant.slug}.test`;
  const adminPassword = `admin-password-${tenant.slug}`;
  const added = await tenant.owner.request(
    graphql(`mutation IsolationSeedAdmin($input: AddMemberInput!) { addMember(input: $input) { member { id } } }`),
    { input: { email: adminEmail, name: `${label} admin`, password: adminPassword, role: 'ADMIN' } },
  );
  const adminToken = await app.login(tenant.slug, adminEmail, adminPassword);
  const key = await tenant.owner.request(CREATE_API_KEY, {
    input: { name: `${label} integration`, role: 'MANAGER' },
  });
  const body = `query ${prefix}Plates { vehicles(first: 5) { edges { node { plate } } } }`;
  const registered = await tenant.owner.request(
    REGISTER_OPERATIONS,
    { operations: [{ name: `${prefix}Plates`, body }] },
  );
  const operation = registered.registerPersistedOperations.operations[0];
  if (!operation) throw new Error('operation not registered');
  const invited = await tenant.owner.request(INVITE_MEMBER, { input: { email: `invitee@${tenant.slug}.test`, role: 'MEMBER' } });
  // Public addresses, distinct per tenant; nothing is delivered in this file.
  const octet = label === 'alpha' ? 20 : 21;
  const webhook = await tenant.owner.request(CREATE_WEBHOOK, { input: { url: `https://93.184.215.${octet}/${label}-hook`, eventTypes: ['TRIP_TRANSITIONED'] } });
  await tenant.owner.request(SET_SLACK, { url: `https://93.184.215.${octet + 10}/services/${label}` });
  return {
    ...tenant,
    ownerId: me.me.id,
    vehicles,
    drivers,
    trip: { id: trip.createTrip.trip.id, reference: trip.createTrip.trip.reference },
    deleted: gone,
    maintenanceId: maintenance.openMaintenance.maintenanceRecord.id,
    stopIds,
    noteId: note.addTripNote.note.id,
    admin: { id: added.addMember.member.id, email: adminEmail, client: app.bearer(adminToken) },
    apiKey: { id: key.createApiKey.apiKey.id, secret: key.createApiKey.secret },
    operation: { ...operation, body },
    invitation: { id: invited.inviteMember.invitation.id, email: invited.inviteMember.invitation.email, code: await app.invitationCode(invited.inviteMember.invitation.email) },
    webhook: { ...webhook.createWebhookEndpoint.webhookEndpoint, secret: webhook.createWebhookEndpoint.secret },
    slackHost: `93.184.215.${octet + 10}`,
  };
}

// Pages of 20: every tenant here has fewer rows (hasNextPage is part of the snapshot), and
// small pages keep the query under the cost limit.
const SNAPSHOT = graphql(`query IsolationSnapshot {
  vehicles(first: 20) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { cursor node { id plate make model year status odometerKm createdAt updatedAt driver { id name licenseNumber } } }
  }
  drivers(first: 20) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { cursor node { id name licenseNumber phone email status createdAt updatedAt vehicle { id plate } } }
  }
  trips(first: 20) {
    totalCount
    edges { node { id reference status version origin destination vehicle { id } driver { id } transitions { from to actorKind actorId at } history(first: 5) { edges { node { version action actorId changes { field from to } } } } } }
  }
  allVehicles: vehicles(first: 20, includeDeleted: true) { totalCount edges { node { id version deletedAt history(first: 5) { edges { node { version action actorId } } } } } }
  maintenanceRecords(first: 20) { totalCount edges { node { id kind closedAt vehicle { id status } } } }
  allDrivers: drivers(first: 20, includeDeleted: true) { totalCount edges { node { id version deletedAt } } }
  allTrips: trips(first: 20, includeDeleted: true) { totalCount edges { node { id version deletedAt } } }
  tripPlans: trips(first: 20) { edges { node { id stops { id kind sequence address windowEnd arrivedAt completedAt version } notes(first: 5) { totalCount edges { node { id body version authorId } } } } } }
  fleetSettings { timeZone distanceUnit currency lateToleranceMinutes defaultNotificationChannel updatedAt }
  members { id email name role joinedAt }
  me { id role tenant { id slug status } }
  apiKeys { id name prefix role persistedOnly expiresAt createdAt revokedAt }
  persistedOperations { id sha256 operationName scope createdAt }
  invitations { id email role invitedAt expiresAt }
  auditEvents(first: 100) { totalCount edges { node { id action targetId actorId metadata } } }
  webhookEndpoints { id url description eventTypes enabled disabledReason consecutiveFailures previousSecretExpiresAt lastError updatedAt }
  slackWebhook { configured host updatedAt }
}`);

type FleetSnapshot = IsolationSnapshotQuery;

/** Everything a tenant's OWNER can see of its tenant: rows, relations, members. */
function snapshot(tenant: TenantFixture): Promise<FleetSnapshot> {
  return tenant.owner.request(SNAPSHOT);
}

/** The tenant's row ids as global ids, read straight from its schema (an oracle independent of the API); live rows unless asked. */
/** The server's own connections to the cluster holding the tenant's schema (A on main, B on the second). */
async function tenantSchemaPool(tenant: TenantFixture) {
  const { services } = app.server;
  const cluster = (await services.directory.findById(tenant.id))?.cluster ?? 'main';
  return services.clusters.get(cluster).adminPool;
}

async function globalIdsInSchema(tenant: TenantFixture, table: 'Vehicle' | 'Driver' | 'Trip', withDeleted = false): Promise<string[]> {
  const result = await (await tenantSchemaPool(tenant)).query<{ id: string }>(
    `SELECT id FROM ${quoteIdentifier(tenant.schemaName)}."${table}" ${withDeleted ? '' : 'WHERE "deletedAt" IS NULL'} ORDER BY id`,
  );
  return result.rows.map((row) => toGlobalId(table, row.id));
}

const vehicle = (tenant: SeededTenant, index: number): SeededVehicle => tenant.vehicles[index] as SeededVehicle;
const driver = (tenant: SeededTenant, index: number): SeededDriver => tenant.drivers[index] as SeededDriver;

const VEHICLE_IDS = graphql(`query IsolationVehicleIds($filter: VehicleFilter, $after: String) {
  vehicles(first: 20, filter: $filter, after: $after) { totalCount edges { node { id plate driver { id } } } }
}`);
const DRIVER_IDS = graphql(`query IsolationDriverIds($filter: DriverFilter, $after: String) {
  drivers(first: 20, filter: $filter, after: $after) { totalCount edges { node { id licenseNumber vehicle { id } } } }
}`);

interface IdList {
  totalCount: number;
  ids: string[];
}

async function listVehicles(client: GraphQLClient, variables: IsolationVehicleIdsQueryVariables = {}): Promise<IdList> {
  const result = await client.request(VEHICLE_IDS, variables);
  return { totalCount: result.vehicles.totalCount, ids: result.vehicles.edges.map((edge) => edge.node.id) };
}

async function listDrivers(client: GraphQLClient, variables: IsolationDriverIdsQueryVariables = {}): Promise<IdList> {
  const result = await client.request(DRIVER_IDS, variables);
  return { totalCount: result.drivers.totalCount, ids: result.drivers.edges.map((edge) => edge.node.id) };
}

function expectNoneOf(ids: string[], tenant: SeededTenant): void {
  const foreign = new Set([...tenant.vehicles.map((row) => row.id), ...tenant.drivers.map((row) => row.id)]);
  expect(ids.filter((id) => foreign.has(id))).toEqual([]);
}

interface Attack {
  name: string;
  run: () => Promise<void>;
  /** The attack legitimately changes A (a create in A, a membership added to A). */
  changesA?: boolean;
}

const NODE = graphql(`query IsolationNode($id: ID!) { node(id: $id) { __typename id ... on Vehicle { plate } ... on Driver { name } } }`);
const VEHICLE = graphql(`query IsolationVehicle($id: ID!) { vehicle(id: $id) { id plate make driver { id } } }`);
const DRIVER = graphql(`query IsolationDriver($id: ID!) { driver(id: $id) { id name licenseNumber vehicle { id } } }`);
const UPDATE_VEHICLE = graphql(`mutation IsolationUpdateVehicle($id: ID!, $input: UpdateVehicleInput!) { updateVehicle(id: $id, input: $input) { vehicle { id plate odometerKm } } }`);
const DELETE_VEHICLE = graphql(`mutation IsolationDeleteVehicle($id: ID!) { deleteVehicle(id: $id) { deletedId } }`);
const UPDATE_DRIVER = graphql(`mutation IsolationUpdateDriver($id: ID!, $input: UpdateDriverInput!) { updateDriver(id: $id, input: $input) { driver { id name } } }`);
const DELETE_DRIVER = graphql(`mutation IsolationDeleteDriver($id: ID!) { deleteDriver(id: $id) { deletedId } }`);
const TRIP = graphql(`query IsolationTrip($id: ID!) { trip(id: $id) { id reference vehicle { id } transitions { actorId } } }`);
const TRIPS = graphql(`query IsolationTrips($filter: TripFilter) { trips(first: 20, filter: $filter) { totalCount edges { node { id } } } }`);
const UPDATE_TRIP = graphql(`mutation IsolationUpdateTrip($id: ID!, $input: UpdateTripInput!) { updateTrip(id: $id, input: $input) { trip { id } } }`);
const UPDATE_SETTINGS = graphql(`mutation IsolationUpdateSettings($input: UpdateFleetSettingsInput!) { updateFleetSettings(input: $input) { settings { timeZone currency lateToleranceMinutes } } }`);
const MAINTENANCE_RECORDS = graphql(`query IsolationMaintenanceRecords($filter: MaintenanceFilter) { maintenanceRecords(first: 20, filter: $filter) { totalCount edges { node { id } } } }`);
const OPEN_MAINTENANCE = graphql(`mutation IsolationOpenMaintenance($vehicleId: ID!) { openMaintenance(input: { vehicleId: $vehicleId, kind: REPAIR, description: "probe" }) { maintenanceRecord { id } } }`);
const CLOSE_MAINTENANCE = graphql(`mutation IsolationCloseMaintenance($id: ID!) { closeMaintenance(input: { id: $id }) { maintenanceRecord { id } } }`);
const STOPS = graphql(`query IsolationStops($filter: StopFilter) { stops(first: 20, filter: $filter) { totalCount edges { node { id trip { id } } } } }`);
const ADD_STOP = graphql(`mutation IsolationAddStop($tripId: ID!) { addStop(input: { tripId: $tripId, kind: PICKUP, address: "probe" }) { stop { id } } }`);
const UPDATE_STOP = graphql(`mutation IsolationUpdateStop($id: ID!) { updateStop(id: $id, input: { address: "probe" }) { stop { id } } }`);
const REMOVE_STOP = graphql(`mutation IsolationRemoveStop($id: ID!) { removeStop(id: $id) { removedId } }`);
const REORDER_STOPS = graphql(`mutation IsolationReorderStops($tripId: ID!, $stopIds: [ID!]!) { reorderStops(input: { tripId: $tripId, stopIds: $stopIds }) { trip { id } } }`);
const ARRIVE_STOP = graphql(`mutation IsolationArriveStop($id: ID!) { markStopArrived(id: $id) { stop { id } } }`);
const COMPLETE_STOP = graphql(`mutation IsolationCompleteStop($id: ID!) { completeStop(input: { id: $id, proofOfDelivery: { recipientName: "probe" } }) { stop { id } } }`);
const ADD_NOTE = graphql(`mutation IsolationAddNote($tripId: ID!) { addTripNote(input: { tripId: $tripId, body: "probe" }) { note { id } } }`);
const EDIT_NOTE = graphql(`mutation IsolationEditNote($id: ID!) { editTripNote(input: { id: $id, body: "probe" }) { note { id } } }`);
const DELETE_NOTE = graphql(`mutation IsolationDeleteNote($id: ID!) { deleteTripNote(id: $id) { deletedId } }`);
const DELETE_TRIP = graphql(`mutation IsolationDeleteTrip($id: ID!) { deleteTrip(id: $id) { deletedId } }`);
const RESTORE_TRIP = graphql(`mutation IsolationRestoreTrip($id: ID!) { restoreTrip(id: $id) { trip { id } } }`);
const RESTORE_VEHICLE = graphql(`mutation IsolationRestoreVehicle($id: ID!) { restoreVehicle(id: $id) { vehicle { id } } }`);
const RESTORE_DRIVER = graphql(`mutation IsolationRestoreDriver($id: ID!) { restoreDriver(id: $id) { driver { id } } }`);
const MEMBERS = graphql(`query IsolationMembers { members { id email role } }`);
const MEMBERS_PAGE = graphql(`query IsolationMembersPage($first: Int, $after: String, $filter: MemberFilter, $orderBy: MemberOrder) {
  membersConnection(first: $first, after: $after, filter: $filter, orderBy: $orderBy) { totalCount pageInfo { endCursor } edges { node { id email } } }
}`);
const TENANT_USAGE = graphql(`query IsolationTenantUsage { tenantUsage { quotas { quota usage limit } } }`);
const UPDATE_ROLE = graphql(`mutation IsolationUpdateRole($userId: ID!, $role: Role!) { updateMemberRole(userId: $userId, role: $role) { member { id role } } }`);
const REMOVE_MEMBER = graphql(`mutation IsolationRemoveMember($userId: ID!) { removeMember(userId: $userId) { removedUserId } }`);
const API_KEYS = graphql(`query IsolationApiKeys { apiKeys { id name role revokedAt } }`);
const REVOKE_API_KEY = graphql(`mutation IsolationRevokeApiKey($id: ID!) { revokeApiKey(id: $id) { apiKey { id revokedAt } } }`);
const PERSISTED_OPERATIONS = graphql(`query IsolationPersistedOperations { persistedOperations { id sha256 scope } }`);
const REMOVE_OPERATIONS = graphql(`mutation IsolationRemoveOperations($ids: [ID!]!) { removePersistedOperations(ids: $ids) { removedIds } }`);
const ADD_MEMBER = graphql(`mutation IsolationAddMember($input: AddMemberInput!) { addMember(input: $input) { member { id email role } } }`);
const INVITATIONS = graphql(`query IsolationInvitations { invitations { id email role } }`);
const REVOKE_INVITATION = graphql(`mutation IsolationRevokeInvitation($id: ID!) { revokeInvitation(id: $id) { revokedId } }`);
const ACCEPT_INVITATION = graphql(`mutation IsolationAcceptInvitation($input: AcceptInvitationInput!) { acceptInvitation(input: $input) { tenantSlug role } }`);
const WEBHOOK_ENDPOINTS = graphql(`query IsolationWebhookEndpoints { webhookEndpoints { id url } }`);
const UPDATE_WEBHOOK = graphql(`mutation IsolationUpdateWebhook($id: ID!, $input: UpdateWebhookEndpointInput!) { updateWebhookEndpoint(id: $id, input: $input) { webhookEndpoint { id } } }`);
const DELETE_WEBHOOK = graphql(`mutation IsolationDeleteWebhook($id: ID!) { deleteWebhookEndpoint(id: $id) { deletedId } }`);
const ROTATE_WEBHOOK = graphql(`mutation IsolationRotateWebhook($id: ID!) { rotateWebhookSecret(id: $id) { secret webhookEndpoint { id } } }`);
const SLACK_WEBHOOK = graphql(`query IsolationSlackWebhook { slackWebhook { configured host } }`);
const REMOVE_SLACK = graphql(`mutation IsolationRemoveSlack { removeSlackWebhook { slackWebhook { configured } } }`);
const DECLINE_INVITATION = graphql(`mutation IsolationDeclineInvitation($code: String!) { declineInvitation(code: $code) { declinedId } }`);
const VERIFY_EMAIL = graphql(`mutation IsolationVerifyEmail($code: String!) { verifyEmail(code: $code) { emailVerified } }`);
const SEND_VERIFICATION = graphql(`mutation IsolationSendVerification { sendEmailVerification { sent } }`);
const ME_VERIFIED = graphql(`query IsolationMeVerified { me { emailVerified } }`);
const REQUEST_RESET = graphql(`mutation IsolationRequestReset($email: String!) { requestPasswordReset(email: $email) { accepted } }`);
const RESET_PASSWORD = graphql(`mutation IsolationResetPassword($input: ResetPasswordInput!) { resetPassword(input: $input) { signedOutSessions } }`);
const NOTIFICATIONS = graphql(`query IsolationNotifications($unreadOnly: Boolean) {
  notifications(first: 100, unreadOnly: $unreadOnly) { totalCount edges { node { id subjectId readAt } } }
  unreadNotificationCount
}`);
const MARK_READ = graphql(`mutation IsolationMarkRead($ids: [ID!]!) { markNotificationsRead(ids: $ids) { marked } }`);
const DELIVERIES = graphql(`query IsolationDeliveries($filter: NotificationDeliveryFilter) {
  notificationDeliveries(first: 100, filter: $filter) { totalCount edges { node { id eventId status attempts target } } }
}`);
const REDELIVER = graphql(`mutation IsolationRedeliver($ids: [ID!]!) { redeliverNotifications(ids: $ids) { deliveries { id } } }`);
const ROUTES = graphql(`query IsolationRoutes { notificationRoutes { eventType channel enabled isDefault } }`);
const SET_ROUTES = graphql(`mutation IsolationSetRoutes($routes: [NotificationRouteInput!]!) { setNotificationRoutes(routes: $routes) { eventType } }`);
const PREFERENCES = graphql(`query IsolationPreferences { myNotificationPreferences { mutedEventTypes } }`);
const MUTE = graphql(`mutation IsolationMute($eventTypes: [EventType!]!) { setNotificationsMuted(eventTypes: $eventTypes, muted: true) { mutedEventTypes } }`);

/** B's ADMIN's in-app notifications (B's owner's changes are its events), once the worker has delivered some. */
async function notificationsOfB(): Promise<{ id: string; subjectId: string; readAt: string | null }[]> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const read = await B.admin.client.request(NOTIFICATIONS, {});
    if (read.notifications.totalCount > 0) return read.notifications.edges.map((edge) => edge.node);
    if (Date.now() > deadline) throw new Error("B's admin got no notification within 10 s");
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function deliveriesOfB() {
  await notificationsOfB();
  return (await B.owner.request(DELIVERIES, {})).notificationDeliveries.edges.map((edge) => edge.node);
}

/** What A can see of B's subjects in its notifications and deliveries: nothing of B's may be in it. */
const bSubjects = () => [...B.vehicles.map((row) => row.id), ...B.drivers.map((row) => row.id), B.trip.id, B.admin.id];

const SWITCH_TENANT = graphql(`mutation IsolationSwitchTenant($tenant: String!) { switchTenant(tenant: $tenant) { accessToken } }`);
const MEMBERSHIPS = graphql(`query IsolationMemberships { me { memberships(first: 100) { tenant { id slug name } role current } } }`);

/** No data came back: `data` is null, or (for a nullable root field) the field is null. */
function expectNoData(data: unknown): void {
  if (data === null || data === undefined) return;
  expect(Object.values(data as Record<string, unknown>).every((value) => value === null)).toBe(true);
}

async function platformRowIds(sql: string, values: unknown[]): Promise<string[]> {
  const result = await app.server.services.platform.pool.query<{ id: string }>(sql, values);
  return result.rows.map((row) => row.id).sort();
}

async function expectNotFound(request: Promise<unknown>): Promise<void> {
  const { errors, data } = await expectErrors(request);
  expect(errors.map((error) => error.extensions.code)).toEqual(['NOT_FOUND']);
  expect(data).toBeNull();
}

/*
 * One entry per tenant-scoped (`@auth`) root field. Every attack runs as A's OWNER with B's
 * identifiers; the harness below compares B (and, unless the attack changes A, A) before and
 * after.
 */
const SUBSCRIBE_TRIP_UPDATED = 'subscription IsolationTripUpdated($id: ID!) { tripUpdated(id: $id) { id reference } }';
const SUBSCRIBE_TRIPS_CHANGED = 'subscription IsolationTripsChanged { tripsChanged { eventId trip { id reference } } }';

const rowIdOf = (globalId: string) => parseGlobalId(globalId)?.id as string;

/** A trip event as the events worker publishes it (the test publishes through the server's own bus). */
function tripEvent(tenantId: string, tripRowId: string): DomainEvent {
  return {
    id: randomUUID(),
    tenantId,
    type: 'TRIP_TRANSITIONED',
    occurredAt: new Date(),
    subject: { type: 'Trip', id: tripRowId },
    actor: { kind: 'USER', id: null },
    data: { from: 'DRAFT', to: 'PLANNED' },
  };
}

/** A's OWNER over WebSocket for the duration of `run`; the server has no subscription left after. */
async function withSubscriptions(run: (connection: SubscriptionConnection) => Promise<void>): Promise<void> {
  const connection = connectSubscriptions(app.url, { authorization: `Bearer ${A.ownerToken}` });
  try {
    await run(connection);
  } finally {
    await connection.dispose();
    await eventually(async () => (app.server.services.eventBus.listenerCount() === 0 ? true : undefined), 5_000, 20);
  }
}

const listening = (tenantId: string, count: number) =>
  eventually(async () => (app.server.services.eventBus.listenerCount(tenantId) >= count ? true : undefined), 5_000, 20);

const isolationCases: Record<string, Attack[]> = {
  notifications: [
    {
      name: "A's members are told of A's events only: none of B's subjects or notification ids",
      run: async () => {
        const bIds = (await notificationsOfB()).map((node) => node.id);
        for (const client of [A.owner, A.admin.client]) {
          const seen = JSON.stringify((await client.request(NOTIFICATIONS, {})).notifications);
          for (const id of [...bIds, ...bSubjects()]) expect(seen).not.toContain(id);
        }
        // Control: A's admin is told of A's owner's changes.
        expect((await A.admin.client.request(NOTIFICATIONS, {})).notifications.totalCount).toBeGreaterThan(0);
      },
    },
  ],
  unreadNotificationCount: [
    {
      name: "counts A's own unread only: the count is what A's unread list holds, none of it B's",
      run: async () => {
        const bUnread = (await notificationsOfB()).filter((node) => node.readAt === null);
        expect(bUnread.length).toBeGreaterThan(0);
        for (const client of [A.owner, A.admin.client]) {
          const own = await client.request(NOTIFICATIONS, { unreadOnly: true });
          expect(own.unreadNotificationCount).toBe(own.notifications.totalCount);
          const ids = own.notifications.edges.map((edge) => edge.node.id);
          for (const node of bUnread) expect(ids).not.toContain(node.id);
        }
      },
    },
  ],
  markNotificationsRead: [
    {
      name: "marks none of B's notifications; they stay unread in B",
      run: async () => {
        const bUnread = (await notificationsOfB()).filter((node) => node.readAt === null).map((node) => node.id);
        expect(bUnread.length).toBeGreaterThan(0);
        expect((await A.owner.request(MARK_READ, { ids: bUnread })).markNotificationsRead.marked).toBe(0);
        expect((await A.admin.client.request(MARK_READ, { ids: bUnread })).markNotificationsRead.marked).toBe(0);
        const still = (await B.admin.client.request(NOTIFICATIONS, { unreadOnly: true })).notifications.edges.map((edge) => edge.node.id);
        expect(still).toEqual(expect.arrayContaining(bUnread));
      },
    },
  ],
  notificationDeliveries: [
    {
      name: "lists A's deliveries only: B's delivery and event ids find nothing",
      run: async () => {
        const bDeliveries = await deliveriesOfB();
        expect(bDeliveries.length).toBeGreaterThan(0);
        const seen = JSON.stringify((await A.owner.request(DELIVERIES, {})).notificationDeliveries);
        for (const delivery of bDeliveries) {
          expect(seen).not.toContain(delivery.id);
          expect(seen).not.toContain(delivery.eventId);
          expect((await A.owner.request(DELIVERIES, { filter: { eventId: delivery.eventId } })).notificationDeliveries.totalCount).toBe(0);
        }
      },
    },
  ],
  redeliverNotifications: [
    {
      name: "queues none of B's deliveries: empty answer, B's unchanged",
      run: async () => {
        const bDeliveries = await deliveriesOfB();
        expect((await A.owner.request(REDELIVER, { ids: bDeliveries.map((delivery) => delivery.id) })).redeliverNotifications.deliveries).toEqual([]);
        const after = await B.owner.request(DELIVERIES, {});
        for (const delivery of bDeliveries) {
          expect(after.notificationDeliveries.edges.map((edge) => edge.node)).toContainEqual(expect.objectContaining({ id: delivery.id, attempts: delivery.attempts }));
        }
      },
    },
  ],
  notificationRoutes: [
    {
      name: "reads A's routing; A's change of routing is not B's",
      changesA: true,
      run: async () => {
        await A.owner.request(SET_ROUTES, { routes: [{ eventType: 'DRIVER_DELETED', channel: 'SLACK', enabled: true }] });
        expect((await A.owner.request(ROUTES)).notificationRoutes).toContainEqual({ eventType: 'DRIVER_DELETED', channel: 'SLACK', enabled: true, isDefault: false });
        expect((await B.owner.request(ROUTES)).notificationRoutes).toContainEqual({ eventType: 'DRIVER_DELETED', channel: 'SLACK', enabled: false, isDefault: true });
      },
    },
  ],
  setNotificationRoutes: [
    {
      name: "changes A's routing only: B's stays as it was",
      changesA: true,
      run: async () => {
        const before = (await B.owner.request(ROUTES)).notificationRoutes;
        await A.owner.request(SET_ROUTES, { routes: [{ eventType: 'VEHICLE_DELETED', channel: 'EMAIL', enabled: true }] });
        expect((await B.owner.request(ROUTES)).notificationRoutes).toEqual(before);
      },
    },
  ],
  myNotificationPreferences: [
    {
      name: "are the caller's own in its own tenant",
      changesA: true,
      run: async () => {
        await A.admin.client.request(MUTE, { eventTypes: ['STOP_ARRIVED'] });
        expect((await A.admin.client.request(PREFERENCES)).myNotificationPreferences.mutedEventTypes).toContain('STOP_ARRIVED');
        expect((await B.admin.client.request(PREFERENCES)).myNotificationPreferences.mutedEventTypes).not.toContain('STOP_ARRIVED');
      },
    },
  ],
  setNotificationsMuted: [
    {
      name: "mutes for the caller in A only: B's members' preferences unchanged",
      changesA: true,
      run: async () => {
        const before = (await B.admin.client.request(PREFERENCES)).myNotificationPreferences;
        await A.owner.request(MUTE, { eventTypes: ['TRIP_NOTE_CREATED'] });
        expect((await B.admin.client.request(PREFERENCES)).myNotificationPreferences).toEqual(before);
      },
    },
  ],
  vehicle: [
    {
      name: "returns null for each of B's vehicle ids",
      run: async () => {
        for (const target of B.vehicles) {
          const result = await A.owner.request(VEHICLE, { id: target.id });
          expect(result.vehicle).toBeNull();
        }
        // Control: the same query finds A's own vehicle.
        const own = await A.owner.request(VEHICLE, { id: vehicle(A, 0).id });
        expect(own.vehicle?.id).toBe(vehicle(A, 0).id);
      },
    },
  ],
  driver: [
    {
      name: "returns null for each of B's driver ids",
      run: async () => {
        for (const target of B.drivers) {
          const result = await A.owner.request(DRIVER, { id: target.id });
          expect(result.driver).toBeNull();
        }
        const own = await A.owner.request(DRIVER, { id: driver(A, 0).id });
        expect(own.driver?.id).toBe(driver(A, 0).id);
      },
    },
  ],
  node: [
    {
      name: "returns null for B's vehicle and driver global ids",
      run: async () => {
        for (const id of [...B.vehicles.map((row) => row.id), ...B.drivers.map((row) => row.id), B.trip.id, ...Object.values(B.deleted), B.maintenanceId]) {
          const result = await A.owner.request(NODE, { id });
          expect(result.node).toBeNull();
        }
        const own = await A.owner.request(NODE, { id: driver(A, 1).id });
        expect(own.node).toEqual({ __typename: 'Driver', id: driver(A, 1).id, name: driver(A, 1).name });
      },
    },
    {
      name: "returns null for B's stop and note global ids",
      run: async () => {
        for (const id of [...B.stopIds, B.noteId]) expect((await A.owner.request(NODE, { id })).node).toBeNull();
        expect((await A.owner.request(NODE, { id: A.noteId })).node).toMatchObject({ __typename: 'TripNote', id: A.noteId });
      },
    },
  ],
  stops: [
    {
      name: "lists exactly A's live stops; B's trips as a filter find nothing",
      run: async () => {
        const live = await (await tenantSchemaPool(A)).query<{ id: string }>(
          `SELECT s.id FROM ${quoteIdentifier(A.schemaName)}."Stop" s JOIN ${quoteIdentifier(A.schemaName)}."Trip" t ON t.id = s."tripId"
            WHERE s."deletedAt" IS NULL AND t."deletedAt" IS NULL ORDER BY s.id`,
        );
        const all = await A.owner.request(STOPS, {});
        expect(all.stops.edges.map((edge) => edge.node.id)).toEqual(live.rows.map((row) => toGlobalId('Stop', row.id)));
        expect(all.stops.edges.map((edge) => edge.node.id)).toEqual(expect.arrayContaining(A.stopIds));
        expect(all.stops.totalCount).toBe(all.stops.edges.length);
        for (const filter of [{ tripId: B.trip.id }, { tripId: B.deleted.tripId }, { tripId: B.trip.id, tripStatuses: ['PLANNED' as const] }]) {
          const found = await A.owner.request(STOPS, { filter });
          expect({ filter, stops: found.stops }).toEqual({ filter, stops: { totalCount: 0, edges: [] } });
        }
        // B's stops exist (B lists them), so the empty answers above are isolation, not absence.
        const ofB = await B.owner.request(STOPS, { filter: { tripId: B.trip.id } });
        expect(ofB.stops.edges.map((edge) => edge.node.id).sort()).toEqual([...B.stopIds].sort());
      },
    },
  ],
  addStop: [
    {
      name: "NOT_FOUND for B's trips, live or deleted",
      run: async () => {
        for (const tripId of [B.trip.id, B.deleted.tripId]) await expectNotFound(A.owner.request(ADD_STOP, { tripId }));
      },
    },
  ],
  updateStop: [
    {
      name: "NOT_FOUND for B's stops",
      run: async () => {
        for (const id of B.stopIds) await expectNotFound(A.owner.request(UPDATE_STOP, { id }));
      },
    },
  ],
  removeStop: [
    {
      name: "NOT_FOUND for B's stops",
      run: async () => {
        for (const id of B.stopIds) await expectNotFound(A.owner.request(REMOVE_STOP, { id }));
      },
    },
  ],
  reorderStops: [
    {
      name: "NOT_FOUND for B's trip with B's stops; A's own trip with B's stops is BAD_USER_INPUT and stays as it was",
      run: async () => {
        await expectNotFound(A.owner.request(REORDER_STOPS, { tripId: B.trip.id, stopIds: [...B.stopIds].reverse() }));
        for (const stopIds of [[...B.stopIds].reverse(), [A.stopIds[1] as string, B.stopIds[0] as string]]) {
          const { errors } = await expectErrors(A.owner.request(REORDER_STOPS, { tripId: A.trip.id, stopIds }));
          expect(errors.map((error) => [error.extensions.code, error.extensions.field])).toEqual([['BAD_USER_INPUT', 'stopIds']]);
        }
      },
    },
  ],
  markStopArrived: [
    {
      name: "NOT_FOUND for B's stops",
      run: async () => {
        for (const id of B.stopIds) await expectNotFound(A.owner.request(ARRIVE_STOP, { id }));
      },
    },
  ],
  completeStop: [
    {
      name: "NOT_FOUND for B's stops",
      run: async () => {
        for (const id of B.stopIds) await expectNotFound(A.owner.request(COMPLETE_STOP, { id }));
      },
    },
  ],
  addTripNote: [
    {
      name: "NOT_FOUND for B's trips, live or deleted",
      run: async () => {
        for (const tripId of [B.trip.id, B.deleted.tripId]) await expectNotFound(A.owner.request(ADD_NOTE, { tripId }));
      },
    },
  ],
  editTripNote: [
    {
      name: "NOT_FOUND for B's note",
      run: async () => {
        await expectNotFound(A.owner.request(EDIT_NOTE, { id: B.noteId }));
      },
    },
  ],
  deleteTripNote: [
    {
      name: "NOT_FOUND for B's note",
      run: async () => {
        await expectNotFound(A.owner.request(DELETE_NOTE, { id: B.noteId }));
      },
    },
  ],
  vehicles: [
    {
      name: "lists exactly A's vehicles, totalCount A's only",
      run: async () => {
        const listed = await listVehicles(A.owner);
        const expected = await globalIdsInSchema(A, 'Vehicle');
        expect(listed.ids).toEqual(expected);
        expect(listed.totalCount).toBe(expected.length);
        expectNoneOf(listed.ids, B);
      },
    },
    {
      name: "includeDeleted lists A's deleted vehicle and none of B's",
      run: async () => {
        const result = await A.owner.request(graphql(`query IsolationAllVehicles { vehicles(first: 20, includeDeleted: true) { totalCount edges { node { id } } } }`));
        expect(result.vehicles.edges.map((edge) => edge.node.id)).toEqual(await globalIdsInSchema(A, 'Vehicle', true));
        expect(result.vehicles.edges.map((edge) => edge.node.id)).toContain(A.deleted.vehicleId);
        expect(result.vehicles.edges.map((edge) => edge.node.id)).not.toContain(B.deleted.vehicleId);
      },
    },
    {
      name: "search by B's plates and make finds nothing of B",
      run: async () => {
        for (const search of ['BRAVO', vehicle(B, 1).plate, 'bravomake', 'bravo model']) {
          expect(await listVehicles(A.owner, { filter: { search } })).toEqual({ totalCount: 0, ids: [] });
        }
        // A plate both tenants use finds A's vehicle only.
        expect(await listVehicles(A.owner, { filter: { search: SHARED_PLATE } })).toEqual({ totalCount: 1, ids: [vehicle(A, 2).id] });
      },
    },
    {
      name: "hasDriver filter and nested drivers show only A's assignment",
      run: async () => {
        const result = await A.owner.request(
          VEHICLE_IDS,
          { filter: { hasDriver: true } },
        );
        expect(result.vehicles.totalCount).toBe(1);
        expect(result.vehicles.edges.map((edge) => edge.node)).toEqual([
          { id: vehicle(A, 0).id, plate: vehicle(A, 0).plate, driver: { id: driver(A, 0).id } },
        ]);
      },
    },
    {
      name: "a cursor made from B's row id pages through A's rows only",
      run: async () => {
        const bRowId = Buffer.from(vehicle(B, 0).id, 'base64url').toString('utf8').split(':')[1] as string;
        const listed = await listVehicles(A.owner, { after: Buffer.from(`cursor:${bRowId}`, 'utf8').toString('base64url') });
        expectNoneOf(listed.ids, B);
        const own = new Set(await globalIdsInSchema(A, 'Vehicle'));
        expect(listed.ids.every((id) => own.has(id))).toBe(true);
        expect(listed.totalCount).toBe(own.size);
      },
    },
  ],
  drivers: [
    {
      name: "lists exactly A's drivers, totalCount A's only",
      run: async () => {
        const listed = await listDrivers(A.owner);
        const expected = await globalIdsInSchema(A, 'Driver');
        expect(listed.ids).toEqual(expected);
        expect(listed.totalCount).toBe(expected.length);
        expectNoneOf(listed.ids, B);
      },
    },
    {
      name: "search by B's names, licence numbers and emails finds nothing of B",
      run: async () => {
        for (const search of ['bravo', driver(B, 0).name, driver(B, 1).licenseNumber, driver(B, 0).email]) {
          expect(await listDrivers(A.owner, { filter: { search } })).toEqual({ totalCount: 0, ids: [] });
        }
        expect(await listDrivers(A.owner, { filter: { search: SHARED_LICENSE } })).toEqual({ totalCount: 1, ids: [driver(A, 2).id] });
        expect(await listDrivers(A.owner, { filter: { assigned: true } })).toEqual({ totalCount: 1, ids: [driver(A, 0).id] });
      },
    },
  ],
  createVehicle: [
    {
      name: "a plate B already uses is created in A only (no cross-tenant CONFLICT)",
      changesA: true,
      run: async () => {
        const created = await A.owner.request(CREATE_VEHICLE, {
          input: { plate: vehicle(B, 1).plate, make: 'Attacker', model: 'Probe', year: 2021 },
        });
        expect(created.createVehicle.vehicle.plate).toBe(vehicle(B, 1).plate);
        expect(await globalIdsInSchema(A, 'Vehicle')).toContain(created.createVehicle.vehicle.id);
        expect(await globalIdsInSchema(B, 'Vehicle')).not.toContain(created.createVehicle.vehicle.id);
        await A.owner.request(DELETE_VEHICLE, { id: created.createVehicle.vehicle.id });
      },
    },
  ],
  createDriver: [
    {
      name: "a licence number B already uses is created in A only (no cross-tenant CONFLICT)",
      changesA: true,
      run: async () => {
        const created = await A.owner.request(CREATE_DRIVER, {
          input: { name: 'Probe Driver', licenseNumber: driver(B, 1).licenseNumber },
        });
        expect(created.createDriver.driver.licenseNumber).toBe(driver(B, 1).licenseNumber);
        expect(await globalIdsInSchema(A, 'Driver')).toContain(created.createDriver.driver.id);
        expect(await globalIdsInSchema(B, 'Driver')).not.toContain(created.createDriver.driver.id);
        await A.owner.request(DELETE_DRIVER, { id: created.createDriver.driver.id });
      },
    },
  ],
  updateVehicle: [
    {
      name: "NOT_FOUND for B's vehicles",
      run: async () => {
        for (const target of B.vehicles) {
          await expectNotFound(A.owner.request(UPDATE_VEHICLE, { id: target.id, input: { odometerKm: 999_999, make: 'Hijacked' } }));
        }
      },
    },
  ],
  deleteVehicle: [
    {
      name: "NOT_FOUND for B's vehicles",
      run: async () => {
        for (const target of B.vehicles) await expectNotFound(A.owner.request(DELETE_VEHICLE, { id: target.id }));
      },
    },
  ],
  updateDriver: [
    {
      name: "NOT_FOUND for B's drivers",
      run: async () => {
        for (const target of B.drivers) {
          await expectNotFound(A.owner.request(UPDATE_DRIVER, { id: target.id, input: { name: 'Hijacked', status: 'ON_LEAVE' } }));
        }
      },
    },
  ],
  deleteDriver: [
    {
      name: "NOT_FOUND for B's drivers",
      run: async () => {
        for (const target of B.drivers) await expectNotFound(A.owner.request(DELETE_DRIVER, { id: target.id }));
      },
    },
  ],
  assignDriver: [
    {
      name: "A's vehicle + B's driver: NOT_FOUND, A's vehicle keeps its driver",
      run: async () => {
        await expectNotFound(A.owner.request(ASSIGN, { vehicleId: vehicle(A, 1).id, driverId: driver(B, 1).id }));
        await expectNotFound(A.owner.request(ASSIGN, { vehicleId: vehicle(A, 0).id, driverId: driver(B, 1).id }));
      },
    },
    {
      name: "B's vehicle + A's driver: NOT_FOUND",
      run: async () => {
        await expectNotFound(A.owner.request(ASSIGN, { vehicleId: vehicle(B, 1).id, driverId: driver(A, 1).id }));
      },
    },
    {
      name: "B's vehicle + B's driver: NOT_FOUND",
      run: async () => {
        await expectNotFound(A.owner.request(ASSIGN, { vehicleId: vehicle(B, 1).id, driverId: driver(B, 1).id }));
      },
    },
    {
      name: "unassigning B's assigned vehicle (driverId null): NOT_FOUND, B keeps the assignment",
      run: async () => {
        await expectNotFound(A.owner.request(ASSIGN, { vehicleId: vehicle(B, 0).id, driverId: null }));
      },
    },
  ],
  trip: [
    {
      name: "returns null for B's trip id",
      run: async () => {
        expect((await A.owner.request(TRIP, { id: B.trip.id })).trip).toBeNull();
        expect((await A.owner.request(TRIP, { id: A.trip.id })).trip?.id).toBe(A.trip.id);
      },
    },
  ],
  tripUpdated: [
    {
      name: "over WebSocket: NOT_FOUND for B's trip id; B's events on it, and an event under A's id naming it, never reach A's subscription of its own trip",
      run: async () => {
        await withSubscriptions(async (connection) => {
          const attack = connection.subscribe({ query: SUBSCRIBE_TRIP_UPDATED, variables: { id: B.trip.id } });
          await attack.ended();
          expect(attack.results.flatMap((result) => result.errors ?? []).map((error) => error.extensions?.code)).toEqual(['NOT_FOUND']);
          const own = connection.subscribe({ query: SUBSCRIBE_TRIP_UPDATED, variables: { id: A.trip.id } });
          await listening(A.id, 1);
          expect(app.server.services.eventBus.listenerCount(B.id)).toBe(0);
          await app.server.services.eventBus.publish(tripEvent(B.id, rowIdOf(B.trip.id)));
          await app.server.services.eventBus.publish(tripEvent(A.id, rowIdOf(B.trip.id)));
          await app.server.services.eventBus.publish(tripEvent(A.id, rowIdOf(A.trip.id)));
          expect((await own.nth(1)).data).toEqual({ tripUpdated: { id: A.trip.id, reference: A.trip.reference } });
          await sleep(100);
          // The real events of A's own changes (the delivery worker's) may come too; B's trip never.
          expect(own.results.map((result) => result.data)).toEqual(own.results.map(() => ({ tripUpdated: { id: A.trip.id, reference: A.trip.reference } })));
          expect(attack.results).toHaveLength(1);
        });
      },
    },
  ],
  notificationAdded: [
    {
      name: "over WebSocket: A's owner gets A's notifications only: none published for B's tenant (even naming A's owner), none for B's members",
      changesA: true,
      run: async () => {
        await withSubscriptions(async (connection) => {
          const added = connection.subscribe({ query: 'subscription IsolationNotificationAdded { notificationAdded { id type subjectId title } }' });
          await listening(A.id, 1);
          const bus = app.server.services.eventBus;
          await bus.publishToUser(B.id, A.ownerId, { id: 'b-tenant', type: 'vehicle.created', title: 'from B', subjectType: 'Vehicle', subjectId: 'b' });
          await bus.publishToUser(A.id, B.admin.id, { id: 'b-member', type: 'vehicle.created', title: 'for B', subjectType: 'Vehicle', subjectId: 'b' });
          // Control: a real change by A's admin is a real notification for A's owner.
          const plate = `ISO-NA-${Date.now() % 1e6}`;
          const created = await A.admin.client.request(CREATE_VEHICLE, { input: { plate, make: 'Volvo', model: 'FH', year: 2021 } });
          type Added = { notificationAdded: { id: string; type: string; subjectId: string; title: string } };
          const mine = await eventually(async () => {
            const found = added.results.map((result) => (result.data as Added | undefined)?.notificationAdded).find((node) => node?.subjectId === created.createVehicle.vehicle.id);
            return found ?? undefined;
          }, 10_000, 20);
          expect(mine).toMatchObject({ type: 'VEHICLE_CREATED', title: `Vehicle ${plate} was added` });
          // A's fleet as the other cases expect it.
          await A.owner.request(DELETE_VEHICLE, { id: created.createVehicle.vehicle.id });
          await sleep(100);
          expect(JSON.stringify(added.results)).not.toMatch(/from B|for B/);
        });
      },
    },
  ],
  tripsChanged: [
    {
      name: "over WebSocket: nothing of B reaches A: B's trip events, and an event under A's id naming B's trip (read through A's tenant: no such trip)",
      run: async () => {
        await withSubscriptions(async (connection) => {
          const changes = connection.subscribe({ query: SUBSCRIBE_TRIPS_CHANGED });
          await listening(A.id, 1);
          await app.server.services.eventBus.publish(tripEvent(B.id, rowIdOf(B.trip.id)));
          await app.server.services.eventBus.publish(tripEvent(A.id, rowIdOf(B.trip.id)));
          const own = tripEvent(A.id, rowIdOf(A.trip.id));
          await app.server.services.eventBus.publish(own);
          type Change = { tripsChanged: { eventId: string; trip: { id: string; reference: string } } };
          await eventually(async () => (changes.results.some((result) => (result.data as Change | undefined)?.tripsChanged.eventId === own.id) ? true : undefined), 5_000, 20);
          await sleep(100);
          // The real events of A's own changes (the delivery worker's) may come too; nothing of B.
          const trips = changes.results.map((result) => (result.data as Change).tripsChanged.trip);
          expect(trips).toContainEqual({ id: A.trip.id, reference: A.trip.reference });
          expect(trips.map((trip) => trip.id)).not.toContain(B.trip.id);
          expect(JSON.stringify(changes.results)).not.toContain(B.trip.reference);
        });
      },
    },
  ],
  trips: [
    {
      name: "lists exactly A's trips; B's vehicle, driver and reference as filters find nothing",
      run: async () => {
        const all = await A.owner.request(TRIPS, {});
        expect(all.trips.edges.map((edge) => edge.node.id)).toEqual(await globalIdsInSchema(A, 'Trip'));
        expect(all.trips.totalCount).toBe(all.trips.edges.length);
        for (const filter of [{ vehicleId: vehicle(B, 1).id }, { driverId: driver(B, 1).id }, { search: B.trip.reference }, { search: 'bravo depot' }]) {
          const found = await A.owner.request(TRIPS, { filter });
          expect({ filter, totalCount: found.trips.totalCount, ids: found.trips.edges.map((edge) => edge.node.id) }).toEqual({ filter, totalCount: 0, ids: [] });
        }
      },
    },
  ],
  createTrip: [
    {
      name: "NOT_FOUND with B's vehicle or driver; B's reference is created in A only",
      changesA: true,
      run: async () => {
        await expectNotFound(A.owner.request(CREATE_TRIP, { input: { reference: 'PROBE-1', origin: 'x', destination: 'y', vehicleId: vehicle(B, 2).id } }));
        await expectNotFound(A.owner.request(CREATE_TRIP, { input: { reference: 'PROBE-2', origin: 'x', destination: 'y', driverId: driver(B, 2).id } }));
        const created = await A.owner.request(CREATE_TRIP, { input: { reference: B.trip.reference.replace('BRAVO', 'bravo'), origin: 'x', destination: 'y' } });
        expect(await globalIdsInSchema(A, 'Trip')).toContain(created.createTrip.trip.id);
        expect(await globalIdsInSchema(B, 'Trip')).not.toContain(created.createTrip.trip.id);
      },
    },
  ],
  updateTrip: [
    {
      name: "NOT_FOUND for B's trip; A's own trip cannot take B's vehicle or driver",
      run: async () => {
        await expectNotFound(A.owner.request(UPDATE_TRIP, { id: B.trip.id, input: { destination: 'Hijacked' } }));
        await expectNotFound(A.owner.request(UPDATE_TRIP, { id: A.trip.id, input: { vehicleId: vehicle(B, 2).id } }));
        await expectNotFound(A.owner.request(UPDATE_TRIP, { id: A.trip.id, input: { driverId: driver(B, 2).id } }));
      },
    },
  ],
  transitionTrip: [
    {
      name: "NOT_FOUND for B's trip, whatever the target",
      run: async () => {
        for (const to of ['DRAFT', 'DISPATCHED', 'CANCELLED'] as const) {
          await expectNotFound(A.owner.request(TRANSITION_TRIP, { input: { id: B.trip.id, to, reason: 'probe' } }));
        }
      },
    },
  ],
  fleetSummary: [
    {
      name: "counts A's vehicles only: a status only A has shows in A's summary, and B's figures never do",
      changesA: true,
      run: async () => {
        const extra = await A.owner.request(CREATE_VEHICLE, { input: { plate: 'SUMMARY-ONLY-A', make: 'Probe', model: 'Probe', year: 2020, status: 'MAINTENANCE' } });
        const summary = await A.owner.request(graphql(`query IsolationFleetSummary { fleetSummary { vehiclesByStatus { status count } driversOnDuty } }`));
        const byStatus = Object.fromEntries(summary.fleetSummary.vehiclesByStatus.map((entry) => [entry.status, entry.count]));
        const counted = await app.server.services.platform.pool.query<{ status: string; n: number }>(
          `SELECT status::text, count(*)::int AS n FROM ${quoteIdentifier(A.schemaName)}."Vehicle" WHERE "deletedAt" IS NULL GROUP BY status`,
        );
        expect(byStatus).toEqual({ ACTIVE: 0, MAINTENANCE: 0, RETIRED: 0, ...Object.fromEntries(counted.rows.map((row) => [row.status, row.n])) });
        // B has no vehicle this one status-only-A probe made, so a B figure would differ.
        expect(byStatus.MAINTENANCE).toBe(2);
        await A.owner.request(DELETE_VEHICLE, { id: extra.createVehicle.vehicle.id });
      },
    },
  ],
  auditEvents: [
    {
      name: "lists A's entries only: B's record ids, B's members and B's request ids as filters find nothing",
      run: async () => {
        const all = await A.owner.request(AUDIT_EVENTS, {});
        expect(all.auditEvents.totalCount).toBeGreaterThan(0);
        const aTargets = new Set(all.auditEvents.edges.map((edge) => edge.node.targetId));
        for (const target of [...B.vehicles.map((v) => v.id), ...B.drivers.map((d) => d.id), B.trip.id, B.maintenanceId, B.apiKey.id, B.admin.id, B.ownerId]) {
          expect(aTargets.has(target)).toBe(false);
          expect((await A.owner.request(AUDIT_EVENTS, { filter: { targetId: target } })).auditEvents).toEqual({ totalCount: 0, edges: [] });
        }
        for (const actorId of [B.ownerId, B.admin.id, B.apiKey.id]) {
          expect((await A.owner.request(AUDIT_EVENTS, { filter: { actorId } })).auditEvents.totalCount).toBe(0);
        }
        // B's entries exist (B reads them), so the empty answers above are isolation, not absence.
        expect((await B.owner.request(AUDIT_EVENTS, { filter: { targetId: B.trip.id } })).auditEvents.totalCount).toBeGreaterThan(0);
      },
    },
  ],
  fleetSettings: [
    {
      name: "reads A's settings, never B's",
      changesA: true,
      run: async () => {
        await A.owner.request(UPDATE_SETTINGS, { input: { timeZone: 'Asia/Tokyo', currency: 'JPY' } });
        expect((await A.owner.request(graphql(`query IsolationSettings { fleetSettings { timeZone currency } }`))).fleetSettings).toEqual({ timeZone: 'Asia/Tokyo', currency: 'JPY' });
      },
    },
  ],
  updateFleetSettings: [
    {
      name: "changes A's settings only (B's are in the snapshot)",
      changesA: true,
      run: async () => {
        const changed = await A.owner.request(UPDATE_SETTINGS, { input: { lateToleranceMinutes: 42, currency: 'CHF' } });
        expect(changed.updateFleetSettings.settings).toMatchObject({ lateToleranceMinutes: 42, currency: 'CHF' });
      },
    },
  ],
  tenantUsage: [
    {
      name: "counts A's rows, members and keys only; B's usage is B's own",
      run: async () => {
        const usage = async (tenant: TenantFixture) => {
          const schema = quoteIdentifier(tenant.schemaName);
          const [inSchema, inPlatform] = await Promise.all([
            (await tenantSchemaPool(tenant)).query<Record<string, number>>(
              `SELECT (SELECT count(*)::int FROM ${schema}."Vehicle" WHERE "deletedAt" IS NULL) AS "VEHICLES",
                 (SELECT count(*)::int FROM ${schema}."Driver" WHERE "deletedAt" IS NULL) AS "DRIVERS",
                 (SELECT count(*)::int FROM ${schema}."Trip" WHERE "deletedAt" IS NULL AND status NOT IN ('DELIVERED', 'CANCELLED')) AS "OPEN_TRIPS"`,
            ),
            app.server.services.platform.pool.query<Record<string, number>>(
              `SELECT (SELECT count(*)::int FROM platform."Membership" WHERE "tenantId" = $1) AS "MEMBERS",
                 (SELECT count(*)::int FROM platform."ApiKey" WHERE "tenantId" = $1 AND "revokedAt" IS NULL AND ("expiresAt" IS NULL OR "expiresAt" > now())) AS "API_KEYS"`,
              [tenant.id],
            ),
          ]);
          return { ...inSchema.rows[0], ...inPlatform.rows[0] };
        };
        const seen = (await A.owner.request(TENANT_USAGE)).tenantUsage.quotas;
        expect(Object.fromEntries(seen.map((entry) => [entry.quota, entry.usage]))).toEqual(await usage(A));
        const bAsAdmin = await (await app.admin()).request(graphql(`query IsolationUsageOfB($slug: String!) { tenant(slug: $slug) { usage { quotas { quota usage } } } }`), { slug: B.slug });
        expect(Object.fromEntries((bAsAdmin.tenant?.usage?.quotas ?? []).map((entry) => [entry.quota, entry.usage]))).toEqual(await usage(B));
      },
    },
  ],
  maintenanceRecords: [
    {
      name: "lists A's records only; B's vehicle as a filter finds nothing",
      run: async () => {
        const all = await A.owner.request(MAINTENANCE_RECORDS, {});
        expect(all.maintenanceRecords.edges.map((edge) => edge.node.id)).toEqual([A.maintenanceId]);
        const byB = await A.owner.request(MAINTENANCE_RECORDS, { filter: { vehicleId: vehicle(B, 2).id } });
        expect(byB.maintenanceRecords).toEqual({ totalCount: 0, edges: [] });
      },
    },
  ],
  openMaintenance: [
    {
      name: "NOT_FOUND for B's vehicles",
      run: async () => {
        for (const target of B.vehicles) await expectNotFound(A.owner.request(OPEN_MAINTENANCE, { vehicleId: target.id }));
      },
    },
  ],
  closeMaintenance: [
    {
      name: "NOT_FOUND for B's open record",
      run: async () => {
        await expectNotFound(A.owner.request(CLOSE_MAINTENANCE, { id: B.maintenanceId }));
      },
    },
  ],
  deleteTrip: [
    {
      name: "NOT_FOUND for B's trips, live or deleted",
      run: async () => {
        for (const id of [B.trip.id, B.deleted.tripId]) await expectNotFound(A.owner.request(DELETE_TRIP, { id }));
      },
    },
  ],
  restoreTrip: [
    {
      name: "NOT_FOUND for B's deleted trip",
      run: async () => {
        await expectNotFound(A.owner.request(RESTORE_TRIP, { id: B.deleted.tripId }));
      },
    },
  ],
  restoreVehicle: [
    {
      name: "NOT_FOUND for B's deleted vehicle",
      run: async () => {
        await expectNotFound(A.owner.request(RESTORE_VEHICLE, { id: B.deleted.vehicleId }));
      },
    },
  ],
  restoreDriver: [
    {
      name: "NOT_FOUND for B's deleted driver",
      run: async () => {
        await expectNotFound(A.owner.request(RESTORE_DRIVER, { id: B.deleted.driverId }));
      },
    },
  ],
  members: [
    {
      name: "lists A's members only, never B's",
      run: async () => {
        const result = await A.owner.request(MEMBERS);
        const ids = result.members.map((member) => member.id);
        expect(ids).not.toContain(B.ownerId);
        expect(ids).not.toContain(B.admin.id);
        expect(result.members.map((member) => member.email)).not.toContain(B.ownerEmail);
        const inA = await app.server.services.platform.pool.query<{ userId: string }>(
          `SELECT "userId" FROM platform."Membership" WHERE "tenantId" = $1`,
          [A.id],
        );
        expect(new Set(ids)).toEqual(new Set(inA.rows.map((row) => row.userId)));
      },
    },
  ],
  membersConnection: [
    {
      name: "lists A's members only, in every order and by B's emails; B's cursors continue A's list, never B's",
      run: async () => {
        const inA = await app.server.services.platform.pool.query<{ userId: string }>(`SELECT "userId" FROM platform."Membership" WHERE "tenantId" = $1`, [A.id]);
        const aIds = new Set(inA.rows.map((row) => row.userId));
        const bIds = [B.ownerId, B.admin.id];
        for (const field of ['JOINED_AT', 'NAME', 'EMAIL', 'ROLE'] as const) {
          const { membersConnection } = await A.owner.request(MEMBERS_PAGE, { first: 100, orderBy: { field, direction: 'DESC' } });
          expect(new Set(membersConnection.edges.map((edge) => edge.node.id))).toEqual(aIds);
          expect(membersConnection.totalCount).toBe(aIds.size);
          // B's last member in this order: A, continuing from it, gets A's members past that point and none of B's.
          const fromB = (await B.owner.request(MEMBERS_PAGE, { first: 1, orderBy: { field, direction: 'DESC' } })).membersConnection.pageInfo.endCursor;
          expect(fromB).toEqual(expect.any(String));
          const continued = (await A.owner.request(MEMBERS_PAGE, { first: 100, after: fromB, orderBy: { field, direction: 'DESC' } })).membersConnection;
          const continuedIds = continued.edges.map((edge) => edge.node.id);
          expect(continuedIds.filter((id) => !aIds.has(id) || bIds.includes(id))).toEqual([]);
        }
        for (const search of [B.ownerEmail, B.admin.email]) {
          expect((await A.owner.request(MEMBERS_PAGE, { filter: { search } })).membersConnection).toEqual({ totalCount: 0, pageInfo: { endCursor: null }, edges: [] });
        }
        const admins = (await A.owner.request(MEMBERS_PAGE, { first: 100, filter: { roles: ['ADMIN', 'OWNER'] } })).membersConnection.edges.map((edge) => edge.node.id);
        const aAdmins = await app.server.services.platform.pool.query<{ userId: string }>(
          `SELECT "userId" FROM platform."Membership" WHERE "tenantId" = $1 AND "role" IN ('ADMIN', 'OWNER')`,
          [A.id],
        );
        expect(new Set(admins)).toEqual(new Set(aAdmins.rows.map((row) => row.userId)));
        expect(admins).not.toContain(B.ownerId);
      },
    },
  ],
  updateMemberRole: [
    {
      name: "NOT_FOUND for B's owner and B's admin",
      run: async () => {
        await expectNotFound(A.owner.request(UPDATE_ROLE, { userId: B.ownerId, role: 'VIEWER' }));
        await expectNotFound(A.owner.request(UPDATE_ROLE, { userId: B.admin.id, role: 'VIEWER' }));
        await expectNotFound(A.owner.request(UPDATE_ROLE, { userId: B.admin.id, role: 'OWNER' }));
      },
    },
  ],
  removeMember: [
    {
      name: "NOT_FOUND for B's owner and B's admin; their sessions keep working",
      run: async () => {
        await expectNotFound(A.owner.request(REMOVE_MEMBER, { userId: B.ownerId }));
        await expectNotFound(A.owner.request(REMOVE_MEMBER, { userId: B.admin.id }));
        const still = await B.admin.client.request(graphql(`query IsolationRoleAndTenant { me { role tenant { id } } }`));
        expect(still.me).toEqual({ role: 'ADMIN', tenant: { id: B.id } });
      },
    },
  ],
  addMember: [
    {
      name: "B's owner's email: CONFLICT that names no one, adds nothing to A, leaves B's owner's account alone",
      run: async () => {
        for (const password of [B.ownerPassword, 'some-other-password-1']) {
          const { errors, data } = await expectErrors(
            A.owner.request(ADD_MEMBER, { input: { email: B.ownerEmail, name: 'Taken Over', password, role: 'VIEWER' } }),
          );
          expect(data).toBeNull();
          expect(errors.map((error) => [error.extensions.code, error.extensions.field])).toEqual([['CONFLICT', 'email']]);
          expect(JSON.stringify(errors)).not.toContain(B.ownerId);
          expect(JSON.stringify(errors)).not.toContain(B.slug);
        }
        expect((await A.owner.request(MEMBERS)).members.map((member) => member.email)).not.toContain(B.ownerEmail);
        // Their own password, not the one A chose, still signs them in to B.
        expect(await app.login(B.slug, B.ownerEmail, B.ownerPassword)).toEqual(expect.any(String));
      },
    },
  ],
  invitations: [
    {
      name: "lists A's invitations only, never B's",
      run: async () => {
        const ids = (await A.owner.request(INVITATIONS)).invitations.map((invitation) => invitation.id);
        expect(ids).not.toContain(B.invitation.id);
        expect(ids).toContain(A.invitation.id);
        expect([...ids].sort()).toEqual(await platformRowIds('SELECT id FROM platform."Invitation" WHERE "tenantId" = $1', [A.id]));
      },
    },
  ],
  inviteMember: [
    {
      name: "inviting B's owner's email answers exactly as for an unknown email: no name, no id, nothing in B",
      changesA: true,
      run: async () => {
        const shape = ({ invitation }: { invitation: { id: string; email: string; role: string; invitedAt: string; expiresAt: string } }) => ({
          ...invitation,
          id: typeof invitation.id,
          invitedAt: typeof invitation.invitedAt,
          expiresAt: typeof invitation.expiresAt,
        });
        const nobody = `nobody-${B.slug}@nowhere.test`;
        const invitedB = (await A.owner.request(INVITE_MEMBER, { input: { email: B.ownerEmail, role: 'VIEWER' } })).inviteMember;
        const invitedNobody = (await A.owner.request(INVITE_MEMBER, { input: { email: nobody, role: 'VIEWER' } })).inviteMember;
        expect(shape(invitedB)).toEqual({ ...shape(invitedNobody), email: B.ownerEmail });
        const toB = invitedB.invitation;
        const toNobody = invitedNobody.invitation;
        expect(JSON.stringify(toB)).not.toContain(B.ownerId);
        // Not a member of A until they accept; still OWNER of B.
        expect((await A.owner.request(MEMBERS)).members.map((member) => member.email)).not.toContain(B.ownerEmail);
        expect((await snapshot(B)).me.role).toBe('OWNER');
        // The code goes to the address, never to A: B's owner's mailbox gets it (and A's admin does not see it).
        const mailed = await app.mail!.take(B.ownerEmail, 'You are invited');
        expect(mailed.text).toContain('already has a Fleet account');
        expect((await app.mail!.take(nobody, 'You are invited')).text).toContain('no Fleet account yet');
        await A.owner.request(REVOKE_INVITATION, { id: toB.id });
        await A.owner.request(REVOKE_INVITATION, { id: toNobody.id });
      },
    },
  ],
  revokeInvitation: [
    {
      name: "NOT_FOUND for B's invitation, which stays pending",
      run: async () => {
        await expectNotFound(A.owner.request(REVOKE_INVITATION, { id: B.invitation.id }));
        await expectNotFound(B.admin.client.request(REVOKE_INVITATION, { id: A.invitation.id }));
      },
    },
  ],
  acceptInvitation: [
    {
      name: "NOT_FOUND with B's invitation code, addressed to someone else: no membership in B",
      run: async () => {
        for (const client of [A.owner, A.admin.client]) {
          await expectNotFound(
            client.request(ACCEPT_INVITATION, { input: { code: B.invitation.code, currentPassword: A.ownerPassword, newPassword: 'isolation-new-password' } }),
          );
        }
        const inB = await platformRowIds('SELECT "userId" AS id FROM platform."Membership" WHERE "tenantId" = $1', [B.id]);
        expect(inB).toEqual([B.ownerId, B.admin.id].sort());
      },
    },
  ],
  declineInvitation: [
    {
      name: "NOT_FOUND with B's invitation code, addressed to someone else, which stays pending",
      run: async () => {
        await expectNotFound(A.owner.request(DECLINE_INVITATION, { code: B.invitation.code }));
        await expectNotFound(A.admin.client.request(DECLINE_INVITATION, { code: B.invitation.code }));
      },
    },
  ],
  verifyEmail: [
    {
      name: "INVALID_CODE with the verification code emailed to B's admin, whose code stays untouched and address unverified",
      run: async () => {
        const bCode = codeIn(await app.mail!.take(B.admin.email, 'Verify'), 'Verification code');
        expect(await errorCode(A.owner.request(VERIFY_EMAIL, { code: bCode }))).toBe('INVALID_CODE');
        expect(await errorCode(A.admin.client.request(VERIFY_EMAIL, { code: bCode }))).toBe('INVALID_CODE');
        const codes = await app.server.services.platform.pool.query<{ attempts: number; emailVerifiedAt: Date | null }>(
          `SELECT c.attempts, u."emailVerifiedAt" FROM platform."AccountCode" c JOIN platform."User" u ON u.id = c."userId" WHERE u.email = $1`,
          [B.admin.email],
        );
        expect(codes.rows).toEqual([{ attempts: 0, emailVerifiedAt: null }]);
        expect((await B.admin.client.request(ME_VERIFIED)).me.emailVerified).toBe(false);
      },
    },
  ],
  sendEmailVerification: [
    {
      name: "emails A's caller only: nothing reaches B's addresses",
      run: async () => {
        const before = [B.ownerEmail, B.admin.email].map((email) => app.mail!.to(email).length);
        expect((await A.admin.client.request(SEND_VERIFICATION)).sendEmailVerification.sent).toBe(true);
        await app.mail!.take(A.admin.email, 'Verify');
        await app.mail!.take(A.admin.email, 'Verify');
        expect([B.ownerEmail, B.admin.email].map((email) => app.mail!.to(email).length)).toEqual(before);
      },
    },
  ],
  switchTenant: [
    {
      name: "NOT_FOUND for B's slug (any case), id and name from A's OWNER and ADMIN, who are no members of B: no session in B, theirs in A still live",
      run: async () => {
        const sessionsInB = () => platformRowIds('SELECT id FROM platform."Session" WHERE "tenantId" = $1', [B.id]);
        const before = await sessionsInB();
        for (const client of [A.owner, A.admin.client]) {
          for (const tenant of [B.slug, B.slug.toUpperCase(), B.id, `Tenant ${B.slug}`]) {
            await expectNotFound(client.request(SWITCH_TENANT, { tenant }));
          }
        }
        // Naming B in the X-Tenant header does not help: the credentials are A's.
        expect(await errorCode(app.bearer(A.ownerToken, { 'x-tenant': B.slug }).request(SWITCH_TENANT, { tenant: B.slug }))).toBe('FORBIDDEN');
        // Nor does A's API key, which has no session to move.
        expect(await errorCode(app.client({ 'x-api-key': A.apiKey.secret }).request(SWITCH_TENANT, { tenant: B.slug }))).toBe('FORBIDDEN');
        expect(await sessionsInB()).toEqual(before);
        expect((await A.admin.client.request(MEMBERS)).members.length).toBeGreaterThan(0);
      },
    },
  ],
  apiKeys: [
    {
      name: "lists A's keys only, never B's",
      run: async () => {
        const result = await A.owner.request(API_KEYS);
        const ids = result.apiKeys.map((key) => key.id);
        expect(ids).not.toContain(B.apiKey.id);
        expect([...ids].sort()).toEqual(await platformRowIds('SELECT id FROM platform."ApiKey" WHERE "tenantId" = $1', [A.id]));
        expect(ids).toContain(A.apiKey.id);
      },
    },
  ],
  createApiKey: [
    {
      name: "a key A creates acts in A only: A's rows, FORBIDDEN with X-Tenant: B, never listed in B",
      changesA: true,
      run: async () => {
        const created = await A.owner.request(CREATE_API_KEY, {
          input: { name: 'probe', role: 'ADMIN' },
        });
        const { secret } = created.createApiKey;
        const listed = await listVehicles(app.bearer(secret));
        expect(listed.ids).toEqual(await globalIdsInSchema(A, 'Vehicle'));
        expectNoneOf(listed.ids, B);
        for (const id of B.vehicles.map((row) => row.id)) {
          expect((await app.bearer(secret).request(VEHICLE, { id })).vehicle).toBeNull();
        }
        await expectNotFound(app.bearer(secret).request(DELETE_VEHICLE, { id: vehicle(B, 1).id }));
        const { errors } = await expectErrors(app.bearer(secret, { 'x-tenant': B.slug }).request(VEHICLE_IDS, {}));
        expect(errors.map((error) => error.extensions.code)).toEqual(['FORBIDDEN']);
        expect(await platformRowIds('SELECT id FROM platform."ApiKey" WHERE "tenantId" = $1', [B.id])).toEqual([B.apiKey.id]);
        await A.owner.request(REVOKE_API_KEY, { id: created.createApiKey.apiKey.id });
      },
    },
  ],
  revokeApiKey: [
    {
      name: "NOT_FOUND for B's key, which keeps working",
      run: async () => {
        await expectNotFound(A.owner.request(REVOKE_API_KEY, { id: B.apiKey.id }));
        const listed = await listVehicles(app.bearer(B.apiKey.secret));
        expect(listed.ids).toEqual(await globalIdsInSchema(B, 'Vehicle'));
      },
    },
  ],
  persistedOperations: [
    {
      name: "lists A's (and global) operations, never B's",
      run: async () => {
        const result = await A.owner.request(PERSISTED_OPERATIONS);
        const ids = result.persistedOperations.map((operation) => operation.id);
        expect(ids).not.toContain(B.operation.id);
        expect(ids).toContain(A.operation.id);
        expect([...ids].sort()).toEqual(
          await platformRowIds(`SELECT id FROM platform."PersistedOperation" WHERE scope IN ($1, 'global')`, [A.id]),
        );
      },
    },
    {
      name: "B's registered operation named by hash: A's persistedOnly key may not run it; A's owner gets A's rows at most",
      changesA: true,
      run: async () => {
        type PlatesResult = { data?: { vehicles?: { edges: { node: { plate: string } }[] } } | null; errors?: { extensions: { code: string } }[] };
        const byHash = async (credentials: Record<string, string>): Promise<PlatesResult> => {
          const response = await fetch(app.url, {
            method: 'POST',
            headers: { 'content-type': 'application/json', ...credentials },
            body: JSON.stringify({ extensions: { persistedQuery: { version: 1, sha256Hash: B.operation.sha256 } } }),
          });
          return (await response.json()) as PlatesResult;
        };
        const plates = (result: PlatesResult) => result.data?.vehicles?.edges.map((edge) => edge.node.plate).sort();
        // B runs it by hash first, so it is as warm in every cache (the safelist's, Apollo's APQ) as it gets.
        expect(plates(await byHash({ authorization: `Bearer ${B.ownerToken}` }))).toEqual(B.vehicles.map((row) => row.plate).sort());

        const created = await A.owner.request(CREATE_API_KEY, {
          input: { name: 'persisted only', role: 'VIEWER', persistedOnly: true },
        });
        const keyResult = await byHash({ 'x-api-key': created.createApiKey.secret });
        expect(keyResult.data ?? null).toBeNull();
        expect(keyResult.errors?.map((error) => error.extensions.code)).toEqual(['PERSISTED_QUERY_NOT_REGISTERED']);
        // Control: the key runs A's own registered operation.
        const own = await fetch(app.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-api-key': created.createApiKey.secret },
          body: JSON.stringify({ extensions: { persistedQuery: { version: 1, sha256Hash: A.operation.sha256 } } }),
        }).then((response) => response.json() as Promise<PlatesResult>);
        expect(plates(own)).toEqual(A.vehicles.map((row) => row.plate).sort());
        await A.owner.request(REVOKE_API_KEY, { id: created.createApiKey.apiKey.id });

        // A's owner may send any text anyway; by hash B's operation either is unknown or runs on A's rows.
        const forA = await byHash({ authorization: `Bearer ${A.ownerToken}` });
        if (forA.data) expect(plates(forA)).toEqual(A.vehicles.map((row) => row.plate).sort());
        else expect(forA.errors?.map((error) => error.extensions.code)).toEqual(['PERSISTED_QUERY_NOT_FOUND']);
      },
    },
  ],
  registerPersistedOperations: [
    {
      name: "registering B's exact document in A makes A's own entry; B's entry is untouched",
      changesA: true,
      run: async () => {
        const result = await A.owner.request(
          REGISTER_OPERATIONS,
          { operations: [{ body: B.operation.body }] },
        );
        const [operation] = result.registerPersistedOperations.operations;
        expect(operation?.sha256).toBe(B.operation.sha256);
        expect(operation?.scope).toBe('TENANT');
        expect(operation?.id).not.toBe(B.operation.id);
        const rows = await app.server.services.platform.pool.query<{ id: string; scope: string; tenantId: string | null }>(
          'SELECT id, scope, "tenantId" FROM platform."PersistedOperation" WHERE sha256 = $1 ORDER BY id',
          [B.operation.sha256],
        );
        expect(rows.rows).toEqual([
          { id: B.operation.id, scope: B.id, tenantId: B.id },
          { id: operation?.id, scope: A.id, tenantId: A.id },
        ]);
      },
    },
  ],
  removePersistedOperations: [
    {
      name: "NOT_FOUND for B's operation ids, from A's OWNER and A's ADMIN, alone or next to A's own; B's operations still run",
      run: async () => {
        for (const client of [A.owner, A.admin.client]) {
          await expectNotFound(client.request(REMOVE_OPERATIONS, { ids: [B.operation.id] }));
          // All or none: A's own id next to B's removes neither.
          await expectNotFound(client.request(REMOVE_OPERATIONS, { ids: [A.operation.id, B.operation.id] }));
        }
        expect(await platformRowIds('SELECT id FROM platform."PersistedOperation" WHERE scope = $1', [B.id])).toContain(B.operation.id);
        // B's own members still run it by hash alone.
        const response = await fetch(app.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${B.ownerToken}` },
          body: JSON.stringify({ extensions: { persistedQuery: { version: 1, sha256Hash: B.operation.sha256 } } }),
        });
        const result = (await response.json()) as { data?: { vehicles?: { edges: { node: { plate: string } }[] } } };
        expect(result.data?.vehicles?.edges.map((edge) => edge.node.plate).sort()).toEqual(B.vehicles.map((row) => row.plate).sort());
      },
    },
  ],
  webhookEndpoints: [
    {
      name: "lists A's endpoint only, never B's",
      run: async () => {
        const listed = (await A.owner.request(WEBHOOK_ENDPOINTS)).webhookEndpoints;
        expect(listed).toEqual([{ id: A.webhook.id, url: A.webhook.url }]);
        expect(JSON.stringify(listed)).not.toContain(B.webhook.id);
      },
    },
  ],
  slackWebhook: [
    {
      name: "shows A's Slack host, not B's",
      run: async () => {
        expect((await A.owner.request(SLACK_WEBHOOK)).slackWebhook).toEqual({ configured: true, host: A.slackHost });
      },
    },
  ],
  createWebhookEndpoint: [
    {
      name: "B's endpoint URL registered by A lands in A only",
      changesA: true,
      run: async () => {
        const created = await A.owner.request(CREATE_WEBHOOK, { input: { url: B.webhook.url, eventTypes: ['TRIP_LATE'] } });
        const id = created.createWebhookEndpoint.webhookEndpoint.id;
        expect((await A.owner.request(WEBHOOK_ENDPOINTS)).webhookEndpoints.map((endpoint) => endpoint.id)).toContain(id);
        expect((await B.owner.request(WEBHOOK_ENDPOINTS)).webhookEndpoints.map((endpoint) => endpoint.id)).toEqual([B.webhook.id]);
        await A.owner.request(DELETE_WEBHOOK, { id });
      },
    },
  ],
  updateWebhookEndpoint: [
    {
      name: "NOT_FOUND for B's endpoint (re-pointing, disabling)",
      run: async () => {
        await expectNotFound(A.owner.request(UPDATE_WEBHOOK, { id: B.webhook.id, input: { url: A.webhook.url } }));
        await expectNotFound(A.owner.request(UPDATE_WEBHOOK, { id: B.webhook.id, input: { enabled: false, eventTypes: ['MEMBER_ADDED'] } }));
      },
    },
  ],
  deleteWebhookEndpoint: [
    {
      name: "NOT_FOUND for B's endpoint",
      run: async () => {
        await expectNotFound(A.owner.request(DELETE_WEBHOOK, { id: B.webhook.id }));
      },
    },
  ],
  rotateWebhookSecret: [
    {
      name: "NOT_FOUND for B's endpoint: no secret of B's comes back, B's stays the same",
      run: async () => {
        const { errors, data } = await expectErrors(A.owner.request(ROTATE_WEBHOOK, { id: B.webhook.id }));
        expect(errors.map((error) => error.extensions.code)).toEqual(['NOT_FOUND']);
        expect(data).toBeNull();
        const [row] = (
          await (await tenantSchemaPool(B)).query<{ secretCiphertext: string; previousSecretCiphertext: string | null }>(
            `SELECT "secretCiphertext", "previousSecretCiphertext" FROM ${quoteIdentifier(B.schemaName)}."WebhookEndpoint" WHERE "id" = $1`,
            [B.webhook.id],
          )
        ).rows;
        expect(row?.previousSecretCiphertext).toBeNull();
        expect(app.server.integrations.box.open(row?.secretCiphertext as string, `${B.id}:webhook:${B.webhook.id}`)).toBe(B.webhook.secret);
      },
    },
  ],
  setSlackWebhook: [
    {
      name: "sets A's own Slack webhook; B's stays",
      changesA: true,
      run: async () => {
        const set = await A.owner.request(SET_SLACK, { url: `https://${B.slackHost}/services/hijack` });
        expect(set.setSlackWebhook.slackWebhook).toEqual({ configured: true, host: B.slackHost });
        expect((await B.owner.request(SLACK_WEBHOOK)).slackWebhook).toEqual({ configured: true, host: B.slackHost });
        await A.owner.request(SET_SLACK, { url: `https://${A.slackHost}/services/alpha` });
      },
    },
  ],
  removeSlackWebhook: [
    {
      name: "removes A's own Slack webhook only",
      changesA: true,
      run: async () => {
        expect((await A.owner.request(REMOVE_SLACK)).removeSlackWebhook.slackWebhook.configured).toBe(false);
        expect((await B.owner.request(SLACK_WEBHOOK)).slackWebhook).toEqual({ configured: true, host: B.slackHost });
        await A.owner.request(SET_SLACK, { url: `https://${A.slackHost}/services/alpha` });
      },
    },
  ],
};

beforeAll(async () => {
  app = await startTestServer({ secondCluster: true });
  [A, B] = await Promise.all([seedTenant('alpha'), seedTenant('bravo')]);
});

afterAll(async () => {
  await app.close();
});

describe('fixture', () => {
  it("B has the rows, assignment and members the attacks aim at, all visible to B's owner", async () => {
    const b = await snapshot(B);
    expect(b.vehicles.totalCount).toBe(3);
    expect(b.drivers.totalCount).toBe(3);
    expect(b.trips.edges.map((edge) => ({ id: edge.node.id, status: edge.node.status, transitions: edge.node.transitions.length }))).toEqual([
      { id: B.trip.id, status: 'PLANNED', transitions: 1 },
    ]);
    expect(b.vehicles.edges.find((edge) => edge.node.id === vehicle(B, 0).id)?.node.driver?.id).toBe(driver(B, 0).id);
    expect(new Set(b.members.map((member) => member.id))).toEqual(new Set([B.ownerId, B.admin.id]));
    expect(b.invitations.map((invitation) => invitation.id)).toEqual([B.invitation.id]);
    expect(b.webhookEndpoints.map((endpoint) => endpoint.id)).toEqual([B.webhook.id]);
    expect(b.slackWebhook).toMatchObject({ configured: true, host: B.slackHost });
    expect(A.id).not.toBe(B.id);
    expect(A.schemaName).not.toBe(B.schemaName);
  });
});

describe.each(Object.entries(isolationCases))("A's OWNER against B's data: %s", (_field, attacks) => {
  it.each(attacks.map((attack) => [attack.name, attack] as const))('%s', async (_name, attack) => {
    const beforeB = await snapshot(B);
    const beforeA = attack.changesA ? undefined : await snapshot(A);
    await attack.run();
    expect(await snapshot(B)).toEqual(beforeB);
    if (beforeA) expect(await snapshot(A)).toEqual(beforeA);
  });
});

const platformAdminCases: Record<string, () => Promise<unknown>> = {
  tenants: () => A.owner.request(graphql(`query IsolationTenants { tenants { totalCount edges { node { id slug schemaName } } } }`)),
  tenant: () => A.owner.request(graphql(`query IsolationTenant($slug: String!) { tenant(slug: $slug) { id schemaName status } }`), { slug: B.slug }),
  createTenant: () =>
    A.owner.request(graphql(`mutation IsolationCreateTenant($input: CreateTenantInput!) { createTenant(input: $input) { tenant { id } } }`), {
      input: { slug: `${B.slug}-x`, name: 'Rogue', plan: 'FREE', owner: { email: `rogue@${B.slug}.test`, name: 'Rogue', password: 'rogue-password-123' } },
    }),
  migrateTenants: () =>
    A.owner.request(graphql(`mutation IsolationMigrateTenants($ids: [ID!]) { migrateTenants(tenantIds: $ids, force: true) { migrated results { tenantId } } }`), { ids: [B.id] }),
  suspendTenant: () => A.owner.request(graphql(`mutation IsolationSuspendTenant($id: ID!) { suspendTenant(id: $id) { tenant { status } } }`), { id: B.id }),
  reactivateTenant: () => A.owner.request(graphql(`mutation IsolationReactivateTenant($id: ID!) { reactivateTenant(id: $id) { tenant { status } } }`), { id: B.id }),
  registerPlatformPersistedOperations: () =>
    A.owner.request(
      graphql(`mutation IsolationRegisterPlatformPersistedOperations($id: ID, $operations: [PersistedOperationInput!]!) { registerPlatformPersistedOperations(tenantId: $id, operations: $operations) { operations { id } } }`),
      { id: B.id, operations: [{ body: 'query Planted { vehicles(first: 1) { totalCount } }' }] },
    ),
  removePlatformPersistedOperations: () =>
    A.owner.request(
      graphql(`mutation IsolationRemovePlatformPersistedOperations($id: ID, $ids: [ID!]!) { removePlatformPersistedOperations(tenantId: $id, ids: $ids) { removedIds } }`),
      { id: B.id, ids: [B.operation.id] },
    ),
  databaseClusters: () => A.owner.request(graphql(`query IsolationDatabaseClusters { databaseClusters { name tenantCount } }`)),
  moveTenant: () => A.owner.request(graphql(`mutation IsolationMoveTenant($id: ID!) { moveTenant(id: $id, toCluster: "main") { tenant { id } } }`), { id: B.id }),
  confirmTenantMove: () => A.owner.request(graphql(`mutation IsolationConfirmTenantMove($id: ID!) { confirmTenantMove(id: $id) { tenant { id } } }`), { id: B.id }),
  cancelTenantMove: () => A.owner.request(graphql(`mutation IsolationCancelTenantMove($id: ID!) { cancelTenantMove(id: $id) { tenant { id } } }`), { id: B.id }),
  purgeTenant: () => A.owner.request(graphql(`mutation IsolationPurgeTenant($slug: String!) { purgeTenant(slug: $slug) { purgedTenantId } }`), { slug: B.slug }),
  updateTenant: () => A.owner.request(graphql(`mutation IsolationUpdateTenant($id: ID!) { updateTenant(id: $id, input: { name: "Rogue" }) { tenant { name } } }`), { id: B.id }),
  deleteTenant: () => A.owner.request(graphql(`mutation IsolationDeleteTenant($id: ID!) { deleteTenant(id: $id) { tenant { status } } }`), { id: B.id }),
  cancelTenantDeletion: () => A.owner.request(graphql(`mutation IsolationCancelDeletion($id: ID!) { cancelTenantDeletion(id: $id) { tenant { status } } }`), { id: B.id }),
  purgeDeletedRecords: () =>
    A.owner.request(graphql(`mutation IsolationPurgeDeleted($ids: [ID!]) { purgeDeletedRecords(input: { tenantIds: $ids }) { results { tenantId } } }`), { ids: [B.id] }),
  setTenantQuota: () =>
    A.owner.request(graphql(`mutation IsolationSetTenantQuota($id: ID!, $limit: QuotaLimitInput) { setTenantQuota(id: $id, quota: VEHICLES, limit: $limit) { tenant { id } } }`), {
      id: B.id,
      limit: { max: 0 },
    }),
  setTenantRateLimit: () =>
    A.owner.request(graphql(`mutation IsolationSetTenantRateLimit($id: ID!, $limit: TenantRateLimitInput) { setTenantRateLimit(id: $id, limit: $limit) { tenant { id } } }`), {
      id: B.id,
      limit: { tenant: { capacity: 1, refillPerSecond: 0.01 }, perCaller: { capacity: 1, refillPerSecond: 0.01 } },
    }),
};

describe('platform-admin fields refuse a tenant OWNER', () => {
  it.each(Object.keys(platformAdminCases))('%s: FORBIDDEN, B unchanged', async (field) => {
    const admin = await app.admin();
    const query = `query($slug: String!) {
      tenant(slug: $slug) { id status migrationVersion lastError rateLimit { overridden tenant { capacity } perCaller { capacity } } usage { quotas { quota limit overridden } } }
    }`;
    const beforeB = await admin.request(query, { slug: B.slug });
    const before = await snapshot(B);
    const { errors, data } = await expectErrors((platformAdminCases[field] as () => Promise<unknown>)());
    expect(errors.map((error) => error.extensions.code)).toEqual(['FORBIDDEN']);
    expectNoData(data);
    expect(await admin.request(query, { slug: B.slug })).toEqual(beforeB);
    expect(await snapshot(B)).toEqual(before);
    expect(await admin.request(query, { slug: `${B.slug}-x` })).toEqual({ tenant: null });
  });

  it('B is still ACTIVE and serving after all of them', async () => {
    expect((await snapshot(B)).me.tenant).toEqual({ id: B.id, slug: B.slug, status: 'ACTIVE' });
    expect(await errorCode(A.owner.request(graphql(`query IsolationTenantCount { tenants { totalCount } }`)))).toBe('FORBIDDEN');
  });
});

/** Root fields of Query, Mutation and Subscription, by the policy directive the SDL gives them ("Query.x" if a field has not exactly one). */
function rootFieldsByPolicy(schema: GraphQLSchema): Map<string, string[]> {
  const byPolicy = new Map<string, string[]>();
  for (const root of [schema.getQueryType(), schema.getMutationType(), schema.getSubscriptionType()]) {
    if (!root || !isObjectType(root)) continue;
    for (const field of Object.values(root.getFields())) {
      const policies = (field.astNode?.directives ?? [])
        .map((directive) => directive.name.value)
        .filter((name) => ['public', 'authenticated', 'platformAdmin', 'auth'].includes(name));
      const policy = policies.length === 1 ? (policies[0] as string) : `ambiguous:${root.name}.${field.name}`;
      byPolicy.set(policy, [...(byPolicy.get(policy) ?? []), field.name]);
    }
  }
  return byPolicy;
}

describe('@public joinByInvitation, called with A\'s credentials', () => {
  const JOIN = graphql(`mutation IsolationJoinByInvitation($input: JoinByInvitationInput!) { joinByInvitation(input: $input) { accessToken } }`);

  it("NOT_FOUND for B's invitation named by its id, or a made-up code: no account, no member, B's invitation still pending", async () => {
    const before = await snapshot(B);
    for (const code of [B.invitation.id, 'inv_made-up', `inv_${B.invitation.id}`]) {
      await expectNotFound(A.owner.request(JOIN, { input: { code, name: 'Intruder', password: 'intruder-password' } }));
    }
    expect(await snapshot(B)).toEqual(before);
    expect(await platformRowIds('SELECT id FROM platform."User" WHERE email = $1', [B.invitation.email])).toEqual([]);
  });

  it("A's own code joins A only: the new account has no membership in B", async () => {
    const email = `newcomer@${A.slug}.test`;
    await A.owner.request(INVITE_MEMBER, { input: { email, role: 'VIEWER' } });
    const joined = await A.owner.request(JOIN, { input: { code: await app.invitationCode(email), name: 'Newcomer', password: 'newcomer-password' } });
    const newcomer = app.bearer(joined.joinByInvitation.accessToken);
    const seen = await newcomer.request(graphql(`query IsolationNewcomerMe { me { tenant { id } } }`));
    expect(seen.me.tenant?.id).toBe(A.id);
    const memberships = await platformRowIds('SELECT m."tenantId" AS id FROM platform."Membership" m JOIN platform."User" u ON u.id = m."userId" WHERE u.email = $1', [email]);
    expect(memberships).toEqual([A.id]);
    expect((await snapshot(B)).members.map((member) => member.email)).not.toContain(email);
  });
});

describe("@public password reset, called with A's credentials against B's accounts", () => {
  it("requestPasswordReset for B's owner only emails B's owner; resetPassword with B's invitation code, A's codes or guesses is INVALID_CODE; B's owner keeps the password", async () => {
    const before = await snapshot(B);
    expect((await A.owner.request(REQUEST_RESET, { email: B.ownerEmail })).requestPasswordReset.accepted).toBe(true);
    const mailed = await app.mail!.take(B.ownerEmail, 'password reset');
    expect(mailed.to).toEqual([B.ownerEmail]);
    for (const code of [B.invitation.code, 'AAAAA-AAAAA', B.invitation.id]) {
      expect(await errorCode(A.owner.request(RESET_PASSWORD, { input: { email: B.ownerEmail, code, newPassword: 'taken-over-password' } }))).toBe('INVALID_CODE');
    }
    // A's own reset code is A's owner's: it opens nothing of B.
    await A.owner.request(REQUEST_RESET, { email: A.ownerEmail });
    const aCode = codeIn(await app.mail!.take(A.ownerEmail, 'password reset'), 'Reset code');
    expect(await errorCode(A.owner.request(RESET_PASSWORD, { input: { email: B.ownerEmail, code: aCode, newPassword: 'taken-over-password' } }))).toBe('INVALID_CODE');
    expect(await app.login(B.slug, B.ownerEmail, B.ownerPassword)).toEqual(expect.any(String));
    expect(await errorCode(app.login(B.slug, B.ownerEmail, 'taken-over-password'))).toBe('UNAUTHENTICATED');
    expect(await snapshot(B)).toEqual(before);
  });
});

describe("me.memberships never lists another account's tenants", () => {
  it("A's members see A alone, B's see B alone", async () => {
    for (const [tenant, other] of [
      [A, B],
      [B, A],
    ] as const) {
      for (const client of [tenant.owner, tenant.admin.client]) {
        const { memberships } = (await client.request(MEMBERSHIPS)).me;
        expect(memberships).toEqual([{ tenant: { id: tenant.id, slug: tenant.slug, name: `Tenant ${tenant.slug}` }, role: expect.any(String), current: true }]);
        expect(JSON.stringify(memberships)).not.toContain(other.id);
      }
    }
  });

  it("an API key's memberships are refused (null), not another tenant's", async () => {
    const { errors, data } = await expectErrors(app.client({ 'x-api-key': A.apiKey.secret }).request(MEMBERSHIPS));
    expect(errors.map((error) => error.extensions.code)).toEqual(['FORBIDDEN']);
    expect(data).toEqual({ me: { memberships: null } });
  });
});

describe('the isolation table covers the schema', () => {
  let schema: GraphQLSchema;
  let byPolicy: Map<string, string[]>;

  beforeAll(() => {
    schema = buildSchema();
    byPolicy = rootFieldsByPolicy(schema);
  });

  it('every root field has exactly one policy directive', () => {
    expect([...byPolicy.keys()].filter((policy) => policy.startsWith('ambiguous:'))).toEqual([]);
    expect([...byPolicy.keys()].sort()).toEqual(['auth', 'authenticated', 'platformAdmin', 'public']);
  });

  it('every @auth(requires: ...) root field has at least one isolation case, and no case names another field', () => {
    const tenantScoped = [...(byPolicy.get('auth') ?? [])].sort();
    // Sanity: the SDL walk found the fields we know about, with their `requires` argument.
    expect(tenantScoped).toEqual(expect.arrayContaining(['vehicles', 'node', 'assignDriver', 'members', 'addMember']));
    const deleteVehicle = schema.getMutationType()?.getFields().deleteVehicle?.astNode?.directives?.find((d) => d.name.value === 'auth');
    expect(deleteVehicle?.arguments?.find((argument) => argument.name.value === 'requires')?.value).toMatchObject({
      kind: Kind.ENUM,
      value: 'ADMIN',
    });

    const missing = tenantScoped.filter((field) => !isolationCases[field]?.length);
    expect(missing).toEqual([]);
    expect(Object.keys(isolationCases).sort()).toEqual(tenantScoped);
  });

  it('every @platformAdmin root field is checked to refuse a tenant OWNER', () => {
    expect(Object.keys(platformAdminCases).sort()).toEqual([...(byPolicy.get('platformAdmin') ?? [])].sort());
  });
});
