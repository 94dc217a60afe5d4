import { graphql } from '../generated';
import { startTestServer, type TenantFixture, type TestServer } from '../support/test-server';

/* `members(orderBy:)`: each declared order, both directions, ties by user id. */

let app: TestServer;
let tenant: TenantFixture;

const ADD = graphql(`mutation MemberOrderAdd($input: AddMemberInput!) { addMember(input: $input) { member { id } } }`);
const MEMBERS = graphql(`query MemberOrderList($orderBy: MemberOrder) { members(orderBy: $orderBy) { name email role } }`);

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
