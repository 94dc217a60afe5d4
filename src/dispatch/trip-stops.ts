import DataLoader from 'dataloader';
import { AppError, badInput, conflict, ErrorCode, notFound } from '../errors/app-error';
import { parseInput } from '../fleet/fleet-input';
import { Prisma, type PrismaClient, type Stop, type Trip } from '../generated/prisma/tenant/client';
import { changeLocked, changeRecord, createRecord, lockLive, softDelete, type Actor, type RecordType, type TenantTransaction } from '../records/record-changes';
import type { TenantSql } from '../tenancy/tenant-sql';
import { TenantTable } from '../tenancy/tenant-table';
import { addStopSchema, CLEARABLE_STOP_FIELDS, completeStopSchema, updateStopSchema, windowInOrder, WINDOW_ISSUE } from './stop-input';
import { tripRecord } from './trip-tables';
import { EDITABLE_TRIP_STATUSES } from './trip-workflow';
import type { DispatchScope } from './trips';

/*
 * A trip's stops. The plan (which stops, in which order, where and when) changes only while the
 * trip is DRAFT or PLANNED, and each such change is also a change of the trip (its version goes
 * up, so a dispatcher's expectedVersion notices it). The execution (arrived, completed with a
 * proof of delivery) happens while it is DISPATCHED or IN_TRANSIT, in any order: drivers reorder
 * on the road (a closed dock, traffic), the plan's order is the dispatcher's intent, and each
 * stop's times and history say what happened. Every stop change locks the trip's row first, then
 * works on its stops: one lock order, so no two changes of one trip's stops deadlock or interleave,
 * and the DELIVERED guard (every stop completed) counts under the same lock.
 */

export const stopTable = new TenantTable<Stop>('Stop', Object.values(Prisma.StopScalarFieldEnum));
export const stopRecord: RecordType<Stop> = { name: 'Stop', table: stopTable, uniqueAmongLive: [] };

type TenantDb = Parameters<typeof createRecord>[0];

/**
 * The record mechanism (createRecord, changeRecord, softDelete) run inside a transaction that
 * already holds the trip's lock: each of those opens its own transaction on the db it is given,
 * and this one hands it the open one instead.
 */
function within(tx: TenantTransaction): TenantDb {
  const $transaction = <T>(change: (inner: TenantTransaction) => Promise<T>): Promise<T> => change(tx);
  // Only the interactive form (a callback) is ever called by the record mechanism.
  return { $transaction: $transaction as unknown as PrismaClient['$transaction'] };
}

/** `change` in one transaction holding the live trip's row lock (NOT_FOUND, or CONFLICT for a stale expectedVersion). */
function withTripLocked<T>(scope: DispatchScope, tripId: string, expectedVersion: number | null | undefined, change: (tx: TenantTransaction, trip: Trip) => Promise<T>): Promise<T> {
  return scope.db.$transaction(async (tx) => change(tx, await lockLive(tx, tripRecord, tripId, expectedVersion)));
}

function refuseUnlessPlanning(trip: Trip): void {
  if (!EDITABLE_TRIP_STATUSES.has(trip.status)) {
    throw new AppError(ErrorCode.CONFLICT, `A ${trip.status} trip's stops are fixed; only a DRAFT or PLANNED trip's stops change`, { extensions: { tripStatus: trip.status } });
  }
}

function refuseUnlessOnTheRoad(trip: Trip): void {
  if (trip.status !== 'DISPATCHED' && trip.status !== 'IN_TRANSIT') {
    throw new AppError(ErrorCode.CONFLICT, `Stops are arrived at and completed on a DISPATCHED or IN_TRANSIT trip, not a ${trip.status} one`, { extensions: { tripStatus: trip.status } });
  }
}

/** The trip's live stops in order (their writers all hold the trip's lock, so they stay as read). */
function liveStops(tx: TenantTransaction, tripId: string): Promise<Stop[]> {
  return tx.stop.findMany({ where: { tripId, deletedAt: null }, orderBy: { sequence: 'asc' } });
}

/** The trip a live stop belongs to (a stop never changes trip); NOT_FOUND if none. */
async function tripOfStop(scope: DispatchScope, id: string): Promise<string> {
  const stop = await scope.db.stop.findFirst({ where: { id, deletedAt: null }, select: { tripId: true } });
  if (!stop) throw notFound('Stop');
  return stop.tripId;
}

