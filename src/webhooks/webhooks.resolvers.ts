import type { Resolvers } from '../generated/graphql';
import type { RequestContext } from '../graphql/context';
import type { WebhookScope } from './webhook-endpoints';

/** The caller's tenant, as the webhook and Slack settings act on it (signed-in ADMIN+ only: the SDL's policy). */
function scopeOf(ctx: RequestContext): WebhookScope {
  const { db, sql, actor, principal } = ctx.tenantScope();
  return { db, sql, actor, tenantId: principal.tenant.id };
}

export const webhookResolvers: Resolvers = {
  Query: {
    webhookEndpoints: (_root, _args, ctx) => ctx.services.webhooks.list(ctx.tenantScope()),
    slackWebhook: (_root, _args, ctx) => ctx.services.slack.get(ctx.tenantScope()),
  },
  Mutation: {
    createWebhookEndpoint: (_root, { input }, ctx) => ctx.services.webhooks.create(scopeOf(ctx), input),
    updateWebhookEndpoint: async (_root, { id, input }, ctx) => ({ webhookEndpoint: await ctx.services.webhooks.update(scopeOf(ctx), id, input) }),
    deleteWebhookEndpoint: async (_root, { id }, ctx) => ({ deletedId: await ctx.services.webhooks.delete(scopeOf(ctx), id) }),
    rotateWebhookSecret: (_root, { id, gracePeriodSeconds }, ctx) => ctx.services.webhooks.rotateSecret(scopeOf(ctx), id, gracePeriodSeconds ?? 86_400),
    setSlackWebhook: async (_root, { url }, ctx) => ({ slackWebhook: await ctx.services.slack.set(scopeOf(ctx), url) }),
    removeSlackWebhook: async (_root, _args, ctx) => ({ slackWebhook: await ctx.services.slack.remove(scopeOf(ctx)) }),
  },
};
