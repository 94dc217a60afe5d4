import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PLATFORM_CLUSTER } from '../../src/config/config';
import { urlWithDatabase } from '../../src/database/connection-url';
import { startEmbeddedPostgres } from '../../src/database/embedded-postgres';
import { quoteIdentifier } from '../../src/tenancy/tenant-naming';
import { freePort, withClient } from '../../tests/support/local-resources';
import { startBenchServer, type BenchServer } from '../lib/bench-server';
import type { BenchContext, Row, SectionReport } from '../lib/context';
import { analyzeTenant, BenchFleet, loadHotTenant, type BenchTenant } from '../lib/fleet';
import { graphql, VEHICLES_BODY } from '../lib/graphql-http';
import { describeRounds, loadRounds, summarize, type Target, type TargetRounds } from '../lib/load-rounds';
import { cpuSecondsOfThisProcess } from '../lib/processes';
import { median, ms, percentile, ratio, rps } from '../lib/stats';

/*
 * 10. Clusters: tenants on two PostgreSQL servers (ADR 0023). The section starts a second
 * PostgreSQL itself (the embedded package's binaries, a free port, a temporary folder; stopped
 * and removed at the end, on failure and on Ctrl-C too) and a server instance of its own with
 * TENANT_CLUSTERS naming a database there as cluster `second` (`main` is the scratch database).
 * Then:
 *   - createTenant over HTTP, one at a time, placement left to the server (the open cluster with
 *     the fewest tenants): time per call by the cluster it landed on, and the split;
 *   - the request-path query on one tenant of each cluster (20 vehicles with drivers each),
 *     in the same interleaved rounds: throughput, p50, p99, and second / main;
 *   - moveTenant from main to second over HTTP, then confirmTenantMove: first a placed tenant
 *     holding nothing (the fixed cost), then one holding moveVehicles vehicles, each with its
 *     driver (inserted by SQL as the upgrade section loads its tenants, then analyzed): the
 *     server's readOnlyMs and durationMs and each call's wall time;
 *   - the catalog per cluster at the end: the server's fleet_catalog_* gauges and direct SQL.
 */

const SECOND = 'second';

const CREATE_TENANT = `mutation Create($input: CreateTenantInput!) { createTenant(input: $input) { tenant { id slug cluster status } } }`;
const CLUSTERS = '{ databaseClusters { name state tenantCount reachable } }';
const MOVE = `mutation Move($id: ID!, $to: String!) {
  moveTenant(id: $id, toCluster: $to) { readOnlyMs durationMs tenant { cluster readOnlySince } move { phase fromCluster toCluster tables { name rows checksum } } }
}`;
const CONFIRM = 'mutation Confirm($id: ID!) { confirmTenantMove(id: $id) { tenant { cluster move { phase } } } }';
const COUNT_QUERY = '{ vehicles(first: 1) { totalCount edges { node { plate driver { name } } } } }';

interface ClusterSummary {
  name: string;
  state: string;
  tenantCount: number;
  reachable: boolean;
}

interface CreatedTenant {
  id: string;
  slug: string;
  cluster: string;
  status: string;
}

interface MovePayload {
  readOnlyMs: number;
  durationMs: number;
  tenant: { cluster: string; readOnlySince: string | null };
  move: { phase: string; fromCluster: string; toCluster: string; tables: { name: string; rows: number; checksum: string }[] };
}

/** Runs `step` once, however many times it is called (the section's finally and the run's clean-up). */
function once(step: () => Promise<void>): () => Promise<void> {
  let done: Promise<void> | null = null;
  return () => (done ??= step());
}

async function serverVersion(url: string): Promise<string> {
  return withClient(url, async (client) => (await client.query<{ server_version: string }>('SHOW server_version')).rows[0]?.server_version ?? '?');
}

async function clusterSummaries(app: BenchServer, adminToken: string): Promise<ClusterSummary[]> {
  return (await graphql<{ databaseClusters: ClusterSummary[] }>(app.url, CLUSTERS, {}, adminToken)).databaseClusters;
}

