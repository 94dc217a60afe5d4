import { quoteIdentifier } from '../../src/tenancy/tenant-naming';
import { graphql } from '../generated';
import { withRowLocked } from '../support/row-lock';
import { bearer, codesOf, eventually, postJson, sleep, type RawResponse } from '../support/raw-graphql';
import { readTestServices } from '../support/services';
import { startTestServer, type TenantFixture, type TestServer } from '../support/test-server';

/*
 * One tenant's heavy work queues behind its own, and the server sheds what matters least when it
 * cannot keep up, over real HTTP: a cap on each tenant's operations in flight, overload shedding
 * (signed-out requests and expensive operations first), and the backstops behind the cost limit
 * (a deadline on queries, a cap on the size of an answer).
 */

const CREATE_VEHICLE = graphql(`mutation FairShareCreateVehicle($input: CreateVehicleInput!) { createVehicle(input: $input) { vehicle { id } } }`);

async function vehicleOf(tenant: TenantFixture, plate: string): Promise<string> {
  const created = await tenant.owner.request(CREATE_VEHICLE, { input: { plate, make: 'Make', model: 'Model', year: 2024 } });
  return created.createVehicle.vehicle.id;
}

const rowId = (globalId: string) => Buffer.from(globalId, 'base64url').toString('utf8').split(':')[1];

/** Holds a vehicle's row, so an update of it stays in flight until the scene ends. */
function holdingVehicle<T>(server: TestServer, tenant: TenantFixture, vehicleId: string, scene: (lock: { untilSomeoneWaits(count?: number): Promise<void> }) => Promise<T>) {
  return withRowLocked(
    server.server.services.platform.pool,
    `SELECT 1 FROM ${quoteIdentifier(tenant.schemaName)}."Vehicle" WHERE id = $1 FOR UPDATE`,
    [rowId(vehicleId)],
    scene,
  );
}

const renameVehicle = (server: TestServer, tenant: TenantFixture, id: string, model: string) =>
  postJson(server.url, { query: 'mutation($id: ID!, $model: String) { updateVehicle(id: $id, input: { model: $model }) { vehicle { model } } }', variables: { id, model } }, bearer(tenant.ownerToken));

async function metric(server: TestServer, line: RegExp): Promise<number> {
  const text = await (await fetch(server.url.replace(/\/graphql$/, '/metrics'))).text();
  const match = text.split('\n').find((candidate) => line.test(candidate));
  return match ? Number(match.split(' ').at(-1)) : Number.NaN;
}

