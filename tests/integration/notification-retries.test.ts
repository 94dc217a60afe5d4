import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { graphql } from '../generated';
import { eventually } from '../support/raw-graphql';
import { startTestServer, type TenantFixture, type TestServer } from '../support/test-server';

/*
 * At least once, through the whole path: a trip transition commits its event, the delivery
 * worker sends it to a partner's real HTTP receiver, a failure is retried with backoff until the
 * receiver takes it (the same event id each time), a delivery that keeps failing is DEAD after
 * the last attempt with the reason on record, and redeliverNotifications sends it again.
 */

let app: TestServer;
let tenant: TenantFixture;
let receiver: Server;
let receiverUrl: string;
/** What the receiver answers, request after request (the last one repeats). */
let answers: number[] = [200];
const received: { eventId: string; type: string; status: number }[] = [];

const CREATE_ENDPOINT = graphql(`mutation RetryCreateEndpoint($input: CreateWebhookEndpointInput!) { createWebhookEndpoint(input: $input) { webhookEndpoint { id } secret } }`);
const CREATE_TRIP = graphql(`mutation RetryCreateTrip($input: CreateTripInput!) { createTrip(input: $input) { trip { id } } }`);
const DELIVERIES = graphql(`query RetryDeliveries($filter: NotificationDeliveryFilter) {
  notificationDeliveries(first: 50, filter: $filter) { edges { node { id eventId channel target status attempts lastError deliveredAt nextAttemptAt createdAt } } }
}`);
const REDELIVER = graphql(`mutation RetryRedeliver($ids: [ID!]!) { redeliverNotifications(ids: $ids) { deliveries { id status attempts } } }`);

async function readBody(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

beforeAll(async () => {
  receiver = createServer((request, response) => {
    void readBody(request).then((body) => {
      const status = answers.length > 1 ? (answers.shift() as number) : (answers[0] as number);
      const event = JSON.parse(body) as { id: string; type: string };
      received.push({ eventId: String(request.headers['fleet-webhook-id']), type: event.type, status });
      expect(event.id).toBe(request.headers['fleet-webhook-id']);
      response.writeHead(status).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks`;
  app = await startTestServer({
    env: {
      // The receiver is local: let outbound calls reach it (refused by default).
      OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true',
      NOTIFICATION_RETRY_BASE_MS: '300',
      NOTIFICATION_RETRY_MAX_MS: '600',
      NOTIFICATION_MAX_ATTEMPTS: '3',
      JOB_POLL_INTERVAL_SECONDS: '0.5',
    },
  });
  tenant = await app.createTenant(undefined, 'ENTERPRISE');
  await tenant.owner.request(CREATE_ENDPOINT, { input: { url: receiverUrl, eventTypes: ['TRIP_CREATED'], description: 'retries' } });
}, 60_000);

afterAll(async () => {
  await app?.close();
  await new Promise<void>((resolve) => receiver?.close(() => resolve()));
});

async function webhookDeliveryOf(tripReference: string) {
  const trip = (await tenant.owner.request(CREATE_TRIP, { input: { reference: tripReference, origin: 'A', destination: 'B' } })).createTrip.trip.id;
  return trip;
}

async function settled(filter: { status: 'DELIVERED' | 'DEAD' }, count: number) {
  return eventually(async () => {
    const read = await tenant.owner.request(DELIVERIES, { filter: { channel: 'WEBHOOK', ...filter } });
    const nodes = read.notificationDeliveries.edges.map((edge) => edge.node);
    return nodes.length >= count ? nodes : undefined;
  }, 20_000, 100);
}

it('a failed delivery is retried with the same event id until the receiver takes it', async () => {
  answers = [500, 503, 200];
  received.length = 0;
  await webhookDeliveryOf('RETRY-1');
  const [delivery] = await settled({ status: 'DELIVERED' }, 1);
  expect(delivery).toMatchObject({ status: 'DELIVERED', attempts: 3, lastError: null, nextAttemptAt: null });
  expect(received.map((entry) => entry.status)).toEqual([500, 503, 200]);
  expect(new Set(received.map((entry) => entry.eventId))).toEqual(new Set([delivery?.eventId]));
  expect(received.every((entry) => entry.type === 'TRIP_CREATED')).toBe(true);
});

it('is DEAD after the last attempt, with the reason; redeliverNotifications sends it again', async () => {
  answers = [500];
  received.length = 0;
  await webhookDeliveryOf('RETRY-2');
  const [dead] = await settled({ status: 'DEAD' }, 1);
  expect(dead).toMatchObject({ status: 'DEAD', attempts: 3, nextAttemptAt: null });
  expect(dead?.lastError).toMatch(/500/);
  // No fourth attempt comes.
  await new Promise((resolve) => setTimeout(resolve, 1_500));
  expect(received).toHaveLength(3);

  answers = [200];
  const requeued = await tenant.owner.request(REDELIVER, { ids: [dead?.id as string] });
  expect(requeued.redeliverNotifications.deliveries).toEqual([{ id: dead?.id, status: 'PENDING', attempts: 0 }]);
  // On record: who sent what again.
  const audit = await tenant.owner.request(graphql(`query RetryAudit { auditEvents(first: 5, filter: { action: "notificationDeliveries.redelivered" }) { edges { node { metadata } } } }`));
  expect(audit.auditEvents.edges.map((edge) => edge.node.metadata)).toEqual([{ count: 1, ids: [dead?.id] }]);
  const delivered = await eventually(async () => {
    const read = await tenant.owner.request(DELIVERIES, { filter: { eventId: dead?.eventId } });
    const node = read.notificationDeliveries.edges.map((edge) => edge.node).find((candidate) => candidate.id === dead?.id);
    return node?.status === 'DELIVERED' ? node : undefined;
  }, 20_000, 100);
  expect(delivered).toMatchObject({ attempts: 1, lastError: null });
  expect(received.map((entry) => entry.status)).toEqual([500, 500, 500, 200]);
});

it('two instances running workers send each delivery once', async () => {
  answers = [200];
  received.length = 0;
  const second = await startTestServer({ databaseUrl: app.databaseUrl, env: { OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true', JOB_POLL_INTERVAL_SECONDS: '0.5' } });
  try {
    // Half the changes through each instance: both hear every wake-up, both fetch jobs.
    const otherOwner = second.bearer(await second.login(tenant.slug, tenant.ownerEmail, tenant.ownerPassword));
    await Promise.all(
      Array.from({ length: 20 }, (_, index) =>
        (index % 2 === 0 ? tenant.owner : otherOwner).request(CREATE_TRIP, { input: { reference: `TWICE-${index}`, origin: 'A', destination: 'B' } }),
      ),
    );
    await eventually(async () => (received.length >= 20 ? true : undefined), 20_000, 100);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(received).toHaveLength(20);
    expect(new Set(received.map((entry) => entry.eventId)).size).toBe(20);
    // Newest first, by when they were written (their ids are random).
    const listed = (await tenant.owner.request(DELIVERIES, {})).notificationDeliveries.edges.map((edge) => Date.parse(String(edge.node.createdAt)));
    expect(listed).toEqual([...listed].sort((a, b) => b - a));
  } finally {
    await second.close();
  }
});
