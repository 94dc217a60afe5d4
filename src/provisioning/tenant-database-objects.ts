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
  /**
   * The role's statement_timeout in this database (MAX_EXECUTION_MS): the database cancels a
   * tenant statement that runs longer whatever connects as the role, a pooler included, which
   * passes no per-connection startup settings. Migrations turn it off for their own session.
   */
  statementTimeoutMs?: number;
}

/** The attributes of a tenant role: all of them on CREATE ROLE; a repair restores those that drifted. */
const TENANT_ROLE_ATTRIBUTES = [
  { column: 'rolcanlogin', wanted: true, clause: 'LOGIN' },
  { column: 'rolinherit', wanted: false, clause: 'NOINHERIT' },
  { column: 'rolsuper', wanted: false, clause: 'NOSUPERUSER' },
  { column: 'rolcreatedb', wanted: false, clause: 'NOCREATEDB' },
  { column: 'rolcreaterole', wanted: false, clause: 'NOCREATEROLE' },
  { column: 'rolreplication', wanted: false, clause: 'NOREPLICATION' },
  { column: 'rolbypassrls', wanted: false, clause: 'NOBYPASSRLS' },
] as const;

/**
 * Creates (or repairs) the tenant's login role: no inheritance, no privileges of its own
 * beyond its schema, a password derived from the server secret (sent as a SCRAM verifier), and
 * its schema as the default search_path in this database. Idempotent.
 */
export async function ensureTenantRole(client: pg.ClientBase, objects: TenantDatabaseObjects, secret: string): Promise<void> {
  const role = quoteIdentifier(objects.roleName);
  const verifier = client.escapeLiteral(scramSha256Verifier(tenantRolePassword(secret, objects.roleName)));
  const existing = await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [objects.roleName]);
  let created = false;
  if (existing.rowCount === 0) {
    const attributes = `${TENANT_ROLE_ATTRIBUTES.map((attribute) => attribute.clause).join(' ')} CONNECTION LIMIT ${TENANT_ROLE_CONNECTION_LIMIT}`;
    try {
      await client.query(`CREATE ROLE ${role} ${attributes} PASSWORD ${verifier}`);
      created = true;
    } catch (error) {
      // Another installation step created it between our check and CREATE: repair it below.
      if ((error as { code?: string }).code !== '42710') throw error;
    }
  }
  if (!created) await repairTenantRole(client, objects.roleName, verifier);
  await client.query(
    `COMMENT ON ROLE ${role} IS ${client.escapeLiteral(`fleet-graphql tenant role; installation ${objects.installationId}; database ${objects.databaseName}`)}`,
  );
  const database = client.escapeIdentifier(objects.databaseName);
  await client.query(`ALTER ROLE ${role} IN DATABASE ${database} SET search_path = ${quoteIdentifier(objects.schemaName)}`);
  if (objects.statementTimeoutMs !== undefined) {
    await client.query(`ALTER ROLE ${role} IN DATABASE ${database} SET statement_timeout = ${Math.trunc(objects.statementTimeoutMs)}`);
  }
  // Explicit, so revoking CONNECT from PUBLIC (restrictDatabaseConnections) keeps tenants working.
  // A server role that neither owns the database nor holds CONNECT WITH GRANT OPTION gets only a
  // WARNING here, and its tenants connect through PUBLIC's CONNECT, which it cannot revoke either.
  await withDatabaseAclLock(client, () => client.query(`GRANT CONNECT ON DATABASE ${database} TO ${role}`));
}

/**
 * Sets the password again and restores only the attributes that drifted. Naming them all would
 * fail for a server role that is no superuser: PostgreSQL refuses it any mention of SUPERUSER,
 * REPLICATION or BYPASSRLS, even NOSUPERUSER (and on 16+ of CREATEDB unless it has CREATEDB),
 * so every resumed createTenant and `migrateTenants(force: true)` would fail. A role that really
 * carries one of those attributes still makes the repair fail, loudly, as it should.
 */
