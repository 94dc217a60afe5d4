import { isRecordNotFound, isViolationOf, uniqueViolation, type ConstraintRef } from '../database/prisma-errors';
import { conflict, notFound } from '../errors/app-error';
import type { Driver, Prisma } from '../generated/prisma/tenant/client';
import { pageRequest, toConnection, type ConnectionModel } from '../graphql/pagination';
import { containsLiteral, createDriverSchema, normaliseIdentifier, parseInput, searchText, updateDriverSchema } from './fleet-input';
import type { FleetScope } from './vehicles';

export interface DriverFilter {
  status?: Driver['status'] | null;
  search?: string | null;
  assigned?: boolean | null;
}

function driverWhere(filter: DriverFilter | null | undefined): Prisma.DriverWhereInput {
  const where: Prisma.DriverWhereInput = {};
  if (filter?.status) where.status = filter.status;
  if (filter?.assigned === true) where.vehicle = { isNot: null };
  if (filter?.assigned === false) where.vehicle = { is: null };
  const search = searchText(filter?.search);
  if (search) {
    where.OR = [
      { name: containsLiteral(search) },
      { licenseNumber: containsLiteral(normaliseIdentifier(search)) },
      { email: containsLiteral(search) },
    ];
  }
  return where;
}

export async function listDrivers(
  { db, loaders }: FleetScope,
  args: { first?: number | null; after?: string | null; filter?: DriverFilter | null },
): Promise<ConnectionModel<Driver>> {
  const page = pageRequest(args.first, args.after);
  const where = driverWhere(args.filter);
  const rows = await db.driver.findMany({
    where: page.afterId ? { AND: [where, { id: { gt: page.afterId } }] } : where,
    orderBy: { id: 'asc' },
    take: page.take + 1,
  });
  for (const row of rows) loaders.driverById.prime(row.id, row);
  return toConnection(rows, page, () => db.driver.count({ where }));
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
export async function deleteDriver({ db, loaders }: FleetScope, id: string): Promise<void> {
  try {
    await db.driver.delete({ where: { id } });
    loaders.driverById.clear(id);
    loaders.vehicleByDriverId.clear(id);
  } catch (error) {
    if (isRecordNotFound(error)) throw notFound('Driver');
    throw error;
  }
}
