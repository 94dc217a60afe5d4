import { createHash } from 'node:crypto';
import type { AuditActorKind, AuditMetadata } from '../audit/audit-entry';
import { mapWithConcurrency } from '../concurrency/map-with-concurrency';
import type pg from 'pg';
import { PLATFORM_SCHEMA } from '../database/platform-database';
import type { NotificationSubscriber, PlatformChannel } from '../database/platform-notifications';
import { isUuid } from '../database/uuid';
import type { DomainEvent } from '../events/domain-event';
import { EVENTS_CHANNEL } from '../events/event-channel';
import { Prisma } from '../generated/prisma/tenant/client';
import type { JobQueue, QueueSpec } from '../jobs/job-queue';
import { describeError, type Logger } from '../observability/logger';
import type { Metrics } from '../observability/metrics';
import { tenantRefColumns, type TenantClientPool, type TenantDatabaseRef, type TenantLease } from '../tenancy/tenant-client-pool';
import type { ChannelKind, EventTenant, NotificationChannel } from './channel';
import { claimDue, nextDueAt, recordOutcome, eventTypeName, type ClaimedDelivery, type Outcome, type RetryPolicy } from './deliveries';
import { routeEvent, type Member } from './routing';

/*
 * The delivery worker (docs/decisions/0018). A tenant whose transaction wrote events notifies
 * `fleet_events` on commit; every instance hears it and sends one job for that tenant to a
 * `stately` queue, which holds at most one queued and one running job per tenant, on whichever
 * instance fetches it. The job fans the tenant's new events out into deliveries (routing,
 * members' mutes, each channel's targets), then sends what is due, and leaves a wake-up in the
 * queue for the next retry. An idle tenant costs nothing: no job, no query.
 */

export const TENANT_EVENTS_QUEUE = 'tenant-events';
/** Wake-ups at a retry's time; each only sends the tenant's job, so a tenant still has one job at a time. */
export const TENANT_EVENTS_DUE_QUEUE = 'tenant-events-due';

/** Events fanned out per round trip. */
const EVENT_BATCH = 100;
/** Deliveries claimed at once, and sent at once. */
const DELIVERY_BATCH = 20;
const SEND_CONCURRENCY = 4;
/** Rounds one job does before it yields its turn to other tenants (and queues itself again). */
const MAX_ROUNDS = 20;
/** How long a tenant's job waits when the connection budget has no room for it. */
const BUDGET_BACKOFF_MS = 1_000;
/** How long a tenant's job waits while the tenant is being moved (its writes are stopped). */
const MOVE_BACKOFF_MS = 5_000;

interface TenantRow extends TenantDatabaseRef, EventTenant {
  status: string;
  readOnlySince: Date | null;
}

interface EventRow {
  id: string;
  type: string;
  occurredAt: Date;
  actorKind: AuditActorKind;
  actorId: string | null;
  targetType: string;
  targetId: string;
  metadata: AuditMetadata;
}

export interface DeliveryWorkerOptions {
  /** Platform reads of the jobs (the job queue's own pool). */
  platformPool: pg.Pool;
  tenantClients: TenantClientPool;
  jobs: JobQueue;
  channels: readonly NotificationChannel[];
  logger: Logger;
  retry: RetryPolicy;
  /** Tenants served at once by this instance. */
  concurrency: number;
  metrics?: Pick<Metrics, 'recordNotificationAttempt' | 'recordEventsDispatched'>;
  /** Told of each event once it is fanned out (subscriptions, follow-up jobs); failures are logged, not retried. */
  onDispatched?: (event: DomainEvent, tenant: EventTenant) => Promise<void> | void;
}

export class DeliveryWorker implements NotificationSubscriber {
  private readonly channels: Map<ChannelKind, NotificationChannel>;
  private started = false;

  constructor(private readonly options: DeliveryWorkerOptions) {
    this.channels = new Map(options.channels.map((channel) => [channel.kind, channel]));
  }

  static queues(): QueueSpec[] {
    return [
      // A failed job (the tenant's database away) is retried by pg-boss with backoff; a job running
      // past expireInSeconds is taken as lost with its instance and run again.
      { name: TENANT_EVENTS_QUEUE, policy: 'stately', retryLimit: 20, retryDelaySeconds: 5, expireInSeconds: 600 },
      { name: TENANT_EVENTS_DUE_QUEUE, policy: 'standard', retryLimit: 5, retryDelaySeconds: 5, expireInSeconds: 60 },
    ];
  }

