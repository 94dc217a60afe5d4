import { cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { TENANT_MIGRATIONS_DIR } from '../../src/config/paths';

/*
 * Looks at what provisioning and migrations leave in PostgreSQL, as the test database's
 * superuser: schemas, roles, ownership, `_prisma_migrations` rows. Also builds copies of the
 * tenant migrations folder with extra migrations for a second server to run.
 */

export interface MigrationRow {
  id: string;
  checksum: string;
  migration_name: string;
  started_at: Date;
  finished_at: Date | null;
  rolled_back_at: Date | null;
  applied_steps_count: number;
}

export interface RoleInfo {
  rolname: string;
  rolcanlogin: boolean;
  rolinherit: boolean;
  rolsuper: boolean;
  rolcreatedb: boolean;
  rolcreaterole: boolean;
  rolreplication: boolean;
  rolbypassrls: boolean;
  rolconnlimit: number;
}

/** Names of the tenant migrations shipped in migrations/tenant, oldest first. */
export function shippedTenantMigrations(): string[] {
  return readdirSync(TENANT_MIGRATIONS_DIR)
    .filter((entry) => statSync(path.join(TENANT_MIGRATIONS_DIR, entry)).isDirectory())
    .sort();
}

/** A temporary copy of migrations/tenant plus `extra` (folder name -> SQL); remove with cleanup(). */
export function tenantMigrationsWith(extra: Record<string, string>): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'fg-tenant-migrations-'));
  cpSync(TENANT_MIGRATIONS_DIR, dir, { recursive: true });
  for (const [name, sql] of Object.entries(extra)) {
    mkdirSync(path.join(dir, name));
    writeFileSync(path.join(dir, name, 'migration.sql'), sql);
  }
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export class DatabaseInspector {
  private constructor(readonly client: pg.Client) {}

  static async connect(databaseUrl: string): Promise<DatabaseInspector> {
    const client = new pg.Client({ connectionString: databaseUrl });
    await client.connect();
    return new DatabaseInspector(client);
  }

  close(): Promise<void> {
    return this.client.end();
  }

  async role(roleName: string): Promise<RoleInfo | null> {
    const result = await this.client.query<RoleInfo>(
      `SELECT rolname, rolcanlogin, rolinherit, rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls, rolconnlimit
         FROM pg_roles WHERE rolname = $1`,
      [roleName],
    );
    return result.rows[0] ?? null;
  }

  /** The schema's owner, or null when there is no such schema. */
  async schemaOwner(schema: string): Promise<string | null> {
    const result = await this.client.query<{ owner: string }>(
      'SELECT pg_get_userbyid(nspowner) AS owner FROM pg_namespace WHERE nspname = $1',
      [schema],
    );
    return result.rows[0]?.owner ?? null;
  }

  /** Tables, indexes, sequences, views of a schema with their owners. */
  async relationOwners(schema: string): Promise<{ name: string; kind: string; owner: string }[]> {
    const result = await this.client.query<{ name: string; kind: string; owner: string }>(
      `SELECT c.relname AS name, c.relkind::text AS kind, pg_get_userbyid(c.relowner) AS owner
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = $1 ORDER BY c.relname`,
      [schema],
    );
    return result.rows;
  }

  /** Types created in a schema (enums and the row types of its tables) with their owners. */
  async typeOwners(schema: string): Promise<{ name: string; owner: string }[]> {
    const result = await this.client.query<{ name: string; owner: string }>(
      `SELECT t.typname AS name, pg_get_userbyid(t.typowner) AS owner
         FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE n.nspname = $1 ORDER BY t.typname`,
      [schema],
    );
    return result.rows;
  }

  async tableNames(schema: string): Promise<string[]> {
    return (await this.relationOwners(schema)).filter((relation) => relation.kind === 'r').map((relation) => relation.name);
  }

  /** Everything in a schema: relations, types, functions (to compare before and after). */
  async objectsIn(schema: string): Promise<string[]> {
    const result = await this.client.query<{ object: string }>(
      `SELECT 'class:' || c.relname AS object FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1
       UNION ALL
       SELECT 'type:' || t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE n.nspname = $1
       UNION ALL
       SELECT 'proc:' || p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = $1
       ORDER BY 1`,
      [schema],
    );
    return result.rows.map((row) => row.object);
  }

  async migrationRows(schema: string): Promise<MigrationRow[]> {
    const result = await this.client.query<MigrationRow>(
      `SELECT id, checksum, migration_name, started_at, finished_at, rolled_back_at, applied_steps_count
         FROM ${this.client.escapeIdentifier(schema)}._prisma_migrations ORDER BY started_at, migration_name`,
    );
    return result.rows;
  }

  async columnExists(schema: string, table: string, column: string): Promise<boolean> {
    const result = await this.client.query(
      'SELECT 1 FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 AND column_name = $3',
      [schema, table, column],
    );
    return result.rowCount === 1;
  }

  async count(sql: string, params: unknown[] = []): Promise<number> {
    const result = await this.client.query<{ count: string }>(sql, params);
    return Number(result.rows[0]?.count ?? 0);
  }

  /** Tenant schemas (t_*) in this database. */
  tenantSchemaCount(): Promise<number> {
    return this.count(`SELECT count(*) FROM pg_namespace WHERE nspname LIKE 't\\_%'`);
  }

  /** Tenant roles of one installation (server-wide). */
  installationRoleCount(installationId: string): Promise<number> {
    return this.count(`SELECT count(*) FROM pg_roles WHERE rolname LIKE $1`, [`fg\\_${installationId}\\_%`]);
  }

  tenantRowCount(): Promise<number> {
    return this.count('SELECT count(*) FROM platform."Tenant"');
  }

  /** The platform row, as stored. */
  async tenantRow(slug: string): Promise<{ id: string; status: string; lastError: string | null; migrationVersion: string | null } | null> {
    const result = await this.client.query<{ id: string; status: string; lastError: string | null; migrationVersion: string | null }>(
      'SELECT id, status::text, "lastError", "migrationVersion" FROM platform."Tenant" WHERE slug = $1',
      [slug],
    );
    return result.rows[0] ?? null;
  }
}
