import pino from 'pino';
import { print } from 'graphql';
import { quoteIdentifier } from '../../src/tenancy/tenant-naming';
import { bearer, postJson } from '../support/raw-graphql';
import { graphql } from '../generated';
import { errorCode, expectErrors, startTestServer, type TenantFixture, type TestServer } from '../support/test-server';

/*
 * Webhook endpoints and the Slack webhook over HTTP, with private networks NOT allowed (the
 * production setting): what registration refuses, that a secret is shown in the create and
 * rotate answers only (never in another answer, the database in clear, the audit log or the
 * server's logs), and the rules of update, rotation, deletion and the per-tenant cap.
 */

/** Public addresses (never called here: nothing is delivered in this file). */
const PARTNER = 'https://93.184.215.14/fleet-hooks?token=partner-query-token';
const SLACK_URL = 'https://93.184.215.15/services/T0001/B0002/slackpathsecret';

const CREATE = graphql(`mutation WebhooksCreate($input: CreateWebhookEndpointInput!) {
  createWebhookEndpoint(input: $input) { secret webhookEndpoint { id url description eventTypes enabled consecutiveFailures previousSecretExpiresAt } }
}`);
const LIST = graphql(`query WebhooksList { webhookEndpoints {
  id url description eventTypes enabled disabledReason disabledAt consecutiveFailures previousSecretExpiresAt lastSuccessAt lastFailureAt lastError createdAt updatedAt
} }`);
const UPDATE = graphql(`mutation WebhooksUpdate($id: ID!, $input: UpdateWebhookEndpointInput!) {
  updateWebhookEndpoint(id: $id, input: $input) { webhookEndpoint { id url description eventTypes enabled disabledReason disabledAt consecutiveFailures } }
}`);
const DELETE = graphql(`mutation WebhooksDelete($id: ID!) { deleteWebhookEndpoint(id: $id) { deletedId } }`);
const ROTATE = graphql(`mutation WebhooksRotate($id: ID!, $grace: Int) {
  rotateWebhookSecret(id: $id, gracePeriodSeconds: $grace) { secret webhookEndpoint { id previousSecretExpiresAt } }
}`);
const SET_SLACK = graphql(`mutation WebhooksSetSlack($url: String!) { setSlackWebhook(url: $url) { slackWebhook { configured host updatedAt } } }`);
const REMOVE_SLACK = graphql(`mutation WebhooksRemoveSlack { removeSlackWebhook { slackWebhook { configured host } } }`);
const SLACK = graphql(`query WebhooksSlack { slackWebhook { configured host updatedAt } }`);
const AUDIT = graphql(`query WebhooksAudit { auditEvents(first: 100) { edges { node { action targetType targetId metadata } } } }`);

let app: TestServer;
let tenant: TenantFixture;
const logLines: string[] = [];
/** Every answer a test read, to look for secrets in afterwards. */
const answers: string[] = [];

async function rowsOf(table: 'WebhookEndpoint' | 'SlackWebhook' | 'AuditEvent'): Promise<Record<string, unknown>[]> {
  const result = await app.server.services.platform.pool.query(`SELECT * FROM ${quoteIdentifier(tenant.schemaName)}."${table}"`);
  return result.rows as Record<string, unknown>[];
}

async function list() {
  const result = await tenant.owner.request(LIST);
  answers.push(JSON.stringify(result));
  return result.webhookEndpoints;
}

async function create(input: { url?: string; eventTypes?: ('TRIP_TRANSITIONED' | 'TRIP_LATE' | 'VEHICLE_CREATED')[]; description?: string } = {}) {
  const result = await tenant.owner.request(CREATE, { input: { url: PARTNER, eventTypes: ['TRIP_TRANSITIONED'], ...input } });
  return result.createWebhookEndpoint;
}

beforeAll(async () => {
  // Every line the server logs, at every level, without the production logger's redaction.
  const logger = pino({ level: 'trace' }, { write: (line: string) => void logLines.push(line) });
  app = await startTestServer({ logger });
  tenant = await app.createTenant();
});

afterAll(async () => {
  await app.close();
});

