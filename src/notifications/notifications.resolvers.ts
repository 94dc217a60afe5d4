import { writeAudit } from '../audit/audit-log';
import { badInput } from '../errors/app-error';
import type { EventTypeName } from '../events/domain-event';
import type { Resolvers } from '../generated/graphql';
import { memberPrincipal } from '../graphql/context';
import { userMessages } from '../subscriptions/subscription-stream';
import type { Notification } from '../generated/prisma/tenant/client';
import type { TenantPrisma } from '../tenancy/tenant-client-pool';
import { apiTargetId } from '../records/audit-events';
import { eventTypeName, listDeliveries, MAX_REDELIVER, requeueDeliveries, type DeliveryRow } from './deliveries';
import { listNotifications, markRead, MAX_MARK_READ, unreadCount } from './in-app';
import { ALL_EVENT_TYPES, routeSettings, ROUTED_CHANNELS, type RoutedChannel } from './routing';

const MAX_ROUTES = 100;

const isRouted = (channel: string): channel is RoutedChannel => (ROUTED_CHANNELS as readonly string[]).includes(channel);

/** The caller's muted event types, in the catalogue's order. */
async function mutedOf(db: TenantPrisma, userId: string): Promise<EventTypeName[]> {
  const mutes = await db.notificationMute.findMany({ where: { userId }, select: { eventType: true } });
  const muted = new Set(mutes.map((mute) => mute.eventType));
  return ALL_EVENT_TYPES.filter((type) => muted.has(type));
}

export const notificationResolvers: Resolvers = {
  Query: {
    notifications: (_root, args, ctx) => listNotifications(ctx.tenantScope().sql, memberPrincipal(ctx).userId, args),
    unreadNotificationCount: (_root, _args, ctx) => unreadCount(ctx.tenantScope().sql, memberPrincipal(ctx).userId),
    notificationDeliveries: (_root, args, ctx) => listDeliveries(ctx.tenantScope().sql, args),
    notificationRoutes: (_root, _args, ctx) => routeSettings(ctx.tenantScope()),
    myNotificationPreferences: async (_root, _args, ctx) => ({ mutedEventTypes: await mutedOf(ctx.tenantScope().db, memberPrincipal(ctx).userId) }),
  },
  Mutation: {
    markNotificationsRead: async (_root, { ids }, ctx) => {
      if (ids.length > MAX_MARK_READ) throw badInput(`At most ${MAX_MARK_READ} ids at once`, 'ids');
      const { userId } = memberPrincipal(ctx);
      const scope = ctx.tenantScope();
      const marked = await markRead(scope, userId, ids);
      return { marked, unreadCount: await unreadCount(scope.sql, userId) };
    },
    redeliverNotifications: async (_root, { ids }, ctx) => {
      if (ids.length > MAX_REDELIVER) throw badInput(`At most ${MAX_REDELIVER} ids at once`, 'ids');
      const scope = ctx.tenantScope();
      // Sent again to members or partners: on record, in the same transaction, like every other send's cause.
      const deliveries = await scope.db.$transaction(async (tx) => {
        const requeued = await requeueDeliveries(tx, ids);
        if (requeued.length > 0) {
          await writeAudit(tx, scope.actor, {
            action: 'notificationDeliveries.redelivered',
            targetType: 'NotificationDelivery',
            targetId: requeued.length === 1 ? (requeued[0]?.id as string) : 'several',
            metadata: { count: requeued.length, ids: requeued.map((delivery) => delivery.id) },
          });
        }
        return requeued;
      });
      if (deliveries.length > 0) await ctx.services.notifications.wake(scope.principal.tenant.id);
      return { deliveries };
    },
    setNotificationRoutes: async (_root, { routes }, ctx) => {
      if (routes.length > MAX_ROUTES) throw badInput(`At most ${MAX_ROUTES} routes at once`, 'routes');
      for (const route of routes) {
        if (!isRouted(route.channel)) throw badInput('Webhooks are routed by each endpoint\'s own event types', 'routes.channel');
      }
      const scope = ctx.tenantScope();
      await scope.db.$transaction(async (tx) => {
        for (const route of routes) {
          const channel = route.channel as RoutedChannel;
          await tx.notificationRoute.upsert({
            where: { eventType_channel: { eventType: route.eventType, channel } },
            create: { eventType: route.eventType, channel, enabled: route.enabled },
            update: { enabled: route.enabled },
          });
        }
        await writeAudit(tx, scope.actor, {
          action: 'notificationRoutes.updated',
          targetType: 'NotificationRoute',
          targetId: 'routes',
          metadata: { routes: routes.map((route) => ({ eventType: route.eventType, channel: route.channel, enabled: route.enabled })) },
        });
      });
      return routeSettings(scope);
    },
    setNotificationsMuted: async (_root, { eventTypes, muted }, ctx) => {
      const { userId } = memberPrincipal(ctx);
      const { db } = ctx.tenantScope();
      const types = [...new Set(eventTypes)];
      if (muted) await db.notificationMute.createMany({ data: types.map((eventType) => ({ userId, eventType })), skipDuplicates: true });
      else await db.notificationMute.deleteMany({ where: { userId, eventType: { in: types } } });
      return { mutedEventTypes: await mutedOf(db, userId) };
    },
  },
  Subscription: {
    // The in-app channel publishes each row it writes to its member (server.ts).
    notificationAdded: { subscribe: (_root, _args, ctx) => userMessages(ctx), resolve: (payload: unknown) => payload as Notification },
  },
  Notification: {
    type: (notification) => eventTypeName(notification.type),
    subjectId: (notification) => apiTargetId({ targetType: notification.subjectType, targetId: notification.subjectId }),
  },
  NotificationDelivery: {
    eventType: (delivery: DeliveryRow) => eventTypeName(delivery.event.type),
    occurredAt: (delivery: DeliveryRow) => delivery.event.occurredAt,
    nextAttemptAt: (delivery: DeliveryRow) => (delivery.status === 'PENDING' || delivery.status === 'RETRYING' ? delivery.nextAttemptAt : null),
  },
};
