import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { tenantMigrationsWith } from '../../tests/support/provisioning-inspector';
import { startBenchServer, type BenchServer } from '../lib/bench-server';
import type { BenchContext, Row, SectionReport } from '../lib/context';
import { graphql } from '../lib/graphql-http';
import { list, median, ms } from '../lib/stats';

/*
 * 5. Fleet migration: migrateTenants over N tenants (by id) when all are up to date (the runner
 * answers from the platform rows without touching a schema), and when each must apply one new
 * migration: a second server instance on the same database, started with a temporary copy of
 * migrations/tenant, gets one more trivial migration per round. Default concurrency, over HTTP.
 * migrateTenants allows 10 calls a minute per admin: 3 + 3 checks and at most 3 rounds with a new migration.
 */

const MIGRATE = `mutation Migrate($tenantIds: [ID!]) {
  migrateTenants(tenantIds: $tenantIds) {
    targetVersion migrated upToDate failed skipped durationMs
    results { status durationMs }
  }
}`;

/** Up-to-date checks are cheap: always 3, median shown (the first call also warms the path). */
const UP_TO_DATE_ROUNDS = 3;

interface MigrateReport {
  targetVersion: string | null;
  migrated: number;
  upToDate: number;
  failed: number;
  skipped: number;
  durationMs: number;
  results: { status: string; durationMs: number }[];
}

async function migrate(app: BenchServer, adminToken: string, tenantIds: string[] | null): Promise<{ wallMs: number; report: MigrateReport }> {
  const startedAt = performance.now();
  const { migrateTenants: report } = await graphql<{ migrateTenants: MigrateReport }>(app.url, MIGRATE, { tenantIds }, adminToken);
  return { wallMs: performance.now() - startedAt, report };
}

export async function migrateSection(ctx: BenchContext): Promise<SectionReport> {
  const { counts } = ctx;
  const tenants = await ctx.fleet.ensureTenants(counts.migrateTenants);
  const ids = tenants.map((tenant) => tenant.id);
  const count = ids.length;
  const fleetSize = ctx.fleet.everyTenant().length;
  const concurrency = ctx.app.config.migrateConcurrency;
  const rows: Row[] = [];
  const notes: string[] = [];
  const check = (report: MigrateReport, field: 'upToDate' | 'migrated', expected: number, what: string) => {
    if (report[field] !== expected || report.failed > 0) notes.push(`migrate ${what}: expected ${expected} ${field}, got ${JSON.stringify({ ...report, results: undefined })}.`);
  };

  const upToDate: number[] = [];
  const wholeFleet: number[] = [];
  for (let round = 1; round <= UP_TO_DATE_ROUNDS; round += 1) {
    const { wallMs, report } = await migrate(ctx.app, ctx.fleet.adminToken, ids);
    check(report, 'upToDate', count, 'up-to-date check');
    upToDate.push(wallMs);
    ctx.progress(`migrate: up-to-date check of ${count} tenants ${ms(wallMs)} (server ${report.durationMs} ms)`);
    if (fleetSize > count) {
      const all = await migrate(ctx.app, ctx.fleet.adminToken, null);
      check(all.report, 'upToDate', fleetSize, 'whole-fleet check');
      wholeFleet.push(all.wallMs);
      ctx.progress(`migrate: up-to-date check of the whole fleet (${fleetSize}) ${ms(all.wallMs)}`);
    }
  }
  const perTenant = median(upToDate) / count;
  rows.push({
    measurement: `migrateTenants, ${count} tenants all up to date`,
    result: ms(median(upToDate)),
    detail: `rounds ${list(upToDate, (value) => value.toFixed(0))} ms; ${ms(perTenant, 2)} per tenant → 1,000 tenants ≈ ${ms(perTenant * 1000)} (target ≤ 10 s: ${perTenant * 1000 <= 10_000 ? 'met' : 'NOT met'})`,
  });
  if (wholeFleet.length > 0) {
    rows.push({
      measurement: `migrateTenants, whole fleet of ${fleetSize} tenants, all up to date`,
      result: ms(median(wholeFleet)),
      detail: `rounds ${list(wholeFleet, (value) => value.toFixed(0))} ms; ${ms(median(wholeFleet) / fleetSize, 2)} per tenant`,
    });
  }

  const migrations = tenantMigrationsWith({});
  let next: BenchServer | undefined;
  try {
    next = await startBenchServer(ctx.run, 'next-release', { tenantMigrationsDir: migrations.dir });
    const applied: number[] = [];
    const perTenantApply: number[] = [];
    for (let round = 1; round <= counts.migrateRounds; round += 1) {
      const name = `29990101000${String(round).padStart(3, '0')}_bench_round_${round}`;
      mkdirSync(path.join(migrations.dir, name));
      writeFileSync(path.join(migrations.dir, name, 'migration.sql'), `-- AlterTable\nALTER TABLE "Vehicle" ADD COLUMN "benchRound${round}" TEXT;\n`);
      const { wallMs, report } = await migrate(next, ctx.fleet.adminToken, ids);
      check(report, 'migrated', count, `round ${round}`);
      applied.push(wallMs);
      perTenantApply.push(...report.results.filter((result) => result.status === 'MIGRATED').map((result) => result.durationMs));
      ctx.progress(`migrate: one new migration on ${count} tenants ${ms(wallMs)} (${report.migrated} migrated, ${report.failed} failed)`);
    }
    const applyPerTenant = median(applied) / count;
    rows.push({
      measurement: `migrateTenants, ${count} tenants × 1 new migration (concurrency ${concurrency})`,
      result: ms(median(applied)),
      detail: `rounds ${list(applied, (value) => (value / 1000).toFixed(1))} s; ${ms(applyPerTenant)} per tenant of wall time, each tenant's own run median ${ms(median(perTenantApply))} → 1,000 tenants ≈ ${ms(applyPerTenant * 1000)}`,
    });
  } finally {
    await next?.close();
    migrations.cleanup();
  }
  return { title: `Fleet migration — migrateTenants over ${count} tenants (default concurrency ${concurrency})`, rows, notes };
}
