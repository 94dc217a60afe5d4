import type { PlatformTransaction } from '../database/platform-database';
import type { Prisma } from '../generated/prisma/tenant/client';
import { auditRow, type AuditActor, type AuditEntry } from './audit-entry';

/*
 * The two places an audit entry is written, each inside the transaction of the change it
 * records, so an entry exists if and only if its change committed.
 */

/** A change to tenant data: the entry goes into the tenant's own AuditEvent table. */
export async function writeAudit(tx: Prisma.TransactionClient, actor: AuditActor, entry: AuditEntry): Promise<void> {
  await tx.auditEvent.create({ data: auditRow(actor, entry) });
}

/**
 * A change kept in the platform schema for a tenant (members, invitations, API keys, persisted
 * operations): the platform's transaction cannot write into the tenant's schema (it may live in
 * another database), so the entry is queued beside the change and moved by the relay.
 */
export async function queueAudit(tx: PlatformTransaction, tenantId: string, actor: AuditActor, entry: AuditEntry): Promise<void> {
  await tx.tenantAuditOutbox.create({ data: { tenantId, ...auditRow(actor, entry) } });
}
