import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { databaseNameOf } from '../src/database/connection-url';
import { findPostgresServer, type PostgresServer } from '../src/database/postgres-discovery';
import { dropTestDatabase } from '../tests/support/test-database';
import { BENCH_ADMIN_EMAIL, BENCH_ADMIN_PASSWORD, startBenchServer, type BenchRun } from './lib/bench-server';
import type { BenchContext, Row, SectionReport } from './lib/context';
import { freePort } from '../tests/support/local-resources';
import { commandLine, createScratchDatabase, DEFAULT_REDIS_URL, machineInfo, redisVersion } from './lib/environment';
import { BenchFleet } from './lib/fleet';
import { graphql } from './lib/graphql-http';
import { parseOptions, USAGE, type Options, type Section } from './lib/options';
import { killChildren } from './lib/processes';
import { ms } from './lib/stats';
import { clustersSection } from './sections/clusters';
import { coldSection } from './sections/cold';
import { hotSection } from './sections/hot';
import { memorySection } from './sections/memory';
import { migrateSection } from './sections/migrate';
import { noisySection } from './sections/noisy';
import { provisionSection } from './sections/provision';
import { requestSection } from './sections/request';
import { scaleSection } from './sections/scale';
import { upgradeSection } from './sections/upgrade';

/*
 * The benchmark: `npm run bench` (tsx bench/run.ts). Prints figures; never fails on speed.
 *
 *   npm run bench                                  full run (about 5 min on 2 cores)
 *   npm run bench -- --quick                       scaled down (a couple of minutes)
 *   npm run bench -- --only request,cold           a subset: request, hot, cold, provision, migrate, memory, scale, noisy, upgrade, clusters
 *   npm run bench -- --duration 5 --rounds 5 --connections 20 --log-level silent --keep-database
 *   npm run bench -- --only hot --profile /tmp/hot.cpuprofile   CPU profile of the tenant server under the hot load
 *   npm run bench -- --only request --set TENANT_POOL_MAX=1 --set TENANT_CONNECTION_BUDGET=60
 *
 * It finds PostgreSQL like the tests (DATABASE_URL, else 127.0.0.1:5432, else an embedded
 * server) and Redis (REDIS_URL, else 127.0.0.1:6379), creates a scratch database, runs the
 * product's server in this process (production settings, rate limiting on in Redis), loads
 * tenants, runs the sections, prints a markdown report on stdout (progress goes to stderr),
 * and drops the scratch database and its tenant roles. See bench/README.md.
 */

const SECTION_RUNNERS: Record<Section, (ctx: BenchContext) => Promise<SectionReport>> = {
  request: requestSection,
  hot: hotSection,
  cold: coldSection,
  provision: provisionSection,
  migrate: migrateSection,
  memory: memorySection,
  scale: scaleSection,
  noisy: noisySection,
  upgrade: upgradeSection,
  clusters: clustersSection,
};

/** Table order: as the sections are numbered in the README. */
const TABLE_ORDER: Section[] = ['request', 'hot', 'cold', 'provision', 'migrate', 'memory', 'scale', 'noisy', 'upgrade', 'clusters'];

const startedAt = performance.now();
function progress(message: string): void {
  const seconds = ((performance.now() - startedAt) / 1000).toFixed(0).padStart(4);
  process.stderr.write(`[bench ${seconds}s] ${message}\n`);
}

const cleanups: (() => Promise<void>)[] = [];
/** Set on SIGINT/SIGTERM: the clean-up runs, and the run stops without a report. */
let interrupted = false;
async function cleanUp(): Promise<void> {
  killChildren();
  while (cleanups.length > 0) {
    const step = cleanups.pop() as () => Promise<void>;
    await step().catch((error: unknown) => progress(`clean-up step failed: ${(error as Error).message}`));
  }
}

function escapeCell(text: string): string {
  return text.replaceAll('|', '\\|').replaceAll('\n', ' ');
}

function renderTable(reports: SectionReport[]): string {
  const lines = ['| Measurement | Result | Detail |', '|---|---|---|'];
  for (const report of reports) {
    lines.push(`| **${escapeCell(report.title)}** | | |`);
    for (const row of report.rows) lines.push(`| ${escapeCell(row.measurement)} | ${escapeCell(row.result)} | ${escapeCell(row.detail)} |`);
  }
  return lines.join('\n');
}

