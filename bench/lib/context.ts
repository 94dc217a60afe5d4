import type pg from 'pg';
import type { BenchRun, BenchServer } from './bench-server';
import type { BenchFleet } from './fleet';
import type { Counts } from './options';

/** One line of the results table. */
export interface Row {
  measurement: string;
  result: string;
  detail: string;
}

export interface SectionReport {
  title: string;
  rows: Row[];
  /** Warnings and observations printed under the table. */
  notes: string[];
}

/** Figures a later section compares with (scale and hot against request). */
export interface SharedFigures {
  requestTenantRps?: { rps: number; tenants: number; p50: number; p99: number };
}

export interface BenchContext {
  run: BenchRun;
  /** The tenant server every section measures, unless it starts its own instance. */
  app: BenchServer;
  fleet: BenchFleet;
  counts: Counts;
  /** A superuser session on the scratch database, for pg_stat_* and catalog counts. */
  monitor: pg.Client;
  databaseName: string;
  maxConnections: number;
  shared: SharedFigures;
  /** --profile: the hot section records the tenant server's rounds into this .cpuprofile. */
  profileFile: string | null;
  progress(message: string): void;
  /**
   * Registers a clean-up step for the end of the run, also run on Ctrl-C (when a section's own
   * `finally` never runs): a section that starts something outside the scratch database (a
   * PostgreSQL server, a temporary folder) registers how to remove it. Make it idempotent when
   * the section also cleans up itself.
   */
  atExit(step: () => Promise<void>): void;
}

/** Connections tenant roles of this installation hold right now. */
export async function tenantConnections(ctx: BenchContext): Promise<number> {
  const prefix = `fg\\_${ctx.app.server.installationId}\\_%`;
  const result = await ctx.monitor.query<{ count: string }>(
    'SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND usename LIKE $2',
    [ctx.databaseName, prefix],
  );
  return Number(result.rows[0]?.count ?? 0);
}

/** Sessions PostgreSQL has started on the scratch database so far (connections opened). */
export async function sessionsOpened(ctx: BenchContext): Promise<number> {
  const result = await ctx.monitor.query<{ sessions: string | null }>('SELECT sessions FROM pg_stat_database WHERE datname = $1', [ctx.databaseName]);
  return Number(result.rows[0]?.sessions ?? Number.NaN);
}

/** Forgets every cached tenant client of an instance (their pools close) and waits for the connections to go. */
export async function forgetAllClients(ctx: BenchContext, app: BenchServer = ctx.app): Promise<void> {
  const pool = app.server.services.tenantClients;
  for (const tenant of ctx.fleet.everyTenant()) pool.forget(tenant.id);
  for (let waited = 0; waited < 10_000 && pool.stats().openConnections > 0; waited += 50) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
