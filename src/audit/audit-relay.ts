import { PLATFORM_SCHEMA, type PlatformDatabase } from '../database/platform-database';
import type { NotificationSubscriber, PlatformChannel, PlatformNotifications } from '../database/platform-notifications';
import { Prisma } from '../generated/prisma/tenant/client';
import { EVENT_TYPES } from '../events/domain-event';
import { EVENTS_CHANNEL } from '../events/event-channel';
import { isUuid } from '../database/uuid';
import { describeError, type Logger } from '../observability/logger';
import type { Metrics } from '../observability/metrics';
import { tenantRefColumns, type TenantClientPool, type TenantDatabaseRef } from '../tenancy/tenant-client-pool';

/** Entries moved per round trip pair (one insert into the tenant, one delete from the outbox). */
const BATCH = 200;
/** Tenants with queued entries a sweep takes at once. */
const SWEEP_TENANTS = 100;
const OUTBOX = `${PLATFORM_SCHEMA}."TenantAuditOutbox"`;
const TENANT = `${PLATFORM_SCHEMA}."Tenant"`;
const EVENT_ACTIONS = Object.keys(EVENT_TYPES);

interface QueuedRow {
  id: string;
  occurredAt: Date;
  actorKind: string;
  actorId: string | null;
  action: string;
  targetType: string;
  targetId: string;
  requestId: string | null;
  metadata: unknown;
}

/**
 * Moves audit entries queued in the platform's outbox into each tenant's AuditEvent table.
 * Hand-written because it is two statements per batch and a notification hook; a job queue
 * would be a second mechanism for the same thing (the notifications issue will decide on one
 * for outgoing events).
 *
 * When: at once after the transaction that queued them commits (its trigger notifies every
 * instance), before `auditEvents` reads a tenant's log (so a reader sees every committed
 * change), and by a sweep every `sweepIntervalMs` and whenever notifications may have been
 * missed (a crash between commit and move, a dropped LISTEN connection).
 *
 * At least once, written once: an entry keeps its id, the insert skips ids already there, and
 * the outbox rows are deleted only after the insert committed, so a move cut anywhere is
 * finished by the next one, and two instances moving the same entries write each once.
 */
export class AuditRelay implements NotificationSubscriber {
  private readonly inFlight = new Map<string, Promise<number>>();
  private sweepTimer: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(
    private readonly deps: {
      platform: PlatformDatabase;
      tenantClients: TenantClientPool;
      logger: Logger;
      notifications?: PlatformNotifications;
      sweepIntervalMs: number;
      metrics?: Pick<Metrics, 'recordAuditEntriesMoved'>;
    },
  ) {
    deps.notifications?.subscribe(this);
  }

  start(): void {
    this.sweepTimer = setInterval(() => void this.sweep(), this.deps.sweepIntervalMs);
    this.sweepTimer.unref();
    void this.sweep();
  }

  /** Stops sweeping and waits for moves under way. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    await Promise.allSettled([...this.inFlight.values()]);
  }

  onNotification(channel: PlatformChannel, payload: string): void {
    // A tenant's row changed: it may have just become ACTIVE with entries queued while it was
    // provisioned (tenant.created), which could not move before it had a complete schema.
    if (channel === 'fleet_audit_outbox' || channel === 'fleet_tenant_changes') void this.flushById(payload);
  }

  onReset(): void {
    void this.sweep();
  }

  /**
   * Moves every entry queued for `tenant` now; the number moved. One move per tenant at a time
   * on this instance: a caller arriving meanwhile waits for it and then moves what is left.
   */
  async flush(tenant: TenantDatabaseRef): Promise<number> {
    const running = this.inFlight.get(tenant.id);
    if (running) await running.catch(() => undefined);
    const move = this.move(tenant).finally(() => {
      if (this.inFlight.get(tenant.id) === move) this.inFlight.delete(tenant.id);
    });
    this.inFlight.set(tenant.id, move);
    return move;
  }

