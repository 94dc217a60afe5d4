import { createHash } from 'node:crypto';
import { getDirective } from '@graphql-tools/utils';
import { isObjectType, type GraphQLSchema } from 'graphql';
import { buildSchema } from '../../src/graphql/schema';
import type { GraphQLClient } from '../support/graphql-request';
import { errorCode, startTestServer, type TenantFixture, type TestServer } from '../support/test-server';
import { issueAccountCode } from '../../src/auth/account-codes';
import { graphql } from '../generated';

/*
 * Every tenant-scoped operation, called by a member of each role. Who may call what is read
 * from the SDL's @auth(requires:) directives (the contract), and that reading is itself pinned
 * to a table of known expectations, so a silent change to the SDL fails here.
 */

const ROLES = ['OWNER', 'ADMIN', 'MANAGER', 'MEMBER', 'VIEWER'] as const;
type Role = (typeof ROLES)[number];
const RANK: Record<Role, number> = { VIEWER: 1, MEMBER: 2, MANAGER: 3, ADMIN: 4, OWNER: 5 };

/** "Query.vehicles" -> the role its @auth directive requires; VIEWER for @authenticated. */
function tenantPolicies(schema: GraphQLSchema): Map<string, Role> {
  const policies = new Map<string, Role>();
  for (const type of [schema.getQueryType(), schema.getMutationType()]) {
    if (!type || !isObjectType(type)) continue;
    for (const field of Object.values(type.getFields())) {
      const auth = getDirective(schema, field, 'auth')?.[0] as { requires?: Role } | undefined;
      if (auth?.requires) policies.set(`${type.name}.${field.name}`, auth.requires);
      // `me` answers any signed-in caller, whatever the role.
      else if (type.name === 'Query' && field.name === 'me' && getDirective(schema, field, 'authenticated')?.length) {
        policies.set('Query.me', 'VIEWER');
      }
    }
  }
  return policies;
}

const POLICIES = tenantPolicies(buildSchema());

/** What the product promises; the SDL must say the same. */
const KNOWN: Record<string, Role> = {
  'Query.me': 'VIEWER',
  'Query.members': 'VIEWER',
  'Query.membersConnection': 'VIEWER',
  'Query.node': 'VIEWER',
  'Query.vehicle': 'VIEWER',
  'Query.vehicles': 'VIEWER',
  'Query.driver': 'VIEWER',
  'Query.drivers': 'VIEWER',
  'Mutation.createVehicle': 'MANAGER',
  'Mutation.updateVehicle': 'MEMBER',
  'Mutation.deleteVehicle': 'ADMIN',
  'Mutation.createDriver': 'MANAGER',
  'Mutation.updateDriver': 'MEMBER',
  'Mutation.deleteDriver': 'ADMIN',
  'Mutation.assignDriver': 'MANAGER',
  'Query.trip': 'VIEWER',
  'Query.fleetSummary': 'VIEWER',
  'Query.fleetSettings': 'VIEWER',
  'Query.maintenanceRecords': 'VIEWER',
  'Query.auditEvents': 'ADMIN',
  'Mutation.openMaintenance': 'MANAGER',
  'Mutation.closeMaintenance': 'MANAGER',
  'Mutation.updateFleetSettings': 'ADMIN',
  'Query.tenantUsage': 'ADMIN',
  'Query.trips': 'VIEWER',
  'Query.stops': 'VIEWER',
  'Mutation.createTrip': 'MANAGER',
  'Mutation.updateTrip': 'MANAGER',
  'Mutation.transitionTrip': 'MEMBER',
  'Mutation.deleteTrip': 'ADMIN',
  'Mutation.restoreTrip': 'ADMIN',
  'Mutation.addStop': 'MANAGER',
  'Mutation.updateStop': 'MANAGER',
  'Mutation.removeStop': 'MANAGER',
  'Mutation.reorderStops': 'MANAGER',
  'Mutation.markStopArrived': 'MEMBER',
  'Mutation.completeStop': 'MEMBER',
  'Mutation.addTripNote': 'MEMBER',
  'Mutation.editTripNote': 'MEMBER',
  'Mutation.deleteTripNote': 'MEMBER',
  'Mutation.restoreVehicle': 'ADMIN',
  'Mutation.restoreDriver': 'ADMIN',
  'Mutation.addMember': 'ADMIN',
  'Mutation.updateMemberRole': 'ADMIN',
  'Mutation.removeMember': 'ADMIN',
  'Query.invitations': 'ADMIN',
  'Mutation.inviteMember': 'ADMIN',
  'Mutation.revokeInvitation': 'ADMIN',
  'Mutation.acceptInvitation': 'VIEWER',
  'Mutation.declineInvitation': 'VIEWER',
  'Mutation.verifyEmail': 'VIEWER',
  'Mutation.sendEmailVerification': 'VIEWER',
  'Mutation.switchTenant': 'VIEWER',
  'Query.apiKeys': 'ADMIN',
  'Query.persistedOperations': 'ADMIN',
  'Mutation.createApiKey': 'ADMIN',
  'Mutation.revokeApiKey': 'ADMIN',
  'Mutation.registerPersistedOperations': 'ADMIN',
  'Mutation.removePersistedOperations': 'ADMIN',
  'Query.webhookEndpoints': 'ADMIN',
  'Query.slackWebhook': 'ADMIN',
  'Mutation.createWebhookEndpoint': 'ADMIN',
  'Mutation.updateWebhookEndpoint': 'ADMIN',
  'Mutation.deleteWebhookEndpoint': 'ADMIN',
  'Mutation.rotateWebhookSecret': 'ADMIN',
  'Mutation.setSlackWebhook': 'ADMIN',
  'Mutation.removeSlackWebhook': 'ADMIN',
  'Query.notifications': 'VIEWER',
  'Query.unreadNotificationCount': 'VIEWER',
  'Query.notificationDeliveries': 'ADMIN',
  'Query.notificationRoutes': 'ADMIN',
  'Query.myNotificationPreferences': 'VIEWER',
  'Mutation.markNotificationsRead': 'VIEWER',
  'Mutation.redeliverNotifications': 'ADMIN',
  'Mutation.setNotificationRoutes': 'ADMIN',
  'Mutation.setNotificationsMuted': 'VIEWER',
};

let app: TestServer;
let tenant: TenantFixture;
/** Another tenant, whose invitations the matrix members receive. */
let inviter: TenantFixture;
const clients = new Map<Role, GraphQLClient>();

