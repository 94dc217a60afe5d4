import type { AuditActor } from '../audit/audit-entry';
import { queueAudit } from '../audit/audit-log';
import { sealAuditTable } from '../audit/audit-table-seal';
import { MAX_MIGRATION_CONCURRENCY } from '../config/config';
import { withCheckedOutClient } from '../database/checked-out-client';
import { badInput } from '../errors/app-error';
import { latestMigrationName, readMigrationFolder } from '../migrations/migration-files';
import { MigrationError } from '../migrations/migrator';
import { describeError } from '../observability/logger';
import { runTenantJob, type TenantJob } from '../tenant-jobs/tenant-jobs';
import { tenantConnectionConfig } from '../tenancy/tenant-credentials';
import type { TenantRecord } from '../tenancy/tenant-directory';
import { quoteIdentifier } from '../tenancy/tenant-naming';
import { ensureTenantRole } from './tenant-database-objects';
import { failureReason, type TenantSchemaDependencies } from './tenant-provisioner';

/** Migrations run by the operator command or at start-up: nobody in particular asked. */
const SYSTEM_ACTOR: AuditActor = { actorKind: 'SYSTEM', actorId: null, requestId: null };

export type TenantMigrationStatus = 'MIGRATED' | 'UP_TO_DATE' | 'FAILED' | 'SKIPPED' | 'WOULD_MIGRATE';

export interface TenantMigrationResult {
  tenantId: string;
  slug: string | null;
  tenant: TenantRecord | null;
  status: TenantMigrationStatus;
  appliedMigrations: string[];
  /** Dry runs: what a run would apply, oldest first. */
  pendingMigrations: string[];
  version: string | null;
  error: string | null;
  durationMs: number;
}

/** A run's summary; each tenant's result goes to the caller's `onResult` as it comes. */
export interface TenantMigrationReport {
  targetVersion: string | null;
  dryRun: boolean;
  counts: Record<TenantMigrationStatus, number>;
  /** The last tenant id the run went through (TenantJobReport.resumeAfter). */
  resumeAfter: string | null;
  durationMs: number;
}

/** The GraphQL payload: the report and, when selected, the results its caller collected. */
export type ListedTenantMigrationReport = TenantMigrationReport & { results: TenantMigrationResult[] };

export interface MigrateTenantsOptions {
  /** Only these tenants; default every provisioned (ACTIVE or SUSPENDED) tenant. */
  tenantIds?: string[] | null;
  concurrency?: number | null;
  /** Ask the schema engine even when the platform row says the tenant is up to date. */
  force?: boolean;
  /** Report per tenant the migrations a run would apply (read from the schema); change nothing. */
  dryRun?: boolean;
  /** Resume: only tenants whose id sorts after this one. */
  after?: string | null;
  /** Who asked (a platform admin); each migrated tenant's audit log says so. Default: SYSTEM. */
  requestedBy?: AuditActor;
}

/**
 * Brings tenant schemas to the newest tenant migration. A tenant whose recorded version is the
 * newest is skipped without touching its schema, so checking a whole fleet costs one query. A
 * broken tenant is reported and the run goes on.
 */
export class TenantMigrationRunner {
  constructor(
    private readonly deps: TenantSchemaDependencies & {
      defaultConcurrency: number;
    },
  ) {}

