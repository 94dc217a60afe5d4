import { createHash, randomUUID } from 'node:crypto';
import pg from 'pg';
import { latestMigrationName, type MigrationFolder } from './migration-files';
import { schemaMigrationLock } from './migration-lock';
import { MigrationError, type MigrationOutcome, type MigrationTarget, type Migrator } from './migrator';

/** What PostgreSQL said, reduced to a line without SQL: "42P07: relation "Note" already exists". */
export function summariseDatabaseError(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const code = (error as { code?: unknown }).code;
  const summary = (message.split('\n')[0] ?? 'unknown error').slice(0, 200);
  return typeof code === 'string' ? `${code}: ${summary}` : summary;
}

/**
 * Prisma's bookkeeping table exactly as its schema engine creates it on PostgreSQL, so that
 * `prisma migrate deploy`, Prisma's engine and this migrator all read what the others wrote.
 */
const CREATE_MIGRATIONS_TABLE = `CREATE TABLE _prisma_migrations (
    id                      VARCHAR(36) PRIMARY KEY NOT NULL,
    checksum                VARCHAR(64) NOT NULL,
    finished_at             TIMESTAMPTZ,
    migration_name          VARCHAR(255) NOT NULL,
    logs                    TEXT,
    rolled_back_at          TIMESTAMPTZ,
    started_at              TIMESTAMPTZ NOT NULL DEFAULT now(),
    applied_steps_count     INTEGER NOT NULL DEFAULT 0
)`;

interface MigrationRow {
  id: string;
  migration_name: string;
  finished: boolean;
  rolled_back: boolean;
}

/**
 * Applies a Prisma migrations folder the way `prisma migrate deploy` does (every migration of
 * the folder without a finished, not rolled back `_prisma_migrations` row, in name order) and
 * leaves the same rows, with one difference that makes it crash-safe: each migration's script
 * and its finished row commit in ONE transaction. PostgreSQL's DDL is transactional, so whenever
 * the process or its connection dies, a migration has applied entirely (its row says finished)
 * or not at all (no row). Prisma's engine records a migration as started, runs the script, then
 * marks the row finished in two more statements; dying between them left a row that looks
 * failed on a schema that holds the migration, which no retry could get past
 * (docs/decisions/0008-crash-safe-migrations.md).
 *
 * A failed migration is rolled back and then recorded as Prisma records one (unfinished, with
 * its error in `logs`), for `prisma migrate status` and operators; the next run marks it rolled
 * back and retries it, which is safe because such a row never stands for applied SQL here.
 *
 * Connected as the schema's owner, whose search_path resolves to the schema: the scripts name
 * tables unqualified, as Prisma writes them.
 */
export class TransactionalMigrator implements Migrator {
  readonly kind = 'in-process';

  async migrate(target: MigrationTarget, folder: MigrationFolder): Promise<MigrationOutcome> {
    // No statement timeout for migrations: a tenant role carries the request path's
    // (ensureTenantRole), and an index build on a large table may rightly take longer.
    const options = [target.connection.options, '-c statement_timeout=0'].filter(Boolean).join(' ');
    const client = new pg.Client({ ...target.connection, options });
    // A connection lost between two statements fails the next one; unheard, its 'error' event
    // would end the process.
    client.on('error', () => undefined);
    await client.connect();
    try {
      // Session lock, held until the connection ends: a concurrent run waits, then finds its
      // work done. Taken before anything is read, so another run's migration in progress is
      // never mistaken for a failed one.
      await client.query('SELECT pg_advisory_lock($1, $2)', schemaMigrationLock(target.schema));
      const rows = await this.readRows(client, target.schema);
      const unfinished = rows.filter((row) => !row.finished && !row.rolled_back).map((row) => row.id);
      if (unfinished.length > 0) {
        await client.query('UPDATE _prisma_migrations SET rolled_back_at = now() WHERE id = ANY($1::varchar[])', [unfinished]);
      }
      const done = new Set(rows.filter((row) => row.finished && !row.rolled_back).map((row) => row.migration_name));
      const applied: string[] = [];
      for (const migration of folder.migrations) {
        if (done.has(migration.name)) continue;
        await this.apply(client, migration);
        applied.push(migration.name);
        done.add(migration.name);
      }
      // The schema's newest migration, which is newer than the folder's when a newer release
      // migrated it: reporting the folder's would move the tenant's version back.
      return { applied, version: [...done].sort().at(-1) ?? latestMigrationName(folder) };
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  /** The bookkeeping rows; creates the table (as Prisma does) when the schema has none yet. */
  private async readRows(client: pg.Client, schema: string): Promise<MigrationRow[]> {
    const where = await client.query<{ schema: string | null; present: boolean }>(
      `SELECT current_schema() AS schema, to_regclass('_prisma_migrations') IS NOT NULL AS present`,
    );
    const current = where.rows[0];
    // Unqualified names go wherever the search_path points: refuse to migrate anything else.
    if (current?.schema !== schema) {
      throw new MigrationError(`the connection's search_path does not resolve to the target schema`, null, 'search_path mismatch');
    }
    if (!current.present) {
      await client.query(CREATE_MIGRATIONS_TABLE);
      return [];
    }
    const rows = await client.query<MigrationRow>(
      `SELECT id, migration_name, finished_at IS NOT NULL AS finished, rolled_back_at IS NOT NULL AS rolled_back
         FROM _prisma_migrations ORDER BY started_at`,
    );
    return rows.rows;
  }

  private async apply(client: pg.Client, migration: MigrationFolder['migrations'][number]): Promise<void> {
    const id = randomUUID();
    const checksum = createHash('sha256').update(migration.sql).digest('hex');
    try {
      await client.query('BEGIN');
      // No parameters: the simple protocol, which takes the whole script, semicolons inside
      // function bodies and strings included, and runs it inside this transaction.
      await client.query(migration.sql);
      await client.query(
        `INSERT INTO _prisma_migrations (id, checksum, migration_name, started_at, finished_at, applied_steps_count)
         VALUES ($1, $2, $3, now(), clock_timestamp(), 1)`,
        [id, checksum, migration.name],
      );
      await client.query('COMMIT');
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      const reason = summariseDatabaseError(error);
      // Best effort, after the rollback: what Prisma's engine leaves for a failed migration.
      await client
        .query(
          `INSERT INTO _prisma_migrations (id, checksum, migration_name, started_at, logs, applied_steps_count)
           VALUES ($1, $2, $3, now(), $4, 0)`,
          [id, checksum, migration.name, reason],
        )
        .catch(() => undefined);
      throw new MigrationError(`migration ${migration.name} failed: ${reason}`, migration.name, reason);
    }
  }
}
