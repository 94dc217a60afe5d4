import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { createLogger } from '../../src/observability/logger';
import { writeAtomically } from '../../src/provisioning/fleet-export';
import { runTenantJob, type TenantJob, type TenantJobResult } from '../../src/tenant-jobs/tenant-jobs';
import { DatabaseInspector } from '../support/provisioning-inspector';
import { startTestServer, type TenantFixture, type TestServer } from '../support/test-server';
import { graphql } from '../generated';

/*
 * The one iterator over tenants (runTenantJob) across several batches, and the two operator
 * commands that drive it from a shell: the fleet export (`npm run tenants:export`), run as a
 * child process against a test server's database with one tenant broken on the way, its
 * archives imported back over HTTP; and tenants:migrate's --dry-run and --after.
 */

const ROOT = path.resolve(__dirname, '../..');
// Each command starts node + tsx compiling the script: on a loaded two-core machine ~10 s.
jest.setTimeout(180_000);
const run = promisify(execFile);

const TENANT_COUNT = 5;
/** The test server's JWT_SECRET (tests/support/test-server.ts): tenant passwords and archive signatures derive from it. */
const JWT_SECRET = 'test-jwt-secret-0123456789abcdef-0123456789';

const CREATE_VEHICLE = graphql(`mutation TenantJobsVehicle($input: CreateVehicleInput!) { createVehicle(input: $input) { vehicle { id } } }`);
const CREATE_DRIVER = graphql(`mutation TenantJobsDriver($input: CreateDriverInput!) { createDriver(input: $input) { driver { id } } }`);
const FLEET = graphql(`query TenantJobsFleet {
  vehicles(first: 10, includeDeleted: true) { edges { node { id plate make model year history(first: 10) { edges { node { version action } } } } } }
  drivers(first: 10) { edges { node { id name licenseNumber } } }
  fleetSettings { currency timeZone }
}`);

let app: TestServer;
let db: DatabaseInspector;
let adminToken: string;
/** In id order: the order every run goes in. */
let tenants: TenantFixture[];
let work: string;

beforeAll(async () => {
  app = await startTestServer();
  db = await DatabaseInspector.connect(app.databaseUrl);
  adminToken = await app.adminToken();
  const created: TenantFixture[] = [];
  for (let index = 0; index < TENANT_COUNT; index += 1) {
    const tenant = await app.createTenant();
    await tenant.owner.request(CREATE_VEHICLE, { input: { plate: `JOBS-${index}`, make: 'Volvo', model: 'FH', year: 2020 + index } });
    await tenant.owner.request(CREATE_DRIVER, { input: { name: `Driver ${index}`, licenseNumber: `JOBS-LIC-${index}` } });
    created.push(tenant);
  }
  tenants = created.sort((a, b) => (a.id < b.id ? -1 : 1));
  work = mkdtempSync(path.join(tmpdir(), 'tenant-jobs-'));
}, 120_000);

afterAll(async () => {
  if (work) rmSync(work, { recursive: true, force: true });
  await db?.close();
  await app?.close();
});

const ids = () => tenants.map((tenant) => tenant.id);

