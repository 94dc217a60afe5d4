import { roleAtLeast, type TenantPrincipal } from '../auth/principal';
import { assertTenantQuotaRoom } from '../quotas/quota-guard';
import { changeRecord, createRecord, restoreRecord, softDelete, type TenantTransaction } from '../records/record-changes';
import { foreignKeyViolation, isViolationOf, uniqueViolation, type ConstraintRef } from '../database/prisma-errors';
import { AppError, conflict, ErrorCode, forbidden, notFound } from '../errors/app-error';
import { parseInput } from '../fleet/fleet-input';
import type { FleetScope } from '../fleet/vehicles';
import type { TripOrderField } from '../generated/graphql';
import type { Trip, TripStatus } from '../generated/prisma/tenant/client';
import type { ConnectionModel } from '../graphql/pagination';
import { readList, type ListArgs } from '../records/record-list';
import { CLEARABLE_TRIP_FIELDS, createTripSchema, transitionSchema, updateTripSchema, WINDOW_ISSUE, windowInOrder } from './trip-input';
import { tripList, tripRecord, type TripFilter, type TripLoaders } from './trip-tables';
import { allowedTargets, EDITABLE_TRIP_STATUSES, FINAL_TRIP_STATUSES, transitionRule, type TripGuard } from './trip-workflow';

/**
 * What dispatch works with: the fleet's tenant-bound client and loaders, the trip loaders, and
 * who is calling (transitions are recorded with their actor, and some need a higher role).
 */
export interface DispatchScope extends FleetScope {
  principal: TenantPrincipal;
  trips: TripLoaders;
}

export async function listTrips({ sql, trips }: DispatchScope, args: ListArgs<TripFilter, TripOrderField>): Promise<ConnectionModel<Trip>> {
  const connection = await readList(sql, tripList, args);
  for (const { node } of connection.edges) trips.tripById.prime(node.id, node);
  return connection;
}

/* Trip's constraints as migrations/tenant names them. */
const REFERENCE_KEY: ConstraintRef = { name: 'Trip_reference_key', fields: ['reference'] };
const VEHICLE_FKEY: ConstraintRef = { name: 'Trip_vehicleId_fkey', fields: ['vehicleId'] };
const DRIVER_FKEY: ConstraintRef = { name: 'Trip_driverId_fkey', fields: ['driverId'] };
const VEHICLE_ON_THE_ROAD: ConstraintRef = { name: 'Trip_vehicleId_on_the_road_key', fields: ['vehicleId'] };
const DRIVER_ON_THE_ROAD: ConstraintRef = { name: 'Trip_driverId_on_the_road_key', fields: ['driverId'] };

const vehicleBusy = () => new AppError(ErrorCode.VEHICLE_BUSY, 'The vehicle is already on another trip on the road (DISPATCHED or IN_TRANSIT)', { extensions: { field: 'vehicleId' } });
const driverBusy = () => new AppError(ErrorCode.DRIVER_BUSY, 'The driver is already on another trip on the road (DISPATCHED or IN_TRANSIT)', { extensions: { field: 'driverId' } });

/** A write's constraint violation as what it means for a trip. */
function tripWriteError(error: unknown): never {
  const unique = uniqueViolation(error);
  if (isViolationOf(unique, REFERENCE_KEY)) throw conflict('A trip with this reference already exists', 'reference');
  // The database's last word when two dispatchers race (see transitionTrip's own check).
  if (isViolationOf(unique, VEHICLE_ON_THE_ROAD)) throw vehicleBusy();
  if (isViolationOf(unique, DRIVER_ON_THE_ROAD)) throw driverBusy();
  const foreign = foreignKeyViolation(error);
  if (isViolationOf(foreign, VEHICLE_FKEY)) throw notFound('Vehicle');
  if (isViolationOf(foreign, DRIVER_FKEY)) throw notFound('Driver');
  throw error;
}

/** As GraphQL passes it: null for a field sent as null (for the clearable ones: clear it). */
export interface TripInput {
  reference?: string | null;
  origin?: string | null;
  destination?: string | null;
  vehicleId?: string | null;
  driverId?: string | null;
  plannedDepartureAt?: Date | null;
  plannedArrivalAt?: Date | null;
  cargoDescription?: string | null;
  cargoWeightKg?: number | null;
}