describe('registration refuses URLs that reach the server’s own network (OUTBOUND_ALLOW_PRIVATE_NETWORKS off)', () => {
  it.each([
    'http://127.0.0.1/hook',
    'http://localhost:8080/hook',
    'http://10.0.0.1/hook',
    'http://169.254.169.254/latest/meta-data/',
    'http://[::1]/hook',
    'http://[fc00::1]/hook',
    'http://[::ffff:192.168.0.1]/hook',
    'https://100.64.0.1/hook',
    'ftp://93.184.215.14/hook',
  ])('%s: URL_NOT_ALLOWED on field url, nothing stored', async (url) => {
    const { errors } = await expectErrors(tenant.owner.request(CREATE, { input: { url, eventTypes: ['TRIP_TRANSITIONED'] } }));
    expect(errors.map((error) => [error.extensions.code, error.extensions.field])).toEqual([['URL_NOT_ALLOWED', 'url']]);
    expect(await rowsOf('WebhookEndpoint')).toEqual([]);
  });

  it('setSlackWebhook refuses the same URLs; an update to such a URL is refused and changes nothing', async () => {
    for (const url of ['http://localhost/services/x', 'http://169.254.169.254/', 'http://[::1]/']) {
      expect(await errorCode(tenant.owner.request(SET_SLACK, { url }))).toBe('URL_NOT_ALLOWED');
    }
    expect(await rowsOf('SlackWebhook')).toEqual([]);
    const { webhookEndpoint } = await create();
    expect(await errorCode(tenant.owner.request(UPDATE, { id: webhookEndpoint.id, input: { url: 'http://10.1.2.3/' } }))).toBe('URL_NOT_ALLOWED');
    expect((await list()).map((endpoint) => endpoint.url)).toEqual([PARTNER]);
    await tenant.owner.request(DELETE, { id: webhookEndpoint.id });
  });
});

