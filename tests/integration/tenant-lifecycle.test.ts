import { graphql } from '../generated';
import type { GraphQLClient } from '../support/graphql-request';
import type { TenantJobResult } from '../../src/tenant-jobs/tenant-jobs';
import { DatabaseInspector } from '../support/provisioning-inspector';
import { expectErrors, startTestServer, uniqueSlug, type TenantFixture, type TestServer } from '../support/test-server';

/*
 * A tenant's life after provisioning, over HTTP as a platform admin: renamed and moved to another
 * plan (in its audit log), deleted with a grace period (it stops serving at once, can be kept
 * with cancelTenantDeletion, and once due is purged by the job: schema, role, platform rows and
 * the accounts left in no tenant; the slug is free again), while another tenant is untouched.
 */

let app: TestServer;
let admin: GraphQLClient;
let db: DatabaseInspector;

const TENANT = graphql(`query LifecycleTenant($slug: String!) { tenant(slug: $slug) { id name plan status deletionRequestedAt purgeAfter } }`);
const UPDATE = graphql(`mutation LifecycleUpdate($id: ID!, $input: UpdateTenantInput!) { updateTenant(id: $id, input: $input) { tenant { name plan } } }`);
const DELETE = graphql(`mutation LifecycleDelete($id: ID!) { deleteTenant(id: $id) { tenant { status deletionRequestedAt purgeAfter } } }`);
const CANCEL = graphql(`mutation LifecycleCancel($id: ID!) { cancelTenantDeletion(id: $id) { tenant { status purgeAfter } } }`);
const REACTIVATE = graphql(`mutation LifecycleReactivate($id: ID!) { reactivateTenant(id: $id) { tenant { status } } }`);
const PURGE = graphql(`mutation LifecyclePurge($slug: String!) { purgeTenant(slug: $slug) { purgedTenantId } }`);
const CREATE_VEHICLE = graphql(`mutation LifecycleVehicle($input: CreateVehicleInput!) { createVehicle(input: $input) { vehicle { id } } }`);
const VEHICLES = graphql(`query LifecycleVehicles { vehicles { totalCount } }`);
const AUDIT = graphql(`query LifecycleAudit($action: String!) { auditEvents(first: 5, filter: { action: $action }) { edges { node { actorKind metadata } } } }`);
const ADD_MEMBER = graphql(`mutation LifecycleAddMember($input: AddMemberInput!) { addMember(input: $input) { member { id } } }`);
const INVITE = graphql(`mutation LifecycleInvite($input: InviteMemberInput!) { inviteMember(input: $input) { invitation { id } } }`);
const ACCEPT = graphql(`mutation LifecycleAccept($input: AcceptInvitationInput!) { acceptInvitation(input: $input) { tenantSlug } }`);

const codeOf = (error: unknown) => (error as { response?: { errors?: { extensions?: { code?: string } }[] } }).response?.errors?.[0]?.extensions?.code;

async function addVehicle(tenant: TenantFixture, plate: string): Promise<void> {
  await tenant.owner.request(CREATE_VEHICLE, { input: { plate, make: 'Volvo', model: 'FH', year: 2020 } });
}

beforeAll(async () => {
  app = await startTestServer();
  admin = await app.admin();
  db = await DatabaseInspector.connect(app.databaseUrl);
}, 60_000);

afterAll(async () => {
  await db?.close();
  await app?.close();
});

