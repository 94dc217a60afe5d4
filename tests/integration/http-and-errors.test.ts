import pg from 'pg';
import { ADMIN_EMAIL, ADMIN_PASSWORD, startTestServer, uniqueSlug, type TenantFixture, type TestServer } from '../support/test-server';

/*
 * The HTTP surface (health, readiness, metrics, CORS, landing page, CSRF prevention) and the
 * shape of every error a client can see, in development and in production configuration.
 */

const SANDBOX_ORIGIN = 'https://studio.apollographql.com';
const LANDING_PAGE_MARKER = /embeddable-sandbox|apollo-server-landing-page/;

let app: TestServer;
let tenant: TenantFixture;
let base: string;

beforeAll(async () => {
  app = await startTestServer();
  base = app.url.replace(/\/graphql$/, '');
  tenant = await app.createTenant(undefined, 'ENTERPRISE');
});

afterAll(async () => {
  await app.close();
});

interface RawResponse {
  status: number;
  headers: Headers;
  text: string;
  json: { data?: unknown; errors?: { message: string; path?: unknown[]; extensions?: Record<string, unknown> }[] } | undefined;
}

async function send(url: string, init: RequestInit = {}): Promise<RawResponse> {
  const response = await fetch(url, init);
  const text = await response.text();
  let json: RawResponse['json'];
  try {
    json = JSON.parse(text) as RawResponse['json'];
  } catch {
    json = undefined;
  }
  return { status: response.status, headers: response.headers, text, json };
}

