import type { AuditActor } from '../audit/audit-entry';
import { queueAudit } from '../audit/audit-log';
import { sealAuditTable } from '../audit/audit-table-seal';
import { MAX_MIGRATION_CONCURRENCY } from '../config/config';
import { withCheckedOutClient } from '../database/checked-out-client';
import { badInput } from '../errors/app-error';
import { latestMigrationName, readMigrationFolder } from '../migrations/migration-files';
import { MigrationError } from '../migrations/migrator';
import { runTenantJob, type TenantJob } from '../tenant-jobs/tenant-jobs';
import { tenantConnectionConfig } from '../tenancy/tenant-credentials';
import type { TenantRecord } from '../tenancy/tenant-directory';
import { ensureTenantRole } from './tenant-database-objects';
import { failureReason, type TenantSchemaDependencies } from './tenant-provisioner';

/** Migrations run by the operator command or at start-up: nobody in particular asked. */
const SYSTEM_ACTOR: AuditActor = { actorKind: 'SYSTEM', actorId: null, requestId: null };

export type TenantMigrationStatus = 'MIGRATED' | 'UP_TO_DATE' | 'FAILED' | 'SKIPPED';

export interface TenantMigrationResult {
  tenantId: string;
  slug: string | null;
  tenant: TenantRecord | null;
  status: TenantMigrationStatus;
  appliedMigrations: string[];
  version: string | null;
  error: string | null;
  durationMs: number;
}

export interface TenantMigrationReport {
  targetVersion: string | null;
  results: TenantMigrationResult[];
  durationMs: number;
}

export interface MigrateTenantsOptions {
  /** Only these tenants; default every provisioned (ACTIVE or SUSPENDED) tenant. */
  tenantIds?: string[] | null;
  concurrency?: number | null;
  /** Ask the schema engine even when the platform row says the tenant is up to date. */
  force?: boolean;
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

  async migrateTenants(options: MigrateTenantsOptions = {}): Promise<TenantMigrationReport> {
    const startedAt = performance.now();
    const folder = readMigrationFolder(this.deps.tenantMigrationsDir);
    const targetVersion = latestMigrationName(folder);
    const concurrency = options.concurrency ?? this.deps.defaultConcurrency;
    if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > MAX_MIGRATION_CONCURRENCY) {
      throw badInput(`concurrency must be between 1 and ${MAX_MIGRATION_CONCURRENCY}`, 'concurrency');
    }
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
        return this.migrateOne(tenant, folder, targetVersion, options.force ?? false, options.requestedBy ?? SYSTEM_ACTOR);
      },
    };
    // Listed tenants are reported whatever their state (a PROVISIONING one as SKIPPED, with why).
    const run = await runTenantJob({ prisma: this.deps.platform.prisma, logger: this.deps.logger }, migrate, {
      tenantIds: options.tenantIds ?? null,
      statuses: options.tenantIds ? null : undefined,
      concurrency,
    });
    // migrateOne reports its own failures, so every tenant has an outcome.
    const results = run.results.map((result) => result.outcome ?? { ...base(result.tenant), status: 'FAILED' as const, error: result.error });
    const missing = run.missingTenantIds.map((id) => skipped(id, null, 'tenant not found'));
    return { targetVersion, results: [...results, ...missing], durationMs: Math.round(performance.now() - startedAt) };
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
    version: tenant.migrationVersion,
    error: null,
    durationMs: 0,
  };
}

function skipped(tenantId: string, tenant: TenantRecord | null, reason: string): TenantMigrationResult {
  return {
    ...(tenant ? base(tenant) : { tenantId, slug: null, tenant: null, appliedMigrations: [], version: null, durationMs: 0 }),
    status: 'SKIPPED',
    error: reason,
  };
}
