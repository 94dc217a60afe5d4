import http from 'node:http';
import pg from 'pg';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy';
import { parseBody, send, type RawResponse } from '../support/raw-graphql';
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

function post(body: unknown, headers: Record<string, string> = {}, url = app.url): Promise<RawResponse> {
  return send(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
}

const asOwner = () => ({ authorization: `Bearer ${tenant.ownerToken}` });

/** A request exactly as written, over node:http: fetch would normalise a path such as `//`. */
function rawRequest(
  server: TestServer,
  request: { method: string; path: string; headers?: Record<string, string>; body?: string | Buffer },
): Promise<RawResponse> {
  const startedAt = performance.now();
  return new Promise((resolve, reject) => {
    const { hostname, port } = new URL(server.url);
    const headers = { ...request.headers, ...(request.body === undefined ? {} : { 'content-length': String(Buffer.byteLength(request.body)) }) };
    const outgoing = http.request({ host: hostname, port, method: request.method, path: request.path, headers }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('error', reject);
      response.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        const headers = new Headers();
        for (const [name, value] of Object.entries(response.headers)) {
          if (typeof value === 'string') headers.set(name, value);
        }
        resolve({ status: response.statusCode ?? 0, headers, text, body: parseBody(text), ms: performance.now() - startedAt });
      });
    });
    outgoing.on('error', reject);
    outgoing.end(request.body);
  });
}