describe('each tenant has a cap on its operations in flight', () => {
  let server: TestServer;
  let a: TenantFixture;
  let b: TenantFixture;

  beforeAll(async () => {
    // One turn each, alone or not (what a tenant alone may take beyond its share is the next block's).
    server = await startTestServer({ env: { TENANT_MAX_IN_FLIGHT: '1', TENANT_MAX_IN_FLIGHT_ALONE: '1', TENANT_IN_FLIGHT_QUEUE: '1', TENANT_IN_FLIGHT_WAIT_MS: '10000' } });
    [a, b] = await Promise.all([server.createTenant(), server.createTenant()]);
  });

  afterAll(async () => {
    await server?.close();
  });

  it("a tenant's operations queue behind its own, past its queue they are refused 429, and another tenant is served meanwhile", async () => {
    const vehicleId = await vehicleOf(a, 'INFLIGHT-1');
    const outcome = await holdingVehicle(server, a, vehicleId, async (lock) => {
      const first = renameVehicle(server, a, vehicleId, 'first');
      await lock.untilSomeoneWaits();
      // A's one turn is taken (its update waits on the row): the next waits, the one after is refused.
      const second = postJson(server.url, { query: '{ vehicles(first: 1) { totalCount } }' }, bearer(a.ownerToken));
      await eventually(async () => ((await metric(server, /^fleet_tenant_operations\{state="waiting"\}/)) === 1 ? true : undefined), 5_000, 20);
      const third = await postJson(server.url, { query: '{ __typename }' }, bearer(a.ownerToken));
      // B is not behind A.
      const other = await postJson(server.url, { query: '{ vehicles(first: 1) { totalCount } }' }, bearer(b.ownerToken));
      return { first, second, third, other };
    });
    expect({ status: outcome.third.status, codes: codesOf(outcome.third) }).toEqual({ status: 429, codes: ['RATE_LIMITED'] });
    expect(outcome.third.body.errors?.[0]?.message).toMatch(/Too many operations of .* in flight/);
    expect(outcome.third.headers.get('retry-after')).toBe('1');
    expect(outcome.other.status).toBe(200);
    expect(outcome.other.body.errors).toBeUndefined();
    // Once the row is free, the queued operations finish, in order, and nothing is left waiting.
    const [first, second] = await Promise.all([outcome.first, outcome.second]);
    expect(first.body).toEqual({ data: { updateVehicle: { vehicle: { model: 'first' } } } });
    expect(second.body).toEqual({ data: { vehicles: { totalCount: 1 } } });
    expect(await metric(server, /^fleet_tenant_operations\{state="running"\}/)).toBe(0);
    expect(await metric(server, /^fleet_tenant_operations\{state="waiting"\}/)).toBe(0);
  });
  it('a client that leaves while waiting for its turn gives the turn back', async () => {
    const vehicleId = await vehicleOf(a, 'INFLIGHT-2');
    const leaving = new AbortController();
    const { first } = await holdingVehicle(server, a, vehicleId, async (lock) => {
      const first = renameVehicle(server, a, vehicleId, 'held');
      await lock.untilSomeoneWaits();
      const waiting = fetch(server.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...bearer(a.ownerToken) },
        body: JSON.stringify({ query: '{ __typename }' }),
        signal: leaving.signal,
      }).catch(() => 'left');
      await eventually(async () => ((await metric(server, /^fleet_tenant_operations\{state="waiting"\}/)) === 1 ? true : undefined), 5_000, 20);
      leaving.abort();
      expect(await waiting).toBe('left');
      return { first };
    });
    expect((await first).body).toEqual({ data: { updateVehicle: { vehicle: { model: 'held' } } } });
    // The turn the leaver was handed is free again: nothing runs, and A is served at once.
    await eventually(async () => ((await metric(server, /^fleet_tenant_operations\{state="running"\}/)) === 0 ? true : undefined), 5_000, 20);
    const after = await postJson(server.url, { query: '{ __typename }' }, bearer(a.ownerToken));
    expect(after.body).toEqual({ data: { __typename: 'Query' } });
  });
});