/**
 * Gives each stop the trip's `order` its place (1, 2, ...), each move a recorded change of that
 * stop. The stops that move are parked at negative places first: the unique index on (trip,
 * sequence) is checked row by row, and a swap would collide halfway.
 */
async function renumber(tx: TenantTransaction, actor: Actor, order: readonly Stop[], from = 1): Promise<void> {
  const moves = order.map((stop, index) => ({ stop, sequence: from + index })).filter(({ stop, sequence }) => stop.sequence !== sequence);
  if (moves.length === 0) return;
  await tx.$executeRaw`UPDATE "Stop" SET "sequence" = -"sequence" WHERE "id" = ANY(${moves.map(({ stop }) => stop.id)}::uuid[])`;
  for (const { stop, sequence } of moves) {
    await changeLocked(tx, stopRecord, stop, actor, (inner) => inner.stop.update({ where: { id: stop.id }, data: { sequence, version: { increment: 1 } } }));
  }
}

/** A change of the trip's stops is a change of its plan: the trip's version goes up (its history entry names no trip field; the stops' own say what changed). */
function bumpTrip(tx: TenantTransaction, trip: Trip, actor: Actor): Promise<Trip> {
  return changeLocked(tx, tripRecord, trip, actor, (inner) => inner.trip.update({ where: { id: trip.id }, data: { version: { increment: 1 } } }));
}

const STOPS_OF_TRIP = 'stopsOfTrip';

/** Per request: the live stops of a page of trips in one statement, each trip's in order. */
export function stopsOfTrips(scope: Pick<DispatchScope, 'loaders'>): DataLoader<string, Stop[]> {
  return scope.loaders.batch(STOPS_OF_TRIP, (sql: TenantSql) =>
    new DataLoader<string, Stop[]>(async (tripIds) => {
      const byTrip = new Map<string, Stop[]>(tripIds.map((id) => [id, []]));
      const rows = (await stopTable.whereIn(sql, 'tripId', tripIds)).filter((stop) => stop.deletedAt === null).sort((a, b) => a.sequence - b.sequence);
      for (const stop of rows) byTrip.get(stop.tripId)?.push(stop);
      return tripIds.map((id) => byTrip.get(id) ?? []);
    }),
  );
}

/** What this request has cached of the trip is stale now. */
function forget(scope: DispatchScope, trip: Trip): void {
  scope.trips.tripById.clear(trip.id).prime(trip.id, trip);
  stopsOfTrips(scope).clear(trip.id);
}

export async function addStop(scope: DispatchScope, input: { tripId: string } & Record<string, unknown>): Promise<Stop> {
  const { tripId, sequence, ...data } = parseInput(addStopSchema, input);
  const { actor } = scope;
  const { stop, trip } = await withTripLocked(scope, tripId, undefined, async (tx, locked) => {
    refuseUnlessPlanning(locked);
    const stops = await liveStops(tx, tripId);
    const at = sequence ?? stops.length + 1;
    if (at > stops.length + 1) throw badInput(`sequence must be between 1 and ${stops.length + 1}: the trip has ${stops.length} stops`, 'sequence');
    await renumber(tx, actor, stops.slice(at - 1), at + 1);
    const created = await createRecord(within(tx), stopRecord, actor, (inner) => inner.stop.create({ data: { ...data, tripId, sequence: at } }));
    return { stop: created, trip: await bumpTrip(tx, locked, actor) };
  });
  forget(scope, trip);
  return stop;
}

export async function updateStop(scope: DispatchScope, id: string, input: object): Promise<Stop> {
  const { expectedVersion, ...data } = parseInput(updateStopSchema, input, CLEARABLE_STOP_FIELDS);
  const { actor } = scope;
  const { stop, trip } = await withTripLocked(scope, await tripOfStop(scope, id), undefined, async (tx, locked) => {
    refuseUnlessPlanning(locked);
    const changed = await changeRecord(within(tx), stopRecord, id, { actor, expectedVersion }, async (inner, current) => {
      const next = { ...current, ...Object.fromEntries(Object.entries(data).filter(([, value]) => value !== undefined)) };
      if (!windowInOrder(next)) throw badInput(`windowEnd ${WINDOW_ISSUE.message}`, 'windowEnd');
      return inner.stop.update({ where: { id }, data: { ...data, version: { increment: 1 } } });
    });
    return { stop: changed, trip: await bumpTrip(tx, locked, actor) };
  });
  forget(scope, trip);
  return stop;
}

