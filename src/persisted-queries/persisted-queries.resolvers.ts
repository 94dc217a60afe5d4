import { notFound } from '../errors/app-error';
import type { Resolvers } from '../generated/graphql';
import { memberPrincipal } from '../graphql/context';
import { GLOBAL_SCOPE } from './operation-safelist';

export const persistedQueryResolvers: Resolvers = {
  Query: {
    persistedOperations: (_root, _args, ctx) => ctx.services.safelist.list(memberPrincipal(ctx).tenant.id),
  },
  Mutation: {
    registerPersistedOperations: async (_root, { operations }, ctx) => ({
      operations: await ctx.services.safelist.register({ tenantId: memberPrincipal(ctx).tenant.id }, operations),
    }),
    registerPlatformPersistedOperations: async (_root, { tenantId, operations }, ctx) => {
      if (tenantId === null || tenantId === undefined) {
        return { operations: await ctx.services.safelist.register({ tenantId: null }, operations) };
      }
      // Stored under the id as the directory has it: UUIDs compare case-insensitively, but the
      // tenant's own requests look operations up by its canonical (lower-case) id.
      const tenant = await ctx.services.directory.findById(tenantId);
      if (!tenant) throw notFound('Tenant');
      return { operations: await ctx.services.safelist.register({ tenantId: tenant.id }, operations) };
    },
  },
  PersistedOperation: {
    scope: (operation) => (operation.scope === GLOBAL_SCOPE ? 'GLOBAL' : 'TENANT'),
  },
};
