import { z } from 'zod';
import { boundedText, normaliseIdentifier } from '../fleet/fleet-input';

/* Validation of trip inputs beyond what GraphQL types say; a failure names the field. */

const MAX_CARGO_KG = 1_000_000;

export const tripFields = {
  reference: z
    .string()
    .overwrite(normaliseIdentifier)
    .min(1, 'must not be empty')
    .max(40, 'must be at most 40 characters')
    .regex(/^[A-Z0-9][A-Z0-9 /._-]*$/, 'may contain letters, digits, spaces and / . _ -'),
  origin: boundedText(200),
  destination: boundedText(200),
  vehicleId: z.string(),
  driverId: z.string(),
  plannedDepartureAt: z.date(),
  plannedArrivalAt: z.date(),
  cargoDescription: boundedText(500),
  cargoWeightKg: z.number().int().min(0, 'must not be negative').max(MAX_CARGO_KG, `must be at most ${MAX_CARGO_KG}`),
};

/** Arrival, when both are given, is not before departure. */
const windowInOrder = (trip: { plannedDepartureAt?: Date | null; plannedArrivalAt?: Date | null }) =>
  !trip.plannedDepartureAt || !trip.plannedArrivalAt || trip.plannedArrivalAt >= trip.plannedDepartureAt;
const WINDOW_ISSUE = { message: 'must not be before plannedDepartureAt', path: ['plannedArrivalAt'] };

export const createTripSchema = z
  .object({
    reference: tripFields.reference,
    origin: tripFields.origin,
    destination: tripFields.destination,
    vehicleId: tripFields.vehicleId.nullish(),
    driverId: tripFields.driverId.nullish(),
    plannedDepartureAt: tripFields.plannedDepartureAt.nullish(),
    plannedArrivalAt: tripFields.plannedArrivalAt.nullish(),
    cargoDescription: tripFields.cargoDescription.nullish(),
    cargoWeightKg: tripFields.cargoWeightKg.nullish(),
  })
  .refine(windowInOrder, WINDOW_ISSUE);

/** Optional fields a change may clear with null. */
export const CLEARABLE_TRIP_FIELDS = ['vehicleId', 'driverId', 'plannedDepartureAt', 'plannedArrivalAt', 'cargoDescription', 'cargoWeightKg'] as const;

export const updateTripSchema = z.object({
  reference: tripFields.reference.optional(),
  origin: tripFields.origin.optional(),
  destination: tripFields.destination.optional(),
  vehicleId: tripFields.vehicleId.nullable().optional(),
  driverId: tripFields.driverId.nullable().optional(),
  plannedDepartureAt: tripFields.plannedDepartureAt.nullable().optional(),
  plannedArrivalAt: tripFields.plannedArrivalAt.nullable().optional(),
  cargoDescription: tripFields.cargoDescription.nullable().optional(),
  cargoWeightKg: tripFields.cargoWeightKg.nullable().optional(),
  expectedVersion: z.number().int().optional(),
});

export const transitionSchema = z.object({ reason: boundedText(500).optional() });

export { windowInOrder, WINDOW_ISSUE };
