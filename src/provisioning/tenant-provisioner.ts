import { createHash } from 'node:crypto';
import { auditRow, type AuditActor } from '../audit/audit-entry';
import pg from 'pg';
import { z } from 'zod';
import type { PasswordHasher } from '../auth/passwords';
import type { DatabaseClusters } from '../clusters/database-clusters';
import type { EmailOutbox } from '../email/email-jobs';
import { assertAcceptablePassword } from '../auth/passwords';
import { MAX_EMAIL_LENGTH, MAX_PERSON_NAME_LENGTH, emailSchema } from '../auth/person-input';
import { withCheckedOutClient } from '../database/checked-out-client';
import type { PlatformDatabase } from '../database/platform-database';
import { AppError, ErrorCode, assertNoNul, badInput, conflict, notFound } from '../errors/app-error';
import type { TenantPlan } from '../generated/prisma/platform/client';
import { latestMigrationName, readMigrationFolder } from '../migrations/migration-files';
import { MigrationError, type Migrator } from '../migrations/migrator';
import { describeError, type Logger } from '../observability/logger';
import type { Metrics } from '../observability/metrics';
import { tenantConnectionConfig } from '../tenancy/tenant-credentials';
import type { TenantDirectory, TenantRecord } from '../tenancy/tenant-directory';
import { assertValidSlug, isValidSlug, tenantRoleName, tenantSchemaName } from '../tenancy/tenant-naming';
import { sealAuditTable } from '../audit/audit-table-seal';
import { dropTenantObjects, ensureTenantRole, ensureTenantSchema } from './tenant-database-objects';
import { seedTenant } from './tenant-seed';

/** Why a step failed, for `lastError` and logs: a class, a code, a migration name; never SQL. */
export function failureReason(error: unknown): string {
  if (error instanceof AppError) return error.code;
  if (error instanceof MigrationError) return `migration ${error.migration ?? '(unknown)'} failed`;
  const { name, code } = describeError(error);
  return code ? `${name} ${code}` : name;
}

export interface CreateTenantRequest {
  slug: string;
  name: string;
  plan: TenantPlan;
  owner: { email: string; name: string; password: string };
  /** The cluster to place it on (must be open); default: the open cluster with the fewest tenants. */
  cluster?: string | null;
  /** Who asked for it: the tenant's audit log opens with `tenant.created` by them. */
  requestedBy?: AuditActor;
}

/** What creating and migrating tenant schemas both need: where, as whom, with which migrations. */
export interface TenantSchemaDependencies {
  platform: PlatformDatabase;
  /** Where each tenant's schema lives (its row's `cluster`). */
  clusters: DatabaseClusters;
  installationId: string;
  migrator: Migrator;
  tenantMigrationsDir: string;
  tenantDbSecret: string;
  directory: TenantDirectory;
  logger: Logger;
  /** Provisioning and migration durations (absent in operator scripts). */
  metrics?: Pick<Metrics, 'recordProvisioning' | 'recordTenantMigration'>;
  /** Set on each tenant role (ensureTenantRole); default none. */
  tenantStatementTimeoutMs?: number;
}

export interface ProvisionerDependencies extends TenantSchemaDependencies {
  passwords: PasswordHasher;
  /** Queues the verification email of an owner account created here (none in tools that provision without a server). */
  outbox?: EmailOutbox;
  /** How long a second call for the same slug waits for the first to finish. */
  lockTimeoutMs?: number;
}

const ownerSchema = z.object({
  email: emailSchema,
  name: z.string().trim().min(1).max(MAX_PERSON_NAME_LENGTH),
});

const ownerPasswordConflict = (email: string) =>
  conflict(`A user with email ${email} already exists with another password; give that user's password or another email`, 'owner.email');

