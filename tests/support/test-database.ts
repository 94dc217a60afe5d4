import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { databaseNameOf, urlWithDatabase } from '../../src/database/connection-url';
import { withClient } from './local-resources';

/*
 * Each test file gets its own database on the shared test server, and leaves nothing behind:
 * PostgreSQL roles outlive a dropped database, so tenant roles are dropped explicitly.
 */

const TEST_DATABASE_PREFIX = 'fgt_';

export async function createTestDatabase(serverUrl: string, runId: string): Promise<string> {
  const name = `${TEST_DATABASE_PREFIX}${runId}_${randomBytes(4).toString('hex')}`;
  await withClient(serverUrl, (client) => client.query(`CREATE DATABASE ${client.escapeIdentifier(name)}`));
  return urlWithDatabase(serverUrl, name);
}

/**
 * A pool on a test database. `pool.end()` resolves before its sockets have closed, so the
 * `DROP DATABASE ... WITH (FORCE)` of the teardown can terminate a client that is still closing
 * (57P01); without a listener that error is an uncaught exception blamed on the last test.
 * Any other error is still thrown.
 */
export function openTestPool(config: pg.PoolConfig): pg.Pool {
  const pool = new pg.Pool(config);
  pool.on('error', (error: Error & { code?: string }) => {
    if (error.code !== '57P01') throw error;
  });
  return pool;
}

/** Tenant roles whose comment names this database (see ensureTenantRole). */
async function rolesOfDatabase(client: pg.Client, database: string): Promise<string[]> {
  const rows = await client.query<{ rolname: string }>(
    `SELECT r.rolname FROM pg_roles r
       JOIN pg_shdescription d ON d.objoid = r.oid AND d.classoid = 'pg_authid'::regclass
      WHERE r.rolname LIKE 'fg\\_%' AND d.description LIKE 'fleet-graphql tenant role; %'
        AND split_part(d.description, '; database ', 2) = $1`,
    [database],
  );
  return rows.rows.map((row) => row.rolname);
}

export async function dropTestDatabase(databaseUrl: string, serverUrl: string): Promise<void> {
  const database = databaseNameOf(databaseUrl);
  await withClient(serverUrl, async (client) => {
    await client.query(`DROP DATABASE IF EXISTS ${client.escapeIdentifier(database)} WITH (FORCE)`);
    for (const role of await rolesOfDatabase(client, database)) {
      await client.query(`DROP ROLE IF EXISTS ${client.escapeIdentifier(role)}`);
    }
  });
}

/** After the run: databases of this run a crashed worker left, and roles of vanished databases. */
export async function dropOrphanedTestObjects(serverUrl: string, runId: string): Promise<void> {
  await withClient(serverUrl, async (client) => {
    const leftovers = await client.query<{ datname: string }>('SELECT datname FROM pg_database WHERE datname LIKE $1', [
      `${TEST_DATABASE_PREFIX}${runId}\\_%`,
    ]);
    for (const { datname } of leftovers.rows) {
      await client.query(`DROP DATABASE IF EXISTS ${client.escapeIdentifier(datname)} WITH (FORCE)`);
    }
    const orphans = await client.query<{ rolname: string }>(
      `SELECT r.rolname FROM pg_roles r
         JOIN pg_shdescription d ON d.objoid = r.oid AND d.classoid = 'pg_authid'::regclass
        WHERE r.rolname LIKE 'fg\\_%' AND d.description LIKE 'fleet-graphql tenant role; %'
          AND split_part(d.description, '; database ', 2) NOT IN (SELECT datname FROM pg_database)`,
    );
    for (const { rolname } of orphans.rows) {
      await client.query(`DROP ROLE IF EXISTS ${client.escapeIdentifier(rolname)}`).catch(() => undefined);
    }
  });
}
