import type pg from 'pg';
import { quoteIdentifier } from '../tenancy/tenant-naming';

/**
 * Makes a tenant's AuditEvent table append-only for the tenant's own role: the server's role
 * takes ownership and leaves the tenant role SELECT and INSERT. A table's owner may always
 * change or drop it, and the tenant's role owns everything its migrations create, so revoking
 * privileges from it would be undone by the next GRANT it chose to run; ownership is what holds.
 * Runs after every migration of the tenant (they run as the tenant's role, which could not do
 * this itself). Idempotent. What remains (ADR 0010): the tenant role owns the schema, so it could
 * still DROP the whole table; no request path runs DDL.
 */
export async function sealAuditTable(ddl: pg.ClientBase, schemaName: string, roleName: string): Promise<void> {
  const table = `${quoteIdentifier(schemaName)}."AuditEvent"`;
  const role = quoteIdentifier(roleName);
  const found = await ddl.query<{ sealed: boolean }>(
    `SELECT tableowner = current_user AS sealed FROM pg_tables WHERE schemaname = $1 AND tablename = 'AuditEvent'`,
    [schemaName],
  );
  const state = found.rows[0];
  if (!state) return; // not migrated that far yet
  await ddl.query('BEGIN');
  try {
    if (!state.sealed) await ddl.query(`ALTER TABLE ${table} OWNER TO CURRENT_USER`);
    await ddl.query(`REVOKE ALL ON ${table} FROM ${role}`);
    await ddl.query(`GRANT SELECT, INSERT ON ${table} TO ${role}`);
    await ddl.query('COMMIT');
  } catch (error) {
    await ddl.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}
