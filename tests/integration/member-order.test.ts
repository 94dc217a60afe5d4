import pg from 'pg';
import { memberPageOf, MEMBER_ORDERS } from '../../src/auth/member-list';
import { graphql } from '../generated';
import type { MemberOrderField, OrderDirection, Role } from '../generated/graphql';
import { expectErrors, startTestServer, type TenantFixture, type TestServer } from '../support/test-server';

/*
 * A tenant's members in order: `members(orderBy:)` (deprecated, one list) and
 * `membersConnection`, each declared order in both directions, paged over HTTP against the
 * database's own ORDER BY as the oracle (ties broken by user id); cursors refused in another
 * order; the role and search filters; and, with 10,000 members in one tenant beside other
 * tenants' members, no order read by a sequential scan.
 */

let app: TestServer;
let tenant: TenantFixture;

const ADD = graphql(`mutation MemberOrderAdd($input: AddMemberInput!) { addMember(input: $input) { member { id } } }`);
const MEMBERS = graphql(`query MemberOrderList($orderBy: MemberOrder) { members(orderBy: $orderBy) { name email role } }`);
const PAGE = graphql(`query MemberOrderPage($first: Int, $after: String, $filter: MemberFilter, $orderBy: MemberOrder) {
  membersConnection(first: $first, after: $after, filter: $filter, orderBy: $orderBy) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage endCursor }
    edges { cursor node { id name email role joinedAt } }
  }
}`);

const FIELDS = Object.keys(MEMBER_ORDERS) as MemberOrderField[];
const DIRECTIONS: OrderDirection[] = ['ASC', 'DESC'];

/** The oracle's sort keys, written apart from the implementation's (rank from the role's name, not its CASE). */
const ORACLE_KEYS: Record<MemberOrderField, string> = {
  JOINED_AT: 'm."createdAt"',
  NAME: 'lower(u."name")',
  EMAIL: 'u."email"',
  ROLE: `array_position(ARRAY['VIEWER', 'MEMBER', 'MANAGER', 'ADMIN', 'OWNER'], m."role"::text)`,
};

/** `count` members of `tenantId` inserted with SQL (no password anyone knows); `select` gives each one's email, name, role and joining time from `i`. */
async function insertMembers(
  db: pg.Pool | pg.Client,
  tenantId: string,
  count: number,
  select: { email: string; name: string; role: string; joinedAt: string },
): Promise<void> {
  await db.query(
    `WITH people AS (
       SELECT gen_random_uuid() AS id, i, ${select.email} AS email, ${select.name} AS name, (${select.role})::platform."MemberRole" AS role, ${select.joinedAt} AS "joinedAt"
         FROM generate_series(1, $2::int) i
     ), users AS (
       INSERT INTO platform."User" (id, email, name, "passwordHash", "updatedAt") SELECT id, email, name, 'not-a-hash', now() FROM people
     )
     INSERT INTO platform."Membership" (id, "userId", "tenantId", role, "createdAt", "updatedAt")
       SELECT gen_random_uuid(), id, $1::uuid, role, "joinedAt", now() FROM people`,
    [tenantId, count],
  );
}

beforeAll(async () => {
  app = await startTestServer();
  tenant = await app.createTenant();
  for (const [name, role] of [
    ['carol', 'VIEWER'],
    ['Alice', 'ADMIN'],
    ['bob', 'MANAGER'],
  ] as const) {
    await tenant.owner.request(ADD, { input: { email: `${name.toLowerCase()}@${tenant.slug}.test`, name, password: 'member-password-1', role } });
  }
}, 60_000);

afterAll(async () => {
  await app?.close();
});

describe('members(orderBy:)', () => {
  it('lists oldest first by default, and by name, email and rank in either direction', async () => {
    const names = async (orderBy?: { field: 'JOINED_AT' | 'NAME' | 'EMAIL' | 'ROLE'; direction?: 'ASC' | 'DESC' }) =>
      (await tenant.owner.request(MEMBERS, { orderBy })).members.map((member) => member.name);
    expect(await names()).toEqual(['Owner', 'carol', 'Alice', 'bob']);
    expect(await names({ field: 'JOINED_AT', direction: 'DESC' })).toEqual(['bob', 'Alice', 'carol', 'Owner']);
    expect(await names({ field: 'NAME' })).toEqual(['Alice', 'bob', 'carol', 'Owner']);
    expect(await names({ field: 'NAME', direction: 'DESC' })).toEqual(['Owner', 'carol', 'bob', 'Alice']);
    expect(await names({ field: 'ROLE', direction: 'DESC' })).toEqual(['Owner', 'Alice', 'bob', 'carol']);
    const byEmail = (await tenant.owner.request(MEMBERS, { orderBy: { field: 'EMAIL' } })).members.map((member) => member.email);
    expect(byEmail).toEqual([...byEmail].sort());
  });
});