function describeDurations(durations: number[]): string {
  if (durations.length === 0) return 'none placed here';
  return `median ${ms(median(durations))} · p95 ${ms(percentile(durations, 95))} · min ${ms(Math.min(...durations))} · max ${ms(Math.max(...durations))} (${durations.length} calls)`;
}

/** createTenant over HTTP, one at a time, placed by the server; durations by the cluster each landed on. */
async function provisionOverTwo(ctx: BenchContext, app: BenchServer, run: string): Promise<{ rows: Row[]; created: BenchTenant[]; notes: string[] }> {
  const count = ctx.counts.clusterTenants;
  const before = await clusterSummaries(app, ctx.fleet.adminToken);
  const durations = new Map<string, number[]>([
    [PLATFORM_CLUSTER, []],
    [SECOND, []],
  ]);
  const order: string[] = [];
  const created: BenchTenant[] = [];
  ctx.progress(`clusters: createTenant × ${count} over HTTP, placement by the server`);
  for (let index = 1; index <= count; index += 1) {
    const slug = `clu-${run}-${index}`;
    const owner = BenchFleet.ownerFor(slug);
    const startedAt = performance.now();
    const result = await graphql<{ createTenant: { tenant: CreatedTenant } }>(
      app.url,
      CREATE_TENANT,
      { input: { slug, name: `Clusters ${slug}`, plan: 'STANDARD', owner } },
      ctx.fleet.adminToken,
    );
    const elapsed = performance.now() - startedAt;
    const { tenant } = result.createTenant;
    if (tenant.status !== 'ACTIVE') throw new Error(`createTenant left ${slug} ${tenant.status}`);
    durations.set(tenant.cluster, [...(durations.get(tenant.cluster) ?? []), elapsed]);
    order.push(tenant.cluster);
    const record = await app.server.services.platform.prisma.tenant.findUniqueOrThrow({ where: { id: tenant.id } });
    created.push({ id: record.id, slug: record.slug, schemaName: record.schemaName, dbRole: record.dbRole, cluster: record.cluster, updatedAt: record.updatedAt, ownerEmail: owner.email, token: null, loaded: false });
  }
  const all = [...durations.values()].flat();
  const countsBefore = before.map((cluster) => `${cluster.name} ${cluster.tenantCount}`).join(', ');
  const split = [...durations.entries()].map(([name, list]) => `${name} ${list.length}`).join(' / ');
  const rows: Row[] = [
    { measurement: `createTenant over HTTP, one at a time, ${count} calls, both clusters`, result: ms(median(all)), detail: describeDurations(all) },
    ...[...durations.entries()].map(([name, list]) => ({
      measurement: `↳ placed on ${name}`,
      result: list.length ? ms(median(list)) : '—',
      detail: describeDurations(list),
    })),
    {
      measurement: 'Placement split (open cluster with the fewest tenants)',
      result: split,
      detail: `tenants before: ${countsBefore}; in call order: ${order.map((name) => (name === PLATFORM_CLUSTER ? 'M' : 'S')).join('')} (M = main, S = second)`,
    },
  ];
  const notes: string[] = [];
  if ([...durations.values()].some((list) => list.length === 0)) {
    notes.push(`clusters: placement put every new tenant on one cluster (tenants before: ${countsBefore}), so the other has no createTenant figure; run the section alone (--only clusters) for an even split.`);
  }
  return { rows, created, notes };
}

