import { randomUUID } from 'node:crypto';
import type { TenantRecord } from '../../src/tenancy/tenant-directory';
import { quoteIdentifier } from '../../src/tenancy/tenant-naming';
import { graphql } from '../generated';
import { expectErrors, startTestServer, type TenantFixture, type TestServer } from '../support/test-server';

/*
 * The audit log over HTTP: every tenant mutation, and every change made in the platform schema
 * for the tenant (members, invitations, API keys, persisted operations), leaves one entry naming
 * who, what, which request; a mutation that fails leaves none; the tenant's database role can
 * add entries and read them, never change or remove one; entries queued in the platform's outbox
 * reach the tenant's log exactly once, however often they are moved.
 */

let app: TestServer;
let tenant: TenantFixture;
let record: TenantRecord;
let ownerId: string;

const AUDIT = graphql(`query AuditEvents($first: Int, $after: String, $filter: AuditEventFilter, $orderBy: AuditEventOrder) {
  auditEvents(first: $first, after: $after, filter: $filter, orderBy: $orderBy) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { node { id occurredAt actorKind actorId action targetType targetId requestId metadata } }
  }
}`);
const ME = graphql(`query AuditMe { me { id } }`);
const CREATE_VEHICLE = graphql(`mutation AuditCreateVehicle($input: CreateVehicleInput!) { createVehicle(input: $input) { vehicle { id version } } }`);
const UPDATE_VEHICLE = graphql(`mutation AuditUpdateVehicle($id: ID!, $input: UpdateVehicleInput!) { updateVehicle(id: $id, input: $input) { vehicle { id version } } }`);
const DELETE_VEHICLE = graphql(`mutation AuditDeleteVehicle($id: ID!) { deleteVehicle(id: $id) { deletedId } }`);
const RESTORE_VEHICLE = graphql(`mutation AuditRestoreVehicle($id: ID!) { restoreVehicle(id: $id) { vehicle { id } } }`);
const CREATE_DRIVER = graphql(`mutation AuditCreateDriver($input: CreateDriverInput!) { createDriver(input: $input) { driver { id } } }`);
const CREATE_TRIP = graphql(`mutation AuditCreateTrip($input: CreateTripInput!) { createTrip(input: $input) { trip { id } } }`);
const TRANSITION = graphql(`mutation AuditTransition($input: TransitionTripInput!) { transitionTrip(input: $input) { trip { status } } }`);
const OPEN_MAINTENANCE = graphql(`mutation AuditOpenMaintenance($input: OpenMaintenanceInput!) { openMaintenance(input: $input) { maintenanceRecord { id } } }`);
const SETTINGS = graphql(`mutation AuditSettings($input: UpdateFleetSettingsInput!) { updateFleetSettings(input: $input) { settings { currency } } }`);
const ADD_MEMBER = graphql(`mutation AuditAddMember($input: AddMemberInput!) { addMember(input: $input) { member { id } } }`);
const CHANGE_ROLE = graphql(`mutation AuditChangeRole($userId: ID!, $role: Role!) { updateMemberRole(userId: $userId, role: $role) { member { id role } } }`);
const REMOVE_MEMBER = graphql(`mutation AuditRemoveMember($userId: ID!) { removeMember(userId: $userId) { removedUserId } }`);
const INVITE = graphql(`mutation AuditInvite($input: InviteMemberInput!) { inviteMember(input: $input) { invitation { id email } } }`);
const REVOKE_INVITATION = graphql(`mutation AuditRevokeInvitation($id: ID!) { revokeInvitation(id: $id) { revokedId } }`);
const JOIN = graphql(`mutation AuditJoin($input: JoinByInvitationInput!) { joinByInvitation(input: $input) { accessToken } }`);
const CREATE_KEY = graphql(`mutation AuditCreateKey($input: CreateApiKeyInput!) { createApiKey(input: $input) { apiKey { id } secret } }`);
const REVOKE_KEY = graphql(`mutation AuditRevokeKey($id: ID!) { revokeApiKey(id: $id) { apiKey { id } } }`);
const REGISTER = graphql(`mutation AuditRegister($operations: [PersistedOperationInput!]!) { registerPersistedOperations(operations: $operations) { operations { id } } }`);

type Entry = { action: string; targetType: string; targetId: string; actorKind: string; actorId: string | null; requestId: string | null; metadata: Record<string, unknown> };

async function entries(filter: Record<string, unknown> = {}, first = 100): Promise<Entry[]> {
  return (await tenant.owner.request(AUDIT, { first, filter })).auditEvents.edges.map((edge) => edge.node);
}

