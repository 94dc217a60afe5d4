import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { tracingEnabled } from '../../src/observability/tracing';
import { freePort } from '../support/local-resources';
import { bearer, eventually, postJson, type RawResponse } from '../support/raw-graphql';
import { readTestServices } from '../support/services';
import { createTestDatabase, dropTestDatabase } from '../support/test-database';

/*
 * OpenTelemetry tracing end to end: the real src/main.ts in a child process (instrumentations
 * patch modules as Node loads them, which jest's own module loader would bypass), exporting OTLP
 * over HTTP as JSON to a receiver this test runs. A request's trace carries its request id and
 * its operation name, has the http, express, graphql and pg instrumentations' spans, and names
 * the tenant nowhere unless OTEL_TENANT_ATTRIBUTE=true.
 */

const ROOT = path.resolve(__dirname, '../..');
const ADMIN = { email: 'admin@tracing.test', password: 'tracing-admin-password' };
const OWNER = { email: 'owner@tracing.test', name: 'Owner', password: 'tracing-owner-password' };

interface OtlpValue {
  stringValue?: string;
  intValue?: string | number;
  boolValue?: boolean;
  doubleValue?: number;
}
interface ReceivedSpan {
  traceId: string;
  name: string;
  scope: string;
  attributes: Record<string, string | number | boolean | undefined>;
}
interface OtlpTraces {
  resourceSpans?: {
    scopeSpans?: { scope?: { name?: string }; spans?: { traceId: string; name: string; attributes?: { key: string; value: OtlpValue }[] }[] }[];
  }[];
}

const valueOf = (value: OtlpValue) => value.stringValue ?? (value.intValue !== undefined ? Number(value.intValue) : undefined) ?? value.boolValue ?? value.doubleValue;

let databaseUrl: string;
let serverUrl: string;
let receiver: http.Server;
let receiverUrl: string;
const spans: ReceivedSpan[] = [];
const receivedPaths = new Set<string>();
const children: ChildProcess[] = [];

