import { Prisma } from '../generated/prisma/platform/client';

/*
 * The SQL every list shares, whatever its database side (tenant tables through TenantTable, the
 * platform's members). Keyset pagination: a page starts after the last row of the previous one,
 * found by comparing (sort key, tie-breaker) with that row's, which a btree index on
 * (key, tie-breaker), or (scope, key, tie-breaker), answers directly at any depth; and a text
 * search. Fragments are Prisma.sql: the tenant and platform clients share one runtime, hence one
 * Sql class.
 */

export interface KeysetOrder {
  /** The sort expression (a column or an indexed expression); null when the tie-breaker alone orders. */
  key: Prisma.Sql | null;
  /** A unique uuid expression that breaks ties, in the same direction. */
  tieBreaker: Prisma.Sql;
  direction: 'ASC' | 'DESC';
  /** NULLs sort last ascending and first descending (PostgreSQL's default, so one index serves both directions). */
  nullable: boolean;
}

/** The last row of the previous page: its tie-breaker (a uuid) and its sort key's value. */
export interface KeysetPosition {
  id: string;
  value: unknown;
}

/**
 * Rows after `after` in `order`: a row comparison the index answers directly, spelled out with
 * the NULLs where the key may hold them.
 */
export function keysetAfter(order: KeysetOrder, after: KeysetPosition): Prisma.Sql {
  const id = Prisma.sql`${after.id}::uuid`;
  const { key, tieBreaker } = order;
  const beyond = Prisma.raw(order.direction === 'ASC' ? '>' : '<');
  if (key === null) return Prisma.sql`${tieBreaker} ${beyond} ${id}`;
  if (!order.nullable) return Prisma.sql`(${key}, ${tieBreaker}) ${beyond} (${after.value}, ${id})`;
  if (after.value === null) {
    // Ascending, NULLs come last: only NULLs with a later id. Descending, first: those, then every value.
    return order.direction === 'ASC'
      ? Prisma.sql`(${key} IS NULL AND ${tieBreaker} > ${id})`
      : Prisma.sql`((${key} IS NULL AND ${tieBreaker} < ${id}) OR ${key} IS NOT NULL)`;
  }
  const past = Prisma.sql`(${key} ${beyond} ${after.value} OR (${key} = ${after.value} AND ${tieBreaker} ${beyond} ${id}))`;
  return order.direction === 'ASC' ? Prisma.sql`(${past} OR ${key} IS NULL)` : past;
}

export function keysetOrderBy(order: KeysetOrder): Prisma.Sql {
  const direction = Prisma.raw(order.direction);
  if (order.key === null) return Prisma.sql`ORDER BY ${order.tieBreaker} ${direction}`;
  return Prisma.sql`ORDER BY ${order.key} ${direction}, ${order.tieBreaker} ${direction}`;
}

/**
 * `column` contains `text` as a literal, case-insensitive substring: `%`, `_` and `\` in the text
 * are escaped with backslash, PostgreSQL's default LIKE escape character.
 */
export function containsText(column: Prisma.Sql, text: string): Prisma.Sql {
  return Prisma.sql`${column} ILIKE ${`%${text.replace(/[\\%_]/g, '\\$&')}%`}`;
}
