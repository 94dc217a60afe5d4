import { isUuid } from '../database/uuid';
import { eventActionOf, type DomainEvent } from '../events/domain-event';
import { summarizeEvent } from '../events/event-summary';
import { Prisma, type Notification } from '../generated/prisma/tenant/client';
import type { ConnectionModel } from '../graphql/pagination';
import { readList, type RecordList } from '../records/record-list';
import type { TenantLease } from '../tenancy/tenant-client-pool';
import type { TenantSql } from '../tenancy/tenant-sql';
import { TenantTable } from '../tenancy/tenant-table';
import type { DeliveryContext, NotificationChannel } from './channel';

/*
 * In-app notifications: one row per (event, member) in the tenant's schema, written by the
 * delivery worker and read by the member it names.
 */

/** Told of each row written: the subscription that pushes it to the member's open sockets. */
export type NotificationAdded = (tenantId: string, notification: Notification) => void;

export class InAppChannel implements NotificationChannel {
  readonly kind = 'IN_APP' as const;

  constructor(private readonly onAdded: NotificationAdded = () => undefined) {}

  async targets(_event: DomainEvent, recipients: readonly string[]): Promise<string[]> {
    return [...recipients];
  }

  async deliver(event: DomainEvent, userId: string, context: DeliveryContext): Promise<void> {
    const { title, body } = summarizeEvent(event, context.tenant.name);
    // Written once however often the delivery is retried: (event, member) is unique.
    const [added] = await context.tenantData.db.$queryRaw<Notification[]>(
      Prisma.sql`INSERT INTO "Notification" ("id", "userId", "eventId", "type", "title", "body", "subjectType", "subjectId", "occurredAt")
        VALUES (gen_random_uuid(), ${userId}::uuid, ${event.id}::uuid, ${eventActionOf(event.type)}, ${title}, ${body}, ${event.subject.type}, ${event.subject.id}, ${event.occurredAt})
        ON CONFLICT ("eventId", "userId") DO NOTHING
        RETURNING *`,
    );
    if (added) this.onAdded(context.tenant.id, added);
  }
}

const notificationTable = new TenantTable<Notification>('Notification', Object.values(Prisma.NotificationScalarFieldEnum));

const notificationList = (userId: string): RecordList<Notification, { unreadOnly: boolean }, 'OCCURRED_AT'> => ({
  table: notificationTable,
  conditions(filter) {
    const where = [Prisma.sql`t."userId" = ${userId}::uuid`];
    if (filter?.unreadOnly) where.push(Prisma.sql`t."readAt" IS NULL`);
    return where;
  },
  orders: { OCCURRED_AT: { column: 'createdAt', kind: 'timestamp' } },
});

type TenantData = Pick<TenantLease, 'db' | 'sql'>;

export function listNotifications(
  sql: TenantSql,
  userId: string,
  args: { first?: number | null; after?: string | null; unreadOnly?: boolean | null },
): Promise<ConnectionModel<Notification>> {
  return readList(sql, notificationList(userId), {
    first: args.first,
    after: args.after,
    filter: { unreadOnly: args.unreadOnly ?? false },
    orderBy: { field: 'OCCURRED_AT', direction: 'DESC' },
  });
}

export async function unreadCount(sql: TenantSql, userId: string): Promise<number> {
  const [row] = await sql.rows<{ count: number }>(
    Prisma.sql`SELECT count(*)::int AS "count" FROM "Notification" WHERE "userId" = ${userId}::uuid AND "readAt" IS NULL`,
  );
  return row?.count ?? 0;
}

export const MAX_MARK_READ = 100;

/** Marks the member's own notifications among `ids` read; how many were unread. */
export async function markRead(tenant: TenantData, userId: string, ids: readonly string[]): Promise<number> {
  const own = ids.filter(isUuid).map((id) => id.toLowerCase());
  if (own.length === 0) return 0;
  const { count } = await tenant.db.notification.updateMany({ where: { id: { in: own }, userId, readAt: null }, data: { readAt: new Date() } });
  return count;
}
