import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import type { AuditActor } from '../audit/audit-entry';
import { queueAudit } from '../audit/audit-log';
import type { PlatformDatabase } from '../database/platform-database';
import type { Logger } from '../observability/logger';
import { runTenantJob, type TenantJob, type TenantJobReport, type TenantJobResult } from '../tenant-jobs/tenant-jobs';
import type { TenantClientPool } from '../tenancy/tenant-client-pool';
import type { TenantRecord } from '../tenancy/tenant-directory';
import { countArchiveRows, exportTenant, type ArchiveTable } from './tenant-archive';

/*
 * Every tenant's archive into one folder, through the tenant-job iterator: a backup before a
 * risky change that resumes (`after`) and reports per tenant, a tenant that fails reported
 * while the others go on. Each file is the single-tenant export's archive (importTenant takes
 * it), written under a temporary name and renamed once complete and on disk: a crash or a
 * failure never leaves a partial archive under a tenant's name, only a `.partial` file.
 */

export const ARCHIVE_EXTENSION = 'ndjson';
export const MAX_EXPORT_CONCURRENCY = 8;
/** Lines are gathered into writes of about this size (an archive is many short lines). */
const WRITE_CHUNK_BYTES = 64 * 1024;
const OPERATOR: AuditActor = { actorKind: 'SYSTEM', actorId: null, requestId: null };

export interface FleetExportOutcome {
  /** Where the archive is (in a dry run: would be). Null when skipped. */
  file: string | null;
  /** Rows per table written (in a dry run: there now). */
  counts: Record<ArchiveTable, number> | null;
  /** Why the tenant was left out (not a failure). */
  skipped: string | null;
}

export interface FleetExportOptions {
  outDir: string;
  after?: string | null;
  dryRun?: boolean;
  concurrency: number;
  /** Tenants read from the platform per query (the iterator's default when absent). */
  batchSize?: number;
}

export function archiveFileOf(outDir: string, tenant: Pick<TenantRecord, 'slug'>): string {
  return path.join(outDir, `${tenant.slug}.${ARCHIVE_EXTENSION}`);
}

export async function exportFleet(
  deps: { platform: PlatformDatabase; tenantClients: TenantClientPool; signingKey: Buffer; logger: Logger },
  options: FleetExportOptions,
  onResult?: (result: TenantJobResult<FleetExportOutcome>) => void,
): Promise<TenantJobReport<FleetExportOutcome>> {
  if (!options.dryRun) await mkdir(options.outDir, { recursive: true });
  const job: TenantJob<FleetExportOutcome> = {
    name: 'export-tenants',
    run: async (tenant, { dryRun }) => {
      // As the single-tenant export refuses it: a tenant on its way out is not taken out again.
      if (tenant.purgeAfter) return { file: null, counts: null, skipped: 'scheduled for deletion; cancelTenantDeletion first' };
      const file = archiveFileOf(options.outDir, tenant);
      if (dryRun) {
        const counts = await countArchiveRows(deps.tenantClients, tenant).catch((error: unknown) => {
          throw withDatabaseReason(error);
        });
        return { file, counts, skipped: null };
      }
      const counts = await writeAtomically(file, (writeLine) => exportTenant(deps.tenantClients, tenant, deps.signingKey, writeLine)).catch((error: unknown) => {
        throw withDatabaseReason(error);
      });
      // The tenant's admins see that their data was taken out, and when (as for the HTTP export).
      await deps.platform.prisma.$transaction((tx) =>
        queueAudit(tx, tenant.id, OPERATOR, { action: 'tenant.exported', targetType: 'Tenant', targetId: tenant.id, metadata: { rows: counts, by: 'tenants:export' } }),
      );
      return { file, counts, skipped: null };
    },
  };
  return runTenantJob(
    { prisma: deps.platform.prisma, logger: deps.logger },
    job,
    { after: options.after ?? null, dryRun: options.dryRun ?? false, concurrency: options.concurrency, ...(options.batchSize ? { batchSize: options.batchSize } : {}) },
    onResult,
  );
}

/**
 * Prisma reports a failed raw query as "P2010" alone; the operator reading the command's line
 * needs PostgreSQL's reason (42P01 relation does not exist, 28P01 password authentication
 * failed, ...). An export only reads, so the message names objects, never row values.
 */
function withDatabaseReason(error: unknown): unknown {
  type AdapterCause = { originalCode?: string; originalMessage?: string; kind?: string };
  const cause = (error as { meta?: { driverAdapterError?: { cause?: AdapterCause } }; cause?: AdapterCause }).meta?.driverAdapterError?.cause ?? (error as { cause?: AdapterCause }).cause;
  if (!cause || typeof cause !== 'object') return error;
  const reason = [cause.originalCode, cause.originalMessage ?? cause.kind].filter(Boolean).join(': ');
  return reason ? new Error(`${(error as { code?: string }).code ?? 'database error'} (${reason})`) : error;
}

/**
 * Runs `produce`, which writes lines, into `file` all or nothing: a temporary file beside it
 * (same folder, so the rename is atomic), flushed to disk, renamed over `file`, and the folder
 * flushed so the rename survives a power cut. On failure the temporary file is removed.
 */
export async function writeAtomically<T>(file: string, produce: (writeLine: (line: string) => Promise<void>) => Promise<T>): Promise<T> {
  const temporary = path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(6).toString('hex')}.partial`);
  // Archives hold a tenant's data: readable by the operator's account only.
  const handle = await open(temporary, 'wx', 0o600);
  let pending: string[] = [];
  let pendingBytes = 0;
  const flush = async () => {
    if (pending.length === 0) return;
    const chunk = pending.join('');
    pending = [];
    pendingBytes = 0;
    await handle.write(chunk);
  };
  try {
    const value = await produce(async (line) => {
      pending.push(line);
      pendingBytes += line.length;
      if (pendingBytes >= WRITE_CHUNK_BYTES) await flush();
    });
    await flush();
    await handle.sync();
    await handle.close();
    await rename(temporary, file);
    const folder = await open(path.dirname(file), 'r');
    await folder.sync().finally(() => folder.close());
    return value;
  } catch (error) {
    await handle.close().catch(() => undefined);
    await rm(temporary, { force: true });
    throw error;
  }
}
