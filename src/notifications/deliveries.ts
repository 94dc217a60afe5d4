import { isUuid } from '../database/uuid';
import { eventActionOf, EVENT_TYPES, type EventAction, type EventTypeName } from '../events/domain-event';
import type { NotificationDeliveryFilter } from '../generated/graphql';
import { Prisma, type DomainEvent, type NotificationDelivery } from '../generated/prisma/tenant/client';
import type { ConnectionModel } from '../graphql/pagination';
import { readList, type RecordList } from '../records/record-list';
import type { TenantLease } from '../tenancy/tenant-client-pool';
import type { TenantSql } from '../tenancy/tenant-sql';
import { TenantTable } from '../tenancy/tenant-table';
import { DeliveryError, type ChannelKind } from './channel';

/*
 * The deliveries of a tenant's events (NotificationDelivery in its schema): claimed a few at a
 * time with SKIP LOCKED, so two workers never send the same one at once; each outcome recorded
 * with the next attempt's time (exponential backoff with full jitter) or the dead-letter state.
 */

type TenantData = Pick<TenantLease, 'db' | 'sql'>;

export interface RetryPolicy {
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** How long a claim keeps others off a delivery: past it, an attempt whose worker died is taken up again. */
  claimMs: number;
}

/** The wait before attempt `attempt + 1`: base × 2^(attempt−1), capped, then a random share of it in [½, 1]. */
export function backoffMs(attempt: number, policy: Pick<RetryPolicy, 'baseDelayMs' | 'maxDelayMs'>, random = Math.random): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(ceiling * (0.5 + random() * 0.5));
}

export type DeliveryRow = NotificationDelivery & { event: Pick<DomainEvent, 'type' | 'occurredAt'> };

export interface ClaimedDelivery {
  id: string;
  eventId: string;
  channel: ChannelKind;
  target: string;
  /** This attempt's number, 1 for the first. */
  attempt: number;
}

/** Up to `limit` due deliveries, claimed: their next attempt moved past the claim and the attempt counted. */
export async function claimDue(tenant: TenantData, limit: number, policy: RetryPolicy): Promise<ClaimedDelivery[]> {
  return tenant.db.$queryRaw<ClaimedDelivery[]>(
    Prisma.sql`UPDATE "NotificationDelivery" d
         SET "attempts" = d."attempts" + 1, "lastAttemptAt" = now(), "updatedAt" = now(),
             "nextAttemptAt" = now() + make_interval(secs => ${policy.claimMs / 1000})
        WHERE d."id" IN (
          SELECT "id" FROM "NotificationDelivery"
           WHERE "status" IN ('PENDING', 'RETRYING') AND "nextAttemptAt" <= now()
           ORDER BY "nextAttemptAt" LIMIT ${limit} FOR UPDATE SKIP LOCKED)
      RETURNING d."id", d."eventId", d."channel"::text AS "channel", d."target", d."attempts" AS "attempt"`,
  );
}

/** Stored reasons are short and single-line: a reason, not a response. */
const reasonOf = (error: unknown): string => {
  const message = error instanceof Error ? error.message : 'delivery failed';
  return message.replace(/\s+/g, ' ').slice(0, 300);
};

export type Outcome = { delivered: true } | { delivered: false; error: unknown };

/** Records how an attempt went: DELIVERED, RETRYING at the next backoff, or DEAD; which of them. */
export async function recordOutcome(tenant: TenantData, delivery: ClaimedDelivery, outcome: Outcome, policy: RetryPolicy): Promise<'delivered' | 'retrying' | 'dead'> {
  if (outcome.delivered) {
    await tenant.db.notificationDelivery.update({
      where: { id: delivery.id },
      data: { status: 'DELIVERED', deliveredAt: new Date(), lastError: null },
    });
    return 'delivered';
  }
  const retryable = !(outcome.error instanceof DeliveryError) || outcome.error.retryable;
  const dead = !retryable || delivery.attempt >= policy.maxAttempts;
  await tenant.db.notificationDelivery.update({
    where: { id: delivery.id },
    data: {
      status: dead ? 'DEAD' : 'RETRYING',
      lastError: reasonOf(outcome.error),
      ...(dead ? {} : { nextAttemptAt: new Date(Date.now() + backoffMs(delivery.attempt, policy)) }),
    },
  });
  return dead ? 'dead' : 'retrying';
}

