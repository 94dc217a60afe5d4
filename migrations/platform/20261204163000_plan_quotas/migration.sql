-- Plan quotas (vehicles, drivers, members, API keys, open trips) come from the tenant's plan;
-- a platform admin may override any of them (setTenantQuota). The overrides live with the
-- tenant row, so the tenant directory's cache and its change notification carry them to every
-- instance like the rate-limit overrides. { "<QUOTA>": <limit> | null (unbounded) }; a quota
-- not named follows the plan. No CHECK that it is an object: any CHECK constraint makes the
-- WebAssembly schema engine panic when `npm run migration:new` diffs the platform schema; the
-- reader (src/rate-limiting/plan-quotas.ts) ignores anything that is not a well-formed override.

-- AlterTable
ALTER TABLE "Tenant" ADD COLUMN     "quotaOverrides" JSONB;