/** A UUID (version 8, name-based) that is the same for the same tenant and purpose. */
function derivedUuid(tenantId: string, purpose: string): string {
  const bytes = createHash('sha256').update(`${tenantId}:${purpose}`).digest().subarray(0, 16);
  bytes[6] = (bytes[6]! & 0x0f) | 0x80;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * The tenant's role, schema and migrated tables on a cluster, the audit log sealed: provisioning's
 * first steps, and a move's on its target. Each step finds its work done when it runs again.
 */
export async function buildTenantSchema(
  deps: TenantSchemaDependencies,
  tenant: Pick<TenantRecord, 'dbRole' | 'schemaName'>,
  clusterName: string,
  folder: ReturnType<typeof readMigrationFolder>,
  step: <T>(name: 'role' | 'schema' | 'migrate' | 'seal', work: () => Promise<T>) => Promise<T> = (_name, work) => work(),
): Promise<{ version: string | null }> {
  const cluster = deps.clusters.get(clusterName);
  const objects = {
    roleName: tenant.dbRole,
    schemaName: tenant.schemaName,
    databaseName: cluster.databaseName,
    installationId: deps.installationId,
    statementTimeoutMs: deps.tenantStatementTimeoutMs,
  };
  // Connecting counts as the role step: a cluster that does not answer fails there.
  await step('role', () => withCheckedOutClient(cluster.adminPool, (ddl) => ensureTenantRole(ddl, objects, deps.tenantDbSecret)));
  await step('schema', () => withCheckedOutClient(cluster.adminPool, (ddl) => ensureTenantSchema(ddl, objects)));
  const connection = tenantConnectionConfig(cluster.url, tenant.dbRole, deps.tenantDbSecret);
  const outcome = await step('migrate', () => deps.migrator.migrate({ connection, schema: tenant.schemaName }, folder));
  await step('seal', () => withCheckedOutClient(cluster.adminPool, (ddl) => sealAuditTable(ddl, tenant.schemaName, tenant.dbRole)));
  return outcome;
}

/** Advisory-lock class for "one provisioning per slug"; the key is hashtext(slug). */
export const PROVISIONING_LOCK_CLASS = 0x46470001;

type Step = 'role' | 'schema' | 'migrate' | 'seal' | 'seed' | 'owner' | 'activate';

class StepFailure extends Error {
  constructor(
    readonly step: Step,
    readonly reason: string,
    override readonly cause: unknown,
  ) {
    super(`provisioning step ${step} failed: ${reason}`);
  }
}

/**
 * Creates a tenant in one call: platform row, role, schema, migrations, seed data, owner.
 *
 * Every step is idempotent, and the whole run holds a session advisory lock on the slug, so
 * repeated or concurrent calls for one slug wait for each other and converge on one tenant,
 * one role and one schema. A failure marks the tenant FAILED with the step that failed; calling
 * again resumes. A crash leaves it PROVISIONING (the lock dies with the connection); calling
 * again resumes too, from any statement the crash came after: each step is one statement or
 * transaction that a rerun finds done or redoes, and each migration commits with its
 * bookkeeping row (TransactionalMigrator). Only the last step makes the tenant ACTIVE, and only
 * ACTIVE tenants serve tenant requests. A tenant that never got there can be purged instead.
 */
export class TenantProvisioner {
  constructor(private readonly deps: ProvisionerDependencies) {}

  async createTenant(request: CreateTenantRequest): Promise<TenantRecord> {
    const slug = request.slug.trim();
    assertValidSlug(slug);
    const name = request.name.trim();
    if (name.length === 0 || name.length > 200) throw badInput('name must be 1 to 200 characters', 'name');
    assertNoNul(name, 'name');
    assertNoNul(request.owner.name, 'owner.name');
    const owner = ownerSchema.safeParse(request.owner);
    if (!owner.success) {
      throw badInput(
        `owner needs a valid email (at most ${MAX_EMAIL_LENGTH} characters) and a name (1 to ${MAX_PERSON_NAME_LENGTH} characters)`,
        'owner',
      );
    }
    assertAcceptablePassword(request.owner.password, 'owner.password');

    return this.withSlugLock(slug, 'wait', () =>
      this.provisionLocked({ ...request, slug, name, owner: { ...owner.data, password: request.owner.password } }),
    );
  }

  /**
   * Removes a tenant whose provisioning never finished (PROVISIONING or FAILED), or one whose
   * deletion was scheduled and whose grace period has passed: its schema, its role, its platform
   * row and, with the row, its memberships, keys, invitations and operations. The slug is free
   * again. The owner of a never-finished tenant keeps the account (it may own other tenants);
   * a deleted tenant's members who belong to no other tenant lose theirs, as removeMember does.
   * Refused for a tenant that serves or may serve again (ACTIVE, SUSPENDED without a due
   * deletion), and at once for one a createTenant call is working on right now.
   */
  async purgeTenant(rawSlug: string): Promise<{ tenantId: string; slug: string }> {
    const slug = rawSlug.trim().toLowerCase();
    if (!isValidSlug(slug)) throw notFound('Tenant');
    return this.withSlugLock(slug, 'fail', async () => {
      const { platform, directory, logger } = this.deps;
      const tenant = await platform.prisma.tenant.findUnique({ where: { slug } });
      if (!tenant) throw notFound('Tenant');
      const deletionDue = tenant.purgeAfter !== null && tenant.purgeAfter.getTime() <= Date.now();
      if ((tenant.status === 'ACTIVE' || tenant.status === 'SUSPENDED') && !deletionDue) {
        throw conflict(
          tenant.purgeAfter
            ? `This tenant's deletion is scheduled; it can be purged after ${tenant.purgeAfter.toISOString()}`
            : `Only a tenant whose provisioning did not finish (PROVISIONING or FAILED), or whose deletion is due, can be purged; this one is ${tenant.status}`,
          'slug',
        );
      }
      // The database objects first, the row last: a purge that dies midway leaves the row
      // (still listed, still due or unfinished), and purging again finishes the job. A move
      // left unfinished has objects on its other cluster too.
      const move = await platform.prisma.tenantMove.findUnique({ where: { tenantId: tenant.id } });
      for (const clusterName of new Set([tenant.cluster, ...(move ? [move.fromCluster, move.toCluster] : [])])) {
        await withCheckedOutClient(this.deps.clusters.get(clusterName).adminPool, (client) =>
          dropTenantObjects(client, { roleName: tenant.dbRole, schemaName: tenant.schemaName }),
        );
      }
      await platform.prisma.$transaction(async (tx) => {
        const members = deletionDue ? await tx.membership.findMany({ where: { tenantId: tenant.id }, select: { userId: true } }) : [];
        await tx.tenant.delete({ where: { id: tenant.id } });
        // Accounts left in no tenant can sign in nowhere: they go, as with removeMember.
        if (members.length > 0) await tx.user.deleteMany({ where: { id: { in: members.map((member) => member.userId) }, memberships: { none: {} } } });
      });
      directory.invalidate(tenant.id);
      logger.info({ tenantId: tenant.id, slug, status: tenant.status }, 'tenant purged');
      return { tenantId: tenant.id, slug };
    });
  }

  /**
   * Runs `work` holding the slug's provisioning lock, a session advisory lock that PostgreSQL
   * releases by itself if this process dies. 'wait' queues behind another holder (up to
   * lockTimeoutMs); 'fail' answers SERVICE_UNAVAILABLE at once.
   */
  async withSlugLock<T>(slug: string, mode: 'wait' | 'fail', work: () => Promise<T>): Promise<T> {
    const busy = () =>
      new AppError(ErrorCode.SERVICE_UNAVAILABLE, `Tenant "${slug}" is busy with another call (provisioning, a move or a purge); retry shortly`, {
        extensions: { retryAfter: 5 },
      });
    return withCheckedOutClient(this.deps.platform.pool, async (lockClient) => {
      if (mode === 'wait') {
        await lockClient.query(`SET lock_timeout = ${Math.trunc(this.deps.lockTimeoutMs ?? 60_000)}`);
        try {
          await lockClient.query('SELECT pg_advisory_lock($1, hashtext($2))', [PROVISIONING_LOCK_CLASS, slug]);
        } catch (error) {
          if ((error as { code?: string }).code === '55P03') throw busy();
          throw error;
        } finally {
          await lockClient.query('RESET lock_timeout').catch(() => undefined);
        }
      } else {
        const taken = await lockClient.query<{ locked: boolean }>('SELECT pg_try_advisory_lock($1, hashtext($2)) AS locked', [PROVISIONING_LOCK_CLASS, slug]);
        if (!taken.rows[0]?.locked) throw busy();
      }
      try {
        return await work();
      } finally {
        await lockClient.query('SELECT pg_advisory_unlock($1, hashtext($2))', [PROVISIONING_LOCK_CLASS, slug]).catch(() => undefined);
      }
    });
  }

  private async provisionLocked(request: CreateTenantRequest): Promise<TenantRecord> {
    const { prisma } = this.deps.platform;
    const existing = await prisma.tenant.findUnique({ where: { slug: request.slug } });
    if (existing && request.cluster && existing.cluster !== request.cluster) {
      throw conflict(`Tenant "${request.slug}" is already placed on cluster "${existing.cluster}"`, 'cluster');
    }
    if (existing && (existing.status === 'ACTIVE' || existing.status === 'SUSPENDED')) {
      await this.assertSameRequest(existing, request);
      return existing;
    }
    // Checked before anything is written: a wrong password is the caller's mistake, and must not
    // leave a FAILED tenant with a role and a schema behind. The owner step checks again, for an
    // account created or changed meanwhile.
    const verifiedOwnerHash = await this.verifiedExistingOwner(request.owner);
    const tenant =
      existing ??
      (await prisma.tenant.create({
        data: {
          slug: request.slug,
          name: request.name,
          plan: request.plan,
          cluster: (await this.deps.clusters.placeNewTenant(request.cluster)).name,
          status: 'PROVISIONING',
          schemaName: tenantSchemaName(request.slug),
          dbRole: tenantRoleName(this.deps.installationId, request.slug),
        },
      }));
    if (existing) {
      await prisma.tenant.update({ where: { id: existing.id }, data: { status: 'PROVISIONING', name: request.name, plan: request.plan } });
    }
    // bcrypt is the slowest step; it runs while the database steps wait on I/O. An existing
    // account's hash was just verified against this password, so it needs no new one.
    const ownerPasswordHash = verifiedOwnerHash !== null ? Promise.resolve(verifiedOwnerHash) : this.deps.passwords.hash(request.owner.password);
    ownerPasswordHash.catch(() => undefined);
    const startedAt = performance.now();
    try {
      const version = await this.runSteps(tenant, request, ownerPasswordHash);
      const active = await this.step('activate', () =>
        prisma.tenant.update({
          where: { id: tenant.id },
          data: { status: 'ACTIVE', migrationVersion: version, lastError: null, provisionedAt: new Date() },
        }),
      );
      this.deps.directory.invalidate(tenant.id);
      this.deps.metrics?.recordProvisioning('ok', (performance.now() - startedAt) / 1000);
      this.deps.logger.info(
        { tenantId: tenant.id, slug: tenant.slug, version, durationMs: Math.round(performance.now() - startedAt) },
        'tenant provisioned',
      );
      return active;
    } catch (error) {
      this.deps.metrics?.recordProvisioning('failed', (performance.now() - startedAt) / 1000);
      const failure = error instanceof StepFailure ? error : new StepFailure('activate', failureReason(error), error);
      await prisma.tenant
        .update({ where: { id: tenant.id }, data: { status: 'FAILED', lastError: `${failure.step}: ${failure.reason}` } })
        .catch(() => undefined);
      this.deps.directory.invalidate(tenant.id);
      if (failure.cause instanceof AppError) throw failure.cause;
      this.deps.logger.error(
        {
          tenantId: tenant.id,
          slug: tenant.slug,
          step: failure.step,
          reason: failure.reason,
          ...(failure.cause instanceof MigrationError ? { databaseMessage: failure.cause.reason } : { err: describeError(failure.cause) }),
        },
        'tenant provisioning failed',
      );
      throw new AppError(
        ErrorCode.PROVISIONING_FAILED,
        `Provisioning tenant "${tenant.slug}" failed at step "${failure.step}". Call createTenant again to resume it, or purgeTenant to remove it.`,
        { extensions: { step: failure.step, tenantId: tenant.id } },
      );
    }
  }

  private async runSteps(tenant: TenantRecord, request: CreateTenantRequest, ownerPasswordHash: Promise<string>): Promise<string | null> {
    const { platform } = this.deps;
    const folder = readMigrationFolder(this.deps.tenantMigrationsDir);
    const outcome = await buildTenantSchema(this.deps, tenant, tenant.cluster, folder, (step, work) => this.step(step, work));
    const connection = tenantConnectionConfig(this.deps.clusters.get(tenant.cluster).url, tenant.dbRole, this.deps.tenantDbSecret);
    await this.step('seed', async () => {
      const client = new pg.Client(connection);
      client.on('error', () => undefined); // a lost connection fails the query instead
      await client.connect();
      try {
        await seedTenant(client);
      } finally {
        await client.end();
      }
    });
    await this.step('owner', async () => {
      const passwordHash = await ownerPasswordHash;
      await platform.prisma.$transaction(async (tx) => {
        const existing = await tx.user.findUnique({ where: { email: request.owner.email } });
        const user = existing ?? (await tx.user.create({ data: { email: request.owner.email, name: request.owner.name, passwordHash } }));
        // A platform admin typed this address: until its owner proves it, it receives no notifications.
        if (!existing) await this.deps.outbox?.enqueue(tx, { template: 'email-verification', userId: user.id });
        if (user.passwordHash !== passwordHash && !(await this.deps.passwords.verify(request.owner.password, user.passwordHash))) {
          throw ownerPasswordConflict(request.owner.email);
        }
        await tx.membership.upsert({
          where: { userId_tenantId: { userId: user.id, tenantId: tenant.id } },
          create: { userId: user.id, tenantId: tenant.id, role: 'OWNER' },
          update: { role: 'OWNER' },
        });
        if (request.requestedBy) {
          // One id per tenant: a resumed createTenant queues the same entry, which is then skipped.
          const entry = auditRow(request.requestedBy, { action: 'tenant.created', targetType: 'Tenant', targetId: tenant.id, metadata: { plan: tenant.plan, ownerUserId: user.id } });
          await tx.tenantAuditOutbox.createMany({ data: [{ id: derivedUuid(tenant.id, 'tenant.created'), tenantId: tenant.id, ...entry }], skipDuplicates: true });
        }
      });
      this.deps.outbox?.wake();
    });
    return outcome.version ?? latestMigrationName(folder);
  }

  /**
   * The stored hash of the owner's existing account once the given password matches it; null
   * when there is no such account yet (the owner step creates it). CONFLICT otherwise.
   */
  private async verifiedExistingOwner(owner: CreateTenantRequest['owner']): Promise<string | null> {
    const user = await this.deps.platform.prisma.user.findUnique({ where: { email: owner.email }, select: { passwordHash: true } });
    if (!user) return null;
    if (!(await this.deps.passwords.verify(owner.password, user.passwordHash))) throw ownerPasswordConflict(owner.email);
    return user.passwordHash;
  }

  private async step<T>(step: Step, work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      if (error instanceof StepFailure) throw error;
      throw new StepFailure(step, failureReason(error), error);
    }
  }

  /** A repeated call is fine; a different tenant under a taken slug is a conflict. */
  private async assertSameRequest(existing: TenantRecord, request: CreateTenantRequest): Promise<void> {
    const owner = await this.deps.platform.prisma.membership.findFirst({
      where: { tenantId: existing.id, role: 'OWNER', user: { email: request.owner.email } },
    });
    if (existing.name !== request.name || existing.plan !== request.plan || !owner) {
      throw conflict(`The slug "${request.slug}" is already taken by another tenant`, 'slug');
    }
  }
}
