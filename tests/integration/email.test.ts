import { Writable } from 'node:stream';
import pino from 'pino';
import { graphql } from '../generated';
import { startTestServer, errorCode, uniqueSlug, type TenantFixture, type TestServer } from '../support/test-server';
import { codeIn } from '../support/smtp-server';
import { readTestServices } from '../support/services';
import { postJson } from '../support/raw-graphql';
import { createMailer } from '../../src/email/mailer';
import { EmailChannel } from '../../src/notifications/email-channel';
import { DeliveryError } from '../../src/notifications/channel';
import type { DomainEvent } from '../../src/events/domain-event';
import { MAX_CODE_ATTEMPTS } from '../../src/auth/account-codes';
import { SEND_EMAIL_QUEUE } from '../../src/email/email-jobs';
import { createLogger } from '../../src/observability/logger';
import { parseGlobalId } from '../../src/graphql/global-id';

/*
 * Email end to end: the server sends through a real SMTP server this file starts
 * (tests/support/smtp-server.ts), and every code is read from the message that arrived.
 */

const LOGIN = graphql(`mutation EmailLogin($input: LoginInput!) { login(input: $input) { accessToken refreshToken } }`);
const REFRESH = graphql(`mutation EmailRefresh($token: String!) { refreshToken(token: $token) { accessToken } }`);
const ME = graphql(`query EmailMe { me { id email emailVerified } }`);
const ADD_MEMBER = graphql(`mutation EmailAddMember($input: AddMemberInput!) { addMember(input: $input) { member { id } } }`);
const INVITE = graphql(`mutation EmailInvite($input: InviteMemberInput!) { inviteMember(input: $input) { invitation { id email } } }`);
const JOIN = graphql(`mutation EmailJoin($input: JoinByInvitationInput!) { joinByInvitation(input: $input) { accessToken } }`);
const REQUEST_RESET = graphql(`mutation EmailRequestReset($email: String!) { requestPasswordReset(email: $email) { accepted } }`);
const RESET = graphql(`mutation EmailReset($input: ResetPasswordInput!) { resetPassword(input: $input) { signedOutSessions } }`);
const VERIFY = graphql(`mutation EmailVerify($code: String!) { verifyEmail(code: $code) { emailVerified } }`);
const RESEND = graphql(`mutation EmailResend { sendEmailVerification { sent } }`);
const CREATE_API_KEY = graphql(`mutation EmailCreateApiKey($input: CreateApiKeyInput!) { createApiKey(input: $input) { apiKey { id } } }`);
const CREATE_TRIP = graphql(`mutation EmailCreateTrip($input: CreateTripInput!) { createTrip(input: $input) { trip { id reference } } }`);

const PASSWORD = 'email-member-password';
const NEW_PASSWORD = 'a-brand-new-password';

let app: TestServer;
let tenant: TenantFixture;
let counter = 0;
const newEmail = (label: string) => `${label}-${(counter += 1)}-${Date.now().toString(36)}@mail.test`;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const pool = () => app.server.services.platform.pool;

beforeAll(async () => {
  app = await startTestServer();
  tenant = await app.createTenant(uniqueSlug('mail'));
});

afterAll(async () => {
  await app?.close();
});

async function addMember(email: string): Promise<{ id: string; client: ReturnType<TestServer['bearer']>; refreshToken: string }> {
  const added = await tenant.owner.request(ADD_MEMBER, { input: { email, name: 'Mail Person', password: PASSWORD, role: 'MEMBER' } });
  const session = (await app.client().request(LOGIN, { input: { tenant: tenant.slug, email, password: PASSWORD } })).login;
  return { id: added.addMember.member.id, client: app.bearer(session.accessToken), refreshToken: session.refreshToken };
}

async function resetCode(email: string): Promise<string> {
  expect((await app.client().request(REQUEST_RESET, { email })).requestPasswordReset.accepted).toBe(true);
  return codeIn(await app.mail!.take(email, 'password reset'), 'Reset code');
}

