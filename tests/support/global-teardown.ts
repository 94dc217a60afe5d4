import { rmSync } from 'node:fs';
import type { PostgresServer } from '../../src/database/postgres-discovery';
import { dropOrphanedTestObjects } from './test-database';
import { readTestServices } from './services';

export default async function globalTeardown(): Promise<void> {
  const services = readTestServices();
  await dropOrphanedTestObjects(services.postgresUrl, services.runId);
  const postgres = (globalThis as { __fleetPostgres?: PostgresServer }).__fleetPostgres;
  await postgres?.stop();
  await (globalThis as { __fleetSecondPostgres?: { stop(): Promise<void> } }).__fleetSecondPostgres?.stop();
  const secondDir = process.env.FLEET_TEST_SECOND_POSTGRES_DIR;
  if (secondDir) rmSync(secondDir, { recursive: true, force: true });
  const embeddedDir = process.env.FLEET_TEST_EMBEDDED_DIR;
  if (embeddedDir) rmSync(embeddedDir, { recursive: true, force: true });
}
