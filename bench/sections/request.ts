import { createHash } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import { mapWithConcurrency } from '../../src/concurrency/map-with-concurrency';
import { forgetAllClients, sessionsOpened, type BenchContext, type SectionReport } from '../lib/context';
import { assertFullPage, type BenchTenant } from '../lib/fleet';
import { graphql, VEHICLES_BODY, VEHICLES_QUERY, type VehiclesPage } from '../lib/graphql-http';
import { describeRounds, loadRounds, summarize, totalObserved, type Summary, type Target, type TargetRounds } from '../lib/load-rounds';
import { cpuSecondsOfThisProcess, startChildServer, type ChildServer, type LoadConfig } from '../lib/processes';
import { ratio, rps } from '../lib/stats';

/*
 * 1. Request path: the tenant server (auth, rate limits in Redis, hardening, tenancy) against a
 * bare Apollo + Prisma server on one schema (bench/bare-server.ts), and against the page and
 * drivers statements through pg with no GraphQL. Same query, same concurrency, load from another process.
 * The tenant server is also driven the way partners call it: a persistedOnly API key per
 * tenant sending only the hash of the registered query.
 */

type LoadRequest = LoadConfig['requests'][number];

/** A load target on the tenant server rotating over these requests (default: the tenants' access tokens). */
export function tenantTarget(
  ctx: BenchContext,
  tenants: BenchTenant[],
  name: string,
  requests: LoadRequest[] = tenants.map((tenant) => ({ headers: { authorization: `Bearer ${tenant.token as string}` }, body: VEHICLES_BODY })),
  expect = '"licenseNumber"',
): Target {
  return {
    name,
    config: { url: ctx.app.url, requests, expect },
    // The tenant server runs in this process, which meanwhile only waits for the load generator.
    cpuSeconds: cpuSecondsOfThisProcess,
    observe: async () => {
      const cold = ctx.app.leases.cold;
      const leases = ctx.app.leases.total;
      const sessions = await sessionsOpened(ctx);
      return async () => {
        const stats = ctx.app.server.services.tenantClients.stats();
        return {
          leases: ctx.app.leases.total - leases,
          'clients built': ctx.app.leases.cold - cold,
          'pg sessions opened': (await sessionsOpened(ctx)) - sessions,
          'cached clients': stats.cachedClients,
          'open tenant connections': stats.openConnections,
        };
      };
    },
  };
}

/** What the tenant server's rounds observed, for the detail column and the notes. */
export function churnNotes(target: TargetRounds, tenants: number): { detail: string; notes: string[] } {
  const totals = (key: string) => totalObserved(target, key);
  const leases = totals('leases');
  const built = totals('clients built');
  const sessions = totals('pg sessions opened');
  const last = target.observations.at(-1) ?? {};
  const detail = `clients built during rounds: ${built} of ${leases} requests; PostgreSQL sessions opened: ${sessions}; at end: ${last['cached clients'] ?? '?'} cached clients, ${last['open tenant connections'] ?? '?'} tenant connections`;
  const notes: string[] = [];
  if (leases > 0 && built / leases > 0.01) {
    notes.push(
      `${target.name}: ${((100 * built) / leases).toFixed(1)}% of requests had to build a new tenant client (${built} of ${leases}) with only ${tenants} tenants in rotation: the client cache is churning (see the connection budget: reclaiming a connection evicts the whole client).`,
    );
  }
  return { detail, notes };
}

/** Each tenant registers the request query and gets a persistedOnly VIEWER key: one partner request per tenant. */
async function partnerRequests(ctx: BenchContext, tenants: (BenchTenant & { token: string })[]): Promise<LoadRequest[]> {
  const sha256Hash = createHash('sha256').update(VEHICLES_QUERY).digest('hex');
  const body = JSON.stringify({ extensions: { persistedQuery: { version: 1, sha256Hash } } });
  return mapWithConcurrency(tenants, 4, async (tenant) => {
    await graphql(
      ctx.app.url,
      'mutation Register($operations: [PersistedOperationInput!]!) { registerPersistedOperations(operations: $operations) { operations { sha256 } } }',
      { operations: [{ name: 'Vehicles', body: VEHICLES_QUERY }] },
      tenant.token,
    );
    const created = await graphql<{ createApiKey: { secret: string } }>(
      ctx.app.url,
      'mutation Key($input: CreateApiKeyInput!) { createApiKey(input: $input) { secret } }',
      { input: { name: 'bench partner', role: 'VIEWER', persistedOnly: true } },
      tenant.token,
    );
    return { headers: { 'x-api-key': created.createApiKey.secret }, body };
  });
}

async function postRaw(url: string, request: LoadRequest): Promise<unknown> {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...request.headers }, body: request.body });
  return ((await response.json()) as { data?: unknown }).data;
}