let counter = 0;
const unique = (prefix: string) => `${prefix}-${(counter += 1)}`;

async function createVehicle(): Promise<string> {
  const result = await tenant.owner.request(
    graphql(`mutation RoleMatrixCreateVehicle($input: CreateVehicleInput!) { createVehicle(input: $input) { vehicle { id } } }`),
    { input: { plate: unique('RM'), make: 'Iveco', model: 'Daily', year: 2021 } },
  );
  return result.createVehicle.vehicle.id;
}

async function createDriver(): Promise<string> {
  const result = await tenant.owner.request(
    graphql(`mutation RoleMatrixCreateDriver($input: CreateDriverInput!) { createDriver(input: $input) { driver { id } } }`),
    { input: { name: 'Matrix Driver', licenseNumber: unique('RM-LIC') } },
  );
  return result.createDriver.driver.id;
}

async function addViewer(): Promise<{ id: string; email: string }> {
  const email = `${unique('target')}@matrix.test`;
  const result = await tenant.owner.request(
    graphql(`mutation RoleMatrixAddMember($input: AddMemberInput!) { addMember(input: $input) { member { id } } }`),
    { input: { email, name: 'Target', password: 'target-password-1', role: 'VIEWER' } },
  );
  return { id: result.addMember.member.id, email };
}

/** A trip of a new vehicle and driver, moved (as the OWNER) through `through`. */
async function createTrip(through: ('PLANNED' | 'DISPATCHED')[] = []): Promise<string> {
  const result = await tenant.owner.request(
    graphql(`mutation RoleMatrixCreateTrip($input: CreateTripInput!) { createTrip(input: $input) { trip { id } } }`),
    { input: { reference: unique('RM-TRIP'), origin: 'Here', destination: 'There', vehicleId: await createVehicle(), driverId: await createDriver() } },
  );
  const id = result.createTrip.trip.id;
  for (const to of through) {
    await tenant.owner.request(graphql(`mutation RoleMatrixMoveTrip($input: TransitionTripInput!) { transitionTrip(input: $input) { trip { id } } }`), { input: { id, to } });
  }
  return id;
}

/** A trip with `kinds` stops (added as the OWNER), then moved through `through`; its id and its stops' ids. */
async function tripWithStops(kinds: ('PICKUP' | 'DROP_OFF')[], through: ('PLANNED' | 'DISPATCHED')[] = []): Promise<{ tripId: string; stopIds: string[] }> {
  const tripId = await createTrip();
  const stopIds: string[] = [];
  for (const kind of kinds) {
    const added = await tenant.owner.request(graphql(`mutation RoleMatrixAddStop($tripId: ID!, $kind: StopKind!) { addStop(input: { tripId: $tripId, kind: $kind, address: "Matrix" }) { stop { id } } }`), {
      tripId,
      kind,
    });
    stopIds.push(added.addStop.stop.id);
  }
  for (const to of through) {
    await tenant.owner.request(graphql(`mutation RoleMatrixMoveStopsTrip($input: TransitionTripInput!) { transitionTrip(input: $input) { trip { id } } }`), { input: { id: tripId, to } });
  }
  return { tripId, stopIds };
}

const stopOf = async (id: string) => {
  const found = await tenant.owner.request(graphql(`query RoleMatrixStopOf($id: ID!) { node(id: $id) { ... on Stop { address sequence arrivedAt completedAt } } }`), { id });
  return found.node && 'sequence' in found.node ? found.node : null;
};

const noteOf = async (id: string) => {
  const found = await tenant.owner.request(graphql(`query RoleMatrixNoteOf($id: ID!) { node(id: $id) { ... on TripNote { body } } }`), { id });
  return found.node && 'body' in found.node ? found.node : null;
};

/** A note on a new trip, written by the member of `role` when that role may write notes (so they are its author), else by the OWNER. */
async function noteBy(role: Role): Promise<{ id: string }> {
  const author = RANK[role] >= RANK.MEMBER ? (clients.get(role) as GraphQLClient) : tenant.owner;
  const added = await author.request(graphql(`mutation RoleMatrixAddNote($tripId: ID!) { addTripNote(input: { tripId: $tripId, body: "Matrix" }) { note { id } } }`), {
    tripId: await createTrip(),
  });
  return { id: added.addTripNote.note.id };
}

/** An open maintenance record of a new vehicle (opened as the OWNER); its global id. */
async function openMaintenanceRecord(): Promise<string> {
  const opened = await tenant.owner.request(
    graphql(`mutation RoleMatrixOpenMaintenance($vehicleId: ID!) { openMaintenance(input: { vehicleId: $vehicleId, kind: REPAIR, description: "Matrix" }) { maintenanceRecord { id } } }`),
    { vehicleId: await createVehicle() },
  );
  return opened.openMaintenance.maintenanceRecord.id;
}

const vehicleStatusOf = async (id: string) =>
  (await tenant.owner.request(graphql(`query RoleMatrixVehicleStatusOf($id: ID!) { vehicle(id: $id) { status } }`), { id })).vehicle?.status;

const tripOf = async (id: string) =>
  (await tenant.owner.request(graphql(`query RoleMatrixTripOf($id: ID!) { trip(id: $id) { status destination } }`), { id })).trip;

const vehicleOf = async (id: string) =>
  (await tenant.owner.request(graphql(`query RoleMatrixVehicleOf($id: ID!) { vehicle(id: $id) { make driver { id } } }`), { id })).vehicle;
const driverOf = async (id: string) =>
  (await tenant.owner.request(graphql(`query RoleMatrixDriverOf($id: ID!) { driver(id: $id) { name } }`), { id })).driver;
const apiKeyList = async () =>
  (await tenant.owner.request(graphql(`query RoleMatrixApiKeyList { apiKeys { id name revokedAt } }`))).apiKeys;
const persistedList = async () =>
  (await tenant.owner.request(graphql(`query RoleMatrixPersistedList { persistedOperations { sha256 } }`))).persistedOperations;

async function createApiKey(): Promise<string> {
  const result = await tenant.owner.request(
    graphql(`mutation RoleMatrixCreateApiKey($input: CreateApiKeyInput!) { createApiKey(input: $input) { apiKey { id } } }`),
    { input: { name: unique('matrix-key'), role: 'VIEWER' } },
  );
  return result.createApiKey.apiKey.id;
}

