import type { Resolvers } from '../generated/graphql';
import { expectGlobalId, parseGlobalId, toGlobalId } from '../graphql/global-id';
import { selectsPath } from '../graphql/look-ahead';
import { createDriver, deleteDriver, listDrivers, updateDriver } from './drivers';
import { assignDriver, createVehicle, deleteVehicle, listVehicles, updateVehicle } from './vehicles';

/*
 * Fleet resolvers. Each one reaches data only through ctx.tenantScope(): the caller's
 * tenant-bound client and loaders. Another tenant's id simply finds nothing.
 */
export const fleetResolvers: Resolvers = {
  Query: {
    node: async (_root, { id }, ctx) => {
      const parsed = parseGlobalId(id);
      if (!parsed) return null;
      const { loaders } = ctx.tenantScope();
      if (parsed.type === 'Vehicle') {
        const vehicle = await loaders.vehicleById.load(parsed.id);
        return vehicle ? { ...vehicle, __typename: 'Vehicle' as const } : null;
      }
      if (parsed.type === 'Driver') {
        const driver = await loaders.driverById.load(parsed.id);
        return driver ? { ...driver, __typename: 'Driver' as const } : null;
      }
      const trip = await ctx.tenantScope().trips.tripById.load(parsed.id);
      return trip ? { ...trip, __typename: 'Trip' as const } : null;
    },
    vehicle: (_root, { id }, ctx) => ctx.tenantScope().loaders.vehicleById.load(expectGlobalId(id, 'Vehicle')),
    vehicles: (_root, args, ctx, info) => listVehicles(ctx.tenantScope(), args, { withDriver: selectsPath(info, ['edges', 'node', 'driver']) }),
    driver: (_root, { id }, ctx) => ctx.tenantScope().loaders.driverById.load(expectGlobalId(id, 'Driver')),
    drivers: (_root, args, ctx, info) => listDrivers(ctx.tenantScope(), args, { withVehicle: selectsPath(info, ['edges', 'node', 'vehicle']) }),
  },
  Mutation: {
    createVehicle: async (_root, { input }, ctx) => ({ vehicle: await createVehicle(ctx.tenantScope(), input) }),
    updateVehicle: async (_root, { id, input }, ctx) => ({
      vehicle: await updateVehicle(ctx.tenantScope(), expectGlobalId(id, 'Vehicle'), input),
    }),
    deleteVehicle: async (_root, { id }, ctx) => {
      await deleteVehicle(ctx.tenantScope(), expectGlobalId(id, 'Vehicle'));
      return { deletedId: id };
    },
    createDriver: async (_root, { input }, ctx) => ({ driver: await createDriver(ctx.tenantScope(), input) }),
    updateDriver: async (_root, { id, input }, ctx) => ({
      driver: await updateDriver(ctx.tenantScope(), expectGlobalId(id, 'Driver'), input),
    }),
    deleteDriver: async (_root, { id }, ctx) => {
      await deleteDriver(ctx.tenantScope(), expectGlobalId(id, 'Driver'));
      return { deletedId: id };
    },
    assignDriver: async (_root, { vehicleId, driverId }, ctx) => ({
      vehicle: await assignDriver(
        ctx.tenantScope(),
        expectGlobalId(vehicleId, 'Vehicle', 'vehicleId'),
        // Only null (or leaving it out) unassigns: any string, "" too, must be a Driver id.
        driverId === null || driverId === undefined ? null : expectGlobalId(driverId, 'Driver', 'driverId'),
      ),
    }),
  },
  Node: {
    __resolveType: (node) => ('plate' in node ? 'Vehicle' : 'reference' in node ? 'Trip' : 'Driver'),
  },
  Vehicle: {
    id: (vehicle) => toGlobalId('Vehicle', vehicle.id),
    driver: (vehicle, _args, ctx) => {
      const { loaders } = ctx.tenantScope();
      const joined = loaders.joined.driverOfVehicle.get(vehicle);
      if (joined !== undefined) return joined;
      return vehicle.driverId ? loaders.driverById.load(vehicle.driverId) : null;
    },
  },
  Driver: {
    id: (driver) => toGlobalId('Driver', driver.id),
    vehicle: (driver, _args, ctx) => {
      const { loaders } = ctx.tenantScope();
      const joined = loaders.joined.vehicleOfDriver.get(driver);
      return joined !== undefined ? joined : loaders.vehicleByDriverId.load(driver.id);
    },
  },
  VehicleConnection: {
    totalCount: (connection) => connection.totalCount(),
  },
  DriverConnection: {
    totalCount: (connection) => connection.totalCount(),
  },
};
