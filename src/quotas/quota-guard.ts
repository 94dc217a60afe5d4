import type { PlatformTransaction } from '../database/platform-database';
import { FINAL_TRIP_STATUSES } from '../dispatch/trip-workflow';
import { AppError, ErrorCode } from '../errors/app-error';
import { Prisma as TenantPrisma } from '../generated/prisma/tenant/client';
import { Prisma as PlatformPrisma } from '../generated/prisma/platform/client';
import type { TenantTransaction } from '../records/record-changes';
import { effectiveQuota, type PlatformQuota, type Quota, type QuotaSubject, type TenantSchemaQuota } from '../rate-limiting/plan-quotas';

/*
 * Count-then-insert, serialised per (tenant, quota): the check takes a transaction-scoped
 * advisory lock on the pair before it counts, so two creates racing for the last free place
 * queue here and the second counts the first's row (or its absence, if it rolled back). The
 * lock lasts until the caller's transaction commits, after its insert. Unbounded quotas take no
 * lock and count nothing. Deletes and other changes that leave a count do not take the lock:
 * they can only make room.
 */

/** pg_advisory_xact_lock(class, key) class of quota checks (0x4647.... = "FG", see the other lock classes). */
export const QUOTA_LOCK_CLASS = 0x46470004;

/** The key of a (tenant, quota) pair; a hash collision only makes two pairs queue together. */
export function quotaLockKey(tenantId: string, quota: Quota): string {
  return `${tenantId}:${quota}`;
}

const FINAL = [...FINAL_TRIP_STATUSES];

/** What each quota of the tenant's schema counts (SQL on the tenant's connection: its search_path names the schema). */
export const TENANT_SCHEMA_COUNTS: Record<TenantSchemaQuota, TenantPrisma.Sql> = {
  VEHICLES: TenantPrisma.sql`SELECT count(*)::int FROM "Vehicle" WHERE "deletedAt" IS NULL`,
  DRIVERS: TenantPrisma.sql`SELECT count(*)::int FROM "Driver" WHERE "deletedAt" IS NULL`,
  OPEN_TRIPS: TenantPrisma.sql`SELECT count(*)::int FROM "Trip" WHERE "deletedAt" IS NULL AND "status"::text NOT IN (${TenantPrisma.join(FINAL)})`,
};

/** What each quota of the platform schema counts for one tenant. */
export function platformCount(quota: PlatformQuota, tenantId: string): PlatformPrisma.Sql {
  switch (quota) {
    case 'MEMBERS':
      return PlatformPrisma.sql`SELECT count(*)::int FROM platform."Membership" WHERE "tenantId" = ${tenantId}::uuid`;
    case 'API_KEYS':
      // A revoked or expired key lets nobody in: it holds no place.
      return PlatformPrisma.sql`SELECT count(*)::int FROM platform."ApiKey"
        WHERE "tenantId" = ${tenantId}::uuid AND "revokedAt" IS NULL AND ("expiresAt" IS NULL OR "expiresAt" > now())`;
  }
}

const WHAT: Record<Quota, string> = {
  VEHICLES: 'vehicles',
  DRIVERS: 'drivers',
  MEMBERS: 'members',
  API_KEYS: 'live API keys',
  OPEN_TRIPS: 'open trips (neither DELIVERED nor CANCELLED)',
};

const REMEDY: Record<Quota, string> = {
  VEHICLES: 'delete vehicles no longer used',
  DRIVERS: 'delete drivers no longer employed',
  MEMBERS: 'remove members who left',
  API_KEYS: 'revoke keys no longer used',
  OPEN_TRIPS: 'deliver or cancel trips',
};

/** QUOTA_EXCEEDED naming the quota, its limit and what the tenant holds. */
export function quotaExceeded(tenant: QuotaSubject, quota: Quota, limit: number, usage: number): AppError {
  const source = effectiveQuota(tenant, quota).overridden ? 'as set for this tenant' : `on the ${tenant.plan} plan`;
  return new AppError(
    ErrorCode.QUOTA_EXCEEDED,
    `This tenant may hold at most ${limit} ${WHAT[quota]} ${source} and holds ${usage}; ${REMEDY[quota]} or ask for a larger plan`,
    { extensions: { quota, limit, usage } },
  );
}

type Counted = [{ count: number }?];

/**
 * Inside the tenant transaction that is about to add one row to `quota` (a create, a restore):
 * QUOTA_EXCEEDED unless there is room for it. Holds the pair's lock until that transaction ends.
 */
export async function assertTenantQuotaRoom(tx: TenantTransaction, tenant: QuotaSubject, quota: TenantSchemaQuota): Promise<void> {
  const { limit } = effectiveQuota(tenant, quota);
  if (limit === null) return;
  await tx.$executeRaw`SELECT pg_advisory_xact_lock(${QUOTA_LOCK_CLASS}::int, hashtext(${quotaLockKey(tenant.id, quota)}))`;
  const [counted] = await tx.$queryRaw<Counted>(TENANT_SCHEMA_COUNTS[quota]);
  const usage = counted?.count ?? 0;
  if (usage >= limit) throw quotaExceeded(tenant, quota, limit, usage);
}

/**
 * After rows were added in bulk (an archive import) inside `tx`: QUOTA_EXCEEDED for the first of
 * the tenant's own quotas the rows took it over, so the whole import rolls back.
 */
export async function assertTenantWithinQuotas(tx: TenantTransaction, tenant: QuotaSubject): Promise<void> {
  for (const quota of Object.keys(TENANT_SCHEMA_COUNTS) as TenantSchemaQuota[]) {
    const { limit } = effectiveQuota(tenant, quota);
    if (limit === null) continue;
    const [counted] = await tx.$queryRaw<Counted>(TENANT_SCHEMA_COUNTS[quota]);
    const usage = counted?.count ?? 0;
    if (usage > limit) throw quotaExceeded(tenant, quota, limit, usage);
  }
}

/**
 * The same inside a platform transaction (members, API keys). The plan and overrides are read
 * again in this transaction, not taken from the caller's cached tenant: a plan change made on
 * another instance a moment ago holds here already.
 */
export async function assertPlatformQuotaRoom(tx: PlatformTransaction, cached: QuotaSubject, quota: PlatformQuota): Promise<void> {
  const tenant = (await tx.tenant.findUnique({ where: { id: cached.id }, select: { id: true, plan: true, quotaOverrides: true } })) ?? cached;
  const { limit } = effectiveQuota(tenant, quota);
  if (limit === null) return;
  await tx.$executeRaw`SELECT pg_advisory_xact_lock(${QUOTA_LOCK_CLASS}::int, hashtext(${quotaLockKey(tenant.id, quota)}))`;
  const [counted] = await tx.$queryRaw<Counted>(platformCount(quota, tenant.id));
  const usage = counted?.count ?? 0;
  if (usage >= limit) throw quotaExceeded(tenant, quota, limit, usage);
}
