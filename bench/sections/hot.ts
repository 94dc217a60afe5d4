import { PROJECT_ROOT } from '../../src/config/paths';
import type { BenchContext, Row, SectionReport } from '../lib/context';
import { CpuProfiler, describeBreakdown, type SelfTime } from '../lib/cpu-profile';
import { describeRounds, loadRounds, observedBy, summarize, totalObserved, type Observer, type Summary, type Target, type TargetRounds } from '../lib/load-rounds';
import { startChildServer, type ChildServer } from '../lib/processes';
import type { ServedCounts } from '../lib/statement-counts';
import { ms, ratio, rps, sleep } from '../lib/stats';
import { tenantTarget } from './request';

/*
 * 2. Hot tenant: ONE tenant holding 1,000 vehicles, each with its own driver, loaded by all the
 * load generator's connections at once (32 by default), so the per-tenant machinery (one
 * tenant client, its pool, the per-tenant in-flight limit) is what is measured. Two queries, a
 * first page with drivers and the same with totalCount, each against four servers in the same
 * interleaved rounds:
 *   - the tenant server, with the owner's token (the tenant's rate limits overridden, as for
 *     every hot tenant of the bench);
 *   - bench/bare-server.ts: bare Apollo + Prisma, resolvers on Prisma's model API, one schema;
 *   - bench/bare-pg-server.ts: bare Apollo on pg, hand-written resolvers, same SDL and ids;
 *   - bench/raw-sql-server.ts (shape "hot"): the same statements through pg, no GraphQL.
 * Every server must answer the tenant server's exact bytes (of `data`) before anything is
 * measured. Besides throughput, latency and CPU per request, each server's SQL statements per
 * request are counted on its pg clients, and the ratios are held against the team's targets.
 */

const PAGE_QUERY = '{ vehicles(first: 20) { edges { node { id plate driver { name } } } } }';
const COUNT_QUERY = '{ vehicles(first: 20) { totalCount edges { node { id plate driver { name } } } } }';

interface HotQuery {
  label: string;
  query: string;
  /** A substring every good answer contains (the load generator counts others as failed). */
  expect: string;
}

interface Baselines {
  prisma: ChildServer;
  pg: ChildServer;
  raw: ChildServer;
}

/** The team's targets for this section (issue 13); figures are printed against them, never enforced. */
const TARGETS = {
  rpsOverBarePg: 0.8,
  rpsOverRaw: 0.3,
  p99Ms: 60,
  cpuOverBarePg: 1.3,
  /** Hot tenant against the request section's many tenants: within 10 % either way. */
  hotOverMany: 0.1,
};

function verdict(met: boolean): string {
  return met ? 'met' : '**NOT met**';
}

async function answerData(url: string, query: string, token?: string): Promise<string> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ query }),
  });
  const body = (await response.json()) as { data?: unknown; errors?: unknown[] };
  if (!response.ok || body.errors || !body.data) throw new Error(`${url} answered HTTP ${response.status}: ${JSON.stringify(body).slice(0, 300)}`);
  // Serialised again in the order received: byte-for-byte, field order included.
  return JSON.stringify(body.data);
}

/** The tenant server's answer is a full page with every driver, and every baseline answers the same bytes. */
async function compareAnswers(ctx: BenchContext, token: string, baselines: Baselines, hot: HotQuery, vehicles: number): Promise<void> {
  const expected = await answerData(ctx.app.url, hot.query, token);
  const page = JSON.parse(expected) as { vehicles: { totalCount?: number; edges: { node: { driver: unknown } }[] } };
  const edges = page.vehicles.edges;
  if (edges.length !== Math.min(20, vehicles) || edges.some((edge) => !edge.node.driver)) throw new Error(`hot tenant: not a full page with drivers: ${expected.slice(0, 300)}`);
  if (page.vehicles.totalCount !== undefined && page.vehicles.totalCount !== vehicles) throw new Error(`hot tenant: totalCount ${page.vehicles.totalCount}, expected ${vehicles}`);
  for (const [name, server] of Object.entries(baselines)) {
    const answer = await answerData(server.url, hot.query);
    if (answer !== expected) throw new Error(`${name} baseline answers ${hot.label} differently from the tenant server:\n  ${answer.slice(0, 300)}\n  ${expected.slice(0, 300)}`);
  }
}

