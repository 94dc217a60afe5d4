import { isUuid } from '../database/uuid';
import { assertNoNul } from '../errors/app-error';
import type { AuditEventFilter, AuditEventOrderField } from '../generated/graphql';
import { Prisma, type AuditEvent } from '../generated/prisma/tenant/client';
import { parseGlobalId, toGlobalId, type NodeType } from '../graphql/global-id';
import type { ConnectionModel } from '../graphql/pagination';
import type { TenantSql } from '../tenancy/tenant-sql';
import { TenantTable } from '../tenancy/tenant-table';
import { readList, type ListArgs, type RecordList } from './record-list';

/** The tenant's audit log as the API reads it (src/audit/ writes it). */

const auditTable = new TenantTable<AuditEvent>('AuditEvent', Object.values(Prisma.AuditEventScalarFieldEnum));

/** What no entry can match: a filter value that is no id of ours finds nothing, not an error. */
const NOTHING = Prisma.sql`FALSE`;

const auditList: RecordList<AuditEvent, AuditEventFilter, AuditEventOrderField> = {
  table: auditTable,
  conditions(filter) {
    const where: Prisma.Sql[] = [];
    if (filter?.actorId) where.push(isUuid(filter.actorId) ? Prisma.sql`t."actorId" = ${filter.actorId.toLowerCase()}::uuid` : NOTHING);
    if (filter?.action) where.push(Prisma.sql`t."action" = ${filter.action}`);
    if (filter?.targetId) where.push(Prisma.sql`t."targetId" = ${parseGlobalId(filter.targetId)?.id ?? filter.targetId}`);
    if (filter?.from) where.push(Prisma.sql`t."occurredAt" >= ${filter.from}`);
    if (filter?.to) where.push(Prisma.sql`t."occurredAt" < ${filter.to}`);
    return where;
  },
  orders: {
    CREATED_AT: { column: 'id' },
    OCCURRED_AT: { column: 'occurredAt', kind: 'timestamp' },
  },
};

export function listAuditEvents(sql: TenantSql, args: ListArgs<AuditEventFilter, AuditEventOrderField>): Promise<ConnectionModel<AuditEvent>> {
  // PostgreSQL refuses NUL in text: a clear error instead of a failed statement.
  if (args.filter?.action) assertNoNul(args.filter.action, 'filter.action');
  if (args.filter?.targetId) assertNoNul(args.filter.targetId, 'filter.targetId');
  return readList(sql, auditList, args);
}

const NODE_TARGETS: ReadonlySet<string> = new Set<NodeType>(['Vehicle', 'Driver', 'Trip', 'MaintenanceRecord', 'Stop', 'TripNote']);

/** An entry's target id as the API names it: a global id for what `node` reads. */
export function apiTargetId(event: Pick<AuditEvent, 'targetType' | 'targetId'>): string {
  return NODE_TARGETS.has(event.targetType) ? toGlobalId(event.targetType as NodeType, event.targetId) : event.targetId;
}

/** For the EXPLAIN test of every declared order. */
export { auditList };
