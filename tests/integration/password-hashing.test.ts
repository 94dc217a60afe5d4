import { print } from 'graphql';
import { graphql } from '../generated';
import { bearer, eventually, postJson, type RawResponse } from '../support/raw-graphql';
import { ADMIN_EMAIL, ADMIN_PASSWORD, startTestServer, type TenantFixture, type TestServer } from '../support/test-server';

/*
 * bcrypt runs on worker threads behind a bounded queue (src/auth/password-jobs.ts), over real
 * HTTP against real servers. What is proved, without a clock: every password check is one job
 * done by a worker thread (counted in /metrics), the event loop answers other requests while
 * one runs, and a flood beyond the queue is answered RATE_LIMITED with a retryAfter while the
 * rest are judged as usual. Rate limits are off in these servers (the test server's default),
 * so every RATE_LIMITED here comes from the password queue.
 */

const LOGIN = graphql(`mutation PasswordHashingLogin($input: LoginInput!) { login(input: $input) { accessToken } }`);
const ADMIN_LOGIN = graphql(`mutation PasswordHashingAdminLogin($email: String!, $password: String!) {
  adminLogin(email: $email, password: $password) { accessToken }
}`);
const CHANGE_PASSWORD = graphql(`mutation PasswordHashingChange($input: ChangePasswordInput!) { changePassword(input: $input) { signedOutSessions } }`);
const ME = graphql(`query PasswordHashingMe { me { id } }`);

interface LoginBody {
  data?: { login: { accessToken: string } | null } | null;
  errors?: { message: string; extensions?: { code?: string; retryAfter?: unknown; [key: string]: unknown } }[];
}

const loginOver = (app: TestServer, input: { tenant: string; email: string; password: string }) =>
  postJson<LoginBody>(app.url, { query: print(LOGIN), variables: { input } });

/** A sample from /metrics: `name` with exactly these labels (e.g. `outcome="completed"`). */
async function metric(app: TestServer, name: string, labels = ''): Promise<number> {
  const response = await fetch(app.url.replace(/\/graphql$/, '/metrics'));
  expect(response.status).toBe(200);
  const series = labels ? `${name}{${labels}} ` : `${name} `;
  const line = (await response.text()).split('\n').find((row) => row.startsWith(series));
  if (!line) throw new Error(`${series.trim()} missing from /metrics`);
  return Number(line.slice(series.length));
}

const completedJobs = (app: TestServer) => metric(app, 'fleet_password_jobs_total', 'outcome="completed"');
const refusedJobs = (app: TestServer) => metric(app, 'fleet_password_jobs_total', 'outcome="refused"');

function codeOf(response: RawResponse<LoginBody>): string | undefined {
  const codes = [...new Set((response.body?.errors ?? []).map((error) => error.extensions?.code))];
  if (codes.length > 1) throw new Error(`expected one error code, got ${response.text}`);
  return codes[0];
}

