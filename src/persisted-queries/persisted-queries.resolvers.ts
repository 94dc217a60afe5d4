import { userActor } from '../audit/audit-entry';
import { notFound } from '../errors/app-error';
import type { Resolvers } from '../generated/graphql';
import type { RequestContext } from '../graphql/context';
import { memberPrincipal, platformAdminActor } from '../graphql/context';
import { GLOBAL_SCOPE, type OperationScope, type PersistedOperationModel } from './operation-safelist';

/**
 * One read of the list per request: a document repeating `persistedOperations` under 20 aliases
 * costs one query, not 20 (each of up to the tenant's and the global cap in rows).
 */
const listsOfRequest = new WeakMap<RequestContext, Promise<PersistedOperationModel[]>>();

/** A platform admin's scope: the tenant named (as the directory spells its id), or global for null. */
async function platformScope(ctx: RequestContext, tenantId: string | null | undefined): Promise<OperationScope> {
  if (tenantId === null || tenantId === undefined) return { tenantId: null };
  // Stored under the id as the directory has it: UUIDs compare case-insensitively, but the
  // tenant's own requests look operations up by its canonical (lower-case) id.
  const tenant = await ctx.services.directory.findById(tenantId);
  if (!tenant) throw notFound('Tenant');
  return { tenantId: tenant.id, plan: tenant.plan };
}

function tenantScope(ctx: RequestContext): OperationScope {
  const { tenant } = memberPrincipal(ctx);
  return { tenantId: tenant.id, plan: tenant.plan };
}

export const persistedQueryResolvers: Resolvers = {
  Query: {
    persistedOperations: (_root, _args, ctx) => {
      const tenantId = memberPrincipal(ctx).tenant.id;
      let list = listsOfRequest.get(ctx);
      if (!list) {
        list = ctx.services.safelist.list(tenantId);
        listsOfRequest.set(ctx, list);
      }
      return list;
    },
  },
  Mutation: {
    registerPersistedOperations: async (_root, { operations }, ctx) => ({
      operations: await ctx.services.safelist.register(tenantScope(ctx), operations, userActor(memberPrincipal(ctx).userId, ctx.requestId)),
    }),
    removePersistedOperations: async (_root, { ids }, ctx) => ({
      removedIds: await ctx.services.safelist.remove(tenantScope(ctx), ids, userActor(memberPrincipal(ctx).userId, ctx.requestId)),
    }),
    registerPlatformPersistedOperations: async (_root, { tenantId, operations }, ctx) => ({
      operations: await ctx.services.safelist.register(await platformScope(ctx, tenantId), operations, platformAdminActor(ctx)),
    }),
    removePlatformPersistedOperations: async (_root, { tenantId, ids }, ctx) => ({
      removedIds: await ctx.services.safelist.remove(await platformScope(ctx, tenantId), ids, platformAdminActor(ctx)),
    }),
  },
  PersistedOperation: {
    scope: (operation) => (operation.scope === GLOBAL_SCOPE ? 'GLOBAL' : 'TENANT'),
  },
};
