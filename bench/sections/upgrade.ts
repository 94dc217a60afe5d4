import { cpSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { mapWithConcurrency } from '../../src/concurrency/map-with-concurrency';
import { TENANT_MIGRATIONS_DIR } from '../../src/config/paths';
import type { TenantMigrationResult } from '../../src/provisioning/tenant-migration-runner';
import { quoteIdentifier } from '../../src/tenancy/tenant-naming';
import { startBenchServer } from '../lib/bench-server';
import type { BenchContext, Row, SectionReport } from '../lib/context';
import { BenchFleet } from '../lib/fleet';
import { median, ms } from '../lib/stats';

/*
 * 9. Fleet upgrade: the first real fleet-wide migration. N tenants are provisioned by an instance
 * of the first release (a copy of migrations/tenant holding only its first migration), each with
 * vehiclesPerTenant vehicles and drivers; then today's server brings all of them to the newest
 * migration (dispatch, soft delete and history, settings, maintenance, audit log, stops and
 * notes: every migration since, with its ANALYZE and the audit log's seal) in one migrateTenants
 * run at the default concurrency. The run is called in-process (the runner migrateTenants calls):
 * a run this long outlasts fetch's 300 s header timeout.
 */
export async function upgradeSection(ctx: BenchContext): Promise<SectionReport> {
  const count = ctx.counts.upgradeTenants;
  const concurrency = ctx.app.config.migrateConcurrency;
  const rows: Row[] = [];
  const notes: string[] = [];
  const shipped = readdirSync(TENANT_MIGRATIONS_DIR).filter((name) => /^\d{14}_/.test(name)).sort();
  const firstRelease = mkdtempSync(path.join(os.tmpdir(), 'fg-first-release-'));
  cpSync(TENANT_MIGRATIONS_DIR, firstRelease, { recursive: true });
  for (const name of shipped.slice(1)) rmSync(path.join(firstRelease, name), { recursive: true, force: true });
  const old = await startBenchServer(ctx.run, 'first-release', { tenantMigrationsDir: firstRelease });
  let ids: string[];
  try {
    ctx.progress(`upgrade: creating ${count} tenants at ${shipped[0]} (concurrency ${ctx.counts.bulkConcurrency})`);
    const createdAt = performance.now();
    const tenants = await mapWithConcurrency(
      Array.from({ length: count }, (_, index) => `upgrade-${String(index + 1).padStart(4, '0')}`),
      ctx.counts.bulkConcurrency,
      async (slug) => {
        const tenant = await old.server.services.provisioner.createTenant({ slug, name: `Upgrade ${slug}`, plan: 'STANDARD', owner: BenchFleet.ownerFor(slug) });
        const schema = quoteIdentifier(tenant.schemaName);
        // Rows as the first release kept them, so the new indexes and ANALYZE have something to read.
        await ctx.monitor.query(
          `INSERT INTO ${schema}."Driver" (id, name, "licenseNumber", "updatedAt") SELECT gen_random_uuid(), 'Driver ' || i, 'LIC-' || i, now() FROM generate_series(1, $1::int) i`,
          [ctx.counts.vehiclesPerTenant],
        );
        await ctx.monitor.query(
          `INSERT INTO ${schema}."Vehicle" (id, plate, make, model, year, "odometerKm", "updatedAt") SELECT gen_random_uuid(), 'UP-' || i, 'Make', 'Model', 2000 + i % 25, i * 1000, now() FROM generate_series(1, $1::int) i`,
          [ctx.counts.vehiclesPerTenant],
        );
        return tenant;
      },
    );
    ids = tenants.map((tenant) => tenant.id);
    ctx.progress(`upgrade: ${count} tenants at the first release in ${((performance.now() - createdAt) / 1000).toFixed(0)} s`);
  } finally {
    await old.close();
    rmSync(firstRelease, { recursive: true, force: true });
  }

  const startedAt = performance.now();
  const results: TenantMigrationResult[] = [];
  await ctx.app.server.services.migrations.migrateTenants({ tenantIds: ids }, (result) => results.push(result));
  const wallMs = performance.now() - startedAt;
  const migrated = results.filter((result) => result.status === 'MIGRATED');
  const failed = results.filter((result) => result.status !== 'MIGRATED');
  if (failed.length > 0) notes.push(`upgrade: ${failed.length} tenants not MIGRATED: ${JSON.stringify(failed.slice(0, 3).map((result) => ({ status: result.status, error: result.error })))}`);
  const applied = migrated[0]?.appliedMigrations.length ?? 0;
  const perTenant = migrated.map((result) => result.durationMs);
  ctx.progress(`upgrade: ${migrated.length} of ${count} tenants migrated (${applied} migrations each) in ${ms(wallMs)}`);
  rows.push({
    measurement: `migrateTenants, ${count} tenants from the first release to today (${applied} migrations each, concurrency ${concurrency})`,
    result: ms(wallMs),
    detail: `${migrated.length} MIGRATED, ${failed.length} not; each tenant's own run median ${ms(median(perTenant))}, max ${ms(Math.max(...perTenant))}; ${ms(wallMs / count)} of wall time per tenant → 1,000 tenants ≈ ${ms((wallMs / count) * 1000)}`,
  });
  return { title: `Fleet upgrade: ${count} tenants of ${ctx.counts.vehiclesPerTenant} vehicles and drivers each, first release → today`, rows, notes };
}
