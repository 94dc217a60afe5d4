import DataLoader from 'dataloader';
import { searchCondition } from '../fleet/fleet-tables';
import type { TripOrderField } from '../generated/graphql';
import { Prisma, TripStatus, type Trip, type TripTransition } from '../generated/prisma/tenant/client';
import type { RecordType } from '../records/record-changes';
import type { RecordList } from '../records/record-list';
import type { TenantSql } from '../tenancy/tenant-sql';
import { TenantTable } from '../tenancy/tenant-table';

/** The dispatch tables as the request path reads them (columns from Prisma's field lists). */
export const tripTable = new TenantTable<Trip>('Trip', Object.values(Prisma.TripScalarFieldEnum));
export const tripTransitionTable = new TenantTable<TripTransition>('TripTransition', Object.values(Prisma.TripTransitionScalarFieldEnum));

export const tripRecord: RecordType<Trip> = { name: 'Trip', table: tripTable, uniqueAmongLive: ['reference'] };

export const MAX_TRIPS_PER_PARENT = 50;

/** Which trips of a vehicle or driver a field asks for: the newest `first`, of these statuses. */
export interface RecentTripsQuery {
  first: number;
  statuses: readonly TripStatus[] | null;
}

/**
 * Per-request batching for trips: by id, their transitions, and a vehicle's or driver's recent
 * trips (one statement for every parent of a page, however many; a window function picks each
 * parent's newest). Created on the tenant-bound client, so they only ever hold this tenant's rows.
 */
export class TripLoaders {
  readonly tripById: DataLoader<string, Trip | null>;
  readonly transitionsOfTrip: DataLoader<string, TripTransition[]>;
  private readonly recent = new Map<string, DataLoader<string, Trip[]>>();

  constructor(private readonly sql: TenantSql) {
    this.tripById = new DataLoader(async (ids) => {
      const rows = new Map((await tripTable.whereIn(sql, 'id', ids)).map((row) => [row.id, row]));
      return ids.map((id) => rows.get(id) ?? null);
    });
    this.transitionsOfTrip = new DataLoader(async (tripIds) => {
      const byTrip = new Map<string, TripTransition[]>(tripIds.map((id) => [id, []]));
      // Ids are UUIDv7: id order is the order they were written.
      for (const row of (await tripTransitionTable.whereIn(sql, 'tripId', tripIds)).sort((a, b) => (a.id < b.id ? -1 : 1))) byTrip.get(row.tripId)?.push(row);
      return tripIds.map((id) => byTrip.get(id) ?? []);
    });
  }

  /** The newest trips of each vehicle (`parent` 'vehicleId') or driver ('driverId'). */
  recentTrips(parent: 'vehicleId' | 'driverId', query: RecentTripsQuery): DataLoader<string, Trip[]> {
    const key = JSON.stringify([parent, query.first, query.statuses]);
    let loader = this.recent.get(key);
    if (!loader) {
      loader = new DataLoader(async (parentIds) => {
        const rows = await tripTable.newestPerKey(this.sql, parent, parentIds, query.first, [...statusCondition(query.statuses), Prisma.sql`t."deletedAt" IS NULL`]);
        const byParent = new Map<string, Trip[]>(parentIds.map((id) => [id, []]));
        for (const row of rows) byParent.get(row[parent] as string)?.push(row);
        return parentIds.map((id) => byParent.get(id) ?? []);
      });
      this.recent.set(key, loader);
    }
    return loader;
  }
}

/** `t.status` is one of `statuses` (no condition for null or empty). */
export function statusCondition(statuses: readonly TripStatus[] | null | undefined): Prisma.Sql[] {
  return statuses && statuses.length > 0 ? [Prisma.sql`t."status" = ANY(${[...new Set(statuses)]}::"TripStatus"[])`] : [];
}

export interface TripFilter {
  status?: readonly TripStatus[] | null;
  /** Row ids (the resolver has unwrapped the global ids). */
  vehicleId?: string | null;
  driverId?: string | null;
  departureFrom?: Date | null;
  departureTo?: Date | null;
  search?: string | null;
}

export const tripList: RecordList<Trip, TripFilter, TripOrderField> = {
  table: tripTable,
  softDeleted: true,
  conditions(filter) {
    const where = statusCondition(filter?.status);
    if (filter?.vehicleId) where.push(Prisma.sql`t."vehicleId" = ${filter.vehicleId}::uuid`);
    if (filter?.driverId) where.push(Prisma.sql`t."driverId" = ${filter.driverId}::uuid`);
    if (filter?.departureFrom) where.push(Prisma.sql`t."plannedDepartureAt" >= ${filter.departureFrom}`);
    if (filter?.departureTo) where.push(Prisma.sql`t."plannedDepartureAt" < ${filter.departureTo}`);
    where.push(...searchCondition(filter?.search, [{ column: 'reference', identifier: true }, { column: 'origin' }, { column: 'destination' }]));
    return where;
  },
  orders: {
    CREATED_AT: { column: 'id' },
    UPDATED_AT: { column: 'updatedAt', kind: 'timestamp' },
    REFERENCE: { column: 'reference' },
    PLANNED_DEPARTURE_AT: { column: 'plannedDepartureAt', nullable: true, kind: 'timestamp' },
    STATUS: { column: 'status', kind: 'enum', values: Object.values(TripStatus) },
  },
};
