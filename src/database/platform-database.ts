import { PrismaPg } from '@prisma/adapter-pg';
import pg from 'pg';
import { PLATFORM_MIGRATIONS_DIR } from '../config/paths';
import { PrismaClient as PlatformPrismaClient } from '../generated/prisma/platform/client';
import { readMigrationFolder } from '../migrations/migration-files';
import type { MigrationOutcome, Migrator } from '../migrations/migrator';
import { clientConfigFromUrl, databaseNameOf } from './connection-url';

export type PlatformPrisma = InstanceType<typeof PlatformPrismaClient>;
/** The client an interactive transaction's callback gets. */
export type PlatformTransaction = Parameters<Parameters<PlatformPrisma['$transaction']>[0]>[0];

/** Platform data lives here, never in `public`. */
export const PLATFORM_SCHEMA = 'platform';

export interface PlatformDatabase {
  url: string;
  databaseName: string;
  /** Raw pool for the few hot-path and DDL statements; every table name is schema-qualified. */
  pool: pg.Pool;
  prisma: PlatformPrisma;
  close(): Promise<void>;
}

export function connectPlatformDatabase(url: string, poolMax: number): PlatformDatabase {
  const pool = new pg.Pool({ ...clientConfigFromUrl(url), max: poolMax, application_name: 'fleet-graphql-platform' });
  pool.on('error', () => undefined); // an idle connection dropped; the next checkout reconnects
  const prisma = new PlatformPrismaClient({ adapter: new PrismaPg(pool, { schema: PLATFORM_SCHEMA }) });
  return {
    url,
    databaseName: databaseNameOf(url),
    pool,
    prisma,
    close: async () => {
      await prisma.$disconnect();
      await pool.end();
    },
  };
}

/** Creates the platform schema if needed and applies the platform migrations to it. */
export async function migratePlatformSchema(url: string, migrator: Migrator): Promise<MigrationOutcome> {
  const client = new pg.Client(clientConfigFromUrl(url));
  await client.connect();
  try {
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${PLATFORM_SCHEMA}`);
  } finally {
    await client.end();
  }
  return migrator.migrate(
    { connection: { ...clientConfigFromUrl(url), options: `-c search_path=${PLATFORM_SCHEMA}` }, schema: PLATFORM_SCHEMA },
    readMigrationFolder(PLATFORM_MIGRATIONS_DIR),
  );
}
