import type { Resolvers } from '../generated/graphql';
import { expectGlobalId, optionalGlobalId, parseGlobalId, toGlobalId } from '../graphql/global-id';
import { selectsPath } from '../graphql/look-ahead';
import { includeDeletedFor } from '../records/records.resolvers';
import { badInput } from '../errors/app-error';
import { readFleetSettings, updateFleetSettings } from './fleet-settings';
import { closeMaintenance, listMaintenance, maintenanceOfVehicles, maintenanceTable, MAX_MAINTENANCE_PER_VEHICLE, openMaintenance } from './maintenance';
import { createDriver, deleteDriver, listDrivers, restoreDriver, updateDriver } from './drivers';
import { assignDriver, createVehicle, deleteVehicle, listVehicles, restoreVehicle, updateVehicle } from './vehicles';
import { liveStopOrNote } from '../dispatch/stop-nodes';

/** A row found by id, unless soft-deleted. */
const live = <Row extends { deletedAt: Date | null }>(row: Row | null): Row | null => (row && row.deletedAt === null ? row : null);

/*
 * Fleet resolvers. Each one reaches data only through ctx.tenantScope(): the caller's
 * tenant-bound client and loaders. Another tenant's id simply finds nothing.
 */
export const fleetResolvers: Resolvers = {
  Query: {
    fleetSettings: (_root, _args, ctx) => readFleetSettings(ctx.tenantScope().sql),
    maintenanceRecords: (_root, { filter, ...args }, ctx) =>
      listMaintenance(ctx.tenantScope(), {
        ...args,
        filter: filter && { ...filter, vehicleId: optionalGlobalId(filter.vehicleId, 'Vehicle', 'filter.vehicleId') },
      }),
    node: async (_root, { id }, ctx) => {
      const parsed = parseGlobalId(id);
      if (!parsed) return null;
      const { loaders } = ctx.tenantScope();
      // Soft-deleted records are not found by id (their relations still show them).
      if (parsed.type === 'Vehicle') {
        const vehicle = live(await loaders.vehicleById.load(parsed.id));
        return vehicle ? { ...vehicle, __typename: 'Vehicle' as const } : null;
      }
      if (parsed.type === 'Driver') {
        const driver = live(await loaders.driverById.load(parsed.id));
        return driver ? { ...driver, __typename: 'Driver' as const } : null;
      }
      if (parsed.type === 'Stop' || parsed.type === 'TripNote') return liveStopOrNote(ctx.tenantScope().sql, parsed.type, parsed.id);
      if (parsed.type === 'MaintenanceRecord') {
        const [record] = await maintenanceTable.whereIn(ctx.tenantScope().sql, 'id', [parsed.id]);
        return record ? { ...record, __typename: 'MaintenanceRecord' as const } : null;
      }
      const trip = live(await ctx.tenantScope().trips.tripById.load(parsed.id));
      return trip ? { ...trip, __typename: 'Trip' as const } : null;
    },
    vehicle: async (_root, { id }, ctx) => live(await ctx.tenantScope().loaders.vehicleById.load(expectGlobalId(id, 'Vehicle'))),
    vehicles: (_root, args, ctx, info) => {
      const scope = ctx.tenantScope();
      return listVehicles(scope, { ...args, includeDeleted: includeDeletedFor(scope.principal, args.includeDeleted) }, { withDriver: selectsPath(info, ['edges', 'node', 'driver']) });
    },
    driver: async (_root, { id }, ctx) => live(await ctx.tenantScope().loaders.driverById.load(expectGlobalId(id, 'Driver'))),
    drivers: (_root, args, ctx, info) => {
      const scope = ctx.tenantScope();
      return listDrivers(scope, { ...args, includeDeleted: includeDeletedFor(scope.principal, args.includeDeleted) }, { withVehicle: selectsPath(info, ['edges', 'node', 'vehicle']) });
    },
  },
  Mutation: {
    openMaintenance: async (_root, { input }, ctx) => ({
      maintenanceRecord: await openMaintenance(ctx.tenantScope(), { ...input, vehicleId: expectGlobalId(input.vehicleId, 'Vehicle', 'vehicleId') }),
    }),
    closeMaintenance: async (_root, { input }, ctx) => ({
      maintenanceRecord: await closeMaintenance(ctx.tenantScope(), { ...input, id: expectGlobalId(input.id, 'MaintenanceRecord', 'id') }),
    }),
    updateFleetSettings: async (_root, { input }, ctx) => ({ settings: await updateFleetSettings(ctx.tenantScope(), input) }),
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
    restoreVehicle: async (_root, { id }, ctx) => ({ vehicle: await restoreVehicle(ctx.tenantScope(), expectGlobalId(id, 'Vehicle')) }),
    restoreDriver: async (_root, { id }, ctx) => ({ driver: await restoreDriver(ctx.tenantScope(), expectGlobalId(id, 'Driver')) }),
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
    // A stop has a kind too: its sequence tells it from a maintenance record.
    __resolveType: (node) =>
      'plate' in node ? 'Vehicle' : 'reference' in node ? 'Trip' : 'sequence' in node ? 'Stop' : 'body' in node ? 'TripNote' : 'kind' in node ? 'MaintenanceRecord' : 'Driver',
  },
  Vehicle: {
    id: (vehicle) => toGlobalId('Vehicle', vehicle.id),
    maintenance: (vehicle, { first, open }, ctx) => {
      const count = first ?? 10;
      if (!Number.isInteger(count) || count < 1 || count > MAX_MAINTENANCE_PER_VEHICLE) throw badInput(`first must be between 1 and ${MAX_MAINTENANCE_PER_VEHICLE}`, 'first');
      return ctx.tenantScope().loaders.batch(`maintenance:${count}:${String(open)}`, (sql) => maintenanceOfVehicles(sql, count, open)).load(vehicle.id);
    },
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
  MaintenanceRecord: {
    id: (record) => toGlobalId('MaintenanceRecord', record.id),
    vehicle: async (record, _args, ctx) => {
      const vehicle = await ctx.tenantScope().loaders.vehicleById.load(record.vehicleId);
      if (!vehicle) throw new Error('a maintenance record without its vehicle (the foreign key forbids it)');
      return vehicle;
    },
  },
  MaintenanceRecordConnection: {
    totalCount: (connection) => connection.totalCount(),
  },
  FleetSettings: {
    timeZone: (settings) => settings.timezone,
  },
  VehicleConnection: {
    totalCount: (connection) => connection.totalCount(),
  },
  DriverConnection: {
    totalCount: (connection) => connection.totalCount(),
  },
};
