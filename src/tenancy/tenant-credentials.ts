import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import type pg from 'pg';
import { clientConfigFromUrl } from '../database/connection-url';

/*
 * Each tenant role logs in with its own password, derived from a server secret and the role
 * name: nothing to store, and a leaked password opens one tenant's schema only.
 */

export function tenantRolePassword(secret: string, roleName: string): string {
  return createHmac('sha256', secret).update(`tenant-role:${roleName}`).digest('base64url');
}

/**
 * A SCRAM-SHA-256 verifier (RFC 5802 / 7677) in PostgreSQL's storage format. Handing PostgreSQL
 * the verifier instead of the password keeps the password out of SQL text, and so out of the
 * server's statement logs. Node's crypto has the primitives; no library formats PostgreSQL's
 * verifier string.
 */
export function scramSha256Verifier(password: string, salt = randomBytes(16), iterations = 4096): string {
  const salted = pbkdf2Sync(password, salt, iterations, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = createHash('sha256').update(clientKey).digest();
  const serverKey = createHmac('sha256', salted).update('Server Key').digest();
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}

/** Connection settings for a tenant role: the platform's server and database, the tenant's login. */
export function tenantConnectionConfig(databaseUrl: string, roleName: string, secret: string): pg.ClientConfig {
  const base = clientConfigFromUrl(databaseUrl);
  return {
    host: base.host,
    port: base.port,
    database: base.database,
    ssl: base.ssl,
    user: roleName,
    password: tenantRolePassword(secret, roleName),
    application_name: 'fleet-graphql-tenant',
  };
}