function post(body: unknown, headers: Record<string, string> = {}, url = app.url): Promise<RawResponse> {
  return send(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
}

const asOwner = () => ({ authorization: `Bearer ${tenant.ownerToken}` });

/** Text that would reveal the database or the code behind an error. */
const LEAK = /\b(select|insert|update|delete)\b[^"]*\b(from|into|set|where)\b|relation "|violates|syntax error at or near|prisma|postgres|\bpg_|sqlstate|node_modules|\.ts:\d+|at [\w.]+ \(/i;

/** Every error carries the problem fields and nothing that leaks internals. */
function expectProblemShape(response: RawResponse): void {
  expect(response.json?.errors?.length).toBeGreaterThan(0);
  expect(response.text).not.toMatch(/stacktrace|exception/i);
  expect(response.text).not.toMatch(LEAK);
  for (const error of response.json!.errors!) {
    const extensions = error.extensions ?? {};
    expect(typeof error.message).toBe('string');
    expect(extensions).toEqual(
      expect.objectContaining({
        code: expect.stringMatching(/^[A-Z_]+$/),
        type: expect.stringMatching(/^urn:fleet-graphql:problem:[a-z-]+$/),
        title: expect.any(String),
        status: expect.any(Number),
        detail: expect.any(String),
      }),
    );
    expect(extensions.type).toBe(`urn:fleet-graphql:problem:${String(extensions.code).toLowerCase().replaceAll('_', '-')}`);
    expect(extensions.status).toBeGreaterThanOrEqual(200);
    expect(extensions.status).toBeLessThan(600);
    expect(extensions).not.toHaveProperty('stacktrace');
    expect(extensions).not.toHaveProperty('exception');
  }
}

function codesOf(response: RawResponse): unknown[] {
  return (response.json?.errors ?? []).map((error) => error.extensions?.code);
}

describe('health, readiness and metrics', () => {
  it('GET /healthz answers 200', async () => {
    const response = await send(`${base}/healthz`);
    expect(response.status).toBe(200);
    expect(response.json).toEqual({ status: 'ok' });
  });

  it('GET /readyz answers 200 with postgres ok', async () => {
    const response = await send(`${base}/readyz`);
    expect(response.status).toBe(200);
    expect(response.json).toMatchObject({ status: 'ready', checks: { postgres: 'ok' } });
  });

  it('GET /metrics answers Prometheus text with the server\'s own metrics', async () => {
    await post({ query: '{ vehicles { totalCount } }' }, asOwner());
    const response = await send(`${base}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(response.text).toContain('# TYPE fleet_tenant_sql_statements_total counter');
    expect(response.text).toMatch(/^fleet_tenant_sql_statements_total [1-9]\d*$/m);
    expect(response.text).toContain('# TYPE fleet_graphql_operation_duration_seconds histogram');
    expect(response.text).toMatch(/^fleet_graphql_operation_duration_seconds_count\{[^}]*operation="query"[^}]*\} [1-9]/m);
  });
});

describe('request errors', () => {
  it('a syntax error is GRAPHQL_PARSE_FAILED with problem fields and HTTP 400', async () => {
    const response = await post({ query: '{ vehicles { totalCount ' }, asOwner());
    expect(response.status).toBe(400);
    expect(codesOf(response)).toEqual(['GRAPHQL_PARSE_FAILED']);
    expectProblemShape(response);
    const [error] = response.json!.errors!;
    expect(error!.extensions).toMatchObject({
      type: 'urn:fleet-graphql:problem:graphql-parse-failed',
      title: expect.stringMatching(/\S/),
      status: 400,
      detail: error!.message,
    });
    expect(error!.message).toMatch(/^Syntax Error/);
  });

  it('an unknown field is GRAPHQL_VALIDATION_FAILED with HTTP 400', async () => {
    const response = await post({ query: '{ vehicles { totalCount noSuchField } }' }, asOwner());
    expect(response.status).toBe(400);
    expect(codesOf(response)).toEqual(['GRAPHQL_VALIDATION_FAILED']);
    expect(response.json!.errors![0]!.message).toContain('noSuchField');
    expectProblemShape(response);
  });

  it('an invalid bearer token is refused with HTTP 401 UNAUTHENTICATED', async () => {
    for (const authorization of ['Bearer not-a-jwt', 'Bearer eyJhbGciOiJIUzI1NiJ9.e30.c2lnbmF0dXJl', 'Basic dXNlcjpwYXNz', 'Bearer']) {
      const response = await post({ query: '{ __typename }' }, { authorization });
      expect(response.status).toBe(401);
      expect(codesOf(response)).toEqual(['UNAUTHENTICATED']);
      expect(response.json).not.toHaveProperty('data.__typename');
      expectProblemShape(response);
    }
  });

  it('every error of a catalogue of failing requests has the problem fields and leaks nothing', async () => {
    const plate = `DUP-${Date.now().toString(36)}`.toUpperCase();
    await post({ query: `mutation { createVehicle(input: { plate: "${plate}", make: "A", model: "B", year: 2020 }) { vehicle { id } } }` }, asOwner());
    const unknownVehicle = Buffer.from('Vehicle:00000000-0000-7000-8000-000000000000').toString('base64url');
    const requests: [label: string, request: () => Promise<RawResponse>, code: string][] = [
      ['parse', () => post({ query: 'query {' }), 'GRAPHQL_PARSE_FAILED'],
      ['validation', () => post({ query: '{ nope }' }), 'GRAPHQL_VALIDATION_FAILED'],
      ['no query', () => post({ variables: {} }), 'BAD_REQUEST'],
      ['unknown operation name', () => post({ query: 'query A { __typename }', operationName: 'B' }), 'OPERATION_RESOLUTION_FAILURE'],
      ['bad variable', () => post({ query: 'query($n: Int) { vehicles(first: $n) { totalCount } }', variables: { n: 'x' } }, asOwner()), 'BAD_USER_INPUT'],
      ['anonymous', () => post({ query: '{ vehicles { totalCount } }' }), 'UNAUTHENTICATED'],
      ['wrong password', () => post({ query: `mutation { login(input: { tenant: "${tenant.slug}", email: "${tenant.ownerEmail}", password: "wrong-password" }) { accessToken } }` }), 'UNAUTHENTICATED'],
      ['member asks for platform data', () => post({ query: '{ tenants { totalCount } }' }, asOwner()), 'FORBIDDEN'],
      ['page size', () => post({ query: '{ vehicles(first: 0) { totalCount } }' }, asOwner()), 'BAD_USER_INPUT'],
      ['unknown vehicle', () => post({ query: `mutation { deleteVehicle(id: "${unknownVehicle}") { deletedId } }` }, asOwner()), 'NOT_FOUND'],
      ['duplicate plate', () => post({ query: `mutation { createVehicle(input: { plate: "${plate}", make: "A", model: "B", year: 2020 }) { vehicle { id } } }` }, asOwner()), 'CONFLICT'],
      ['invalid JSON', () => send(app.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"query": ' }), 'BAD_REQUEST'],
      ['CSRF', () => send(`${app.url}?query=${encodeURIComponent('{ __typename }')}`), 'BAD_REQUEST'],
    ];
    for (const [label, request, code] of requests) {
      const response = await request();
      expect({ label, codes: codesOf(response) }).toEqual({ label, codes: [code] });
      expectProblemShape(response);
    }
  });
});

describe('an unexpected failure', () => {
  it('is masked as INTERNAL_SERVER_ERROR without SQL, and the tenant recovers once the schema is repaired', async () => {
    // A realistic fault: the tenant's schema lost a table (a botched manual change or migration).
    const fixture = await app.createTenant(undefined, 'ENTERPRISE');
    const headers = { authorization: `Bearer ${fixture.ownerToken}` };
    const database = new pg.Client({ connectionString: app.databaseUrl });
    await database.connect();
    try {
      await database.query(`ALTER TABLE "${fixture.schemaName}"."Vehicle" RENAME TO "Vehicle_moved"`);
      const response = await post({ query: '{ vehicles { totalCount edges { node { id } } } }' }, headers);
      expect(codesOf(response)).toEqual(['INTERNAL_SERVER_ERROR']);
      expectProblemShape(response);
      const [error] = response.json!.errors!;
      expect(error!.message).toBe('Internal server error');
      expect(error!.path).toEqual(['vehicles']);
      expect(error!.extensions).toMatchObject({ status: 500, title: expect.any(String) });
      expect(response.text).not.toMatch(/Vehicle_moved|does not exist|42P01|schema/i);
      expect(response.text).not.toContain(fixture.schemaName);
    } finally {
      await database.query(`ALTER TABLE "${fixture.schemaName}"."Vehicle_moved" RENAME TO "Vehicle"`).catch(() => undefined);
      await database.end();
    }
    const repaired = await post({ query: '{ vehicles { totalCount } }' }, headers);
    expect(repaired.json).toEqual({ data: { vehicles: { totalCount: 0 } } });
  });
});

describe('Apollo Sandbox in development', () => {
  it('allows the Sandbox origin\'s preflight with authorization and content-type', async () => {
    const response = await send(app.url, {
      method: 'OPTIONS',
      headers: {
        origin: SANDBOX_ORIGIN,
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization,content-type',
      },
    });
    expect(response.status).toBeLessThan(300);
    expect(response.headers.get('access-control-allow-origin')).toBe(SANDBOX_ORIGIN);
    const allowedHeaders = (response.headers.get('access-control-allow-headers') ?? '').toLowerCase().split(/\s*,\s*/);
    expect(allowedHeaders).toEqual(expect.arrayContaining(['authorization', 'content-type']));
    expect(response.headers.get('access-control-allow-methods')).toContain('POST');
  });

  it('does not allow other origins', async () => {
    const response = await send(app.url, {
      method: 'OPTIONS',
      headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization' },
    });
    expect(response.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('lets the Sandbox origin sign in as admin and run an admin mutation with the bearer token', async () => {
    const origin = { origin: SANDBOX_ORIGIN };
    const login = await post({ query: `mutation { adminLogin(email: "${ADMIN_EMAIL}", password: "${ADMIN_PASSWORD}") { accessToken } }` }, origin);
    expect(login.status).toBe(200);
    expect(login.headers.get('access-control-allow-origin')).toBe(SANDBOX_ORIGIN);
    const token = (login.json?.data as { adminLogin: { accessToken: string } }).adminLogin.accessToken;

    const slug = uniqueSlug('sandbox');
    const created = await post(
      {
        query: `mutation Create($input: CreateTenantInput!) { createTenant(input: $input) { tenant { slug status } } }`,
        variables: { input: { slug, name: 'From Sandbox', plan: 'FREE', owner: { email: `owner@${slug}.test`, name: 'Owner', password: 'owner-password-1' } } },
      },
      { ...origin, authorization: `Bearer ${token}` },
    );
    expect(created.status).toBe(200);
    expect(created.headers.get('access-control-allow-origin')).toBe(SANDBOX_ORIGIN);
    expect(created.json).toEqual({ data: { createTenant: { tenant: { slug, status: 'ACTIVE' } } } });
  });

  it('serves the landing page HTML on GET / for a browser', async () => {
    const response = await send(`${base}/`, { headers: { accept: 'text/html' } });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/html/);
    expect(response.text).toMatch(/<!DOCTYPE html>/i);
    expect(response.text).toMatch(LANDING_PAGE_MARKER);
  });
});

describe('CSRF prevention', () => {
  const query = encodeURIComponent('{ __typename }');

  it('refuses a GET query without a preflight-forcing header', async () => {
    const response = await send(`${app.url}?query=${query}`);
    expect(response.status).toBe(400);
    expect(codesOf(response)).toEqual(['BAD_REQUEST']);
    expect(response.json!.errors![0]!.message).toMatch(/CSRF/);
    expect(response.json).not.toHaveProperty('data');
  });

  it('refuses a simple text/plain POST', async () => {
    const response = await send(app.url, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: JSON.stringify({ query: '{ __typename }' }) });
    expect(response.status).toBe(400);
    expect(response.json!.errors![0]!.message).toMatch(/CSRF/);
  });

  it('serves the same GET with apollo-require-preflight', async () => {
    const response = await send(`${app.url}?query=${query}`, { headers: { 'apollo-require-preflight': 'true' } });
    expect(response.status).toBe(200);
    expect(response.json).toEqual({ data: { __typename: 'Query' } });
  });
});

describe('production configuration', () => {
  let production: TestServer;
  let productionBase: string;

  beforeAll(async () => {
    // test-server supplies DATABASE_URL, JWT_SECRET, ADMIN_EMAIL and ADMIN_PASSWORD, which production requires.
    production = await startTestServer({ env: { NODE_ENV: 'production' } });
    productionBase = production.url.replace(/\/graphql$/, '');
  });

  afterAll(async () => {
    await production.close();
  });

  it('refuses introspection (development allows it)', async () => {
    const introspection = { query: '{ __schema { queryType { name } } }' };
    const refused = await post(introspection, {}, production.url);
    expect(refused.status).toBe(400);
    expect(codesOf(refused)).toEqual(['GRAPHQL_VALIDATION_FAILED']);
    expect(refused.json!.errors![0]!.message).toMatch(/introspection/i);
    expectProblemShape(refused);

    const allowed = await post(introspection, {}, app.url);
    expect(allowed.json).toEqual({ data: { __schema: { queryType: { name: 'Query' } } } });
  });

  it('does not serve the landing page on GET /', async () => {
    const response = await send(`${productionBase}/`, { headers: { accept: 'text/html' } });
    expect(response.text).not.toMatch(LANDING_PAGE_MARKER);
    expect(response.status === 200 && /^text\/html/.test(response.headers.get('content-type') ?? '')).toBe(false);
  });

  it('does not allow the Sandbox origin', async () => {
    const response = await send(production.url, {
      method: 'OPTIONS',
      headers: { origin: SANDBOX_ORIGIN, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type' },
    });
    expect(response.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('still serves ordinary operations', async () => {
    const response = await post({ query: `mutation { adminLogin(email: "${ADMIN_EMAIL}", password: "${ADMIN_PASSWORD}") { expiresAt } }` }, {}, production.url);
    expect(response.status).toBe(200);
    expect(response.json).toEqual({ data: { adminLogin: { expiresAt: expect.any(String) } } });
    expect((await send(`${productionBase}/healthz`)).status).toBe(200);
  });
});