describe('a tenant alone on the instance may use the turns nobody else wants, and is back to its share once another tenant is active', () => {
  let server: TestServer;
  let a: TenantFixture;
  let b: TenantFixture;

  beforeAll(async () => {
    server = await startTestServer({
      env: { TENANT_MAX_IN_FLIGHT: '1', TENANT_MAX_IN_FLIGHT_ALONE: '2', TENANT_IN_FLIGHT_QUIET_MS: '10000', TENANT_IN_FLIGHT_QUEUE: '1', TENANT_IN_FLIGHT_WAIT_MS: '10000' },
    });
    [a, b] = await Promise.all([server.createTenant(), server.createTenant()]);
  });

  afterAll(async () => {
    await server?.close();
  });

  it('runs two of A alone, serves B at once, then holds A to one turn', async () => {
    const vehicleId = await vehicleOf(a, 'ALONE-1');
    const outcome = await holdingVehicle(server, a, vehicleId, async (lock) => {
      // A alone: both updates run (both wait on the row in the database, none for a turn).
      const held = [renameVehicle(server, a, vehicleId, 'one'), renameVehicle(server, a, vehicleId, 'two')];
      await lock.untilSomeoneWaits(2);
      const runningAlone = await metric(server, /^fleet_tenant_operations\{state="running"\}/);
      // B is served at once, with its own turn.
      const other = await postJson(server.url, { query: '{ vehicles(first: 1) { totalCount } }' }, bearer(b.ownerToken));
      // Now A is not alone: holding two, over its share of one, its next operation waits and the one after is refused.
      const waiting = postJson(server.url, { query: '{ __typename }' }, bearer(a.ownerToken));
      await eventually(async () => ((await metric(server, /^fleet_tenant_operations\{state="waiting"\}/)) === 1 ? true : undefined), 5_000, 20);
      const refused = await postJson(server.url, { query: '{ __typename }' }, bearer(a.ownerToken));
      return { held, runningAlone, other, waiting, refused };
    });
    expect(outcome.runningAlone).toBe(2);
    expect({ status: outcome.other.status, body: outcome.other.body }).toEqual({ status: 200, body: { data: { vehicles: { totalCount: 0 } } } });
    expect({ status: outcome.refused.status, codes: codesOf(outcome.refused) }).toEqual({ status: 429, codes: ['RATE_LIMITED'] });
    const answers = await Promise.all([...outcome.held, outcome.waiting]);
    expect(answers.map((answer) => answer.status)).toEqual([200, 200, 200]);
    expect(answers[2]?.body).toEqual({ data: { __typename: 'Query' } });
    expect(await metric(server, /^fleet_tenant_operations\{state="running"\}/)).toBe(0);
  });
});

describe('while overloaded, the server sheds signed-out requests and expensive operations first', () => {
  let server: TestServer;
  let tenant: TenantFixture;

  beforeAll(async () => {
    server = await startTestServer({
      env: {
        OVERLOAD_SHEDDING: 'true',
        // Above what jest's own work in this process stalls the loop for, below the stall below.
        OVERLOAD_EVENT_LOOP_DELAY_MS: '400',
        OVERLOAD_CHECK_INTERVAL_MS: '50',
        OVERLOAD_HOLD_MS: '2000',
        OVERLOAD_SHED_COST: '50',
      },
    });
    // Signing in is signed-out work: should jest have stalled the loop meanwhile, it waits out the hold.
    tenant = await eventually(() => server.createTenant().catch(() => undefined), 20_000, 250);
  }, 30_000);

  afterAll(async () => {
    await server?.close();
  });

  /** Blocks the event loop this server shares with the test, as a burst of work would. */
  function stall(ms: number): void {
    const until = performance.now() + ms;
    while (performance.now() < until) {
      // the server can run nothing meanwhile
    }
  }

  it('refuses them 503 OVERLOADED with Retry-After, serves cheap signed-in work, and recovers by itself', async () => {
    stall(1_200);
    await eventually(async () => ((await metric(server, /^fleet_overloaded /)) === 1 ? true : undefined), 2_000, 10);
    const signedOut = await postJson(server.url, { query: '{ __typename }' });
    // vehicles(first: 5) { totalCount } costs 55, over OVERLOAD_SHED_COST.
    const expensive = await postJson(server.url, { query: '{ vehicles(first: 5) { totalCount } }' }, bearer(tenant.ownerToken));
    const cheap = await postJson(server.url, { query: '{ me { id } }' }, bearer(tenant.ownerToken));
    for (const shed of [signedOut, expensive]) {
      expect({ status: shed.status, codes: codesOf(shed), retryAfter: shed.headers.get('retry-after') }).toEqual({
        status: 503,
        codes: ['OVERLOADED'],
        retryAfter: '1',
      });
    }
    expect(cheap.status).toBe(200);
    expect(cheap.body.errors).toBeUndefined();
    expect(await metric(server, /^fleet_shed_requests_total\{reason="signed-out"\}/)).toBeGreaterThanOrEqual(1);
    expect(await metric(server, /^fleet_shed_requests_total\{reason="expensive"\}/)).toBeGreaterThanOrEqual(1);
    expect(await metric(server, /^fleet_event_loop_delay_p99_seconds /)).toBeGreaterThanOrEqual(0);

    // Once the loop is calm for the hold time, everything is served again.
    const served: RawResponse = await eventually(async () => {
      const response = await postJson(server.url, { query: '{ __typename }' });
      return response.status === 200 ? response : undefined;
    }, 10_000, 100);
    expect(served.body).toEqual({ data: { __typename: 'Query' } });
  });
});