/** When the tenant's next delivery is due, if any is waiting. */
export async function nextDueAt(tenant: TenantData): Promise<Date | null> {
  const [row] = await tenant.sql.rows<{ due: Date | null }>(
    Prisma.sql`SELECT min("nextAttemptAt") AS "due" FROM "NotificationDelivery" WHERE "status" IN ('PENDING', 'RETRYING')`,
  );
  return row?.due ?? null;
}

const deliveryTable = new TenantTable<NotificationDelivery>('NotificationDelivery', Object.values(Prisma.NotificationDeliveryScalarFieldEnum));
const eventTable = new TenantTable<DomainEvent>('DomainEvent', Object.values(Prisma.DomainEventScalarFieldEnum));

const NOTHING = Prisma.sql`FALSE`;

const deliveryList: RecordList<NotificationDelivery, NotificationDeliveryFilter, 'CREATED_AT'> = {
  table: deliveryTable,
  conditions(filter) {
    const where: Prisma.Sql[] = [];
    if (filter?.status) where.push(Prisma.sql`t."status" = ${filter.status}::"DeliveryStatus"`);
    if (filter?.channel) where.push(Prisma.sql`t."channel" = ${filter.channel}::"NotificationChannelKind"`);
    if (filter?.eventId) where.push(isUuid(filter.eventId) ? Prisma.sql`t."eventId" = ${filter.eventId.toLowerCase()}::uuid` : NOTHING);
    if (filter?.eventType) {
      where.push(Prisma.sql`t."eventId" IN (SELECT e."id" FROM "DomainEvent" e WHERE e."type" = ${eventActionOf(filter.eventType as EventTypeName)})`);
    }
    return where;
  },
  // Delivery ids are random (written in bulk by the fan-out): newest first is by createdAt, ties by id.
  orders: { CREATED_AT: { column: 'createdAt', kind: 'timestamp' } },
};

/** Newest first, each with its event's type and time (joined in the same statement). */
export async function listDeliveries(
  sql: TenantSql,
  args: { first?: number | null; after?: string | null; filter?: NotificationDeliveryFilter | null },
): Promise<ConnectionModel<DeliveryRow>> {
  const events = new Map<string, DomainEvent>();
  const connection = await readList(
    sql,
    deliveryList,
    { ...args, orderBy: { field: 'CREATED_AT', direction: 'DESC' } },
    { relation: { table: eventTable, localKey: 'eventId', relatedKey: 'id' }, keep: (row, event) => event && events.set(row.id, event) },
  );
  return {
    ...connection,
    edges: connection.edges.map(({ cursor, node }) => ({ cursor, node: withEvent(node, events.get(node.id)) })),
  };
}

function withEvent(delivery: NotificationDelivery, event: DomainEvent | undefined): DeliveryRow {
  // The foreign key keeps every delivery's event; a missing one is a bug worth a loud error.
  if (!event) throw new Error(`delivery ${delivery.id} has no event`);
  return { ...delivery, event: { type: event.type, occurredAt: event.occurredAt } };
}

export const MAX_REDELIVER = 100;

/** Queues deliveries again with a fresh count; the ones found (ids of other tenants are not). */
export async function requeueDeliveries(db: Prisma.TransactionClient, ids: readonly string[]): Promise<DeliveryRow[]> {
  const own = ids.filter(isUuid).map((id) => id.toLowerCase());
  if (own.length === 0) return [];
  await db.notificationDelivery.updateMany({
    where: { id: { in: own } },
    data: { status: 'PENDING', attempts: 0, nextAttemptAt: new Date(), lastError: null, deliveredAt: null },
  });
  const rows = await db.notificationDelivery.findMany({ where: { id: { in: own } }, include: { event: { select: { type: true, occurredAt: true } } } });
  return rows.sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime() || (a.id < b.id ? 1 : -1));
}

/** The API's name of a stored event type. */
export const eventTypeName = (action: string): EventTypeName => {
  const name = EVENT_TYPES[action as EventAction] as EventTypeName | undefined;
  if (!name) throw new Error(`an outbox row holds ${action}, which is no event type`);
  return name;
};
