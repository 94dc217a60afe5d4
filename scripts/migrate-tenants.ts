/*
 * npm run tenants:migrate [-- --concurrency 8] [-- --force] [-- --dry-run] [-- --after <id>] [-- <tenant-id> ...]
 *
 * Applies platform migrations, then brings every tenant (or the listed ones) to the newest
 * tenant migration, the same way the migrateTenants mutation does. Prints one line per tenant
 * as it goes (in id order, each line's tenant and every one before it done: a run cut off goes
 * on with `--after <the last id printed>`), then `resume after <id>`, and exits 1 if any
 * failed. `--dry-run` applies nothing, platform migrations included: it prints the migrations
 * each tenant lacks. Uses DATABASE_URL, or the embedded PostgreSQL of `npm start` (the running
 * one when `npm start` is up, else it starts and stops it).
 */
import { MAX_MIGRATION_CONCURRENCY, loadConfig } from '../src/config/config';
import { TENANT_MIGRATIONS_DIR } from '../src/config/paths';
import { openEmbeddedDatabase, type EmbeddedDatabase } from '../src/database/embedded-postgres';
import { connectPlatformDatabase, migratePlatformSchema } from '../src/database/platform-database';
import { createLogger } from '../src/observability/logger';
import { DatabaseClusters } from '../src/clusters/database-clusters';
import { TenantMigrationRunner } from '../src/provisioning/tenant-migration-runner';
import { createMigrators } from '../src/migrations/create-migrators';
import { TenantDirectory } from '../src/tenancy/tenant-directory';
import { ensureInstallationId } from '../src/tenancy/installation';
import { isUuid } from '../src/database/uuid';
import { runOperatorCommand } from './operator-command';

const USAGE = 'usage: npm run tenants:migrate [-- --concurrency <1..32>] [-- --force] [-- --dry-run] [-- --after <tenant-id>] [-- <tenant-id> ...]';

function parseArgs(argv: string[]): { concurrency?: number; force: boolean; dryRun: boolean; after: string | null; tenantIds: string[] } {
  const tenantIds: string[] = [];
  let concurrency: number | undefined;
  let force = false;
  let dryRun = false;
  let after: string | null = null;
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i] as string;
    if (arg === '--force') force = true;
    else if (arg === '--dry-run') dryRun = true;
    else if (arg === '--after') {
      after = argv[++i] ?? '';
      if (!isUuid(after)) throw new Error(`--after takes a tenant id (a UUID, as a run's "resume after" line prints it); ${USAGE}`);
    } else if (arg === '--concurrency') {
      concurrency = Number(argv[++i]);
      if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > MAX_MIGRATION_CONCURRENCY) {
        throw new Error(`--concurrency must be a whole number from 1 to ${MAX_MIGRATION_CONCURRENCY}; ${USAGE}`);
      }
    } else if (arg.startsWith('-')) throw new Error(`unknown option ${arg}; ${USAGE}`);
    else tenantIds.push(arg);
  }
  return { ...(concurrency !== undefined ? { concurrency } : {}), force, dryRun, after, tenantIds };
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const config = loadConfig();
  const logger = createLogger(process.env.LOG_LEVEL ?? 'warn');
  let embedded: EmbeddedDatabase | undefined;
  let databaseUrl = config.databaseUrl;
  if (!databaseUrl) {
    embedded = await openEmbeddedDatabase(config.embeddedPostgres);
    databaseUrl = embedded.databaseUrl;
  }
  const migrators = createMigrators(config.migrator);
  // A dry run changes nothing, the platform schema included; a platform behind the code fails its reads.
  if (!args.dryRun) {
    const platformOutcome = await migratePlatformSchema(databaseUrl, migrators.platform);
    console.log(`platform: ${platformOutcome.applied.length ? `applied ${platformOutcome.applied.join(', ')}` : 'up to date'}`);
  }
  const platform = connectPlatformDatabase(databaseUrl, 4);
  // No LISTEN here: this process only writes; the servers hear of its changes.
  const directory = new TenantDirectory(platform.prisma, null, 100);
  const clusters = new DatabaseClusters(config.clusters, platform, databaseUrl);
  try {
    const runner = new TenantMigrationRunner({
      platform,
      clusters,
      installationId: await ensureInstallationId(platform.prisma),
      migrator: migrators.tenant,
      tenantMigrationsDir: TENANT_MIGRATIONS_DIR,
      tenantDbSecret: config.tenantDbSecret,
      directory,
      logger,
      defaultConcurrency: config.migrateConcurrency,
    });
    let missing = 0;
    const report = await runner.migrateTenants(
      {
        tenantIds: args.tenantIds.length ? args.tenantIds : null,
        concurrency: args.concurrency ?? null,
        force: args.force,
        dryRun: args.dryRun,
        after: args.after,
      },
      (result) => {
        // A tenant asked for by id that is not there is a mistake to hear about, not a success.
        if (result.status === 'SKIPPED' && result.tenant === null) missing += 1;
        const detail =
          result.status === 'MIGRATED'
            ? result.appliedMigrations.join(', ')
            : result.status === 'WOULD_MIGRATE'
              ? `would apply ${result.pendingMigrations.join(', ')}`
              : (result.error ?? result.version ?? '');
        console.log(`${result.status.padEnd(13)} ${(result.slug ?? '-').padEnd(42)} ${result.tenantId.padEnd(36)} ${String(result.durationMs).padStart(6)} ms  ${detail}`);
      },
    );
    const total = Object.values(report.counts).reduce((sum, n) => sum + n, 0);
    const dry = report.dryRun ? ` (dry run: ${report.counts.WOULD_MIGRATE} would migrate, nothing changed)` : '';
    console.log(`target ${report.targetVersion}: ${total} tenants, ${report.counts.FAILED} failed, ${report.durationMs} ms${dry}`);
    if (report.resumeAfter) console.log(`resume after ${report.resumeAfter}`);
    process.exitCode = report.counts.FAILED > 0 || missing > 0 ? 1 : 0;
  } finally {
    await clusters.close();
    await platform.close();
    await embedded?.stop();
  }
}

runOperatorCommand('tenants:migrate', main);