describe('membersConnection', () => {
  /** A tenant of 17 members with many ties: 4 joining times, names alike but for their case, every role. */
  let paged: TenantFixture;

  beforeAll(async () => {
    paged = await app.createTenant(undefined, 'ENTERPRISE');
    await insertMembers(app.server.services.platform.pool, paged.id, 16, {
      email: `'m' || (i * 7) % 16 || '@paged.test'`,
      name: `(ARRAY['bob', 'Bob', 'alice', 'Zoë', 'carol'])[1 + i % 5]`,
      role: `(ARRAY['VIEWER', 'MEMBER', 'MANAGER', 'ADMIN', 'OWNER'])[1 + i % 5]`,
      joinedAt: `timestamptz '2026-12-01T08:00:00Z' + (i % 4) * interval '1 hour'`,
    });
  }, 60_000);

  /** The ids the database lists in this order, with this filter's conditions: the oracle. */
  async function idsInDatabase(field: MemberOrderField, direction: OrderDirection, where = 'true', values: unknown[] = []): Promise<string[]> {
    const result = await app.server.services.platform.pool.query<{ id: string }>(
      `SELECT m."userId" AS id FROM platform."Membership" m JOIN platform."User" u ON u.id = m."userId"
        WHERE m."tenantId" = $1 AND ${where} ORDER BY ${ORACLE_KEYS[field]} ${direction}, m."userId" ${direction}`,
      [paged.id, ...values],
    );
    return result.rows.map((row) => row.id);
  }

  /** Every id of a listing, read in pages of 3 through its cursors; checks hasPreviousPage and totalCount on the way. */
  async function pageThrough(client: TenantFixture['owner'], variables: { orderBy?: { field: MemberOrderField; direction: OrderDirection }; filter?: object }): Promise<string[]> {
    const ids: string[] = [];
    let after: string | undefined;
    for (let guard = 0; guard < 50; guard += 1) {
      const page = (await client.request(PAGE, { ...variables, first: 3, after })).membersConnection;
      expect(page.pageInfo.hasPreviousPage).toBe(after !== undefined);
      ids.push(...page.edges.map((edge) => edge.node.id));
      if (!page.pageInfo.hasNextPage) {
        expect(page.totalCount).toBe(ids.length);
        return ids;
      }
      after = page.pageInfo.endCursor ?? undefined;
    }
    throw new Error('did not reach the last page');
  }

  const cases = FIELDS.flatMap((field) => DIRECTIONS.map((direction) => ({ field, direction })));

  it.each(cases)('by $field $direction in pages of 3, as PostgreSQL orders them (ties by user id)', async ({ field, direction }) => {
    const listed = await pageThrough(paged.owner, { orderBy: { field, direction } });
    expect(listed).toEqual(await idsInDatabase(field, direction));
    expect(new Set(listed).size).toBe(17);
  });

  it('defaults to JOINED_AT ASC, 20 a page, and lists what the deprecated `members` lists', async () => {
    const page = (await paged.owner.request(PAGE, {})).membersConnection;
    expect(page.edges.map((edge) => edge.node.id)).toEqual(await idsInDatabase('JOINED_AT', 'ASC'));
    expect(page.pageInfo.hasNextPage).toBe(false);
    for (const field of FIELDS) {
      const listed = (await paged.owner.request(MEMBERS, { orderBy: { field, direction: 'DESC' } })).members.map((member) => member.email);
      const connection = (await paged.owner.request(PAGE, { first: 100, orderBy: { field, direction: 'DESC' } })).membersConnection;
      expect(connection.edges.map((edge) => edge.node.email)).toEqual(listed);
    }
  });

  it('filters by several roles and by a part of the name or email, in any order and through pages', async () => {
    const roles: Role[] = ['OWNER', 'VIEWER'];
    for (const field of FIELDS) {
      const listed = await pageThrough(paged.owner, { orderBy: { field, direction: 'DESC' }, filter: { roles } });
      expect(listed).toEqual(await idsInDatabase(field, 'DESC', `m."role"::text = ANY($2)`, [roles]));
      expect(listed.length).toBeGreaterThan(3);
    }
    // " B " finds bob and Bob by name; "M1" m1@, m10@ ... by email; both case-insensitive, the search trimmed.
    const matching = (text: string) => `(u."name" ILIKE '%${text}%' OR u."email" ILIKE '%${text}%')`;
    const byName = await pageThrough(paged.owner, { orderBy: { field: 'NAME', direction: 'ASC' }, filter: { search: ' B ' } });
    expect(byName).toEqual(await idsInDatabase('NAME', 'ASC', matching('b')));
    expect(byName.length).toBeGreaterThan(3);
    const byEmail = await pageThrough(paged.owner, { orderBy: { field: 'EMAIL', direction: 'ASC' }, filter: { search: 'M1', roles: ['VIEWER', 'MEMBER'] } });
    expect(byEmail).toEqual(await idsInDatabase('EMAIL', 'ASC', `${matching('m1')} AND m."role"::text = ANY($2)`, [['VIEWER', 'MEMBER']]));
    expect(byEmail.length).toBeGreaterThan(0);
    // LIKE's wildcards are searched for literally; an empty list of roles is no filter.
    expect((await paged.owner.request(PAGE, { filter: { search: '%' } })).membersConnection.totalCount).toBe(0);
    expect((await paged.owner.request(PAGE, { filter: { roles: [], search: '   ' } })).membersConnection.totalCount).toBe(17);
  });

  it('refuses a cursor of another order, of another list and a forged one; and page sizes out of 1 to 100 (BAD_USER_INPUT)', async () => {
    const byName = (await paged.owner.request(PAGE, { first: 2, orderBy: { field: 'NAME', direction: 'DESC' } })).membersConnection;
    const byDefault = (await paged.owner.request(PAGE, { first: 2 })).membersConnection;
    const someId = byName.edges[0]!.node.id;
    const forged = (text: string) => Buffer.from(`cursor:${text}`).toString('base64url');
    for (const [after, orderBy] of [
      [byName.pageInfo.endCursor, { field: 'NAME', direction: 'ASC' }],
      [byName.pageInfo.endCursor, undefined],
      [byDefault.pageInfo.endCursor, { field: 'EMAIL' }],
      [forged(`NAME DESC|"bob"|${someId}`), { field: 'NAME', direction: 'DESC' }],
      [forged(someId), undefined],
      [forged(`member ROLE ASC|"OWNER"|${someId}`), { field: 'ROLE' }],
      [forged(`member ROLE ASC|9|${someId}`), { field: 'ROLE' }],
      [forged(`member JOINED_AT ASC|"yesterday"|${someId}`), undefined],
      [forged(`member JOINED_AT ASC|"2026"|${someId}`), undefined],
      [forged(`member NAME ASC|"b\\u0000b"|${someId}`), { field: 'NAME' }],
      [forged(`member NAME ASC|"bob"|not-a-uuid`), { field: 'NAME' }],
    ] as const) {
      const { errors } = await expectErrors(paged.owner.request(PAGE, { first: 2, after: after ?? undefined, orderBy: orderBy as never }));
      expect(errors.map((error) => [error.extensions.code, error.extensions.field])).toEqual([['BAD_USER_INPUT', 'after']]);
    }
    for (const first of [0, 101]) {
      const { errors } = await expectErrors(paged.owner.request(PAGE, { first }));
      expect(errors.map((error) => [error.extensions.code, error.extensions.field])).toEqual([['BAD_USER_INPUT', 'first']]);
    }
    const { errors } = await expectErrors(paged.owner.request(PAGE, { filter: { search: 'x'.repeat(101) } }));
    expect(errors.map((error) => [error.extensions.code, error.extensions.field])).toEqual([['BAD_USER_INPUT', 'filter.search']]);
    // The same order continues.
    const next = (await paged.owner.request(PAGE, { first: 2, after: byName.pageInfo.endCursor ?? undefined, orderBy: { field: 'NAME', direction: 'DESC' } })).membersConnection;
    expect(next.edges.map((edge) => edge.node.id)).toEqual((await idsInDatabase('NAME', 'DESC')).slice(2, 4));
  });
});