const reset = (email: string, code: string, newPassword = NEW_PASSWORD) => app.client().request(RESET, { input: { email, code, newPassword } });

describe('invitations are emailed', () => {
  it('the code arrives at the invitee, from EMAIL_FROM, works, and its job is gone once sent', async () => {
    const email = newEmail('invitee');
    const invited = await tenant.owner.request(INVITE, { input: { email, role: 'VIEWER' } });
    expect(Object.keys(invited.inviteMember)).toEqual(['invitation']);
    const mail = await app.mail!.take(email, 'You are invited');
    expect(mail.from).toBe('Fleet <no-reply@localhost>');
    expect(mail.subject).toBe(`You are invited to Tenant ${tenant.slug} on Fleet`);
    expect(mail.text).toContain('no Fleet account yet');
    const code = codeIn(mail, 'Invitation code');
    // Deleted on success: the code no longer sits in pg-boss's tables.
    await sleep(300);
    const jobs = await pool().query(`SELECT 1 FROM pgboss.job WHERE name = $1 AND data::text LIKE $2 UNION ALL SELECT 1 FROM pgboss.archive WHERE data::text LIKE $2`, [
      SEND_EMAIL_QUEUE,
      `%${code}%`,
    ]);
    expect(jobs.rowCount).toBe(0);
    const joined = await app.client().request(JOIN, { input: { code, name: 'Invitee', password: PASSWORD } });
    // The code came through the mailbox: the new account's address is verified.
    expect((await app.bearer(joined.joinByInvitation.accessToken).request(ME)).me).toMatchObject({ email, emailVerified: true });
  });

  it('an email is queued in the transaction of its change: rolled back, nothing is sent; committed, it is', async () => {
    const { platform, jobs } = app.server.services;
    const email = newEmail('rolled-back');
    const job = { template: 'password-reset', email: tenant.ownerEmail } as const;
    await expect(
      platform.prisma.$transaction(async (tx) => {
        await jobs.send(SEND_EMAIL_QUEUE, { ...job, email }, { tx });
        throw new Error('the change fails');
      }),
    ).rejects.toThrow('the change fails');
    await platform.prisma.$transaction((tx) => jobs.send(SEND_EMAIL_QUEUE, job, { tx }));
    jobs.wake(SEND_EMAIL_QUEUE);
    await app.mail!.take(tenant.ownerEmail, 'password reset');
    const queued = await pool().query(`SELECT 1 FROM pgboss.job WHERE name = $1 AND data->>'email' = $2`, [SEND_EMAIL_QUEUE, email]);
    expect(queued.rowCount).toBe(0);
  });
});