/** The request-path query on one tenant per cluster, in the same interleaved rounds. */
async function requestPathOverTwo(ctx: BenchContext, app: BenchServer, onMain: BenchTenant, onSecond: BenchTenant, versions: Record<string, string>): Promise<{ rows: Row[]; notes: string[] }> {
  const vehicles = ctx.counts.vehiclesPerTenant;
  ctx.progress(`clusters: loading ${onMain.slug} (main) and ${onSecond.slug} (second) with ${vehicles} vehicles and drivers each`);
  await loadHotTenant(app, ctx.fleet.adminToken, onMain, vehicles);
  await loadHotTenant(app, ctx.fleet.adminToken, onSecond, vehicles);
  const target = (tenant: BenchTenant): Target => ({
    name: `tenant on ${tenant.cluster}`,
    config: { url: app.url, requests: [{ headers: { authorization: `Bearer ${tenant.token as string}` }, body: VEHICLES_BODY }], expect: '"licenseNumber"' },
    // This section's server runs in the bench process, which meanwhile only waits for the load generator.
    cpuSeconds: cpuSecondsOfThisProcess,
  });
  const results = await loadRounds(ctx, [target(onMain), target(onSecond)]);
  const [main, second] = results.map(summarize) as [ReturnType<typeof summarize>, ReturnType<typeof summarize>];
  const notes: string[] = [];
  for (const [index, summary] of [main, second].entries()) {
    if (summary.failures > 0) notes.push(`clusters: ${(results[index] as TargetRounds).name}: ${summary.failures} responses failed or did not match.`);
  }
  return {
    rows: [
      {
        measurement: `Tenant on main (PostgreSQL ${versions[PLATFORM_CLUSTER]})`,
        result: rps(main.rps),
        detail: describeRounds(results[0] as TargetRounds),
      },
      {
        measurement: `Tenant on second (PostgreSQL ${versions[SECOND]}, embedded)`,
        result: rps(second.rps),
        detail: describeRounds(results[1] as TargetRounds),
      },
      {
        measurement: 'Throughput second / main (same query, same rounds)',
        result: ratio(second.rps / main.rps),
        detail: `p50 ${ms(main.p50)} → ${ms(second.p50)} · p99 ${ms(main.p99)} → ${ms(second.p99)} · server CPU ${Math.round(main.cpuMicrosPerRequest)} → ${Math.round(second.cpuMicrosPerRequest)} µs/request`,
      },
    ],
    notes,
  };
}

interface TimedMove {
  payload: MovePayload;
  moveMs: number;
  confirmMs: number;
}

/** moveTenant to second over HTTP, then confirmTenantMove, each timed around the call. */
async function timedMove(ctx: BenchContext, app: BenchServer, tenant: BenchTenant): Promise<TimedMove> {
  ctx.progress(`clusters: moveTenant ${tenant.slug} main → ${SECOND}`);
  const moveStarted = performance.now();
  const { moveTenant } = await graphql<{ moveTenant: MovePayload }>(app.url, MOVE, { id: tenant.id, to: SECOND }, ctx.fleet.adminToken);
  const moveMs = performance.now() - moveStarted;
  if (moveTenant.tenant.cluster !== SECOND || moveTenant.move.phase !== 'SWITCHED') throw new Error(`moveTenant answered ${JSON.stringify(moveTenant).slice(0, 300)}`);
  const confirmStarted = performance.now();
  const { confirmTenantMove } = await graphql<{ confirmTenantMove: { tenant: { cluster: string; move: unknown } } }>(app.url, CONFIRM, { id: tenant.id }, ctx.fleet.adminToken);
  const confirmMs = performance.now() - confirmStarted;
  if (confirmTenantMove.tenant.cluster !== SECOND || confirmTenantMove.tenant.move !== null) throw new Error(`confirmTenantMove answered ${JSON.stringify(confirmTenantMove)}`);
  tenant.cluster = SECOND;
  return { payload: moveTenant, moveMs, confirmMs };
}

function describeTables(tables: MovePayload['move']['tables']): string {
  const rows = tables.reduce((sum, table) => sum + table.rows, 0);
  const nonEmpty = tables.filter((table) => table.rows > 0).map((table) => `${table.name} ${table.rows.toLocaleString('en-US')}`);
  return `${tables.length} tables, ${rows.toLocaleString('en-US')} rows copied and verified${nonEmpty.length ? ` (${nonEmpty.join(', ')})` : ''}`;
}

