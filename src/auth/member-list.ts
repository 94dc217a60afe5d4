import { Prisma } from '../generated/prisma/platform/client';
import type { MemberFilter, MemberOrderField } from '../generated/graphql';
import { containsText, keysetAfter, keysetOrderBy, type KeysetOrder } from '../database/list-sql';
import { searchText } from '../fleet/fleet-input';
import { assertSortValue, pageRequest, type PageRequest, type SortKind } from '../graphql/pagination';
import { ROLE_RANK, type MemberRole } from './principal';

/*
 * A tenant's members as SQL over platform."Membership" m joined with platform."User" u, always
 * scoped by the tenant's id (the caller's, from the request's principal). Each order is an
 * indexed expression with its tie-breaker, the user id (the platform migration
 * member_list_orders adds the indexes): JOINED_AT and ROLE walk Membership's
 * (tenantId, key, userId) index; NAME and EMAIL walk User's (key, id) index and find each
 * user's membership in the tenant by its (userId, tenantId) key, or, for a tenant with few
 * members, read its memberships by tenantId and sort them.
 */

/**
 * Rank as SQL, the expression of the index Membership_tenantId_rank_userId_idx word for word
 * (constants, never parameters: PostgreSQL only uses the index for the very same expression).
 */
const RANK = Prisma.raw(
  `CASE m."role" ${Object.entries(ROLE_RANK)
    .sort(([, a], [, b]) => a - b)
    .map(([role, rank]) => `WHEN '${role}' THEN ${rank}`)
    .join(' ')} END`,
);

interface MemberOrderSql {
  key: Prisma.Sql;
  tieBreaker: Prisma.Sql;
  /** What the key holds: a cursor's value is checked against it before SQL compares it. */
  sort: SortKind;
}

/** Each order's key, tie-broken by the user id of the table whose index serves it (the join makes them equal). */
export const MEMBER_ORDERS: Record<MemberOrderField, MemberOrderSql> = {
  JOINED_AT: { key: Prisma.raw('m."createdAt"'), tieBreaker: Prisma.raw('m."userId"'), sort: { kind: 'timestamp' } },
  ROLE: { key: RANK, tieBreaker: Prisma.raw('m."userId"'), sort: { kind: 'enum', values: Object.values(ROLE_RANK) } },
  NAME: { key: Prisma.raw('lower(u."name")'), tieBreaker: Prisma.raw('u."id"'), sort: { kind: 'text' } },
  EMAIL: { key: Prisma.raw('u."email"'), tieBreaker: Prisma.raw('u."id"'), sort: { kind: 'text' } },
};

export interface MemberOrderArg {
  field: MemberOrderField;
  direction?: 'ASC' | 'DESC' | null;
}

export interface MemberListArgs {
  first?: number | null;
  after?: string | null;
  filter?: MemberFilter | null;
  orderBy?: MemberOrderArg | null;
}

/** A member as a page reads it: `id` (the user id) for the cursor, `sortKey` its value in the page's order. */
export interface MemberRow {
  id: string;
  userId: string;
  email: string;
  name: string;
  role: MemberRole;
  joinedAt: Date;
  sortKey: unknown;
}

function keysetOf(orderBy: MemberOrderArg | null | undefined): { name: string; order: KeysetOrder; sort: SortKind } {
  const field = orderBy?.field ?? 'JOINED_AT';
  const direction = orderBy?.direction ?? 'ASC';
  const declared = MEMBER_ORDERS[field];
  // Named apart from every other list's orders, so another list's cursor is refused here (drivers have a NAME order too).
  return { name: `member ${field} ${direction}`, order: { key: declared.key, tieBreaker: declared.tieBreaker, direction, nullable: false }, sort: declared.sort };
}

/** The filter as conditions; `readsUser` when they name the user's columns. */
function conditionsOf(tenantId: string, filter: MemberFilter | null | undefined): { where: Prisma.Sql[]; readsUser: boolean } {
  const where = [Prisma.sql`m."tenantId" = ${tenantId}::uuid`];
  const roles = filter?.roles ?? [];
  if (roles.length > 0) where.push(Prisma.sql`m."role" = ANY(${[...new Set(roles)]}::platform."MemberRole"[])`);
  const text = searchText(filter?.search);
  if (text) where.push(Prisma.sql`(${containsText(Prisma.raw('u."name"'), text)} OR ${containsText(Prisma.raw('u."email"'), text)})`);
  return { where, readsUser: text !== undefined };
}

function selectMembers(where: Prisma.Sql[], order: KeysetOrder, limit: number | null): Prisma.Sql {
  return Prisma.sql`SELECT m."userId" AS "id", m."userId", u."email", u."name", m."role"::text AS "role", m."createdAt" AS "joinedAt", ${order.key} AS "sortKey"
    FROM platform."Membership" m JOIN platform."User" u ON u."id" = m."userId"
    WHERE ${Prisma.join(where, ' AND ')} ${keysetOrderBy(order)}${limit === null ? Prisma.empty : Prisma.sql` LIMIT ${limit}`}`;
}

/**
 * One page of `tenantId`'s members (public so that a test can EXPLAIN exactly it): the page
 * request, the statement reading up to take+1 rows, and the statement counting the matches.
 */
export function memberPageOf(tenantId: string, args: MemberListArgs): { page: PageRequest; statement: Prisma.Sql; count: Prisma.Sql } {
  const { name, order, sort } = keysetOf(args.orderBy);
  const page = pageRequest(args.first, args.after, name);
  const { where, readsUser } = conditionsOf(tenantId, args.filter);
  const count = Prisma.sql`SELECT count(*)::int AS "count" FROM platform."Membership" m
    ${readsUser ? Prisma.sql`JOIN platform."User" u ON u."id" = m."userId"` : Prisma.empty} WHERE ${Prisma.join(where, ' AND ')}`;
  if (page.after) assertSortValue(sort, page.after, false);
  const statement = selectMembers(page.after ? [...where, keysetAfter(order, page.after)] : where, order, page.take + 1);
  return { page, statement, count };
}

/** Every member of `tenantId` in `orderBy` (the deprecated unpaged `members`). */
export function allMembersOf(tenantId: string, orderBy: MemberOrderArg | null | undefined): Prisma.Sql {
  return selectMembers(conditionsOf(tenantId, null).where, keysetOf(orderBy).order, null);
}