describe('password reset by emailed code', () => {
  it('answers the same for an unknown email, which gets no email', async () => {
    const known = newEmail('known');
    await addMember(known);
    const unknown = newEmail('unknown');
    const query = 'mutation($email: String!) { requestPasswordReset(email: $email) { accepted } }';
    const answers = await Promise.all([known, unknown].map((email) => postJson(app.url, { query, variables: { email } })));
    expect(answers.map((answer) => [answer.status, answer.text.trim()])).toEqual([
      [200, '{"data":{"requestPasswordReset":{"accepted":true}}}'],
      [200, '{"data":{"requestPasswordReset":{"accepted":true}}}'],
    ]);
    await app.mail!.take(known, 'password reset');
    await sleep(1_000);
    expect(app.mail!.to(unknown)).toEqual([]);
    expect(await errorCode(reset(unknown, 'AAAAA-AAAAA'))).toBe('INVALID_CODE');
  });

  it('the code sets the password once, verifies the address and signs out every session (refresh and access refused)', async () => {
    const email = newEmail('reset');
    const first = await addMember(email);
    const second = await app.client().request(LOGIN, { input: { tenant: tenant.slug, email, password: PASSWORD } });
    expect((await first.client.request(ME)).me.emailVerified).toBe(false);
    const code = await resetCode(email);
    expect(code).toMatch(/^[A-Z2-9]{5}-[A-Z2-9]{5}$/);
    // The password rules first: a refused password spends nothing.
    expect(await errorCode(reset(email, code, 'short'))).toBe('BAD_USER_INPUT');
    // As people type it: lower case, without the dash.
    expect((await reset(email, code.toLowerCase().replace('-', ''))).resetPassword.signedOutSessions).toBe(2);
    expect(await errorCode(reset(email, code, 'yet-another-password'))).toBe('INVALID_CODE');
    expect(await errorCode(first.client.request(ME))).toBe('UNAUTHENTICATED');
    expect(await errorCode(app.client().request(REFRESH, { token: first.refreshToken }))).toBe('UNAUTHENTICATED');
    expect(await errorCode(app.client().request(REFRESH, { token: second.login.refreshToken }))).toBe('UNAUTHENTICATED');
    expect(await errorCode(app.login(tenant.slug, email, PASSWORD))).toBe('UNAUTHENTICATED');
    const token = await app.login(tenant.slug, email, NEW_PASSWORD);
    expect((await app.bearer(token).request(ME)).me.emailVerified).toBe(true);
  });

  it('a new code voids the last one; an expired code is refused', async () => {
    const email = newEmail('expiring');
    await addMember(email);
    const old = await resetCode(email);
    const current = await resetCode(email);
    expect(await errorCode(reset(email, old))).toBe('INVALID_CODE');
    await pool().query(`UPDATE platform."AccountCode" c SET "expiresAt" = now() - interval '1 second' FROM platform."User" u WHERE u.id = c."userId" AND u.email = $1`, [email]);
    expect(await errorCode(reset(email, current))).toBe('INVALID_CODE');
    expect(await app.login(tenant.slug, email, PASSWORD)).toEqual(expect.any(String));
  });

  it(`${MAX_CODE_ATTEMPTS} wrong codes void the open one: the right one is then refused too`, async () => {
    const email = newEmail('guessed');
    await addMember(email);
    const code = await resetCode(email);
    for (let i = 0; i < MAX_CODE_ATTEMPTS; i += 1) expect(await errorCode(reset(email, `WRONG-${i}`))).toBe('INVALID_CODE');
    expect(await errorCode(reset(email, code))).toBe('INVALID_CODE');
    expect(await app.login(tenant.slug, email, PASSWORD)).toEqual(expect.any(String));
  });

  it('is limited per email (3, then RATE_LIMITED, known or unknown alike), and per client address when rate limits are on', async () => {
    for (const email of [newEmail('flooded'), newEmail('flooded-unknown')]) {
      for (let i = 0; i < 3; i += 1) expect((await app.client().request(REQUEST_RESET, { email })).requestPasswordReset.accepted).toBe(true);
      expect(await errorCode(app.client().request(REQUEST_RESET, { email }))).toBe('RATE_LIMITED');
    }
    const limited = await startTestServer({
      databaseUrl: app.databaseUrl,
      env: { REDIS_URL: readTestServices().redisUrl, RATE_LIMIT_ENABLED: 'true', SMTP_URL: app.mail!.url },
    });
    try {
      const client = limited.client();
      for (let i = 0; i < 5; i += 1) await client.request(REQUEST_RESET, { email: newEmail('from-one-address') });
      expect(await errorCode(client.request(REQUEST_RESET, { email: newEmail('from-one-address') }))).toBe('RATE_LIMITED');
    } finally {
      await limited.close();
    }
  });
});