  async migrateTenants(options: MigrateTenantsOptions = {}, onResult?: (result: TenantMigrationResult) => void): Promise<TenantMigrationReport> {
    const startedAt = performance.now();
    const folder = readMigrationFolder(this.deps.tenantMigrationsDir);
    const targetVersion = latestMigrationName(folder);
    const concurrency = options.concurrency ?? this.deps.defaultConcurrency;
    if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > MAX_MIGRATION_CONCURRENCY) {
      throw badInput(`concurrency must be between 1 and ${MAX_MIGRATION_CONCURRENCY}`, 'concurrency');
    }
    const dryRun = options.dryRun ?? false;
    const migrate: TenantJob<TenantMigrationResult> = {
      name: 'migrate-tenants',
      run: async (tenant) => {
        if (tenant.status !== 'ACTIVE' && tenant.status !== 'SUSPENDED') {
          return skipped(tenant.id, tenant, `tenant is ${tenant.status}; createTenant completes it`);
        }
        // Its role cannot write while a move runs; the move migrates it before it starts.
        if (tenant.readOnlySince) return skipped(tenant.id, tenant, 'tenant is being moved to another cluster; migrate it once the move is done');
        if (!options.force && tenant.migrationVersion === targetVersion) {
          return { ...base(tenant), status: 'UP_TO_DATE' as const, version: tenant.migrationVersion };
        }
        if (dryRun) {
          return this.pendingOf(tenant, folder).catch((error: unknown): TenantMigrationResult => {
            // As for a real run: a class and code to the caller, the database's message to the log only.
            this.deps.logger.error({ tenantId: tenant.id, slug: tenant.slug, err: describeError(error) }, 'tenant migration dry run failed');
            return { ...base(tenant), status: 'FAILED', error: failureReason(error) };
          });
        }
        return this.migrateOne(tenant, folder, targetVersion, options.force ?? false, options.requestedBy ?? SYSTEM_ACTOR);
      },
    };
    const counts: Record<TenantMigrationStatus, number> = { MIGRATED: 0, UP_TO_DATE: 0, FAILED: 0, SKIPPED: 0, WOULD_MIGRATE: 0 };
    const report = (result: TenantMigrationResult) => {
      counts[result.status] += 1;
      onResult?.(result);
    };
    // Listed tenants are reported whatever their state (a PROVISIONING one as SKIPPED, with why).
    const run = await runTenantJob(
      { prisma: this.deps.platform.prisma, logger: this.deps.logger },
      migrate,
      { tenantIds: options.tenantIds ?? null, statuses: options.tenantIds ? null : undefined, after: options.after ?? null, concurrency, dryRun },
      // migrateOne and the dry run report their own failures; this covers a throw anywhere else.
      (result) => report(result.outcome ?? { ...base(result.tenant), status: 'FAILED', error: result.error, durationMs: result.durationMs }),
    );
    for (const id of run.missingTenantIds) report(skipped(id, null, 'tenant not found'));
    return { targetVersion, dryRun, counts, resumeAfter: run.resumeAfter, durationMs: Math.round(performance.now() - startedAt) };
  }

  /**
   * The dry run's answer for one tenant: the folder's migrations its schema has not finished,
   * read (as the cluster's admin, who reads every schema) from its _prisma_migrations, as the
   * migrator reads it. Reads only: no lock, no role, no row written.
   */
  private async pendingOf(tenant: TenantRecord, folder: ReturnType<typeof readMigrationFolder>): Promise<TenantMigrationResult> {
    const startedAt = performance.now();
    const { adminPool } = this.deps.clusters.get(tenant.cluster);
    const table = `${quoteIdentifier(tenant.schemaName)}._prisma_migrations`;
    const [present] = (
      await adminPool.query<{ schema: boolean; bookkeeping: boolean }>('SELECT to_regnamespace($1) IS NOT NULL AS schema, to_regclass($2) IS NOT NULL AS bookkeeping', [
        quoteIdentifier(tenant.schemaName),
        table,
      ])
    ).rows;
    // A real run would fail here too (its role's search_path leads nowhere), not create the schema.
    if (!present?.schema) return { ...base(tenant), status: 'FAILED', error: 'the tenant schema is missing', durationMs: Math.round(performance.now() - startedAt) };
    const done = new Set(
      present.bookkeeping
        ? (await adminPool.query<{ name: string }>(`SELECT migration_name AS name FROM ${table} WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL`)).rows.map((row) => row.name)
        : [],
    );
    const pending = folder.migrations.map((migration) => migration.name).filter((name) => !done.has(name));
    return {
      ...base(tenant),
      status: pending.length > 0 ? 'WOULD_MIGRATE' : 'UP_TO_DATE',
      pendingMigrations: pending,
      durationMs: Math.round(performance.now() - startedAt),
    };
  }

  private async migrateOne(
    tenant: TenantRecord,
    folder: ReturnType<typeof readMigrationFolder>,
    targetVersion: string | null,
    reassertRole: boolean,
    by: AuditActor,
  ): Promise<TenantMigrationResult> {
    const startedAt = performance.now();
    const { prisma } = this.deps.platform;
    try {
      // `force` also re-asserts the role: it repairs drift such as a rotated TENANT_DB_SECRET.
      if (reassertRole) await this.reassertRole(tenant);
      const cluster = this.deps.clusters.get(tenant.cluster);
      const connection = tenantConnectionConfig(cluster.url, tenant.dbRole, this.deps.tenantDbSecret);
      const outcome = await this.deps.migrator.migrate({ connection, schema: tenant.schemaName }, folder);
      // Before the version is recorded: a run cut here finds the tenant behind and seals again.
      await withCheckedOutClient(cluster.adminPool, (ddl) => sealAuditTable(ddl, tenant.schemaName, tenant.dbRole));
      const updated = await prisma.$transaction(async (tx) => {
        const row = await tx.tenant.update({
          where: { id: tenant.id },
          data: { migrationVersion: outcome.version ?? targetVersion, lastError: null },
        });
        if (outcome.applied.length > 0) {
          await queueAudit(tx, tenant.id, by, {
            action: 'tenant.migrated',
            targetType: 'Tenant',
            targetId: tenant.id,
            metadata: { applied: outcome.applied.slice(0, 50), version: row.migrationVersion },
          });
        }
        return row;
      });
      this.deps.directory.invalidate(tenant.id);
      this.deps.metrics?.recordTenantMigration(outcome.applied.length > 0 ? 'migrated' : 'up_to_date', (performance.now() - startedAt) / 1000);
      return {
        ...base(updated),
        status: outcome.applied.length > 0 ? 'MIGRATED' : 'UP_TO_DATE',
        appliedMigrations: outcome.applied,
        version: updated.migrationVersion,
        durationMs: Math.round(performance.now() - startedAt),
      };
    } catch (error) {
      const reason = failureReason(error);
      this.deps.metrics?.recordTenantMigration('failed', (performance.now() - startedAt) / 1000);
      this.deps.logger.error(
        {
          tenantId: tenant.id,
          slug: tenant.slug,
          reason,
          ...(error instanceof MigrationError ? { databaseMessage: error.reason } : {}),
        },
        'tenant migration failed',
      );
      // The result carries the tenant as it is now, lastError included (not the row read before the run).
      const updated = await prisma.tenant
        .update({ where: { id: tenant.id }, data: { lastError: `migrate: ${reason}` } })
        .catch(() => tenant);
      this.deps.directory.invalidate(tenant.id);
      return {
        ...base(updated),
        status: 'FAILED',
        error: reason,
        durationMs: Math.round(performance.now() - startedAt),
      };
    }
  }

  private async reassertRole(tenant: TenantRecord): Promise<void> {
    const cluster = this.deps.clusters.get(tenant.cluster);
    await withCheckedOutClient(cluster.adminPool, (ddl) =>
      ensureTenantRole(
        ddl,
        {
          roleName: tenant.dbRole,
          schemaName: tenant.schemaName,
          databaseName: cluster.databaseName,
          installationId: this.deps.installationId,
          statementTimeoutMs: this.deps.tenantStatementTimeoutMs,
        },
        this.deps.tenantDbSecret,
      ),
    );
  }
}

function base(tenant: TenantRecord): TenantMigrationResult {
  return {
    tenantId: tenant.id,
    slug: tenant.slug,
    tenant,
    status: 'SKIPPED',
    appliedMigrations: [],
    pendingMigrations: [],
    version: tenant.migrationVersion,
    error: null,
    durationMs: 0,
  };
}

function skipped(tenantId: string, tenant: TenantRecord | null, reason: string): TenantMigrationResult {
  return {
    ...(tenant ? base(tenant) : { tenantId, slug: null, tenant: null, appliedMigrations: [], pendingMigrations: [], version: null, durationMs: 0 }),
    status: 'SKIPPED',
    error: reason,
  };
}