  async start(): Promise<void> {
    const { jobs, concurrency } = this.options;
    await jobs.work<{ tenantId: string }>(TENANT_EVENTS_QUEUE, concurrency, ({ tenantId }) => this.serve(tenantId));
    await jobs.work<{ tenantId: string }>(TENANT_EVENTS_DUE_QUEUE, 1, ({ tenantId }) => this.wake(tenantId));
    this.started = true;
  }

  /** Stops waking tenants (at shutdown, before the queue stops). */
  stop(): void {
    this.started = false;
  }

  /** Queues the tenant's job (a no-op when one is already queued). */
  async wake(tenantId: string): Promise<void> {
    await this.options.jobs.send(TENANT_EVENTS_QUEUE, { tenantId }, { singletonKey: tenantId });
  }

  onNotification(channel: PlatformChannel, payload: string): void {
    if (!this.started) return;
    // A tenant reactivated may have events that waited while it was suspended.
    if (channel === 'fleet_tenant_changes' && isUuid(payload)) void this.wakeLogged(payload);
    if (channel === EVENTS_CHANNEL) void this.wakeBySchema(payload);
  }

  onReset(): void {
    // Notifications missed while the listener was down are found by the sweep at start
    // (src/notifications/event-sweep.ts): nothing to forget here.
  }

  private async wakeBySchema(schemaName: string): Promise<void> {
    try {
      const { rows } = await this.options.platformPool.query<{ id: string }>(`SELECT "id" FROM ${PLATFORM_SCHEMA}."Tenant" WHERE "schemaName" = $1`, [schemaName]);
      if (rows[0]) await this.wake(rows[0].id);
    } catch (error) {
      this.options.logger.warn({ err: describeError(error) }, 'waking a tenant for its events failed; the start-up sweep or its next event wakes it');
    }
  }

  private async wakeLogged(tenantId: string): Promise<void> {
    await this.wake(tenantId).catch((error: unknown) => this.options.logger.warn({ err: describeError(error), tenantId }, 'waking a tenant for its events failed'));
  }

  /** One job: the tenant's new events fanned out, its due deliveries sent, the next wake-up queued. */
  async serve(tenantId: string): Promise<void> {
    const tenant = await this.tenantOf(tenantId);
    // Suspended: deliveries wait for reactivation (which wakes it); gone: nothing left to send.
    if (!tenant || tenant.status !== 'ACTIVE') return;
    if (tenant.readOnlySince) {
      // Being moved to another cluster: its writes wait. The switch changes its row, which wakes it; this wake-up covers a missed one.
      await this.wakeAt(tenant.id, new Date(Date.now() + MOVE_BACKOFF_MS));
      return;
    }
    if (!this.options.tenantClients.hasRoomForBackgroundWork(tenant.cluster)) {
      // The connection budget is needed by requests: come back in a moment.
      await this.wakeAt(tenant.id, new Date(Date.now() + BUDGET_BACKOFF_MS));
      return;
    }
    const lease = this.options.tenantClients.lease(tenant);
    try {
      let members: Member[] | undefined;
      const loadMembers = async () => (members ??= await this.membersOf(tenant.id));
      let round = 0;
      for (; round < MAX_ROUNDS; round += 1) {
        const fannedOut = await this.fanOut(tenant, lease, loadMembers);
        const sent = await this.sendDue(tenant, lease);
        if (fannedOut === 0 && sent === 0) break;
      }
      if (round === MAX_ROUNDS) await this.wake(tenant.id);
      else await this.scheduleNext(tenant.id, lease);
    } finally {
      lease.release();
    }
  }

  private async tenantOf(tenantId: string): Promise<TenantRow | undefined> {
    if (!isUuid(tenantId)) return undefined;
    const { rows } = await this.options.platformPool.query<TenantRow>(
      `SELECT ${tenantRefColumns()}, "slug", "name", "status", "readOnlySince" FROM ${PLATFORM_SCHEMA}."Tenant" WHERE "id" = $1`,
      [tenantId],
    );
    return rows[0];
  }

