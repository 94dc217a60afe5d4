import { badInput } from '../errors/app-error';
import type { Resolvers } from '../generated/graphql';
import { expectGlobalId, optionalGlobalId, toGlobalId } from '../graphql/global-id';
import type { TripStatus } from '../generated/prisma/tenant/client';
import { fleetSummary } from './fleet-summary';
import { MAX_TRIPS_PER_PARENT, type RecentTripsQuery } from './trip-tables';
import { includeDeletedFor } from '../records/records.resolvers';
import { createTrip, deleteTrip, listTrips, restoreTrip, transitionTrip, updateTrip, type TripInput } from './trips';

/*
 * Dispatch resolvers. As everywhere, data only through ctx.tenantScope(): another tenant's id
 * finds nothing.
 */

/** A vehicle or driver global id of the input as its row id; null and absent pass through. */
function withRowIds<T extends TripInput>(input: T): T {
  return { ...input, vehicleId: optionalGlobalId(input.vehicleId, 'Vehicle', 'vehicleId'), driverId: optionalGlobalId(input.driverId, 'Driver', 'driverId') };
}

function recentTripsQuery(args: { first?: number | null; status?: readonly TripStatus[] | null }): RecentTripsQuery {
  const first = args.first ?? 10;
  if (!Number.isInteger(first) || first < 1 || first > MAX_TRIPS_PER_PARENT) throw badInput(`first must be between 1 and ${MAX_TRIPS_PER_PARENT}`, 'first');
  return { first, statuses: args.status ?? null };
}

export const dispatchResolvers: Resolvers = {
  Query: {
    fleetSummary: (_root, _args, ctx) => fleetSummary(ctx.tenantScope().sql),
    trip: async (_root, { id }, ctx) => {
      const trip = await ctx.tenantScope().trips.tripById.load(expectGlobalId(id, 'Trip'));
      return trip?.deletedAt === null ? trip : null;
    },
    trips: (_root, { first, after, filter, orderBy, includeDeleted }, ctx) =>
      listTrips(ctx.tenantScope(), {
        first,
        after,
        orderBy,
        includeDeleted: includeDeletedFor(ctx.tenantScope().principal, includeDeleted),
        filter: filter && {
          ...filter,
          vehicleId: optionalGlobalId(filter.vehicleId, 'Vehicle', 'filter.vehicleId'),
          driverId: optionalGlobalId(filter.driverId, 'Driver', 'filter.driverId'),
        },
      }),
  },
  Mutation: {
    createTrip: async (_root, { input }, ctx) => ({ trip: await createTrip(ctx.tenantScope(), withRowIds(input)) }),
    updateTrip: async (_root, { id, input }, ctx) => ({ trip: await updateTrip(ctx.tenantScope(), expectGlobalId(id, 'Trip'), withRowIds(input)) }),
    deleteTrip: async (_root, { id }, ctx) => {
      await deleteTrip(ctx.tenantScope(), expectGlobalId(id, 'Trip'));
      return { deletedId: id };
    },
    restoreTrip: async (_root, { id }, ctx) => ({ trip: await restoreTrip(ctx.tenantScope(), expectGlobalId(id, 'Trip')) }),
    transitionTrip: async (_root, { input }, ctx) => ({
      trip: await transitionTrip(ctx.tenantScope(), { ...input, id: expectGlobalId(input.id, 'Trip', 'id') }),
    }),
  },
  Trip: {
    id: (trip) => toGlobalId('Trip', trip.id),
    vehicle: (trip, _args, ctx) => (trip.vehicleId ? ctx.tenantScope().loaders.vehicleById.load(trip.vehicleId) : null),
    driver: (trip, _args, ctx) => (trip.driverId ? ctx.tenantScope().loaders.driverById.load(trip.driverId) : null),
    transitions: (trip, _args, ctx) => ctx.tenantScope().trips.transitionsOfTrip.load(trip.id),
  },
  TripTransition: {
    from: (transition) => transition.fromStatus,
    to: (transition) => transition.toStatus,
  },
  TripConnection: {
    totalCount: (connection) => connection.totalCount(),
  },
  Vehicle: {
    trips: (vehicle, args, ctx) => ctx.tenantScope().trips.recentTrips('vehicleId', recentTripsQuery(args)).load(vehicle.id),
  },
  Driver: {
    trips: (driver, args, ctx) => ctx.tenantScope().trips.recentTrips('driverId', recentTripsQuery(args)).load(driver.id),
  },
};
