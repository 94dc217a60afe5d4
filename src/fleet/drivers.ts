import { isViolationOf, uniqueViolation, type ConstraintRef } from '../database/prisma-errors';
import { conflict } from '../errors/app-error';
import type { Driver } from '../generated/prisma/tenant/client';
import type { DriverFilter, DriverOrderField } from '../generated/graphql';
import type { ConnectionModel } from '../graphql/pagination';
import { assertTenantQuotaRoom } from '../quotas/quota-guard';
import { changeLocked, changeRecord, createRecord, lockLive, restoreRecord, softDelete } from '../records/record-changes';
import { readList, type ListArgs } from '../records/record-list';
import { createDriverSchema, parseInput, updateDriverSchema } from './fleet-input';
import { driverList, driverRecord, driverVehicle, refuseIfOnTheRoad, vehicleRecord } from './fleet-tables';
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

export async function createDriver({ db, loaders, actor, principal }: FleetScope, input: object): Promise<Driver> {
  const data = parseInput(createDriverSchema, input);
  const driver = await createRecord(db, driverRecord, actor, async (tx) => {
    await assertTenantQuotaRoom(tx, principal.tenant, 'DRIVERS');
    return tx.driver.create({ data });
  }).catch(driverConflict);
  loaders.driverById.prime(driver.id, driver);
  return driver;
}

export async function updateDriver({ db, loaders, actor }: FleetScope, id: string, input: object): Promise<Driver> {
  const { expectedVersion, ...data } = parseInput(updateDriverSchema, input, ['phone', 'email']);
  const driver = await changeRecord(db, driverRecord, id, { actor, expectedVersion }, (tx) =>
    tx.driver.update({ where: { id }, data: { ...data, version: { increment: 1 } } }),
  ).catch(driverConflict);
  loaders.driverById.clear(id).prime(id, driver);
  return driver;
}

/**
 * Soft-deletes a driver: they leave their vehicle (a recorded change of that vehicle), and are
 * refused while on a trip on the road.
 */
export async function deleteDriver({ db, loaders, actor }: FleetScope, id: string): Promise<void> {
  await softDelete(db, driverRecord, id, {
    actor,
    beforeDelete: async (tx, driver) => {
      await refuseIfOnTheRoad(tx, { driverId: driver.id });
      const vehicle = await tx.vehicle.findFirst({ where: { driverId: driver.id }, select: { id: true } });
      if (vehicle) {
        await changeLocked(tx, vehicleRecord, await lockLive(tx, vehicleRecord, vehicle.id), actor, (inner) =>
          inner.vehicle.update({ where: { id: vehicle.id }, data: { driverId: null, version: { increment: 1 } } }),
        );
      }
    },
  });
  loaders.driverById.clear(id);
  loaders.vehicleByDriverId.clear(id);
  loaders.vehicleById.clearAll();
}

export async function restoreDriver({ db, loaders, actor, principal }: FleetScope, id: string): Promise<Driver> {
  const driver = await restoreRecord(db, driverRecord, id, actor, {
    beforeRestore: (tx) => assertTenantQuotaRoom(tx, principal.tenant, 'DRIVERS'),
  });
  loaders.driverById.clear(id).prime(id, driver);
  return driver;
}