  private async membersOf(tenantId: string): Promise<Member[]> {
    const { rows } = await this.options.platformPool.query<Member>(`SELECT "userId", "role" FROM ${PLATFORM_SCHEMA}."Membership" WHERE "tenantId" = $1`, [tenantId]);
    return rows;
  }

  /**
   * Deliveries for a batch of new events, then the events stamped. No transaction is held: the
   * deliveries' (event, channel, target) key makes a second fan-out of the same event (after a
   * crash, or by a job whose lease expired) write nothing new, and only the job that stamps an
   * event tells `onDispatched` of it.
   */
  private async fanOut(tenant: TenantRow, lease: TenantLease, members: () => Promise<Member[]>): Promise<number> {
    const rows = await lease.sql.rows<EventRow>(
      Prisma.sql`SELECT e."id", e."type", e."occurredAt", a."actorKind"::text AS "actorKind", a."actorId", a."targetType", a."targetId", a."metadata"
          FROM "DomainEvent" e JOIN "AuditEvent" a ON a."id" = e."id"
         WHERE e."dispatchedAt" IS NULL ORDER BY e."occurredAt", e."id" LIMIT ${EVENT_BATCH}`,
    );
    if (rows.length === 0) return 0;
    const events = await this.toEvents(tenant, lease, rows);
    const planned: { eventId: string; channel: ChannelKind; target: string }[] = [];
    const everyone = await members();
    for (const event of events) {
      const route = await routeEvent(lease, event, everyone);
      for (const kind of route.channels) {
        const channel = this.channels.get(kind);
        if (!channel) continue;
        const targets = await channel.targets(event, route.recipients, { tenant, tenantData: lease });
        for (const target of targets) planned.push({ eventId: event.id, channel: kind, target });
      }
    }
    if (planned.length > 0) {
      await lease.db.$executeRaw(
        Prisma.sql`INSERT INTO "NotificationDelivery" ("id", "eventId", "channel", "target", "updatedAt")
          SELECT gen_random_uuid(), p."eventId", p."channel"::"NotificationChannelKind", p."target", now()
            FROM jsonb_to_recordset(${JSON.stringify(planned)}::jsonb) AS p("eventId" uuid, "channel" text, "target" text)
          ON CONFLICT ("eventId", "channel", "target") DO NOTHING`,
      );
    }
    const stamped = await lease.db.$queryRaw<{ id: string; delaySeconds: number }[]>(
      Prisma.sql`UPDATE "DomainEvent" SET "dispatchedAt" = now() WHERE "id" = ANY(${events.map((event) => event.id)}::uuid[]) AND "dispatchedAt" IS NULL
        RETURNING "id", extract(epoch FROM "dispatchedAt" - "occurredAt")::float8 AS "delaySeconds"`,
    );
    /*
     * The outbox's figures for operators come from here, at no extra query: how many events were
     * fanned out and how late. Not a count of undispatched events: that is one query per tenant
     * schema (the cost ADR 0018 avoids), and a gauge set by whichever tenant's job ran last would
     * mean nothing. Events that wait show instead as the tenant-events queue's lag
     * (fleet_job_queue_lag_seconds: a tenant's job not yet started) and as this delay once fanned out.
     */
    this.options.metrics?.recordEventsDispatched(stamped.map((row) => Number(row.delaySeconds)));
    const ours = new Set(stamped.map((row) => row.id));
    for (const event of events) {
      if (!ours.has(event.id) || !this.options.onDispatched) continue;
      try {
        await this.options.onDispatched(event, tenant);
      } catch (error) {
        this.options.logger.warn({ err: describeError(error), tenantId: tenant.id, eventId: event.id }, 'an event follow-up failed');
      }
    }
    return rows.length;
  }

  /** Events as channels see them, each subject with the name people know it by. */
  private async toEvents(tenant: TenantRow, lease: TenantLease, rows: readonly EventRow[]): Promise<DomainEvent[]> {
    const labels = await subjectLabels(lease, rows);
    return rows.map((row) => {
      const label = labels.get(row.targetId);
      return {
        id: row.id,
        tenantId: tenant.id,
        type: eventTypeName(row.type),
        occurredAt: row.occurredAt,
        subject: { type: row.targetType, id: row.targetId, ...(label ? { label } : {}) },
        actor: { kind: row.actorKind, id: row.actorId },
        data: row.metadata,
      };
    });
  }

