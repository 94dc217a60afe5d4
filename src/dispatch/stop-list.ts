import type { StopFilter, StopOrderField } from '../generated/graphql';
import { Prisma, type Stop } from '../generated/prisma/tenant/client';
import type { ConnectionModel } from '../graphql/pagination';
import { readList, type ListArgs, type RecordList } from '../records/record-list';
import { stopTable } from './trip-stops';
import type { DispatchScope } from './trips';

/*
 * Stops across trips, as a dispatcher's screen lists them (what is due next, what was completed
 * lately). A trip's own plan stays `trip.stops`, in sequence order (docs/decisions/0011 §8).
 */

/** The filter with the trip id already unwrapped from its global id. */
export type StopListFilter = Omit<StopFilter, 'tripId'> & { tripId?: string | null };

const nonEmpty = <T>(values: readonly T[] | null | undefined): values is readonly T[] => Boolean(values && values.length > 0);

/**
 * The stop's trip is live (and, if asked, in one of these statuses). A trip's soft delete leaves
 * its stops' rows as they were, so the list hides them with their trip, as `trips` hides it. A
 * correlated EXISTS, so a page walks the order's index and looks each trip up by its key.
 */
function tripCondition(tripStatuses: StopListFilter['tripStatuses']): Prisma.Sql {
  const statuses = nonEmpty(tripStatuses) ? Prisma.sql`AND trip."status" = ANY(${[...new Set(tripStatuses)]}::"TripStatus"[])` : Prisma.empty;
  return Prisma.sql`EXISTS (SELECT 1 FROM "Trip" trip WHERE trip."id" = t."tripId" AND trip."deletedAt" IS NULL ${statuses})`;
}

/** `column` is set (true), or not yet (false); no condition for null. */
function recordedCondition(column: 'arrivedAt' | 'completedAt', recorded: boolean | null | undefined): Prisma.Sql[] {
  if (recorded === null || recorded === undefined) return [];
  return [Prisma.raw(`t."${column}" IS ${recorded ? 'NOT ' : ''}NULL`)];
}

export const stopList: RecordList<Stop, StopListFilter, StopOrderField> = {
  table: stopTable,
  softDeleted: true,
  conditions(filter) {
    const where = [tripCondition(filter?.tripStatuses)];
    if (filter?.tripId) where.push(Prisma.sql`t."tripId" = ${filter.tripId}::uuid`);
    if (nonEmpty(filter?.kinds)) where.push(Prisma.sql`t."kind" = ANY(${[...new Set(filter.kinds)]}::"StopKind"[])`);
    where.push(...recordedCondition('arrivedAt', filter?.arrived), ...recordedCondition('completedAt', filter?.completed));
    if (filter?.windowFrom) where.push(Prisma.sql`t."windowStart" >= ${filter.windowFrom}`);
    if (filter?.windowTo) where.push(Prisma.sql`t."windowStart" < ${filter.windowTo}`);
    return where;
  },
  // Each backed by a (column, id) index (migrations/tenant/*_stop_list_orders).
  orders: {
    CREATED_AT: { column: 'id' },
    UPDATED_AT: { column: 'updatedAt', kind: 'timestamp' },
    WINDOW_START: { column: 'windowStart', nullable: true, kind: 'timestamp' },
    WINDOW_END: { column: 'windowEnd', nullable: true, kind: 'timestamp' },
    COMPLETED_AT: { column: 'completedAt', nullable: true, kind: 'timestamp' },
  },
};

export function listStops({ sql }: DispatchScope, args: ListArgs<StopListFilter, StopOrderField>): Promise<ConnectionModel<Stop>> {
  return readList(sql, stopList, args);
}
