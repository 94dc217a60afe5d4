import { randomBytes } from 'node:crypto';
import { ClientError, GraphQLClient } from './graphql-request';
import { graphql } from '../generated';
import { loadConfig } from '../../src/config/config';
import { createLogger, type Logger } from '../../src/observability/logger';
import { startServer, type RunningServer } from '../../src/server';
import { readTestServices } from './services';
import { createTestDatabase, dropTestDatabase } from './test-database';
import { SmtpCapture, codeIn } from './smtp-server';

/*
 * A real server on a real port, on its own database of the shared test PostgreSQL. Tests talk
 * to it over HTTP with graphql-request, like any client.
 */

export const ADMIN_EMAIL = 'admin@test.example';
export const ADMIN_PASSWORD = 'admin-test-password';

export interface TenantFixture {
  id: string;
  slug: string;
  schemaName: string;
  ownerEmail: string;
  ownerPassword: string;
  /** Client signed in as the tenant's OWNER. */
  owner: GraphQLClient;
  ownerToken: string;
}

export interface TestServer {
  url: string;
  server: RunningServer;
  databaseUrl: string;
  serverUrl: string;
  /** With `secondCluster`: the database on the second PostgreSQL server, cluster SECOND_CLUSTER. */
  secondClusterUrl: string | null;
  /** An unauthenticated client, or one sending these headers. */
  client(headers?: Record<string, string>): GraphQLClient;
  bearer(token: string, headers?: Record<string, string>): GraphQLClient;
  adminToken(): Promise<string>;
  admin(): Promise<GraphQLClient>;
  createTenant(slug?: string, plan?: 'FREE' | 'STANDARD' | 'ENTERPRISE', cluster?: string): Promise<TenantFixture>;
  login(tenant: string, email: string, password: string): Promise<string>;
  /** The real SMTP server this server sends to (null when the test gave its own SMTP_URL). */
  mail: SmtpCapture | null;
  /** The code of the next invitation email to `email` (waits for it). */
  invitationCode(email: string): Promise<string>;
  close(): Promise<void>;
}

export interface TestServerOptions {
  env?: Record<string, string>;
  tenantMigrationsDir?: string;
  /** Reuse another test server's database (for two instances sharing one platform). */
  databaseUrl?: string;
  /** The server's logger (default: the production logger at TEST_LOG_LEVEL, silent). */
  logger?: Logger;
  /**
   * A second tenant cluster, SECOND_CLUSTER: a database of this server's own on the second
   * PostgreSQL server (TENANT_CLUSTERS), dropped with its tenant roles on close. With
   * `databaseUrl`, pass the first instance's `secondClusterUrl` instead of true.
   */
  secondCluster?: boolean | string;
}

/** The name tests give the second PostgreSQL server's cluster. */
export const SECOND_CLUSTER = 'east';

/**
 * For suites that count the statements a request sends on tenant connections (/metrics): this
 * instance runs no jobs, whose notification deliveries would add theirs to the same counter
 * at moments the suite does not choose. Events still queue; nothing here delivers them.
 */
export const NO_BACKGROUND_JOBS: Record<string, string> = { JOB_WORKER_ENABLED: 'false' };

export function uniqueSlug(prefix = 't'): string {
  return `${prefix}-${randomBytes(4).toString('hex')}`;
}

