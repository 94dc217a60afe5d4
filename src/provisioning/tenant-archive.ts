import { createHmac, timingSafeEqual } from 'node:crypto';
import { writeAudit } from '../audit/audit-log';
import { assertTenantWithinQuotas } from '../quotas/quota-guard';
import type { AuditActor } from '../audit/audit-entry';
import { AppError, badInput, conflict, ErrorCode } from '../errors/app-error';
import { Prisma } from '../generated/prisma/tenant/client';
import type { TenantClientPool } from '../tenancy/tenant-client-pool';
import type { TenantRecord } from '../tenancy/tenant-directory';

/*
 * A tenant's data as an archive: JSON lines, a header (format, version, the tenant's migration
 * version), then one line per row ({"table", "row"}), tables in foreign-key order, then an end
 * line with the count per table. Written from one REPEATABLE READ transaction (a consistent
 * snapshot whatever runs meanwhile), read back by the import into an empty tenant at the same
 * migration version, in one transaction: an import cut anywhere leaves the tenant empty, and
 * running it again finishes it. Platform data (members, API keys, persisted operations) is not
 * in it: accounts and secrets are the platform's, and a restored tenant gets its own owner.
 *
 * The end line carries an HMAC-SHA256 of every line before it, keyed from the installation's
 * secret: the import inserts rows as they are (the application's input checks are not run on
 * them), so it takes only archives this installation (or one sharing its TENANT_DB_SECRET)
 * wrote, unaltered.
 */

export const ARCHIVE_FORMAT = 'fleet-graphql-tenant-export';
export const ARCHIVE_VERSION = 1;

/** Every table of a tenant schema, parents before children. */
export const ARCHIVE_TABLES = ['FleetSettings', 'Driver', 'Vehicle', 'Trip', 'TripTransition', 'Stop', 'TripNote', 'MaintenanceRecord', 'RecordChange', 'AuditEvent'] as const;
export type ArchiveTable = (typeof ARCHIVE_TABLES)[number];

const PAGE = 1_000;
const INSERT_BATCH = 500;
/** An export or import holds one tenant connection and one transaction this long at most. */
const ARCHIVE_TRANSACTION_MS = 10 * 60 * 1000;

export interface ArchiveHeader {
  format: typeof ARCHIVE_FORMAT;
  version: typeof ARCHIVE_VERSION;
  migrationVersion: string | null;
  tenant: { slug: string; name: string; plan: string };
  exportedAt: string;
  tables: readonly ArchiveTable[];
}

const table = (name: ArchiveTable) => Prisma.raw(`"${name}"`);

/** The key archives are signed with, derived from the installation's secret. */
export function archiveSigningKey(secret: string): Buffer {
  return createHmac('sha256', secret).update('fleet-graphql tenant archive v1').digest();
}

/** Writes the archive, line by line, through `write` (which waits while the reader is behind). */
export async function exportTenant(
  tenantClients: TenantClientPool,
  tenant: TenantRecord,
  signingKey: Buffer,
  writeLine: (line: string) => Promise<void>,
): Promise<Record<ArchiveTable, number>> {
  const counts = Object.fromEntries(ARCHIVE_TABLES.map((name) => [name, 0])) as Record<ArchiveTable, number>;
  const signature = createHmac('sha256', signingKey);
  const write = (line: string) => {
    signature.update(line);
    return writeLine(line);
  };
  const lease = tenantClients.lease(tenant);
  try {
    await lease.db.$transaction(
      async (tx) => {
        const header: ArchiveHeader = {
          format: ARCHIVE_FORMAT,
          version: ARCHIVE_VERSION,
          migrationVersion: tenant.migrationVersion,
          tenant: { slug: tenant.slug, name: tenant.name, plan: tenant.plan },
          exportedAt: new Date().toISOString(),
          tables: ARCHIVE_TABLES,
        };
        await write(`${JSON.stringify(header)}\n`);
        for (const name of ARCHIVE_TABLES) {
          // Keyset pages by id (FleetSettings' id is an integer, the others UUIDs: both order).
          let after: unknown = null;
          for (;;) {
            const rows = await tx.$queryRaw<Record<string, unknown>[]>(
              after === null
                ? Prisma.sql`SELECT * FROM ${table(name)} ORDER BY "id" LIMIT ${PAGE}`
                : Prisma.sql`SELECT * FROM ${table(name)} WHERE "id" > ${after} ORDER BY "id" LIMIT ${PAGE}`,
            );
            for (const row of rows) await write(`${JSON.stringify({ table: name, row })}\n`);
            counts[name] += rows.length;
            if (rows.length < PAGE) break;
            after = rows.at(-1)?.id;
          }
        }
        await writeLine(`${JSON.stringify({ end: true, counts, signature: signature.digest('hex') })}\n`);
      },
      { isolationLevel: Prisma.TransactionIsolationLevel.RepeatableRead, timeout: ARCHIVE_TRANSACTION_MS, maxWait: 10_000 },
    );
  } finally {
    lease.release();
  }
  return counts;
}