/**
 * The in-process tenant server's counts: statements from fleet_tenant_sql_statements_total
 * (every statement of every tenant connection; only the hot tenant is loaded meanwhile), and
 * requests as the GraphQL operations its lifecycle plugin observed (the histogram's counts).
 * Statements on the platform's connections (directory, sessions) are not in that counter.
 */
async function tenantServerCounts(ctx: BenchContext): Promise<ServedCounts> {
  const { metrics } = ctx.app.server;
  const [statements, operations] = await Promise.all([metrics.tenantSqlStatements.get(), metrics.graphqlOperations.get()]);
  return {
    requests: operations.values.filter((value) => value.metricName?.endsWith('_count')).reduce((sum, value) => sum + value.value, 0),
    statements: statements.values.reduce((sum, value) => sum + value.value, 0),
  };
}

const SERVED = 'requests served';
const STATEMENTS = 'SQL statements';

const SETTLE_STEP_MS = 100;
const SETTLE_LIMIT_MS = 5_000;

/**
 * The counts once they stop moving: when a round ends, the requests the load generator
 * abandoned are still being answered, and a request counts its statements before it counts
 * itself as served. Read on an idle server, statements / requests is exact.
 */
async function settledCounts(read: () => Promise<ServedCounts>): Promise<ServedCounts> {
  let last = await read();
  for (let waited = 0; waited < SETTLE_LIMIT_MS; waited += SETTLE_STEP_MS) {
    await sleep(SETTLE_STEP_MS);
    const now = await read();
    if (now.requests === last.requests && now.statements === last.statements) return now;
    last = now;
  }
  return last;
}

/** What a server's counts moved during each round (read on an idle server, see settledCounts). */
function countsObserver(read: () => Promise<ServedCounts>): Observer {
  return async () => {
    const before = await settledCounts(read);
    return async () => {
      const after = await settledCounts(read);
      return { [SERVED]: after.requests - before.requests, [STATEMENTS]: after.statements - before.statements };
    };
  };
}

/** Statements over requests the server itself answered, all rounds together. */
function statementsPerRequest(target: TargetRounds): number {
  return totalObserved(target, STATEMENTS) / totalObserved(target, SERVED);
}

/**
 * Waits until the tenant server's overload monitor has checked the event loop since now and
 * does not shed: a profiler's start stalls the loop for a few hundred milliseconds, which the
 * monitor answers with OVERLOAD_HOLD_MS of shedding; the round must not start in that state.
 */
async function untilNotOverloaded(ctx: BenchContext): Promise<void> {
  const { checkIntervalMs, holdMs } = ctx.app.config.overload;
  const gauge = ctx.app.server.metrics.registry.getSingleMetric('fleet_overloaded');
  await sleep(checkIntervalMs + 100);
  for (let waited = 0; waited < holdMs + 2 * checkIntervalMs; waited += 100) {
    if (!gauge || (await gauge.get()).values[0]?.value === 0) return;
    await sleep(100);
  }
  ctx.progress('hot: the tenant server still sheds (overloaded) after the profiler started; the round starts anyway');
}

const MANY_TENANTS = 'tenant server, many tenants';

/**
 * The four servers on the hot tenant and, for the page query, the tenant server once more with
 * the same query rotated over the request section's many small tenants (`manyTokens`): the
 * like-for-like comparison of one hot tenant with many.
 */
function targets(ctx: BenchContext, token: string, baselines: Baselines, hot: HotQuery, profiler: CpuProfiler | null, manyTokens: string[]): Target[] {
  const body = JSON.stringify({ query: hot.query });
  const tenant = observedBy(
    tenantTarget(ctx, [], 'tenant server', [{ headers: { authorization: `Bearer ${token}` }, body }], hot.expect),
    countsObserver(() => tenantServerCounts(ctx)),
  );
  const baseline = (name: string, server: ChildServer): Target => ({
    name,
    config: { url: server.url, requests: [{ headers: {}, body }], expect: hot.expect },
    cpuSeconds: server.cpuSeconds,
    observe: countsObserver(server.counts),
  });
  return [
    // Innermost, so the profile brackets the round and not the other observers' reads.
    profiler ? observedBy(tenant, profiler.observer(hot.label, () => untilNotOverloaded(ctx))) : tenant,
    // Right after the hot tenant's round: the baselines' rounds follow, so the many tenants have
    // been quiet for far longer than TENANT_IN_FLIGHT_QUIET_MS when the hot tenant's next round starts.
    ...(manyTokens.length > 0
      ? [tenantTarget(ctx, [], MANY_TENANTS, manyTokens.map((each) => ({ headers: { authorization: `Bearer ${each}` }, body })), hot.expect)]
      : []),
    baseline('bare Apollo + Prisma', baselines.prisma),
    baseline('bare Apollo + pg', baselines.pg),
    baseline('raw SQL', baselines.raw),
  ];
}