describe('tenant lifecycle', () => {
  it('renames a tenant and moves it to another plan, in its audit log', async () => {
    const tenant = await app.createTenant(undefined, 'FREE');
    const updated = await admin.request(UPDATE, { id: tenant.id, input: { name: '  Renamed Fleet  ', plan: 'ENTERPRISE' } });
    expect(updated.updateTenant.tenant).toEqual({ name: 'Renamed Fleet', plan: 'ENTERPRISE' });
    expect((await admin.request(TENANT, { slug: tenant.slug })).tenant).toMatchObject({ name: 'Renamed Fleet', plan: 'ENTERPRISE' });
    const audit = (await tenant.owner.request(AUDIT, { action: 'tenant.updated' })).auditEvents.edges.map((edge) => edge.node);
    expect(audit).toEqual([{ actorKind: 'PLATFORM_ADMIN', metadata: { fields: ['name', 'plan'], plan: 'ENTERPRISE' } }]);
    const blank = await expectErrors(admin.request(UPDATE, { id: tenant.id, input: { name: '   ' } }));
    expect(blank.errors[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'input.name' });
    const unknown = await expectErrors(admin.request(UPDATE, { id: '0190a000-0000-7000-8000-000000000000', input: { name: 'x' } }));
    expect(unknown.errors[0]?.extensions.code).toBe('NOT_FOUND');
  });

  it('deletes with a grace period: serves nothing at once, and cancelling keeps everything', async () => {
    const tenant = await app.createTenant();
    await addVehicle(tenant, 'KEEP-1');
    const before = Date.now();
    const deleted = (await admin.request(DELETE, { id: tenant.id })).deleteTenant.tenant;
    expect(deleted.status).toBe('SUSPENDED');
    const purgeAfter = Date.parse(deleted.purgeAfter ?? '');
    expect(purgeAfter - before).toBeGreaterThan(29.9 * 24 * 3600 * 1000);
    expect(purgeAfter - before).toBeLessThan(30.1 * 24 * 3600 * 1000);
    // Asking again changes nothing.
    expect((await admin.request(DELETE, { id: tenant.id })).deleteTenant.tenant.purgeAfter).toBe(deleted.purgeAfter);
    expect(codeOf(await tenant.owner.request(VEHICLES).catch((error: unknown) => error))).toBe('TENANT_SUSPENDED');
    // Not due: neither purge nor reactivation.
    expect((await expectErrors(admin.request(PURGE, { slug: tenant.slug }))).errors[0]?.extensions.code).toBe('CONFLICT');
    expect((await expectErrors(admin.request(REACTIVATE, { id: tenant.id }))).errors[0]?.extensions.code).toBe('CONFLICT');

    expect((await admin.request(CANCEL, { id: tenant.id })).cancelTenantDeletion.tenant).toEqual({ status: 'SUSPENDED', purgeAfter: null });
    expect((await expectErrors(admin.request(CANCEL, { id: tenant.id }))).errors[0]?.extensions.code).toBe('CONFLICT');
    await admin.request(REACTIVATE, { id: tenant.id });
    expect((await tenant.owner.request(VEHICLES)).vehicles.totalCount).toBe(1);
    const audit = await tenant.owner.request(AUDIT, { action: 'tenant.deletionCancelled' });
    expect(audit.auditEvents.edges).toHaveLength(1);
  });

  it('purges a tenant once its deletion is due: data, role, rows and lone accounts go; the slug is free; others are untouched', async () => {
    const doomed = await app.createTenant();
    const other = await app.createTenant();
    await addVehicle(doomed, 'GONE-1');
    await addVehicle(other, 'STAYS-1');
    // One member of doomed only, and one who also belongs to the other tenant.
    const loneEmail = `lone@${doomed.slug}.test`;
    await doomed.owner.request(ADD_MEMBER, { input: { email: loneEmail, name: 'Lone', password: 'lone-password-1', role: 'MEMBER' } });
    const sharedEmail = `shared@${other.slug}.test`;
    await other.owner.request(ADD_MEMBER, { input: { email: sharedEmail, name: 'Shared', password: 'shared-password-1', role: 'MEMBER' } });
    await doomed.owner.request(INVITE, { input: { email: sharedEmail, role: 'VIEWER' } });
    const code = await app.invitationCode(sharedEmail);
    const sharedToken = await app.login(other.slug, sharedEmail, 'shared-password-1');
    await app.bearer(sharedToken).request(ACCEPT, { input: { code, currentPassword: 'shared-password-1', newPassword: 'shared-password-2' } });

    await admin.request(DELETE, { id: doomed.id });
    await db.client.query(`UPDATE platform."Tenant" SET "purgeAfter" = now() - interval '1 minute' WHERE "id" = $1`, [doomed.id]);
    const dry: string[] = [];
    const dryReport = await app.server.services.tenantDeletion.run({ dryRun: true }, (result) => dry.push(result.slug));
    expect(dry).toEqual([doomed.slug]);
    expect(dryReport).toMatchObject({ dryRun: true, visited: 1, done: 1, failed: 0, failures: [] });
    expect(await db.tenantRow(doomed.slug)).not.toBeNull();

    const done: TenantJobResult<{ purged: boolean }>[] = [];
    await app.server.services.tenantDeletion.run({}, (result) => done.push(result));
    expect(done).toEqual([expect.objectContaining({ slug: doomed.slug, status: 'DONE', outcome: { purged: true } })]);
    expect(await db.tenantRow(doomed.slug)).toBeNull();
    expect(await db.count(`SELECT count(*) FROM pg_namespace WHERE nspname = $1`, [doomed.schemaName])).toBe(0);
    expect(await db.count(`SELECT count(*) FROM pg_roles WHERE rolname LIKE $1`, [`%${doomed.slug.replaceAll('-', '_')}`])).toBe(0);
    expect(await db.count(`SELECT count(*) FROM platform."User" WHERE "email" IN ($1, $2)`, [loneEmail, doomed.ownerEmail])).toBe(0);
    expect(await db.count(`SELECT count(*) FROM platform."User" WHERE "email" = $1`, [sharedEmail])).toBe(1);
    // The other tenant, and the shared member's place in it, are untouched.
    expect((await other.owner.request(VEHICLES)).vehicles.totalCount).toBe(1);
    expect(await app.login(other.slug, sharedEmail, 'shared-password-2')).toEqual(expect.any(String));
    // Nothing left to do; the slug provisions afresh.
    expect(await app.server.services.tenantDeletion.run()).toMatchObject({ visited: 0, resumeAfter: null });
    const again = await app.createTenant(doomed.slug);
    expect((await again.owner.request(VEHICLES)).vehicles.totalCount).toBe(0);
  });

  it('refuses deleting a tenant whose provisioning did not finish, and unknown ids', async () => {
    const slug = uniqueSlug('half');
    await db.client.query(
      `INSERT INTO platform."Tenant" ("id", "slug", "name", "plan", "status", "schemaName", "dbRole", "updatedAt") VALUES (gen_random_uuid(), $1, 'Half', 'FREE', 'FAILED', $2, $3, now())`,
      [slug, `t_${slug.replaceAll('-', '_')}`, `fg_x_${slug.replaceAll('-', '_')}`],
    );
    const row = await db.tenantRow(slug);
    expect((await expectErrors(admin.request(DELETE, { id: (row as { id: string }).id }))).errors[0]?.extensions.code).toBe('CONFLICT');
    expect((await expectErrors(admin.request(DELETE, { id: '0190a000-0000-7000-8000-000000000000' }))).errors[0]?.extensions.code).toBe('NOT_FOUND');
  });
});
