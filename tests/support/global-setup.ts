import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Redis from 'ioredis';
import { startEmbeddedPostgres } from '../../src/database/embedded-postgres';
import { findPostgresServer } from '../../src/database/postgres-discovery';
import { freePort } from './local-resources';

async function assertRedisReachable(url: string): Promise<void> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, connectTimeout: 2000, retryStrategy: () => null });
  try {
    await redis.connect();
    await redis.ping();
  } catch (error) {
    throw new Error(`Redis is not reachable at ${url} (set REDIS_URL): ${(error as Error).message}`);
  } finally {
    redis.disconnect();
  }
}

export default async function globalSetup(): Promise<void> {
  const runId = randomBytes(3).toString('hex');
  process.env.FLEET_TEST_RUN_ID = runId;
  const embeddedDataDir = mkdtempSync(path.join(os.tmpdir(), 'fleet-graphql-test-pg-'));
  const postgres = await findPostgresServer({
    embeddedDataDir: path.join(embeddedDataDir, 'data'),
    embeddedPort: await freePort(),
    log: (message) => process.stdout.write(`\n${message}\n`),
  });
  // A second PostgreSQL server, for tenants placed on (and moved to) another cluster: the
  // embedded package's own binaries, on a port of its own, whatever the first one is.
  const secondDataDir = mkdtempSync(path.join(os.tmpdir(), 'fleet-graphql-test-pg2-'));
  const second = await startEmbeddedPostgres({ dataDir: path.join(secondDataDir, 'data'), port: await freePort() });
  (globalThis as { __fleetSecondPostgres?: typeof second }).__fleetSecondPostgres = second;
  process.env.FLEET_TEST_SECOND_POSTGRES_URL = second.url;
  process.env.FLEET_TEST_SECOND_POSTGRES_DIR = secondDataDir;
  const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  await assertRedisReachable(redisUrl);
  (globalThis as { __fleetPostgres?: typeof postgres }).__fleetPostgres = postgres;
  process.env.FLEET_TEST_POSTGRES_URL = postgres.url;
  process.env.FLEET_TEST_REDIS_URL = redisUrl;
  if (postgres.source === 'embedded') process.env.FLEET_TEST_EMBEDDED_DIR = embeddedDataDir;
  else rmSync(embeddedDataDir, { recursive: true, force: true });
  process.stdout.write(`\ntest services: PostgreSQL (${postgres.source}), a second PostgreSQL (embedded), Redis ${redisUrl}\n`);
}