async function repairTenantRole(client: pg.ClientBase, roleName: string, verifier: string): Promise<void> {
  const current = await client.query<Record<string, boolean | number>>(
    `SELECT ${TENANT_ROLE_ATTRIBUTES.map((attribute) => attribute.column).join(', ')}, rolconnlimit FROM pg_roles WHERE rolname = $1`,
    [roleName],
  );
  const row = current.rows[0];
  if (!row) throw new Error('tenant role vanished while being repaired');
  const drifted: string[] = TENANT_ROLE_ATTRIBUTES.filter((attribute) => row[attribute.column] !== attribute.wanted).map((attribute) => attribute.clause);
  if (row.rolconnlimit !== TENANT_ROLE_CONNECTION_LIMIT) drifted.push(`CONNECTION LIMIT ${TENANT_ROLE_CONNECTION_LIMIT}`);
  await client.query(`ALTER ROLE ${quoteIdentifier(roleName)} ${drifted.join(' ')} PASSWORD ${verifier}`);
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
 * superusers. Best effort: only the database's owner (or a superuser) can. Anyone else's REVOKE
 * is no error, only a WARNING that changes nothing, so the outcome is read back from
 * pg_database: true only when PUBLIC can no longer connect; otherwise the caller logs why.
 */
export async function restrictDatabaseConnections(client: pg.ClientBase, databaseName: string): Promise<boolean> {
  try {
    await withDatabaseAclLock(client, () => client.query(`REVOKE CONNECT ON DATABASE ${client.escapeIdentifier(databaseName)} FROM PUBLIC`));
    // A NULL datacl is the default ACL, under which PUBLIC may connect; otherwise an item
    // granted to PUBLIC (grantee 0, "=c/owner" as text) carrying CONNECT.
    const result = await client.query<{ public_can_connect: boolean }>(
      `SELECT d.datacl IS NULL
              OR EXISTS (SELECT 1 FROM aclexplode(d.datacl) a WHERE a.grantee = 0 AND a.privilege_type = 'CONNECT') AS public_can_connect
         FROM pg_database d WHERE d.datname = $1`,
      [databaseName],
    );
    return result.rows.length === 1 && result.rows[0]!.public_can_connect === false;
  } catch {
    return false;
  }
}

/**
 * Makes sure the current role may act as the tenant role: `CREATE SCHEMA ... AUTHORIZATION`
 * needs membership in it (PostgreSQL 16+: membership with the SET option), and dropping its
 * schema or `DROP OWNED BY` needs its privileges. A superuser needs nothing. A role with
 * CREATEROLE is not a member of the roles it creates on PostgreSQL 15, and on 16+ holds only
 * ADMIN OPTION on them (neither SET nor INHERIT, unless createrole_self_grant says otherwise),
 * which lets it grant them to itself: so it does. Idempotent: nothing is granted twice.
 *
 * The membership inherits (on 15, if the server's role has the default INHERIT attribute; on
 * 16+ explicitly), so the server's role holds every tenant role's privileges, tenant tables
 * included. That gives it nothing new: it is the platform's owner, it creates these roles and
 * sets their passwords, so it could log in as any of them anyway. Isolation is between tenant
 * roles, and that is unchanged: a tenant role is still a member of nothing, so it can neither
 * inherit nor SET ROLE to the server's role or another tenant's.
 */
async function ensureCanActAsRole(client: pg.ClientBase, roleName: string): Promise<void> {
  const self = await client.query<{ rolsuper: boolean; version: number }>(
    `SELECT rolsuper, current_setting('server_version_num')::int AS version FROM pg_roles WHERE rolname = current_user`,
  );
  const { rolsuper, version } = self.rows[0] ?? { rolsuper: false, version: 0 };
  if (rolsuper) return;
  const role = quoteIdentifier(roleName);
  if (version >= 160000) {
    const can = await client.query<{ ok: boolean }>(
      `SELECT pg_has_role(current_user, $1::name, 'SET') AND pg_has_role(current_user, $1::name, 'USAGE') AS ok`,
      [roleName],
    );
    if (!can.rows[0]?.ok) await client.query(`GRANT ${role} TO CURRENT_USER WITH INHERIT TRUE, SET TRUE`);
  } else {
    const member = await client.query<{ ok: boolean }>(`SELECT pg_has_role(current_user, $1::name, 'MEMBER') AS ok`, [roleName]);
    if (!member.rows[0]?.ok) await client.query(`GRANT ${role} TO CURRENT_USER`);
  }
}

/** The tenant's schema, owned by its role; nobody else gets any privilege on it. Idempotent. */
export async function ensureTenantSchema(client: pg.ClientBase, objects: TenantDatabaseObjects): Promise<void> {
  const schema = quoteIdentifier(objects.schemaName);
  await ensureCanActAsRole(client, objects.roleName);
  await client.query(`CREATE SCHEMA IF NOT EXISTS ${schema} AUTHORIZATION ${quoteIdentifier(objects.roleName)}`);
  await client.query(`REVOKE ALL ON SCHEMA ${schema} FROM PUBLIC`);
}

/** Removes a tenant's schema and role (used by tests and by clean-up of a deleted installation). */
export async function dropTenantObjects(client: pg.ClientBase, objects: Pick<TenantDatabaseObjects, 'roleName' | 'schemaName'>): Promise<void> {
  const role = await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [objects.roleName]);
  // Dropping the role's schema and DROP OWNED BY both need the role's privileges.
  if (role.rowCount) await ensureCanActAsRole(client, objects.roleName);
  await client.query(`DROP SCHEMA IF EXISTS ${quoteIdentifier(objects.schemaName)} CASCADE`);
  if (role.rowCount) {
    await client.query(`DROP OWNED BY ${quoteIdentifier(objects.roleName)}`);
    await client.query(`DROP ROLE ${quoteIdentifier(objects.roleName)}`);
  }
}