function describeTarget(target: TargetRounds): string {
  return `${describeRounds(target)} · ${statementsPerRequest(target).toFixed(2)} SQL statements/request`;
}

function queryRows(hot: HotQuery, results: TargetRounds[]): Row[] {
  const [tenant, prisma, pg, raw] = results.map(summarize) as [Summary, Summary, Summary, Summary];
  const [tenantRounds, prismaRounds, pgRounds, rawRounds] = results as [TargetRounds, TargetRounds, TargetRounds, TargetRounds];
  const cpu = (summary: Summary) => `${Math.round(summary.cpuMicrosPerRequest)} µs`;
  const overPg = tenant.rps / pg.rps;
  const overRaw = tenant.rps / raw.rps;
  const cpuOverPg = tenant.cpuMicrosPerRequest / pg.cpuMicrosPerRequest;
  return [
    { measurement: `*${hot.label}:* \`${hot.query}\``, result: '', detail: '' },
    {
      measurement: 'Tenant server (owner token: auth, Redis rate limits, hardening, tenant client)',
      result: rps(tenant.rps),
      detail: `${describeTarget(tenantRounds)} (tenant connections; platform statements not counted)`,
    },
    { measurement: 'Bare Apollo + Prisma (same SDL and ids, Prisma model API, a DataLoader)', result: rps(prisma.rps), detail: describeTarget(prismaRounds) },
    { measurement: 'Bare Apollo + pg (same SDL and ids, pg resolvers, a DataLoader)', result: rps(pg.rps), detail: describeTarget(pgRounds) },
    { measurement: 'Raw SQL (same statements through pg, node:http, no GraphQL)', result: rps(raw.rps), detail: describeTarget(rawRounds) },
    { measurement: 'Throughput tenant / bare Apollo + pg', result: ratio(overPg), detail: `target ≥ ${TARGETS.rpsOverBarePg}: ${verdict(overPg >= TARGETS.rpsOverBarePg)}` },
    { measurement: 'Throughput tenant / raw SQL', result: ratio(overRaw), detail: `target ≥ ${TARGETS.rpsOverRaw}: ${verdict(overRaw >= TARGETS.rpsOverRaw)}` },
    { measurement: 'Tenant server p99', result: ms(tenant.p99), detail: `target ≤ ${TARGETS.p99Ms} ms: ${verdict(tenant.p99 <= TARGETS.p99Ms)}` },
    {
      measurement: 'Server CPU per request, tenant / bare Apollo + pg',
      result: ratio(cpuOverPg),
      detail: `target ≤ ${TARGETS.cpuOverBarePg}: ${verdict(cpuOverPg <= TARGETS.cpuOverBarePg)}; ${cpu(tenant)} vs ${cpu(pg)} (raw SQL ${cpu(raw)})`,
    },
    {
      measurement: 'Server CPU per request, tenant / bare Apollo + Prisma',
      result: ratio(tenant.cpuMicrosPerRequest / prisma.cpuMicrosPerRequest),
      detail: `${cpu(tenant)} vs ${cpu(prisma)}; throughput tenant / bare Apollo + Prisma ${ratio(tenant.rps / prisma.rps)}`,
    },
  ];
}

/** The hot tenant's page figure against the same query over many tenants, measured in the same rounds. */
function manyTenantsRows(hotPage: Summary, many: TargetRounds, tenants: number, vehiclesEach: number): Row[] {
  const manySummary = summarize(many);
  const value = hotPage.rps / manySummary.rps;
  return [
    { measurement: `Tenant server, the same page query over ${tenants} tenants of ${vehiclesEach} vehicles (their owners' tokens in rotation)`, result: rps(manySummary.rps), detail: describeRounds(many) },
    {
      measurement: 'Throughput hot tenant / many tenants (same query, same rounds)',
      result: ratio(value),
      detail:
        `target within ${100 * TARGETS.hotOverMany}%: ${verdict(Math.abs(value - 1) <= TARGETS.hotOverMany)}; ` +
        `p99 ${ms(hotPage.p99)} on 1 tenant vs ${ms(manySummary.p99)} over ${tenants} tenants`,
    },
  ];
}