/** A public address (never called: nothing is delivered here). */
const MATRIX_HOOK = 'https://93.184.215.14/matrix-hook';
const webhookList = async () =>
  (await tenant.owner.request(graphql(`query RoleMatrixWebhookList { webhookEndpoints { id description previousSecretExpiresAt } }`))).webhookEndpoints;
const slackState = async () => (await tenant.owner.request(graphql(`query RoleMatrixSlackState { slackWebhook { configured host } }`))).slackWebhook;
const SET_SLACK = graphql(`mutation RoleMatrixSetSlack($url: String!) { setSlackWebhook(url: $url) { slackWebhook { configured } } }`);
const REMOVE_SLACK = graphql(`mutation RoleMatrixRemoveSlack { removeSlackWebhook { slackWebhook { configured } } }`);

/** Deletes the matrix's endpoints when they near the cap of 20 a tenant holds (every case makes one). */
async function roomForWebhook(): Promise<void> {
  const endpoints = await webhookList();
  if (endpoints.length < 15) return;
  for (const { id } of endpoints) {
    await tenant.owner.request(graphql(`mutation RoleMatrixPruneWebhook($id: ID!) { deleteWebhookEndpoint(id: $id) { deletedId } }`), { id });
  }
}

async function createWebhook(): Promise<string> {
  await roomForWebhook();
  const result = await tenant.owner.request(
    graphql(`mutation RoleMatrixCreateWebhook($input: CreateWebhookEndpointInput!) { createWebhookEndpoint(input: $input) { webhookEndpoint { id } } }`),
    { input: { url: MATRIX_HOOK, eventTypes: ['TRIP_LATE'] } },
  );
  return result.createWebhookEndpoint.webhookEndpoint.id;
}

const memberList = async () =>
  (await tenant.owner.request(graphql(`query RoleMatrixMemberList { members { id email role } }`))).members;

const INVITE = graphql(`mutation RoleMatrixInvite($input: InviteMemberInput!) { inviteMember(input: $input) { invitation { id } } }`);
const invitationList = async (fixture: TenantFixture) =>
  (await fixture.owner.request(graphql(`query RoleMatrixInvitationList { invitations { id email } }`))).invitations;
/** Accepting sets a new password; the next accept of that member needs it. */
const passwords = new Map<Role, string>();
const currentPasswordOf = (role: Role) => passwords.get(role) ?? (role === 'OWNER' ? tenant.ownerPassword : 'matrix-password-1');
const emailOf = (role: Role) => (role === 'OWNER' ? tenant.ownerEmail : `${role.toLowerCase()}@matrix.test`);

/** Invitation code -> the email it was sent to. */
const addresseeOf = new Map<string, string>();

/** An invitation (its code) from the other tenant to the member of `role` here, who is not yet a member there. */
async function inviteFromElsewhere(role: Role): Promise<{ code: string }> {
  const inviterMembers = await inviter.owner.request(graphql(`query RoleMatrixInviterMembers { members { id email } }`));
  const joined = inviterMembers.members.find((member) => member.email === emailOf(role));
  if (joined) {
    await inviter.owner.request(graphql(`mutation RoleMatrixLeaveInviter($userId: ID!) { removeMember(userId: $userId) { removedUserId } }`), {
      userId: joined.id,
    });
  }
  await inviter.owner.request(INVITE, { input: { email: emailOf(role), role: 'VIEWER' } });
  const code = await app.invitationCode(emailOf(role));
  addresseeOf.set(code, emailOf(role));
  return { code };
}

/** Whether the addressee of the invitation with this code has joined the inviting tenant. */
async function joinedInviter(variables: Record<string, unknown>): Promise<boolean> {
  const inviterMembers = await inviter.owner.request(graphql(`query RoleMatrixInviterJoined { members { email } }`));
  return inviterMembers.members.some((member) => member.email === addresseeOf.get(variables.code as string));
}

async function inviteHere(): Promise<{ id: string }> {
  const result = await tenant.owner.request(INVITE, { input: { email: `${unique('invited')}@matrix.test`, role: 'VIEWER' } });
  return { id: result.inviteMember.invitation.id };
}

/**
 * One operation: `prepare` creates what it needs as the OWNER; `effect` says (as the OWNER)
 * whether the call changed anything; `check` looks at a successful answer.
 */
async function stopArrivedByEmail(): Promise<boolean> {
  const routes = (await tenant.owner.request(graphql(`query RoleMatrixRoutes { notificationRoutes { eventType channel enabled } }`))).notificationRoutes;
  return routes.some((route) => route.eventType === 'STOP_ARRIVED' && route.channel === 'EMAIL' && route.enabled);
}

interface Case {
  document: string;
  /** Gets the role about to call, for cases that need something addressed to that caller. */
  prepare?(role: Role): Promise<Record<string, unknown>>;
  effect?(variables: Record<string, unknown>): Promise<boolean>;
  check?(data: Record<string, unknown>, variables: Record<string, unknown>, role: Role): void;
}