  /** Moves the entries of every tenant that has some queued (bounded per call). */
  async sweep(): Promise<void> {
    if (this.closed) return;
    try {
      const tenants = await this.deps.platform.pool.query<{ tenantId: string }>(`SELECT DISTINCT "tenantId" FROM ${OUTBOX} LIMIT $1`, [SWEEP_TENANTS]);
      for (const { tenantId } of tenants.rows) await this.flushById(tenantId);
    } catch (error) {
      this.deps.logger.warn({ err: describeError(error) }, 'audit outbox sweep failed; the next sweep retries');
    }
  }

  private async flushById(tenantId: string): Promise<void> {
    if (this.closed) return;
    if (!isUuid(tenantId)) return;
    try {
      // The tenant only if it has entries queued: one statement, and none at all for the many
      // tenant changes that queue nothing. A tenant without a schema yet keeps its entries until
      // it has one; a purged one took them along.
      const { rows } = await this.deps.platform.pool.query<TenantDatabaseRef>(
        `SELECT ${tenantRefColumns('t')} FROM ${TENANT} t
          WHERE t."id" = $1 AND t."status" IN ('ACTIVE', 'SUSPENDED') AND EXISTS (SELECT 1 FROM ${OUTBOX} o WHERE o."tenantId" = t."id")`,
        [tenantId],
      );
      const tenant = rows[0];
      if (!tenant) return;
      await this.flush(tenant);
    } catch (error) {
      this.deps.logger.warn({ err: describeError(error), tenantId }, 'moving audit entries failed; the next sweep retries');
    }
  }

  private async move(tenant: TenantDatabaseRef): Promise<number> {
    const { pool } = this.deps.platform;
    let moved = 0;
    for (;;) {
      const { rows } = await pool.query<QueuedRow>(
        `SELECT "id", "occurredAt", "actorKind", "actorId", "action", "targetType", "targetId", "requestId", "metadata"
           FROM ${OUTBOX} WHERE "tenantId" = $1 ORDER BY "id" LIMIT $2`,
        [tenant.id, BATCH],
      );
      if (rows.length === 0) return moved;
      const lease = this.deps.tenantClients.lease(tenant);
      try {
        // The entries, and the events among them into the outbox (docs/decisions/0018), in one
        // statement; a wake-up for the delivery worker only when an event was new.
        await lease.db.$executeRaw(
          Prisma.sql`WITH queued AS (
              SELECT * FROM jsonb_to_recordset(${JSON.stringify(rows)}::jsonb) AS queued("id" uuid, "occurredAt" timestamptz, "actorKind" text, "actorId" uuid,
                "action" text, "targetType" text, "targetId" text, "requestId" text, "metadata" jsonb)
            ), entries AS (
              INSERT INTO "AuditEvent" ("id", "occurredAt", "actorKind", "actorId", "action", "targetType", "targetId", "requestId", "metadata")
              SELECT "id", "occurredAt", "actorKind"::"AuditActorKind", "actorId", "action", "targetType", "targetId", "requestId", "metadata" FROM queued
              ON CONFLICT ("id") DO NOTHING
            ), events AS (
              INSERT INTO "DomainEvent" ("id", "type", "occurredAt")
              SELECT "id", "action", "occurredAt" FROM queued WHERE "action" = ANY(${EVENT_ACTIONS}::text[])
              ON CONFLICT ("id") DO NOTHING RETURNING 1
            )
            SELECT pg_notify(${EVENTS_CHANNEL}, current_schema()) FROM (SELECT 1 FROM events LIMIT 1) AS woken`,
        );
      } finally {
        lease.release();
      }
      await pool.query(`DELETE FROM ${OUTBOX} WHERE "id" = ANY($1::uuid[])`, [rows.map((row) => row.id)]);
      moved += rows.length;
      this.deps.metrics?.recordAuditEntriesMoved(rows.length);
      if (rows.length < BATCH) return moved;
    }
  }
}
