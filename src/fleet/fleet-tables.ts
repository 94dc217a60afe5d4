import { Prisma, type Driver, type Vehicle } from '../generated/prisma/tenant/client';
import type { TenantSql } from '../tenancy/tenant-sql';
import { TenantTable, type PageQuery, type ToOneJoin } from '../tenancy/tenant-table';

/** The fleet's tables as the request path reads them; columns are Prisma's generated field lists. */
export const vehicleTable = new TenantTable<Vehicle>('Vehicle', Object.values(Prisma.VehicleScalarFieldEnum));
export const driverTable = new TenantTable<Driver>('Driver', Object.values(Prisma.DriverScalarFieldEnum));

export const vehicleDriver: ToOneJoin<Vehicle, Driver> = { table: driverTable, localKey: 'driverId', relatedKey: 'id' };
export const driverVehicle: ToOneJoin<Driver, Vehicle> = { table: vehicleTable, localKey: 'id', relatedKey: 'driverId' };

/**
 * A page of `table`, with its `join` relation in the same statement when there is one: each
 * row and its related row (or null) go to `keep` (the request's loaders), and the rows are returned.
 */
export async function readPage<Row extends { id: string }, Related extends { id: string }>(
  sql: TenantSql,
  table: TenantTable<Row>,
  query: PageQuery,
  join: ToOneJoin<Row, Related> | undefined,
  keep: (row: Row, related: Related | null) => void,
): Promise<Row[]> {
  if (!join) return table.page(sql, query);
  const joined = await table.page(sql, query, join);
  for (const { row, related } of joined) keep(row, related);
  return joined.map(({ row }) => row);
}
