/*
 * npm run tenants:export -- --out <dir> [--after <tenant-id>] [--dry-run] [--concurrency <1..8>]
 *
 * Writes every ACTIVE or SUSPENDED tenant's archive (the format of GET /admin/tenants/:slug/export,
 * which POST /admin/tenants/:slug/import reads back) to <dir>/<slug>.ndjson, each one written
 * whole under a temporary name and then renamed (src/provisioning/fleet-export.ts). Prints one
 * line per tenant as it goes, in id order: every tenant up to a printed line is done, so a run
 * cut off goes on with `--after <the last id printed>`; a finished run ends with `resume after
 * <id>`. A tenant that fails is reported and the others go on; the exit code is then 1.
 * `--dry-run` writes nothing: it prints the file each tenant would get and its row counts, read
 * as the tenant's role (so a tenant that cannot be read shows up before the real run).
 * Uses DATABASE_URL, or the embedded PostgreSQL of `npm start`, like tenants:migrate.
 */
import { loadConfig } from '../src/config/config';
import { DatabaseClusters } from '../src/clusters/database-clusters';
import { openEmbeddedDatabase, type EmbeddedDatabase } from '../src/database/embedded-postgres';
import { connectPlatformDatabase } from '../src/database/platform-database';
import { isUuid } from '../src/database/uuid';
import { createLogger } from '../src/observability/logger';
import { exportFleet, MAX_EXPORT_CONCURRENCY } from '../src/provisioning/fleet-export';
import { archiveSigningKey } from '../src/provisioning/tenant-archive';
import { ConnectionBudget } from '../src/tenancy/connection-budget';
import { TenantClientPool } from '../src/tenancy/tenant-client-pool';
import { tenantConnectionConfig } from '../src/tenancy/tenant-credentials';
import { runOperatorCommand } from './operator-command';

const USAGE = `usage: npm run tenants:export -- --out <dir> [--after <tenant-id>] [--dry-run] [--concurrency <1..${MAX_EXPORT_CONCURRENCY}>]`;

interface ExportArgs {
  outDir: string;
  after: string | null;
  dryRun: boolean;
  concurrency: number;
}

function parseArgs(argv: string[]): ExportArgs {
  let outDir: string | null = null;
  let after: string | null = null;
  let dryRun = false;
  let concurrency = 2;
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i] as string;
    if (arg === '--out') outDir = argv[++i] ?? '';
    else if (arg === '--dry-run') dryRun = true;
    else if (arg === '--after') {
      after = argv[++i] ?? '';
      if (!isUuid(after)) throw new Error(`--after takes a tenant id (a UUID, as a run's "resume after" line prints it); ${USAGE}`);
    } else if (arg === '--concurrency') {
      concurrency = Number(argv[++i]);
      if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > MAX_EXPORT_CONCURRENCY) {
        throw new Error(`--concurrency must be a whole number from 1 to ${MAX_EXPORT_CONCURRENCY}; ${USAGE}`);
      }
    } else throw new Error(`unknown argument ${arg}; ${USAGE}`);
  }
  if (!outDir) throw new Error(`--out <dir> is required; ${USAGE}`);
  return { outDir, after, dryRun, concurrency };
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
  const platform = connectPlatformDatabase(databaseUrl, 4);
  const clusters = new DatabaseClusters(config.clusters, platform, databaseUrl);
  // Its own small budget per cluster: one export holds one connection (one snapshot) at a time.
  const budgets = new Map(clusters.names().map((name): [string, ConnectionBudget] => [name, new ConnectionBudget(args.concurrency + 1, config.tenantClients.connectTimeoutMs)]));
  const tenantClients = new TenantClientPool({
    ...config.tenantClients,
    poolMax: 1,
    budgets,
    connectionConfig: (tenant) => tenantConnectionConfig(clusters.get(tenant.cluster).tenantServerUrl, tenant.dbRole, config.tenantDbSecret),
  });
  try {
    const report = await exportFleet(
      { platform, tenantClients, signingKey: archiveSigningKey(config.tenantDbSecret), logger },
      { outDir: args.outDir, after: args.after, dryRun: args.dryRun, concurrency: args.concurrency },
      (result) => {
        const outcome = result.outcome;
        const status = result.status === 'DONE' && outcome?.skipped ? 'SKIPPED' : result.status;
        const rows = outcome?.counts ? Object.values(outcome.counts).reduce((sum, n) => sum + n, 0) : 0;
        const detail = result.status === 'FAILED' ? (result.error ?? '') : outcome?.skipped ? outcome.skipped : `${rows} rows ${args.dryRun ? 'would go to' : '->'} ${outcome?.file ?? ''}`;
        console.log(`${status.padEnd(8)} ${result.slug.padEnd(42)} ${result.tenantId.padEnd(36)} ${String(result.durationMs).padStart(6)} ms  ${detail}`);
      },
    );
    const dry = report.dryRun ? ' (dry run: nothing written)' : '';
    console.log(`${report.visited} tenants, ${report.failed} failed, ${report.durationMs} ms${dry}`);
    if (report.resumeAfter) console.log(`resume after ${report.resumeAfter}`);
    process.exitCode = report.failed > 0 ? 1 : 0;
  } finally {
    await tenantClients.close();
    await clusters.close();
    await platform.close();
    await embedded?.stop();
  }
}

runOperatorCommand('tenants:export', main);