/** A tiny OTLP/HTTP receiver: keeps every span of every JSON export. */
function startReceiver(): Promise<void> {
  receiver = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (body += chunk));
    req.on('end', () => {
      receivedPaths.add(req.url ?? '');
      if (req.url === '/v1/traces') {
        const traces = JSON.parse(body) as OtlpTraces;
        for (const resource of traces.resourceSpans ?? []) {
          for (const scoped of resource.scopeSpans ?? []) {
            for (const span of scoped.spans ?? []) {
              spans.push({
                traceId: span.traceId,
                name: span.name,
                scope: scoped.scope?.name ?? '',
                attributes: Object.fromEntries((span.attributes ?? []).map(({ key, value }) => [key, valueOf(value)])),
              });
            }
          }
        }
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  return new Promise((resolve) => receiver.listen(0, '127.0.0.1', () => {
    receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
    resolve();
  }));
}

/** Starts main.ts as `npm start` would, tracing to the receiver; resolves once it serves. */
async function startMain(env: Record<string, string> = {}): Promise<{ url: string; child: ChildProcess }> {
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      NODE_ENV: 'production',
      PORT: String(port),
      HOST: '127.0.0.1',
      DATABASE_URL: databaseUrl,
      JWT_SECRET: 'tracing-test-jwt-secret-0123456789abcdef',
      TENANT_DB_SECRET: 'tracing-test-tenant-secret-0123456789abcdef',
      ADMIN_EMAIL: ADMIN.email,
      ADMIN_PASSWORD: ADMIN.password,
      BCRYPT_ROUNDS: '4',
      LOG_LEVEL: 'warn',
      OVERLOAD_SHEDDING: 'false',
      RATE_LIMIT_ENABLED: 'false',
      OTEL_EXPORTER_OTLP_ENDPOINT: receiverUrl,
      // Export within a fraction of a second, not the default five.
      OTEL_BSP_SCHEDULE_DELAY: '100',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<never>((_, reject) => child.once('exit', () => reject(new Error(`main.ts exited while starting:\n${output}`))));
  exited.catch(() => undefined);
  await Promise.race([eventually(async () => (output.includes('fleet-graphql is running') ? true : undefined), 60_000, 50), exited]);
  return { url: `http://127.0.0.1:${port}/graphql`, child };
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

function data<T>(response: RawResponse): T {
  if (!response.body?.data || response.body.errors) throw new Error(`GraphQL request failed: ${response.text}`);
  return response.body.data as T;
}

/** Every span of the trace whose request carried `requestId` (once exported). */
async function traceOf(requestId: string, operationName: string): Promise<ReceivedSpan[]> {
  return eventually(async () => {
    const tagged = spans.find((span) => span.attributes['fleet.request_id'] === requestId);
    if (!tagged) return undefined;
    const trace = spans.filter((span) => span.traceId === tagged.traceId);
    // Exported in batches: wait for the graphql and pg spans too.
    const complete = trace.some((span) => span.scope.includes('graphql') && span.attributes['graphql.operation.name'] === operationName) && trace.some((span) => span.scope.includes('pg'));
    return complete ? trace : undefined;
  }, 20_000, 100);
}

let tenantId: string;
let ownerToken: string;

beforeAll(async () => {
  const services = readTestServices();
  serverUrl = services.postgresUrl;
  databaseUrl = await createTestDatabase(serverUrl, services.runId);
  await startReceiver();
}, 60_000);

afterAll(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await new Promise((resolve) => receiver?.close(resolve));
  if (databaseUrl) await dropTestDatabase(databaseUrl, serverUrl);
});

it('is off by default: on with OTEL_ENABLED=true, or an OTLP endpoint unless OTEL_ENABLED=false', () => {
  expect(tracingEnabled({})).toBe(false);
  expect(tracingEnabled({ OTEL_ENABLED: 'true' })).toBe(true);
  expect(tracingEnabled({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' })).toBe(true);
  expect(tracingEnabled({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', OTEL_ENABLED: 'false' })).toBe(false);
});

it('a request\'s trace carries its request id and operation name, spans http, express, graphql and pg, and names no tenant', async () => {
  const main = await startMain();
  try {
    const { adminLogin } = data<{ adminLogin: { accessToken: string } }>(
      await postJson(main.url, { query: 'mutation TracingAdminLogin($email: String!, $password: String!) { adminLogin(email: $email, password: $password) { accessToken } }', variables: ADMIN }),
    );
    const { createTenant } = data<{ createTenant: { tenant: { id: string } } }>(
      await postJson(
        main.url,
        {
          query: 'mutation TracingCreateTenant($input: CreateTenantInput!) { createTenant(input: $input) { tenant { id } } }',
          variables: { input: { slug: 'traced', name: 'Traced', plan: 'STANDARD', owner: OWNER } },
        },
        bearer(adminLogin.accessToken),
      ),
    );
    tenantId = createTenant.tenant.id;
    ownerToken = data<{ login: { accessToken: string } }>(
      await postJson(main.url, {
        query: 'mutation TracingLogin($input: LoginInput!) { login(input: $input) { accessToken } }',
        variables: { input: { tenant: 'traced', email: OWNER.email, password: OWNER.password } },
      }),
    ).login.accessToken;
    const requestId = `trace-${randomUUID()}`;
    data(await postJson(main.url, { query: 'query TracedVehicles { vehicles { totalCount } }' }, { ...bearer(ownerToken), 'x-request-id': requestId }));

    const trace = await traceOf(requestId, 'TracedVehicles');
    const root = trace.find((span) => span.scope.includes('instrumentation-http') && span.attributes['fleet.request_id'] === requestId);
    expect(root).toBeDefined();
    expect(root?.attributes['graphql.operation.name']).toBe('TracedVehicles');
    expect(root?.attributes['graphql.operation.type']).toBe('query');
    const scopes = new Set(trace.map((span) => span.scope));
    for (const instrumentation of ['http', 'express', 'graphql', 'pg']) {
      expect([...scopes].some((scope) => scope === `@opentelemetry/instrumentation-${instrumentation}`)).toBe(true);
    }
    // Not as an attribute, nor inside one (a statement, a URL), anywhere in what was exported.
    expect(spans.some((span) => 'fleet.tenant_id' in span.attributes)).toBe(false);
    expect(spans.filter((span) => Object.values(span.attributes).some((value) => String(value).includes(tenantId)))).toEqual([]);
    // Probes are not traced.
    expect(spans.some((span) => String(span.attributes['url.path'] ?? span.attributes['http.target'] ?? '').startsWith('/metrics'))).toBe(false);
  } finally {
    await stop(main.child);
  }
}, 120_000);

it('with OTEL_TENANT_ATTRIBUTE=true, the request\'s spans carry the tenant id', async () => {
  const main = await startMain({ OTEL_TENANT_ATTRIBUTE: 'true' });
  try {
    const requestId = `trace-${randomUUID()}`;
    data(await postJson(main.url, { query: 'query TracedWithTenant { vehicles { totalCount } }' }, { ...bearer(ownerToken), 'x-request-id': requestId }));
    const trace = await traceOf(requestId, 'TracedWithTenant');
    const root = trace.find((span) => span.attributes['fleet.request_id'] === requestId && span.scope.includes('instrumentation-http'));
    expect(root?.attributes['fleet.tenant_id']).toBe(tenantId);
  } finally {
    await stop(main.child);
  }
  // What the SDK sent besides traces (metrics and logs exporters stay off unless configured).
  expect([...receivedPaths]).toEqual(['/v1/traces']);
}, 120_000);