const CASES: Record<string, Case> = {
  'Query.notifications': {
    document: `{ notifications(first: 5) { totalCount edges { node { id } } } }`,
    check: (data) => expect(data.notifications).toMatchObject({ totalCount: expect.any(Number) as unknown }),
  },
  'Query.unreadNotificationCount': {
    document: `{ unreadNotificationCount }`,
    check: (data) => expect(data.unreadNotificationCount).toEqual(expect.any(Number)),
  },
  'Query.notificationDeliveries': {
    document: `{ notificationDeliveries(first: 5) { totalCount } }`,
    check: (data) => expect(data.notificationDeliveries).toMatchObject({ totalCount: expect.any(Number) as unknown }),
  },
  'Query.notificationRoutes': {
    document: `{ notificationRoutes { eventType channel enabled } }`,
    check: (data) => expect((data.notificationRoutes as unknown[]).length).toBe(18 * 3),
  },
  'Query.myNotificationPreferences': {
    document: `{ myNotificationPreferences { mutedEventTypes } }`,
    check: (data) => expect(data.myNotificationPreferences).toEqual({ mutedEventTypes: expect.any(Array) as unknown }),
  },
  'Mutation.markNotificationsRead': {
    document: `mutation { markNotificationsRead(ids: []) { marked unreadCount } }`,
    check: (data) => expect(data.markNotificationsRead).toMatchObject({ marked: 0 }),
  },
  'Mutation.redeliverNotifications': {
    document: `mutation { redeliverNotifications(ids: ["00000000-0000-4000-8000-000000000000"]) { deliveries { id } } }`,
    check: (data) => expect(data.redeliverNotifications).toEqual({ deliveries: [] }),
  },
  'Mutation.setNotificationRoutes': {
    document: `mutation($enabled: Boolean!) { setNotificationRoutes(routes: [{ eventType: STOP_ARRIVED, channel: EMAIL, enabled: $enabled }]) { eventType } }`,
    // The opposite of what it is now, so that only the call itself can make it so.
    prepare: async () => ({ enabled: !(await stopArrivedByEmail()) }),
    effect: async (variables) => (await stopArrivedByEmail()) === variables.enabled,
  },
  'Mutation.setNotificationsMuted': {
    document: `mutation { setNotificationsMuted(eventTypes: [STOP_ARRIVED], muted: true) { mutedEventTypes } }`,
    check: (data) => expect(data.setNotificationsMuted).toEqual({ mutedEventTypes: ['STOP_ARRIVED'] }),
  },
  'Query.me': {
    document: `{ me { kind role } }`,
    check: (data, _variables, role) => expect(data.me).toEqual({ kind: 'TENANT_MEMBER', role }),
  },
  'Query.members': {
    document: `{ members { id role } }`,
    check: (data) => expect((data.members as unknown[]).length).toBeGreaterThanOrEqual(ROLES.length),
  },
  'Query.membersConnection': {
    document: `{ membersConnection(first: 2, orderBy: { field: ROLE, direction: DESC }) { totalCount edges { node { role } } } }`,
    check: (data) => {
      const { totalCount, edges } = data.membersConnection as { totalCount: number; edges: { node: { role: Role } }[] };
      expect(totalCount).toBeGreaterThanOrEqual(ROLES.length);
      expect(edges.map((edge) => edge.node.role)).toEqual(['OWNER', expect.stringMatching(/^(OWNER|ADMIN)$/)]);
    },
  },
  'Query.node': {
    document: `query($id: ID!) { node(id: $id) { __typename id } }`,
    prepare: async () => ({ id: await createVehicle() }),
    check: (data, variables) => expect(data.node).toEqual({ __typename: 'Vehicle', id: variables.id }),
  },
  'Query.vehicle': {
    document: `query($id: ID!) { vehicle(id: $id) { id } }`,
    prepare: async () => ({ id: await createVehicle() }),
    check: (data, variables) => expect(data.vehicle).toEqual({ id: variables.id }),
  },
  'Query.vehicles': {
    document: `{ vehicles(first: 1) { totalCount edges { node { id } } } }`,
    prepare: async () => ({ id: await createVehicle() }),
    check: (data) => expect((data.vehicles as { totalCount: number }).totalCount).toBeGreaterThan(0),
  },
  'Query.driver': {
    document: `query($id: ID!) { driver(id: $id) { id } }`,
    prepare: async () => ({ id: await createDriver() }),
    check: (data, variables) => expect(data.driver).toEqual({ id: variables.id }),
  },
  'Query.drivers': {
    document: `{ drivers(first: 1) { totalCount } }`,
    prepare: async () => ({ id: await createDriver() }),
    check: (data) => expect((data.drivers as { totalCount: number }).totalCount).toBeGreaterThan(0),
  },
  'Mutation.createVehicle': {
    document: `mutation($input: CreateVehicleInput!) { createVehicle(input: $input) { vehicle { plate } } }`,
    prepare: async () => ({ input: { plate: unique('NEW'), make: 'Ford', model: 'Transit', year: 2022 } }),
    effect: async (variables) => {
      const { plate } = variables.input as { plate: string };
      const found = await tenant.owner.request(
        graphql(`query RoleMatrixVehiclesFound($search: String) { vehicles(filter: { search: $search }) { totalCount } }`),
        { search: plate },
      );
      return found.vehicles.totalCount === 1;
    },
  },
  'Query.maintenanceRecords': {
    document: `{ maintenanceRecords(first: 1) { totalCount } }`,
    prepare: async () => ({ id: await openMaintenanceRecord() }),
    check: (data) => expect((data.maintenanceRecords as { totalCount: number }).totalCount).toBeGreaterThan(0),
  },
  'Mutation.openMaintenance': {
    document: `mutation($vehicleId: ID!) { openMaintenance(input: { vehicleId: $vehicleId, kind: SERVICE, description: "Matrix" }) { maintenanceRecord { id } } }`,
    prepare: async () => ({ vehicleId: await createVehicle() }),
    effect: async (variables) => (await vehicleStatusOf(variables.vehicleId as string)) === 'MAINTENANCE',
  },
  'Mutation.closeMaintenance': {
    document: `mutation($id: ID!) { closeMaintenance(input: { id: $id }) { maintenanceRecord { id } } }`,
    prepare: async () => ({ id: await openMaintenanceRecord() }),
    effect: async (variables) => {
      const found = await tenant.owner.request(graphql(`query RoleMatrixMaintenanceOf($id: ID!) { node(id: $id) { ... on MaintenanceRecord { closedAt } } }`), { id: variables.id as string });
      return Boolean(found.node && 'closedAt' in found.node && found.node.closedAt);
    },
  },
  'Query.auditEvents': {
    document: `query($id: String!) { auditEvents(first: 5, filter: { targetId: $id }) { totalCount edges { node { action } } } }`,
    prepare: async () => ({ id: await createVehicle() }),
    check: (data) => expect(data.auditEvents).toMatchObject({ totalCount: 1, edges: [{ node: { action: 'vehicle.created' } }] }),
  },
  'Query.fleetSettings': {
    document: `{ fleetSettings { timeZone currency } }`,
    check: (data) => expect(data.fleetSettings).toMatchObject({ timeZone: expect.any(String) as unknown }),
  },
  'Mutation.updateFleetSettings': {
    document: `mutation($minutes: Int!) { updateFleetSettings(input: { lateToleranceMinutes: $minutes }) { settings { lateToleranceMinutes } } }`,
    prepare: async () => ({ minutes: (counter += 1) % 1000 }),
    effect: async (variables) =>
      (await tenant.owner.request(graphql(`query RoleMatrixSettingsOf { fleetSettings { lateToleranceMinutes } }`))).fleetSettings.lateToleranceMinutes === variables.minutes,
  },
  'Query.tenantUsage': {
    document: `{ tenantUsage { plan quotas { quota usage limit } } }`,
    prepare: async () => ({ id: await createVehicle() }),
    check: (data) => {
      const usage = data.tenantUsage as { plan: string; quotas: { quota: string; usage: number; limit: number | null }[] };
      expect(usage.quotas.map((entry) => entry.quota)).toEqual(['VEHICLES', 'DRIVERS', 'MEMBERS', 'API_KEYS', 'OPEN_TRIPS']);
      expect(usage.quotas.find((entry) => entry.quota === 'VEHICLES')?.usage).toBeGreaterThan(0);
    },
  },
  'Query.fleetSummary': {
    document: `{ fleetSummary { vehiclesByStatus { status count } driversOnDuty } }`,
    prepare: async () => ({ id: await createVehicle() }),
    check: (data) => expect((data.fleetSummary as { vehiclesByStatus: { count: number }[] }).vehiclesByStatus.reduce((sum, entry) => sum + entry.count, 0)).toBeGreaterThan(0),
  },
  'Query.trip': {
    document: `query($id: ID!) { trip(id: $id) { id } }`,
    prepare: async () => ({ id: await createTrip() }),
    check: (data, variables) => expect(data.trip).toEqual({ id: variables.id }),
  },
  'Query.trips': {
    document: `{ trips(first: 1) { totalCount } }`,
    prepare: async () => ({ id: await createTrip() }),
    check: (data) => expect((data.trips as { totalCount: number }).totalCount).toBeGreaterThan(0),
  },
  'Query.stops': {
    document: `query($tripId: ID!) { stops(filter: { tripId: $tripId }) { totalCount edges { node { kind } } } }`,
    prepare: async () => ({ tripId: (await tripWithStops(['PICKUP', 'DROP_OFF'])).tripId }),
    check: (data) => expect(data.stops).toEqual({ totalCount: 2, edges: [{ node: { kind: 'PICKUP' } }, { node: { kind: 'DROP_OFF' } }] }),
  },
  'Mutation.createTrip': {
    document: `mutation($input: CreateTripInput!) { createTrip(input: $input) { trip { reference } } }`,
    prepare: async () => ({ input: { reference: unique('RM-NEW-TRIP'), origin: 'A', destination: 'B' } }),
    effect: async (variables) => {
      const { reference } = variables.input as { reference: string };
      const found = await tenant.owner.request(graphql(`query RoleMatrixTripsFound($search: String) { trips(filter: { search: $search }) { totalCount } }`), { search: reference });
      return found.trips.totalCount === 1;
    },
  },
  'Mutation.updateTrip': {
    document: `mutation($id: ID!) { updateTrip(id: $id, input: { destination: "Changed" }) { trip { destination } } }`,
    prepare: async () => ({ id: await createTrip() }),
    effect: async (variables) => (await tripOf(variables.id as string))?.destination === 'Changed',
  },
  'Mutation.transitionTrip': {
    // The lowest role's own transition (the table's other rows: tests/integration/trips.test.ts).
    document: `mutation($id: ID!) { transitionTrip(input: { id: $id, to: IN_TRANSIT }) { trip { status } } }`,
    prepare: async () => ({ id: await createTrip(['PLANNED', 'DISPATCHED']) }),
    effect: async (variables) => (await tripOf(variables.id as string))?.status === 'IN_TRANSIT',
  },
  'Mutation.deleteTrip': {
    document: `mutation($id: ID!) { deleteTrip(id: $id) { deletedId } }`,
    prepare: async () => ({ id: await createTrip() }),
    effect: async (variables) => (await tripOf(variables.id as string)) === null,
  },
  'Mutation.restoreTrip': {
    document: `mutation($id: ID!) { restoreTrip(id: $id) { trip { id } } }`,
    prepare: async () => {
      const id = await createTrip();
      await tenant.owner.request(graphql(`mutation RoleMatrixDeleteTrip($id: ID!) { deleteTrip(id: $id) { deletedId } }`), { id });
      return { id };
    },
    effect: async (variables) => (await tripOf(variables.id as string)) !== null,
  },
  'Mutation.addStop': {
    document: `mutation($tripId: ID!) { addStop(input: { tripId: $tripId, kind: PICKUP, address: "Added" }) { stop { id } } }`,
    prepare: async () => ({ tripId: await createTrip() }),
    effect: async (variables) =>
      (await tenant.owner.request(graphql(`query RoleMatrixStopsOf($id: ID!) { trip(id: $id) { stops { id } } }`), { id: variables.tripId as string })).trip?.stops.length === 1,
  },
  'Mutation.updateStop': {
    document: `mutation($id: ID!) { updateStop(id: $id, input: { address: "Changed" }) { stop { address } } }`,
    prepare: async () => ({ id: (await tripWithStops(['PICKUP'])).stopIds[0] }),
    effect: async (variables) => (await stopOf(variables.id as string))?.address === 'Changed',
  },
  'Mutation.removeStop': {
    document: `mutation($id: ID!) { removeStop(id: $id) { removedId } }`,
    prepare: async () => ({ id: (await tripWithStops(['PICKUP'])).stopIds[0] }),
    effect: async (variables) => (await stopOf(variables.id as string)) === null,
  },
  'Mutation.reorderStops': {
    document: `mutation($tripId: ID!, $stopIds: [ID!]!) { reorderStops(input: { tripId: $tripId, stopIds: $stopIds }) { trip { id } } }`,
    prepare: async () => {
      const { tripId, stopIds } = await tripWithStops(['PICKUP', 'DROP_OFF']);
      return { tripId, stopIds: [...stopIds].reverse() };
    },
    effect: async (variables) => (await stopOf((variables.stopIds as string[])[0] as string))?.sequence === 1,
  },
  'Mutation.markStopArrived': {
    document: `mutation($id: ID!) { markStopArrived(id: $id) { stop { arrivedAt } } }`,
    prepare: async () => ({ id: (await tripWithStops(['PICKUP'], ['PLANNED', 'DISPATCHED'])).stopIds[0] }),
    effect: async (variables) => Boolean((await stopOf(variables.id as string))?.arrivedAt),
  },
  'Mutation.completeStop': {
    document: `mutation($id: ID!) { completeStop(input: { id: $id, proofOfDelivery: { recipientName: "Matrix" } }) { stop { completedAt } } }`,
    prepare: async () => ({ id: (await tripWithStops(['DROP_OFF'], ['PLANNED', 'DISPATCHED'])).stopIds[0] }),
    effect: async (variables) => Boolean((await stopOf(variables.id as string))?.completedAt),
  },
  'Mutation.addTripNote': {
    document: `mutation($tripId: ID!) { addTripNote(input: { tripId: $tripId, body: "Noted" }) { note { id } } }`,
    prepare: async () => ({ tripId: await createTrip() }),
    effect: async (variables) =>
      (await tenant.owner.request(graphql(`query RoleMatrixNotesOf($id: ID!) { trip(id: $id) { notes { totalCount } } }`), { id: variables.tripId as string })).trip?.notes.totalCount === 1,
  },
  'Mutation.editTripNote': {
    // Each role edits its own note (only authors edit; tests/integration/trip-stops.test.ts has the rest).
    document: `mutation($id: ID!) { editTripNote(input: { id: $id, body: "Edited" }) { note { body } } }`,
    prepare: noteBy,
    effect: async (variables) => (await noteOf(variables.id as string))?.body === 'Edited',
  },
  'Mutation.deleteTripNote': {
    document: `mutation($id: ID!) { deleteTripNote(id: $id) { deletedId } }`,
    prepare: noteBy,
    effect: async (variables) => (await noteOf(variables.id as string)) === null,
  },
  'Mutation.restoreVehicle': {
    document: `mutation($id: ID!) { restoreVehicle(id: $id) { vehicle { id } } }`,
    prepare: async () => {
      const id = await createVehicle();
      await tenant.owner.request(graphql(`mutation RoleMatrixDeleteVehicleFirst($id: ID!) { deleteVehicle(id: $id) { deletedId } }`), { id });
      return { id };
    },
    effect: async (variables) => (await vehicleOf(variables.id as string)) !== null,
  },
  'Mutation.restoreDriver': {
    document: `mutation($id: ID!) { restoreDriver(id: $id) { driver { id } } }`,
    prepare: async () => {
      const id = await createDriver();
      await tenant.owner.request(graphql(`mutation RoleMatrixDeleteDriverFirst($id: ID!) { deleteDriver(id: $id) { deletedId } }`), { id });
      return { id };
    },
    effect: async (variables) => (await driverOf(variables.id as string)) !== null,
  },
  'Mutation.updateVehicle': {
    document: `mutation($id: ID!) { updateVehicle(id: $id, input: { make: "Changed" }) { vehicle { make } } }`,
    prepare: async () => ({ id: await createVehicle() }),
    effect: async (variables) => (await vehicleOf(variables.id as string))?.make === 'Changed',
  },
  'Mutation.deleteVehicle': {
    document: `mutation($id: ID!) { deleteVehicle(id: $id) { deletedId } }`,
    prepare: async () => ({ id: await createVehicle() }),
    effect: async (variables) => (await vehicleOf(variables.id as string)) === null,
  },
  'Mutation.createDriver': {
    document: `mutation($input: CreateDriverInput!) { createDriver(input: $input) { driver { licenseNumber } } }`,
    prepare: async () => ({ input: { name: 'New Driver', licenseNumber: unique('NEW-LIC') } }),
    effect: async (variables) => {
      const { licenseNumber } = variables.input as { licenseNumber: string };
      const found = await tenant.owner.request(
        graphql(`query RoleMatrixDriversFound($search: String) { drivers(filter: { search: $search }) { totalCount } }`),
        { search: licenseNumber },
      );
      return found.drivers.totalCount === 1;
    },
  },
  'Mutation.updateDriver': {
    document: `mutation($id: ID!) { updateDriver(id: $id, input: { name: "Changed" }) { driver { name } } }`,
    prepare: async () => ({ id: await createDriver() }),
    effect: async (variables) => (await driverOf(variables.id as string))?.name === 'Changed',
  },
  'Mutation.deleteDriver': {
    document: `mutation($id: ID!) { deleteDriver(id: $id) { deletedId } }`,
    prepare: async () => ({ id: await createDriver() }),
    effect: async (variables) => (await driverOf(variables.id as string)) === null,
  },
  'Mutation.assignDriver': {
    document: `mutation($vehicleId: ID!, $driverId: ID) { assignDriver(vehicleId: $vehicleId, driverId: $driverId) { vehicle { driver { id } } } }`,
    prepare: async () => ({ vehicleId: await createVehicle(), driverId: await createDriver() }),
    effect: async (variables) => (await vehicleOf(variables.vehicleId as string))?.driver?.id === variables.driverId,
  },
  'Mutation.addMember': {
    document: `mutation($input: AddMemberInput!) { addMember(input: $input) { member { email role } } }`,
    prepare: async () => ({ input: { email: `${unique('added')}@matrix.test`, name: 'Added', password: 'added-password-1', role: 'VIEWER' } }),
    effect: async (variables) => {
      const { email } = variables.input as { email: string };
      return (await memberList()).some((member) => member.email === email);
    },
  },
  'Mutation.updateMemberRole': {
    document: `mutation($userId: ID!) { updateMemberRole(userId: $userId, role: MEMBER) { member { id role } } }`,
    prepare: async () => ({ userId: (await addViewer()).id }),
    effect: async (variables) => (await memberList()).find((member) => member.id === variables.userId)?.role === 'MEMBER',
  },
  'Query.apiKeys': {
    document: `{ apiKeys { id } }`,
    prepare: async () => ({ id: await createApiKey() }),
    check: (data, variables) => expect(data.apiKeys).toContainEqual({ id: variables.id }),
  },
  'Query.persistedOperations': {
    document: `{ persistedOperations { sha256 } }`,
    prepare: async () => {
      const name = unique('Listed').replace('-', '');
      const body = `query ${name} { ${name.toLowerCase()}: __typename }`;
      await tenant.owner.request(
        graphql(`mutation RoleMatrixRegisterListed($operations: [PersistedOperationInput!]!) { registerPersistedOperations(operations: $operations) { operations { sha256 } } }`),
        { operations: [{ name, body }] },
      );
      return { sha256: createHash('sha256').update(body).digest('hex') };
    },
    check: (data, variables) => expect(data.persistedOperations).toContainEqual({ sha256: variables.sha256 }),
  },
  'Mutation.createApiKey': {
    document: `mutation($input: CreateApiKeyInput!) { createApiKey(input: $input) { apiKey { name role } secret } }`,
    prepare: async () => ({ input: { name: unique('new-key'), role: 'VIEWER' } }),
    effect: async (variables) => (await apiKeyList()).some((key) => key.name === (variables.input as { name: string }).name),
  },
  'Mutation.revokeApiKey': {
    document: `mutation($id: ID!) { revokeApiKey(id: $id) { apiKey { id revokedAt } } }`,
    prepare: async () => ({ id: await createApiKey() }),
    effect: async (variables) => (await apiKeyList()).find((key) => key.id === variables.id)?.revokedAt !== null,
  },
  'Mutation.registerPersistedOperations': {
    document: `mutation($operations: [PersistedOperationInput!]!) { registerPersistedOperations(operations: $operations) { operations { sha256 } } }`,
    prepare: async () => {
      const name = unique('Matrix').replace('-', '');
      return { operations: [{ name, body: `query ${name} { ${name.toLowerCase()}: __typename }` }] };
    },
    effect: async (variables) => {
      const [operation] = variables.operations as { body: string }[];
      const sha256 = createHash('sha256').update(operation!.body).digest('hex');
      return (await persistedList()).some((registered) => registered.sha256 === sha256);
    },
  },
  'Mutation.removePersistedOperations': {
    document: `mutation($ids: [ID!]!) { removePersistedOperations(ids: $ids) { removedIds } }`,
    prepare: async () => {
      const name = unique('Removable').replace('-', '');
      const registered = await tenant.owner.request(
        graphql(`mutation RoleMatrixRegisterRemovable($operations: [PersistedOperationInput!]!) { registerPersistedOperations(operations: $operations) { operations { id } } }`),
        { operations: [{ name, body: `query ${name} { ${name.toLowerCase()}: __typename }` }] },
      );
      return { ids: registered.registerPersistedOperations.operations.map((operation) => operation.id) };
    },
    check: (data, variables) => expect(data.removePersistedOperations).toEqual({ removedIds: variables.ids }),
    effect: async (variables) => {
      const listed = await tenant.owner.request(graphql(`query RoleMatrixRemovableList { persistedOperations { id } }`));
      return !listed.persistedOperations.some((operation) => (variables.ids as string[]).includes(operation.id));
    },
  },
  'Query.webhookEndpoints': {
    document: `{ webhookEndpoints { id } }`,
    prepare: async () => ({ id: await createWebhook() }),
    check: (data, variables) => expect(data.webhookEndpoints).toContainEqual({ id: variables.id }),
  },
  'Query.slackWebhook': {
    document: `{ slackWebhook { configured host } }`,
    prepare: async () => {
      await tenant.owner.request(SET_SLACK, { url: 'https://93.184.215.15/services/matrix' });
      return {};
    },
    check: (data) => expect(data.slackWebhook).toEqual({ configured: true, host: '93.184.215.15' }),
  },
  'Mutation.createWebhookEndpoint': {
    document: `mutation($input: CreateWebhookEndpointInput!) { createWebhookEndpoint(input: $input) { secret webhookEndpoint { description } } }`,
    prepare: async () => {
      await roomForWebhook();
      return { input: { url: MATRIX_HOOK, eventTypes: ['TRIP_LATE'], description: unique('matrix-hook') } };
    },
    effect: async (variables) => (await webhookList()).some((endpoint) => endpoint.description === (variables.input as { description: string }).description),
  },
  'Mutation.updateWebhookEndpoint': {
    document: `mutation($id: ID!, $description: String) { updateWebhookEndpoint(id: $id, input: { description: $description }) { webhookEndpoint { id } } }`,
    prepare: async () => ({ id: await createWebhook(), description: unique('updated') }),
    effect: async (variables) => (await webhookList()).find((endpoint) => endpoint.id === variables.id)?.description === variables.description,
  },
  'Mutation.deleteWebhookEndpoint': {
    document: `mutation($id: ID!) { deleteWebhookEndpoint(id: $id) { deletedId } }`,
    prepare: async () => ({ id: await createWebhook() }),
    effect: async (variables) => !(await webhookList()).some((endpoint) => endpoint.id === variables.id),
  },
  'Mutation.rotateWebhookSecret': {
    document: `mutation($id: ID!) { rotateWebhookSecret(id: $id) { secret } }`,
    prepare: async () => ({ id: await createWebhook() }),
    effect: async (variables) => ((await webhookList()).find((endpoint) => endpoint.id === variables.id)?.previousSecretExpiresAt ?? null) !== null,
  },
  'Mutation.setSlackWebhook': {
    document: `mutation($url: String!) { setSlackWebhook(url: $url) { slackWebhook { configured } } }`,
    prepare: async () => {
      await tenant.owner.request(REMOVE_SLACK);
      return { url: 'https://93.184.215.15/services/matrix' };
    },
    effect: async () => (await slackState()).configured,
  },
  'Mutation.removeSlackWebhook': {
    document: `mutation { removeSlackWebhook { slackWebhook { configured } } }`,
    prepare: async () => {
      await tenant.owner.request(SET_SLACK, { url: 'https://93.184.215.15/services/matrix' });
      return {};
    },
    effect: async () => !(await slackState()).configured,
  },
  'Query.invitations': {
    document: `{ invitations { id } }`,
    prepare: inviteHere,
    check: (data, variables) => expect(data.invitations).toContainEqual({ id: variables.id }),
  },
  'Mutation.inviteMember': {
    document: `mutation($input: InviteMemberInput!) { inviteMember(input: $input) { invitation { email role } } }`,
    prepare: async () => ({ input: { email: `${unique('invitee')}@matrix.test`, role: 'VIEWER' } }),
    effect: async (variables) => (await invitationList(tenant)).some((invitation) => invitation.email === (variables.input as { email: string }).email),
  },
  'Mutation.revokeInvitation': {
    document: `mutation($id: ID!) { revokeInvitation(id: $id) { revokedId } }`,
    prepare: inviteHere,
    effect: async (variables) => !(await invitationList(tenant)).some((invitation) => invitation.id === variables.id),
  },
  'Mutation.acceptInvitation': {
    document: `mutation($input: AcceptInvitationInput!) { acceptInvitation(input: $input) { tenantSlug role } }`,
    prepare: async (role) => {
      const { code } = await inviteFromElsewhere(role);
      return { input: { code, currentPassword: currentPasswordOf(role), newPassword: unique('matrix-new-password') } };
    },
    check: (data, variables, role) => {
      expect(data.acceptInvitation).toEqual({ tenantSlug: inviter.slug, role: 'VIEWER' });
      passwords.set(role, (variables.input as { newPassword: string }).newPassword);
    },
    effect: async (variables) => joinedInviter(variables.input as Record<string, unknown>),
  },
  'Mutation.declineInvitation': {
    document: `mutation($code: String!) { declineInvitation(code: $code) { declinedId } }`,
    prepare: inviteFromElsewhere,
    effect: async (variables) => !(await invitationList(inviter)).some((invitation) => invitation.email === addresseeOf.get(variables.code as string)),
  },
  'Mutation.verifyEmail': {
    document: `mutation($code: String!) { verifyEmail(code: $code) { emailVerified } }`,
    // The caller's account made unverified again, with a code of its own (as the verification email holds).
    prepare: async (role) => {
      const { prisma } = app.server.services.platform;
      const user = await prisma.user.update({ where: { email: emailOf(role) }, data: { emailVerifiedAt: null } });
      const code = await issueAccountCode(prisma, user.id, 'EMAIL_VERIFICATION');
      addresseeOf.set(code, emailOf(role));
      return { code };
    },
    check: (data) => expect(data.verifyEmail).toEqual({ emailVerified: true }),
    effect: async (variables) =>
      (await app.server.services.platform.prisma.user.findUniqueOrThrow({ where: { email: addresseeOf.get(variables.code as string)! } })).emailVerifiedAt !== null,
  },
  'Mutation.sendEmailVerification': {
    document: `mutation { sendEmailVerification { sent } }`,
    check: (data) => expect(data.sendEmailVerification).toEqual({ sent: expect.any(Boolean) }),
  },
  'Mutation.switchTenant': {
    document: `mutation($tenant: String!) { switchTenant(tenant: $tenant) { accessToken } }`,
    // Into the tenant the member is already in (the one membership every role here surely has).
    prepare: async () => ({ tenant: tenant.slug }),
    check: (data, _variables, role) => {
      const { accessToken } = data.switchTenant as { accessToken: string };
      const claims = JSON.parse(Buffer.from(accessToken.split('.')[1] ?? '', 'base64url').toString('utf8')) as { tid: string; role: string };
      expect(claims).toMatchObject({ tid: tenant.id, role });
      // The switch ended the session this role's client held: the matrix goes on with the new one.
      const replacement = app.bearer(accessToken);
      clients.set(role, replacement);
      if (role === 'OWNER') tenant.owner = replacement;
    },
  },
  'Mutation.removeMember': {
    document: `mutation($userId: ID!) { removeMember(userId: $userId) { removedUserId } }`,
    prepare: async () => ({ userId: (await addViewer()).id }),
    effect: async (variables) => !(await memberList()).some((member) => member.id === variables.userId),
  },
};

