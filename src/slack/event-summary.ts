import type { DomainEvent } from '../events/domain-event';
import { Prisma } from '../generated/prisma/tenant/client';
import type { TenantSql } from '../tenancy/tenant-sql';

/*
 * One line a person reads in Slack: "Trip T-1001: PLANNED → DISPATCHED". The event carries
 * row ids; the trip's reference or the vehicle's plate is read from the tenant's data when the
 * message is sent (a row deleted since shows its id).
 */

const SUBJECT_LABELS: Record<string, Prisma.Sql> = {
  Trip: Prisma.sql`SELECT "reference" AS "label" FROM "Trip" WHERE "id" = `,
  Vehicle: Prisma.sql`SELECT "plate" AS "label" FROM "Vehicle" WHERE "id" = `,
  Driver: Prisma.sql`SELECT "name" AS "label" FROM "Driver" WHERE "id" = `,
};

const UUID = /^[0-9a-f-]{36}$/i;

async function subjectLabel(sql: TenantSql, subject: DomainEvent['subject']): Promise<string> {
  const query = SUBJECT_LABELS[subject.type];
  if (!query || !UUID.test(subject.id)) return subject.id;
  const [row] = await sql.rows<{ label: string }>(Prisma.sql`${query}${subject.id}::uuid`);
  return row?.label ?? subject.id;
}

const text = (value: unknown): string | null => (typeof value === 'string' && value.length > 0 ? value : null);

/** "TRIP_NOTE_CREATED" -> "trip note created". */
const spoken = (type: string) => type.toLowerCase().replaceAll('_', ' ');

export async function eventSummary(event: DomainEvent, sql: TenantSql): Promise<string> {
  const label = await subjectLabel(sql, event.subject);
  const { data } = event;
  switch (event.type) {
    case 'TRIP_TRANSITIONED': {
      const from = text(data.from);
      const to = text(data.to);
      return `Trip ${label}: ${from ?? '?'} → ${to ?? '?'}${text(data.reason) ? ` (${text(data.reason)})` : ''}`;
    }
    case 'TRIP_CREATED':
      return `Trip ${label} created`;
    case 'TRIP_LATE':
      return `Trip ${label} is late`;
    default:
      return `${event.subject.type} ${label}: ${spoken(event.type)}`;
  }
}

/** Slack reads &, < and > as markup (links, mentions): escaped, a tenant's text stays text. */
export function slackEscape(value: string): string {
  return value.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');
}
