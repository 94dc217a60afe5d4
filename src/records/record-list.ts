import { badInput } from '../errors/app-error';
import { Prisma } from '../generated/prisma/tenant/client';
import { assertSortValue, CREATION_ORDER, pageRequest, toConnection, toSortValue, type ConnectionModel, type PageRequest, type SortKind } from '../graphql/pagination';
import type { TenantSql } from '../tenancy/tenant-sql';
import { ID_ORDER, type PageOrder, type PageQuery, type TenantTable, type ToOneJoin } from '../tenancy/tenant-table';

/*
 * The one way a tenant record type is listed: a Relay connection in an order the type declares
 * (each backed by a (column, id) index its migration adds), with its filters as SQL conditions.
 * A type declares itself once (`RecordList`) and every list of it, whatever the order, pages
 * with cursors that stay stable under that order (ties broken by id).
 */

/**
 * What a column's values are, as an order declares it: the compiler asks for `kind` where the
 * column holds timestamps, numbers or an enum's values, so a cursor's value is checked against
 * it (a plain text column needs nothing).
 */
type SortKindOf<Value> = [NonNullable<Value>] extends [Date]
  ? { kind: 'timestamp' }
  : [NonNullable<Value>] extends [number]
    ? { kind: 'number' }
    : string extends NonNullable<Value>
      ? { kind?: 'text' }
      : { kind: 'enum'; values: readonly NonNullable<Value>[] };

/** An order a type offers: its column, whether it may hold NULLs, and what it holds. */
export type OrderColumn<Row> = {
  [Column in keyof Row & string]: { column: Column; nullable?: boolean } & SortKindOf<Row[Column]>;
}[keyof Row & string];

function sortKindOf(declared: { kind?: SortKind['kind']; values?: readonly unknown[] }): SortKind {
  switch (declared.kind) {
    case 'enum':
      return { kind: 'enum', values: declared.values ?? [] };
    case 'timestamp':
    case 'number':
      return { kind: declared.kind };
    default:
      return { kind: 'text' };
  }
}

export interface RecordList<Row extends { id: string }, Filter, OrderField extends string> {
  table: TenantTable<Row>;
  /** The filter as conditions over the alias `t`. */
  conditions(filter: Filter | null | undefined): Prisma.Sql[];
  /** What `orderBy: { field }` may name. CREATED_AT, the default, is id order (UUIDv7). */
  orders: Record<OrderField, OrderColumn<Row>>;
  /** Rows carry `deletedAt`: lists leave deleted ones out unless asked to include them. */
  softDeleted?: boolean;
}

export interface ListArgs<Filter, OrderField extends string> {
  first?: number | null;
  after?: string | null;
  filter?: Filter | null;
  orderBy?: { field: OrderField; direction?: 'ASC' | 'DESC' | null } | null;
  /** Deleted rows too (the resolver has checked the caller may see them). */
  includeDeleted?: boolean | null;
}

function pageOrderOf<Row extends { id: string }, OrderField extends string>(
  list: RecordList<Row, unknown, OrderField>,
  orderBy: ListArgs<unknown, OrderField>['orderBy'],
): { name: string; order: PageOrder; sort: SortKind | null } {
  const direction = orderBy?.direction ?? 'ASC';
  if (!orderBy || (orderBy.field === 'CREATED_AT' && direction === 'ASC')) return { name: CREATION_ORDER, order: ID_ORDER, sort: null };
  const declared: OrderColumn<Row> | undefined = list.orders[orderBy.field];
  if (!declared) throw badInput(`orderBy.field ${orderBy.field} is not an order of this list`, 'orderBy.field');
  const sort = declared.column === 'id' ? null : sortKindOf(declared);
  return { name: `${orderBy.field} ${direction}`, order: { column: declared.column, direction, nullable: declared.nullable ?? false }, sort };
}

/** What one page of `list` asks the table for, and the page request it answers (public so that a test can EXPLAIN it). */
export function pageQueryOf<Row extends { id: string }, Filter, OrderField extends string>(
  list: RecordList<Row, Filter, OrderField>,
  args: ListArgs<Filter, OrderField>,
): { page: PageRequest; query: PageQuery } {
  const { name, order, sort } = pageOrderOf(list, args.orderBy);
  const page = pageRequest(args.first, args.after, name);
  if (page.after && sort) assertSortValue(sort, page.after, order.nullable);
  const where = list.conditions(args.filter);
  if (list.softDeleted && !args.includeDeleted) where.push(Prisma.sql`t."deletedAt" IS NULL`);
  return { page, query: { where, order, after: page.after, limit: page.take + 1 } };
}

/**
 * A page of `list`; with `join`, each row's to-one relation comes in the same statement and
 * goes to `keep` (the request's loaders). The connection's totalCount counts the filter's matches.
 */
export async function readList<Row extends { id: string }, Filter, OrderField extends string, Related extends { id: string } = never>(
  sql: TenantSql,
  list: RecordList<Row, Filter, OrderField>,
  args: ListArgs<Filter, OrderField>,
  join?: { relation: ToOneJoin<Row, Related>; keep: (row: Row, related: Related | null) => void },
): Promise<ConnectionModel<Row>> {
  const { page, query } = pageQueryOf(list, args);
  let rows: Row[];
  if (join) {
    const joined = await list.table.page(sql, query, join.relation);
    for (const { row, related } of joined) join.keep(row, related);
    rows = joined.map(({ row }) => row);
  } else {
    rows = await list.table.page(sql, query);
  }
  const column = (query.order ?? ID_ORDER).column as keyof Row;
  return toConnection(rows, page, () => list.table.count(sql, query.where), (row) => toSortValue(row[column]));
}