export async function createTrip({ db, trips, actor, principal }: DispatchScope, input: TripInput): Promise<Trip> {
  const data = parseInput(createTripSchema, input);
  const trip = await createRecord(db, tripRecord, actor, async (tx) => {
    // A new trip is a DRAFT: open.
    await assertTenantQuotaRoom(tx, principal.tenant, 'OPEN_TRIPS');
    return tx.trip.create({ data });
  }).catch(tripWriteError);
  trips.tripById.prime(trip.id, trip);
  return trip;
}

export async function updateTrip({ db, trips, actor }: DispatchScope, id: string, input: TripInput & { expectedVersion?: number | null }): Promise<Trip> {
  const { expectedVersion, ...data } = parseInput(updateTripSchema, input, CLEARABLE_TRIP_FIELDS);
  const trip = await changeRecord(db, tripRecord, id, { actor, expectedVersion }, async (tx, current) => {
    if (!EDITABLE_TRIP_STATUSES.has(current.status)) {
      throw new AppError(ErrorCode.CONFLICT, `A ${current.status} trip's plan cannot change; only DRAFT and PLANNED trips can`, { extensions: { tripStatus: current.status } });
    }
    const next = { ...current, ...Object.fromEntries(Object.entries(data).filter(([, value]) => value !== undefined)) };
    if (current.status === 'PLANNED' && (!next.vehicleId || !next.driverId)) {
      throw new AppError(ErrorCode.TRIP_UNASSIGNED, 'A PLANNED trip keeps a vehicle and a driver; move it back to DRAFT first', {
        extensions: { field: next.vehicleId ? 'driverId' : 'vehicleId' },
      });
    }
    if (!windowInOrder(next)) throw new AppError(ErrorCode.BAD_USER_INPUT, `plannedArrivalAt ${WINDOW_ISSUE.message}`, { extensions: { field: 'plannedArrivalAt' } });
    return tx.trip.update({ where: { id }, data: { ...data, version: { increment: 1 } } });
  }).catch(tripWriteError);
  trips.tripById.clear(id).prime(id, trip);
  return trip;
}

/** Soft-deletes a trip; one on the road (DISPATCHED, IN_TRANSIT) must be delivered or cancelled first. */
export async function deleteTrip({ db, trips, actor }: DispatchScope, id: string): Promise<void> {
  await softDelete(db, tripRecord, id, {
    actor,
    beforeDelete: async (_tx, trip) => {
      if (trip.status === 'DISPATCHED' || trip.status === 'IN_TRANSIT') {
        throw new AppError(ErrorCode.CONFLICT, `A ${trip.status} trip is on the road; deliver or cancel it first`, { extensions: { tripStatus: trip.status } });
      }
    },
  });
  trips.tripById.clear(id);
}

export async function restoreTrip({ db, trips, actor, principal }: DispatchScope, id: string): Promise<Trip> {
  const trip = await restoreRecord(db, tripRecord, id, actor, {
    // A delivered or cancelled trip comes back closed: it takes no open place.
    beforeRestore: async (tx, row) => {
      if (!FINAL_TRIP_STATUSES.has(row.status)) await assertTenantQuotaRoom(tx, principal.tenant, 'OPEN_TRIPS');
    },
  });
  trips.tripById.clear(id).prime(id, trip);
  return trip;
}

