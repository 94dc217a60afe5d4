import path from 'node:path';
import pino from 'pino';
import { loadConfig, type Config } from '../../src/config/config';
import { startServer, type RunningServer } from '../../src/server';
import type { TenantClientPool, TenantDatabaseRef, TenantLease } from '../../src/tenancy/tenant-client-pool';

/*
 * The product's server as the benchmark runs it: production configuration (NODE_ENV=production
 * defaults: no introspection, no landing page, field suggestions blocked), rate limiting on with
 * Redis, bcrypt at its default cost, logs at `info` as in production but written to a file
 * instead of the terminal.
 */

export const BENCH_ADMIN_EMAIL = 'bench-admin@bench.example.com';
export const BENCH_ADMIN_PASSWORD = 'bench-admin-password-0123';

export interface BenchRun {
  databaseUrl: string;
  redisUrl: string;
  jwtSecret: string;
  logLevel: string;
  logDir: string;
  /** --set overrides, applied to every instance (an instance's own settings win). */
  serverEnv: Record<string, string>;
}

export interface BenchServer {
  server: RunningServer;
  config: Config;
  url: string;
  /** Leases taken since start, and how many of them had to build a new tenant client. */
  leases: { total: number; cold: number };
  close(): Promise<void>;
}

export async function startBenchServer(
  run: BenchRun,
  name: string,
  options: { env?: Record<string, string>; tenantMigrationsDir?: string } = {},
): Promise<BenchServer> {
  const config = loadConfig({
    NODE_ENV: 'production',
    DATABASE_URL: run.databaseUrl,
    REDIS_URL: run.redisUrl,
    PORT: '0',
    HOST: '127.0.0.1',
    JWT_SECRET: run.jwtSecret,
    ADMIN_EMAIL: BENCH_ADMIN_EMAIL,
    ADMIN_PASSWORD: BENCH_ADMIN_PASSWORD,
    // Tokens are signed once, at load time, and reused by every section of a long run.
    ACCESS_TOKEN_TTL_SECONDS: String(4 * 3600),
    // Loading creates and signs in owners far faster than people do (loading is not measured);
    // the noisy section's server keeps the production budget of password checks.
    PASSWORD_CHECKS_PER_SECOND: '100000',
    PASSWORD_CHECKS_BURST: '100000',
    LOG_LEVEL: run.logLevel,
    ...run.serverEnv,
    ...options.env,
  });
  const logger = pino(
    { level: config.logLevel, base: { service: 'fleet-graphql', instance: name } },
    pino.destination({ dest: path.join(run.logDir, `${name}.log`), mkdir: true, sync: false }),
  );
  const server = await startServer({
    config: { ...config, databaseUrl: run.databaseUrl },
    logger,
    ...(options.tenantMigrationsDir ? { tenantMigrationsDir: options.tenantMigrationsDir } : {}),
  });
  const leases = countLeases(server.services.tenantClients);
  return {
    server,
    config,
    url: `http://127.0.0.1:${server.port}/graphql`,
    leases,
    close: async () => {
      await server.close();
      await new Promise<void>((resolve) => logger.flush(() => resolve()));
    },
  };
}

/** Counts leases, and cold ones (no cached client yet), by wrapping this instance's lease(). */
function countLeases(pool: TenantClientPool): { total: number; cold: number } {
  const counts = { total: 0, cold: 0 };
  const lease = pool.lease.bind(pool);
  pool.lease = (tenant: TenantDatabaseRef): TenantLease => {
    counts.total += 1;
    if (!pool.isCached(tenant.id)) counts.cold += 1;
    return lease(tenant);
  };
  return counts;
}