/**
 * A freshly provisioned tenant (no rows beyond its seed) moved first: the fixed cost of a move
 * (target role, schema and migrations, the drain, the switch); then a tenant of `count` vehicles
 * with drivers, inserted on main by SQL and analyzed, moved and confirmed.
 */
async function moves(ctx: BenchContext, app: BenchServer, run: string, empty: BenchTenant | undefined): Promise<{ rows: Row[]; notes: string[] }> {
  const rows: Row[] = [];
  const notes: string[] = [];
  const drain = `TENANT_MOVE_DRAIN_MS ${app.config.tenantMoveDrainMs}`;
  if (empty) {
    const { payload, moveMs, confirmMs } = await timedMove(ctx, app, empty);
    rows.push({
      measurement: 'moveTenant main → second, a new tenant with no data (wall time of the call)',
      result: ms(moveMs),
      detail: `server: readOnlyMs ${payload.readOnlyMs} ms, durationMs ${payload.durationMs} ms; ${describeTables(payload.move.tables)}; confirmTenantMove ${ms(confirmMs)}`,
    });
  }

  const count = ctx.counts.moveVehicles;
  const slug = `clu-${run}-move`;
  const owner = BenchFleet.ownerFor(slug);
  // ENTERPRISE: a STANDARD tenant may hold 500 vehicles and drivers (plan quotas).
  const record = await app.server.services.provisioner.createTenant({ slug, name: `Moved ${slug}`, plan: 'ENTERPRISE', owner, cluster: PLATFORM_CLUSTER });
  const tenant: BenchTenant = { id: record.id, slug, schemaName: record.schemaName, dbRole: record.dbRole, cluster: record.cluster, updatedAt: record.updatedAt, ownerEmail: owner.email, token: null, loaded: false };
  ctx.progress(`clusters: inserting ${count} vehicles and drivers into ${slug} on main (SQL)`);
  const schema = quoteIdentifier(tenant.schemaName);
  const main = app.server.services.clusters.get(PLATFORM_CLUSTER).adminPool;
  await main.query(
    `INSERT INTO ${schema}."Driver" (id, name, "licenseNumber", "updatedAt") SELECT gen_random_uuid(), 'Driver ' || i, 'LIC-MV-' || i, now() FROM generate_series(1, $1::int) i`,
    [count],
  );
  await main.query(
    `INSERT INTO ${schema}."Vehicle" (id, plate, make, model, year, "odometerKm", "driverId", "updatedAt")
     SELECT gen_random_uuid(), 'MV' || lpad(i::text, 5, '0'), 'Make ' || i % 7, 'Model ' || i % 5, 2010 + i % 15, i * 100, d.id, now()
       FROM generate_series(1, $1::int) i JOIN ${schema}."Driver" d ON d."licenseNumber" = 'LIC-MV-' || i`,
    [count],
  );
  await analyzeTenant(app, tenant, ['Vehicle', 'Driver']);
  const { accessToken } = await app.server.services.sessions.login({ tenant: slug, email: owner.email, password: owner.password });
  const totalCount = async () => (await graphql<{ vehicles: { totalCount: number } }>(app.url, COUNT_QUERY, {}, accessToken)).vehicles.totalCount;
  // Read once before: the instance holds a client (and a session) for the tenant, as it would for a tenant in use when its move starts.
  const before = await totalCount();
  if (before !== count) throw new Error(`${slug}: totalCount ${before} before the move, expected ${count}`);

  const { payload, moveMs, confirmMs } = await timedMove(ctx, app, tenant);
  const after = await totalCount();
  const sourceLeft = (await main.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [tenant.schemaName])).rowCount;
  if (sourceLeft !== 0) notes.push(`clusters: the moved tenant's schema is still on main after confirmTenantMove.`);
  if (after !== count) notes.push(`clusters: after its move the tenant answers totalCount ${after}, expected ${count}.`);
  rows.push(
    {
      measurement: `moveTenant main → second, ${count.toLocaleString('en-US')} vehicles with drivers (wall time of the call)`,
      result: ms(moveMs),
      detail: `server: readOnlyMs ${payload.readOnlyMs} ms, durationMs ${payload.durationMs} ms; ${describeTables(payload.move.tables)}`,
    },
    {
      measurement: '↳ writes stopped (server-reported readOnlyMs)',
      result: ms(payload.readOnlyMs),
      detail: `from the stop to the switch: the drain of sessions opened before (${drain} at most), the target's role, schema and migrations, the copy and its verification`,
    },
    {
      measurement: '↳ confirmTenantMove (drops the source schema and role on main)',
      result: ms(confirmMs),
      detail: `source schema on main afterwards: ${sourceLeft === 0 ? 'gone' : '**still there**'}; the tenant answers totalCount ${after.toLocaleString('en-US')} from second`,
    },
  );
  return { rows, notes };
}