describe('every password check is one job on a worker thread', () => {
  let app: TestServer;
  let tenant: TenantFixture;

  beforeAll(async () => {
    app = await startTestServer({ env: { PASSWORD_HASH_THREADS: '2' } });
    tenant = await app.createTenant();
  });

  afterAll(async () => {
    await app.close();
  });

  it('runs bcrypt on the configured threads', async () => {
    expect(await metric(app, 'fleet_password_threads')).toBe(2);
  });

  it('counts one job per login: right password, wrong password, unknown account alike', async () => {
    const before = await completedJobs(app);
    const right = await loginOver(app, { tenant: tenant.slug, email: tenant.ownerEmail, password: tenant.ownerPassword });
    expect(right.body.data?.login?.accessToken).toEqual(expect.any(String));
    const wrong = await loginOver(app, { tenant: tenant.slug, email: tenant.ownerEmail, password: 'not-the-password' });
    expect(codeOf(wrong)).toBe('UNAUTHENTICATED');
    // No account: compared against the decoy hash, so it costs what a real account costs.
    const unknown = await loginOver(app, { tenant: tenant.slug, email: `nobody@${tenant.slug}.test`, password: 'not-the-password' });
    expect(codeOf(unknown)).toBe('UNAUTHENTICATED');
    expect(await completedJobs(app)).toBe(before + 3);
    expect(await refusedJobs(app)).toBe(0);
  });

  it('counts two for a password change (check the current one, hash the new one), which then signs in', async () => {
    const token = await app.login(tenant.slug, tenant.ownerEmail, tenant.ownerPassword);
    const before = await completedJobs(app);
    const newPassword = `${tenant.ownerPassword}-changed`;
    await app.bearer(token).request(CHANGE_PASSWORD, { input: { currentPassword: tenant.ownerPassword, newPassword } });
    expect(await completedJobs(app)).toBe(before + 2);
    expect(await app.login(tenant.slug, tenant.ownerEmail, newPassword)).toEqual(expect.any(String));
    const admin = await app.client().request(ADMIN_LOGIN, { email: ADMIN_EMAIL, password: ADMIN_PASSWORD });
    expect(admin.adminLogin.accessToken).toEqual(expect.any(String));
  });
});

describe('while bcrypt runs, the event loop serves other requests', () => {
  let app: TestServer;
  let tenant: TenantFixture;

  beforeAll(async () => {
    // Cost 12: each check keeps the one thread busy long enough to be seen busy from outside.
    app = await startTestServer({ env: { BCRYPT_ROUNDS: '12', PASSWORD_HASH_THREADS: '1' } });
    tenant = await app.createTenant();
  });

  afterAll(async () => {
    await app.close();
  });

  it('answers /metrics showing a job on the thread and others queued, and a query, before the logins end', async () => {
    const token = await app.login(tenant.slug, tenant.ownerEmail, tenant.ownerPassword);
    const logins = 8;
    let settled = 0;
    const flood = Array.from({ length: logins }, () =>
      loginOver(app, { tenant: tenant.slug, email: tenant.ownerEmail, password: 'not-the-password' }).finally(() => (settled += 1)),
    );
    const seenBusy = await eventually(async () => {
      const running = await metric(app, 'fleet_password_jobs', 'state="running"');
      const queued = await metric(app, 'fleet_password_jobs', 'state="queued"');
      return running === 1 && queued >= 1 ? { settled } : undefined;
    }, 30_000, 50);
    // Served while a bcrypt job was on the thread and another waited for it.
    expect(seenBusy.settled).toBeLessThan(logins);
    const me = await postJson(app.url, { query: print(ME) }, bearer(token));
    expect(me.body.data).toEqual({ me: { id: expect.any(String) } });

    const responses = await Promise.all(flood);
    expect(responses.map(codeOf)).toEqual(Array(logins).fill('UNAUTHENTICATED'));
  });
});

