import { auditRow, type AuditActor } from '../audit/audit-entry';
import type { PlatformDatabase } from '../database/platform-database';
import { Prisma } from '../generated/prisma/tenant/client';
import type { Logger } from '../observability/logger';
import { runTenantJob, type TenantJob, type TenantJobOptions, type TenantJobReport, type TenantJobResult } from '../tenant-jobs/tenant-jobs';
import type { TenantClientPool, TenantPrisma } from '../tenancy/tenant-client-pool';
import type { RecordTypeName } from './record-changes';

/*
 * Soft-deleted vehicles, drivers and trips older than the retention are removed for good, with
 * their history (which holds their old values); the audit log keeps one `<type>.purged` entry
 * per record, by SYSTEM, naming only its id. Batches of PURGE_BATCH rows, each one transaction,
 * so a purge cut anywhere leaves whole records or none and the next run goes on. Rows locked by
 * a request (a restore under way) are skipped until the next run.
 *
 * The same run empties the event outbox of what is finished: an event fanned out before the
 * event retention whose every delivery ended (DELIVERED or DEAD) goes with its deliveries, so
 * the outbox and the delivery log do not grow for ever. The audit entry the event was made
 * from stays (the audit log is append-only), and so do members' in-app notifications (their
 * inbox). An event with a delivery still PENDING or RETRYING stays until it ends.
 */

const PURGE_BATCH = 500;
const DAY_MS = 24 * 3600 * 1000;
const SYSTEM: AuditActor = { actorKind: 'SYSTEM', actorId: null, requestId: null };

interface PurgedType {
  type: Extract<RecordTypeName, 'Trip' | 'Driver' | 'Vehicle'>;
  /** What keeps a deleted row (something still points at it). */
  keptWhile: Prisma.Sql;
  /** Rows of its own that go with it (FKs without ON DELETE CASCADE). */
  dependents: (ids: string[]) => Prisma.Sql[];
}

// Trips first: a deleted vehicle or driver that a trip still names stays until that trip goes.
const PURGED: readonly PurgedType[] = [
  {
    type: 'Trip',
    keptWhile: Prisma.sql`FALSE`,
    // Its stops and notes go with it (ON DELETE CASCADE); their history goes here.
    dependents: (ids) => [
      Prisma.sql`DELETE FROM "RecordChange" WHERE "recordType" = 'Stop' AND "recordId" IN (SELECT "id" FROM "Stop" WHERE "tripId" = ANY(${ids}::uuid[]))`,
      Prisma.sql`DELETE FROM "RecordChange" WHERE "recordType" = 'TripNote' AND "recordId" IN (SELECT "id" FROM "TripNote" WHERE "tripId" = ANY(${ids}::uuid[]))`,
    ],
  },
  { type: 'Driver', keptWhile: Prisma.sql`EXISTS (SELECT 1 FROM "Trip" r WHERE r."driverId" = t."id")`, dependents: () => [] },
  {
    type: 'Vehicle',
    keptWhile: Prisma.sql`EXISTS (SELECT 1 FROM "Trip" r WHERE r."vehicleId" = t."id")`,
    dependents: (ids) => [Prisma.sql`DELETE FROM "MaintenanceRecord" WHERE "vehicleId" = ANY(${ids}::uuid[])`],
  },
];

export type PurgeCounts = Record<PurgedType['type'], number> & { events: number };

/** Purges (or, dry, counts) the tenant's records deleted before `cutoff`, then its finished events dispatched before `eventCutoff`. */
export async function purgeDeletedRecords(db: TenantPrisma, cutoff: Date, dryRun: boolean, eventCutoff: Date): Promise<PurgeCounts> {
  const counts: PurgeCounts = { Trip: 0, Driver: 0, Vehicle: 0, events: 0 };
  for (const purged of PURGED) {
    const table = Prisma.raw(`"${purged.type}"`);
    const due = Prisma.sql`t."deletedAt" < ${cutoff} AND NOT (${purged.keptWhile})`;
    if (dryRun) {
      const [row] = await db.$queryRaw<{ n: number }[]>`SELECT count(*)::int AS n FROM ${table} t WHERE ${due}`;
      counts[purged.type] = row?.n ?? 0;
      continue;
    }
    for (;;) {
      const removed = await db.$transaction(async (tx) => {
        const rows = await tx.$queryRaw<{ id: string }[]>`SELECT t."id" FROM ${table} t WHERE ${due} ORDER BY t."deletedAt" LIMIT ${PURGE_BATCH} FOR UPDATE SKIP LOCKED`;
        if (rows.length === 0) return 0;
        const ids = rows.map((row) => row.id);
        for (const statement of purged.dependents(ids)) await tx.$executeRaw(statement);
        await tx.$executeRaw`DELETE FROM "RecordChange" WHERE "recordType" = ${purged.type} AND "recordId" = ANY(${ids}::uuid[])`;
        await tx.$executeRaw`DELETE FROM ${table} WHERE "id" = ANY(${ids}::uuid[])`;
        const action = `${purged.type.toLowerCase()}.purged`;
        await tx.auditEvent.createMany({ data: ids.map((id) => auditRow(SYSTEM, { action, targetType: purged.type, targetId: id })) });
        return ids.length;
      });
      counts[purged.type] += removed;
      if (removed < PURGE_BATCH) break;
    }
  }
  counts.events = await purgeFinishedEvents(db, eventCutoff, dryRun);
  return counts;
}

