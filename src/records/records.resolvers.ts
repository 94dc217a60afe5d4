import { roleAtLeast, type TenantPrincipal } from '../auth/principal';
import { forbidden } from '../errors/app-error';
import type { Resolvers } from '../generated/graphql';
import { fieldChangesOf, historyOf } from './record-history';

/** Soft-deleted rows are listed only for ADMIN+ (and only when asked for). */
export function includeDeletedFor(principal: TenantPrincipal, asked: boolean | null | undefined): boolean {
  if (!asked) return false;
  if (!roleAtLeast(principal.role, 'ADMIN')) throw forbidden('Listing deleted records takes the ADMIN role or higher');
  return true;
}

/** History of every record type, through the caller's tenant-bound client. */
export const recordsResolvers: Resolvers = {
  Vehicle: { history: (vehicle, args, ctx) => historyOf(ctx.tenantScope().sql, 'Vehicle', vehicle.id, args) },
  Driver: { history: (driver, args, ctx) => historyOf(ctx.tenantScope().sql, 'Driver', driver.id, args) },
  Trip: { history: (trip, args, ctx) => historyOf(ctx.tenantScope().sql, 'Trip', trip.id, args) },
  RecordChange: { changes: (change) => fieldChangesOf(change) },
};
