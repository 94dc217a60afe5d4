import { writeAudit } from '../audit/audit-log';
import type { AuditActor } from '../audit/audit-entry';
import type pg from 'pg';
import { PLATFORM_SCHEMA } from '../database/platform-database';
import { isUuid } from '../database/uuid';
import type { DomainEvent } from '../events/domain-event';
import { readFleetSettings } from '../fleet/fleet-settings';
import { Prisma } from '../generated/prisma/tenant/client';
import type { JobQueue, QueueSpec } from '../jobs/job-queue';
import { tenantRefColumns, type TenantClientPool, type TenantDatabaseRef } from '../tenancy/tenant-client-pool';

/*
 * TRIP_LATE: a trip on the road (DISPATCHED or IN_TRANSIT) past its planned arrival plus the
 * fleet's late tolerance. Nothing polls for it: when a trip is dispatched, a job is queued for the
 * moment it would become late; the job looks again then (the plan may have moved: it queues itself
 * for the new moment) and writes the event once, as the system, in the trip's own transaction.
 */

export const TRIP_LATE_QUEUE = 'trip-late-check';
const SYSTEM: AuditActor = { actorKind: 'SYSTEM', actorId: null, requestId: null };
const ON_THE_ROAD = ['DISPATCHED', 'IN_TRANSIT'];

interface LateCheck {
  tenantId: string;
  tripId: string;
}

export class TripLateness {
  constructor(
    private readonly deps: {
      /** Platform reads of the jobs (the job queue's own pool). */
  platformPool: pg.Pool;
      tenantClients: TenantClientPool;
      jobs: JobQueue;
    },
  ) {}

  static queues(): QueueSpec[] {
    return [{ name: TRIP_LATE_QUEUE, policy: 'standard', retryLimit: 10, retryDelaySeconds: 10, expireInSeconds: 120 }];
  }

  async start(): Promise<void> {
    await this.deps.jobs.work<LateCheck>(TRIP_LATE_QUEUE, 1, (check) => this.check(check));
  }

  /** Told of every event as it is fanned out: a dispatch queues the trip's check. */
  async onEvent(event: DomainEvent): Promise<void> {
    if (event.type !== 'TRIP_TRANSITIONED' || event.data.to !== 'DISPATCHED') return;
    await this.check({ tenantId: event.tenantId, tripId: event.subject.id });
  }

  /** Writes TRIP_LATE if the trip is late now, else queues the check for when it would be. */
  async check({ tenantId, tripId }: LateCheck): Promise<void> {
    if (!isUuid(tenantId) || !isUuid(tripId)) return;
    const { rows } = await this.deps.platformPool.query<TenantDatabaseRef & { status: string }>(
      `SELECT ${tenantRefColumns()}, "status" FROM ${PLATFORM_SCHEMA}."Tenant" WHERE "id" = $1`,
      [tenantId],
    );
    const tenant = rows[0];
    if (!tenant || tenant.status !== 'ACTIVE') return;
    const lease = this.deps.tenantClients.lease(tenant);
    try {
      const { lateToleranceMinutes } = await readFleetSettings(lease.sql);
      const recheckAt = await lease.db.$transaction(async (tx) => {
        const [trip] = await tx.$queryRaw<{ status: string; plannedArrivalAt: Date | null }[]>(
          Prisma.sql`SELECT "status"::text AS "status", "plannedArrivalAt" FROM "Trip" WHERE "id" = ${tripId}::uuid AND "deletedAt" IS NULL FOR UPDATE`,
        );
        if (!trip || !trip.plannedArrivalAt || !ON_THE_ROAD.includes(trip.status)) return null;
        const lateAt = new Date(trip.plannedArrivalAt.getTime() + lateToleranceMinutes * 60_000);
        if (lateAt.getTime() > Date.now()) return lateAt;
        const [told] = await tx.$queryRaw<{ found: boolean }[]>(
          Prisma.sql`SELECT EXISTS (SELECT 1 FROM "AuditEvent" WHERE "targetId" = ${tripId} AND "action" = 'trip.late') AS "found"`,
        );
        if (told?.found) return null;
        await writeAudit(tx, SYSTEM, {
          action: 'trip.late',
          targetType: 'Trip',
          targetId: tripId,
          metadata: { status: trip.status, plannedArrivalAt: trip.plannedArrivalAt.toISOString(), lateToleranceMinutes },
        });
        return null;
      });
      if (recheckAt) await this.deps.jobs.send(TRIP_LATE_QUEUE, { tenantId, tripId }, { startAfter: recheckAt });
    } finally {
      lease.release();
    }
  }
}
