import type { DomainEvent, EventTypeName } from '../events/domain-event';
import { notFound } from '../errors/app-error';
import type { Resolvers, TripStatus } from '../generated/graphql';
import type { Trip } from '../generated/prisma/tenant/client';
import type { RequestContext } from '../graphql/context';
import { expectGlobalId } from '../graphql/global-id';
import { tenantStream } from './subscription-stream';

/*
 * Trip subscriptions. The bus hands a subscription its own tenant's events only (the listener is
 * bound to the caller's tenant); each event's trip is then read through `ctx.tenantScope()`, the
 * one way to tenant data, so what is sent is the trip as the subscriber's tenant holds it now.
 * The lease taken for an event is given back once that event's answer is out
 * (subscription-server.ts), or here for an event that is skipped: none is held while waiting.
 */

/** What TripChange resolves from. */
export interface TripChangeModel {
  event: DomainEvent;
  trip: Trip;
}

/** The events that concern a trip. */
const TRIP_EVENT_TYPES: ReadonlySet<EventTypeName> = new Set(['TRIP_CREATED', 'TRIP_TRANSITIONED', 'TRIP_LATE', 'STOP_ARRIVED', 'STOP_COMPLETED', 'TRIP_NOTE_CREATED']);

/**
 * The trip row id an event is about: its subject for trip events; for stop and note events, the
 * `tripId` their metadata carries (their subject is the stop or the note).
 */
export function tripIdOf(event: DomainEvent): string | null {
  if (!TRIP_EVENT_TYPES.has(event.type)) return null;
  if (event.subject.type === 'Trip') return event.subject.id;
  const tripId = event.data.tripId;
  return typeof tripId === 'string' ? tripId : null;
}

/** The live (not deleted) trip, read now through the caller's tenant; the lease is kept for the answer. */
async function currentTrip(ctx: RequestContext, tripId: string): Promise<Trip | null> {
  const trip = await ctx.tenantScope().trips.tripById.load(tripId);
  return trip && trip.deletedAt === null ? trip : null;
}

/** The caller's tenant's trip events that `accept` picks, each with its trip read afresh; skipped when the trip is gone or not kept. */
function tripChanges(
  ctx: RequestContext,
  accept: (event: DomainEvent, tripId: string) => boolean,
  keep: (trip: Trip) => boolean,
): Promise<AsyncIterableIterator<TripChangeModel>> {
  return tenantStream(
    ctx,
    (message) => {
      if (message.kind !== 'event') return false;
      const tripId = tripIdOf(message.event);
      return tripId !== null && accept(message.event, tripId);
    },
    async (message) => {
      if (message.kind !== 'event') return undefined;
      const trip = await currentTrip(ctx, tripIdOf(message.event) as string);
      return trip && keep(trip) ? { event: message.event, trip } : undefined;
    },
  );
}

export const subscriptionResolvers: Resolvers = {
  Subscription: {
    tripUpdated: {
      subscribe: async (_root, { id }, ctx) => {
        const tripId = expectGlobalId(id, 'Trip');
        try {
          if (!(await currentTrip(ctx, tripId))) throw notFound('Trip');
        } finally {
          ctx.release();
        }
        return tripChanges(
          ctx,
          (_event, eventTripId) => eventTripId === tripId,
          () => true,
        );
      },
      resolve: (change: TripChangeModel) => change.trip,
    },
    tripsChanged: {
      subscribe: async (_root, { filter }, ctx) => {
        const types = filter?.types ? new Set<string>(filter.types) : null;
        const statuses = filter?.status ? new Set<TripStatus>(filter.status) : null;
        return tripChanges(
          ctx,
          (event) => !types || types.has(event.type),
          (trip) => !statuses || statuses.has(trip.status),
        );
      },
      resolve: (change: TripChangeModel) => change,
    },
  },
  TripChange: {
    eventId: (change) => change.event.id,
    type: (change) => change.event.type,
    occurredAt: (change) => change.event.occurredAt,
    trip: (change) => change.trip,
  },
};
