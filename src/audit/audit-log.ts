import type { PlatformTransaction } from '../database/platform-database';
import { isEventAction } from '../events/domain-event';
import { EVENTS_CHANNEL } from '../events/event-channel';
import { Prisma } from '../generated/prisma/tenant/client';
import { auditRow, type AuditActor, type AuditEntry } from './audit-entry';

/*
 * The two places an audit entry is written, each inside the transaction of the change it
 * records, so an entry exists if and only if its change committed.
 */

/** A change to tenant data: the entry goes into the tenant's own AuditEvent table. */
export async function writeAudit(tx: Prisma.TransactionClient, actor: AuditActor, entry: AuditEntry): Promise<void> {
  const written = await tx.auditEvent.create({ data: auditRow(actor, entry), select: { id: true, occurredAt: true } });
  if (!isEventAction(entry.action)) return;
  // An event too: into the outbox beside it, and a wake-up for the delivery worker that
  // PostgreSQL sends only if this transaction commits (the payload names the tenant's schema,
  // which is the connection's own; docs/decisions/0018).
  await tx.$executeRaw(
    Prisma.sql`WITH queued AS (INSERT INTO "DomainEvent" ("id", "type", "occurredAt") VALUES (${written.id}::uuid, ${entry.action}, ${written.occurredAt}))
      SELECT pg_notify(${EVENTS_CHANNEL}, current_schema())`,
  );
}

/**
 * A change kept in the platform schema for a tenant (members, invitations, API keys, persisted
 * operations): the platform's transaction cannot write into the tenant's schema (it may live in
 * another database), so the entry is queued beside the change and moved by the relay.
 */
export async function queueAudit(tx: PlatformTransaction, tenantId: string, actor: AuditActor, entry: AuditEntry): Promise<void> {
  await tx.tenantAuditOutbox.create({ data: { tenantId, ...auditRow(actor, entry) } });
}
