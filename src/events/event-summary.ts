import type { DomainEvent, EventTypeName } from './domain-event';

/*
 * One line of human text per event, the same in-app, in email and on Slack: written once here so
 * that the channels agree.
 */

const text = (value: unknown): string | null => (typeof value === 'string' && value.length > 0 ? value : null);

function subjectName(event: DomainEvent): string {
  const label = event.subject.label;
  switch (event.subject.type) {
    case 'Trip':
      return label ? `Trip ${label}` : 'A trip';
    case 'Vehicle':
      return label ? `Vehicle ${label}` : 'A vehicle';
    case 'Driver':
      return label ? `Driver ${label}` : 'A driver';
    default:
      return label ?? event.subject.type;
  }
}

const TITLES: Record<EventTypeName, (event: DomainEvent) => string> = {
  TRIP_CREATED: (event) => `${subjectName(event)} was created`,
  TRIP_TRANSITIONED: (event) => {
    const from = text(event.data.from);
    const to = text(event.data.to);
    return from && to ? `${subjectName(event)}: ${from} → ${to}` : `${subjectName(event)} changed status`;
  },
  TRIP_LATE: (event) => `${subjectName(event)} is late`,
  STOP_ARRIVED: () => 'A vehicle arrived at a stop',
  STOP_COMPLETED: () => 'A stop was completed',
  TRIP_NOTE_CREATED: () => 'A note was added to a trip',
  MAINTENANCE_OPENED: () => 'A vehicle entered maintenance',
  MAINTENANCE_CLOSED: () => 'A maintenance record was closed',
  VEHICLE_CREATED: (event) => `${subjectName(event)} was added`,
  VEHICLE_DELETED: (event) => `${subjectName(event)} was deleted`,
  DRIVER_CREATED: (event) => `${subjectName(event)} was added`,
  DRIVER_DELETED: (event) => `${subjectName(event)} was deleted`,
  MEMBER_ADDED: () => 'A member was added',
  MEMBER_JOINED: () => 'Someone joined by invitation',
  MEMBER_REMOVED: () => 'A member was removed',
  MEMBER_ROLE_CHANGED: () => "A member's role changed",
  API_KEY_CREATED: () => 'An API key was created',
  API_KEY_REVOKED: () => 'An API key was revoked',
};

export interface EventSummary {
  title: string;
  body: string;
}

export function summarizeEvent(event: DomainEvent, tenantName: string): EventSummary {
  const title = TITLES[event.type](event);
  const reason = text(event.data.reason);
  const when = event.occurredAt.toISOString().replace('T', ' ').slice(0, 16);
  return { title, body: `${title} in ${tenantName} at ${when} UTC${reason ? ` (reason: ${reason})` : ''}.` };
}
