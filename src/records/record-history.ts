import { Prisma, type RecordChange } from '../generated/prisma/tenant/client';
import type { ConnectionModel } from '../graphql/pagination';
import type { TenantSql } from '../tenancy/tenant-sql';
import { TenantTable } from '../tenancy/tenant-table';
import type { RecordTypeName } from './record-changes';
import { readList, type RecordList } from './record-list';

/** A record's version history as the API reads it: newest first, paged like every list. */

const recordChangeTable = new TenantTable<RecordChange>('RecordChange', Object.values(Prisma.RecordChangeScalarFieldEnum));

const historyList: RecordList<RecordChange, { recordType: RecordTypeName; recordId: string }, 'CREATED_AT'> = {
  table: recordChangeTable,
  conditions: (filter) => (filter ? [Prisma.sql`t."recordType" = ${filter.recordType}`, Prisma.sql`t."recordId" = ${filter.recordId}::uuid`] : []),
  orders: { CREATED_AT: { column: 'id' } },
};

export function historyOf(sql: TenantSql, recordType: RecordTypeName, recordId: string, args: { first?: number | null; after?: string | null }): Promise<ConnectionModel<RecordChange>> {
  return readList(sql, historyList, { ...args, filter: { recordType, recordId }, orderBy: { field: 'CREATED_AT', direction: 'DESC' } });
}

/** The stored { field: [old, new] } as a list; values as text. */
export function fieldChangesOf(change: RecordChange): { field: string; from: string | null; to: string | null }[] {
  const text = (value: unknown) => (value === null || value === undefined ? null : typeof value === 'string' ? value : JSON.stringify(value));
  return Object.entries(change.changes as Record<string, [unknown, unknown]>).map(([field, [from, to]]) => ({ field, from: text(from), to: text(to) }));
}