describe('on 10,000 members of one tenant, no order is read by a sequential scan or sorted whole', () => {
  let big: TenantFixture;
  let client: pg.Client;

  beforeAll(async () => {
    big = await app.createTenant(undefined, 'ENTERPRISE');
    const others = [await app.createTenant(), await app.createTenant()];
    client = new pg.Client({ connectionString: app.databaseUrl });
    await client.connect();
    await insertMembers(client, big.id, 10_000, {
      email: `'big-' || i || '@members.test'`,
      name: `(ARRAY['Ana', 'ben', 'Chloé', 'dan'])[1 + i % 4] || ' ' || (i * 7919) % 10000`,
      role: `(ARRAY['VIEWER', 'MEMBER', 'MANAGER', 'ADMIN'])[1 + i % 4]`,
      joinedAt: `now() - i * interval '1 minute'`,
    });
    for (const [index, other] of others.entries()) {
      await insertMembers(client, other.id, 2_500, {
        email: `'other-${index}-' || i || '@members.test'`,
        name: `'Other ' || i`,
        role: `'MEMBER'`,
        joinedAt: `now() - i * interval '1 minute'`,
      });
    }
    // Some of the big tenant's members belong to another tenant too.
    await client.query(
      `INSERT INTO platform."Membership" (id, "userId", "tenantId", role, "updatedAt")
       SELECT gen_random_uuid(), "userId", $2::uuid, 'VIEWER', now() FROM platform."Membership" WHERE "tenantId" = $1::uuid LIMIT 1000`,
      [big.id, others[0]!.id],
    );
    await client.query('ANALYZE platform."User"; ANALYZE platform."Membership"');
  }, 120_000);

  afterAll(async () => {
    await client?.end();
  });

  /** The plan's node types, depth first. */
  function nodeTypes(plan: { 'Node Type': string; Plans?: unknown[] }): string[] {
    return [plan['Node Type'], ...((plan.Plans ?? []) as (typeof plan)[]).flatMap(nodeTypes)];
  }

  async function planOf(tenantId: string, field: MemberOrderField, direction: OrderDirection, after?: string): Promise<string[]> {
    const { statement } = memberPageOf(tenantId, { first: 20, after, orderBy: { field, direction } });
    const result = await client.query<{ 'QUERY PLAN': [{ Plan: { 'Node Type': string } }] }>(`EXPLAIN (FORMAT JSON) ${statement.text}`, statement.values);
    return nodeTypes(result.rows[0]!['QUERY PLAN'][0].Plan);
  }

  /** The cursor of the row 5,000 rows in, as the API would hand it out. */
  async function middleCursor(tenantId: string, field: MemberOrderField, direction: OrderDirection): Promise<string> {
    const { statement } = memberPageOf(tenantId, { first: 20, orderBy: { field, direction } });
    // The same statement, 5,000 rows long (the limit is its last parameter).
    const rows = await client.query<{ id: string; sortKey: unknown }>(statement.text, [...statement.values.slice(0, -1), 5000]);
    const row = rows.rows.at(-1)!;
    const value = row.sortKey instanceof Date ? row.sortKey.toISOString() : row.sortKey;
    return Buffer.from(`cursor:member ${field} ${direction}|${JSON.stringify(value)}|${row.id}`).toString('base64url');
  }

  const cases = FIELDS.flatMap((field) => DIRECTIONS.map((direction) => ({ field, direction })));

  /*
   * Beyond no Seq Scan: the big tenant's pages come in index order, never sorted whole (a
   * dropped or mismatched index would leave the tenant's 10,000 rows read by tenantId and
   * sorted). EMAIL walks the unique email index; its Incremental Sort only orders ties of one
   * email, which there are none of.
   */
  it.each(cases)('by $field $direction: the first page and a page from the middle', async ({ field, direction }) => {
    const after = await middleCursor(big.id, field, direction);
    for (const [page, plan] of [
      ['first', await planOf(big.id, field, direction)],
      ['middle', await planOf(big.id, field, direction, after)],
      // A tenant of four members beside them: its few rows, sorted, also without scanning either table.
      ['small tenant', await planOf(tenant.id, field, direction)],
    ] as const) {
      const refused = plan.filter((node) => node === 'Seq Scan' || (node === 'Sort' && page !== 'small tenant'));
      expect({ page, plan, refused }).toEqual({ page, plan, refused: [] });
    }
  });

  it('pages over HTTP from the middle as the database orders them', async () => {
    const after = await middleCursor(big.id, 'NAME', 'DESC');
    const page = (await big.owner.request(PAGE, { first: 5, after, orderBy: { field: 'NAME', direction: 'DESC' } })).membersConnection;
    const expected = await client.query<{ id: string }>(
      `SELECT m."userId" AS id FROM platform."Membership" m JOIN platform."User" u ON u.id = m."userId"
        WHERE m."tenantId" = $1 ORDER BY lower(u.name) DESC, m."userId" DESC OFFSET 5000 LIMIT 5`,
      [big.id],
    );
    expect(page.edges.map((edge) => edge.node.id)).toEqual(expected.rows.map((row) => row.id));
    expect(page.totalCount).toBe(10_001);
  });
});
