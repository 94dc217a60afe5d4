import v8 from 'node:v8';
import vm from 'node:vm';
import { mapWithConcurrency } from '../../src/concurrency/map-with-concurrency';
import type { TenantClientPool } from '../../src/tenancy/tenant-client-pool';
import { startBenchServer, type BenchServer } from '../lib/bench-server';
import { forgetAllClients, tenantConnections, type BenchContext, type Row, type SectionReport } from '../lib/context';
import { kib, mib, sleep } from '../lib/stats';

/*
 * 6. Memory: what a cached tenant client costs the server process. On a server instance of its
 * own (in this process; cache large enough for N, a connection budget that fits PostgreSQL's
 * max_connections, a short idle timeout), lease N tenants' clients, run one query on each,
 * and compare the process's RSS and V8 heap with the state before: once while every client
 * still holds its connection, once after the idle timeout closed them (clients stay cached).
 * When N connections do not fit under max_connections, the clients are built in waves (each
 * wave's connections close before the next) and only the closed state is measured.
 */

const IDLE_TIMEOUT_MS = 2_000;
/** Connections left for everything else on the PostgreSQL server (other instances, other users). */
const HEADROOM = 25;

interface Snapshot {
  rss: number;
  heapUsed: number;
  external: number;
}

const signed = (bytes: number) => `${bytes >= 0 ? '+' : '−'}${mib(Math.abs(bytes))}`;

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

/** Memory after full GCs, once RSS stops moving (freed pages go back to the OS with a delay). */
async function snapshot(): Promise<Snapshot> {
  let previous = Number.NaN;
  for (let attempt = 0; attempt < 20; attempt += 1) {
    gc();
    await sleep(150);
    gc();
    const rss = process.memoryUsage.rss();
    if (Math.abs(rss - previous) < 256 * 1024) break;
    previous = rss;
  }
  const usage = process.memoryUsage();
  return { rss: usage.rss, heapUsed: usage.heapUsed, external: usage.external };
}

async function waitForClosedConnections(pool: TenantClientPool): Promise<void> {
  for (let waited = 0; pool.stats().openConnections > 0; waited += 100) {
    if (waited > IDLE_TIMEOUT_MS + 10_000) throw new Error(`tenant connections did not close: ${JSON.stringify(pool.stats())}`);
    await sleep(100);
  }
}

export async function memorySection(ctx: BenchContext): Promise<SectionReport> {
  const sizes = [...ctx.counts.memoryClients].sort((a, b) => a - b);
  const largest = sizes.at(-1) as number;
  const tenants = await ctx.fleet.ensureTenants(largest);
  await forgetAllClients(ctx); // the main instance gives its tenant connections back first

  const inUse = Number((await ctx.monitor.query<{ count: string }>('SELECT count(*) FROM pg_stat_activity')).rows[0]?.count ?? 0);
  const openCap = Math.max(1, Math.min(largest, ctx.maxConnections - inUse - HEADROOM));
  ctx.progress(`memory: ${inUse} PostgreSQL connections in use of ${ctx.maxConnections}; up to ${openCap} tenant connections at once`);
  let instance: BenchServer | undefined;
  const rows: Row[] = [];
  const notes: string[] = [];
  try {
    instance = await startBenchServer(ctx.run, 'memory', {
      env: {
        TENANT_CLIENT_CACHE_MAX: String(largest + 100),
        TENANT_CONNECTION_BUDGET: String(openCap),
        TENANT_IDLE_TIMEOUT_MS: String(IDLE_TIMEOUT_MS),
      },
    });
    const pool = instance.server.services.tenantClients;
    // One-time costs (code paths, the first client's query compiler) land in a warm-up group.
    const warmup = tenants.slice(0, Math.min(10, largest)).map((tenant) => pool.lease(tenant));
    await Promise.all(warmup.map((lease) => lease.db.vehicle.findMany({ take: 1 })));
    for (const lease of warmup) lease.release();
    for (const count of sizes) {
      const group = tenants.slice(0, count);
      await forgetAllClients(ctx, instance);
      const before = await snapshot();
      const wave = Math.min(count, openCap);
      ctx.progress(`memory: N = ${count} clients${wave < count ? ` in waves of ${wave}` : ''}`);
      for (let start = 0; start < count; start += wave) {
        if (start > 0) await waitForClosedConnections(pool);
        const leases = group.slice(start, start + wave).map((tenant) => pool.lease(tenant));
        try {
          await mapWithConcurrency(leases, 8, (lease) => lease.db.vehicle.findMany({ take: 1 }));
        } finally {
          for (const lease of leases) lease.release();
        }
      }
      const openStats = pool.stats();
      const openPg = await tenantConnections(ctx);
      const open = await snapshot();
      await waitForClosedConnections(pool);
      await sleep(500);
      const closedStats = pool.stats();
      const closedPg = await tenantConnections(ctx);
      const closed = await snapshot();
      if (closedStats.cachedClients !== count) notes.push(`memory N = ${count}: ${closedStats.cachedClients} clients cached, expected ${count}.`);
      const perClient = (after: Snapshot, key: keyof Snapshot) => (after[key] - before[key]) / count;
      const allOpen = wave === count;
      rows.push({
        measurement: `RSS per cached tenant client, N = ${count}`,
        result: `${allOpen ? `${kib(perClient(open, 'rss'))} with connection` : 'open: n/a'} · ${kib(perClient(closed, 'rss'))} after idle close`,
        detail:
          `RSS ${signed(open.rss - before.rss)} open → ${signed(closed.rss - before.rss)} closed; ` +
          `V8 heap per client ${kib(perClient(open, 'heapUsed'))} open → ${kib(perClient(closed, 'heapUsed'))} closed; ` +
          `PostgreSQL connections of tenant roles ${openPg} → ${closedPg}; ` +
          `stats(): ${openStats.cachedClients} cached / ${openStats.openConnections} open → ${closedStats.cachedClients} cached / ${closedStats.openConnections} open` +
          (allOpen ? '' : `; only ${wave} connections fit at once (max_connections ${ctx.maxConnections})`),
      });
    }
    await forgetAllClients(ctx, instance);
  } finally {
    await instance?.close();
  }
  const defaults = ctx.app.config.tenantClients;
  notes.push(
    `memory: production defaults cap open tenant connections at ${defaults.connectionBudget} (TENANT_CONNECTION_BUDGET) and cached clients at ${defaults.cacheMax}; this section used its own instance with a budget of ${openCap} and a ${IDLE_TIMEOUT_MS / 1000} s idle timeout.`,
  );
  return { title: 'Memory — per cached tenant client (server process, RSS and V8 heap deltas after GC)', rows, notes };
}
