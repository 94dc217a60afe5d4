-- Plan quotas (vehicles, drivers, members, API keys, open trips) come from the tenant's plan;
-- a platform admin may override any of them (setTenantQuota). The overrides live with the
-- tenant row, so the tenant directory's cache and its change notification carry them to every
-- instance like the rate-limit overrides. { "<QUOTA>": <limit> | null (unbounded) }; a quota
-- not named follows the plan.

-- AlterTable
ALTER TABLE "Tenant" ADD COLUMN     "quotaOverrides" JSONB;

-- Hand-added (Prisma cannot say it): only an object of overrides, never a list or a scalar.
ALTER TABLE "Tenant" ADD CONSTRAINT "Tenant_quotaOverrides_object" CHECK ("quotaOverrides" IS NULL OR jsonb_typeof("quotaOverrides") = 'object');
