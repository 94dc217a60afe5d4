import type pg from 'pg';
import { quoteIdentifier } from '../tenancy/tenant-naming';
import { scramSha256Verifier, tenantRolePassword } from '../tenancy/tenant-credentials';

/** A tenant role may open this many connections at once: its pool, a migrator and some slack. */
export const TENANT_ROLE_CONNECTION_LIMIT = 20;

export interface TenantDatabaseObjects {
  roleName: string;
  schemaName: string;
  databaseName: string;
  installationId: string;
}

/**
 * Creates (or repairs) the tenant's login role: no inheritance, no privileges of its own
 * beyond its schema, a password derived from the server secret (sent as a SCRAM verifier), and
 * its schema as the default search_path in this database. Idempotent.
 */
export async function ensureTenantRole(client: pg.ClientBase, objects: TenantDatabaseObjects, secret: string): Promise<void> {
  const role = quoteIdentifier(objects.roleName);
  const verifier = client.escapeLiteral(scramSha256Verifier(tenantRolePassword(secret, objects.roleName)));
  const existing = await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [objects.roleName]);
  const attributes = `LOGIN NOINHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS CONNECTION LIMIT ${TENANT_ROLE_CONNECTION_LIMIT}`;
  if (existing.rowCount === 0) {
    try {
      await client.query(`CREATE ROLE ${role} ${attributes} PASSWORD ${verifier}`);
    } catch (error) {
      // Another installation step created it between our check and CREATE: repair it below.
      if ((error as { code?: string }).code !== '42710') throw error;
      await client.query(`ALTER ROLE ${role} ${attributes} PASSWORD ${verifier}`);
    }
  } else {
    await client.query(`ALTER ROLE ${role} ${attributes} PASSWORD ${verifier}`);
  }
  await client.query(
    `COMMENT ON ROLE ${role} IS ${client.escapeLiteral(`fleet-graphql tenant role; installation ${objects.installationId}; database ${objects.databaseName}`)}`,
  );
  const database = client.escapeIdentifier(objects.databaseName);
  await client.query(`ALTER ROLE ${role} IN DATABASE ${database} SET search_path = ${quoteIdentifier(objects.schemaName)}`);
  // Explicit, so revoking CONNECT from PUBLIC (restrictDatabaseConnections) keeps tenants working.
  await withDatabaseAclLock(client, () => client.query(`GRANT CONNECT ON DATABASE ${database} TO ${role}`));
}

/** Advisory-lock key (class, key) for changes to the database's ACL. */
const DATABASE_ACL_LOCK = [0x46470002, 1] as const;

/**
 * GRANT/REVOKE ON DATABASE rewrite the database's single pg_database row, and PostgreSQL fails
 * the second of two concurrent rewrites with "tuple concurrently updated" (XX000): parallel
 * provisioning or a concurrent migrateTenants run lost tenants to it. One transaction at a time,
 * holding an advisory lock until commit, so the next one sees the committed row.
 */
async function withDatabaseAclLock(client: pg.ClientBase, work: () => Promise<unknown>): Promise<void> {
  await client.query('BEGIN');
  try {
    await client.query('SELECT pg_advisory_xact_lock($1, $2)', [...DATABASE_ACL_LOCK]);
    await work();
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}

/**
 * PostgreSQL lets every role connect to every database by default. Taking that from PUBLIC on
 * our database leaves it to its owner, the roles granted explicitly (tenant roles) and
 * superusers. Best effort: only the database owner may do it; otherwise the caller logs why.
 */
export async function restrictDatabaseConnections(client: pg.ClientBase, databaseName: string): Promise<boolean> {
  try {
    await withDatabaseAclLock(client, () => client.query(`REVOKE CONNECT ON DATABASE ${client.escapeIdentifier(databaseName)} FROM PUBLIC`));
    return true;
  } catch {
    return false;
  }
}

/** The tenant's schema, owned by its role; nobody else gets any privilege on it. Idempotent. */
export async function ensureTenantSchema(client: pg.ClientBase, objects: TenantDatabaseObjects): Promise<void> {
  const schema = quoteIdentifier(objects.schemaName);
  await client.query(`CREATE SCHEMA IF NOT EXISTS ${schema} AUTHORIZATION ${quoteIdentifier(objects.roleName)}`);
  await client.query(`REVOKE ALL ON SCHEMA ${schema} FROM PUBLIC`);
}

/** Removes a tenant's schema and role (used by tests and by clean-up of a deleted installation). */
export async function dropTenantObjects(client: pg.ClientBase, objects: Pick<TenantDatabaseObjects, 'roleName' | 'schemaName'>): Promise<void> {
  await client.query(`DROP SCHEMA IF EXISTS ${quoteIdentifier(objects.schemaName)} CASCADE`);
  const role = await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [objects.roleName]);
  if (role.rowCount) {
    await client.query(`DROP OWNED BY ${quoteIdentifier(objects.roleName)}`);
    await client.query(`DROP ROLE ${quoteIdentifier(objects.roleName)}`);
  }
}