/** Each cluster's catalog: the server's gauges (what /metrics shows) and the same counted now by SQL. */
async function census(ctx: BenchContext, app: BenchServer): Promise<Row[]> {
  const { registry } = app.server.metrics;
  const gauge = async (name: string) => {
    const metric = registry.getSingleMetric(name);
    const values = metric ? (await metric.get()).values : [];
    return new Map(values.map((value) => [String(value.labels.cluster), value.value]));
  };
  const schemas = await gauge('fleet_catalog_tenant_schemas');
  const relations = await gauge('fleet_catalog_relations');
  const summaries = await clusterSummaries(app, ctx.fleet.adminToken);
  const rows: Row[] = [];
  for (const cluster of app.server.services.clusters.list()) {
    const placed = await app.server.services.platform.pool.query<{ schemaName: string }>(`SELECT "schemaName" FROM platform."Tenant" WHERE "cluster" = $1`, [cluster.name]);
    const sql = (
      await cluster.adminPool.query<{ tenant_schemas: string; relations: string }>(
        `SELECT (SELECT count(*) FROM pg_namespace WHERE nspname = ANY($1::text[])) AS tenant_schemas, (SELECT count(*) FROM pg_class) AS relations`,
        [placed.rows.map((row) => row.schemaName)],
      )
    ).rows[0];
    const summary = summaries.find((each) => each.name === cluster.name);
    rows.push({
      measurement: `Catalog of ${cluster.name}`,
      result: `${schemas.get(cluster.name) ?? '?'} tenant schemas · ${relations.get(cluster.name) ?? '?'} relations`,
      detail:
        `fleet_catalog_tenant_schemas / fleet_catalog_relations{cluster="${cluster.name}"}; by SQL now: ${sql?.tenant_schemas ?? '?'} schemas, ${sql?.relations ?? '?'} pg_class rows; ` +
        `databaseClusters: ${summary ? `${summary.state}, ${summary.tenantCount} tenants, reachable ${summary.reachable}` : 'not listed'}`,
    });
  }
  return rows;
}

/**
 * Waits (up to 5 s) until no tenant role holds a session on the second server: a server
 * instance's close() can resolve while its tenant pools are still ending their connections, and
 * stopping PostgreSQL under them makes each log "tenant connection error" (a FATAL from the
 * shutting-down server), which is no finding of this section.
 */