describe('email verification', () => {
  it('an account an admin creates gets a code by email; verifyEmail proves the address; wrong codes do not', async () => {
    const email = newEmail('verify');
    const member = await addMember(email);
    const mail = await app.mail!.take(email, 'Verify');
    expect((await member.client.request(ME)).me.emailVerified).toBe(false);
    expect(await errorCode(member.client.request(VERIFY, { code: 'AAAAA-AAAAA' }))).toBe('INVALID_CODE');
    // Another's code is not the caller's.
    expect(await errorCode(tenant.owner.request(VERIFY, { code: codeIn(mail, 'Verification code') }))).toBe('INVALID_CODE');
    expect((await member.client.request(VERIFY, { code: codeIn(mail, 'Verification code') })).verifyEmail.emailVerified).toBe(true);
    expect((await member.client.request(ME)).me.emailVerified).toBe(true);
    expect((await member.client.request(RESEND)).sendEmailVerification.sent).toBe(false);
  });

  it("createTenant's owner is emailed a code too; a resent code voids the first", async () => {
    const slug = uniqueSlug('mail-owner');
    const owner = await app.createTenant(slug);
    const first = codeIn(await app.mail!.take(owner.ownerEmail, 'Verify'), 'Verification code');
    expect((await owner.owner.request(ME)).me.emailVerified).toBe(false);
    expect((await owner.owner.request(RESEND)).sendEmailVerification.sent).toBe(true);
    const second = codeIn(await app.mail!.take(owner.ownerEmail, 'Verify'), 'Verification code');
    expect(await errorCode(owner.owner.request(VERIFY, { code: first }))).toBe('INVALID_CODE');
    expect((await owner.owner.request(VERIFY, { code: second })).verifyEmail.emailVerified).toBe(true);
  });
});

describe('the email channel', () => {
  it('targets and mails verified members only, with the trip in the subject', async () => {
    const verifiedEmail = newEmail('notified');
    const verified = await addMember(verifiedEmail);
    await verified.client.request(VERIFY, { code: codeIn(await app.mail!.take(verifiedEmail, 'Verify'), 'Verification code') });
    const unverified = await addMember(newEmail('unverified'));
    const trip = (await tenant.owner.request(CREATE_TRIP, { input: { reference: 'T-1001', origin: 'Rotterdam', destination: 'Lyon' } })).createTrip.trip;

    const mailer = createMailer({ smtpUrl: app.mail!.url, from: 'Fleet <events@mail.test>' }, createLogger('silent'));
    const channel = new EmailChannel({ mailer, platform: app.server.services.platform });
    const tenantRecord = { id: tenant.id, slug: tenant.slug, name: `Tenant ${tenant.slug}` };
    const lease = app.server.services.tenantClients.lease((await app.server.services.directory.findById(tenant.id))!);
    try {
      const event: DomainEvent = {
        id: '0190f0f0-0000-7000-8000-000000000001',
        tenantId: tenant.id,
        type: 'TRIP_LATE',
        occurredAt: new Date(),
        // Events name the row id; the API shows global ids.
        subject: { type: 'Trip', id: parseGlobalId(trip.id)!.id },
        actor: { kind: 'SYSTEM', id: null },
        data: {},
      };
      const context = { tenant: tenantRecord, tenantData: lease };
      expect(await channel.targets(event, [verified.id, unverified.id, 'not-a-user'], context)).toEqual([verified.id]);
      await channel.deliver(event, verified.id, { ...context, attempt: 1, signal: new AbortController().signal });
      const mail = await app.mail!.take(verifiedEmail, 'T-1001');
      expect(mail.subject).toBe(`[Tenant ${tenant.slug}] Trip T-1001 is late`);
      expect(mail.from).toBe('Fleet <events@mail.test>');
      const refused = channel.deliver(event, unverified.id, { ...context, attempt: 1, signal: new AbortController().signal });
      await expect(refused).rejects.toBeInstanceOf(DeliveryError);
      await expect(refused).rejects.toMatchObject({ retryable: false });
    } finally {
      lease.release();
      mailer.close();
    }
  });
});