describe('an endpoint’s lifecycle', () => {
  let id: string;
  let secret: string;

  it('a description holding NUL is refused on the field, not a server error', async () => {
    const { errors } = await expectErrors(tenant.owner.request(CREATE, { input: { url: PARTNER, eventTypes: ['TRIP_LATE'], description: 'a\u0000b' } }));
    expect(errors.map((error) => [error.extensions.code, error.extensions.field])).toEqual([['BAD_USER_INPUT', 'description']]);
  });

  it('create: the secret is in the answer, once; the row holds it sealed; the audit entry names the host only', async () => {
    const created = await create({ eventTypes: ['TRIP_TRANSITIONED', 'TRIP_LATE', 'TRIP_LATE'], description: '  TMS  ' });
    id = created.webhookEndpoint.id;
    secret = created.secret;
    expect(secret).toMatch(/^whsec_[A-Za-z0-9_-]{43}$/);
    expect(created.webhookEndpoint).toEqual({
      id,
      url: PARTNER,
      description: 'TMS',
      eventTypes: ['TRIP_TRANSITIONED', 'TRIP_LATE'],
      enabled: true,
      consecutiveFailures: 0,
      previousSecretExpiresAt: null,
    });
    const [row] = await rowsOf('WebhookEndpoint');
    expect(JSON.stringify(row)).not.toContain(secret);
    expect(JSON.stringify(row)).not.toContain(secret.slice(6, 30));
    expect(String(row?.secretCiphertext)).toMatch(/^v1\./);

    const audit = (await tenant.owner.request(AUDIT)).auditEvents.edges.map((edge) => edge.node);
    expect(audit).toContainEqual({
      action: 'webhookEndpoint.created',
      targetType: 'WebhookEndpoint',
      targetId: id,
      metadata: { host: '93.184.215.14', eventTypes: ['TRIP_TRANSITIONED', 'TRIP_LATE'] },
    });
    expect(JSON.stringify(await rowsOf('AuditEvent'))).not.toContain('partner-query-token');
  });

  it('the list shows the endpoint, never a secret', async () => {
    const [listed] = await list();
    expect(listed).toMatchObject({ id, url: PARTNER, enabled: true, disabledReason: null, lastError: null });
  });

  it('update changes only the fields given; disabling and re-enabling clears the reason and the failure count', async () => {
    const updated = await tenant.owner.request(UPDATE, { id, input: { eventTypes: ['VEHICLE_CREATED'], description: null } });
    expect(updated.updateWebhookEndpoint.webhookEndpoint).toMatchObject({ url: PARTNER, eventTypes: ['VEHICLE_CREATED'], description: null, enabled: true });

    // As the delivery channel leaves it after too many failures.
    await app.server.services.platform.pool.query(
      `UPDATE ${quoteIdentifier(tenant.schemaName)}."WebhookEndpoint" SET "enabled" = false, "consecutiveFailures" = 15, "disabledAt" = now(),
       "disabledReason" = 'disabled after 15 consecutive failed deliveries; last: HTTP 500' WHERE "id" = $1`,
      [id],
    );
    expect((await list())[0]).toMatchObject({ enabled: false, consecutiveFailures: 15, disabledReason: 'disabled after 15 consecutive failed deliveries; last: HTTP 500' });
    const enabled = await tenant.owner.request(UPDATE, { id, input: { enabled: true } });
    expect(enabled.updateWebhookEndpoint.webhookEndpoint).toMatchObject({ enabled: true, consecutiveFailures: 0, disabledReason: null, disabledAt: null });

    const disabled = await tenant.owner.request(UPDATE, { id, input: { enabled: false } });
    expect(disabled.updateWebhookEndpoint.webhookEndpoint).toMatchObject({ enabled: false, disabledReason: null });
    expect(disabled.updateWebhookEndpoint.webhookEndpoint.disabledAt).not.toBeNull();
    await tenant.owner.request(UPDATE, { id, input: { enabled: true } });
  });

  it('refuses bad input: no event types, too long a description, an unknown id', async () => {
    expect(await errorCode(tenant.owner.request(UPDATE, { id, input: { eventTypes: [] } }))).toBe('BAD_USER_INPUT');
    expect(await errorCode(tenant.owner.request(UPDATE, { id, input: { description: 'x'.repeat(201) } }))).toBe('BAD_USER_INPUT');
    for (const unknown of ['not-a-uuid', '00000000-0000-4000-8000-000000000000']) {
      expect(await errorCode(tenant.owner.request(UPDATE, { id: unknown, input: { enabled: true } }))).toBe('NOT_FOUND');
      expect(await errorCode(tenant.owner.request(ROTATE, { id: unknown }))).toBe('NOT_FOUND');
      expect(await errorCode(tenant.owner.request(DELETE, { id: unknown }))).toBe('NOT_FOUND');
    }
  });

  it('rotate: a new secret, shown once; the old one keeps signing for the grace period (default a day, at most a week)', async () => {
    const before = Date.now();
    const rotated = await tenant.owner.request(ROTATE, { id });
    const { secret: next, webhookEndpoint } = rotated.rotateWebhookSecret;
    expect(next).toMatch(/^whsec_/);
    expect(next).not.toBe(secret);
    const expiresAt = Date.parse(webhookEndpoint.previousSecretExpiresAt as string);
    expect(expiresAt - before).toBeGreaterThanOrEqual(86_400_000 - 1_000);
    expect(expiresAt - before).toBeLessThan(86_400_000 + 60_000);
    const [row] = await rowsOf('WebhookEndpoint');
    expect(JSON.stringify(row)).not.toContain(next);
    expect(JSON.stringify(row)).not.toContain(secret);

    for (const grace of [-1, 7 * 24 * 3600 + 1]) {
      const { errors } = await expectErrors(tenant.owner.request(ROTATE, { id, grace }));
      expect(errors.map((error) => [error.extensions.code, error.extensions.field])).toEqual([['BAD_USER_INPUT', 'gracePeriodSeconds']]);
    }
    const immediate = await tenant.owner.request(ROTATE, { id, grace: 0 });
    expect(immediate.rotateWebhookSecret.webhookEndpoint.previousSecretExpiresAt).toBeNull();
    const audit = (await tenant.owner.request(AUDIT)).auditEvents.edges.map((edge) => edge.node).filter((entry) => entry.action === 'webhookEndpoint.secretRotated');
    expect(audit.map((entry) => entry.metadata)).toEqual([
      { host: '93.184.215.14', gracePeriodSeconds: 0 },
      { host: '93.184.215.14', gracePeriodSeconds: 86_400 },
    ]);
  });

  it('delete: gone from the list and the table; deleting again is NOT_FOUND', async () => {
    expect((await tenant.owner.request(DELETE, { id })).deleteWebhookEndpoint.deletedId).toBe(id);
    expect(await list()).toEqual([]);
    expect(await rowsOf('WebhookEndpoint')).toEqual([]);
    expect(await errorCode(tenant.owner.request(DELETE, { id }))).toBe('NOT_FOUND');
  });
});

describe('bounds', () => {
  it('a tenant holds at most 20 endpoints (QUOTA_EXCEEDED), and an endpoint at most 30 event types', async () => {
    const created: string[] = [];
    for (let index = 0; index < 20; index += 1) created.push((await create()).webhookEndpoint.id);
    expect(await errorCode(tenant.owner.request(CREATE, { input: { url: PARTNER, eventTypes: ['TRIP_LATE'] } }))).toBe('QUOTA_EXCEEDED');
    expect(await list()).toHaveLength(20);
    for (const id of created) await tenant.owner.request(DELETE, { id });
    const tooMany = Array.from({ length: 31 }, () => 'TRIP_LATE' as const);
    expect(await errorCode(tenant.owner.request(CREATE, { input: { url: PARTNER, eventTypes: tooMany } }))).toBe('BAD_USER_INPUT');
    expect(await list()).toEqual([]);
  });
});