async function untilNoTenantSessions(serverUrl: string): Promise<void> {
  await withClient(serverUrl, async (client) => {
    for (let waited = 0; waited < 5_000; waited += 50) {
      const { rows } = await client.query<{ open: number }>(`SELECT count(*)::int AS open FROM pg_stat_activity WHERE usename LIKE 'fg\\_%'`);
      if ((rows[0]?.open ?? 0) === 0) return;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }).catch(() => undefined);
}

export async function clustersSection(ctx: BenchContext): Promise<SectionReport> {
  const run = randomBytes(3).toString('hex');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'fleet-bench-pg2-'));
  let stopServer: () => Promise<void> = async () => undefined;
  const removeAll = once(async () => {
    await stopServer().catch((error: unknown) => ctx.progress(`clusters: stopping the second PostgreSQL failed: ${(error as Error).message}`));
    rmSync(dir, { recursive: true, force: true });
  });
  ctx.atExit(removeAll);
  let app: BenchServer | null = null;
  try {
    const port = await freePort();
    ctx.progress(`clusters: starting a second PostgreSQL (embedded) on port ${port} in ${dir}`);
    const startedAt = performance.now();
    const second = await startEmbeddedPostgres({ dataDir: path.join(dir, 'data'), port });
    stopServer = async () => {
      await untilNoTenantSessions(second.url);
      await second.stop();
    };
    const startMs = performance.now() - startedAt;
    const database = `fleet_bench_${randomBytes(4).toString('hex')}`;
    await withClient(second.url, (client) => client.query(`CREATE DATABASE ${client.escapeIdentifier(database)}`));
    const secondUrl = urlWithDatabase(second.url, database);
    // "15.20 (Debian 15.20-0+deb12u1)": the number is enough for a title.
    const versions: Record<string, string> = {
      [PLATFORM_CLUSTER]: (await serverVersion(ctx.run.databaseUrl)).split(' ')[0] ?? '?',
      [SECOND]: (await serverVersion(secondUrl)).split(' ')[0] ?? '?',
    };

    app = await startBenchServer(ctx.run, 'clusters-server', { env: { TENANT_CLUSTERS: `${SECOND}=${secondUrl}` } });
    const clusters = await clusterSummaries(app, ctx.fleet.adminToken);
    if (!clusters.every((cluster) => cluster.reachable && cluster.state === 'OPEN') || clusters.length !== 2) {
      throw new Error(`the clusters server sees ${JSON.stringify(clusters)}`);
    }

    const provision = await provisionOverTwo(ctx, app, run);
    const onMain = provision.created.find((tenant) => tenant.cluster === PLATFORM_CLUSTER);
    const onSecond = provision.created.find((tenant) => tenant.cluster === SECOND);
    const request =
      onMain && onSecond
        ? await requestPathOverTwo(ctx, app, onMain, onSecond, versions)
        : { rows: [], notes: ['clusters: no tenant on one of the clusters, so the request path was not measured there.'] };
    // A placed tenant on main that the request path did not load: the empty move.
    const empty = provision.created.find((tenant) => tenant.cluster === PLATFORM_CLUSTER && tenant !== onMain);
    const move = await moves(ctx, app, run, empty);
    const catalog = await census(ctx, app);

    const { counts } = ctx;
    return {
      title:
        `Clusters — main (scratch database, PostgreSQL ${versions[PLATFORM_CLUSTER]}) and second (embedded PostgreSQL ${versions[SECOND]}, started in ${ms(startMs)}); ` +
        `one server instance with TENANT_CLUSTERS; request path ${counts.vehiclesPerTenant} vehicles per tenant, ${counts.connections} connections, ${counts.rounds} × ${counts.durationSec} s`,
      rows: [
        { measurement: '*Provisioning over two clusters*', result: '', detail: '' },
        ...provision.rows,
        { measurement: '*Request path, `vehicles(first: 20)` with drivers, one tenant on each cluster*', result: '', detail: '' },
        ...request.rows,
        { measurement: '*Moving a tenant*', result: '', detail: '' },
        ...move.rows,
        { measurement: '*Catalog per cluster at the end*', result: '', detail: '' },
        ...catalog,
      ],
      notes: [
        ...provision.notes,
        ...request.notes,
        ...move.notes,
        'clusters: the run\'s shared tenant server is not given TENANT_CLUSTERS, so its audit relay cannot reach the tenants on second ' +
          '("moving audit entries failed" in tenant-server.log, SERVICE_UNAVAILABLE); this section\'s own server moves those entries.',
      ],
    };
  } finally {
    await app?.close();
    await removeAll();
  }
}
