import type { Resolvers } from '../generated/graphql';
import { readTenantUsage } from './tenant-usage';

/** Plan quotas: usage for the tenant's admins and for platform admins, and platform overrides. */
export const quotaResolvers: Resolvers = {
  Query: {
    tenantUsage: (_root, _args, ctx) => {
      const { sql, principal } = ctx.tenantScope();
      return readTenantUsage(ctx.services.platform, sql, principal.tenant);
    },
  },
  Mutation: {
    setTenantQuota: async (_root, { id, quota, limit }, ctx) => ({
      // limit absent or null: back to the plan's; { max: null } (or no max): unbounded.
      tenant: await ctx.services.lifecycle.setQuota(id, quota, limit ? (limit.max ?? null) : undefined),
    }),
  },
  Tenant: {
    usage: async (tenant, _args, ctx) => {
      // Only a tenant whose schema was provisioned has anything to count (and a role to count it as).
      if (!tenant.provisionedAt || (tenant.status !== 'ACTIVE' && tenant.status !== 'SUSPENDED')) return null;
      const lease = ctx.services.tenantClients.lease(tenant);
      try {
        return await readTenantUsage(ctx.services.platform, lease.sql, tenant);
      } finally {
        lease.release();
      }
    },
  },
};
