import { foreignKeyViolation, isRecordNotFound, isViolationOf, uniqueViolation, type ConstraintRef } from '../database/prisma-errors';
import { conflict, notFound } from '../errors/app-error';
import type { Driver } from '../generated/prisma/tenant/client';
import type { DriverFilter, DriverOrderField } from '../generated/graphql';
import type { ConnectionModel } from '../graphql/pagination';
import { readList, type ListArgs } from '../records/record-list';
import { createDriverSchema, parseInput, updateDriverSchema } from './fleet-input';
import { driverList, driverVehicle } from './fleet-tables';
import type { FleetScope } from './vehicles';

/** A page of drivers; with `withVehicle`, their vehicles in the same statement (as listVehicles). */
export async function listDrivers(
  { sql, loaders }: FleetScope,
  args: ListArgs<DriverFilter, DriverOrderField>,
  { withVehicle }: { withVehicle: boolean },
): Promise<ConnectionModel<Driver>> {
  const connection = await readList(
    sql,
    driverList,
    args,
    withVehicle
      ? {
          relation: driverVehicle,
          keep: (row, vehicle) => {
            loaders.vehicleByDriverId.prime(row.id, vehicle);
            if (vehicle) loaders.vehicleById.prime(vehicle.id, vehicle);
            loaders.joined.vehicleOfDriver.set(row, vehicle);
          },
        }
      : undefined,
  );
  for (const { node } of connection.edges) loaders.driverById.prime(node.id, node);
  return connection;
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

/** Trips keep their driver (Trip_driverId_fkey, ON DELETE RESTRICT). */
const TRIP_DRIVER_FKEY: ConstraintRef = { name: 'Trip_driverId_fkey', fields: ['driverId'] };

/** Deleting a driver takes them out of their vehicle (the foreign key sets it to null). */
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
