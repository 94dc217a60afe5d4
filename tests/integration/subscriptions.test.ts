import { createHash, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'graphql';
import { createClient, type ClientOptions } from 'graphql-ws';
import Redis from 'ioredis';
import pg from 'pg';
import WebSocket from 'ws';
import type { DomainEvent, EventTypeName } from '../../src/events/domain-event';
import { parseGlobalId } from '../../src/graphql/global-id';
import { priceOperation } from '../../src/graphql/hardening';
import { buildSchema } from '../../src/graphql/schema';
import { quoteIdentifier } from '../../src/tenancy/tenant-naming';
import { createLogger } from '../../src/observability/logger';
import { RedisEventBus, tenantChannel, type EventBus } from '../../src/subscriptions/event-bus';
import { eventually, sleep } from '../support/raw-graphql';
import { readTestServices } from '../support/services';
import { closeFrameOf, connectSubscriptions, errorCodesOf, wsUrlOf, type SubscriptionConnection } from '../support/subscription-client';
import { startTestServer, type TenantFixture, type TestServer } from '../support/test-server';

/*
 * GraphQL subscriptions over a real WebSocket (the graphql-ws client) against the real server,
 * whose events come through the real Redis: the test publishes with a bus of its own on the same
 * Redis (test -> Redis -> server -> socket), as the events worker will. What must hold: a
 * subscriber gets its own tenant's trip events with the trip read afresh; nothing of another
 * tenant reaches it; an event published through one instance reaches a subscriber on another;
 * credentials, documents and limits are checked as over HTTP; a connection whose credentials no
 * longer hold is closed.
 */

const TRIP_UPDATED = 'subscription SubsTripUpdated($id: ID!) { tripUpdated(id: $id) { id reference origin destination status version } }';
const TRIPS_CHANGED = 'subscription SubsTripsChanged($filter: TripsChangedFilter) { tripsChanged(filter: $filter) { eventId type occurredAt trip { id reference destination } } }';
const CREATE_TRIP = 'mutation SubsCreateTrip($input: CreateTripInput!) { createTrip(input: $input) { trip { id reference } } }';
const UPDATE_TRIP = 'mutation SubsUpdateTrip($id: ID!, $input: UpdateTripInput!) { updateTrip(id: $id, input: $input) { trip { id version } } }';

let app: TestServer;
let redis: Redis;
let publisher: EventBus;
let A: TenantFixture & { trip: Trip };
let B: TenantFixture & { trip: Trip };
const open: SubscriptionConnection[] = [];

interface Trip {
  id: string;
  reference: string;
  rowId: string;
}

async function createTrip(tenant: TenantFixture, reference: string): Promise<Trip> {
  const created = await tenant.owner.request<{ createTrip: { trip: { id: string; reference: string } } }>(CREATE_TRIP, {
    input: { reference, origin: 'Lyon', destination: 'Paris' },
  });
  const { id } = created.createTrip.trip;
  return { id, reference: created.createTrip.trip.reference, rowId: parseGlobalId(id)?.id as string };
}

function tripEvent(tenantId: string, tripRowId: string, type: EventTypeName = 'TRIP_TRANSITIONED'): DomainEvent {
  return {
    id: randomUUID(),
    tenantId,
    type,
    occurredAt: new Date(),
    subject: { type: 'Trip', id: tripRowId },
    actor: { kind: 'USER', id: null },
    data: { from: 'DRAFT', to: 'PLANNED' },
  };
}

function connect(params: Record<string, unknown>, server: TestServer = app): SubscriptionConnection {
  const connection = connectSubscriptions(server.url, params);
  open.push(connection);
  return connection;
}

const asOwner = (tenant: TenantFixture) => ({ authorization: `Bearer ${tenant.ownerToken}` });

/**
 * Once `atLeast` subscriptions of the tenant listen on `server` (their Redis subscription
 * acknowledged), and Redis counts a subscriber on the tenant's channel.
 */
async function subscribed(server: TestServer, tenantId: string, atLeast = 1): Promise<void> {
  await eventually(async () => (server.server.services.eventBus.listenerCount(tenantId) >= atLeast ? true : undefined), 5_000, 20);
  const channel = tenantChannel(server.server.installationId, tenantId);
  const [, count] = (await redis.pubsub('NUMSUB', channel)) as [string, number];
  expect(Number(count)).toBeGreaterThanOrEqual(1);
}

/**
 * Once the delivery worker has dispatched (and so published) every event the tenants' changes
 * wrote: the real events of the fixtures' changes do not then arrive in the middle of a test.
 */
async function settled(...tenants: TenantFixture[]): Promise<void> {
  const pool = new pg.Pool({ connectionString: app.databaseUrl, max: 1 });
  try {
    await eventually(async () => {
      for (const tenant of tenants) {
        const { rows } = await pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${quoteIdentifier(tenant.schemaName)}."DomainEvent" WHERE "dispatchedAt" IS NULL`);
        if ((rows[0]?.n ?? 0) > 0) return undefined;
      }
      return true;
    }, 20_000, 50);
  } finally {
    await pool.end();
  }
}

beforeAll(async () => {
  const { redisUrl } = readTestServices();
  app = await startTestServer({
    env: { REDIS_URL: redisUrl, SUBSCRIPTIONS_PER_CONNECTION: '3', WS_CONNECTION_INIT_TIMEOUT_MS: '500' },
  });
  redis = new Redis(redisUrl);
  publisher = new RedisEventBus(redis, app.server.installationId, createLogger('silent'));
  const [a, b] = await Promise.all([app.createTenant(), app.createTenant()]);
  A = { ...a, trip: await createTrip(a, 'A-1') };
  B = { ...b, trip: await createTrip(b, 'B-1') };
  await settled(A, B);
});

afterEach(async () => {
  await Promise.all(open.splice(0).map((connection) => connection.dispose()));
  // The server sees the sockets close a moment later: the next test's counts start from nothing.
  await eventually(async () => (app.server.subscriptions.connectionCount() === 0 && app.server.services.eventBus.listenerCount() === 0 ? true : undefined), 5_000, 20);
});

afterAll(async () => {
  await publisher?.close();
  redis?.disconnect();
  await app?.close();
});

describe('events through Redis', () => {
  it("tripUpdated: a subscriber gets its trip's event with the trip read when it is delivered (fields current)", async () => {
    const connection = connect(asOwner(A));
    const subscription = connection.subscribe({ query: TRIP_UPDATED, variables: { id: A.trip.id } });
    await subscribed(app, A.id);
    // Changed after subscribing and before the event: what is sent is read afresh, not carried by the event.
    await A.owner.request(UPDATE_TRIP, { id: A.trip.id, input: { destination: 'Marseille' } });
    await publisher.publish(tripEvent(A.id, A.trip.rowId));
    const result = await subscription.nth(1);
    expect(result.errors).toBeUndefined();
    expect(result.data).toEqual({
      tripUpdated: { id: A.trip.id, reference: A.trip.reference, origin: 'Lyon', destination: 'Marseille', status: 'DRAFT', version: 2 },
    });
    // Another trip's event of the same tenant is not this subscription's.
    await publisher.publish(tripEvent(A.id, randomUUID()));
    await publisher.publish(tripEvent(A.id, A.trip.rowId, 'TRIP_LATE'));
    await subscription.nth(2);
    expect(subscription.results).toHaveLength(2);
  });

  it('tripsChanged: filtered by event type and current status; stop and note events count for their trip', async () => {
    const connection = connect(asOwner(A));
    const all = connection.subscribe({ query: TRIPS_CHANGED });
    const lateOnly = connection.subscribe({ query: TRIPS_CHANGED, variables: { filter: { types: ['TRIP_LATE'] } } });
    const delivered = connection.subscribe({ query: TRIPS_CHANGED, variables: { filter: { status: ['DELIVERED'] } } });
    await subscribed(app, A.id, 3);
    const created = tripEvent(A.id, A.trip.rowId, 'TRIP_CREATED');
    await publisher.publish(created);
    await publisher.publish({ ...tripEvent(A.id, randomUUID(), 'STOP_ARRIVED'), subject: { type: 'Stop', id: randomUUID() }, data: { tripId: A.trip.rowId } });
    await publisher.publish(tripEvent(A.id, A.trip.rowId, 'TRIP_LATE'));
    await all.nth(3);
    expect(all.results.map((result) => (result.data as { tripsChanged: { type: string } }).tripsChanged.type)).toEqual(['TRIP_CREATED', 'STOP_ARRIVED', 'TRIP_LATE']);
    expect(all.results[0]?.data).toEqual({
      tripsChanged: { eventId: created.id, type: 'TRIP_CREATED', occurredAt: created.occurredAt.toISOString(), trip: { id: A.trip.id, reference: A.trip.reference, destination: expect.any(String) } },
    });
    const late = await lateOnly.nth(1);
    expect((late.data as { tripsChanged: { type: string } }).tripsChanged.type).toBe('TRIP_LATE');
    expect(lateOnly.results).toHaveLength(1);
    // A DRAFT trip is not DELIVERED: nothing for that filter.
    expect(delivered.results).toEqual([]);
  });

  it("tenant A's subscriber receives nothing of B: B's events, and events naming B's trip under A's id (read through A's own tenant)", async () => {
    const connection = connect(asOwner(A));
    const changes = connection.subscribe({ query: TRIPS_CHANGED });
    await subscribed(app, A.id);
    await publisher.publish(tripEvent(B.id, B.trip.rowId));
    await publisher.publish(tripEvent(B.id, B.trip.rowId, 'TRIP_CREATED'));
    // An event that claims A's tenant but names B's trip: A's tenant holds no such trip, so nothing is sent.
    await publisher.publish(tripEvent(A.id, B.trip.rowId));
    // Then one of A's own, which must be the first and only thing A sees.
    const own = tripEvent(A.id, A.trip.rowId);
    await publisher.publish(own);
    const first = await changes.nth(1);
    expect((first.data as { tripsChanged: { eventId: string } }).tripsChanged.eventId).toBe(own.id);
    await sleep(200);
    expect(changes.results).toHaveLength(1);
    expect(JSON.stringify(changes.results)).not.toContain(B.trip.reference);
  });

  it("A's tripUpdated of B's trip is NOT_FOUND, and B's events on it never reach A", async () => {
    const connection = connect(asOwner(A));
    const attack = connection.subscribe({ query: TRIP_UPDATED, variables: { id: B.trip.id } });
    await attack.ended();
    expect(attack.results.flatMap((result) => result.errors ?? []).map((error) => error.extensions?.code)).toEqual(['NOT_FOUND']);
    expect(attack.results.every((result) => result.data === null || result.data === undefined)).toBe(true);
    await publisher.publish(tripEvent(B.id, B.trip.rowId));
    await sleep(200);
    expect(attack.results).toHaveLength(1);
    expect(app.server.services.eventBus.listenerCount(B.id)).toBe(0);
  });

  it('an event published through one instance reaches a subscriber on another (same Redis, same platform)', async () => {
    const second = await startTestServer({ databaseUrl: app.databaseUrl, env: { REDIS_URL: readTestServices().redisUrl } });
    try {
      const connection = connect(asOwner(A), second);
      const subscription = connection.subscribe({ query: TRIP_UPDATED, variables: { id: A.trip.id } });
      await subscribed(second, A.id);
      await app.server.services.eventBus.publish(tripEvent(A.id, A.trip.rowId));
      expect((await subscription.nth(1)).data).toMatchObject({ tripUpdated: { id: A.trip.id } });
    } finally {
      await Promise.all(open.splice(0).map((connection) => connection.dispose()));
      await second.close();
    }
  });

  it('end to end: a trip created over HTTP reaches a tripsChanged subscriber (outbox -> delivery worker -> bus -> socket)', async () => {
    const connection = connect(asOwner(A));
    const created = connection.subscribe({ query: TRIPS_CHANGED, variables: { filter: { types: ['TRIP_CREATED'] } } });
    await subscribed(app, A.id);
    const trip = await createTrip(A, `A-E2E-${Date.now()}`);
    const result = await created.nth(1, 20_000);
    expect(result.data).toMatchObject({ tripsChanged: { type: 'TRIP_CREATED', trip: { id: trip.id, reference: trip.reference } } });
    await settled(A);
  });

  it('a finished subscription stops listening: the tenant channel is unsubscribed once its last listener leaves', async () => {
    const connection = connect(asOwner(A));
    const subscription = connection.subscribe({ query: TRIPS_CHANGED });
    await subscribed(app, A.id);
    subscription.unsubscribe();
    await eventually(async () => (app.server.services.eventBus.listenerCount(A.id) === 0 ? true : undefined), 5_000, 20);
    const channel = tenantChannel(app.server.installationId, A.id);
    await eventually(async () => {
      const [, count] = (await redis.pubsub('NUMSUB', channel)) as [string, number];
      return Number(count) === 0 ? true : undefined;
    }, 5_000, 20);
  });
});

describe('connection_init: the same credentials as HTTP', () => {
  it('no credentials, a made-up token, a bad API key: 4401; a platform admin: 4403; nothing acknowledged', async () => {
    expect(await closeFrameOf(app.url, {})).toEqual({ code: 4401, reason: 'Unauthorized', acknowledged: false });
    expect(await closeFrameOf(app.url, { authorization: 'Bearer not-a-token' })).toEqual({ code: 4401, reason: 'Unauthorized', acknowledged: false });
    expect(await closeFrameOf(app.url, { 'x-api-key': 'fgk_00000000_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' })).toMatchObject({ code: 4401, acknowledged: false });
    expect(await closeFrameOf(app.url, { authorization: 42 })).toMatchObject({ code: 4401, acknowledged: false });
    expect(await closeFrameOf(app.url, { authorization: `Bearer ${await app.adminToken()}` })).toEqual({ code: 4403, reason: 'Forbidden', acknowledged: false });
    // X-Tenant naming another tenant than the token's, as over HTTP.
    expect(await closeFrameOf(app.url, { ...asOwner(A), 'x-tenant': B.slug })).toEqual({ code: 4403, reason: 'Forbidden', acknowledged: false });
    expect(await closeFrameOf(app.url, { ...asOwner(A), 'X-Tenant': A.slug }, 1_000).catch(() => 'still open')).toBe('still open');
  });

  it('a message over MAX_BODY_BYTES closes the socket (1009), one that is not of the protocol too (4400); the server serves on', async () => {
    const closeAfter = (message: string) =>
      new Promise<{ code: number; reason: string }>((resolve) => {
        const socket = new WebSocket(wsUrlOf(app.url), 'graphql-transport-ws');
        socket.on('error', () => undefined);
        socket.on('open', () => socket.send(message));
        socket.on('close', (code, reason) => resolve({ code, reason: String(reason) }));
      });
    expect((await closeAfter(JSON.stringify({ type: 'connection_init', payload: { pad: 'x'.repeat(300_000) } }))).code).toBe(1009);
    expect(await closeAfter('{"type":"no-such-message"}')).toEqual({ code: 4400, reason: 'Invalid message received' });
    const connection = connect(asOwner(A));
    connection.subscribe({ query: TRIPS_CHANGED });
    await subscribed(app, A.id);
  });

  it('a socket that never sends connection_init is closed after WS_CONNECTION_INIT_TIMEOUT_MS (4408)', async () => {
    expect(await closeFrameOf(app.url, null)).toMatchObject({ code: 4408, acknowledged: false });
  });

  it('a persisted-only API key runs registered subscription documents only', async () => {
    const body = `subscription SubsRegistered($id: ID!) { tripUpdated(id: $id) { id status } }`;
    const sha256 = createHash('sha256').update(body).digest('hex');
    await A.owner.request('mutation($operations: [PersistedOperationInput!]!) { registerPersistedOperations(operations: $operations) { operations { id } } }', {
      operations: [{ body }],
    });
    const key = await A.owner.request<{ createApiKey: { secret: string } }>(
      'mutation { createApiKey(input: { name: "subs partner", role: VIEWER, persistedOnly: true }) { secret } }',
    );
    const connection = connect({ 'x-api-key': key.createApiKey.secret });
    const withText = connection.subscribe({ query: TRIP_UPDATED, variables: { id: A.trip.id } });
    const unregistered = connection.subscribe({ query: '', variables: { id: A.trip.id }, extensions: { persistedQuery: { version: 1, sha256Hash: 'f'.repeat(64) } } });
    await withText.ended();
    await unregistered.ended();
    expect(errorCodesOf(withText.error)).toEqual(['PERSISTED_QUERY_REQUIRED']);
    expect(errorCodesOf(unregistered.error)).toEqual(['PERSISTED_QUERY_NOT_REGISTERED']);
    const registered = connection.subscribe({ query: '', variables: { id: A.trip.id }, extensions: { persistedQuery: { version: 1, sha256Hash: sha256 } } });
    await subscribed(app, A.id);
    await publisher.publish(tripEvent(A.id, A.trip.rowId));
    expect((await registered.nth(1)).data).toEqual({ tripUpdated: { id: A.trip.id, status: 'DRAFT' } });
  });
});

describe('the document checks of the request path', () => {
  it('too deep, too costly, invalid, not a subscription, or over the limit per connection: refused with a code', async () => {
    const connection = connect(asOwner(A));
    const nest = (depth: number): string => (depth === 0 ? 'id' : `vehicle { driver { ${nest(depth - 1)} } }`);
    // One after the other: a subscription counts against the connection's limit while it is checked.
    const refusedOf = async (query: string) => {
      const refused = connection.subscribe({ query });
      await refused.ended();
      return refused;
    };
    const deep = await refusedOf(`subscription { tripUpdated(id: "${A.trip.id}") { ${nest(7)} } }`);
    const costly = await refusedOf('subscription { tripsChanged { trip { vehicle { trips(first: 50) { vehicle { trips(first: 50) { vehicle { trips(first: 50) { id } } } } } } } } }');
    const invalid = await refusedOf('subscription { tripsChanged { nope } }');
    const query = await refusedOf('{ me { id } }');
    expect(errorCodesOf(deep.error)).toEqual(['QUERY_TOO_DEEP']);
    expect(errorCodesOf(costly.error)).toEqual(['QUERY_TOO_COMPLEX']);
    expect(errorCodesOf(invalid.error)).toEqual(['GRAPHQL_VALIDATION_FAILED']);
    expect(errorCodesOf(query.error)).toEqual(['BAD_REQUEST']);
    // SUBSCRIPTIONS_PER_CONNECTION=3: the fourth at once is refused, the first three run.
    const running = [1, 2, 3].map(() => connection.subscribe({ query: TRIPS_CHANGED }));
    await eventually(async () => (app.server.services.eventBus.listenerCount(A.id) >= 3 ? true : undefined), 5_000, 20);
    const fourth = connection.subscribe({ query: TRIPS_CHANGED });
    await fourth.ended();
    expect(errorCodesOf(fourth.error)).toEqual(['TOO_MANY_SUBSCRIPTIONS']);
    expect(running.every((subscription) => subscription.error === undefined && !subscription.completed)).toBe(true);
  });

  it("a subscription is charged its cost to the tenant's and caller's rate-limit budgets: RATE_LIMITED once they are spent", async () => {
    const limited = await startTestServer({ databaseUrl: app.databaseUrl, env: { REDIS_URL: readTestServices().redisUrl, RATE_LIMIT_ENABLED: 'true' } });
    const costly = 'subscription { tripsChanged { trip { vehicle { trips(first: 50) { id } } } } }';
    const cost = priceOperation(buildSchema(), { document: parse(costly), variables: {} }, 10_000);
    const admin = await limited.admin();
    // Room for two such subscriptions, not three (and nothing refills meanwhile).
    await admin.request('mutation($id: ID!, $limit: TenantRateLimitInput) { setTenantRateLimit(id: $id, limit: $limit) { tenant { id } } }', {
      id: B.id,
      limit: { tenant: { capacity: Math.floor(2.5 * cost), refillPerSecond: 0.001 }, perCaller: { capacity: Math.floor(2.5 * cost), refillPerSecond: 0.001 } },
    });
    // Connected once the override is in place: the connection's principal carries its tenant's limits.
    const connection = connectSubscriptions(limited.url, asOwner(B));
    try {
      const outcomes: string[] = [];
      let listening = 0;
      for (let attempt = 0; attempt < 3; attempt += 1) {
        const subscription = connection.subscribe({ query: costly });
        await eventually(async () => (subscription.error !== undefined || limited.server.services.eventBus.listenerCount(B.id) === listening + 1 ? true : undefined), 5_000, 20);
        if (subscription.error === undefined) listening += 1;
        outcomes.push(subscription.error === undefined ? 'listening' : errorCodesOf(subscription.error).join());
      }
      expect(outcomes).toEqual(['listening', 'listening', 'RATE_LIMITED']);
    } finally {
      await connection.dispose();
      await admin.request('mutation($id: ID!) { setTenantRateLimit(id: $id, limit: null) { tenant { id } } }', { id: B.id });
      await limited.close();
    }
  });

  it('over HTTP a subscription is refused, pointing at the WebSocket', async () => {
    const response = await fetch(app.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...asOwner(A) },
      body: JSON.stringify({ query: TRIPS_CHANGED }),
    });
    const body = (await response.json()) as { errors: { extensions: { code: string } }[] };
    expect(body.errors.map((error) => error.extensions.code)).toEqual(['BAD_REQUEST']);
  });
});

describe('closed when the credentials no longer hold', () => {
  const ADD_MEMBER = 'mutation($input: AddMemberInput!) { addMember(input: $input) { member { id } } }';

  async function member(tenant: TenantFixture, role = 'VIEWER'): Promise<{ id: string; token: string }> {
    const email = `subs-${randomUUID().slice(0, 8)}@${tenant.slug}.test`;
    const added = await tenant.owner.request<{ addMember: { member: { id: string } } }>(ADD_MEMBER, { input: { email, name: 'Subscriber', password: 'subscriber-password', role } });
    return { id: added.addMember.member.id, token: await app.login(tenant.slug, email, 'subscriber-password') };
  }

  async function listening(token: string): Promise<SubscriptionConnection> {
    const connection = connect({ authorization: `Bearer ${token}` });
    connection.subscribe({ query: TRIPS_CHANGED });
    await eventually(async () => (app.server.subscriptions.connectionCount() > 0 && app.server.services.eventBus.listenerCount(A.id) > 0 ? true : undefined), 5_000, 20);
    return connection;
  }

  it('logout: 4403 "session revoked"', async () => {
    const viewer = await member(A);
    const connection = await listening(viewer.token);
    await app.bearer(viewer.token).request('mutation { logout { success } }');
    expect(await connection.closed).toEqual({ code: 4403, reason: 'session revoked' });
  });

  it('the member removed: 4403 "membership removed"', async () => {
    const viewer = await member(A);
    const connection = await listening(viewer.token);
    await A.owner.request('mutation($id: ID!) { removeMember(userId: $id) { removedUserId } }', { id: viewer.id });
    const closed = await connection.closed;
    expect(closed.code).toBe(4403);
    expect(['membership removed', 'session revoked']).toContain(closed.reason);
  });

  it('the API key revoked: 4403 "API key revoked"', async () => {
    const created = await A.owner.request<{ createApiKey: { secret: string; apiKey: { id: string } } }>(
      'mutation { createApiKey(input: { name: "subs revoked", role: VIEWER }) { secret apiKey { id } } }',
    );
    const connection = connect({ authorization: `Bearer ${created.createApiKey.secret}` });
    connection.subscribe({ query: TRIPS_CHANGED });
    await eventually(async () => (app.server.services.eventBus.listenerCount(A.id) > 0 ? true : undefined), 5_000, 20);
    await A.owner.request('mutation($id: ID!) { revokeApiKey(id: $id) { apiKey { id } } }', { id: created.createApiKey.apiKey.id });
    expect(await connection.closed).toEqual({ code: 4403, reason: 'API key revoked' });
  });

  it('the tenant suspended: 4403 "tenant suspended"; its members cannot connect until it is reactivated', async () => {
    const tenant = await app.createTenant();
    const connection = connect(asOwner(tenant));
    connection.subscribe({ query: TRIPS_CHANGED });
    await eventually(async () => (app.server.services.eventBus.listenerCount(tenant.id) > 0 ? true : undefined), 5_000, 20);
    const admin = await app.admin();
    await admin.request('mutation($id: ID!) { suspendTenant(id: $id) { tenant { status } } }', { id: tenant.id });
    expect(await connection.closed).toEqual({ code: 4403, reason: 'tenant suspended' });
    expect(await closeFrameOf(app.url, asOwner(tenant))).toEqual({ code: 4403, reason: 'Forbidden', acknowledged: false });
    await admin.request('mutation($id: ID!) { reactivateTenant(id: $id) { tenant { status } } }', { id: tenant.id });
  });
});

describe('the periodic check', () => {
  it('closes a connection whose access token expired (4403 "access token expired") within WS_RECHECK_INTERVAL_MS', async () => {
    const short = await startTestServer({ databaseUrl: app.databaseUrl, env: { ACCESS_TOKEN_TTL_SECONDS: '2', WS_RECHECK_INTERVAL_MS: '300' } });
    try {
      const token = await short.login(A.slug, A.ownerEmail, A.ownerPassword);
      const connection = connectSubscriptions(short.url, { authorization: `Bearer ${token}` });
      const subscription = connection.subscribe({ query: TRIPS_CHANGED });
      await eventually(async () => (short.server.services.eventBus.listenerCount(A.id) === 1 ? true : undefined), 5_000, 20);
      const openedAt = Date.now();
      expect(await connection.closed).toEqual({ code: 4403, reason: 'access token expired' });
      // Not before the token's two seconds (less the second JWT times are rounded to).
      expect(Date.now() - openedAt).toBeGreaterThan(500);
      expect(subscription.results).toEqual([]);
    } finally {
      await short.close();
    }
  });
});

describe('per-user messages (publishToUser), for fields such as in-app notifications', () => {
  it("reach the listener of that user in that tenant only, through Redis", async () => {
    const userId = randomUUID();
    const queue = await app.server.services.eventBus.listen(A.id, (message) => message.kind === 'user' && message.userId === userId);
    try {
      await publisher.publishToUser(B.id, userId, { text: 'for B' });
      await publisher.publishToUser(A.id, randomUUID(), { text: 'for someone else' });
      await publisher.publishToUser(A.id, userId, { text: 'for them', at: '2026-12-04T00:00:00.000Z' });
      const first = await queue.next();
      expect(first.value).toEqual({ kind: 'user', userId, payload: { text: 'for them', at: '2026-12-04T00:00:00.000Z' } });
    } finally {
      await queue.return();
    }
  });
});

describe('connections per tenant', () => {
  it('past WS_CONNECTIONS_PER_TENANT on an instance, a connection is closed with 1013 (try again later); other tenants still connect', async () => {
    const limited = await startTestServer({ databaseUrl: app.databaseUrl, env: { WS_CONNECTIONS_PER_TENANT: '2' } });
    try {
      const first = connectSubscriptions(limited.url, asOwner(A));
      const second = connectSubscriptions(limited.url, asOwner(A));
      first.subscribe({ query: TRIPS_CHANGED });
      second.subscribe({ query: TRIPS_CHANGED });
      await eventually(async () => (limited.server.subscriptions.connectionCount(A.id) === 2 ? true : undefined), 5_000, 20);
      const refused = await closeFrameOf(limited.url, asOwner(A));
      expect(refused).toMatchObject({ code: 1013, acknowledged: false });
      expect(refused.reason).toMatch(/too many connections/i);
      expect(await closeFrameOf(limited.url, asOwner(B), 1_000).catch(() => 'still open')).toBe('still open');
      await first.dispose();
      await eventually(async () => (limited.server.subscriptions.connectionCount(A.id) === 1 ? true : undefined), 5_000, 20);
      expect(await closeFrameOf(limited.url, asOwner(A), 1_000).catch(() => 'still open')).toBe('still open');
      await second.dispose();
    } finally {
      await limited.close();
    }
  });
});

describe('without Redis (one instance): the in-process bus', () => {
  it('a subscriber gets the event published through the server', async () => {
    const single = await startTestServer({ databaseUrl: app.databaseUrl });
    try {
      const connection = connectSubscriptions(single.url, asOwner(A));
      const subscription = connection.subscribe({ query: TRIP_UPDATED, variables: { id: A.trip.id } });
      await eventually(async () => (single.server.services.eventBus.listenerCount(A.id) === 1 ? true : undefined), 5_000, 20);
      await single.server.services.eventBus.publish(tripEvent(B.id, B.trip.rowId));
      await single.server.services.eventBus.publish(tripEvent(A.id, A.trip.rowId));
      expect((await subscription.nth(1)).data).toMatchObject({ tripUpdated: { id: A.trip.id } });
      expect(subscription.results).toHaveLength(1);
      await connection.dispose();
    } finally {
      await single.close();
    }
  });

  it('shutdown closes the sockets (1001) and close() does not wait for subscriptions to end', async () => {
    const single = await startTestServer({ databaseUrl: app.databaseUrl });
    const connection = connectSubscriptions(single.url, asOwner(A));
    connection.subscribe({ query: TRIPS_CHANGED });
    await eventually(async () => (single.server.services.eventBus.listenerCount(A.id) === 1 ? true : undefined), 5_000, 20);
    const startedAt = performance.now();
    await single.close();
    expect(performance.now() - startedAt).toBeLessThan(3_000);
    expect((await connection.closed).code).toBe(1001);
  });
});

describe('the README', () => {
  it('runs the frontend snippet of "Subscriptions" as written, against the server', async () => {
    const readme = readFileSync(path.join(__dirname, '../../README.md'), 'utf8');
    const snippet = /```ts\n([\s\S]*?)```/.exec(readme.slice(readme.indexOf('## Subscriptions')))?.[1];
    if (!snippet) throw new Error('no ts snippet in the README\'s Subscriptions section');
    expect(snippet).toContain("'wss://api.example.com/graphql'");
    // The snippet as it is, less its import (handed in) and with this server's address; it has no type annotations, so it runs as JavaScript.
    const body = `${snippet.replace(/^import .*\n/m, '').replace("'wss://api.example.com/graphql'", 'url')}\nreturn { client, unsubscribe };`;
    const AsyncFunction = Object.getPrototypeOf(async () => undefined).constructor as new (...args: string[]) => (...values: unknown[]) => Promise<{ client: { dispose(): Promise<void> }; unsubscribe: () => void }>;
    const rendered: unknown[] = [];
    const run = new AsyncFunction('createClient', 'url', 'currentAccessToken', 'tripId', 'render', body);
    const { client, unsubscribe } = await run(
      (options: ClientOptions) => createClient({ ...options, webSocketImpl: WebSocket }),
      wsUrlOf(app.url),
      async () => A.ownerToken,
      A.trip.id,
      (trip: unknown) => rendered.push(trip),
    );
    try {
      await subscribed(app, A.id);
      await publisher.publish(tripEvent(A.id, A.trip.rowId));
      await eventually(async () => (rendered.length > 0 ? true : undefined), 5_000, 20);
      expect(rendered[0]).toMatchObject({ id: A.trip.id, status: 'DRAFT' });
    } finally {
      unsubscribe();
      await client.dispose();
    }
  });
});