export async function startTestServer(options: TestServerOptions = {}): Promise<TestServer> {
  const services = readTestServices();
  const ownsDatabase = !options.databaseUrl;
  const databaseUrl = options.databaseUrl ?? (await createTestDatabase(services.postgresUrl, services.runId));
  // Every test server mails to a real SMTP server of its own, unless the test brings one.
  // SMTP_URL: '' in `env` selects the log transport (no SMTP at all).
  const mail = options.env && 'SMTP_URL' in options.env ? null : await SmtpCapture.start();
  const ownsSecondCluster = options.secondCluster === true;
  const secondClusterUrl =
    typeof options.secondCluster === 'string' ? options.secondCluster : ownsSecondCluster ? await createTestDatabase(services.secondPostgresUrl, services.runId) : null;
  const config = loadConfig({
    NODE_ENV: 'test',
    DATABASE_URL: databaseUrl,
    PORT: '0',
    HOST: '127.0.0.1',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    JWT_SECRET: 'test-jwt-secret-0123456789abcdef-0123456789',
    BCRYPT_ROUNDS: '4',
    // Suites that test rate limiting turn it on (with the real Redis); elsewhere the per-IP
    // login limit would trip over the many logins of one test file.
    RATE_LIMIT_ENABLED: 'false',
    // Jest shares the event loop with the server and stalls it (compiling a test file, say), which
    // would look like overload; suites that test shedding turn it on.
    OVERLOAD_SHEDDING: 'false',
    // Test files sign in far more often than people do; the password-check budget has its own tests.
    PASSWORD_CHECKS_PER_SECOND: '100000',
    PASSWORD_CHECKS_BURST: '100000',
    // Rate-limit refusals come at once, so suites that exhaust budgets need not wait a second each.
    RATE_LIMIT_REFUSAL_DELAY_MS: '0',
    // Test documents registered in the shared Redis should not linger for a day.
    APQ_TTL_SECONDS: '600',
    ...(mail ? { SMTP_URL: mail.url } : {}),
    EMAIL_RETRY_DELAY_SECONDS: '1',
    // A job queued where no idle worker of this instance is woken (in a transaction, on an
    // instance that runs no jobs, behind a busy worker) waits for a poll: at the default 2 s,
    // one job at a time, a suite waiting for a few emails waited many seconds for nothing.
    JOB_POLL_INTERVAL_SECONDS: '0.5',
    // Two test files run at once against one PostgreSQL (max_connections 100): idle tenant
    // sessions held for the default 10 s by every server of both files ran it out of
    // connections (53300 at a createTenant's migrate step). Suites about idle sessions set their own.
    TENANT_IDLE_TIMEOUT_MS: '1000',
    ...(secondClusterUrl ? { TENANT_CLUSTERS: `${SECOND_CLUSTER}=${secondClusterUrl}` } : {}),
    ...options.env,
  });
  const server = await startServer({
    config: { ...config, databaseUrl },
    logger: options.logger ?? createLogger(config.logLevel),
    ...(options.tenantMigrationsDir ? { tenantMigrationsDir: options.tenantMigrationsDir } : {}),
  });
  const url = `http://127.0.0.1:${server.port}/graphql`;
  let adminToken: string | undefined;

  const client = (headers: Record<string, string> = {}) => new GraphQLClient(url, { headers });
  const bearer = (token: string, headers: Record<string, string> = {}) =>
    client({ ...headers, authorization: `Bearer ${token}` });

  const login = async (tenant: string, email: string, password: string) => {
    const result = await client().request(
      graphql(`mutation TestServerLogin($input: LoginInput!) { login(input: $input) { accessToken } }`),
      { input: { tenant, email, password } },
    );
    return result.login.accessToken;
  };

  const testServer: TestServer = {
    url,
    server,
    databaseUrl,
    serverUrl: services.postgresUrl,
    secondClusterUrl,
    client,
    bearer,
    async adminToken() {
      if (!adminToken) {
        const result = await client().request(
          graphql(`mutation TestServerAdminLogin($email: String!, $password: String!) { adminLogin(email: $email, password: $password) { accessToken } }`),
          { email: ADMIN_EMAIL, password: ADMIN_PASSWORD },
        );
        adminToken = result.adminLogin.accessToken;
      }
      return adminToken;
    },
    async admin() {
      return bearer(await testServer.adminToken());
    },
    async createTenant(slug = uniqueSlug(), plan = 'STANDARD', cluster?: string) {
      const ownerEmail = `owner@${slug}.test`;
      const ownerPassword = `owner-password-${slug}`;
      const admin = await testServer.admin();
      const result = await admin.request(
        graphql(`mutation TestServerCreateTenant($input: CreateTenantInput!) { createTenant(input: $input) { tenant { id slug schemaName } } }`),
        { input: { slug, name: `Tenant ${slug}`, plan, owner: { email: ownerEmail, name: 'Owner', password: ownerPassword }, ...(cluster ? { cluster } : {}) } },
      );
      const { schemaName, ...tenant } = result.createTenant.tenant;
      // Null only for callers other than platform admins.
      if (schemaName === null) throw new Error('createTenant answered a platform admin without the schema name');
      const ownerToken = await login(slug, ownerEmail, ownerPassword);
      return { ...tenant, schemaName, ownerEmail, ownerPassword, ownerToken, owner: bearer(ownerToken) };
    },
    login,
    mail,
    async invitationCode(email: string) {
      if (!mail) throw new Error('this test server mails elsewhere (SMTP_URL given)');
      return codeIn(await mail.take(email, 'You are invited'), 'Invitation code');
    },
    async close() {
      await server.close();
      await mail?.stop();
      if (ownsDatabase) await dropTestDatabase(databaseUrl, services.postgresUrl);
      if (ownsSecondCluster && secondClusterUrl) await dropTestDatabase(secondClusterUrl, services.secondPostgresUrl);
    },
  };
  return testServer;
}

export interface GraphQLErrorShape {
  message: string;
  path?: (string | number)[];
  extensions: { code: string; [key: string]: unknown };
}

/** Runs a request expected to fail and returns its errors (and the HTTP status). */
export async function expectErrors(request: Promise<unknown>): Promise<{ errors: GraphQLErrorShape[]; status: number; data: unknown }> {
  try {
    const data = await request;
    throw new Error(`expected GraphQL errors, got data: ${JSON.stringify(data)}`);
  } catch (error) {
    if (!(error instanceof ClientError)) throw error;
    return {
      errors: (error.response.errors ?? []) as unknown as GraphQLErrorShape[],
      status: error.response.status,
      data: error.response.data,
    };
  }
}

/** The single error code a failing request returned. */
export async function errorCode(request: Promise<unknown>): Promise<string> {
  const { errors } = await expectErrors(request);
  const codes = [...new Set(errors.map((error) => error.extensions.code))];
  if (codes.length !== 1) throw new Error(`expected one error code, got ${JSON.stringify(errors)}`);
  return codes[0] as string;
}