/** Rows per table an export would write now (a dry run's answer), read as the tenant's role. */
export async function countArchiveRows(tenantClients: TenantClientPool, tenant: TenantRecord): Promise<Record<ArchiveTable, number>> {
  const lease = tenantClients.lease(tenant);
  try {
    const columns = Prisma.join(ARCHIVE_TABLES.map((name) => Prisma.sql`(SELECT count(*)::int FROM ${table(name)}) AS ${Prisma.raw(`"${name}"`)}`));
    const [row] = await lease.db.$queryRaw<Record<ArchiveTable, number>[]>`SELECT ${columns}`;
    return Object.fromEntries(ARCHIVE_TABLES.map((name) => [name, row?.[name] ?? 0])) as Record<ArchiveTable, number>;
  } finally {
    lease.release();
  }
}

const invalid = (message: string) => new AppError(ErrorCode.BAD_REQUEST, `Not a tenant archive this server can read: ${message}`);

/**
 * Reads an archive into `tenant`, which must hold no data yet (only its seeded settings) and be
 * at the archive's migration version. All or nothing.
 */
export async function importTenant(
  tenantClients: TenantClientPool,
  tenant: TenantRecord,
  signingKey: Buffer,
  lines: AsyncIterable<string>,
  by: AuditActor,
): Promise<Record<ArchiveTable, number>> {
  const signature = createHmac('sha256', signingKey);
  const counts = Object.fromEntries(ARCHIVE_TABLES.map((name) => [name, 0])) as Record<ArchiveTable, number>;
  const lease = tenantClients.lease(tenant);
  try {
    await lease.db.$transaction(
      async (tx) => {
        // Two imports into one tenant: the second waits, then finds data and answers CONFLICT.
        await tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtext('tenant-import:' || current_schema()))`;
        for (const name of ARCHIVE_TABLES) {
          if (name === 'FleetSettings' || name === 'AuditEvent') continue;
          const [row] = await tx.$queryRaw<{ found: boolean }[]>`SELECT EXISTS (SELECT 1 FROM ${table(name)}) AS found`;
          if (row?.found) throw conflict(`The tenant already holds data (${name}); import only into a new, empty tenant`, 'slug');
        }
        let header: ArchiveHeader | null = null;
        let ended = false;
        let pending: { name: ArchiveTable; rows: unknown[] } | null = null;
        const flush = async () => {
          if (!pending || pending.rows.length === 0) return;
          // The seeded settings make way for the archive's.
          if (pending.name === 'FleetSettings' && counts.FleetSettings === 0) await tx.$executeRaw`DELETE FROM "FleetSettings"`;
          await tx.$executeRaw`INSERT INTO ${table(pending.name)} SELECT * FROM jsonb_populate_recordset(NULL::${table(pending.name)}, ${JSON.stringify(pending.rows)}::jsonb)`;
          counts[pending.name] += pending.rows.length;
          pending = { name: pending.name, rows: [] };
        };
        let order = 0;
        for await (const text of lines) {
          if (text.trim() === '') continue;
          if (ended) throw invalid('lines after the end line');
          let line: unknown;
          try {
            line = JSON.parse(text);
          } catch {
            throw invalid('a line is not JSON');
          }
          if (line === null || typeof line !== 'object' || Array.isArray(line)) throw invalid('a line is not a JSON object');
          if ((line as { end?: unknown }).end !== true) signature.update(`${text}\n`);
          if (header === null) {
            const candidate = line as Partial<ArchiveHeader>;
            if (candidate.format !== ARCHIVE_FORMAT || candidate.version !== ARCHIVE_VERSION) throw invalid(`the first line must name format ${ARCHIVE_FORMAT}, version ${ARCHIVE_VERSION}`);
            const from = candidate.tenant as { slug?: unknown } | undefined;
            if (typeof from?.slug !== 'string' || from.slug.length > 100 || typeof candidate.exportedAt !== 'string' || candidate.exportedAt.length > 40) {
              throw invalid('the header must name the tenant it came from and when');
            }
            if (candidate.migrationVersion !== tenant.migrationVersion) {
              throw conflict(`The archive is at migration ${String(candidate.migrationVersion)}, the tenant at ${String(tenant.migrationVersion)}: migrate the older one first`, 'migrationVersion');
            }
            header = candidate as ArchiveHeader;
            continue;
          }
          const entry = line as { table?: unknown; row?: unknown; end?: unknown; counts?: unknown; signature?: unknown };
          if (entry.end === true) {
            await flush();
            const expected = Buffer.from(signature.digest('hex'));
            const given = Buffer.from(typeof entry.signature === 'string' ? entry.signature : '');
            if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
              throw invalid('its signature does not match: it was changed, or written by another installation (another TENANT_DB_SECRET)');
            }
            if (JSON.stringify(entry.counts) !== JSON.stringify(counts)) throw invalid('its end line counts other rows than it holds');
            ended = true;
            continue;
          }
          const position = ARCHIVE_TABLES.indexOf(entry.table as ArchiveTable);
          if (position < 0 || typeof entry.row !== 'object' || entry.row === null) throw invalid('a line is neither a row of a known table nor the end');
          if (position < order) throw invalid('tables out of order');
          if (position !== order || pending === null) {
            await flush();
            order = position;
            pending = { name: ARCHIVE_TABLES[position] as ArchiveTable, rows: [] };
          }
          if (position === 0 && counts.FleetSettings + (pending as { rows: unknown[] }).rows.length >= 1) throw invalid('more than one FleetSettings row');
          (pending as { rows: unknown[] }).rows.push(entry.row);
          if ((pending as { rows: unknown[] }).rows.length >= INSERT_BATCH) await flush();
        }
        if (header === null) throw invalid('it is empty');
        if (!ended) throw invalid('it ends before its end line (cut off?)');
        // The archive may hold more than this tenant's plan allows (a restore into a smaller plan).
        await assertTenantWithinQuotas(tx, tenant);
        await writeAudit(tx, by, { action: 'tenant.imported', targetType: 'Tenant', targetId: tenant.id, metadata: { from: header.tenant.slug, exportedAt: header.exportedAt } });
      },
      { timeout: ARCHIVE_TRANSACTION_MS, maxWait: 10_000 },
    );
  } catch (error) {
    // A row the database refuses (a broken reference, a bad value): the archive's fault, not the server's.
    const code = (error as { code?: string; meta?: { driverAdapterError?: { cause?: { originalCode?: string } } } }).meta?.driverAdapterError?.cause?.originalCode;
    if (code && /^(22|23)/.test(code)) throw badInput(`A row of the archive does not fit the tenant's schema (SQLSTATE ${code})`);
    throw error;
  } finally {
    lease.release();
  }
  return counts;
}