beforeAll(async () => {
  app = await startTestServer();
  // ENTERPRISE: the most generous request budget; this file sends a few hundred requests.
  tenant = await app.createTenant(undefined, 'ENTERPRISE');
  inviter = await app.createTenant(undefined, 'ENTERPRISE');
  clients.set('OWNER', tenant.owner);
  for (const role of ROLES.filter((candidate) => candidate !== 'OWNER')) {
    const email = emailOf(role);
    await tenant.owner.request(graphql(`mutation RoleMatrixAddRoleMember($input: AddMemberInput!) { addMember(input: $input) { member { id } } }`), {
      input: { email, name: `${role} member`, password: 'matrix-password-1', role },
    });
    clients.set(role, app.bearer(await app.login(tenant.slug, email, 'matrix-password-1')));
  }
});

afterAll(async () => {
  await app.close();
});

describe('the access contract', () => {
  it('the SDL requires the known role on every tenant-scoped operation', () => {
    expect(Object.fromEntries([...POLICIES].filter(([field]) => field in KNOWN))).toEqual(KNOWN);
  });

  it('every tenant-scoped operation in the SDL has a case in this matrix', () => {
    expect([...POLICIES.keys()].sort()).toEqual(Object.keys(CASES).sort());
  });

  it.each([
    ['VIEWER', 'Mutation.createVehicle', false],
    ['VIEWER', 'Mutation.updateVehicle', false],
    ['VIEWER', 'Query.vehicles', true],
    ['MEMBER', 'Mutation.updateVehicle', true],
    ['MEMBER', 'Mutation.createVehicle', false],
    ['MANAGER', 'Mutation.createVehicle', true],
    ['MANAGER', 'Mutation.assignDriver', true],
    ['MANAGER', 'Mutation.deleteVehicle', false],
    ['MANAGER', 'Mutation.addMember', false],
    ['ADMIN', 'Mutation.deleteVehicle', true],
    ['ADMIN', 'Mutation.removeMember', true],
    ['MANAGER', 'Mutation.createApiKey', false],
    ['ADMIN', 'Mutation.createApiKey', true],
  ] as const)('%s may call %s: %s', (role, field, allowed) => {
    const required = POLICIES.get(field);
    expect(required).toBeDefined();
    expect(RANK[role] >= RANK[required!]).toBe(allowed);
  });
});

