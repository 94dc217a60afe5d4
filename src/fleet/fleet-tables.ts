import { Prisma, type Driver, type Vehicle } from '../generated/prisma/tenant/client';
import { TenantTable, type ToOneJoin } from '../tenancy/tenant-table';

/** The fleet's tables as the request path reads them; columns are Prisma's generated field lists. */
export const vehicleTable = new TenantTable<Vehicle>('Vehicle', Object.values(Prisma.VehicleScalarFieldEnum));
export const driverTable = new TenantTable<Driver>('Driver', Object.values(Prisma.DriverScalarFieldEnum));

export const vehicleDriver: ToOneJoin<Vehicle, Driver> = { table: driverTable, localKey: 'driverId', relatedKey: 'id' };
export const driverVehicle: ToOneJoin<Driver, Vehicle> = { table: vehicleTable, localKey: 'id', relatedKey: 'driverId' };
