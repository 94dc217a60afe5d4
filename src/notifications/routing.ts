import { roleAtLeast } from '../auth/principal';
import { EVENT_TYPES, type DomainEvent, type EventTypeName } from '../events/domain-event';
import type { MemberRole } from '../generated/prisma/platform/client';
import type { TenantLease } from '../tenancy/tenant-client-pool';
import type { ChannelKind } from './channel';

/*
 * Who hears of an event, and on which channels: the tenant's routing (defaults here, the tenant's
 * changes in NotificationRoute), each member's mutes (NotificationMute), and who may know of the
 * event at all (the lowest role that may read what it is about).
 */

export const ROUTED_CHANNELS = ['IN_APP', 'EMAIL', 'SLACK'] as const satisfies readonly ChannelKind[];
export type RoutedChannel = (typeof ROUTED_CHANNELS)[number];
export const ALL_EVENT_TYPES = Object.values(EVENT_TYPES) as EventTypeName[];

/** The lowest role told of an event: trips are everyone's day; the fleet is managers'; access is admins'. */
const AUDIENCE: Record<EventTypeName, MemberRole> = {
  TRIP_CREATED: 'MEMBER',
  TRIP_TRANSITIONED: 'MEMBER',
  TRIP_LATE: 'MEMBER',
  STOP_ARRIVED: 'MEMBER',
  STOP_COMPLETED: 'MEMBER',
  TRIP_NOTE_CREATED: 'MEMBER',
  MAINTENANCE_OPENED: 'MANAGER',
  MAINTENANCE_CLOSED: 'MANAGER',
  VEHICLE_CREATED: 'MANAGER',
  VEHICLE_DELETED: 'MANAGER',
  DRIVER_CREATED: 'MANAGER',
  DRIVER_DELETED: 'MANAGER',
  MEMBER_ADDED: 'ADMIN',
  MEMBER_JOINED: 'ADMIN',
  MEMBER_REMOVED: 'ADMIN',
  MEMBER_ROLE_CHANGED: 'ADMIN',
  API_KEY_CREATED: 'ADMIN',
  API_KEY_REVOKED: 'ADMIN',
};

/** On unless the tenant turns them off: in-app for everything; email and Slack for what needs a person soon. */
const DEFAULT_ON: Record<RoutedChannel, ReadonlySet<EventTypeName>> = {
  IN_APP: new Set(ALL_EVENT_TYPES),
  EMAIL: new Set<EventTypeName>(['TRIP_LATE', 'API_KEY_CREATED', 'MEMBER_ROLE_CHANGED']),
  SLACK: new Set<EventTypeName>(['TRIP_TRANSITIONED', 'TRIP_LATE', 'STOP_COMPLETED', 'MAINTENANCE_OPENED', 'MAINTENANCE_CLOSED']),
};

export const isDefaultOn = (eventType: EventTypeName, channel: RoutedChannel): boolean => DEFAULT_ON[channel].has(eventType);

export interface RouteSetting {
  eventType: EventTypeName;
  channel: RoutedChannel;
  enabled: boolean;
  isDefault: boolean;
}

type TenantData = Pick<TenantLease, 'db' | 'sql'>;

/** Every (event type, routed channel) with whether it is on. */
export async function routeSettings(tenant: TenantData): Promise<RouteSetting[]> {
  const changed = await tenant.db.notificationRoute.findMany();
  const byKey = new Map(changed.map((route) => [`${route.eventType}/${route.channel}`, route.enabled]));
  return ALL_EVENT_TYPES.flatMap((eventType) =>
    ROUTED_CHANNELS.map((channel) => {
      const enabled = byKey.get(`${eventType}/${channel}`);
      return { eventType, channel, enabled: enabled ?? isDefaultOn(eventType, channel), isDefault: enabled === undefined };
    }),
  );
}

export interface Member {
  userId: string;
  role: MemberRole;
}

export interface EventRoute {
  /** Channels on for the event (webhooks are always asked: endpoints choose their own event types). */
  channels: ChannelKind[];
  /** Members who may be told: in the audience, not the one who made the change, not muted. */
  recipients: string[];
}

export async function routeEvent(tenant: TenantData, event: DomainEvent, members: readonly Member[]): Promise<EventRoute> {
  const [routes, mutes] = await Promise.all([
    tenant.db.notificationRoute.findMany({ where: { eventType: event.type } }),
    tenant.db.notificationMute.findMany({ where: { eventType: event.type }, select: { userId: true } }),
  ]);
  const changed = new Map(routes.map((route) => [route.channel, route.enabled]));
  const channels: ChannelKind[] = ROUTED_CHANNELS.filter((channel) => changed.get(channel) ?? isDefaultOn(event.type, channel));
  channels.push('WEBHOOK');
  const muted = new Set(mutes.map((mute) => mute.userId));
  const author = event.actor.kind === 'USER' ? event.actor.id : null;
  const recipients = members
    .filter((member) => roleAtLeast(member.role, AUDIENCE[event.type]) && member.userId !== author && !muted.has(member.userId))
    .map((member) => member.userId);
  return { channels, recipients };
}
