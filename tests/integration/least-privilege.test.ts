import { randomBytes } from 'node:crypto';
import pino from 'pino';
import { loadConfig } from '../../src/config/config';
import { urlWithDatabase } from '../../src/database/connection-url';
import { restrictDatabaseConnections } from '../../src/provisioning/tenant-database-objects';
import { startServer, type RunningServer } from '../../src/server';
import { GraphQLClient } from '../support/graphql-request';
import { withClient } from '../support/local-resources';
import { shippedTenantMigrations } from '../support/provisioning-inspector';
import { readTestServices } from '../support/services';
import { uniqueSlug } from '../support/test-server';

/*
 * The README's claim about DATABASE_URL, over real HTTP: a role that is not a superuser, with
 * only CREATEROLE and CREATE (and CONNECT) on a database it does not own, runs the server,
 * provisions a tenant and serves it. It cannot take CONNECT from PUBLIC on someone else's
 * database, and the server must say so rather than claim it did.
 */

const ADMIN_EMAIL = 'admin@least-privilege.test';
const ADMIN_PASSWORD = 'admin-least-privilege-password';
const suffix = randomBytes(4).toString('hex');
const APP_ROLE = `fg_lp_${suffix}`;
const APP_PASSWORD = `lp-${randomBytes(12).toString('hex')}`;

let postgresUrl: string;
let databaseName: string;
/** The database as APP_ROLE, the server's DATABASE_URL. */
let appUrl: string;
/** The same database as the test services' superuser. */
let superuserUrl: string;
let server: RunningServer | undefined;
let url: string;
const logLines: string[] = [];

/** PostgreSQL's ACL of a database as text items ('=Tc/postgres', ...); null is the default ACL. */
async function databaseAcl(database: string): Promise<string[] | null> {
  return withClient(postgresUrl, async (client) => {
    const rows = await client.query<{ acl: string[] | null }>('SELECT datacl::text[] AS acl FROM pg_database WHERE datname = $1', [database]);
    return rows.rows[0]?.acl ?? null;
  });
}

/** Whether PUBLIC may connect by this ACL: NULL is the default (it may), else an "=...c.../grantor" item. */
function publicCanConnect(acl: string[] | null): boolean {
  if (acl === null) return true;
  return acl.some((item) => item.startsWith('=') && item.slice(1).split('/')[0]!.includes('c'));
}

function warnings(): string[] {
  return logLines.map((line) => JSON.parse(line) as { level: number; msg: string }).filter((entry) => entry.level >= 40).map((entry) => entry.msg);
}

beforeAll(async () => {
  const services = readTestServices();
  postgresUrl = services.postgresUrl;
  // The test-database prefix and run id, so a crashed run's database is swept up by global teardown.
  databaseName = `fgt_${services.runId}_lp_${suffix}`;
  await withClient(postgresUrl, async (client) => {
    const role = client.escapeIdentifier(APP_ROLE);
    const database = client.escapeIdentifier(databaseName);
    await client.query(`CREATE ROLE ${role} LOGIN CREATEROLE NOSUPERUSER NOCREATEDB PASSWORD ${client.escapeLiteral(APP_PASSWORD)}`);
    // Owned by the superuser, not by the server's role.
    await client.query(`CREATE DATABASE ${database}`);
    await client.query(`GRANT CREATE, CONNECT ON DATABASE ${database} TO ${role}`);
  });
  superuserUrl = urlWithDatabase(postgresUrl, databaseName);
  const parsed = new URL(superuserUrl);
  parsed.username = APP_ROLE;
  parsed.password = APP_PASSWORD;
  appUrl = parsed.toString();

  const config = loadConfig({
    NODE_ENV: 'test',
    DATABASE_URL: appUrl,
    PORT: '0',
    HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    JWT_SECRET: 'test-jwt-secret-least-privilege-0123456789abcdef',
    BCRYPT_ROUNDS: '4',
    RATE_LIMIT_ENABLED: 'false',
    APQ_TTL_SECONDS: '600',
    // In-process, the server shares jest's event loop, whose stalls would look like overload (as
    // in tests/support/test-server.ts); shedding has its own tests.
    OVERLOAD_SHEDDING: 'false',
  });
  const logger = pino({ level: 'warn' }, { write: (line: string) => void logLines.push(line) });
  server = await startServer({ config: { ...config, databaseUrl: appUrl }, logger });
  url = `http://127.0.0.1:${server.port}/graphql`;
});

afterAll(async () => {
  await server?.close();
  await withClient(postgresUrl, async (client) => {
    await client.query(`DROP DATABASE IF EXISTS ${client.escapeIdentifier(databaseName)} WITH (FORCE)`);
    if (server) {
      const tenantRoles = await client.query<{ rolname: string }>(`SELECT rolname FROM pg_roles WHERE rolname LIKE $1`, [
        `fg\\_${server.installationId}\\_%`,
      ]);
      for (const { rolname } of tenantRoles.rows) await client.query(`DROP ROLE IF EXISTS ${client.escapeIdentifier(rolname)}`);
    }
    await client.query(`DROP ROLE IF EXISTS ${client.escapeIdentifier(APP_ROLE)}`);
  });
});

