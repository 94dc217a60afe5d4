import { foreignKeyViolation, isRecordNotFound, isViolationOf, uniqueViolation, type ConstraintRef } from '../database/prisma-errors';
import { conflict, notFound } from '../errors/app-error';
import type { Vehicle } from '../generated/prisma/tenant/client';
import type { VehicleFilter, VehicleOrderField } from '../generated/graphql';
import type { ConnectionModel } from '../graphql/pagination';
import { readList, type ListArgs } from '../records/record-list';
import type { TenantPrisma } from '../tenancy/tenant-client-pool';
import type { TenantSql } from '../tenancy/tenant-sql';
import { createVehicleSchema, parseInput, updateVehicleSchema } from './fleet-input';
import type { FleetLoaders } from './fleet-loaders';
import { vehicleDriver, vehicleList } from './fleet-tables';

/**
 * Everything here runs on a tenant-bound client (Prisma for writes, SQL for reads, on the same
 * connections): it can only ever see one tenant's schema.
 */
export interface FleetScope {
  db: TenantPrisma;
  sql: TenantSql;
  loaders: FleetLoaders;
}

/**
 * A page of vehicles; with `withDriver` (the query selects each vehicle's driver), their drivers
 * come in the same statement and wait in the request's loaders, so the page costs one
 * statement instead of two.
 */
export async function listVehicles(
  { sql, loaders }: FleetScope,
  args: ListArgs<VehicleFilter, VehicleOrderField>,
  { withDriver }: { withDriver: boolean },
): Promise<ConnectionModel<Vehicle>> {
  const connection = await readList(
    sql,
    vehicleList,
    args,
    withDriver
      ? {
          relation: vehicleDriver,
          keep: (row, driver) => {
            if (driver) loaders.driverById.prime(driver.id, driver);
            loaders.joined.driverOfVehicle.set(row, driver);
          },
        }
      : undefined,
  );
  for (const { node } of connection.edges) {
    loaders.vehicleById.prime(node.id, node);
    if (node.driverId) loaders.vehicleByDriverId.prime(node.driverId, node);
  }
  return connection;
}

/* Vehicle's constraints as migrations/tenant names them, so a violation maps to its own field. */
const PLATE_KEY: ConstraintRef = { name: 'Vehicle_plate_key', fields: ['plate'] };
const DRIVER_KEY: ConstraintRef = { name: 'Vehicle_driverId_key', fields: ['driverId'] };
const DRIVER_FKEY: ConstraintRef = { name: 'Vehicle_driverId_fkey', fields: ['driverId'] };

const DRIVER_TAKEN = 'That driver is already assigned to another vehicle; unassign them first';

function vehicleConflict(error: unknown): never {
  const violation = uniqueViolation(error);
  if (isViolationOf(violation, DRIVER_KEY)) throw conflict(DRIVER_TAKEN, 'driverId');
  if (isViolationOf(violation, PLATE_KEY)) throw conflict('A vehicle with this plate already exists', 'plate');
  throw error;
}

export async function createVehicle({ db, loaders }: FleetScope, input: object): Promise<Vehicle> {
  const data = parseInput(createVehicleSchema, input);
  const vehicle = await db.vehicle.create({ data }).catch(vehicleConflict);
  loaders.vehicleById.prime(vehicle.id, vehicle);
  return vehicle;
}

export async function updateVehicle({ db, loaders }: FleetScope, id: string, input: object): Promise<Vehicle> {
  const data = parseInput(updateVehicleSchema, input);
  try {
    const vehicle = await db.vehicle.update({ where: { id }, data });
    loaders.vehicleById.clear(id).prime(id, vehicle);
    return vehicle;
  } catch (error) {
    if (isRecordNotFound(error)) throw notFound('Vehicle');
    return vehicleConflict(error);
  }
}

/** Trips keep their vehicle (Trip_vehicleId_fkey, ON DELETE RESTRICT). */
const TRIP_VEHICLE_FKEY: ConstraintRef = { name: 'Trip_vehicleId_fkey', fields: ['vehicleId'] };

export async function deleteVehicle({ db, loaders }: FleetScope, id: string): Promise<void> {
  try {
    await db.vehicle.delete({ where: { id } });
    loaders.vehicleById.clear(id);
  } catch (error) {
    if (isRecordNotFound(error)) throw notFound('Vehicle');
    if (isViolationOf(foreignKeyViolation(error), TRIP_VEHICLE_FKEY)) throw conflict('This vehicle has trips, which keep it; it cannot be deleted');
    throw error;
  }
}

/**
 * Puts a driver in a vehicle (or takes the vehicle's driver out). A driver drives one vehicle:
 * assigning one who already has another vehicle is a CONFLICT, never a silent move.
 */
export async function assignDriver({ db, loaders }: FleetScope, vehicleId: string, driverId: string | null): Promise<Vehicle> {
  const vehicle = await db.$transaction(async (tx) => {
    const current = await tx.vehicle.findUnique({ where: { id: vehicleId } });
    if (!current) throw notFound('Vehicle');
    if (driverId === null) return tx.vehicle.update({ where: { id: vehicleId }, data: { driverId: null } });
    const driver = await tx.driver.findUnique({ where: { id: driverId }, include: { vehicle: { select: { id: true } } } });
    if (!driver) throw notFound('Driver');
    if (driver.vehicle && driver.vehicle.id !== vehicleId) {
      throw conflict(DRIVER_TAKEN, 'driverId');
    }
    return tx.vehicle.update({ where: { id: vehicleId }, data: { driverId } });
  }).catch((error: unknown) => {
    // The checks above read without locking: another instance may delete the vehicle or the
    // driver, or give the driver another vehicle, before the UPDATE lands. The database still
    // refuses; these say what it refused.
    if (isRecordNotFound(error)) throw notFound('Vehicle');
    if (isViolationOf(foreignKeyViolation(error), DRIVER_FKEY)) throw notFound('Driver');
    return vehicleConflict(error);
  });
  loaders.vehicleById.clear(vehicleId).prime(vehicleId, vehicle);
  loaders.vehicleByDriverId.clearAll();
  return vehicle;
}