describe('runTenantJob across batches', () => {
  /** A job that records when each tenant starts, and fails the tenants named. */
  function recordingJob(failing: Set<string>, events: string[]): TenantJob<string> {
    return {
      name: 'test-recording',
      run: async (tenant) => {
        events.push(`start ${tenant.id}`);
        await new Promise((resolve) => setTimeout(resolve, 5));
        if (failing.has(tenant.id)) throw new Error(`tenant ${tenant.slug} is broken`);
        return tenant.slug;
      },
    };
  }

  const deps = () => ({ prisma: app.server.services.platform.prisma, logger: createLogger('silent') });

  it('visits every tenant once, in id order, batch after batch (batchSize 2), and carries on past a failure in the middle', async () => {
    const events: string[] = [];
    const heard: TenantJobResult<string>[] = [];
    const broken = ids()[2] as string;
    const report = await runTenantJob(deps(), recordingJob(new Set([broken]), events), { concurrency: 2, batchSize: 2 }, (result) => {
      events.push(`result ${result.tenantId}`);
      heard.push(result);
    });

    expect(heard.map((result) => result.tenantId)).toEqual(ids());
    expect(events.filter((event) => event.startsWith('start')).map((event) => event.slice(6))).toEqual(ids());
    // Batches of two: a tenant starts only once every tenant of the batches before it was heard.
    ids().forEach((id, index) => {
      const before = events.slice(0, events.indexOf(`start ${id}`));
      expect(before.filter((event) => event.startsWith('result'))).toHaveLength(Math.floor(index / 2) * 2);
    });
    expect(heard.map((result) => result.status)).toEqual(['DONE', 'DONE', 'FAILED', 'DONE', 'DONE']);
    expect(heard[2]).toMatchObject({ tenantId: broken, outcome: null, error: `tenant ${tenants[2]?.slug} is broken` });
    expect(heard[4]).toMatchObject({ status: 'DONE', outcome: tenants[4]?.slug });
    expect(report).toMatchObject({ visited: TENANT_COUNT, done: TENANT_COUNT - 1, failed: 1, resumeAfter: ids().at(-1), missingTenantIds: [] });
    expect(report.failures.map((failure) => failure.tenantId)).toEqual([broken]);
    // The report holds no per-tenant list: memory is the batch's, not the fleet's.
    expect(Object.keys(report).sort()).toEqual(['done', 'dryRun', 'durationMs', 'failed', 'failures', 'job', 'missingTenantIds', 'resumeAfter', 'visited']);
  });

  it('resumes after a tenant (mid-batch too), and after the last one finds nothing', async () => {
    for (const from of [0, 1, 2, 3]) {
      const heard: string[] = [];
      const report = await runTenantJob(deps(), recordingJob(new Set(), []), { concurrency: 1, batchSize: 2, after: ids()[from] }, (result) => {
        heard.push(result.tenantId);
      });
      expect(heard).toEqual(ids().slice(from + 1));
      expect(report.resumeAfter).toBe(ids().at(-1));
    }
    const none = await runTenantJob(deps(), recordingJob(new Set(), []), { concurrency: 1, batchSize: 2, after: ids().at(-1) });
    expect(none).toMatchObject({ visited: 0, resumeAfter: ids().at(-1) });
  });

  it('goes through listed tenants in id order across batches, naming the ids that are no tenant', async () => {
    const heard: string[] = [];
    const unknown = 'ffffffff-0000-7000-8000-000000000000';
    const listed = [ids()[4], ids()[0], unknown, ids()[2], ids()[3]] as string[];
    const report = await runTenantJob(deps(), recordingJob(new Set(), []), { concurrency: 2, batchSize: 2, tenantIds: listed }, (result) => {
      heard.push(result.tenantId);
    });
    expect(heard).toEqual([ids()[0], ids()[2], ids()[3], ids()[4]]);
    expect(report).toMatchObject({ visited: 4, missingTenantIds: [unknown] });
  });

  it('passes dryRun to the job', async () => {
    const seen: boolean[] = [];
    const report = await runTenantJob(deps(), { name: 'test-dry', run: async (_tenant, { dryRun }) => seen.push(dryRun) }, { concurrency: 2, batchSize: 2, dryRun: true });
    expect(seen).toEqual(Array(TENANT_COUNT).fill(true));
    expect(report.dryRun).toBe(true);
  });
});