it('runs as a role with only CREATEROLE and CREATE on the database: the server role is no superuser and does not own it', async () => {
  const facts = await withClient(appUrl, async (client) => {
    const rows = await client.query<{ rolsuper: boolean; rolcreaterole: boolean; owns: boolean }>(
      `SELECT r.rolsuper, r.rolcreaterole, d.datdba = r.oid AS owns
         FROM pg_roles r, pg_database d WHERE r.rolname = current_user AND d.datname = current_database()`,
    );
    return rows.rows[0];
  });
  expect(facts).toEqual({ rolsuper: false, rolcreaterole: true, owns: false });
});

it('provisions a tenant over GraphQL and serves it to its owner', async () => {
  const slug = uniqueSlug('lp');
  const ownerEmail = `owner@${slug}.test`;
  const ownerPassword = `owner-password-${slug}`;
  const anonymous = new GraphQLClient(url);

  const adminLogin = await anonymous.request<{ adminLogin: { accessToken: string } }>(
    'mutation($email: String!, $password: String!) { adminLogin(email: $email, password: $password) { accessToken } }',
    { email: ADMIN_EMAIL, password: ADMIN_PASSWORD },
  );
  const admin = new GraphQLClient(url, { headers: { authorization: `Bearer ${adminLogin.adminLogin.accessToken}` } });

  const created = await admin.request<{ createTenant: { tenant: { id: string; slug: string; status: string; migrationVersion: string | null } } }>(
    'mutation($input: CreateTenantInput!) { createTenant(input: $input) { tenant { id slug status migrationVersion } } }',
    { input: { slug, name: `Tenant ${slug}`, plan: 'STANDARD', owner: { email: ownerEmail, name: 'Owner', password: ownerPassword } } },
  );
  const { id: tenantId, ...tenant } = created.createTenant.tenant;
  expect(tenant).toEqual({ slug, status: 'ACTIVE', migrationVersion: shippedTenantMigrations().at(-1) });

  const login = await anonymous.request<{ login: { accessToken: string } }>(
    'mutation($input: LoginInput!) { login(input: $input) { accessToken } }',
    { input: { tenant: slug, email: ownerEmail, password: ownerPassword } },
  );
  const owner = new GraphQLClient(url, { headers: { authorization: `Bearer ${login.login.accessToken}` } });

  await owner.request('mutation($input: CreateVehicleInput!) { createVehicle(input: $input) { vehicle { id } } }', {
    input: { plate: 'LP-1', make: 'Make', model: 'Model', year: 2024, odometerKm: 10 },
  });
  const listed = await owner.request<{ vehicles: { totalCount: number; edges: { node: { plate: string } }[] } }>(
    '{ vehicles(first: 100) { totalCount edges { node { plate } } } }',
  );
  expect(listed.vehicles.edges.map((edge) => edge.node.plate)).toContain('LP-1');

  // force re-asserts the tenant's existing role (ALTER ROLE), which must not need a superuser either.
  const forced = await admin.request<{ migrateTenants: { results: { status: string; error: string | null }[] } }>(
    'mutation($ids: [ID!]) { migrateTenants(tenantIds: $ids, force: true) { results { status error } } }',
    { ids: [tenantId] },
  );
  expect(forced.migrateTenants.results).toEqual([{ status: 'UP_TO_DATE', error: null }]);
  const again = await owner.request<{ vehicles: { totalCount: number } }>('{ vehicles(first: 1) { totalCount } }');
  expect(again.vehicles.totalCount).toBe(listed.vehicles.totalCount);

  // The tenant's schema belongs to its own role, not to the server's.
  const schemaOwner = await withClient(superuserUrl, async (client) => {
    const rows = await client.query<{ owner: string }>(
      `SELECT n.nspowner::regrole::text AS owner FROM platform."Tenant" t JOIN pg_namespace n ON n.nspname = t."schemaName" WHERE t.slug = $1`,
      [slug],
    );
    return rows.rows[0]?.owner;
  });
  expect(schemaOwner).toMatch(new RegExp(`^"?fg_${server!.installationId}_`));
});

it('reports truthfully that it could not take CONNECT from PUBLIC on a database it does not own', async () => {
  // The server tried at start-up: PostgreSQL only warned, PUBLIC can still connect, and the
  // server said so instead of counting the REVOKE as done.
  expect(publicCanConnect(await databaseAcl(databaseName))).toBe(true);
  expect(warnings()).toContainEqual(expect.stringMatching(/^could not revoke CONNECT on this database from PUBLIC/));

  const asAppRole = await withClient(appUrl, (client) => restrictDatabaseConnections(client, databaseName));
  expect(asAppRole).toBe(false);
  expect(publicCanConnect(await databaseAcl(databaseName))).toBe(true);
});

it('reports success where the REVOKE takes effect (as a superuser)', async () => {
  const scratch = `fgt_${readTestServices().runId}_lpacl_${suffix}`;
  await withClient(postgresUrl, (client) => client.query(`CREATE DATABASE ${client.escapeIdentifier(scratch)}`));
  try {
    expect(publicCanConnect(await databaseAcl(scratch))).toBe(true);
    const asSuperuser = await withClient(urlWithDatabase(postgresUrl, scratch), (client) => restrictDatabaseConnections(client, scratch));
    expect(asSuperuser).toBe(true);
    expect(publicCanConnect(await databaseAcl(scratch))).toBe(false);
  } finally {
    await withClient(postgresUrl, (client) => client.query(`DROP DATABASE IF EXISTS ${client.escapeIdentifier(scratch)} WITH (FORCE)`));
  }
});