/** The tenant's AuditEvent rows as the database holds them, read as the platform (no relay involved). */
async function storedActions(): Promise<string[]> {
  const rows = await app.server.services.platform.pool.query<{ action: string }>(`SELECT "action" FROM ${quoteIdentifier(tenant.schemaName)}."AuditEvent" ORDER BY "id"`);
  return rows.rows.map((row) => row.action);
}

let counter = 0;
const unique = (prefix: string) => `${prefix}-${(counter += 1)}-${randomUUID().slice(0, 6)}`;

beforeAll(async () => {
  app = await startTestServer();
  tenant = await app.createTenant(undefined, 'ENTERPRISE');
  const found = await app.server.services.directory.findById(tenant.id);
  if (!found) throw new Error('tenant not in the directory');
  record = found;
  ownerId = (await tenant.owner.request(ME)).me.id;
}, 60_000);

afterAll(async () => {
  await app?.close();
});

describe('audit log', () => {
  it('records each tenant mutation with its actor, target and request id, newest first', async () => {
    const requestId = `audit-${randomUUID()}`;
    const withRequestId = app.bearer(tenant.ownerToken, { 'X-Request-Id': requestId, 'X-Tenant': tenant.slug });
    const vehicle = (await withRequestId.request(CREATE_VEHICLE, { input: { plate: unique('AUD'), make: 'MAN', model: 'TGX', year: 2022 } })).createVehicle.vehicle;
    await tenant.owner.request(UPDATE_VEHICLE, { id: vehicle.id, input: { odometerKm: 1200, expectedVersion: vehicle.version } });
    await tenant.owner.request(DELETE_VEHICLE, { id: vehicle.id });
    await tenant.owner.request(RESTORE_VEHICLE, { id: vehicle.id });

    const log = await entries({ targetId: vehicle.id });
    expect(log.map((entry) => entry.action)).toEqual(['vehicle.restored', 'vehicle.deleted', 'vehicle.updated', 'vehicle.created']);
    for (const entry of log) expect(entry).toMatchObject({ actorKind: 'USER', actorId: ownerId, targetType: 'Vehicle', targetId: vehicle.id });
    expect(log[3]?.requestId).toBe(requestId);
    expect(log[2]?.metadata).toEqual({ version: 2, fields: ['odometerKm'] });
    // The values stay in the record's history, not in the log.
    expect(JSON.stringify(log)).not.toContain('1200');
  });

  it('names a trip transition with its from, to and reason, and maintenance and settings changes', async () => {
    const vehicleId = (await tenant.owner.request(CREATE_VEHICLE, { input: { plate: unique('AUT'), make: 'DAF', model: 'XF', year: 2021 } })).createVehicle.vehicle.id;
    const driverId = (await tenant.owner.request(CREATE_DRIVER, { input: { name: 'Audit Driver', licenseNumber: unique('LIC') } })).createDriver.driver.id;
    const tripId = (await tenant.owner.request(CREATE_TRIP, { input: { reference: unique('TRIP'), origin: 'Lyon', destination: 'Turin', vehicleId, driverId } })).createTrip.trip.id;
    await tenant.owner.request(TRANSITION, { input: { id: tripId, to: 'PLANNED' } });
    await tenant.owner.request(TRANSITION, { input: { id: tripId, to: 'CANCELLED', reason: 'customer called off' } });
    const trip = await entries({ targetId: tripId });
    expect(trip.map((entry) => [entry.action, entry.metadata.from, entry.metadata.to])).toEqual([
      ['trip.transitioned', 'PLANNED', 'CANCELLED'],
      ['trip.transitioned', 'DRAFT', 'PLANNED'],
      ['trip.created', undefined, undefined],
    ]);
    expect(trip[0]?.metadata.reason).toBe('customer called off');

    const maintenanceId = (await tenant.owner.request(OPEN_MAINTENANCE, { input: { vehicleId, kind: 'SERVICE', description: 'Oil' } })).openMaintenance.maintenanceRecord.id;
    expect((await entries({ targetId: maintenanceId })).map((entry) => entry.action)).toEqual(['maintenance.opened']);
    // Opening it moved the vehicle to MAINTENANCE: that change is the vehicle's own entry.
    expect((await entries({ targetId: vehicleId }))[0]?.metadata).toMatchObject({ fields: ['status'] });

    await tenant.owner.request(SETTINGS, { input: { currency: 'SEK' } });
    expect((await entries({ action: 'fleetSettings.updated' }))[0]?.metadata).toEqual({ fields: ['currency'] });
  });

  it('opens with tenant.created by the platform admin who created it', async () => {
    const created = await entries({ action: 'tenant.created' });
    expect(created).toHaveLength(1);
    expect(created[0]).toMatchObject({ actorKind: 'PLATFORM_ADMIN', targetType: 'Tenant', targetId: tenant.id, metadata: { plan: 'ENTERPRISE', ownerUserId: ownerId } });
  });

  it('writes nothing for a mutation that fails', async () => {
    const plate = unique('DUP');
    await tenant.owner.request(CREATE_VEHICLE, { input: { plate, make: 'MAN', model: 'TGX', year: 2022 } });
    const before = await storedActions();
    const refused = await expectErrors(tenant.owner.request(CREATE_VEHICLE, { input: { plate, make: 'MAN', model: 'TGX', year: 2022 } }));
    expect(refused.errors[0]?.extensions.code).toBe('CONFLICT');
    expect(await storedActions()).toEqual(before);
  });

  it('records member, invitation, API-key and persisted-operation changes made in the platform, without their secrets', async () => {
    const email = `${unique('aud')}@example.com`;
    const memberId = (await tenant.owner.request(ADD_MEMBER, { input: { email, name: 'Audit Member', password: 'audit-member-password-1', role: 'MEMBER' } })).addMember.member.id;
    await tenant.owner.request(CHANGE_ROLE, { userId: memberId, role: 'MANAGER' });
    await tenant.owner.request(REMOVE_MEMBER, { userId: memberId });
    const invitedMutation = (await tenant.owner.request(INVITE, { input: { email: `${unique('inv')}@example.com`, role: 'VIEWER' } })).inviteMember;
    const invited = { ...invitedMutation, code: await app.invitationCode(invitedMutation.invitation.email) };
    await tenant.owner.request(REVOKE_INVITATION, { id: invited.invitation.id });
    const joiningMutation = (await tenant.owner.request(INVITE, { input: { email: `${unique('join')}@example.com`, role: 'VIEWER' } })).inviteMember;
    const joining = { ...joiningMutation, code: await app.invitationCode(joiningMutation.invitation.email) };
    await app.client().request(JOIN, { input: { code: joining.code, name: 'Joiner', password: 'joiner-password-123' } });
    const key = (await tenant.owner.request(CREATE_KEY, { input: { name: 'audit key', role: 'VIEWER' } })).createApiKey;
    await tenant.owner.request(REVOKE_KEY, { id: key.apiKey.id });
    await tenant.owner.request(REGISTER, { operations: [{ body: `query AuditRegistered${counter} { me { id } }` }] });

    const log = await entries();
    const actions = log.map((entry) => entry.action);
    for (const action of ['member.added', 'member.roleChanged', 'member.removed', 'invitation.created', 'invitation.revoked', 'invitation.joined', 'apiKey.created', 'apiKey.revoked', 'persistedOperations.registered']) {
      expect(actions).toContain(action);
    }
    expect(log.find((entry) => entry.action === 'member.roleChanged')).toMatchObject({ targetId: memberId, actorId: ownerId, metadata: { from: 'MEMBER', to: 'MANAGER' } });
    expect(log.find((entry) => entry.action === 'apiKey.created')).toMatchObject({ targetType: 'ApiKey', targetId: key.apiKey.id, metadata: { name: 'audit key', role: 'VIEWER' } });
    const text = JSON.stringify(log);
    for (const secret of [key.secret, invited.code, joining.code, 'audit-member-password-1', 'joiner-password-123']) expect(text).not.toContain(secret);
    // Read once, each entry is in the tenant's own table exactly once, and the outbox is empty.
    const stored = await storedActions();
    expect(stored.filter((action) => action === 'apiKey.created')).toHaveLength(1);
    const queued = await app.server.services.platform.pool.query(`SELECT 1 FROM platform."TenantAuditOutbox" WHERE "tenantId" = $1`, [tenant.id]);
    expect(queued.rowCount).toBe(0);
  });

  it('moves platform entries into the tenant log on its own, without a read', async () => {
    const key = (await tenant.owner.request(CREATE_KEY, { input: { name: 'moved key', role: 'VIEWER' } })).createApiKey;
    const deadline = Date.now() + 10_000;
    let stored = 0;
    while (Date.now() < deadline) {
      const found = await app.server.services.platform.pool.query(`SELECT 1 FROM ${quoteIdentifier(tenant.schemaName)}."AuditEvent" WHERE "targetId" = $1`, [key.apiKey.id]);
      stored = found.rowCount ?? 0;
      if (stored > 0) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(stored).toBe(1);
  });

  it('moves a queued entry exactly once, even when the move is repeated after a crash', async () => {
    // A committed platform change whose move never ran (the instance died after commit): its
    // row is in the outbox. The same id queued again stands for a move cut after the insert.
    const id = randomUUID();
    const queue = () =>
      app.server.services.platform.pool.query(
        `INSERT INTO platform."TenantAuditOutbox" ("id", "tenantId", "actorKind", "actorId", "action", "targetType", "targetId") VALUES ($1, $2, 'USER', $3, 'member.added', 'Member', $4)`,
        [id, tenant.id, ownerId, ownerId],
      );
    await queue();
    expect((await entries({ action: 'member.added', targetId: ownerId })).length).toBe(1);
    await queue();
    await app.server.services.auditRelay.flush(record);
    await app.server.services.auditRelay.flush(record);
    const rows = await app.server.services.platform.pool.query(`SELECT 1 FROM ${quoteIdentifier(tenant.schemaName)}."AuditEvent" WHERE "id" = $1`, [id]);
    expect(rows.rowCount).toBe(1);
  });

  it("is append-only for the tenant's own database role", async () => {
    const lease = app.server.services.tenantClients.lease(record);
    try {
      const denied = async (statement: string) => {
        const error = await lease.db.$executeRawUnsafe(statement).then(
          () => null,
          (caught: unknown) => caught,
        );
        expect(error).not.toBeNull();
        const cause = (error as { meta?: { driverAdapterError?: { cause?: { originalCode?: string } } } }).meta?.driverAdapterError?.cause;
        expect(cause?.originalCode).toBe('42501'); // insufficient_privilege
      };
      await lease.db.$executeRawUnsafe(`INSERT INTO "AuditEvent" ("id", "actorKind", "action", "targetType", "targetId") VALUES ('${randomUUID()}', 'SYSTEM', 'probe.inserted', 'Probe', 'x')`);
      const count = await lease.db.$queryRawUnsafe<{ n: number }[]>(`SELECT count(*)::int AS n FROM "AuditEvent"`);
      expect(count[0]?.n).toBeGreaterThan(1);
      await denied(`UPDATE "AuditEvent" SET "action" = 'forged'`);
      await denied(`DELETE FROM "AuditEvent"`);
      await denied(`TRUNCATE "AuditEvent"`);
      await denied(`ALTER TABLE "AuditEvent" DISABLE TRIGGER ALL`);
      // Granting itself more is only a WARNING for a non-owner ("no privileges were granted"): it changes nothing.
      await lease.db.$executeRawUnsafe(`GRANT UPDATE, DELETE ON "AuditEvent" TO CURRENT_USER`);
      await denied(`UPDATE "AuditEvent" SET "action" = 'forged'`);
      const forged = await lease.db.$queryRawUnsafe<{ n: number }[]>(`SELECT count(*)::int AS n FROM "AuditEvent" WHERE "action" = 'forged'`);
      expect(forged[0]?.n).toBe(0);
    } finally {
      lease.release();
    }
  });

  it('filters by actor, action and time, pages in either order, and refuses a cursor of another order', async () => {
    const since = new Date().toISOString();
    for (let index = 0; index < 3; index += 1) await tenant.owner.request(CREATE_VEHICLE, { input: { plate: unique('PAGE'), make: 'MAN', model: 'TGX', year: 2022 } });
    const recent = await entries({ from: since, action: 'vehicle.created' });
    expect(recent).toHaveLength(3);
    expect(await entries({ from: since, action: 'vehicle.created', actorId: randomUUID() })).toHaveLength(0);
    expect(await entries({ to: since, action: 'vehicle.created', targetId: recent[0]?.targetId })).toHaveLength(0);
    expect(await entries({ actorId: 'not-a-uuid' })).toHaveLength(0);

    const first = await tenant.owner.request(AUDIT, { first: 2, filter: { from: since, action: 'vehicle.created' } });
    expect(first.auditEvents.pageInfo.hasNextPage).toBe(true);
    const rest = await tenant.owner.request(AUDIT, { first: 2, after: first.auditEvents.pageInfo.endCursor, filter: { from: since, action: 'vehicle.created' } });
    expect([...first.auditEvents.edges, ...rest.auditEvents.edges].map((edge) => edge.node.targetId)).toEqual(recent.map((entry) => entry.targetId));
    const oldestFirst = await tenant.owner.request(AUDIT, { first: 3, filter: { from: since, action: 'vehicle.created' }, orderBy: { field: 'OCCURRED_AT', direction: 'ASC' } });
    expect(oldestFirst.auditEvents.edges.map((edge) => edge.node.targetId)).toEqual(recent.map((entry) => entry.targetId).reverse());
    const wrong = await expectErrors(
      tenant.owner.request(AUDIT, { first: 2, after: first.auditEvents.pageInfo.endCursor, orderBy: { field: 'CREATED_AT', direction: 'ASC' } }),
    );
    expect(wrong.errors[0]?.extensions.code).toBe('BAD_USER_INPUT');
  });
});