describe('backstops behind the cost limit', () => {
  let server: TestServer;
  let tenant: TenantFixture;

  beforeAll(async () => {
    server = await startTestServer({ env: { MAX_EXECUTION_MS: '300', MAX_RESPONSE_BYTES: '2000', TENANT_POOL_MAX: '1' } });
    tenant = await server.createTenant();
    for (let i = 0; i < 12; i += 1) await vehicleOf(tenant, `BIG-${String(i).padStart(2, '0')}`);
  });

  afterAll(async () => {
    await server?.close();
  });

  it('a query still resolving past MAX_EXECUTION_MS is stopped: one OPERATION_TIMEOUT, no data (503)', async () => {
    const [vehicleId] = [await vehicleOf(tenant, 'SLOW-1')];
    const { query } = await holdingVehicle(server, tenant, vehicleId!, async (lock) => {
      // The update takes the tenant's one connection and waits on the row; the query waits for the
      // connection. The tenant role's statement_timeout (MAX_EXECUTION_MS too) cancels a waiting
      // update after 300 ms, so a second update queues first: the query gets the connection only
      // after both, well past its deadline, however soon after the first it was sent.
      const update = renameVehicle(server, tenant, vehicleId!, 'held');
      await lock.untilSomeoneWaits();
      const second = renameVehicle(server, tenant, vehicleId!, 'held again');
      await sleep(50);
      const pending = postJson(server.url, { query: '{ vehicles(first: 3) { edges { node { id plate } } } }' }, bearer(tenant.ownerToken));
      await sleep(600);
      return { query: pending, update: Promise.allSettled([update, second]) };
    });
    const response = await query;
    expect({ status: response.status, codes: codesOf(response), data: response.body.data ?? null }).toEqual({ status: 503, codes: ['OPERATION_TIMEOUT'], data: null });
    expect(response.body.errors).toHaveLength(1);
    // Not "come back in a second": the same query would run as long again.
    expect(response.headers.get('retry-after')).toBeNull();
    // Without the wait, the same query runs.
    const again = await postJson(server.url, { query: '{ vehicles(first: 3) { edges { node { id plate } } } }' }, bearer(tenant.ownerToken));
    expect(again.status).toBe(200);
    expect(again.body.errors).toBeUndefined();
  });

  it('an answer over MAX_RESPONSE_BYTES is not sent: one RESPONSE_TOO_LARGE, no data; a smaller one is', async () => {
    const big = await postJson(server.url, { query: '{ vehicles(first: 50) { edges { node { id plate make model createdAt updatedAt } } } }' }, bearer(tenant.ownerToken));
    expect({ status: big.status, codes: codesOf(big), data: big.body.data ?? null }).toEqual({ status: 400, codes: ['RESPONSE_TOO_LARGE'], data: null });
    expect(big.body.errors?.[0]?.message).toMatch(/over the limit of 2000/);
    expect(big.text.length).toBeLessThan(1_000);
    const small = await postJson(server.url, { query: '{ vehicles(first: 50) { edges { node { plate } } } }' }, bearer(tenant.ownerToken));
    expect(small.status).toBe(200);
    expect((small.body.data as { vehicles: { edges: unknown[] } }).vehicles.edges.length).toBeGreaterThanOrEqual(12);
  });
});

