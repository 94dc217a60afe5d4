import { Prisma } from '../generated/prisma/tenant/client';
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

export interface PageQuery {
  /** Conditions over the alias `t`, joined with AND. */
  where: Prisma.Sql[];
  /** Row id after which the page starts (ids are UUIDv7, so id order is creation order). */
  afterId: string | undefined;
  limit: number;
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

  /** A page of rows in id order; with `join`, each row's related row too, in the same statement. */
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
    const conditions = whereClause(query.afterId === undefined ? query.where : [...query.where, Prisma.sql`t."id" > ${query.afterId}::uuid`]);
    if (!join) {
      return sql.rows<Row>(
        Prisma.sql`SELECT ${Prisma.raw(this.columnList)} FROM ${Prisma.raw(quote(this.name))} t ${conditions} ORDER BY t."id" LIMIT ${query.limit}`,
      );
    }
    const related = join.table;
    const rows = await sql.rows<Record<string, unknown>>(
      Prisma.sql`SELECT ${Prisma.raw(this.columnList)}, ${Prisma.raw(related.joinedColumnList)}
        FROM ${Prisma.raw(quote(this.name))} t
        LEFT JOIN ${Prisma.raw(quote(related.name))} r ON r.${Prisma.raw(quote(join.relatedKey))} = t.${Prisma.raw(quote(join.localKey))}
        ${conditions} ORDER BY t."id" LIMIT ${query.limit}`,
    );
    return rows.map((flat) => ({ row: this.pick(flat, this.columns), related: flat['r.id'] === null ? null : related.pick(flat, related.joinedKeys) }));
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

/**
 * `column` contains `text` as a literal, case-insensitive substring: `%`, `_` and `\` in the text
 * are escaped with backslash, PostgreSQL's default LIKE escape character.
 */
export function containsText(column: Prisma.Sql, text: string): Prisma.Sql {
  return Prisma.sql`${column} ILIKE ${`%${text.replace(/[\\%_]/g, '\\$&')}%`}`;
}