describe('Slack', () => {
  it('set shows only whether one is set and its host; the URL is stored sealed; remove clears it', async () => {
    expect((await tenant.owner.request(SLACK)).slackWebhook).toEqual({ configured: false, host: null, updatedAt: null });
    const set = await tenant.owner.request(SET_SLACK, { url: SLACK_URL });
    answers.push(JSON.stringify(set));
    expect(set.setSlackWebhook.slackWebhook).toMatchObject({ configured: true, host: '93.184.215.15' });
    const read = await tenant.owner.request(SLACK);
    answers.push(JSON.stringify(read));
    expect(read.slackWebhook).toMatchObject({ configured: true, host: '93.184.215.15' });
    const [row] = await rowsOf('SlackWebhook');
    expect(JSON.stringify(row)).not.toContain('slackpathsecret');
    expect(JSON.stringify(await rowsOf('AuditEvent'))).not.toContain('slackpathsecret');

    const removed = await tenant.owner.request(REMOVE_SLACK);
    expect(removed.removeSlackWebhook.slackWebhook).toEqual({ configured: false, host: null });
    expect(await rowsOf('SlackWebhook')).toEqual([]);
    // Removing again changes nothing.
    expect((await tenant.owner.request(REMOVE_SLACK)).removeSlackWebhook.slackWebhook.configured).toBe(false);
  });
});

describe('secrets', () => {
  it('no type but the create and rotate payloads has a field a secret could come out of', async () => {
    const result = await tenant.owner.request<{ __schema: { types: { name: string; fields: { name: string }[] | null }[] } }>(
      `{ __schema { types { name fields { name } } } }`,
    );
    const withSecret = result.__schema.types
      .filter((type) => ['WebhookEndpoint', 'SlackWebhook', 'CreateWebhookEndpointPayload', 'RotateWebhookSecretPayload'].includes(type.name))
      .map((type) => [type.name, (type.fields ?? []).map((field) => field.name).filter((name) => /^secret$|ciphertext|token|^url$/i.test(name))]);
    expect(Object.fromEntries(withSecret)).toEqual({
      WebhookEndpoint: ['url'],
      SlackWebhook: [],
      CreateWebhookEndpointPayload: ['secret'],
      RotateWebhookSecretPayload: ['secret'],
    });
  });

  it('an idempotent retry of create or rotate is not answered with the secret again (@secret)', async () => {
    const key = `webhook-create-${Date.now()}`;
    const variables = { input: { url: PARTNER, eventTypes: ['TRIP_LATE'] } };
    const send = () => postJson(app.url, { query: print(CREATE), variables }, { ...bearer(tenant.ownerToken), 'idempotency-key': key });
    const first = await send();
    const { secret, webhookEndpoint } = (first.body.data as { createWebhookEndpoint: { secret: string; webhookEndpoint: { id: string } } }).createWebhookEndpoint;
    const retry = await send();
    expect(retry.body.errors?.map((error) => error.extensions?.code)).toEqual(['IDEMPOTENT_SECRET_NOT_REPLAYED']);
    expect(retry.text).not.toContain(secret);
    expect((await list()).filter((endpoint) => endpoint.id === webhookEndpoint.id)).toHaveLength(1);
    expect((await list())).toHaveLength(1);

    const rotateKey = `webhook-rotate-${Date.now()}`;
    const rotate = () => postJson(app.url, { query: print(ROTATE), variables: { id: webhookEndpoint.id } }, { ...bearer(tenant.ownerToken), 'idempotency-key': rotateKey });
    const rotated = await rotate();
    const next = (rotated.body.data as { rotateWebhookSecret: { secret: string } }).rotateWebhookSecret.secret;
    const again = await rotate();
    expect(again.body.errors?.map((error) => error.extensions?.code)).toEqual(['IDEMPOTENT_SECRET_NOT_REPLAYED']);
    expect(again.text).not.toContain(next);
    await tenant.owner.request(DELETE, { id: webhookEndpoint.id });
  });

  it('a secret shown once is in no other answer and in none of the server’s log lines', async () => {
    const { secret, webhookEndpoint } = await create();
    const rotated = (await tenant.owner.request(ROTATE, { id: webhookEndpoint.id })).rotateWebhookSecret.secret;
    await tenant.owner.request(SET_SLACK, { url: SLACK_URL });
    await list();
    answers.push(JSON.stringify(await tenant.owner.request(AUDIT)));
    answers.push(JSON.stringify(await tenant.owner.request(SLACK)));
    for (const text of answers) {
      for (const hidden of [secret, rotated, 'slackpathsecret']) expect(text).not.toContain(hidden);
    }
    expect(logLines.length).toBeGreaterThan(0);
    for (const hidden of [secret, rotated, 'slackpathsecret', 'partner-query-token']) {
      expect(logLines.filter((line) => line.includes(hidden))).toEqual([]);
    }
  });
});
