import { bearer, postJson, send } from '../support/raw-graphql';
import { NO_BACKGROUND_JOBS, startTestServer, type TenantFixture, type TestServer } from '../support/test-server';

/*
 * The metric families of issue 16 §4 over HTTP: each is recorded where its event happens and
 * shows on /metrics; operation names as labels are bounded whatever names clients send; no
 * label carries a tenant id; /metrics is protected by METRICS_TOKEN and absent in production
 * without one.
 */

let app: TestServer;
let tenant: TenantFixture;

/** The value of one series (`name{labels}` exactly as exposed), or undefined. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

async function scrape(server: TestServer = app, headers: Record<string, string> = {}): Promise<string> {
  const response = await send(server.url.replace(/\/graphql$/, '/metrics'), { headers });
  expect(response.status).toBe(200);
  return response.text;
}

/** Scrapes until `series` reaches `atLeast` (live counters; the database census stays cached meanwhile). */
async function scrapeUntil(server: TestServer, series: string, atLeast: number, timeoutMs = 20_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const text = await scrape(server);
    if ((sample(text, series) ?? 0) >= atLeast || Date.now() > deadline) return text;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

const INVITE = 'mutation MetricsInvite($input: InviteMemberInput!) { inviteMember(input: $input) { invitation { id } } }';

beforeAll(async () => {
  app = await startTestServer({ env: { METRICS_OPERATION_NAMES_MAX: '3' } });
  tenant = await app.createTenant();
}, 60_000);

afterAll(async () => {
  await app?.close();
});

describe('metric families', () => {
  it('counts tenants created, provisioning durations, logins and credentials by outcome', async () => {
    await postJson(app.url, {
      query: 'mutation BadLogin($input: LoginInput!) { login(input: $input) { accessToken } }',
      variables: { input: { tenant: tenant.slug, email: tenant.ownerEmail, password: 'not-the-password' } },
    });
    await postJson(app.url, { query: '{ vehicles { totalCount } }' }, bearer('not-a-token'));
    const text = await scrape();
    expect(sample(text, 'fleet_tenants_created_total')).toBe(1);
    expect(sample(text, 'fleet_tenant_provisioning_duration_seconds_count{outcome="ok"}')).toBe(1);
    expect(sample(text, 'fleet_tenant_migration_duration_seconds_count{outcome="migrated"}')).toBe(0);
    expect(sample(text, 'fleet_auth_attempts_total{method="admin_login",outcome="ok"}')).toBe(1);
    expect(sample(text, 'fleet_auth_attempts_total{method="login",outcome="ok"}')).toBe(1);
    expect(sample(text, 'fleet_auth_attempts_total{method="login",outcome="failed"}')).toBe(1);
    expect(sample(text, 'fleet_auth_attempts_total{method="access_token",outcome="failed"}')).toBe(1);
    expect(sample(text, 'fleet_auth_attempts_total{method="access_token",outcome="ok"}')).toBeGreaterThanOrEqual(1);
  });

  it('counts API keys created and revoked, and the catalog census', async () => {
    const created = await postJson<{ data?: { createApiKey: { apiKey: { id: string } } } }>(
      app.url,
      { query: 'mutation MetricsKey { createApiKey(input: { name: "metrics", role: VIEWER }) { apiKey { id } } }' },
      bearer(tenant.ownerToken),
    );
    const keyId = created.body?.data?.createApiKey.apiKey.id;
    expect(keyId).toEqual(expect.any(String));
    await postJson(app.url, { query: 'mutation MetricsRevoke($id: ID!) { revokeApiKey(id: $id) { apiKey { id } } }', variables: { id: keyId } }, bearer(tenant.ownerToken));
    const text = await scrape();
    expect(sample(text, 'fleet_api_keys_total{event="created"}')).toBe(1);
    expect(sample(text, 'fleet_api_keys_total{event="revoked"}')).toBe(1);
    expect(sample(text, 'fleet_catalog_tenant_schemas{cluster="main"}')).toBe(1);
    expect(sample(text, 'fleet_catalog_relations{cluster="main"}')).toBeGreaterThan(100);
    expect(sample(text, 'fleet_tenant_clients_cached')).toBeGreaterThanOrEqual(1);
    expect(sample(text, 'fleet_tenant_connection_budget{cluster="main"}')).toBeGreaterThan(0);
    expect(text).toMatch(/^fleet_connection_budget_waits_total\{outcome="all"\} \d+$/m);
    expect(text).toMatch(/^fleet_tenant_client_evictions_total \d+$/m);
    expect(text).toMatch(/^fleet_audit_outbox_backlog \d+$/m);
    expect(text).toMatch(/^fleet_audit_entries_moved_total \d+$/m);
    expect(text).toMatch(/^fleet_notification_attempts_total\{channel="WEBHOOK",outcome="dead"\} \d+$/m);
  });

  it('labels requests by operation name from a bounded set: new names only from signed-in callers, up to the cap', async () => {
    const owner = bearer(tenant.ownerToken);
    // Signed out, random names: none becomes a series.
    for (let i = 0; i < 5; i += 1) await postJson(app.url, { query: `query Spray${i} { __typename }` });
    // Signed in: the cap (3, with names kept earlier by this file) admits a few, the rest are "(other)".
    for (let i = 0; i < 6; i += 1) await postJson(app.url, { query: `query Named${i} { vehicles { totalCount } }` }, owner);
    await postJson(app.url, { query: '{ vehicles { totalCount } }' }, owner);
    const text = await scrape();
    const names = new Set([...text.matchAll(/^fleet_graphql_requests_total\{operation_name="([^"]*)"/gm)].map((match) => match[1]));
    expect(names.has('Spray0')).toBe(false);
    expect(names.has('(signed-out)')).toBe(true);
    expect(names.has('(other)')).toBe(true);
    expect(names.has('(anonymous)')).toBe(true);
    expect([...names].filter((name) => !name?.startsWith('(')).length).toBeLessThanOrEqual(3);
    expect(text).toMatch(/^fleet_graphql_request_duration_seconds_count\{operation_name="[^"]+",outcome="ok"\} [1-9]/m);
    // Errors are counted by their code.
    expect(text).toMatch(/^fleet_graphql_requests_total\{operation_name="[^"]+",outcome="UNAUTHENTICATED"\} [1-9]/m);
  });

  it('times each tenant migrateTenants(force: true) brings up to date', async () => {
    const admin = bearer(await app.adminToken());
    const response = await postJson<{ data?: { migrateTenants: { upToDate: number; failed: number } } }>(
      app.url,
      { query: 'mutation MetricsMigrate { migrateTenants(force: true) { upToDate failed } }' },
      admin,
    );
    expect(response.body?.data?.migrateTenants).toEqual({ upToDate: 1, failed: 0 });
    const text = await scrape();
    expect(sample(text, 'fleet_tenant_migration_duration_seconds_count{outcome="up_to_date"}')).toBe(1);
    expect(sample(text, 'fleet_tenant_migration_duration_seconds_count{outcome="failed"}')).toBe(0);
  });

  it('never labels a series with a tenant id or slug', async () => {
    const text = await scrape();
    expect(text).not.toContain(tenant.id);
    expect(text).not.toContain(tenant.slug);
  });
});

describe('jobs, emails and domain events', () => {
  // Servers of their own: the job census is read at most every 10 s, so its first reading must
  // come after what the test sets up.
  let jobsServer: TestServer;

  beforeAll(async () => {
    jobsServer = await startTestServer();
  }, 60_000);

  afterAll(async () => {
    await jobsServer?.close();
  });

  it('counts emails by kind and outcome, job runs and durations by queue, and the jobs waiting', async () => {
    const mail = jobsServer.mail!;
    const owned = await jobsServer.createTenant();
    await mail.take(owned.ownerEmail, 'Verify');
    // The relay goes down: the invitation's job fails, and pg-boss keeps it for a retry.
    await mail.stop();
    const invitee = `invitee@${owned.slug}.test`;
    const invited = await postJson<{ data?: { inviteMember: { invitation: { id: string } } } }>(
      jobsServer.url,
      { query: INVITE, variables: { input: { email: invitee, role: 'VIEWER' } } },
      bearer(owned.ownerToken),
    );
    expect(invited.body?.data?.inviteMember.invitation.id).toEqual(expect.any(String));
    const down = await scrapeUntil(jobsServer, 'fleet_emails_total{kind="invitation",outcome="failed"}', 1);
    expect(sample(down, 'fleet_emails_total{kind="invitation",outcome="failed"}')).toBeGreaterThanOrEqual(1);
    expect(sample(down, 'fleet_emails_total{kind="invitation",outcome="sent"}')).toBe(0);
    expect(sample(down, 'fleet_emails_total{kind="email_verification",outcome="sent"}')).toBe(1);
    expect(sample(down, 'fleet_emails_total{kind="password_reset",outcome="sent"}')).toBe(0);
    expect(sample(down, 'fleet_job_runs_total{queue="send-email",outcome="ok"}')).toBe(1);
    expect(sample(down, 'fleet_job_runs_total{queue="send-email",outcome="failed"}')).toBeGreaterThanOrEqual(1);
    expect(sample(down, 'fleet_job_duration_seconds_count{queue="send-email"}')).toBeGreaterThanOrEqual(2);
    // The invitation's job, waiting for its retry (or running it), counted from pg-boss's table.
    const waiting = ['created', 'retry', 'active'].map((state) => sample(down, `fleet_jobs{queue="send-email",state="${state}"}`) ?? NaN);
    expect(waiting.reduce((sum, jobs) => sum + jobs, 0)).toBe(1);
    expect(sample(down, 'fleet_jobs{queue="send-email",state="failed"}')).toBe(0);
    expect(sample(down, 'fleet_job_queue_lag_seconds{queue="send-email"}')).toEqual(expect.any(Number));

    // Back up: the retry sends it.
    await mail.start();
    await mail.take(invitee, 'You are invited', 30_000);
    // The run is counted as its handler returns, just after the relay accepted the message.
    const up = await scrapeUntil(jobsServer, 'fleet_job_runs_total{queue="send-email",outcome="ok"}', 2);
    expect(sample(up, 'fleet_emails_total{kind="invitation",outcome="sent"}')).toBe(1);
    expect(sample(up, 'fleet_job_runs_total{queue="send-email",outcome="ok"}')).toBe(2);
    expect(up).not.toContain(owned.id);
    expect(up).not.toContain(owned.slug);
  }, 60_000);

  it('counts events fanned out, with their delay, and the tenant-events jobs that did it', async () => {
    const owned = await jobsServer.createTenant();
    const before = await scrape(jobsServer);
    const dispatched = sample(before, 'fleet_events_dispatched_total') ?? NaN;
    const runs = sample(before, 'fleet_job_runs_total{queue="tenant-events",outcome="ok"}') ?? NaN;
    // API_KEY_CREATED is an event: the tenant's job fans it out.
    const created = await postJson<{ data?: { createApiKey: { apiKey: { id: string } } } }>(
      jobsServer.url,
      { query: 'mutation MetricsEventKey { createApiKey(input: { name: "event", role: VIEWER }) { apiKey { id } } }' },
      bearer(owned.ownerToken),
    );
    expect(created.body?.data?.createApiKey.apiKey.id).toEqual(expect.any(String));
    const after = await scrapeUntil(jobsServer, 'fleet_events_dispatched_total', dispatched + 1);
    expect(sample(after, 'fleet_events_dispatched_total')).toBeGreaterThan(dispatched);
    expect(sample(after, 'fleet_event_dispatch_delay_seconds_count')).toBe(sample(after, 'fleet_events_dispatched_total'));
    // Fanned out within the minute: the delay is measured, not left at its largest bucket.
    expect(sample(after, 'fleet_event_dispatch_delay_seconds_bucket{le="60"}')).toBe(sample(after, 'fleet_events_dispatched_total'));
    expect(sample(after, 'fleet_job_runs_total{queue="tenant-events",outcome="ok"}')).toBeGreaterThan(runs);
  }, 60_000);

  it('shows how long due jobs wait when no instance runs them', async () => {
    const idle = await startTestServer({ env: NO_BACKGROUND_JOBS });
    try {
      // The owner's verification email is queued; nothing here fetches it.
      const owned = await idle.createTenant();
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      const text = await scrape(idle);
      expect(sample(text, 'fleet_jobs{queue="send-email",state="created"}')).toBe(1);
      expect(sample(text, 'fleet_jobs{queue="send-email",state="active"}')).toBe(0);
      expect(sample(text, 'fleet_job_queue_lag_seconds{queue="send-email"}')).toBeGreaterThanOrEqual(1);
      // Queues nobody waits in lag 0, and an instance that runs no jobs records no runs.
      expect(sample(text, 'fleet_job_queue_lag_seconds{queue="trip-late-check"}')).toBe(0);
      expect(text).not.toMatch(/^fleet_job_runs_total\{/m);
      expect(text).not.toContain(owned.id);
    } finally {
      await idle.close();
    }
  }, 60_000);
});

describe('rate-limit refusals', () => {
  it('are counted by the bucket that ran out', async () => {
    const limited = await startTestServer({
      databaseUrl: app.databaseUrl,
      env: { RATE_LIMIT_ENABLED: 'true', SIGNED_OUT_RATE_LIMIT_CAPACITY: '2', SIGNED_OUT_RATE_LIMIT_REFILL_PER_SECOND: '0.01' },
    });
    try {
      for (let i = 0; i < 4; i += 1) await postJson(limited.url, { query: '{ __typename }' });
      const text = await scrape(limited);
      expect(sample(text, 'fleet_rate_limit_refusals_total{bucket="address"}')).toBeGreaterThanOrEqual(1);
      expect(sample(text, 'fleet_rate_limit_refusals_total{bucket="tenant"}')).toBe(0);
      expect(sample(text, 'fleet_graphql_requests_total{operation_name="(refused)",outcome="RATE_LIMITED"}')).toBeGreaterThanOrEqual(1);
    } finally {
      await limited.close();
    }
  }, 60_000);
});

describe('/metrics protection', () => {
  it('with METRICS_TOKEN: 401 UNAUTHENTICATED without it or with another, 200 with it', async () => {
    const token = 'metrics-token-0123456789abcdef';
    const guarded = await startTestServer({ databaseUrl: app.databaseUrl, env: { METRICS_TOKEN: token } });
    try {
      const url = guarded.url.replace(/\/graphql$/, '/metrics');
      for (const headers of [{}, bearer('metrics-token-wrong-0123456789'), { authorization: token }]) {
        const refused = await send(url, { headers });
        expect(refused.status).toBe(401);
        expect(refused.headers.get('www-authenticate')).toMatch(/^Bearer/);
        expect(refused.body?.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
        expect(refused.text).not.toContain('fleet_');
      }
      expect(await scrape(guarded, bearer(token))).toContain('fleet_graphql_requests_total');
    } finally {
      await guarded.close();
    }
  }, 60_000);

  it('in production without METRICS_TOKEN: not served (404 NOT_FOUND)', async () => {
    const production = await startTestServer({ databaseUrl: app.databaseUrl, env: { NODE_ENV: 'production' } });
    try {
      const response = await send(production.url.replace(/\/graphql$/, '/metrics'));
      expect(response.status).toBe(404);
      expect(response.body?.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
      // Health routes stay open.
      expect((await send(production.url.replace(/\/graphql$/, '/healthz'))).status).toBe(200);
    } finally {
      await production.close();
    }
  }, 60_000);
});