/** Soft-deletes a stop; the stops after it move up one place. The trip as it now is. */
export async function removeStop(scope: DispatchScope, id: string): Promise<Trip> {
  const { actor } = scope;
  const trip = await withTripLocked(scope, await tripOfStop(scope, id), undefined, async (tx, locked) => {
    refuseUnlessPlanning(locked);
    await softDelete(within(tx), stopRecord, id, { actor });
    await renumber(tx, actor, await liveStops(tx, locked.id));
    return bumpTrip(tx, locked, actor);
  });
  forget(scope, trip);
  return trip;
}

/** Puts the trip's stops in the order of `stopIds` (row ids), which must name each of them once. The trip as it now is. */
export async function reorderStops(scope: DispatchScope, input: { tripId: string; stopIds: readonly string[]; expectedVersion?: number | null }): Promise<Trip> {
  const { actor } = scope;
  const trip = await withTripLocked(scope, input.tripId, input.expectedVersion, async (tx, locked) => {
    refuseUnlessPlanning(locked);
    const stops = new Map((await liveStops(tx, locked.id)).map((stop) => [stop.id, stop]));
    const named = new Set(input.stopIds);
    const foreign = input.stopIds.filter((id) => !stops.has(id)).length;
    const missing = [...stops.keys()].filter((id) => !named.has(id)).length;
    if (named.size !== input.stopIds.length || foreign > 0 || missing > 0) {
      throw badInput(
        `stopIds must name each of the trip's ${stops.size} stops exactly once (${input.stopIds.length - named.size} named twice, ${foreign} not the trip's, ${missing} missing)`,
        'stopIds',
      );
    }
    const order = input.stopIds.map((id) => stops.get(id) as Stop);
    if (order.every((stop, index) => stop.sequence === index + 1)) return locked;
    await renumber(tx, actor, order);
    return bumpTrip(tx, locked, actor);
  });
  forget(scope, trip);
  return trip;
}

export async function markStopArrived(scope: DispatchScope, id: string): Promise<Stop> {
  const { actor } = scope;
  const stop = await withTripLocked(scope, await tripOfStop(scope, id), undefined, async (tx, trip) => {
    refuseUnlessOnTheRoad(trip);
    const auditAs = (_before: Stop, after: Stop) => ({ action: 'stop.arrived', metadata: { tripId: after.tripId, kind: after.kind } });
    return changeRecord(within(tx), stopRecord, id, { actor, auditAs }, async (inner, current) => {
      if (current.arrivedAt) throw conflict(`Arrival at this stop was recorded already, at ${current.arrivedAt.toISOString()}`);
      return inner.stop.update({ where: { id }, data: { arrivedAt: new Date(), version: { increment: 1 } } });
    });
  });
  stopsOfTrips(scope).clear(stop.tripId);
  return stop;
}

/** Completes a stop (arrival too, if not recorded); a drop-off with its proof of delivery. */
export async function completeStop(scope: DispatchScope, input: { id: string } & Record<string, unknown>): Promise<Stop> {
  const { id, proofOfDelivery } = parseInput(completeStopSchema, input);
  const { actor } = scope;
  const stop = await withTripLocked(scope, await tripOfStop(scope, id), undefined, async (tx, trip) => {
    refuseUnlessOnTheRoad(trip);
    const auditAs = (_before: Stop, after: Stop) => ({ action: 'stop.completed', metadata: { tripId: after.tripId, kind: after.kind } });
    return changeRecord(within(tx), stopRecord, id, { actor, auditAs }, async (inner, current) => {
      if (current.completedAt) throw conflict(`This stop was completed already, at ${current.completedAt.toISOString()}`);
      if (current.kind === 'DROP_OFF' && !proofOfDelivery) throw badInput('proofOfDelivery is required to complete a drop-off', 'proofOfDelivery');
      if (current.kind === 'PICKUP' && proofOfDelivery) throw badInput('proofOfDelivery is for drop-offs; a pickup is completed without one', 'proofOfDelivery');
      const now = new Date();
      return inner.stop.update({
        where: { id },
        data: {
          completedAt: now,
          arrivedAt: current.arrivedAt ?? now,
          podRecipientName: proofOfDelivery?.recipientName ?? null,
          podNote: proofOfDelivery?.note ?? null,
          podSignature: proofOfDelivery?.signature ?? null,
          version: { increment: 1 },
        },
      });
    });
  });
  stopsOfTrips(scope).clear(stop.tripId);
  return stop;
}