/** Lines at warn level or worse in the servers' log files (the logs are not shown otherwise). */
function logProblems(logDir: string): string[] {
  const problems: string[] = [];
  for (const file of readdirSync(logDir)) {
    const counts = new Map<string, number>();
    for (const line of readFileSync(path.join(logDir, file), 'utf8').split('\n')) {
      if (!line) continue;
      try {
        const entry = JSON.parse(line) as { level?: number; msg?: string };
        if ((entry.level ?? 0) >= 40) counts.set(entry.msg ?? '?', (counts.get(entry.msg ?? '?') ?? 0) + 1);
      } catch {
        // a torn last line
      }
    }
    for (const [message, count] of counts) problems.push(`${file}: ${count} × "${message}"`);
  }
  return problems;
}

async function main(options: Options): Promise<void> {
  const argv = process.argv.slice(2);
  const out = (text = '') => process.stdout.write(`${text}\n`);

  const embeddedDir = mkdtempSync(path.join(os.tmpdir(), 'fleet-bench-pg-'));
  cleanups.push(async () => rmSync(embeddedDir, { recursive: true, force: true }));
  const postgres: PostgresServer = await findPostgresServer({
    embeddedDataDir: path.join(embeddedDir, 'data'),
    embeddedPort: await freePort(),
    log: progress,
  });
  cleanups.push(() => postgres.stop());
  const redisUrl = process.env.REDIS_URL ?? DEFAULT_REDIS_URL;
  const redis = await redisVersion(redisUrl);

  const databaseUrl = await createScratchDatabase(postgres.url);
  const databaseName = databaseNameOf(databaseUrl);
  progress(`scratch database ${databaseName}`);
  cleanups.push(async () => {
    if (options.keepDatabase) {
      progress(`kept database ${databaseName} (drop it with: DROP DATABASE ${databaseName}; and its fg_* tenant roles)`);
      return;
    }
    await dropTestDatabase(databaseUrl, postgres.url);
    progress(`dropped ${databaseName} and its tenant roles`);
  });
  const logDir = mkdtempSync(path.join(os.tmpdir(), 'fleet-bench-logs-'));
  cleanups.push(async () => rmSync(logDir, { recursive: true, force: true }));
  const run: BenchRun = {
    databaseUrl,
    redisUrl,
    jwtSecret: randomBytes(32).toString('hex'),
    logLevel: options.logLevel,
    logDir,
    serverEnv: options.serverEnv,
  };

  const machine = await machineInfo(databaseUrl);
  const { counts } = options;
  out('# fleet-graphql benchmark');
  out();
  out(`- Command: \`${commandLine(argv)}\``);
  out(`- Date: ${new Date().toISOString()} · commit ${machine.commit}`);
  out(`- Machine: ${machine.cpus}, ${machine.memory} RAM, ${machine.os}`);
  out(`- Node ${machine.node} · PostgreSQL ${machine.postgres} (${postgres.source}, max_connections ${machine.maxConnections}) · Redis ${redis}`);
  out(
    `- Mode: ${options.quick ? 'quick (scaled down)' : 'full'} · sections: ${options.sections.join(', ')} · load: ${counts.connections} connections, ` +
      `${counts.rounds} rounds × ${counts.durationSec} s after ${counts.warmupSec} s warm-up, medians over rounds; load generator (autocannon) in its own process`,
  );

  const app = await startBenchServer(run, 'tenant-server');
  cleanups.push(() => app.close());
  const { config } = app;
  out(
    `- Tenant server: in the bench process, NODE_ENV=production settings, rate limiting ${app.server.rateLimitStore}, logs at ${config.logLevel} (to a file), ` +
      `bcrypt cost ${config.auth.bcryptRounds}, tenant pool ${config.tenantClients.poolMax}/tenant, connection budget ${config.tenantClients.connectionBudget}, ` +
      `client cache ${config.tenantClients.cacheMax}, idle timeout ${config.tenantClients.idleTimeoutMs / 1000} s, migrate concurrency ${config.migrateConcurrency}` +
      (Object.keys(options.serverEnv).length ? ` · overrides: ${Object.entries(options.serverEnv).map(([key, value]) => `${key}=${value}`).join(' ')}` : ''),
  );
  out();
  if (app.server.rateLimitStore !== 'redis' && !('RATE_LIMIT_ENABLED' in options.serverEnv)) {
    throw new Error(`rate limiting should use Redis, got ${app.server.rateLimitStore}`);
  }

  const admin = await graphql<{ adminLogin: { accessToken: string } }>(
    app.url,
    'mutation Admin($email: String!, $password: String!) { adminLogin(email: $email, password: $password) { accessToken } }',
    { email: BENCH_ADMIN_EMAIL, password: BENCH_ADMIN_PASSWORD },
  );
  const fleet = new BenchFleet(app, admin.adminLogin.accessToken, {
    vehiclesPerTenant: counts.vehiclesPerTenant,
    bulkConcurrency: counts.bulkConcurrency,
    progress,
  });
  const monitor = new pg.Client({ connectionString: databaseUrl, application_name: 'fleet-bench-monitor' });
  await monitor.connect();
  cleanups.push(() => monitor.end());
  const ctx: BenchContext = {
    run,
    app,
    fleet,
    counts,
    monitor,
    databaseName,
    maxConnections: machine.maxConnections,
    shared: {},
    profileFile: options.profileFile,
    progress,
    atExit: (step) => cleanups.push(step),
  };

  const reports = new Map<Section, SectionReport>();
  for (const section of options.sections) {
    if (interrupted) return;
    progress(`== ${section}`);
    const sectionStart = performance.now();
    try {
      reports.set(section, await SECTION_RUNNERS[section](ctx));
    } catch (error) {
      if (interrupted) return;
      progress(`${section} failed: ${(error as Error).stack ?? String(error)}`);
      reports.set(section, { title: section, rows: [{ measurement: 'failed', result: '—', detail: (error as Error).message }], notes: [] });
    }
    progress(`${section} took ${ms(performance.now() - sectionStart)}`);
  }
  if (fleet.bulk.tenants >= 20) {
    const { bulk } = fleet;
    reports.set('provision', {
      title: reports.get('provision')?.title ?? 'Provisioning',
      notes: reports.get('provision')?.notes ?? [],
      rows: [
        ...(reports.get('provision')?.rows ?? []),
        {
          measurement: `Bulk provisioning in-process while loading (${bulk.concurrency} at a time)`,
          result: `${Math.round((bulk.tenants / bulk.ms) * 60_000)} tenants/min`,
          detail: `${bulk.tenants} tenants in ${(bulk.ms / 1000).toFixed(1)} s, ${ms(bulk.ms / bulk.tenants)} each on average (by-product of loading, not over HTTP)`,
        } satisfies Row,
      ],
    });
  }

  if (interrupted) return;
  const ordered = TABLE_ORDER.filter((section) => reports.has(section)).map((section) => reports.get(section) as SectionReport);
  out('## Results');
  out();
  out(renderTable(ordered));
  const notes = ordered.flatMap((report) => report.notes);
  await app.close(); // flushes its log
  const problems = logProblems(logDir);
  if (notes.length > 0 || problems.length > 0) {
    out();
    out('Notes:');
    for (const note of notes) out(`- ${note}`);
    for (const problem of problems) out(`- server log (warn or worse): ${problem}`);
  }
  out();
  out(`Total time ${((performance.now() - startedAt) / 1000 / 60).toFixed(1)} min.`);
}

let options: Options;
try {
  options = parseOptions(process.argv.slice(2));
} catch (error) {
  process.stderr.write(`${(error as Error).message}\n`);
  process.exit(2);
}
if (options.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
// Ctrl-C reaches this process twice (from the terminal, and relayed by tsx's parent process):
// every signal after the first is ignored until the clean-up is done.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (interrupted) return;
    interrupted = true;
    progress(`${signal}: cleaning up`);
    void cleanUp().finally(() => process.exit(130));
  });
}
main(options)
  .catch((error: unknown) => {
    if (interrupted) return;
    progress(`benchmark failed: ${(error as Error).stack ?? String(error)}`);
    process.exitCode = 1;
  })
  .finally(async () => {
    await cleanUp();
    // Lingering handles (pg pools' idle timers, Redis reconnects) must not keep the run alive.
    setTimeout(() => process.exit(), 1000).unref();
  });
