import type { Resolvers } from '../generated/graphql';
import { memberPrincipal } from '../graphql/context';

/** API keys of the caller's tenant; only signed-in OWNERs and ADMINs (never a key). */
export const apiKeyResolvers: Resolvers = {
  Query: {
    apiKeys: (_root, _args, ctx) => ctx.services.apiKeys.list(memberPrincipal(ctx).tenant.id),
  },
  ApiKey: {
    createdBy: (key) => key.createdByUserId,
  },
  Mutation: {
    createApiKey: (_root, { input }, ctx) => ctx.services.apiKeys.create(memberPrincipal(ctx), input, ctx.requestId),
    revokeApiKey: async (_root, { id }, ctx) => ({ apiKey: await ctx.services.apiKeys.revoke(memberPrincipal(ctx), id, ctx.requestId) }),
  },
};
