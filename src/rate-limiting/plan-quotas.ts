import type { TenantPlan } from '../generated/prisma/platform/client';
import type { TenantRecord } from '../tenancy/tenant-directory';

/*
 * What a tenant may hold at once, per plan: the request budgets (plans.ts) bound what it spends
 * over time, these bound what it keeps. A limit of null is unbounded. Platform admins override
 * any quota of one tenant (Tenant.quotaOverrides, set by setTenantQuota); the tenant directory
 * caches the row and its change notification drops it on every instance, so an override applies
 * to the next request everywhere.
 */

/** The quotas, as the SDL's `Quota` enum names them. */
export const QUOTAS = ['VEHICLES', 'DRIVERS', 'MEMBERS', 'API_KEYS', 'OPEN_TRIPS'] as const;
export type Quota = (typeof QUOTAS)[number];

/** Counted in the tenant's own schema. */
export type TenantSchemaQuota = Extract<Quota, 'VEHICLES' | 'DRIVERS' | 'OPEN_TRIPS'>;
/** Counted in the platform schema. */
export type PlatformQuota = Extract<Quota, 'MEMBERS' | 'API_KEYS'>;

export type QuotaLimits = Record<Quota, number | null>;

/**
 * FREE is sized for a trial and small fleets (no test on a FREE tenant holds more), STANDARD for
 * a fleet business; ENTERPRISE is unbounded (its request budgets still apply).
 */
export const PLAN_QUOTAS: Record<TenantPlan, QuotaLimits> = {
  FREE: { VEHICLES: 25, DRIVERS: 25, MEMBERS: 5, API_KEYS: 3, OPEN_TRIPS: 50 },
  STANDARD: { VEHICLES: 500, DRIVERS: 500, MEMBERS: 50, API_KEYS: 25, OPEN_TRIPS: 2_000 },
  ENTERPRISE: { VEHICLES: null, DRIVERS: null, MEMBERS: null, API_KEYS: null, OPEN_TRIPS: null },
};

/** An override's bounds; 0 freezes a quota (nothing new), larger needs no quota at all (null). */
export const MAX_QUOTA_OVERRIDE = 1_000_000;

/** What the quota checks need of a tenant. */
export type QuotaSubject = Pick<TenantRecord, 'id' | 'plan' | 'quotaOverrides'>;

export interface EffectiveQuota {
  limit: number | null;
  /** A platform admin's override, not the plan's. */
  overridden: boolean;
}

/** The overrides as stored, keeping only well-formed entries (a hand-edited row cannot break requests). */
function overridesOf(tenant: QuotaSubject): Partial<QuotaLimits> {
  const stored = tenant.quotaOverrides;
  if (stored === null || typeof stored !== 'object' || Array.isArray(stored)) return {};
  const overrides: Partial<QuotaLimits> = {};
  for (const quota of QUOTAS) {
    if (!Object.hasOwn(stored, quota)) continue;
    const value = (stored as Record<string, unknown>)[quota];
    if (value === null || (typeof value === 'number' && Number.isInteger(value) && value >= 0)) overrides[quota] = value;
  }
  return overrides;
}

/** One quota in force for the tenant: its override, else its plan's. */
export function effectiveQuota(tenant: QuotaSubject, quota: Quota): EffectiveQuota {
  const overrides = overridesOf(tenant);
  if (Object.hasOwn(overrides, quota)) return { limit: overrides[quota] ?? null, overridden: true };
  return { limit: PLAN_QUOTAS[tenant.plan][quota], overridden: false };
}
