import type { MemberRole } from '../auth/principal';
import type { TripStatus } from '../generated/prisma/tenant/client';

/*
 * A trip's workflow, as data: the one table of allowed transitions, each with the least role
 * that may make it and the named guards that must hold. `transitionTrip` reads nothing else;
 * the README prints this table, and the tests walk every (from, to, role) against it.
 */

/** A condition a transition needs, checked inside its transaction (src/dispatch/trips.ts). */
export type TripGuard =
  /** The trip has a vehicle and a driver (TRIP_UNASSIGNED). */
  | 'assigned'
  /** The vehicle is ACTIVE: not in maintenance, not retired (VEHICLE_UNAVAILABLE). */
  | 'vehicleActive'
  /** Neither the vehicle nor the driver is on another trip on the road (VEHICLE_BUSY, DRIVER_BUSY); also a unique index. */
  | 'notOnTheRoad'
  /** A reason is given (REASON_REQUIRED). */
  | 'reasonGiven'
  /** Every live stop is completed, vacuously for a trip without stops (STOPS_INCOMPLETE, naming how many are open). */
  | 'stopsCompleted';

export interface TripTransitionRule {
  from: TripStatus;
  to: TripStatus;
  role: MemberRole;
  guards: readonly TripGuard[];
}

export const TRIP_STATUSES: readonly TripStatus[] = ['DRAFT', 'PLANNED', 'DISPATCHED', 'IN_TRANSIT', 'DELIVERED', 'CANCELLED'];

const cancel = (from: TripStatus): TripTransitionRule => ({ from, to: 'CANCELLED', role: 'MANAGER', guards: ['reasonGiven'] });

export const TRIP_TRANSITIONS: readonly TripTransitionRule[] = [
  { from: 'DRAFT', to: 'PLANNED', role: 'MANAGER', guards: ['assigned'] },
  { from: 'PLANNED', to: 'DRAFT', role: 'MANAGER', guards: [] },
  { from: 'PLANNED', to: 'DISPATCHED', role: 'MANAGER', guards: ['assigned', 'vehicleActive', 'notOnTheRoad'] },
  { from: 'DISPATCHED', to: 'IN_TRANSIT', role: 'MEMBER', guards: [] },
  { from: 'IN_TRANSIT', to: 'DELIVERED', role: 'MEMBER', guards: ['stopsCompleted'] },
  cancel('DRAFT'),
  cancel('PLANNED'),
  cancel('DISPATCHED'),
  cancel('IN_TRANSIT'),
];

/** Statuses a trip never leaves. */
export const FINAL_TRIP_STATUSES: ReadonlySet<TripStatus> = new Set(['DELIVERED', 'CANCELLED']);

/** Statuses in which a trip's plan (vehicle, driver, places, times, cargo) may still change. */
export const EDITABLE_TRIP_STATUSES: ReadonlySet<TripStatus> = new Set(['DRAFT', 'PLANNED']);

export function transitionRule(from: TripStatus, to: TripStatus): TripTransitionRule | undefined {
  return TRIP_TRANSITIONS.find((rule) => rule.from === from && rule.to === to);
}

export function allowedTargets(from: TripStatus): TripStatus[] {
  return TRIP_TRANSITIONS.filter((rule) => rule.from === from).map((rule) => rule.to);
}