describe('the email channel, wired into the delivery worker', () => {
  it('an event routed to EMAIL by default (API_KEY_CREATED, for admins) reaches the verified admin, not the unverified one', async () => {
    const verifiedEmail = newEmail('admin-verified');
    const added = await tenant.owner.request(ADD_MEMBER, { input: { email: verifiedEmail, name: 'Verified Admin', password: PASSWORD, role: 'ADMIN' } });
    const verified = app.bearer(await app.login(tenant.slug, verifiedEmail, PASSWORD));
    await verified.request(VERIFY, { code: codeIn(await app.mail!.take(verifiedEmail, 'Verify'), 'Verification code') });
    const unverifiedEmail = newEmail('admin-unverified');
    await tenant.owner.request(ADD_MEMBER, { input: { email: unverifiedEmail, name: 'Unverified Admin', password: PASSWORD, role: 'ADMIN' } });
    expect(added.addMember.member.id).toEqual(expect.any(String));

    await tenant.owner.request(CREATE_API_KEY, { input: { name: 'mailed-key', role: 'VIEWER' } });
    const mail = await app.mail!.take(verifiedEmail, 'API key created', 20_000);
    expect(mail.subject).toBe(`[Tenant ${tenant.slug}] API key created`);
    await sleep(1_000);
    expect(app.mail!.to(unverifiedEmail).filter((message) => message.subject.includes('API key created'))).toEqual([]);
  });
});

describe('delivery survives the relay being down', () => {
  it('SMTP down, then up: the job retries and the invitation arrives, its code working', async () => {
    const relay = app.mail!;
    await relay.stop();
    const email = newEmail('patient');
    try {
      await tenant.owner.request(INVITE, { input: { email, role: 'VIEWER' } });
      await sleep(2_500);
      expect(relay.to(email)).toEqual([]);
      const waiting = await pool().query<{ retry_count: number; state: string }>(`SELECT retry_count, state::text FROM pgboss.job WHERE name = $1 AND data->>'to' = $2`, [
        SEND_EMAIL_QUEUE,
        email,
      ]);
      expect(waiting.rows).toEqual([{ retry_count: expect.any(Number), state: expect.stringMatching(/^(retry|active)$/) }]);
      expect(waiting.rows[0]!.retry_count).toBeGreaterThanOrEqual(1);
    } finally {
      await relay.start();
    }
    const code = codeIn(await relay.take(email, 'You are invited', 30_000), 'Invitation code');
    expect((await app.client().request(JOIN, { input: { code, name: 'Patient', password: PASSWORD } })).joinByInvitation.accessToken).toEqual(expect.any(String));
  });
});

describe('without SMTP_URL, the log transport', () => {
  it('prints the whole invitation email (its code) in one log line, and no other line names the code; the owner\'s verification email too', async () => {
    const lines: string[] = [];
    const memory = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(...chunk.toString().split('\n').filter(Boolean));
        done();
      },
    });
    // A database of its own: another instance's workers would otherwise take its jobs and mail them.
    const logged = await startTestServer({ env: { SMTP_URL: '' }, logger: pino({ level: 'info' }, memory) });
    try {
      expect(logged.mail).toBeNull();
      const home = await logged.createTenant(uniqueSlug('mail-log'));
      const email = newEmail('logged');
      await home.owner.request(INVITE, { input: { email, role: 'VIEWER' } });
      const ownerVerification = (line: string) => line.includes('email (no SMTP_URL') && line.includes(home.ownerEmail) && /Verification code: [A-Z2-9]{5}-[A-Z2-9]{5}/.test(line);
      let printed: string | undefined;
      for (let i = 0; i < 100 && !(printed && lines.some(ownerVerification)); i += 1) {
        printed = lines.find((line) => line.includes('email (no SMTP_URL') && line.includes(email) && line.includes('Invitation code'));
        await sleep(100);
      }
      expect(printed).toBeDefined();
      const code = /Invitation code: (inv_[A-Za-z0-9_-]+)/.exec(printed!)?.[1];
      expect(code).toMatch(/^inv_/);
      expect(lines.filter((line) => line.includes(code!))).toHaveLength(1);
      // The README's first session: createTenant's owner gets a verification email, printed too.
      expect(lines.some(ownerVerification)).toBe(true);
    } finally {
      await logged.close();
    }
  });
});
