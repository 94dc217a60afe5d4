import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import pino from 'pino';
import type { DomainEvent, EventTypeName } from '../../src/events/domain-event';
import { parseGlobalId } from '../../src/graphql/global-id';
import { DeliveryError, type DeliveryContext } from '../../src/notifications/channel';
import { CredentialBox } from '../../src/outbound/credential-box';
import { OutboundClient } from '../../src/outbound/outbound-client';
import { SlackChannel } from '../../src/slack/slack-channel';
import type { TenantLease } from '../../src/tenancy/tenant-client-pool';
import { WebhookChannel } from '../../src/webhooks/webhook-channel';
import { graphql } from '../generated';
import { startTestServer, type TenantFixture, type TestServer } from '../support/test-server';

/*
 * The WEBHOOK and SLACK channels delivering to real HTTP receivers started here, for endpoints
 * registered over the real server's API (which allows private networks in this file, so that
 * the receivers on 127.0.0.1 can be registered). Signatures are checked with the very snippet
 * README.md gives partners.
 */

type Verify = (rawBody: string, headers: http.IncomingHttpHeaders, secret: string) => boolean;

/** The ```js block under "### Verifying webhook signatures" in README.md, as partners copy it. */
function readmeVerifier(): Verify {
  const readme = readFileSync(path.resolve(__dirname, '../../README.md'), 'utf8');
  const section = readme.split('### Verifying webhook signatures')[1];
  const code = section ? /```js\n([\s\S]*?)```/.exec(section)?.[1] : undefined;
  if (!code) throw new Error('README.md has no js snippet under "Verifying webhook signatures"');
  // Running the documented snippet exactly as written is the point.
  return new Function('require', `${code}\nreturn verifyFleetWebhook;`)(require) as Verify;
}

