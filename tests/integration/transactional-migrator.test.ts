import { createHash } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { TENANT_MIGRATIONS_DIR, TENANT_PRISMA_SCHEMA } from '../../src/config/paths';
import { latestMigrationName, readMigrationFolder } from '../../src/migrations/migration-files';
import { schemaMigrationLock } from '../../src/migrations/migration-lock';
import { MigrationError, type MigrationTarget } from '../../src/migrations/migrator';
import { NO_FILTERS, toMigrationList, withSchemaEngine } from '../../src/migrations/schema-engine';
import { TransactionalMigrator } from '../../src/migrations/transactional-migrator';
import { readTestServices } from '../support/services';
import { createTestDatabase, dropTestDatabase, openTestPool } from '../support/test-database';

/*
 * The in-process migrator against scratch schemas of a fresh database, as the superuser: what it
 * writes, that it is idempotent, transactional per migration, retries a failure, and agrees with
 * Prisma's own schema engine (WebAssembly build) about what is applied.
 */

const services = readTestServices();
const migrator = new TransactionalMigrator();
const shippedMigrations = readMigrationFolder(TENANT_MIGRATIONS_DIR).migrations;

let databaseUrl: string;
let admin: pg.Client;
const tempDirs: string[] = [];
let schemaCounter = 0;

beforeAll(async () => {
  databaseUrl = await createTestDatabase(services.postgresUrl, services.runId);
  admin = new pg.Client({ connectionString: databaseUrl });
  await admin.connect();
});

afterAll(async () => {
  await admin?.end();
  if (databaseUrl) await dropTestDatabase(databaseUrl, services.postgresUrl);
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

/** A new empty schema, and a migration target whose search_path resolves to it. */
async function scratchSchema(): Promise<MigrationTarget> {
  schemaCounter += 1;
  const schema = `scratch_${schemaCounter}`;
  await admin.query(`CREATE SCHEMA ${schema}`);
  return { schema, connection: { connectionString: databaseUrl, options: `-c search_path=${schema}` } };
}

/** A copy of migrations/tenant with extra migrations (name -> SQL) added after the shipped ones. */
function migrationsWith(extra: Record<string, string>): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'fg-migrations-'));
  tempDirs.push(dir);
  cpSync(TENANT_MIGRATIONS_DIR, dir, { recursive: true });
  for (const [name, sql] of Object.entries(extra)) writeMigration(dir, name, sql);
  return dir;
}

function writeMigration(dir: string, name: string, sql: string): void {
  mkdirSync(path.join(dir, name), { recursive: true });
  writeFileSync(path.join(dir, name, 'migration.sql'), sql);
}

interface MigrationRow {
  id: string;
  checksum: string;
  finished_at: Date | null;
  migration_name: string;
  logs: string | null;
  rolled_back_at: Date | null;
  started_at: Date;
  applied_steps_count: number;
}

async function migrationRows(schema: string): Promise<MigrationRow[]> {
  const result = await admin.query<MigrationRow>(`SELECT * FROM ${schema}._prisma_migrations ORDER BY started_at, migration_name`);
  return result.rows;
}

async function relationsIn(schema: string): Promise<string[]> {
  const result = await admin.query<{ relname: string }>(
    `SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') ORDER BY c.relname`,
    [schema],
  );
  return result.rows.map((row) => row.relname);
}

