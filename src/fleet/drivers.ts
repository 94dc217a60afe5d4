import { foreignKeyViolation, isRecordNotFound, isViolationOf, uniqueViolation, type ConstraintRef } from '../database/prisma-errors';
import { conflict, notFound } from '../errors/app-error';
import { Prisma, type Driver } from '../generated/prisma/tenant/client';
import { pageRequest, toConnection, type ConnectionModel } from '../graphql/pagination';
import { containsText } from '../tenancy/tenant-table';
import { createDriverSchema, normaliseIdentifier, parseInput, searchText, updateDriverSchema } from './fleet-input';
import { driverTable, driverVehicle, readPage } from './fleet-tables';
import type { FleetScope } from './vehicles';

export interface DriverFilter {
  status?: Driver['status'] | null;
  search?: string | null;
  assigned?: boolean | null;
}

function driverConditions(filter: DriverFilter | null | undefined): Prisma.Sql[] {
  const where: Prisma.Sql[] = [];
  if (filter?.status) where.push(Prisma.sql`t."status" = ${filter.status}::"DriverStatus"`);
  const assigned = Prisma.sql`EXISTS (SELECT 1 FROM "Vehicle" v WHERE v."driverId" = t."id")`;
  if (filter?.assigned === true) where.push(assigned);
  if (filter?.assigned === false) where.push(Prisma.sql`NOT ${assigned}`);
  const search = searchText(filter?.search);
  if (search) {
    where.push(
      Prisma.sql`(${Prisma.join(
        [containsText(Prisma.sql`t."name"`, search), containsText(Prisma.sql`t."licenseNumber"`, normaliseIdentifier(search)), containsText(Prisma.sql`t."email"`, search)],
        ' OR ',
      )})`,
    );
  }
  return where;
}

/** A page of drivers; with `withVehicle`, their vehicles in the same statement (as listVehicles). */
export async function listDrivers(
  { sql, loaders }: FleetScope,
  args: { first?: number | null; after?: string | null; filter?: DriverFilter | null },
  { withVehicle }: { withVehicle: boolean },
): Promise<ConnectionModel<Driver>> {
  const page = pageRequest(args.first, args.after);
  const where = driverConditions(args.filter);
  const rows = await readPage(sql, driverTable, { where, afterId: page.afterId, limit: page.take + 1 }, withVehicle ? driverVehicle : undefined, (row, vehicle) => {
    loaders.vehicleByDriverId.prime(row.id, vehicle);
    if (vehicle) loaders.vehicleById.prime(vehicle.id, vehicle);
    loaders.joined.vehicleOfDriver.set(row, vehicle);
  });
  for (const row of rows) loaders.driverById.prime(row.id, row);
  return toConnection(rows, page, () => driverTable.count(sql, where));
}

/** As migrations/tenant names it; any other violation is not the client's licence number. */
const LICENSE_NUMBER_KEY: ConstraintRef = { name: 'Driver_licenseNumber_key', fields: ['licenseNumber'] };

function driverConflict(error: unknown): never {
  if (isViolationOf(uniqueViolation(error), LICENSE_NUMBER_KEY)) {
    throw conflict('A driver with this licence number already exists', 'licenseNumber');
  }
  throw error;
}

export async function createDriver({ db, loaders }: FleetScope, input: object): Promise<Driver> {
  const data = parseInput(createDriverSchema, input);
  const driver = await db.driver.create({ data }).catch(driverConflict);
  loaders.driverById.prime(driver.id, driver);
  return driver;
}

export async function updateDriver({ db, loaders }: FleetScope, id: string, input: object): Promise<Driver> {
  const data = parseInput(updateDriverSchema, input, ['phone', 'email']);
  try {
    const driver = await db.driver.update({ where: { id }, data });
    loaders.driverById.clear(id).prime(id, driver);
    return driver;
  } catch (error) {
    if (isRecordNotFound(error)) throw notFound('Driver');
    return driverConflict(error);
  }
}

/** Deleting a driver takes them out of their vehicle (the foreign key sets it to null). */
/** Trips keep their driver (Trip_driverId_fkey, ON DELETE RESTRICT). */
const TRIP_DRIVER_FKEY: ConstraintRef = { name: 'Trip_driverId_fkey', fields: ['driverId'] };

export async function deleteDriver({ db, loaders }: FleetScope, id: string): Promise<void> {
  try {
    await db.driver.delete({ where: { id } });
    loaders.driverById.clear(id);
    loaders.vehicleByDriverId.clear(id);
  } catch (error) {
    if (isRecordNotFound(error)) throw notFound('Driver');
    if (isViolationOf(foreignKeyViolation(error), TRIP_DRIVER_FKEY)) throw conflict('This driver has trips, which keep them; they cannot be deleted');
    throw error;
  }
}