async function purgeFinishedEvents(db: TenantPrisma, cutoff: Date, dryRun: boolean): Promise<number> {
  // The (dispatchedAt, occurredAt) index finds them; a fan-out under way holds its event's row.
  const due = Prisma.sql`e."dispatchedAt" < ${cutoff}
    AND NOT EXISTS (SELECT 1 FROM "NotificationDelivery" d WHERE d."eventId" = e."id" AND d."status" IN ('PENDING', 'RETRYING'))`;
  if (dryRun) {
    const [row] = await db.$queryRaw<{ n: number }[]>`SELECT count(*)::int AS n FROM "DomainEvent" e WHERE ${due}`;
    return row?.n ?? 0;
  }
  let total = 0;
  for (;;) {
    // Deliveries go with their event (ON DELETE CASCADE); one batch, one statement.
    const removed = await db.$executeRaw`DELETE FROM "DomainEvent" WHERE "id" IN (
      SELECT e."id" FROM "DomainEvent" e WHERE ${due} ORDER BY e."dispatchedAt" LIMIT ${PURGE_BATCH} FOR UPDATE SKIP LOCKED)`;
    total += removed;
    if (removed < PURGE_BATCH) return total;
  }
}

export interface DeletedRecordPurgeOptions extends Omit<TenantJobOptions, 'concurrency' | 'dryRun' | 'statuses'> {
  dryRun?: boolean;
  concurrency?: number;
}

/** The purge over every tenant (or the ones named), through the one tenant-job iterator. */
export class DeletedRecordPurge {
  constructor(
    private readonly deps: {
      platform: PlatformDatabase;
      tenantClients: TenantClientPool;
      logger: Logger;
      retentionDays: number;
      /** Days a finished event (and its deliveries) is kept after its fan-out. */
      eventRetentionDays: number;
    },
  ) {}

  get retentionDays(): number {
    return this.deps.retentionDays;
  }

  get eventRetentionDays(): number {
    return this.deps.eventRetentionDays;
  }

  /** `onResult` hears each tenant's counts as its batch finishes (the report keeps only totals and failures). */
  async run(options: DeletedRecordPurgeOptions = {}, onResult?: (result: TenantJobResult<PurgeCounts>) => void): Promise<TenantJobReport<PurgeCounts>> {
    const cutoff = new Date(Date.now() - this.deps.retentionDays * DAY_MS);
    const eventCutoff = new Date(Date.now() - this.deps.eventRetentionDays * DAY_MS);
    const job: TenantJob<PurgeCounts> = {
      name: 'purge-deleted-records',
      run: async (tenant, { dryRun }) => {
        const lease = this.deps.tenantClients.lease(tenant);
        try {
          return await purgeDeletedRecords(lease.db, cutoff, dryRun, eventCutoff);
        } finally {
          lease.release();
        }
      },
    };
    let purged = 0;
    let events = 0;
    const report = await runTenantJob(
      { prisma: this.deps.platform.prisma, logger: this.deps.logger },
      job,
      { ...options, concurrency: options.concurrency ?? 2, dryRun: options.dryRun ?? false },
      (result) => {
        purged += result.outcome ? result.outcome.Trip + result.outcome.Driver + result.outcome.Vehicle : 0;
        events += result.outcome?.events ?? 0;
        onResult?.(result);
      },
    );
    this.deps.logger.info({ dryRun: report.dryRun, tenants: report.visited, failed: report.failed, records: purged, events, durationMs: report.durationMs }, 'deleted records purged');
    return report;
  }
}
