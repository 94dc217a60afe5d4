import { DriverStatus, Prisma, VehicleStatus, type Driver, type Vehicle } from '../generated/prisma/tenant/client';
import type { DriverFilter, DriverOrderField, VehicleFilter, VehicleOrderField } from '../generated/graphql';
import { conflict } from '../errors/app-error';
import type { RecordType, TenantTransaction } from '../records/record-changes';
import type { RecordList } from '../records/record-list';
import { containsText } from '../database/list-sql';
import { TenantTable, type ToOneJoin } from '../tenancy/tenant-table';
import { normaliseIdentifier, searchText } from './fleet-input';

/** The fleet's tables as the request path reads them; columns are Prisma's generated field lists. */
export const vehicleTable = new TenantTable<Vehicle>('Vehicle', Object.values(Prisma.VehicleScalarFieldEnum));
export const driverTable = new TenantTable<Driver>('Driver', Object.values(Prisma.DriverScalarFieldEnum));

export const vehicleRecord: RecordType<Vehicle> = { name: 'Vehicle', table: vehicleTable, uniqueAmongLive: ['plate'] };
export const driverRecord: RecordType<Driver> = { name: 'Driver', table: driverTable, uniqueAmongLive: ['licenseNumber'] };

/**
 * Refuses (CONFLICT) a change to a vehicle or driver that is on a trip on the road (DISPATCHED
 * or IN_TRANSIT): deleting it, or taking the vehicle into maintenance. Fleet knows this much of
 * dispatch because these are the fleet's own rules.
 */
export async function refuseIfOnTheRoad(tx: TenantTransaction, on: { vehicleId: string } | { driverId: string }): Promise<void> {
  const trips = await tx.trip.count({ where: { ...on, status: { in: ['DISPATCHED', 'IN_TRANSIT'] }, deletedAt: null } });
  if (trips > 0) throw conflict(`This ${'vehicleId' in on ? 'vehicle' : 'driver'} is on a trip on the road; deliver or cancel it first`, 'vehicleId' in on ? 'vehicleId' : 'driverId');
}

export const vehicleDriver: ToOneJoin<Vehicle, Driver> = { table: driverTable, localKey: 'driverId', relatedKey: 'id' };
export const driverVehicle: ToOneJoin<Driver, Vehicle> = { table: vehicleTable, localKey: 'id', relatedKey: 'driverId' };

/** `column` between the range's bounds, both inclusive, either optional. */
export function withinRange(column: Prisma.Sql, range: { min?: number | null; max?: number | null } | null | undefined): Prisma.Sql[] {
  const where: Prisma.Sql[] = [];
  if (range?.min !== undefined && range.min !== null) where.push(Prisma.sql`${column} >= ${range.min}`);
  if (range?.max !== undefined && range.max !== null) where.push(Prisma.sql`${column} <= ${range.max}`);
  return where;
}

/** `column` is one of `values`, cast to the enum `type` (no condition for none). */
export function oneOf(column: Prisma.Sql, values: readonly string[] | null | undefined, type: string): Prisma.Sql[] {
  return values && values.length > 0 ? [Prisma.sql`${column} = ANY(${[...new Set(values)]}::${Prisma.raw(`"${type}"`)}[])`] : [];
}

/**
 * A list filter's `search` (trimmed, bounded; none when empty) as one condition: a literal,
 * case-insensitive substring of any of `columns`. Identifier columns (plates, licence numbers,
 * references) are stored normalised, so the text is normalised the same way for them.
 */
export function searchCondition(search: string | null | undefined, columns: readonly { column: string; identifier?: boolean }[]): Prisma.Sql[] {
  const text = searchText(search);
  if (!text) return [];
  const matches = columns.map(({ column, identifier }) => containsText(Prisma.raw(`t."${column}"`), identifier ? normaliseIdentifier(text) : text));
  return [Prisma.sql`(${Prisma.join(matches, ' OR ')})`];
}

/**
 * `status` (one, as the API first had it: registered operations pass it as a variable of the
 * enum type, which a list argument would refuse) and `statuses` (several), together.
 */
function statusesOf<Status extends string>(filter: { status?: Status | null; statuses?: readonly Status[] | null } | null | undefined): Status[] | null {
  if (!filter?.status && !filter?.statuses) return null;
  return [...(filter.status ? [filter.status] : []), ...(filter.statuses ?? [])];
}

export const vehicleList: RecordList<Vehicle, VehicleFilter, VehicleOrderField> = {
  table: vehicleTable,
  softDeleted: true,
  conditions(filter) {
    const where = [
      ...oneOf(Prisma.sql`t."status"`, statusesOf(filter), 'VehicleStatus'),
      ...withinRange(Prisma.sql`t."year"`, filter?.year),
      ...withinRange(Prisma.sql`t."odometerKm"`, filter?.odometerKm),
    ];
    if (filter?.hasDriver === true) where.push(Prisma.sql`t."driverId" IS NOT NULL`);
    if (filter?.hasDriver === false) where.push(Prisma.sql`t."driverId" IS NULL`);
    where.push(...searchCondition(filter?.search, [{ column: 'plate', identifier: true }, { column: 'make' }, { column: 'model' }]));
    return where;
  },
  orders: {
    CREATED_AT: { column: 'id' },
    UPDATED_AT: { column: 'updatedAt', kind: 'timestamp' },
    PLATE: { column: 'plate' },
    YEAR: { column: 'year', kind: 'number' },
    ODOMETER_KM: { column: 'odometerKm', kind: 'number' },
    STATUS: { column: 'status', kind: 'enum', values: Object.values(VehicleStatus) },
  },
};

export const driverList: RecordList<Driver, DriverFilter, DriverOrderField> = {
  table: driverTable,
  softDeleted: true,
  conditions(filter) {
    const where = oneOf(Prisma.sql`t."status"`, statusesOf(filter), 'DriverStatus');
    // A deleted vehicle has left its driver, so any vehicle holding one is live.
    const assigned = Prisma.sql`EXISTS (SELECT 1 FROM "Vehicle" v WHERE v."driverId" = t."id")`;
    if (filter?.assigned === true) where.push(assigned);
    if (filter?.assigned === false) where.push(Prisma.sql`NOT ${assigned}`);
    where.push(...searchCondition(filter?.search, [{ column: 'name' }, { column: 'licenseNumber', identifier: true }, { column: 'email' }]));
    return where;
  },
  orders: {
    CREATED_AT: { column: 'id' },
    UPDATED_AT: { column: 'updatedAt', kind: 'timestamp' },
    NAME: { column: 'name' },
    LICENSE_NUMBER: { column: 'licenseNumber' },
    STATUS: { column: 'status', kind: 'enum', values: Object.values(DriverStatus) },
  },
};
