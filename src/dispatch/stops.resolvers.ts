import type { Resolvers } from '../generated/graphql';
import { expectGlobalId, optionalGlobalId, toGlobalId } from '../graphql/global-id';
import { historyOf } from '../records/record-history';
import { listStops } from './stop-list';
import { addTripNote, deleteTripNote, editableUntil, editTripNote, notesOfTrip } from './trip-notes';
import { addStop, completeStop, markStopArrived, removeStop, reorderStops, stopsOfTrips, updateStop } from './trip-stops';

/*
 * Stops and notes of trips. As everywhere, data only through ctx.tenantScope(): another
 * tenant's trip, stop or note id finds nothing.
 */

export const stopsResolvers: Resolvers = {
  Query: {
    stops: (_root, { filter, ...args }, ctx) =>
      listStops(ctx.tenantScope(), {
        ...args,
        filter: filter && { ...filter, tripId: optionalGlobalId(filter.tripId, 'Trip', 'filter.tripId') },
      }),
  },
  Mutation: {
    addStop: async (_root, { input }, ctx) => ({ stop: await addStop(ctx.tenantScope(), { ...input, tripId: expectGlobalId(input.tripId, 'Trip', 'tripId') }) }),
    updateStop: async (_root, { id, input }, ctx) => ({ stop: await updateStop(ctx.tenantScope(), expectGlobalId(id, 'Stop'), input) }),
    removeStop: async (_root, { id }, ctx) => ({ removedId: id, trip: await removeStop(ctx.tenantScope(), expectGlobalId(id, 'Stop')) }),
    reorderStops: async (_root, { input }, ctx) => ({
      trip: await reorderStops(ctx.tenantScope(), {
        tripId: expectGlobalId(input.tripId, 'Trip', 'tripId'),
        stopIds: input.stopIds.map((id) => expectGlobalId(id, 'Stop', 'stopIds')),
        expectedVersion: input.expectedVersion,
      }),
    }),
    markStopArrived: async (_root, { id }, ctx) => ({ stop: await markStopArrived(ctx.tenantScope(), expectGlobalId(id, 'Stop')) }),
    completeStop: async (_root, { input }, ctx) => ({ stop: await completeStop(ctx.tenantScope(), { ...input, id: expectGlobalId(input.id, 'Stop', 'id') }) }),
    addTripNote: async (_root, { input }, ctx) => ({ note: await addTripNote(ctx.tenantScope(), { ...input, tripId: expectGlobalId(input.tripId, 'Trip', 'tripId') }) }),
    editTripNote: async (_root, { input }, ctx) => ({ note: await editTripNote(ctx.tenantScope(), { ...input, id: expectGlobalId(input.id, 'TripNote', 'id') }) }),
    deleteTripNote: async (_root, { id }, ctx) => {
      await deleteTripNote(ctx.tenantScope(), expectGlobalId(id, 'TripNote'));
      return { deletedId: id };
    },
  },
  Trip: {
    stops: (trip, _args, ctx) => stopsOfTrips(ctx.tenantScope()).load(trip.id),
    notes: (trip, args, ctx) => notesOfTrip(ctx.tenantScope().sql, trip.id, args),
  },
  Stop: {
    id: (stop) => toGlobalId('Stop', stop.id),
    trip: async (stop, _args, ctx) => {
      const trip = await ctx.tenantScope().trips.tripById.load(stop.tripId);
      if (!trip) throw new Error('a stop without its trip (the foreign key forbids it)');
      return trip;
    },
    proofOfDelivery: (stop) => (stop.podRecipientName === null ? null : { recipientName: stop.podRecipientName, note: stop.podNote, signature: stop.podSignature }),
    history: (stop, args, ctx) => historyOf(ctx.tenantScope().sql, 'Stop', stop.id, args),
  },
  TripNote: {
    id: (note) => toGlobalId('TripNote', note.id),
    trip: async (note, _args, ctx) => {
      const trip = await ctx.tenantScope().trips.tripById.load(note.tripId);
      if (!trip) throw new Error('a note without its trip (the foreign key forbids it)');
      return trip;
    },
    // Only edits bump a live note's version (deleting one hides it).
    editedAt: (note) => (note.version > 1 ? note.updatedAt : null),
    editableUntil: (note) => editableUntil(note),
    history: (note, args, ctx) => historyOf(ctx.tenantScope().sql, 'TripNote', note.id, args),
  },
  TripNoteConnection: {
    totalCount: (connection) => connection.totalCount(),
  },
  StopConnection: {
    totalCount: (connection) => connection.totalCount(),
  },
};
