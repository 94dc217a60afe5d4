import type { TenantPrincipal } from '../auth/principal';
import { foreignKeyViolation, isViolationOf, uniqueViolation, type ConstraintRef } from '../database/prisma-errors';
import { conflict, notFound } from '../errors/app-error';
import type { Vehicle } from '../generated/prisma/tenant/client';
import type { VehicleFilter, VehicleOrderField } from '../generated/graphql';
import type { ConnectionModel } from '../graphql/pagination';
import { assertTenantQuotaRoom } from '../quotas/quota-guard';
import { changeRecord, type Actor, createRecord, restoreRecord, softDelete } from '../records/record-changes';
import { readList, type ListArgs } from '../records/record-list';
import type { TenantPrisma } from '../tenancy/tenant-client-pool';
import type { TenantSql } from '../tenancy/tenant-sql';
import { createVehicleSchema, parseInput, updateVehicleSchema } from './fleet-input';
import type { FleetLoaders } from './fleet-loaders';
import { refuseIfOnTheRoad, vehicleDriver, vehicleList, vehicleRecord } from './fleet-tables';

/**
 * Everything here runs on a tenant-bound client (Prisma for writes, SQL for reads, on the same
 * connections): it can only ever see one tenant's schema.
 */
export interface FleetScope {
  db: TenantPrisma;
  sql: TenantSql;
  loaders: FleetLoaders;
  /** Who is calling (some changes need a higher role). */
  principal: TenantPrincipal;
  /** Who changes records, and in which request: history and the audit log name them. */
  actor: Actor;
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

export async function createVehicle({ db, loaders, actor, principal }: FleetScope, input: object): Promise<Vehicle> {
  const data = parseInput(createVehicleSchema, input);
  const vehicle = await createRecord(db, vehicleRecord, actor, async (tx) => {
    await assertTenantQuotaRoom(tx, principal.tenant, 'VEHICLES');
    return tx.vehicle.create({ data });
  }).catch(vehicleConflict);
  loaders.vehicleById.prime(vehicle.id, vehicle);
  return vehicle;
}

export async function updateVehicle({ db, loaders, actor }: FleetScope, id: string, input: object): Promise<Vehicle> {
  const { expectedVersion, ...data } = parseInput(updateVehicleSchema, input);
  const vehicle = await changeRecord(db, vehicleRecord, id, { actor, expectedVersion }, (tx) =>
    tx.vehicle.update({ where: { id }, data: { ...data, version: { increment: 1 } } }),
  ).catch(vehicleConflict);
  loaders.vehicleById.clear(id).prime(id, vehicle);
  return vehicle;
}

/**
 * Soft-deletes a vehicle: it leaves its driver (unassigned), and is refused while on a trip on
 * the road. Restorable by ADMIN+ (restoreVehicle) until purged.
 */
export async function deleteVehicle({ db, loaders, actor }: FleetScope, id: string): Promise<void> {
  await softDelete(db, vehicleRecord, id, {
    actor,
    beforeDelete: async (tx, vehicle) => {
      await refuseIfOnTheRoad(tx, { vehicleId: vehicle.id });
      if (vehicle.driverId) await tx.vehicle.update({ where: { id: vehicle.id }, data: { driverId: null } });
    },
  });
  loaders.vehicleById.clear(id);
  loaders.vehicleByDriverId.clearAll();
}

export async function restoreVehicle({ db, loaders, actor, principal }: FleetScope, id: string): Promise<Vehicle> {
  const vehicle = await restoreRecord(db, vehicleRecord, id, actor, {
    beforeRestore: (tx) => assertTenantQuotaRoom(tx, principal.tenant, 'VEHICLES'),
  });
  loaders.vehicleById.clear(id).prime(id, vehicle);
  return vehicle;
}

/**
 * Puts a driver in a vehicle (or takes the vehicle's driver out). A driver drives one vehicle:
 * assigning one who already has another vehicle is a CONFLICT, never a silent move.
 */
export async function assignDriver({ db, loaders, actor }: FleetScope, vehicleId: string, driverId: string | null): Promise<Vehicle> {
  const vehicle = await changeRecord(db, vehicleRecord, vehicleId, { actor }, async (tx) => {
    if (driverId !== null) {
      const driver = await tx.driver.findFirst({ where: { id: driverId, deletedAt: null }, include: { vehicle: { select: { id: true } } } });
      if (!driver) throw notFound('Driver');
      if (driver.vehicle && driver.vehicle.id !== vehicleId) throw conflict(DRIVER_TAKEN, 'driverId');
    }
    return tx.vehicle.update({ where: { id: vehicleId }, data: { driverId, version: { increment: 1 } } });
  }).catch((error: unknown) => {
    // The driver check reads without locking: another instance may delete the driver, or give
    // them another vehicle, before the UPDATE lands. The database still refuses; these say what.
    if (isViolationOf(foreignKeyViolation(error), DRIVER_FKEY)) throw notFound('Driver');
    return vehicleConflict(error);
  });
  loaders.vehicleById.clear(vehicleId).prime(vehicleId, vehicle);
  loaders.vehicleByDriverId.clearAll();
  return vehicle;
}