async function operator(script: string, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = { PATH: process.env.PATH, HOME: process.env.HOME, NODE_ENV: 'test', DATABASE_URL: app.databaseUrl, JWT_SECRET, LOG_LEVEL: 'silent' };
  try {
    const { stdout, stderr } = await run(process.execPath, ['scripts/operator.js', script, ...args], { cwd: ROOT, env, timeout: 150_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code?: number; stdout: string; stderr: string };
    return { code: typeof failed.code === 'number' ? failed.code : -1, stdout: failed.stdout, stderr: failed.stderr };
  }
}

/** The line a command printed for a tenant (by id), or undefined. */
const lineOf = (stdout: string, tenant: TenantFixture) => stdout.split('\n').find((line) => line.includes(tenant.id));

async function importInto(slug: string, body: string): Promise<{ status: number; body: { counts?: Record<string, number> } }> {
  const response = await fetch(`${new URL(app.url).origin}/admin/tenants/${slug}/import`, {
    method: 'POST',
    headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/x-ndjson' },
    body,
  });
  return { status: response.status, body: (await response.json()) as never };
}

describe('npm run tenants:export', () => {
  let first: string;

  it('writes each tenant its archive, reports the broken one and carries on; nothing is left under the broken one\'s name', async () => {
    first = path.join(work, 'first');
    const broken = tenants[2] as TenantFixture;
    // Its role's search_path now leads nowhere: the export's first read fails.
    await db.client.query(`ALTER SCHEMA "${broken.schemaName}" RENAME TO "${broken.schemaName}_away"`);
    let result: Awaited<ReturnType<typeof operator>>;
    try {
      result = await operator('export-tenants', '--out', first, '--concurrency', '2');
    } finally {
      await db.client.query(`ALTER SCHEMA "${broken.schemaName}_away" RENAME TO "${broken.schemaName}"`);
    }
    expect(result.code).toBe(1);
    // PostgreSQL's reason, not Prisma's bare P2010.
    expect(lineOf(result.stdout, broken)).toMatch(/^FAILED .*42P01: relation "FleetSettings" does not exist/);
    for (const tenant of tenants.filter((candidate) => candidate !== broken)) {
      expect(lineOf(result.stdout, tenant)).toMatch(new RegExp(`^DONE .*-> ${path.join(first, `${tenant.slug}.ndjson`)}$`));
    }
    // One line per tenant, in id order, then the totals and where to resume.
    const order = result.stdout.split('\n').filter((line) => /^(DONE|FAILED) /.test(line)).map((line) => tenants.find((tenant) => line.includes(tenant.id))?.id);
    expect(order).toEqual(ids());
    expect(result.stdout).toContain(`${TENANT_COUNT} tenants, 1 failed`);
    expect(result.stdout).toContain(`resume after ${ids().at(-1)}`);
    // Only whole archives, under the final names; the failed tenant's temporary file is gone.
    expect(readdirSync(first).sort()).toEqual(tenants.filter((tenant) => tenant !== broken).map((tenant) => `${tenant.slug}.ndjson`).sort());
  });

  it('writes archives that import into new tenants with identical rows', async () => {
    for (const source of [tenants[0], tenants[3]] as TenantFixture[]) {
      const archive = readFileSync(path.join(first, `${source.slug}.ndjson`), 'utf8');
      expect(JSON.parse(archive.split('\n')[0] as string)).toMatchObject({ format: 'fleet-graphql-tenant-export', tenant: { slug: source.slug } });
      const restored = await app.createTenant();
      const imported = await importInto(restored.slug, archive);
      expect(imported.status).toBe(200);
      expect(imported.body.counts).toMatchObject({ Vehicle: 1, Driver: 1 });
      const [original, copy] = await Promise.all([source.owner.request(FLEET), restored.owner.request(FLEET)]);
      expect(copy).toEqual(original);
      expect(copy.vehicles.edges.map((edge) => edge.node.plate)).toEqual([expect.stringMatching(/^JOBS-\d$/)]);
    }
  });

  it('resumes with --after: the tenants up to it are not exported again', async () => {
    const resumed = path.join(work, 'resumed');
    const result = await operator('export-tenants', '--out', resumed, '--after', ids()[1] as string);
    expect(result.code).toBe(0);
    expect(lineOf(result.stdout, tenants[0] as TenantFixture)).toBeUndefined();
    expect(lineOf(result.stdout, tenants[1] as TenantFixture)).toBeUndefined();
    // The one that failed before is exported now (its schema is back).
    for (const tenant of tenants.slice(2)) {
      expect(lineOf(result.stdout, tenant)).toMatch(/^DONE /);
      expect(existsSync(path.join(resumed, `${tenant.slug}.ndjson`))).toBe(true);
    }
    expect(existsSync(path.join(resumed, `${(tenants[0] as TenantFixture).slug}.ndjson`))).toBe(false);
    expect(existsSync(path.join(resumed, `${(tenants[1] as TenantFixture).slug}.ndjson`))).toBe(false);
  });

  it('--dry-run writes nothing and says what it would write; bad arguments are refused', async () => {
    const dry = path.join(work, 'dry');
    const result = await operator('export-tenants', '--out', dry, '--dry-run');
    expect(result.code).toBe(0);
    expect(lineOf(result.stdout, tenants[0] as TenantFixture)).toMatch(/^DONE .* would go to .*\.ndjson$/);
    expect(result.stdout).toContain('(dry run: nothing written)');
    expect(existsSync(dry)).toBe(false);

    const noOut = await operator('export-tenants', '--dry-run');
    expect(noOut).toMatchObject({ code: 1, stderr: expect.stringContaining('tenants:export: --out <dir> is required') });
    const badAfter = await operator('export-tenants', '--out', dry, '--after', 'acme');
    expect(badAfter).toMatchObject({ code: 1, stderr: expect.stringContaining('--after takes a tenant id') });
  });
});

describe('writeAtomically', () => {
  it('leaves the file as it was, and no temporary file, when the archive fails part-way (after writes reached the disk)', async () => {
    const dir = mkdtempSync(path.join(work, 'atomic-'));
    const file = path.join(dir, 'acme.ndjson');
    await writeAtomically(file, async (writeLine) => writeLine('old archive\n'));
    expect(readFileSync(file, 'utf8')).toBe('old archive\n');
    const failing = writeAtomically(file, async (writeLine) => {
      // More than one write's worth, so part of it is in the temporary file when it fails.
      for (let line = 0; line < 2_000; line += 1) await writeLine(`${JSON.stringify({ table: 'Vehicle', row: { line, pad: 'x'.repeat(60) } })}\n`);
      expect(readdirSync(dir).filter((name) => name.endsWith('.partial'))).toHaveLength(1);
      throw new Error('connection lost');
    });
    await expect(failing).rejects.toThrow('connection lost');
    expect(readdirSync(dir)).toEqual(['acme.ndjson']);
    expect(readFileSync(file, 'utf8')).toBe('old archive\n');
  });
});

describe('npm run tenants:migrate --dry-run --after', () => {
  it('lists the tenants after the id given, applies nothing, and says where to resume', async () => {
    const rowsBefore = await Promise.all(tenants.map((tenant) => db.migrationRows(tenant.schemaName)));
    const result = await operator('migrate-tenants', '--dry-run', '--force', '--after', ids()[1] as string);
    expect(result.code).toBe(0);
    expect(result.stdout).not.toMatch(/^platform:/m);
    expect(lineOf(result.stdout, tenants[0] as TenantFixture)).toBeUndefined();
    expect(lineOf(result.stdout, tenants[1] as TenantFixture)).toBeUndefined();
    for (const tenant of tenants.slice(2)) expect(lineOf(result.stdout, tenant)).toMatch(/^UP_TO_DATE /);
    // The tenants the import test restored into come after these (ids are time-ordered).
    const last = (await db.client.query<{ id: string }>(`SELECT max("id"::text) AS id FROM platform."Tenant"`)).rows[0]?.id;
    expect(result.stdout).toContain(`resume after ${last}`);
    expect(result.stdout).toContain('(dry run: 0 would migrate, nothing changed)');
    expect(await Promise.all(tenants.map((tenant) => db.migrationRows(tenant.schemaName)))).toEqual(rowsBefore);
  });
});
