/*
 * npm run smoke -- <graphql-url>
 *
 * Walks the README's first session against a running server, wherever it runs: health and
 * readiness, the platform admin's sign-in, a tenant (created once, then reused), its owner's
 * sign-in, a vehicle and a driver created, assigned, listed and deleted again, sign-out. One
 * line per step with its time; the first failure ends the run with exit code 1.
 *
 * Admin credentials come from ADMIN_EMAIL and ADMIN_PASSWORD (the server's own variables; the
 * development defaults otherwise). The smoke tenant is SMOKE_TENANT (default `smoke-check`); its
 * owner's password is derived from the admin password, so reruns sign in to the same tenant and
 * nothing else is stored. Tokens and passwords are never printed.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { DEV_ADMIN_EMAIL, DEV_ADMIN_PASSWORD } from '../src/config/config';
import { errorMessageOf } from '../src/observability/logger';
import { runOperatorCommand } from './operator-command';

interface GraphQLAnswer<T> {
  data?: T | null;
  errors?: { message: string; extensions?: { code?: string } }[];
}

class StepFailed extends Error {}

const REQUEST_TIMEOUT_MS = 15_000;

function usage(): never {
  throw new StepFailed('usage: npm run smoke -- <url of the GraphQL endpoint, e.g. http://localhost:4000/graphql>');
}

function endpointOf(argument: string | undefined): URL {
  if (!argument) usage();
  let url: URL;
  try {
    url = new URL(argument);
  } catch {
    usage();
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') usage();
  return url;
}

/** One GraphQL call; a transport failure or any error in the answer fails the step. */
async function call<T>(endpoint: URL, query: string, variables: Record<string, unknown>, token?: string): Promise<T> {
  const response = await fetch(endpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ query, variables }),
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
  const text = await response.text();
  let answer: GraphQLAnswer<T>;
  try {
    answer = JSON.parse(text) as GraphQLAnswer<T>;
  } catch {
    throw new StepFailed(`HTTP ${response.status}, not a GraphQL answer (${text.slice(0, 80).replace(/\s+/g, ' ')})`);
  }
  const [error] = answer.errors ?? [];
  if (error) throw new StepFailed(`${error.extensions?.code ?? 'ERROR'}: ${error.message} (HTTP ${response.status})`);
  if (!answer.data) throw new StepFailed(`HTTP ${response.status} without data`);
  return answer.data;
}

