import { readFileSync } from 'node:fs';
import pg from 'pg';
import { latestMigrationName, type MigrationFolder } from './migration-files';
import { MigrationError, type MigrationOutcome, type MigrationTarget, type Migrator } from './migrator';
import { lockSchemaMigrations, NO_FILTERS, toMigrationList, withSchemaEngine } from './schema-engine';

/** What PostgreSQL said, reduced to a line without SQL: "division by zero", "P3009". */
export function summariseEngineError(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const code = (error as { code?: unknown }).code;
  const database = /Error querying the database: (?:ERROR: )?([^\n]*)/.exec(message)?.[1];
  const summary = (database ?? message.split('\n')[0] ?? 'unknown error').slice(0, 200);
  return typeof code === 'string' ? `${code}: ${summary}` : summary;
}

/**
 * Runs Prisma's schema engine (WebAssembly) in this process against one schema, through a
 * single-connection pool that is closed afterwards (which also releases the migrate lock).
 */
export class WasmMigrator implements Migrator {
  readonly kind = 'wasm';

  constructor(private readonly datamodelPath: string) {}

  async migrate(target: MigrationTarget, folder: MigrationFolder): Promise<MigrationOutcome> {
    const pool = new pg.Pool({ ...target.connection, max: 1 });
    pool.on('error', () => undefined); // a dropped idle connection surfaces on the next query
    try {
      const datamodel = readFileSync(this.datamodelPath, 'utf8');
      const outcome = await withSchemaEngine({ pool, schema: target.schema }, datamodel, async (engine) => {
        // A failed migration blocks every later run (Prisma's P3009). Our engine adapter runs
        // each migration script as one transaction, so a failed one applied nothing: marking it
        // rolled back (what `prisma migrate resolve --rolled-back` does) lets this run retry it.
        // Under the schema's lock: a concurrent run's migration in progress looks failed too.
        await lockSchemaMigrations(pool, target.schema);
        for (const migrationName of await this.failedMigrations(pool)) {
          await engine.markMigrationRolledBack({ migrationName });
        }
        try {
          const result = await engine.applyMigrations({ migrationsList: toMigrationList(folder), filters: NO_FILTERS });
          return result.appliedMigrationNames;
        } catch (error) {
          const failed = await this.failedMigrations(pool);
          throw new MigrationError(
            `migrating schema failed: ${summariseEngineError(error)}`,
            failed[0] ?? null,
            summariseEngineError(error),
          );
        }
      });
      // The schema's newest applied migration, which is newer than the folder's when another
      // (newer) release migrated it: recording the folder's would move the tenant's version back.
      return { applied: outcome, version: (await this.newestApplied(pool)) ?? latestMigrationName(folder) };
    } finally {
      await pool.end();
    }
  }

  private async newestApplied(pool: pg.Pool): Promise<string | null> {
    const rows = await pool.query<{ migration_name: string }>(
      `SELECT migration_name FROM _prisma_migrations
        WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL ORDER BY migration_name DESC LIMIT 1`,
    );
    return rows.rows[0]?.migration_name ?? null;
  }

  private async failedMigrations(pool: pg.Pool): Promise<string[]> {
    const exists = await pool.query<{ present: boolean }>(
      `SELECT to_regclass('_prisma_migrations') IS NOT NULL AS present`,
    );
    if (!exists.rows[0]?.present) return [];
    const rows = await pool.query<{ migration_name: string }>(
      `SELECT migration_name FROM _prisma_migrations
        WHERE finished_at IS NULL AND rolled_back_at IS NULL ORDER BY started_at`,
    );
    return rows.rows.map((row) => row.migration_name);
  }
}