const MATRIX = Object.keys(CASES).flatMap((field) =>
  ROLES.map((role) => {
    const required = POLICIES.get(field) ?? KNOWN[field]!;
    return { field, role, allowed: RANK[role] >= RANK[required], required };
  }),
);

describe('each role against each operation', () => {
  it.each(MATRIX)('$role -> $field (requires $required): allowed=$allowed', async ({ field, role, allowed }) => {
    const testCase = CASES[field]!;
    const client = clients.get(role)!;
    const variables = (await testCase.prepare?.(role)) ?? {};
    if (allowed) {
      const data = await client.request<Record<string, unknown>>(testCase.document, variables);
      testCase.check?.(data, variables, role);
      if (testCase.effect) expect(await testCase.effect(variables)).toBe(true);
    } else {
      expect(await errorCode(client.request(testCase.document, variables))).toBe('FORBIDDEN');
      if (testCase.effect) expect(await testCase.effect(variables)).toBe(false);
    }
  });
});

describe('callers outside the tenant', () => {
  it.each(Object.keys(CASES).filter((field) => field !== 'Query.me'))('%s: anonymous UNAUTHENTICATED, platform admin FORBIDDEN', async (field) => {
    const testCase = CASES[field]!;
    const variables = (await testCase.prepare?.('VIEWER')) ?? {};
    expect(await errorCode(app.client().request(testCase.document, variables))).toBe('UNAUTHENTICATED');
    expect(await errorCode((await app.admin()).request(testCase.document, variables))).toBe('FORBIDDEN');
    if (testCase.effect) expect(await testCase.effect(variables)).toBe(false);
  });
});
