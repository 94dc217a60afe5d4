import { Prisma } from '../generated/prisma/tenant/client';
import { keysetAfter, keysetOrderBy, type KeysetOrder } from '../database/list-sql';
import type { TenantSql } from './tenant-sql';

/*
 * The read statements of a tenant table, declared once per table from Prisma's generated field
 * list (the model's columns are never listed by hand): a page ordered by id with its to-one
 * relations joined in the same statement, rows by key, and a count. Filters are Prisma.sql
 * conditions over the table's alias `t`.
 */

const quote = (identifier: string) => `"${identifier.replaceAll('"', '""')}"`;

const whereClause = (conditions: Prisma.Sql[]) => (conditions.length > 0 ? Prisma.sql`WHERE ${Prisma.join(conditions, ' AND ')}` : Prisma.empty);

/**
 * A to-one relation a page can bring along in its own statement: a LEFT JOIN of `table` where
 * its `relatedKey` equals this row's `localKey` (Vehicle.driverId = Driver.id, or the other
 * way, Driver.id = Vehicle.driverId, which is unique).
 */
export interface ToOneJoin<Row, Related extends { id: string }> {
  table: TenantTable<Related>;
  localKey: keyof Row & string;
  relatedKey: keyof Related & string;
}

/** A page's order: one column (or `id`, creation order), ties broken by id in the same direction. */
export interface PageOrder {
  column: string;
  direction: 'ASC' | 'DESC';
  /** NULLs sort last ascending and first descending (PostgreSQL's default, so a (column, id) index serves both). */
  nullable: boolean;
}

export const ID_ORDER: PageOrder = { column: 'id', direction: 'ASC', nullable: false };

export interface PageQuery {
  /** Conditions over the alias `t`, joined with AND. */
  where: Prisma.Sql[];
  order?: PageOrder;
  /** The last row of the previous page: its id and its value in `order`'s column. */
  after?: { id: string; value: unknown } | undefined;
  limit: number;
}

/** A page order as the shared keyset SQL takes it: the column and the id of the alias `t`. */
function keysetOf(order: PageOrder): KeysetOrder {
  return {
    key: order.column === 'id' ? null : Prisma.raw(`t.${quote(order.column)}`),
    tieBreaker: Prisma.raw('t."id"'),
    direction: order.direction,
    nullable: order.nullable,
  };
}

export class TenantTable<Row extends { id: string }> {
  private readonly columnList: string;
  /** The columns unqualified, as a subquery's are selected. */
  private readonly plainColumnList: string;
  /** The columns as a joined table's are selected: `r.column AS "r.column"`, and those names. */
  private readonly joinedColumnList: string;
  private readonly joinedKeys: readonly string[];

  constructor(
    readonly name: string,
    readonly columns: readonly (keyof Row & string)[],
  ) {
    this.columnList = columns.map((column) => `t.${quote(column)}`).join(', ');
    this.plainColumnList = columns.map(quote).join(', ');
    this.joinedKeys = columns.map((column) => `r.${column}`);
    this.joinedColumnList = columns.map((column, index) => `r.${quote(column)} AS ${quote(this.joinedKeys[index] as string)}`).join(', ');
  }

  /** A page of rows in `query.order` (id order by default); with `join`, each row's related row too, in the same statement. */
  async page(sql: TenantSql, query: PageQuery): Promise<Row[]>;
  async page<Related extends { id: string }>(
    sql: TenantSql,
    query: PageQuery,
    join: ToOneJoin<Row, Related>,
  ): Promise<{ row: Row; related: Related | null }[]>;
  async page<Related extends { id: string }>(
    sql: TenantSql,
    query: PageQuery,
    join?: ToOneJoin<Row, Related>,
  ): Promise<Row[] | { row: Row; related: Related | null }[]> {
    if (!join) return sql.rows<Row>(this.pageStatement(query));
    const related = join.table;
    const rows = await sql.rows<Record<string, unknown>>(this.pageStatement(query, join));
    return rows.map((flat) => ({ row: this.pick(flat, this.columns), related: flat['r.id'] === null ? null : related.pick(flat, related.joinedKeys) }));
  }

  /** The statement `page` sends (public so that a test can EXPLAIN exactly it). */
  pageStatement<Related extends { id: string }>(query: PageQuery, join?: ToOneJoin<Row, Related>): Prisma.Sql {
    const order = keysetOf(query.order ?? ID_ORDER);
    const conditions = whereClause(query.after === undefined ? query.where : [...query.where, keysetAfter(order, query.after)]);
    if (!join) {
      return Prisma.sql`SELECT ${Prisma.raw(this.columnList)} FROM ${Prisma.raw(quote(this.name))} t ${conditions} ${keysetOrderBy(order)} LIMIT ${query.limit}`;
    }
    return Prisma.sql`SELECT ${Prisma.raw(this.columnList)}, ${Prisma.raw(join.table.joinedColumnList)}
        FROM ${Prisma.raw(quote(this.name))} t
        LEFT JOIN ${Prisma.raw(quote(join.table.name))} r ON r.${Prisma.raw(quote(join.relatedKey))} = t.${Prisma.raw(quote(join.localKey))}
        ${conditions} ${keysetOrderBy(order)} LIMIT ${query.limit}`;
  }

  /** Rows whose `column` is one of `keys` (a uuid column), in no particular order. */
  async whereIn(sql: TenantSql, column: keyof Row & string, keys: readonly string[]): Promise<Row[]> {
    return sql.rows<Row>(
      Prisma.sql`SELECT ${Prisma.raw(this.columnList)} FROM ${Prisma.raw(quote(this.name))} t WHERE t.${Prisma.raw(quote(column))} = ANY(${[...keys]}::uuid[])`,
    );
  }

  /**
   * For each of `keys`, the newest `limit` rows whose `column` (a uuid column) equals it, newest
   * first, in one statement: a window over the rows of all keys at once, so a page of parents
   * costs one statement whatever its size.
   */
  async newestPerKey(sql: TenantSql, column: keyof Row & string, keys: readonly string[], limit: number, where: Prisma.Sql[] = []): Promise<Row[]> {
    const conditions = whereClause([Prisma.sql`t.${Prisma.raw(quote(column))} = ANY(${[...keys]}::uuid[])`, ...where]);
    return sql.rows<Row>(
      Prisma.sql`SELECT ${Prisma.raw(this.plainColumnList)} FROM (
          SELECT ${Prisma.raw(this.columnList)}, row_number() OVER (PARTITION BY t.${Prisma.raw(quote(column))} ORDER BY t."id" DESC) AS position
            FROM ${Prisma.raw(quote(this.name))} t ${conditions}
        ) ranked WHERE ranked.position <= ${limit} ORDER BY ranked."id" DESC`,
    );
  }

  async count(sql: TenantSql, where: Prisma.Sql[]): Promise<number> {
    const [row] = await sql.rows<{ count: number }>(Prisma.sql`SELECT count(*)::int AS count FROM ${Prisma.raw(quote(this.name))} t ${whereClause(where)}`);
    return row?.count ?? 0;
  }

  /** This table's row out of a flat joined row, where its columns are named `keys` (same order). */
  private pick(flat: Record<string, unknown>, keys: readonly string[]): Row {
    const row: Record<string, unknown> = {};
    for (let index = 0; index < keys.length; index += 1) row[this.columns[index] as string] = flat[keys[index] as string];
    return row as Row;
  }
}