describe('a refusal for want of budget is held before it is sent', () => {
  let server: TestServer;
  let tenant: TenantFixture;
  const HOLD_MS = 600;

  beforeAll(async () => {
    server = await startTestServer({ env: { REDIS_URL: readTestServices().redisUrl, RATE_LIMIT_ENABLED: 'true', RATE_LIMIT_REFUSAL_DELAY_MS: String(HOLD_MS) } });
    tenant = await server.createTenant();
    const admin = await server.admin();
    await admin.request(
      graphql(`mutation FairShareSetLimit($id: ID!, $limit: TenantRateLimitInput) { setTenantRateLimit(id: $id, limit: $limit) { tenant { id } } }`),
      { id: tenant.id, limit: { tenant: { capacity: 60, refillPerSecond: 0.001 }, perCaller: { capacity: 60, refillPerSecond: 0.001 } } },
    );
  });

  afterAll(async () => {
    await server?.close();
  });

  it('so a client asking again at once gets one answer per hold, not thousands a second; what fits is answered at once', async () => {
    // 55 of 60 points: then the same again (priced before, so its whole cost is asked at once) is
    // refused and spends nothing; five cheap ones spend the rest, and the next is refused too.
    const served = await postJson(server.url, { query: '{ vehicles(first: 5) { totalCount } }' }, bearer(tenant.ownerToken));
    expect(served.status).toBe(200);
    expect(served.ms).toBeLessThan(HOLD_MS);
    const pricedRefusal = await postJson(server.url, { query: '{ vehicles(first: 5) { totalCount } }' }, bearer(tenant.ownerToken));
    expect({ status: pricedRefusal.status, codes: codesOf(pricedRefusal) }).toEqual({ status: 429, codes: ['RATE_LIMITED'] });
    expect(pricedRefusal.ms).toBeGreaterThanOrEqual(HOLD_MS - 50);
    for (let i = 0; i < 5; i += 1) await postJson(server.url, { query: '{ __typename }' }, bearer(tenant.ownerToken));
    const guardRefusal = await postJson(server.url, { query: '{ __typename }' }, bearer(tenant.ownerToken));
    expect({ status: guardRefusal.status, codes: codesOf(guardRefusal) }).toEqual({ status: 429, codes: ['RATE_LIMITED'] });
    expect(guardRefusal.ms).toBeGreaterThanOrEqual(HOLD_MS - 50);
  });
});

describe('the database stops what the deadline cannot', () => {
  let server: TestServer;
  let tenant: TenantFixture;

  beforeAll(async () => {
    server = await startTestServer({ env: { MAX_EXECUTION_MS: '300' } });
    tenant = await server.createTenant();
  });

  afterAll(async () => {
    await server?.close();
  });

  it('a search longer than 100 characters is BAD_USER_INPUT: substring search costs the database in proportion to it', async () => {
    const response = await postJson(
      server.url,
      { query: 'query($s: String) { vehicles(first: 1, filter: { search: $s }) { totalCount } }', variables: { s: 'a'.repeat(101) } },
      bearer(tenant.ownerToken),
    );
    expect(codesOf(response)).toEqual(['BAD_USER_INPUT']);
    expect(response.body.errors?.[0]?.extensions?.field).toBe('filter.search');
  });

  it('a statement still running past MAX_EXECUTION_MS is cancelled by PostgreSQL: OPERATION_TIMEOUT, the change rolled back', async () => {
    const vehicleId = await vehicleOf(tenant, 'STMT-1');
    // The update waits on a row lock held longer than its statement may run.
    const response = await holdingVehicle(server, tenant, vehicleId, async (lock) => {
      const update = renameVehicle(server, tenant, vehicleId, 'never');
      await lock.untilSomeoneWaits();
      return update.then((answer) => ({ answer }));
    });
    expect({ status: response.answer.status, codes: codesOf(response.answer), data: response.answer.body.data ?? null }).toEqual({
      status: 503,
      codes: ['OPERATION_TIMEOUT'],
      data: null,
    });
    expect(response.answer.headers.get('retry-after')).toBeNull();
    const after = await postJson(server.url, { query: 'query($id: ID!) { vehicle(id: $id) { model } }', variables: { id: vehicleId } }, bearer(tenant.ownerToken));
    expect(after.body).toEqual({ data: { vehicle: { model: 'Model' } } });
  });
});