function progressTable(ctx: BenchContext, heading: string, entries: SelfTime[], count: number): void {
  ctx.progress(heading);
  for (const entry of entries.slice(0, count)) {
    ctx.progress(`  ${entry.name.padEnd(48)} ${ms(entry.ms, 0).padStart(8)} ${(100 * entry.share).toFixed(1).padStart(5)}%`);
  }
}

/** Writes the profile and describes it: to stderr at length, in the notes in short. */
function reportProfile(ctx: BenchContext, profiler: CpuProfiler, file: string): string[] {
  if (!profiler.write(file)) return [`--profile: nothing was recorded (no tenant-server round ran), ${file} not written.`];
  const notes = [
    `CPU profile of the tenant server's measured rounds written to ${file} (both queries, rounds joined). Its figures above carry the sampling's overhead, ` +
      "and each recording's start stalls the event loop (the log's \"overloaded\" lines); rounds started once the server no longer shed. " +
      'Self time (native functions such as a socket\'s writev charged to their caller; (idle): the event loop waiting):',
  ];
  for (const label of profiler.labels) {
    const categories = profiler.byCategory(label);
    const functions = profiler.byFunction(label);
    progressTable(ctx, `profile of the tenant server, ${label}: self time by category`, categories, 20);
    progressTable(ctx, `profile of the tenant server, ${label}: self time by function`, functions, 15);
    notes.push(`profile, ${label}, by category: ${describeBreakdown(categories, 12)}`);
    notes.push(`profile, ${label}, top functions: ${describeBreakdown(functions, 6)}`);
  }
  return notes;
}

export async function hotSection(ctx: BenchContext): Promise<SectionReport> {
  const vehicles = ctx.counts.hotVehicles;
  const queries: HotQuery[] = [
    { label: 'page', query: PAGE_QUERY, expect: '"name"' },
    { label: 'page + totalCount', query: COUNT_QUERY, expect: `"totalCount":${vehicles}` },
  ];
  const tenant = await ctx.fleet.ensureLargeTenant(vehicles);
  const options = { databaseUrl: ctx.run.databaseUrl, schema: tenant.schemaName, poolMax: 10 };
  const children: ChildServer[] = [];
  const started = async (script: string, extra: object = {}) => {
    const child = await startChildServer(script, { ...options, ...extra });
    children.push(child);
    return child;
  };
  const profiler = ctx.profileFile ? new CpuProfiler(PROJECT_ROOT) : null;
  try {
    const baselines: Baselines = {
      prisma: await started('bare-server.ts'),
      pg: await started('bare-pg-server.ts'),
      raw: await started('raw-sql-server.ts', { shape: 'hot' }),
    };
    const rows: Row[] = [];
    const notes: string[] = [];
    const many = await ctx.fleet.ensureHot(ctx.counts.requestTenants);
    for (const hot of queries) {
      await compareAnswers(ctx, tenant.token, baselines, hot, vehicles);
      ctx.progress(`hot: ${hot.label}: all four servers answer the same bytes`);
      // totalCount differs per tenant size: only the page query is compared with many tenants.
      const manyTokens = hot.label === 'page' ? many.map((each) => each.token) : [];
      const results = await loadRounds(ctx, targets(ctx, tenant.token, baselines, hot, profiler, manyTokens));
      rows.push(...queryRows(hot, results.filter((result) => result.name !== MANY_TENANTS)));
      const manyRounds = results.find((result) => result.name === MANY_TENANTS);
      if (manyRounds) rows.push(...manyTenantsRows(summarize(results[0] as TargetRounds), manyRounds, many.length, ctx.counts.vehiclesPerTenant));
      for (const result of results) {
        const { failures } = summarize(result);
        if (failures > 0) notes.push(`hot, ${hot.label}, ${result.name}: ${failures} responses failed or did not match (see progress output).`);
      }
    }
    if (profiler && ctx.profileFile) notes.push(...reportProfile(ctx, profiler, ctx.profileFile));
    const { config } = ctx.app;
    return {
      title:
        `Hot tenant — 1 tenant × ${vehicles} vehicles with drivers, ${ctx.counts.connections} connections, ${ctx.counts.rounds} × ${ctx.counts.durationSec} s; ` +
        `tenant pool ${config.tenantClients.poolMax}, in-flight ${config.tenantInFlight.maxInFlight} per tenant (${config.tenantInFlight.maxInFlightAlone} alone); baselines' pools 10`,
      rows,
      notes,
    };
  } finally {
    await profiler?.close();
    for (const child of children) await child.stop();
  }
}