export async function requestSection(ctx: BenchContext): Promise<SectionReport> {
  const { counts } = ctx;
  const tenants = await ctx.fleet.ensureHot(counts.requestTenants);
  const reference = tenants[0] as BenchTenant & { token: string };
  const notes: string[] = [];

  // Every token answers a full page, and all three servers answer the reference tenant alike.
  for (const tenant of tenants) assertFullPage(await graphql<VehiclesPage>(ctx.app.url, VEHICLES_QUERY, {}, tenant.token), counts.vehiclesPerTenant, tenant.slug);
  const expected = await graphql<VehiclesPage>(ctx.app.url, VEHICLES_QUERY, {}, reference.token);
  const partner = await partnerRequests(ctx, tenants);
  if (!isDeepStrictEqual(await postRaw(ctx.app.url, partner[0] as LoadRequest), expected)) {
    throw new Error(`the partner path answers differently from the access-token path for ${reference.slug}`);
  }
  const baseline = { databaseUrl: ctx.run.databaseUrl, schema: reference.schemaName, poolMax: 10 };
  const children: ChildServer[] = [];
  try {
    const bare = await startChildServer('bare-server.ts', baseline);
    children.push(bare);
    const raw = await startChildServer('raw-sql-server.ts', baseline);
    children.push(raw);
    for (const [name, url] of [['bare Apollo', bare.url], ['raw SQL', raw.url]] as const) {
      const answer = await graphql<VehiclesPage>(url, VEHICLES_QUERY);
      if (!isDeepStrictEqual(answer, expected)) throw new Error(`${name} answers differently from the tenant server for ${reference.slug}`);
    }
    await forgetAllClients(ctx); // start from no cached clients; the warm-up builds them
    const results = await loadRounds(ctx, [
      tenantTarget(ctx, tenants, 'tenant server'),
      tenantTarget(ctx, tenants, 'partner path', partner),
      { name: 'bare Apollo', config: { url: bare.url, requests: [{ headers: {}, body: VEHICLES_BODY }], expect: '"licenseNumber"' }, cpuSeconds: bare.cpuSeconds },
      { name: 'raw SQL', config: { url: raw.url, requests: [{ headers: {}, body: VEHICLES_BODY }], expect: '"licenseNumber"' }, cpuSeconds: raw.cpuSeconds },
    ]);
    const summaries = results.map(summarize);
    const [tenant, partnerResult, bareResult, rawResult] = summaries as [Summary, Summary, Summary, Summary];
    const churn = churnNotes(results[0] as TargetRounds, tenants.length);
    notes.push(...churn.notes);
    for (const [index, summary] of summaries.entries()) {
      if (summary.failures > 0) notes.push(`${(results[index] as TargetRounds).name}: ${summary.failures} responses failed or did not match (see progress output).`);
    }
    ctx.shared.requestTenantRps = { rps: tenant.rps, tenants: tenants.length, p50: tenant.p50, p99: tenant.p99 };
    const where = `${tenants.length} tenants × ${counts.vehiclesPerTenant} vehicles, ${counts.connections} connections, ${counts.rounds} × ${counts.durationSec} s`;
    return {
      title: `Request path — vehicles(first: 20) with drivers; ${where}`,
      rows: [
        { measurement: 'Tenant server (auth, Redis rate limits, hardening, tenant clients)', result: rps(tenant.rps), detail: `${describeRounds(results[0] as TargetRounds)}; ${churn.detail}` },
        {
          measurement: 'Partner path on the tenant server (persistedOnly API key, registered query sent by hash)',
          result: rps(partnerResult.rps),
          detail: `${describeRounds(results[1] as TargetRounds)}; ${ratio(partnerResult.rps / tenant.rps)} of the access-token path`,
        },
        { measurement: 'Bare Apollo + Prisma (same SDL, Prisma model API, one schema, no auth/limits/tenancy)', result: rps(bareResult.rps), detail: describeRounds(results[2] as TargetRounds) },
        { measurement: 'Raw SQL (same 2 queries through pg, node:http, no GraphQL)', result: rps(rawResult.rps), detail: describeRounds(results[3] as TargetRounds) },
        { measurement: 'Throughput tenant / bare', result: ratio(tenant.rps / bareResult.rps), detail: 'cost of auth + rate limiting + hardening + tenant routing' },
        { measurement: 'Throughput tenant / raw SQL', result: ratio(tenant.rps / rawResult.rps), detail: 'cost of the whole GraphQL stack over the SQL floor' },
        {
          measurement: 'Server CPU per request, tenant / bare',
          result: ratio(tenant.cpuMicrosPerRequest / bareResult.cpuMicrosPerRequest),
          detail: `${Math.round(tenant.cpuMicrosPerRequest)} µs vs ${Math.round(bareResult.cpuMicrosPerRequest)} µs (raw SQL ${Math.round(rawResult.cpuMicrosPerRequest)} µs): user + system time of the serving process per request, steadier than throughput where the load generator, PostgreSQL and Redis share the cores`,
        },
      ],
      notes,
    };
  } finally {
    for (const child of children) await child.stop();
  }
}
