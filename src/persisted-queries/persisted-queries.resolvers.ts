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
      if (tenantId && !(await ctx.services.directory.findById(tenantId))) throw notFound('Tenant');
      return { operations: await ctx.services.safelist.register({ tenantId: tenantId ?? null }, operations) };
    },
  },
  PersistedOperation: {
    scope: (operation) => (operation.scope === GLOBAL_SCOPE ? 'GLOBAL' : 'TENANT'),
  },
};