async function main(): Promise<void> {
  const endpoint = endpointOf(process.argv[2]);
  const adminEmail = process.env.ADMIN_EMAIL || DEV_ADMIN_EMAIL;
  const adminPassword = process.env.ADMIN_PASSWORD || DEV_ADMIN_PASSWORD;
  const slug = process.env.SMOKE_TENANT || 'smoke-check';
  const owner = {
    email: `owner@${slug}.example`,
    name: 'Smoke check',
    password: createHmac('sha256', adminPassword).update(`fleet-graphql smoke owner of ${slug}`).digest('base64url').slice(0, 32),
  };
  const origin = new URL('/', endpoint);
  process.stdout.write(`smoke check of ${endpoint.toString()} as ${adminEmail}, tenant ${slug}\n`);

  const started = performance.now();
  let steps = 0;
  const step = async <T>(name: string, work: () => Promise<T>): Promise<T> => {
    const begin = performance.now();
    try {
      const result = await work();
      steps += 1;
      process.stdout.write(`  ok    ${name.padEnd(50)} ${String(Math.round(performance.now() - begin)).padStart(5)} ms\n`);
      return result;
    } catch (error) {
      const reason = error instanceof StepFailed ? error.message : errorMessageOf(error);
      process.stdout.write(`  FAIL  ${name.padEnd(50)} ${String(Math.round(performance.now() - begin)).padStart(5)} ms\n`);
      throw new StepFailed(`${name}: ${reason}`);
    }
  };

  await step('GET /healthz', async () => {
    const response = await fetch(new URL('healthz', origin), { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
    if (!response.ok) throw new StepFailed(`HTTP ${response.status}`);
  });
  await step('GET /readyz', async () => {
    const response = await fetch(new URL('readyz', origin), { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
    if (!response.ok) throw new StepFailed(`HTTP ${response.status}: ${(await response.text()).slice(0, 200)}`);
  });
  const adminToken = await step('adminLogin', async () => {
    const data = await call<{ adminLogin: { accessToken: string } }>(
      endpoint,
      'mutation SmokeAdminLogin($email: String!, $password: String!) { adminLogin(email: $email, password: $password) { accessToken } }',
      { email: adminEmail, password: adminPassword },
    );
    return data.adminLogin.accessToken;
  });
  await step(`createTenant ${slug} (created once, then reused)`, async () => {
    const data = await call<{ createTenant: { tenant: { status: string } } }>(
      endpoint,
      'mutation SmokeCreateTenant($input: CreateTenantInput!) { createTenant(input: $input) { tenant { status } } }',
      { input: { slug, name: 'Smoke check', plan: 'FREE', owner } },
      adminToken,
    );
    if (data.createTenant.tenant.status !== 'ACTIVE') throw new StepFailed(`tenant is ${data.createTenant.tenant.status}`);
  });
  const ownerToken = await step('login as the tenant owner', async () => {
    const data = await call<{ login: { accessToken: string } }>(
      endpoint,
      'mutation SmokeLogin($input: LoginInput!) { login(input: $input) { accessToken } }',
      { input: { tenant: slug, email: owner.email, password: owner.password } },
    );
    return data.login.accessToken;
  });

  const plate = `SMOKE-${randomBytes(3).toString('hex').toUpperCase()}`;
  const created: { vehicleId?: string; driverId?: string } = {};
  try {
    created.vehicleId = await step(`createVehicle ${plate}`, async () => {
      const data = await call<{ createVehicle: { vehicle: { id: string } } }>(
        endpoint,
        'mutation SmokeCreateVehicle($input: CreateVehicleInput!) { createVehicle(input: $input) { vehicle { id } } }',
        { input: { plate, make: 'Smoke', model: 'Check', year: new Date().getFullYear() } },
        ownerToken,
      );
      return data.createVehicle.vehicle.id;
    });
    created.driverId = await step('createDriver', async () => {
      const data = await call<{ createDriver: { driver: { id: string } } }>(
        endpoint,
        'mutation SmokeCreateDriver($input: CreateDriverInput!) { createDriver(input: $input) { driver { id } } }',
        { input: { name: 'Smoke Driver', licenseNumber: plate } },
        ownerToken,
      );
      return data.createDriver.driver.id;
    });
    await step('assignDriver', () =>
      call(endpoint, 'mutation SmokeAssign($vehicleId: ID!, $driverId: ID) { assignDriver(vehicleId: $vehicleId, driverId: $driverId) { vehicle { id } } }', {
        vehicleId: created.vehicleId,
        driverId: created.driverId,
      }, ownerToken),
    );
    await step('vehicles lists it with its driver', async () => {
      const data = await call<{ vehicles: { edges: { node: { plate: string; driver: { name: string } | null } }[] } }>(
        endpoint,
        'query SmokeVehicles($search: String) { vehicles(first: 5, filter: { search: $search }) { edges { node { plate driver { name } } } } }',
        { search: plate },
        ownerToken,
      );
      const found = data.vehicles.edges.find((edge) => edge.node.plate === plate);
      if (found?.node.driver?.name !== 'Smoke Driver') throw new StepFailed(`${plate} is not listed with its driver`);
    });
  } finally {
    // Whatever happened above, what this run created goes again.
    if (created.vehicleId) {
      await step('deleteVehicle', () => call(endpoint, 'mutation SmokeDeleteVehicle($id: ID!) { deleteVehicle(id: $id) { deletedId } }', { id: created.vehicleId }, ownerToken));
    }
    if (created.driverId) {
      await step('deleteDriver', () => call(endpoint, 'mutation SmokeDeleteDriver($id: ID!) { deleteDriver(id: $id) { deletedId } }', { id: created.driverId }, ownerToken));
    }
  }
  await step('vehicles no longer lists it', async () => {
    const data = await call<{ vehicles: { totalCount: number } }>(
      endpoint,
      'query SmokeGone($search: String) { vehicles(first: 1, filter: { search: $search }) { totalCount } }',
      { search: plate },
      ownerToken,
    );
    if (data.vehicles.totalCount !== 0) throw new StepFailed(`${plate} is still listed`);
  });
  await step('logout (owner and admin)', async () => {
    await call(endpoint, 'mutation SmokeLogout { logout { success } }', {}, ownerToken);
    await call(endpoint, 'mutation SmokeLogout { logout { success } }', {}, adminToken);
  });
  process.stdout.write(`smoke check passed: ${steps} steps in ${Math.round(performance.now() - started)} ms\n`);
}

runOperatorCommand('smoke', main);