/** Text that would reveal the database or the code behind an error. */
const LEAK = /\b(select|insert|update|delete)\b[^"]*\b(from|into|set|where)\b|relation "|violates|syntax error at or near|prisma|postgres|\bpg_|sqlstate|node_modules|\.ts:\d+|at [\w.]+ \(/i;

/** Every error carries the problem fields and nothing that leaks internals. */
function expectProblemShape(response: RawResponse): void {
  expect(response.body?.errors?.length).toBeGreaterThan(0);
  expect(response.text).not.toMatch(/stacktrace|exception/i);
  expect(response.text).not.toMatch(LEAK);
  for (const error of response.body!.errors!) {
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
  return (response.body?.errors ?? []).map((error) => error.extensions?.code);
}

describe('health, readiness and metrics', () => {
  it('GET /healthz answers 200', async () => {
    const response = await send(`${base}/healthz`);
    expect(response.status).toBe(200);
    expect(response.body).toEqual({ status: 'ok' });
  });

  it('GET /readyz answers 200 with postgres ok', async () => {
    const response = await send(`${base}/readyz`);
    expect(response.status).toBe(200);
    expect(response.body).toMatchObject({ status: 'ready', checks: { postgres: 'ok' } });
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
    const [error] = response.body!.errors!;
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
    expect(response.body!.errors![0]!.message).toContain('noSuchField');
    expectProblemShape(response);
  });

  it('an invalid bearer token is refused with HTTP 401 UNAUTHENTICATED', async () => {
    for (const authorization of ['Bearer not-a-jwt', 'Bearer eyJhbGciOiJIUzI1NiJ9.e30.c2lnbmF0dXJl', 'Basic dXNlcjpwYXNz', 'Bearer']) {
      const response = await post({ query: '{ __typename }' }, { authorization });
      expect(response.status).toBe(401);
      expect(codesOf(response)).toEqual(['UNAUTHENTICATED']);
      expect(response.body).not.toHaveProperty('data.__typename');
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
      // Served over WebSocket only (src/subscriptions).
      ['subscription', () => post({ query: 'subscription { tripsChanged { eventId } }' }, asOwner()), 'BAD_REQUEST'],
      ['subscription of an unknown field', () => post({ query: 'subscription { x }' }, asOwner()), 'GRAPHQL_VALIDATION_FAILED'],
      // A subscription may not select an introspection field at its root (graphql-js validation).
      ['subscription over __typename', () => post({ query: 'subscription { __typename }' }, asOwner()), 'GRAPHQL_VALIDATION_FAILED'],
    ];
    for (const [label, request, code] of requests) {
      const response = await request();
      expect({ label, codes: codesOf(response) }).toEqual({ label, codes: [code] });
      expectProblemShape(response);
    }
  });
});

describe('HTTP status codes: 200 once an operation ran, its code\'s status when refused before (both media types)', () => {
  const GRAPHQL_RESPONSE = 'application/graphql-response+json';
  const wrongPassword = () =>
    `mutation { login(input: { tenant: "${tenant.slug}", email: "${tenant.ownerEmail}", password: "wrong-password" }) { accessToken } }`;
  const cases: [label: string, request: (accept: string) => Promise<RawResponse>, status: number, code: string, ran: boolean][] = [
    ['tenant field without a token', (accept) => post({ query: '{ vehicles { totalCount } }' }, { accept }), 200, 'UNAUTHENTICATED', true],
    ['wrong password', (accept) => post({ query: wrongPassword() }, { accept }), 200, 'UNAUTHENTICATED', true],
    ['spent refresh token', (accept) => post({ query: 'mutation { refreshToken(token: "spent-or-never-issued") { accessToken } }' }, { accept }), 200, 'UNAUTHENTICATED', true],
    ['member asks for platform data', (accept) => post({ query: '{ tenants { totalCount } }' }, { ...asOwner(), accept }), 200, 'FORBIDDEN', true],
    ['invalid bearer token', (accept) => post({ query: '{ __typename }' }, { authorization: 'Bearer not-a-jwt', accept }), 401, 'UNAUTHENTICATED', false],
    ['syntax error', (accept) => post({ query: '{ vehicles {' }, { ...asOwner(), accept }), 400, 'GRAPHQL_PARSE_FAILED', false],
    ['validation failure', (accept) => post({ query: '{ nope }' }, { ...asOwner(), accept }), 400, 'GRAPHQL_VALIDATION_FAILED', false],
    ['malformed JSON body', (accept) => send(app.url, { method: 'POST', headers: { 'content-type': 'application/json', accept }, body: '{"query": ' }), 400, 'BAD_REQUEST', false],
  ];

  it.each([['application/json'], [GRAPHQL_RESPONSE]])('Accept: %s', async (accept) => {
    for (const [label, request, status, code, ran] of cases) {
      const response = await request(accept);
      expect({ label, status: response.status, codes: codesOf(response), ran: response.body !== undefined && 'data' in response.body }).toEqual({
        label,
        status,
        codes: [code],
        ran,
      });
      // The answer comes in the media type asked for, whoever answered (Apollo or the guard).
      expect({ label, type: response.headers.get('content-type') }).toEqual({ label, type: expect.stringMatching(new RegExp(`^${accept.replace('+', '\\+')}`)) });
    }
  });
});

/** Answered in JSON with one error code: never Express's HTML error page, never a stack line. */
function expectJsonRefusal(response: RawResponse, status: number, code: string): void {
  expect(response.headers.get('content-type')).toMatch(/^application\/json/);
  expect(response.text).not.toMatch(/<html|<pre>|<!DOCTYPE/i);
  expect(response.text).not.toMatch(/\bat \S+ \(|\bat (async )?\S+:\d+/);
  expect({ status: response.status, codes: codesOf(response) }).toEqual({ status, codes: [code] });
  expectProblemShape(response);
}

describe('requests that reach no GraphQL handling', () => {
  it('a batch with an entry that is not an object is BAD_REQUEST (400)', async () => {
    for (const body of ['[null]', '[42]', '["{ __typename }"]', '[[]]', '[true]']) {
      for (const headers of [{}, asOwner()]) {
        const response = await send(app.url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
        expectJsonRefusal(response, 400, 'BAD_REQUEST');
        expect(response.body!.errors![0]!.message).toMatch(/batch/i);
      }
    }
  });

  it('a path that is no URL on its own (GET //) is answered as GraphQL over GET', async () => {
    const preflight = { 'apollo-require-preflight': 'true' };
    expectJsonRefusal(await rawRequest(app, { method: 'GET', path: '//', headers: preflight }), 400, 'BAD_REQUEST');
    const withQuery = await rawRequest(app, { method: 'GET', path: `//?query=${encodeURIComponent('{ __typename }')}`, headers: preflight });
    expect(withQuery.status).toBe(200);
    expect(withQuery.body).toEqual({ data: { __typename: 'Query' } });
    const asTenant = await rawRequest(app, { method: 'GET', path: `//x?query=${encodeURIComponent('{ vehicles { totalCount } }')}`, headers: { ...preflight, ...asOwner() } });
    expect(asTenant.body).toEqual({ data: { vehicles: { totalCount: expect.any(Number) } } });
  });

  it('a body in an unsupported charset or Content-Encoding is UNSUPPORTED_MEDIA_TYPE (415); a corrupt gzip body is BAD_REQUEST', async () => {
    const body = JSON.stringify({ query: '{ __typename }' });
    const unsupported: Record<string, string>[] = [
      { 'content-type': 'application/json; charset=iso-8859-1' },
      { 'content-type': 'application/json; charset=utf-99' },
      { 'content-type': 'application/json', 'content-encoding': 'snappy' },
    ];
    for (const headers of unsupported) {
      const response = await rawRequest(app, { method: 'POST', path: '/graphql', headers, body });
      expectJsonRefusal(response, 415, 'UNSUPPORTED_MEDIA_TYPE');
      expect(response.body!.errors![0]!.extensions!.status).toBe(415);
    }
    const corrupt = await rawRequest(app, { method: 'POST', path: '/graphql', headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' }, body });
    expectJsonRefusal(corrupt, 400, 'BAD_REQUEST');
  });

  it('a path no handler serves is NOT_FOUND (404) in JSON; a method Apollo does not serve stays its 405', async () => {
    const cases = [
      ['POST', '/nope', 404, 'NOT_FOUND'],
      ['GET', '/nope/deeper?query=%7B__typename%7D', 404, 'NOT_FOUND'],
      ['PATCH', '/healthz', 404, 'NOT_FOUND'],
      ['PUT', '/graphql', 405, 'BAD_REQUEST'],
    ] as const;
    for (const [method, path, status, code] of cases) {
      const response = await rawRequest(app, { method, path, headers: { 'content-type': 'application/json', 'apollo-require-preflight': 'true' }, body: '{}' });
      expectJsonRefusal(response, status, code);
    }
  });
});

describe('the platform database failing during authentication', () => {
  let proxy: TcpProxy;
  let proxied: TestServer;

  beforeAll(async () => {
    // A second instance on the same database, reaching PostgreSQL through a proxy the test can stop.
    const direct = new URL(app.databaseUrl);
    proxy = await startTcpProxy({ host: direct.hostname, port: Number(direct.port || 5432) });
    const throughProxy = new URL(app.databaseUrl);
    throughProxy.host = `127.0.0.1:${proxy.port}`;
    proxied = await startTestServer({ databaseUrl: throughProxy.toString() });
  });

  afterAll(async () => {
    await proxy?.start();
    await proxied?.close();
    await proxy?.close();
  });

  it('is SERVICE_UNAVAILABLE (503, Retry-After) in JSON, without the driver\'s message, and the instance recovers', async () => {
    const created = await post(
      { query: 'mutation($input: CreateApiKeyInput!) { createApiKey(input: $input) { secret } }', variables: { input: { name: 'db-down', role: 'VIEWER' } } },
      asOwner(),
    );
    const secret = (created.body?.data as { createApiKey: { secret: string } }).createApiKey.secret;
    await proxy.stop();
    // Not cached on this instance yet: authenticating the key needs the platform database.
    const response = await post({ query: '{ vehicles { totalCount } }' }, { 'x-api-key': secret }, proxied.url);
    expectJsonRefusal(response, 503, 'SERVICE_UNAVAILABLE');
    expect(response.headers.get('retry-after')).toBe('1');
    expect(response.body!.errors![0]!.extensions!.retryAfter).toBe(1);
    expect(response.text).not.toMatch(/ECONNREFUSED|127\.0\.0\.1|P1001/i);

    await proxy.start();
    const recovered = await post({ query: '{ vehicles { totalCount } }' }, { 'x-api-key': secret }, proxied.url);
    expect(recovered.body).toEqual({ data: { vehicles: { totalCount: expect.any(Number) } } });
  });
});

describe('text with a NUL character, which PostgreSQL cannot store', () => {
  const fieldOf = (response: RawResponse) => response.body?.errors?.[0]?.extensions?.field;

  it('is BAD_USER_INPUT naming the field in createApiKey', async () => {
    const response = await post(
      { query: 'mutation($input: CreateApiKeyInput!) { createApiKey(input: $input) { secret } }', variables: { input: { name: 'partner\u0000key', role: 'VIEWER' } } },
      asOwner(),
    );
    expect(codesOf(response)).toEqual(['BAD_USER_INPUT']);
    expect(fieldOf(response)).toBe('name');
    expectProblemShape(response);
  });

  it('is BAD_USER_INPUT naming the field in createTenant (name, owner.name), and creates nothing', async () => {
    const admin = { authorization: `Bearer ${await app.adminToken()}` };
    const query = 'mutation($input: CreateTenantInput!) { createTenant(input: $input) { tenant { id } } }';
    for (const [field, name, ownerName] of [['name', 'Acme\u0000Fleet', 'Owner'], ['owner.name', 'Acme Fleet', 'Own\u0000er']] as const) {
      const slug = uniqueSlug('nul');
      const input = { slug, name, plan: 'FREE', owner: { email: `owner@${slug}.test`, name: ownerName, password: 'owner-password-1' } };
      const response = await post({ query, variables: { input } }, admin);
      expect({ field, codes: codesOf(response) }).toEqual({ field, codes: ['BAD_USER_INPUT'] });
      expect(fieldOf(response)).toBe(field);
      expectProblemShape(response);
      const found = await post({ query: 'query($slug: String!) { tenant(slug: $slug) { id } }', variables: { slug } }, admin);
      expect(found.body).toEqual({ data: { tenant: null } });
    }
  });
});

describe('TRUST_PROXY=1 (one proxy hop)', () => {
  let behindProxy: TestServer;

  beforeAll(async () => {
    behindProxy = await startTestServer({ env: { RATE_LIMIT_ENABLED: 'true', TRUST_PROXY: '1' } });
  });

  afterAll(async () => {
    await behindProxy?.close();
  });

  const login = (forwardedFor: string, i: number) =>
    post(
      { query: `mutation { login(input: { tenant: "no-such-tenant", email: "stranger-${i}@nowhere.test", password: "wrong-password" }) { accessToken } }` },
      { 'x-forwarded-for': forwardedFor },
      behindProxy.url,
    );

  it('takes the client address for per-IP login limits from the last X-Forwarded-For entry', async () => {
    for (let i = 1; i <= 20; i += 1) expect(codesOf(await login('203.0.113.9', i))).toEqual(['UNAUTHENTICATED']);
    expect(codesOf(await login('203.0.113.9', 21))).toEqual(['RATE_LIMITED']);
    // What the client writes before the address the proxy appended does not change who it is.
    expect(codesOf(await login('198.51.100.1, 203.0.113.9', 22))).toEqual(['RATE_LIMITED']);
    // Another client behind the same proxy is not limited.
    expect(codesOf(await login('203.0.113.10', 23))).toEqual(['UNAUTHENTICATED']);
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
      const [error] = response.body!.errors!;
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
    expect(repaired.body).toEqual({ data: { vehicles: { totalCount: 0 } } });
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
    const token = (login.body?.data as { adminLogin: { accessToken: string } }).adminLogin.accessToken;

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
    expect(created.body).toEqual({ data: { createTenant: { tenant: { slug, status: 'ACTIVE' } } } });
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
    expect(response.body!.errors![0]!.message).toMatch(/CSRF/);
    expect(response.body).not.toHaveProperty('data');
  });

  it('refuses a simple text/plain POST', async () => {
    const response = await send(app.url, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: JSON.stringify({ query: '{ __typename }' }) });
    expect(response.status).toBe(400);
    expect(response.body!.errors![0]!.message).toMatch(/CSRF/);
  });

  it('serves the same GET with apollo-require-preflight', async () => {
    const response = await send(`${app.url}?query=${query}`, { headers: { 'apollo-require-preflight': 'true' } });
    expect(response.status).toBe(200);
    expect(response.body).toEqual({ data: { __typename: 'Query' } });
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
    expect(refused.body!.errors![0]!.message).toMatch(/introspection/i);
    expectProblemShape(refused);

    const allowed = await post(introspection, {}, app.url);
    expect(allowed.body).toEqual({ data: { __schema: { queryType: { name: 'Query' } } } });
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
    expect(response.body).toEqual({ data: { adminLogin: { expiresAt: expect.any(String) } } });
    expect((await send(`${productionBase}/healthz`)).status).toBe(200);
  });
});