  /** Sends what is due now, a batch at a time; how many were tried. */
  private async sendDue(tenant: TenantRow, lease: TenantLease): Promise<number> {
    const { retry } = this.options;
    const claimed = await claimDue(lease, DELIVERY_BATCH, retry);
    if (claimed.length === 0) return 0;
    const rows = await lease.sql.rows<EventRow>(
      Prisma.sql`SELECT a."id", a."action" AS "type", a."occurredAt", a."actorKind"::text AS "actorKind", a."actorId", a."targetType", a."targetId", a."metadata"
          FROM "AuditEvent" a WHERE a."id" = ANY(${[...new Set(claimed.map((delivery) => delivery.eventId))]}::uuid[])`,
    );
    const events = new Map((await this.toEvents(tenant, lease, rows)).map((event) => [event.id, event]));
    await mapWithConcurrency(claimed, SEND_CONCURRENCY, async (delivery) => {
      const outcome = await this.attempt(tenant, lease, delivery, events.get(delivery.eventId));
      const recorded = await recordOutcome(lease, delivery, outcome, retry);
      this.options.metrics?.recordNotificationAttempt(delivery.channel, recorded);
      if (recorded !== 'delivered') {
        this.options.logger.info({ tenantId: tenant.id, deliveryId: delivery.id, channel: delivery.channel, attempt: delivery.attempt, outcome: recorded }, 'notification delivery failed');
      }
    });
    return claimed.length;
  }

  private async attempt(tenant: TenantRow, lease: TenantLease, delivery: ClaimedDelivery, event: DomainEvent | undefined): Promise<Outcome> {
    const channel = this.channels.get(delivery.channel);
    if (!event || !channel) return { delivered: false, error: new Error(!event ? 'the event is gone' : `no ${delivery.channel} channel on this server`) };
    // A channel's own timeouts are shorter; this bounds one that forgets.
    const signal = AbortSignal.timeout(this.options.retry.claimMs / 2);
    try {
      await Promise.race([
        channel.deliver(event, delivery.target, { tenant, tenantData: lease, attempt: delivery.attempt, signal }),
        new Promise<never>((_, reject) => signal.addEventListener('abort', () => reject(new Error('delivery timed out')), { once: true })),
      ]);
      return { delivered: true };
    } catch (error) {
      return { delivered: false, error };
    }
  }

  /**
   * A wake-up at the next retry's time. Its job id is derived from (tenant, second), so the same
   * wake-up queued twice is one job.
   */
  private async scheduleNext(tenantId: string, lease: TenantLease): Promise<void> {
    const due = await nextDueAt(lease);
    if (due) await this.wakeAt(tenantId, due);
  }

  private async wakeAt(tenantId: string, due: Date): Promise<void> {
    const at = new Date(Math.ceil(due.getTime() / 1000) * 1000);
    await this.options.jobs.send(TENANT_EVENTS_DUE_QUEUE, { tenantId }, { startAfter: at, id: wakeUpId(tenantId, at) });
  }
}

function wakeUpId(tenantId: string, at: Date): string {
  const hex = createHash('sha256').update(`${tenantId}/${at.toISOString()}`).digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-8${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

/** Names of the events' subjects people know them by: trip references, vehicle plates, driver names. */
async function subjectLabels(lease: TenantLease, rows: readonly EventRow[]): Promise<Map<string, string>> {
  const idsOf = (type: string) => [...new Set(rows.filter((row) => row.targetType === type && isUuid(row.targetId)).map((row) => row.targetId))];
  const [trips, vehicles, drivers] = [idsOf('Trip'), idsOf('Vehicle'), idsOf('Driver')];
  const found = await lease.sql.rows<{ id: string; label: string }>(
    Prisma.sql`SELECT "id"::text, "reference" AS "label" FROM "Trip" WHERE "id" = ANY(${trips}::uuid[])
      UNION ALL SELECT "id"::text, "plate" FROM "Vehicle" WHERE "id" = ANY(${vehicles}::uuid[])
      UNION ALL SELECT "id"::text, "name" FROM "Driver" WHERE "id" = ANY(${drivers}::uuid[])`,
  );
  return new Map(found.map((row) => [row.id, row.label]));
}