describe('a flood beyond the queue', () => {
  let app: TestServer;
  let tenant: TenantFixture;

  beforeAll(async () => {
    // One thread, one place in the queue, no wait: the third concurrent check is refused.
    app = await startTestServer({
      env: { BCRYPT_ROUNDS: '12', PASSWORD_HASH_THREADS: '1', PASSWORD_HASH_QUEUE_MAX: '1', PASSWORD_HASH_QUEUE_WAIT_MS: '0' },
    });
    tenant = await app.createTenant();
  });

  afterAll(async () => {
    await app.close();
  });

  it('is answered RATE_LIMITED with retryAfter for the excess; the rest are judged as usual, nothing fails', async () => {
    const refusedBefore = await refusedJobs(app);
    const attempts = [
      ...Array.from({ length: 4 }, () => ({ kind: 'right', password: tenant.ownerPassword, email: tenant.ownerEmail })),
      ...Array.from({ length: 8 }, () => ({ kind: 'wrong', password: 'not-the-password', email: tenant.ownerEmail })),
      ...Array.from({ length: 4 }, (_, index) => ({ kind: 'unknown', password: 'not-the-password', email: `nobody-${index}@${tenant.slug}.test` })),
    ];
    const responses = await Promise.all(attempts.map(({ email, password }) => loginOver(app, { tenant: tenant.slug, email, password })));

    const outcomes = responses.map((response, index) => {
      const code = codeOf(response);
      if (code === 'RATE_LIMITED') {
        const error = response.body.errors?.[0];
        expect(error?.extensions?.retryAfter).toEqual(expect.any(Number));
        expect(Number.isInteger(error?.extensions?.retryAfter) && (error?.extensions?.retryAfter as number) >= 1).toBe(true);
        expect(error?.extensions).not.toHaveProperty('stacktrace');
        return 'refused';
      }
      // Admitted: judged exactly as without a queue.
      if (attempts[index]?.kind === 'right') {
        expect(code).toBeUndefined();
        expect(response.body.data?.login?.accessToken).toEqual(expect.any(String));
        return 'signed in';
      }
      expect(code).toBe('UNAUTHENTICATED');
      return 'refused credentials';
    });
    const refusals = outcomes.filter((outcome) => outcome === 'refused').length;
    expect(refusals).toBeGreaterThan(0);
    expect(refusals).toBeLessThan(attempts.length);
    expect(await refusedJobs(app)).toBe(refusedBefore + refusals);

    // Once the flood is over, signing in works again.
    expect(await app.login(tenant.slug, tenant.ownerEmail, tenant.ownerPassword)).toEqual(expect.any(String));
  });
});

describe('the instance\'s budget of password checks', () => {
  let app: TestServer;
  let tenant: TenantFixture;

  beforeAll(async () => {
    app = await startTestServer({ env: { PASSWORD_CHECKS_BURST: '40', PASSWORD_CHECKS_PER_SECOND: '0.01' } });
    // Creating the tenant hashes its owner's password: one check of the 40.
    tenant = await app.createTenant();
  });

  afterAll(async () => {
    await app.close();
  });

  it('bounds the bcrypt work a flood can ask of the machine: past it, RATE_LIMITED before any bcrypt runs', async () => {
    const completedBefore = await completedJobs(app);
    const responses = [];
    for (let i = 0; i < 45; i += 1) responses.push(await loginOver(app, { tenant: tenant.slug, email: `nobody-${i}@${tenant.slug}.test`, password: 'not-the-password' }));
    const codes = responses.map(codeOf);
    // Setting up took a few checks of the burst (the bootstrap admin, the decoy, the owner, two sign-ins).
    const judged = codes.filter((code) => code === 'UNAUTHENTICATED').length;
    expect(judged).toBeGreaterThanOrEqual(30);
    expect(judged).toBeLessThanOrEqual(39);
    expect(codes.slice(judged)).toEqual(Array.from({ length: 45 - judged }, () => 'RATE_LIMITED'));
    const refusal = responses.at(-1)!.body.errors?.[0];
    expect(refusal?.message).toMatch(/Too many password checks on this server/);
    // At 0.01 a second, the next check is about 100 s away.
    expect(refusal?.extensions?.retryAfter as number).toBeGreaterThan(50);
    // Only the judged attempts ran bcrypt.
    expect(await completedJobs(app)).toBe(completedBefore + judged);
  });
});

describe('closing the server', () => {
  it('ends the password threads', async () => {
    const app = await startTestServer({ env: { PASSWORD_HASH_THREADS: '1' } });
    const threads = () => app.server.metrics.registry.getSingleMetricAsString('fleet_password_threads');
    await expect(threads()).resolves.toMatch(/^fleet_password_threads 1$/m);
    await app.close();
    await expect(threads()).resolves.toMatch(/^fleet_password_threads 0$/m);
  });
});
