import { randomUUID } from 'node:crypto';
import type { DomainEvent } from '../../src/events/domain-event';
import { parseGlobalId } from '../../src/graphql/global-id';
import { tenantChannel } from '../../src/subscriptions/event-bus';
import { eventually } from '../support/raw-graphql';
import { startRedisCluster, type RunningRedisCluster } from '../support/redis-cluster';
import { connectSubscriptions } from '../support/subscription-client';
import { startTestServer, type TenantFixture, type TestServer } from '../support/test-server';

/*
 * Subscriptions on a real Redis Cluster (three masters from redis-server): the bus uses sharded
 * pub/sub (SPUBLISH/SSUBSCRIBE), each tenant's channel on its hash tag's slot. An event published
 * through one instance reaches a subscriber on the other, for tenants whose channels live on
 * different masters.
 */

let cluster: RunningRedisCluster;
let first: TestServer;
let second: TestServer;
const tenants: (TenantFixture & { tripId: string })[] = [];

beforeAll(async () => {
  cluster = await startRedisCluster(3);
  first = await startTestServer({ env: { REDIS_CLUSTER_NODES: cluster.seeds } });
  second = await startTestServer({ databaseUrl: first.databaseUrl, env: { REDIS_CLUSTER_NODES: cluster.seeds } });
  // Two tenants whose channels are owned by different masters.
  const owners = new Set<number>();
  for (let attempt = 0; attempt < 10 && tenants.length < 2; attempt += 1) {
    const tenant = await first.createTenant();
    const owner = await cluster.ownerOf(await cluster.keySlot(tenantChannel(first.server.installationId, tenant.id)));
    if (owners.has(owner)) continue;
    owners.add(owner);
    const created = await tenant.owner.request<{ createTrip: { trip: { id: string } } }>(
      'mutation($input: CreateTripInput!) { createTrip(input: $input) { trip { id } } }',
      { input: { reference: `C-${tenants.length}`, origin: 'Lyon', destination: 'Paris' } },
    );
    tenants.push({ ...tenant, tripId: created.createTrip.trip.id });
  }
}, 120_000);

afterAll(async () => {
  await second?.close();
  await first?.close();
  await cluster?.stop();
});

it('an event published through one instance reaches the subscriber on the other, for tenants on different masters', async () => {
  expect(tenants).toHaveLength(2);
  for (const tenant of tenants) {
    const connection = connectSubscriptions(second.url, { authorization: `Bearer ${tenant.ownerToken}` });
    try {
      const subscription = connection.subscribe({ query: `subscription { tripUpdated(id: "${tenant.tripId}") { id } }` });
      await eventually(async () => (second.server.services.eventBus.listenerCount(tenant.id) === 1 ? true : undefined), 10_000, 20);
      const event: DomainEvent = {
        id: randomUUID(),
        tenantId: tenant.id,
        type: 'TRIP_CREATED',
        occurredAt: new Date(),
        subject: { type: 'Trip', id: parseGlobalId(tenant.tripId)?.id as string },
        actor: { kind: 'USER', id: null },
        data: {},
      };
      await first.server.services.eventBus.publish(event);
      expect((await subscription.nth(1, 10_000)).data).toEqual({ tripUpdated: { id: tenant.tripId } });
    } finally {
      await connection.dispose();
    }
  }
});
