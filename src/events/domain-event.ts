import type { AuditActorKind, AuditMetadata } from '../audit/audit-entry';

/*
 * What the server tells the outside world happened in a tenant. An event is an audit entry whose
 * action is in EVENT_TYPES: it is written beside the entry, in the change's own transaction, into
 * the tenant's outbox (src/events), so an event exists if and only if its change committed. Its
 * id is the audit entry's id, which partners use to deduplicate at-least-once deliveries.
 */

/** The audit actions that are events, as the API names them (`EventType` in schema/events.graphql). */
export const EVENT_TYPES = {
  'trip.created': 'TRIP_CREATED',
  'trip.transitioned': 'TRIP_TRANSITIONED',
  'trip.late': 'TRIP_LATE',
  'stop.arrived': 'STOP_ARRIVED',
  'stop.completed': 'STOP_COMPLETED',
  'tripNote.created': 'TRIP_NOTE_CREATED',
  'maintenance.opened': 'MAINTENANCE_OPENED',
  'maintenance.closed': 'MAINTENANCE_CLOSED',
  'vehicle.created': 'VEHICLE_CREATED',
  'vehicle.deleted': 'VEHICLE_DELETED',
  'driver.created': 'DRIVER_CREATED',
  'driver.deleted': 'DRIVER_DELETED',
  'member.added': 'MEMBER_ADDED',
  'invitation.joined': 'MEMBER_JOINED',
  'member.removed': 'MEMBER_REMOVED',
  'member.roleChanged': 'MEMBER_ROLE_CHANGED',
  'apiKey.created': 'API_KEY_CREATED',
  'apiKey.revoked': 'API_KEY_REVOKED',
} as const;

export type EventAction = keyof typeof EVENT_TYPES;
/** The GraphQL enum value of an event type. */
export type EventTypeName = (typeof EVENT_TYPES)[EventAction];

export const isEventAction = (action: string): action is EventAction => Object.hasOwn(EVENT_TYPES, action);

const ACTION_OF = new Map<string, EventAction>(Object.entries(EVENT_TYPES).map(([action, name]) => [name, action as EventAction]));
export const eventActionOf = (name: EventTypeName): EventAction => ACTION_OF.get(name) as EventAction;

export interface DomainEvent {
  /** The audit entry's id: the same event delivered twice carries the same id. */
  id: string;
  tenantId: string;
  type: EventTypeName;
  occurredAt: Date;
  /** What changed: `Trip` and the trip's row id, `Member` and the user's id, ... */
  subject: {
    type: string;
    id: string;
    /** How people name it (a trip's reference, a vehicle's plate), when it still exists. */
    label?: string;
  };
  actor: { kind: AuditActorKind; id: string | null };
  /** The audit entry's metadata: a summary (from/to status, fields changed), never a secret. */
  data: AuditMetadata;
}