/** Checks one guard of a transition inside its transaction; throws the guard's own code. */
async function checkGuard(tx: TenantTransaction, guard: TripGuard, trip: Trip, reason: string | undefined): Promise<void> {
  switch (guard) {
    case 'assigned':
      if (!trip.vehicleId || !trip.driverId) {
        throw new AppError(ErrorCode.TRIP_UNASSIGNED, 'The trip needs a vehicle and a driver first', { extensions: { field: trip.vehicleId ? 'driverId' : 'vehicleId' } });
      }
      return;
    case 'vehicleActive': {
      // FOR SHARE: a concurrent change of the vehicle's status waits until this transition is done.
      const [vehicle] = await tx.$queryRaw<{ status: string; deletedAt: Date | null }[]>`SELECT "status", "deletedAt" FROM "Vehicle" WHERE "id" = ${trip.vehicleId}::uuid FOR SHARE`;
      if (vehicle?.status !== 'ACTIVE' || vehicle.deletedAt !== null) {
        const state = !vehicle ? 'gone' : vehicle.deletedAt !== null ? 'deleted' : vehicle.status;
        throw new AppError(ErrorCode.VEHICLE_UNAVAILABLE, `The vehicle is ${state}, not ACTIVE`, { extensions: { field: 'vehicleId' } });
      }
      return;
    }
    case 'notOnTheRoad': {
      const busy = await tx.$queryRaw<{ vehicleBusy: boolean; driverBusy: boolean }[]>`
        SELECT bool_or("vehicleId" = ${trip.vehicleId}::uuid) AS "vehicleBusy", bool_or("driverId" = ${trip.driverId}::uuid) AS "driverBusy"
          FROM "Trip" WHERE "status" IN ('DISPATCHED', 'IN_TRANSIT') AND "id" <> ${trip.id}::uuid
           AND ("vehicleId" = ${trip.vehicleId}::uuid OR "driverId" = ${trip.driverId}::uuid)`;
      if (busy[0]?.vehicleBusy) throw vehicleBusy();
      if (busy[0]?.driverBusy) throw driverBusy();
      return;
    }
    case 'reasonGiven':
      if (!reason) throw new AppError(ErrorCode.REASON_REQUIRED, 'Say why: this transition needs a reason', { extensions: { field: 'reason' } });
      return;
    case 'stopsCompleted': {
      // The trip's row lock (held by this transition) is what every stop change takes first, so
      // no stop is added or reopened between this count and the transition's commit.
      const [open] = await tx.$queryRaw<{ count: number }[]>`
        SELECT count(*)::int AS count FROM "Stop" WHERE "tripId" = ${trip.id}::uuid AND "deletedAt" IS NULL AND "completedAt" IS NULL`;
      const openStops = open?.count ?? 0;
      if (openStops > 0) {
        throw new AppError(ErrorCode.STOPS_INCOMPLETE, `${openStops} of the trip's stops ${openStops === 1 ? 'is' : 'are'} not completed yet; complete ${openStops === 1 ? 'it' : 'them'} first`, {
          extensions: { openStops },
        });
      }
      return;
    }
  }
}

export async function transitionTrip(
  { db, trips, principal, actor }: DispatchScope,
  input: { id: string; to: TripStatus; reason?: string | null; expectedVersion?: number | null },
): Promise<Trip> {
  // A blank reason is no reason (REASON_REQUIRED where one is needed, not a validation error).
  const { reason } = parseInput(transitionSchema, { reason: input.reason?.trim() ? input.reason : undefined });
  const auditAs = (before: Trip, after: Trip) => ({ action: 'trip.transitioned', metadata: { from: before.status, to: after.status, reason: reason ?? null } });
  const trip = await changeRecord(db, tripRecord, input.id, { actor, expectedVersion: input.expectedVersion, auditAs }, async (tx, current) => {
    const rule = transitionRule(current.status, input.to);
    if (!rule) {
      const allowed = allowedTargets(current.status);
      throw new AppError(
        ErrorCode.INVALID_TRANSITION,
        `A ${current.status} trip cannot become ${input.to}; ${allowed.length > 0 ? `it can become ${allowed.join(', ')}` : 'it is final'}`,
        { extensions: { from: current.status, to: input.to, allowed } },
      );
    }
    if (!roleAtLeast(principal.role, rule.role)) throw forbidden(`Moving a trip from ${rule.from} to ${rule.to} takes the ${rule.role} role or higher`);
    for (const guard of rule.guards) await checkGuard(tx, guard, current, reason);
    const updated = await tx.trip.update({ where: { id: current.id }, data: { status: rule.to, version: { increment: 1 } } });
    await tx.tripTransition.create({ data: { tripId: current.id, fromStatus: rule.from, toStatus: rule.to, reason: reason ?? null, actorKind: actor.actorKind, actorId: actor.actorId } });
    return updated;
  }).catch(tripWriteError);
  trips.tripById.clear(trip.id).prime(trip.id, trip);
  trips.transitionsOfTrip.clear(trip.id);
  return trip;
}