interface Received {
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

interface Receiver {
  url: string;
  received: Received[];
  /** How the next requests are answered (status, body). */
  answer: { status: number; body: string; hang?: boolean };
  close(): Promise<void>;
}

async function startReceiver(): Promise<Receiver> {
  const receiver: Receiver = { url: '', received: [], answer: { status: 200, body: 'ok' }, close: async () => undefined };
  const server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      receiver.received.push({ url: request.url ?? '', headers: request.headers, body: Buffer.concat(chunks).toString('utf8') });
      if (receiver.answer.hang) return;
      response.writeHead(receiver.answer.status, { 'content-type': 'text/plain' });
      response.end(receiver.answer.body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  receiver.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  receiver.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return receiver;
}

const CREATE = graphql(`mutation DeliveryCreateEndpoint($input: CreateWebhookEndpointInput!) { createWebhookEndpoint(input: $input) { secret webhookEndpoint { id } } }`);
const UPDATE = graphql(`mutation DeliveryUpdateEndpoint($id: ID!, $input: UpdateWebhookEndpointInput!) { updateWebhookEndpoint(id: $id, input: $input) { webhookEndpoint { enabled consecutiveFailures disabledReason } } }`);
const ROTATE = graphql(`mutation DeliveryRotate($id: ID!, $grace: Int) { rotateWebhookSecret(id: $id, gracePeriodSeconds: $grace) { secret webhookEndpoint { previousSecretExpiresAt } } }`);
const DELETE = graphql(`mutation DeliveryDelete($id: ID!) { deleteWebhookEndpoint(id: $id) { deletedId } }`);
const ENDPOINTS = graphql(`query DeliveryEndpoints { webhookEndpoints { id enabled consecutiveFailures disabledReason disabledAt lastSuccessAt lastFailureAt lastError } }`);

let app: TestServer;
let tenant: TenantFixture;
let lease: TenantLease;
let receiver: Receiver;
let verify: Verify;
let tripId: string;
const channelLog: string[] = [];
const logger = pino({ level: 'trace' }, { write: (line: string) => void channelLog.push(line) });

function context(): DeliveryContext {
  return {
    tenant: { id: tenant.id, slug: tenant.slug, name: `Tenant ${tenant.slug}` },
    tenantData: { db: lease.db, sql: lease.sql },
    attempt: 1,
    signal: new AbortController().signal,
  };
}

function event(type: EventTypeName = 'TRIP_TRANSITIONED'): DomainEvent {
  return {
    id: randomUUID(),
    tenantId: tenant.id,
    type,
    occurredAt: new Date('2026-12-04T10:00:00.000Z'),
    // As the delivery worker hands events to channels: with the subject's name.
    subject: { type: 'Trip', id: tripId, label: 'T-1001' },
    actor: { kind: 'USER', id: null },
    data: { from: 'PLANNED', to: 'DISPATCHED', reason: null },
  };
}

function webhookChannel(options: { now?: () => Date; disableAfterFailures?: number; outbound?: OutboundClient; box?: CredentialBox } = {}): WebhookChannel {
  return new WebhookChannel({
    outbound: options.outbound ?? app.server.integrations.outbound,
    box: options.box ?? app.server.integrations.box,
    disableAfterFailures: options.disableAfterFailures ?? 3,
    logger,
    ...(options.now ? { now: options.now } : {}),
  });
}

async function createEndpoint(eventTypes: EventTypeName[] = ['TRIP_TRANSITIONED'], urlPath = '/hook'): Promise<{ id: string; secret: string }> {
  const result = await tenant.owner.request(CREATE, { input: { url: `${receiver.url}${urlPath}`, eventTypes } });
  return { id: result.createWebhookEndpoint.webhookEndpoint.id, secret: result.createWebhookEndpoint.secret };
}

async function endpointState(id: string) {
  return (await tenant.owner.request(ENDPOINTS)).webhookEndpoints.find((endpoint) => endpoint.id === id);
}

async function deliveryError(delivery: Promise<void>): Promise<DeliveryError> {
  const error = await delivery.then(
    () => new Error('expected the delivery to fail'),
    (caught: unknown) => caught,
  );
  if (!(error instanceof DeliveryError)) throw error;
  return error;
}

const last = (): Received => receiver.received[receiver.received.length - 1] as Received;

beforeAll(async () => {
  verify = readmeVerifier();
  receiver = await startReceiver();
  app = await startTestServer({ env: { OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true' } });
  tenant = await app.createTenant();
  const record = await app.server.services.directory.findById(tenant.id);
  if (!record) throw new Error('tenant not found');
  lease = app.server.services.tenantClients.lease(record);
  const trip = await tenant.owner.request(
    graphql(`mutation DeliveryCreateTrip($input: CreateTripInput!) { createTrip(input: $input) { trip { id } } }`),
    { input: { reference: 'T-1001', origin: 'Depot', destination: 'Port' } },
  );
  tripId = parseGlobalId(trip.createTrip.trip.id)?.id as string;
});

afterAll(async () => {
  lease?.release();
  await app?.close();
  await receiver?.close();
});

beforeEach(() => {
  receiver.answer = { status: 200, body: 'ok' };
});

describe('targets', () => {
  it('are the enabled endpoints subscribed to the event type, whatever the recipients', async () => {
    const subscribed = await createEndpoint(['TRIP_TRANSITIONED', 'TRIP_LATE']);
    const other = await createEndpoint(['VEHICLE_CREATED']);
    const disabled = await createEndpoint(['TRIP_TRANSITIONED']);
    await tenant.owner.request(UPDATE, { id: disabled.id, input: { enabled: false } });
    const channel = webhookChannel();
    expect(await channel.targets(event('TRIP_TRANSITIONED'), ['some-user'], context())).toEqual([subscribed.id]);
    expect(await channel.targets(event('VEHICLE_CREATED'), [], context())).toEqual([other.id]);
    expect(await channel.targets(event('MEMBER_ADDED'), [], context())).toEqual([]);
    for (const { id } of [subscribed, other, disabled]) await tenant.owner.request(DELETE, { id });
  });
});

describe('a signed delivery, verified by the README snippet', () => {
  let endpoint: { id: string; secret: string };

  beforeAll(async () => {
    endpoint = await createEndpoint();
  });

  afterAll(async () => {
    await tenant.owner.request(DELETE, { id: endpoint.id });
  });

  it('POSTs the event as JSON with id, timestamp and signature headers; the snippet accepts it', async () => {
    const sent = event();
    const before = Math.floor(Date.now() / 1000);
    await webhookChannel().deliver(sent, endpoint.id, context());
    const delivery = last();
    expect(delivery.url).toBe('/hook');
    expect(JSON.parse(delivery.body)).toEqual({
      id: sent.id,
      type: 'TRIP_TRANSITIONED',
      occurredAt: '2026-12-04T10:00:00.000Z',
      tenant: { slug: tenant.slug },
      subject: { type: 'Trip', id: tripId, label: 'T-1001' },
      data: { from: 'PLANNED', to: 'DISPATCHED', reason: null },
    });
    expect(delivery.headers['fleet-webhook-id']).toBe(sent.id);
    expect(Number(delivery.headers['fleet-webhook-timestamp'])).toBeGreaterThanOrEqual(before);
    expect(delivery.headers['fleet-webhook-signature']).toMatch(/^v1=[0-9a-f]{64}$/);
    expect(delivery.headers['content-type']).toBe('application/json');
    expect(verify(delivery.body, delivery.headers, endpoint.secret)).toBe(true);
    expect(await endpointState(endpoint.id)).toMatchObject({ consecutiveFailures: 0, lastError: null });
    expect((await endpointState(endpoint.id))?.lastSuccessAt).not.toBeNull();
  });

  it('refuses a tampered body, a wrong secret, and a timestamp older than 5 minutes', async () => {
    await webhookChannel().deliver(event(), endpoint.id, context());
    const delivery = last();
    expect(verify(delivery.body.replace('DISPATCHED', 'DELIVERED'), delivery.headers, endpoint.secret)).toBe(false);
    expect(verify(`${delivery.body} `, delivery.headers, endpoint.secret)).toBe(false);
    expect(verify(delivery.body, delivery.headers, `${endpoint.secret}x`)).toBe(false);
    expect(verify(delivery.body, { ...delivery.headers, 'fleet-webhook-timestamp': String(Number(delivery.headers['fleet-webhook-timestamp']) - 1) }, endpoint.secret)).toBe(false);

    await webhookChannel({ now: () => new Date(Date.now() - 6 * 60 * 1000) }).deliver(event(), endpoint.id, context());
    expect(verify(last().body, last().headers, endpoint.secret)).toBe(false);
    // Control: four minutes old still passes, so the refusal above is the age.
    await webhookChannel({ now: () => new Date(Date.now() - 4 * 60 * 1000) }).deliver(event(), endpoint.id, context());
    expect(verify(last().body, last().headers, endpoint.secret)).toBe(true);
  });

  it('during a rotation’s grace period both secrets verify; after it, only the new one', async () => {
    const rotated = await tenant.owner.request(ROTATE, { id: endpoint.id, grace: 2 });
    const next = rotated.rotateWebhookSecret.secret;
    const expiresAt = Date.parse(rotated.rotateWebhookSecret.webhookEndpoint.previousSecretExpiresAt as string);
    await webhookChannel().deliver(event(), endpoint.id, context());
    expect(String(last().headers['fleet-webhook-signature']).split(' ')).toHaveLength(2);
    expect(verify(last().body, last().headers, endpoint.secret)).toBe(true);
    expect(verify(last().body, last().headers, next)).toBe(true);

    await new Promise((resolve) => setTimeout(resolve, Math.max(0, expiresAt - Date.now()) + 100));
    await webhookChannel().deliver(event(), endpoint.id, context());
    expect(String(last().headers['fleet-webhook-signature']).split(' ')).toHaveLength(1);
    expect(verify(last().body, last().headers, endpoint.secret)).toBe(false);
    expect(verify(last().body, last().headers, next)).toBe(true);
    endpoint.secret = next;
  });
});

describe('failures', () => {
  it('counts failures on the endpoint, resets them on success, and disables it at the threshold with a visible reason', async () => {
    const endpoint = await createEndpoint();
    const channel = webhookChannel({ disableAfterFailures: 3 });
    // A receiver that echoes a secret back and writes a long page: none of the secret, little of the page is kept.
    receiver.answer = { status: 500, body: `<html>\n<h1>Internal error</h1>\n${endpoint.secret}\n${'lorem ipsum '.repeat(500)}</html>` };
    const first = await deliveryError(channel.deliver(event(), endpoint.id, context()));
    expect(first.retryable).toBe(true);
    expect(first.message).toMatch(/^HTTP 500: <html> <h1>Internal error<\/h1> \[redacted\] lorem/);
    expect(first.message.length).toBeLessThan(160);
    expect(await endpointState(endpoint.id)).toMatchObject({ enabled: true, consecutiveFailures: 1, lastError: first.message });

    receiver.answer = { status: 204, body: '' };
    await channel.deliver(event(), endpoint.id, context());
    expect(await endpointState(endpoint.id)).toMatchObject({ enabled: true, consecutiveFailures: 0 });

    receiver.answer = { status: 500, body: 'down' };
    expect((await deliveryError(channel.deliver(event(), endpoint.id, context()))).retryable).toBe(true);
    expect((await deliveryError(channel.deliver(event(), endpoint.id, context()))).retryable).toBe(true);
    const third = await deliveryError(channel.deliver(event(), endpoint.id, context()));
    expect(third.retryable).toBe(false);
    expect(third.message).toContain('endpoint disabled after 3 consecutive failed deliveries');
    const disabled = await endpointState(endpoint.id);
    expect(disabled).toMatchObject({ enabled: false, consecutiveFailures: 3, disabledReason: 'disabled after 3 consecutive failed deliveries; last: HTTP 500' });
    expect(disabled?.disabledAt).not.toBeNull();
    expect(channelLog.some((line) => line.includes('webhook endpoint disabled'))).toBe(true);
    expect(channelLog.filter((line) => line.includes(endpoint.secret))).toEqual([]);

    // Disabled: no longer a target, and a pending delivery fails for good without a call.
    expect(await channel.targets(event(), [], context())).not.toContain(endpoint.id);
    const calls = receiver.received.length;
    const pending = await deliveryError(channel.deliver(event(), endpoint.id, context()));
    expect(pending.retryable).toBe(false);
    expect(pending.message).toContain('disabled');
    expect(receiver.received.length).toBe(calls);

    // Re-enabled by an admin: the count and the reason are cleared, deliveries go again.
    const enabled = await tenant.owner.request(UPDATE, { id: endpoint.id, input: { enabled: true } });
    expect(enabled.updateWebhookEndpoint.webhookEndpoint).toEqual({ enabled: true, consecutiveFailures: 0, disabledReason: null });
    receiver.answer = { status: 200, body: 'ok' };
    await channel.deliver(event(), endpoint.id, context());
    expect(receiver.received.length).toBe(calls + 1);
    await tenant.owner.request(DELETE, { id: endpoint.id });
  });

  it.each([
    [408, true],
    [429, true],
    [502, true],
    [400, false],
    [404, false],
    [410, false],
    [302, false],
  ])('HTTP %i: retryable %s', async (status, retryable) => {
    const endpoint = await createEndpoint();
    receiver.answer = { status, body: 'no' };
    const error = await deliveryError(webhookChannel({ disableAfterFailures: 100 }).deliver(event(), endpoint.id, context()));
    expect(error.retryable).toBe(retryable);
    expect(error.message).toMatch(new RegExp(`^HTTP ${status}`));
    await tenant.owner.request(DELETE, { id: endpoint.id });
  });

  it('a timeout and a refused connection are retryable', async () => {
    const endpoint = await createEndpoint();
    const impatient = new OutboundClient({ ...app.server.integrations.outbound.options, timeoutMs: 300 });
    receiver.answer = { status: 200, body: '', hang: true };
    const timedOut = await deliveryError(webhookChannel({ outbound: impatient }).deliver(event(), endpoint.id, context()));
    expect(timedOut).toMatchObject({ retryable: true });
    expect(timedOut.message).toMatch(/^timeout/);

    const closed = await startReceiver();
    await closed.close();
    await tenant.owner.request(UPDATE, { id: endpoint.id, input: { url: `${closed.url}/hook` } });
    const refused = await deliveryError(webhookChannel().deliver(event(), endpoint.id, context()));
    expect(refused.retryable).toBe(true);
    expect(refused.message).toMatch(/^connection failed/);
    expect((await endpointState(endpoint.id))?.consecutiveFailures).toBe(2);
    await tenant.owner.request(DELETE, { id: endpoint.id });
  });

  it('a secret sealed under another TENANT_DB_SECRET, or for another row, does not open: the failure shows on the endpoint, no call is made', async () => {
    const endpoint = await createEndpoint();
    const calls = receiver.received.length;
    const otherInstallation = new CredentialBox('another-installation-secret-0123456789abcdef');
    const error = await deliveryError(webhookChannel({ box: otherInstallation }).deliver(event(), endpoint.id, context()));
    expect(error.retryable).toBe(false);
    expect(error.message).toContain('signing secret unreadable');
    expect(await endpointState(endpoint.id)).toMatchObject({ consecutiveFailures: 1, lastError: expect.stringContaining('rotate the secret') });
    expect(receiver.received.length).toBe(calls);

    const { box } = app.server.integrations;
    const sealed = box.seal('whsec_example', `${tenant.id}:webhook:${endpoint.id}`);
    expect(box.open(sealed, `${tenant.id}:webhook:${endpoint.id}`)).toBe('whsec_example');
    expect(() => box.open(sealed, `${tenant.id}:webhook:${randomUUID()}`)).toThrow();
    expect(() => box.open(sealed, `${randomUUID()}:webhook:${endpoint.id}`)).toThrow();
    expect(() => otherInstallation.open(sealed, `${tenant.id}:webhook:${endpoint.id}`)).toThrow();
    await tenant.owner.request(DELETE, { id: endpoint.id });
  });

  it('a deleted endpoint’s pending delivery fails without retry and without a call', async () => {
    const endpoint = await createEndpoint();
    await tenant.owner.request(DELETE, { id: endpoint.id });
    const calls = receiver.received.length;
    const error = await deliveryError(webhookChannel().deliver(event(), endpoint.id, context()));
    expect(error).toMatchObject({ retryable: false, message: 'webhook endpoint deleted' });
    expect(receiver.received.length).toBe(calls);
  });
});

describe('Slack', () => {
  const SET_SLACK = graphql(`mutation DeliverySetSlack($url: String!) { setSlackWebhook(url: $url) { slackWebhook { configured host } } }`);
  const REMOVE_SLACK = graphql(`mutation DeliveryRemoveSlack { removeSlackWebhook { slackWebhook { configured } } }`);

  it('posts a one-line summary to the tenant’s incoming webhook; nothing once removed', async () => {
    const channel = new SlackChannel({ outbound: app.server.integrations.outbound, box: app.server.integrations.box });
    expect(await channel.targets(event(), [], context())).toEqual([]);
    await tenant.owner.request(SET_SLACK, { url: `${receiver.url}/services/T000/B000/slackpathsecret` });
    expect(await channel.targets(event(), [], context())).toEqual(['slack']);

    await channel.deliver(event(), 'slack', context());
    expect(last().url).toBe('/services/T000/B000/slackpathsecret');
    expect(JSON.parse(last().body)).toEqual({ text: 'Trip T-1001: PLANNED → DISPATCHED' });

    receiver.answer = { status: 500, body: 'slack is down for /services/T000/B000/slackpathsecret' };
    const failed = await deliveryError(channel.deliver(event(), 'slack', context()));
    expect(failed.retryable).toBe(true);
    expect(failed.message).not.toContain('slackpathsecret');
    receiver.answer = { status: 404, body: 'no_service' };
    expect((await deliveryError(channel.deliver(event(), 'slack', context()))).retryable).toBe(false);

    await tenant.owner.request(REMOVE_SLACK);
    expect(await channel.targets(event(), [], context())).toEqual([]);
    expect((await deliveryError(channel.deliver(event(), 'slack', context()))).retryable).toBe(false);
  });
});