async function columnExists(schema: string, table: string, column: string): Promise<boolean> {
  const result = await admin.query(
    'SELECT 1 FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 AND column_name = $3',
    [schema, table, column],
  );
  return result.rowCount === 1;
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/** Prisma's own schema engine (its WebAssembly build) applying a folder: what `prisma migrate deploy` does. */
async function engineApply(target: MigrationTarget, dir: string): Promise<string[]> {
  const pool = openTestPool({ ...target.connection, max: 1 });
  try {
    return await withSchemaEngine({ pool, schema: target.schema }, readFileSync(TENANT_PRISMA_SCHEMA, 'utf8'), async (engine) => {
      const result = await engine.applyMigrations({ migrationsList: toMigrationList(readMigrationFolder(dir)), filters: NO_FILTERS });
      return result.appliedMigrationNames;
    });
  } finally {
    await pool.end();
  }
}

/** The bookkeeping table's definition: columns with their types, nullability and defaults, and its key. */
async function bookkeepingDefinition(schema: string): Promise<unknown[]> {
  const columns = await admin.query(
    `SELECT column_name, data_type, character_maximum_length, is_nullable, column_default
       FROM information_schema.columns WHERE table_schema = $1 AND table_name = '_prisma_migrations' ORDER BY ordinal_position`,
    [schema],
  );
  const key = await admin.query(
    `SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
      WHERE i.indrelid = to_regclass($1) AND i.indisprimary`,
    [`${schema}._prisma_migrations`],
  );
  return [...columns.rows, { primaryKey: key.rows.map((row: { attname: string }) => row.attname) }];
}

describe('TransactionalMigrator', () => {
  it('applies migrations/tenant to the target schema and writes standard _prisma_migrations rows', async () => {
    expect(shippedMigrations.length).toBeGreaterThan(0);
    const target = await scratchSchema();
    const publicBefore = await relationsIn('public');

    const outcome = await migrator.migrate(target, readMigrationFolder(TENANT_MIGRATIONS_DIR));
    expect(outcome.applied).toEqual(shippedMigrations.map((migration) => migration.name));
    expect(outcome.version).toBe(shippedMigrations.at(-1)?.name);

    expect(await relationsIn(target.schema)).toEqual(expect.arrayContaining(['Driver', 'FleetSettings', 'Vehicle', '_prisma_migrations']));
    expect(await relationsIn('public')).toEqual(publicBefore);

    const rows = await migrationRows(target.schema);
    expect(rows.map((row) => row.migration_name)).toEqual(shippedMigrations.map((migration) => migration.name));
    for (const [index, row] of rows.entries()) {
      const migration = shippedMigrations[index];
      expect(row.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
      expect(row.checksum).toBe(sha256(migration?.sql ?? ''));
      expect(row.finished_at).toBeInstanceOf(Date);
      expect(row.rolled_back_at).toBeNull();
      expect(row.logs).toBeNull();
      expect(row.applied_steps_count).toBe(1);
      expect((row.finished_at as Date).getTime()).toBeGreaterThanOrEqual(row.started_at.getTime());
    }
  });

  it('applies nothing on a second run, and leaves the bookkeeping as it was', async () => {
    const target = await scratchSchema();
    const folder = readMigrationFolder(TENANT_MIGRATIONS_DIR);
    await migrator.migrate(target, folder);
    const before = await migrationRows(target.schema);

    const again = await migrator.migrate(target, folder);
    expect(again).toEqual({ applied: [], version: latestMigrationName(folder) });
    expect(await migrationRows(target.schema)).toEqual(before);
  });

  it('keeps schemas of one database apart: each gets its own tables and bookkeeping', async () => {
    const first = await scratchSchema();
    const second = await scratchSchema();
    const folder = readMigrationFolder(TENANT_MIGRATIONS_DIR);
    await migrator.migrate(first, folder);
    expect(await relationsIn(second.schema)).toEqual([]);
    const outcome = await migrator.migrate(second, folder);
    expect(outcome.applied).toEqual(shippedMigrations.map((migration) => migration.name));
    expect(await migrationRows(second.schema)).toHaveLength(shippedMigrations.length);
    expect(await migrationRows(first.schema)).toHaveLength(shippedMigrations.length);
  });

  it('runs concurrent migrations of one schema one after the other: applied once, no error', async () => {
    const target = await scratchSchema();
    const folder = readMigrationFolder(TENANT_MIGRATIONS_DIR);
    const outcomes = await Promise.all([migrator.migrate(target, folder), migrator.migrate(target, folder), migrator.migrate(target, folder)]);
    const applied = outcomes.flatMap((outcome) => outcome.applied);
    expect(applied.sort()).toEqual(shippedMigrations.map((migration) => migration.name).sort());
    expect(outcomes.filter((outcome) => outcome.applied.length > 0)).toHaveLength(1);
    expect(await migrationRows(target.schema)).toHaveLength(shippedMigrations.length);
  });

  it("waits for another run's migration in progress instead of taking it for a failed one", async () => {
    const target = await scratchSchema();
    const folder = readMigrationFolder(TENANT_MIGRATIONS_DIR);
    await migrator.migrate(target, folder);
    // Another run holds the schema's migrate lock and has started a migration it has not finished.
    const other = new pg.Client({ connectionString: databaseUrl });
    await other.connect();
    try {
      await other.query('SELECT pg_advisory_lock($1, $2)', schemaMigrationLock(target.schema));
      await other.query(
        `INSERT INTO ${target.schema}._prisma_migrations (id, checksum, migration_name, started_at, applied_steps_count)
         VALUES ('in-progress', 'x', '29990101000000_in_progress', now(), 0)`,
      );
      const waiting = migrator.migrate(target, folder);
      await new Promise((resolve) => setTimeout(resolve, 300));
      await other.query(`UPDATE ${target.schema}._prisma_migrations SET finished_at = now(), applied_steps_count = 1 WHERE id = 'in-progress'`);
      await other.query('SELECT pg_advisory_unlock($1, $2)', schemaMigrationLock(target.schema));
      expect((await waiting).applied).toEqual([]);
    } finally {
      await other.end();
    }
    const row = (await migrationRows(target.schema)).find((migration) => migration.migration_name === '29990101000000_in_progress');
    expect(row?.rolled_back_at).toBeNull();
    expect(row?.finished_at).not.toBeNull();
  });

  it('applies a migration holding a plpgsql function with semicolons inside $$ and strings', async () => {
    const target = await scratchSchema();
    const name = '29990101000000_function_with_semicolons';
    const sql = [
      'CREATE FUNCTION "vehicle_label"(plate TEXT, make TEXT) RETURNS TEXT LANGUAGE plpgsql AS $$',
      'DECLARE',
      '  label TEXT;',
      'BEGIN',
      "  label := make || '; ' || plate;",
      '  RETURN label;',
      'END;',
      '$$;',
      '',
      `CREATE TABLE "Note" ("id" SERIAL PRIMARY KEY, "body" TEXT NOT NULL DEFAULT 'a;b');`,
      `INSERT INTO "Note" DEFAULT VALUES;`,
      '',
    ].join('\n');
    const folder = readMigrationFolder(migrationsWith({ [name]: sql }));

    const outcome = await migrator.migrate(target, folder);
    expect(outcome.applied).toEqual([...shippedMigrations.map((migration) => migration.name), name]);
    expect(outcome.version).toBe(name);

    const label = await admin.query<{ label: string }>(`SELECT ${target.schema}.vehicle_label('AB-123', 'Volvo') AS label`);
    expect(label.rows[0]?.label).toBe('Volvo; AB-123');
    const notes = await admin.query<{ body: string }>(`SELECT body FROM ${target.schema}."Note"`);
    expect(notes.rows).toEqual([{ body: 'a;b' }]);
    const row = (await migrationRows(target.schema)).find((migration) => migration.migration_name === name);
    expect(row?.finished_at).toBeInstanceOf(Date);
    expect(row?.applied_steps_count).toBe(1);
    expect(row?.checksum).toBe(sha256(sql));
  });

  it('applies nothing of a failing migration, and retries it once it is fixed', async () => {
    const target = await scratchSchema();
    const name = '29990101000000_half_then_fail';
    const broken = 'CREATE TABLE "Partial" ("id" INTEGER);\nALTER TABLE "Vehicle" ADD COLUMN "half" TEXT;\nSELECT 1/0;\n';
    const dir = migrationsWith({ [name]: broken });

    let failure: unknown;
    await migrator.migrate(target, readMigrationFolder(dir)).catch((error: unknown) => (failure = error));
    expect(failure).toBeInstanceOf(MigrationError);
    expect((failure as MigrationError).migration).toBe(name);
    expect((failure as MigrationError).reason).toMatch(/division by zero/);

    // The earlier migrations applied; of the failing one, nothing.
    expect(await relationsIn(target.schema)).toEqual(expect.arrayContaining(['Vehicle', 'Driver']));
    expect(await relationsIn(target.schema)).not.toContain('Partial');
    expect(await columnExists(target.schema, 'Vehicle', 'half')).toBe(false);
    const failedRow = (await migrationRows(target.schema)).filter((row) => row.migration_name === name);
    expect(failedRow).toHaveLength(1);
    expect(failedRow[0]?.finished_at).toBeNull();
    expect(failedRow[0]?.rolled_back_at).toBeNull();

    // Unfixed, the next run retries it (rather than refusing with P3009) and fails the same way.
    let second: unknown;
    await migrator.migrate(target, readMigrationFolder(dir)).catch((error: unknown) => (second = error));
    expect(second).toBeInstanceOf(MigrationError);
    expect((second as MigrationError).reason).toMatch(/division by zero/);
    expect(await relationsIn(target.schema)).not.toContain('Partial');

    // Fixed: applied, and the failed attempts stay recorded as rolled back.
    const fixed = 'CREATE TABLE "Partial" ("id" INTEGER);\nALTER TABLE "Vehicle" ADD COLUMN "half" TEXT;\n';
    writeMigration(dir, name, fixed);
    const outcome = await migrator.migrate(target, readMigrationFolder(dir));
    expect(outcome.applied).toEqual([name]);
    expect(outcome.version).toBe(name);
    expect(await relationsIn(target.schema)).toContain('Partial');
    expect(await columnExists(target.schema, 'Vehicle', 'half')).toBe(true);

    const rows = (await migrationRows(target.schema)).filter((row) => row.migration_name === name);
    const finished = rows.filter((row) => row.finished_at !== null);
    expect(finished).toHaveLength(1);
    expect(finished[0]?.rolled_back_at).toBeNull();
    expect(finished[0]?.checksum).toBe(sha256(fixed));
    const rolledBack = rows.filter((row) => row.finished_at === null);
    expect(rolledBack.length).toBe(2);
    expect(rolledBack.every((row) => row.rolled_back_at instanceof Date)).toBe(true);

    // And a further run has nothing left to do.
    expect((await migrator.migrate(target, readMigrationFolder(dir))).applied).toEqual([]);
  });

  it('reports the schema\'s newest migration as its version when the schema is ahead of the folder', async () => {
    const target = await scratchSchema();
    const name = '29990101000000_newer_release';
    await migrator.migrate(target, readMigrationFolder(migrationsWith({ [name]: 'ALTER TABLE "Vehicle" ADD COLUMN "newer" TEXT;\n' })));

    // An older release (the shipped folder only) finds nothing to do and must not report its
    // own, older newest migration as the schema's version.
    const older = await migrator.migrate(target, readMigrationFolder(TENANT_MIGRATIONS_DIR));
    expect(older).toEqual({ applied: [], version: name });
    expect(await columnExists(target.schema, 'Vehicle', 'newer')).toBe(true);
  });

  it('reports a failure without the SQL of the migration', async () => {
    const target = await scratchSchema();
    const name = '29990101000000_bad_reference';
    const dir = migrationsWith({ [name]: 'ALTER TABLE "NoSuchTable" ADD COLUMN "secret_column_name" TEXT;\n' });
    let failure: unknown;
    await migrator.migrate(target, readMigrationFolder(dir)).catch((error: unknown) => (failure = error));
    expect(failure).toBeInstanceOf(MigrationError);
    expect((failure as MigrationError).migration).toBe(name);
    expect((failure as MigrationError).message).not.toMatch(/ALTER TABLE|secret_column_name/);
    expect((failure as MigrationError).reason).not.toMatch(/ALTER TABLE|secret_column_name/);
  });
  it("agrees with Prisma's schema engine: the same bookkeeping table, and each finds the other's migrations applied", async () => {
    const byEngine = await scratchSchema();
    const byUs = await scratchSchema();
    const name = '29990101000000_add_vehicle_vin';
    const extended = migrationsWith({ [name]: 'ALTER TABLE "Vehicle" ADD COLUMN "vin" TEXT;\n' });

    // Prisma's engine first, then us: nothing left to do.
    expect(await engineApply(byEngine, TENANT_MIGRATIONS_DIR)).toEqual(shippedMigrations.map((migration) => migration.name));
    expect(await migrator.migrate(byEngine, readMigrationFolder(TENANT_MIGRATIONS_DIR))).toEqual({
      applied: [],
      version: latestMigrationName(readMigrationFolder(TENANT_MIGRATIONS_DIR)),
    });
    // Us, then Prisma's engine: nothing left to do, no failed migration (P3009), no complaint.
    expect((await migrator.migrate(byUs, readMigrationFolder(extended))).applied).toEqual([...shippedMigrations.map((migration) => migration.name), name]);
    expect(await engineApply(byUs, extended)).toEqual([]);
    // A migration we add on top of the engine's history, and the engine's view of it.
    expect((await migrator.migrate(byEngine, readMigrationFolder(extended))).applied).toEqual([name]);
    expect(await engineApply(byEngine, extended)).toEqual([]);

    expect(await bookkeepingDefinition(byUs.schema)).toEqual(await bookkeepingDefinition(byEngine.schema));
    const ours = await migrationRows(byUs.schema);
    const theirs = await migrationRows(byEngine.schema);
    expect(ours.map((row) => [row.migration_name, row.checksum, row.applied_steps_count, row.logs, row.rolled_back_at])).toEqual(
      theirs.map((row) => [row.migration_name, row.checksum, row.applied_steps_count, row.logs, row.rolled_back_at]),
    );
  });

  it('refuses a connection whose search_path resolves to another schema, creating nothing anywhere', async () => {
    const target = await scratchSchema();
    const elsewhere = await scratchSchema();
    const misdirected: MigrationTarget = { schema: target.schema, connection: { connectionString: databaseUrl, options: `-c search_path=${elsewhere.schema}` } };
    let failure: unknown;
    await migrator.migrate(misdirected, readMigrationFolder(TENANT_MIGRATIONS_DIR)).catch((error: unknown) => (failure = error));
    expect(failure).toBeInstanceOf(MigrationError);
    expect(await relationsIn(target.schema)).toEqual([]);
    expect(await relationsIn(elsewhere.schema)).toEqual([]);
  });
});
