import { roleAtLeast, type TenantPrincipal } from '../auth/principal';
import { forbidden } from '../errors/app-error';
import type { Resolvers } from '../generated/graphql';
import { apiTargetId, listAuditEvents } from './audit-events';
import { fieldChangesOf, historyOf } from './record-history';

/** Soft-deleted rows are listed only for ADMIN+ (and only when asked for). */
export function includeDeletedFor(principal: TenantPrincipal, asked: boolean | null | undefined): boolean {
  if (!asked) return false;
  if (!roleAtLeast(principal.role, 'ADMIN')) throw forbidden('Listing deleted records takes the ADMIN role or higher');
  return true;
}

/** History of every record type, through the caller's tenant-bound client. */
export const recordsResolvers: Resolvers = {
  Query: {
    auditEvents: async (_root, args, ctx) => {
      const scope = ctx.tenantScope();
      // Entries of platform-side changes still in the outbox come in first: the reader sees every committed change.
      await ctx.services.auditRelay.flush(scope.principal.tenant);
      return listAuditEvents(scope.sql, args);
    },
  },
  AuditEvent: {
    targetId: (event) => apiTargetId(event),
    metadata: (event) => event.metadata as Record<string, unknown>,
  },
  Vehicle: { history: (vehicle, args, ctx) => historyOf(ctx.tenantScope().sql, 'Vehicle', vehicle.id, args) },
  Driver: { history: (driver, args, ctx) => historyOf(ctx.tenantScope().sql, 'Driver', driver.id, args) },
  Trip: { history: (trip, args, ctx) => historyOf(ctx.tenantScope().sql, 'Trip', trip.id, args) },
  RecordChange: { changes: (change) => fieldChangesOf(change) },
};
