import type { PlatformDatabase } from '../database/platform-database';
import { Prisma as TenantPrisma } from '../generated/prisma/tenant/client';
import { Prisma as PlatformPrisma } from '../generated/prisma/platform/client';
import { QUOTAS, effectiveQuota, type Quota } from '../rate-limiting/plan-quotas';
import type { TenantRecord } from '../tenancy/tenant-directory';
import type { TenantSql } from '../tenancy/tenant-sql';
import { TENANT_SCHEMA_COUNTS, platformCount } from './quota-guard';

export interface QuotaUsageModel {
  quota: Quota;
  usage: number;
  limit: number | null;
  overridden: boolean;
}

export interface TenantUsageModel {
  plan: TenantRecord['plan'];
  quotas: QuotaUsageModel[];
}

/**
 * What the tenant holds against each quota: two statements whatever its size, one in its own
 * schema (on its own connection and role) and one in the platform schema, counting exactly what
 * the quota checks count (quota-guard.ts).
 */
export async function readTenantUsage(platform: PlatformDatabase, sql: TenantSql, tenant: TenantRecord): Promise<TenantUsageModel> {
  const [[inSchema], [inPlatform]] = await Promise.all([
    sql.rows<Record<'VEHICLES' | 'DRIVERS' | 'OPEN_TRIPS', number>>(
      TenantPrisma.sql`SELECT (${TENANT_SCHEMA_COUNTS.VEHICLES}) AS "VEHICLES", (${TENANT_SCHEMA_COUNTS.DRIVERS}) AS "DRIVERS", (${TENANT_SCHEMA_COUNTS.OPEN_TRIPS}) AS "OPEN_TRIPS"`,
    ),
    platformRows<Record<'MEMBERS' | 'API_KEYS', number>>(
      platform,
      PlatformPrisma.sql`SELECT (${platformCount('MEMBERS', tenant.id)}) AS "MEMBERS", (${platformCount('API_KEYS', tenant.id)}) AS "API_KEYS"`,
    ),
  ]);
  const counts: Partial<Record<Quota, number>> = { ...inSchema, ...inPlatform };
  return {
    plan: tenant.plan,
    quotas: QUOTAS.map((quota) => ({ quota, usage: counts[quota] ?? 0, ...effectiveQuota(tenant, quota) })),
  };
}

async function platformRows<Row>(platform: PlatformDatabase, statement: PlatformPrisma.Sql): Promise<Row[]> {
  const result = await platform.pool.query(statement.text, statement.values);
  return result.rows as Row[];
}
