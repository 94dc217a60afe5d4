import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { parse as parseYaml } from 'yaml';
import { loadConfig } from '../../src/config/config';
import { urlWithDatabase } from '../../src/database/connection-url';
import { startServer, type RunningServer } from '../../src/server';
import { GraphQLClient } from '../support/graphql-request';
import { withClient } from '../support/local-resources';
import { readTestServices } from '../support/services';
import { uniqueSlug } from '../support/test-server';

/*
 * docker-compose.yml runs the API as the least-privilege role its PostgreSQL init script
 * creates, not as the superuser. Docker does not run here, so this runs the init script itself,
 * as the container's entrypoint would (as a superuser, in the new database), then starts the
 * server with compose's DATABASE_URL credentials (only the host, and the role name, which is
 * cluster-wide, differ) and provisions and serves a tenant over HTTP.
 */

const ROOT = path.resolve(__dirname, '../..');
const INIT_SCRIPT = path.join(ROOT, 'docker/postgres-init/10-application-role.sql');
const suffix = randomBytes(4).toString('hex');

interface ComposeFile {
  services: { api: { environment: Record<string, string> }; postgres: { volumes: string[]; environment: Record<string, string> } };
}
const compose = parseYaml(readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8')) as ComposeFile;
const composeDatabaseUrl = new URL(compose.services.api.environment.DATABASE_URL!);
const composeRole = decodeURIComponent(composeDatabaseUrl.username);
const composePassword = decodeURIComponent(composeDatabaseUrl.password);
/** Roles belong to the whole PostgreSQL server: a name of this run's own. */
const role = `${composeRole}_${suffix}`;

let postgresUrl: string;
let databaseName: string;
let appUrl: string;
let server: RunningServer | undefined;

beforeAll(async () => {
  const services = readTestServices();
  postgresUrl = services.postgresUrl;
  databaseName = `fgt_${services.runId}_compose_${suffix}`;
  const script = readFileSync(INIT_SCRIPT, 'utf8').replaceAll(new RegExp(`\\b${composeRole}\\b`, 'g'), role);
  await withClient(postgresUrl, (client) => client.query(`CREATE DATABASE ${client.escapeIdentifier(databaseName)}`));
  await withClient(urlWithDatabase(postgresUrl, databaseName), (client) => client.query(script));
  const parsed = new URL(urlWithDatabase(postgresUrl, databaseName));
  parsed.username = role;
  parsed.password = composePassword;
  appUrl = parsed.toString();
  const config = loadConfig({
    NODE_ENV: 'test',
    DATABASE_URL: appUrl,
    PORT: '0',
    HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
    JWT_SECRET: 'test-jwt-secret-compose-role-0123456789abcdef',
    BCRYPT_ROUNDS: '4',
    RATE_LIMIT_ENABLED: 'false',
  });
  server = await startServer({ config: { ...config, databaseUrl: appUrl }, logger: pino({ level: 'silent' }) });
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
    await client.query(`DROP ROLE IF EXISTS ${client.escapeIdentifier(role)}`);
  });
});

it('compose mounts the init script and gives the API the role it creates, not the superuser', () => {
  expect(compose.services.postgres.volumes).toContain('./docker/postgres-init:/docker-entrypoint-initdb.d:ro');
  expect(composeRole).not.toBe(compose.services.postgres.environment.POSTGRES_USER);
  expect(readFileSync(INIT_SCRIPT, 'utf8')).toContain(`CREATE ROLE ${composeRole} LOGIN`);
  expect(readFileSync(INIT_SCRIPT, 'utf8')).toContain(`PASSWORD '${composePassword}'`);
});

it('the role is no superuser, does not own the database, and PUBLIC may no longer connect', async () => {
  const facts = await withClient(appUrl, async (client) => {
    const rows = await client.query<{ rolsuper: boolean; rolcreaterole: boolean; owns: boolean; acl: string[] }>(
      `SELECT r.rolsuper, r.rolcreaterole, d.datdba = r.oid AS owns, d.datacl::text[] AS acl
         FROM pg_roles r, pg_database d WHERE r.rolname = current_user AND d.datname = current_database()`,
    );
    return rows.rows[0]!;
  });
  expect(facts).toMatchObject({ rolsuper: false, rolcreaterole: true, owns: false });
  // "=<privileges>/grantor" is PUBLIC's entry: none of them may be CONNECT (c).
  expect(facts.acl.filter((item) => item.startsWith('=') && item.split('/')[0]!.includes('c'))).toEqual([]);
});

it('serves: provisions a tenant whose role gets its own CONNECT, and its owner works in it', async () => {
  const url = `http://127.0.0.1:${server!.port}/graphql`;
  const anonymous = new GraphQLClient(url);
  const { adminLogin } = await anonymous.request<{ adminLogin: { accessToken: string } }>(
    'mutation($email: String!, $password: String!) { adminLogin(email: $email, password: $password) { accessToken } }',
    { email: 'admin@example.com', password: 'admin-password' },
  );
  const admin = new GraphQLClient(url, { headers: { authorization: `Bearer ${adminLogin.accessToken}` } });
  const slug = uniqueSlug('compose');
  const owner = { email: `owner@${slug}.test`, name: 'Owner', password: 'owner-password-compose' };
  const created = await admin.request<{ createTenant: { tenant: { status: string } } }>(
    'mutation($input: CreateTenantInput!) { createTenant(input: $input) { tenant { status } } }',
    { input: { slug, name: 'Compose', plan: 'STANDARD', owner } },
  );
  expect(created.createTenant.tenant.status).toBe('ACTIVE');
  const { login } = await anonymous.request<{ login: { accessToken: string } }>(
    'mutation($input: LoginInput!) { login(input: $input) { accessToken } }',
    { input: { tenant: slug, email: owner.email, password: owner.password } },
  );
  const member = new GraphQLClient(url, { headers: { authorization: `Bearer ${login.accessToken}` } });
  await member.request('mutation($input: CreateVehicleInput!) { createVehicle(input: $input) { vehicle { id } } }', {
    input: { plate: 'CMP-1', make: 'Make', model: 'Model', year: 2024 },
  });
  const listed = await member.request<{ vehicles: { totalCount: number } }>('{ vehicles(first: 5) { totalCount } }');
  expect(listed.vehicles.totalCount).toBe(1);
});
