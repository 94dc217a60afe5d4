import { mapWithConcurrency } from '../../src/concurrency/map-with-concurrency';
import type { TenantRecord } from '../../src/tenancy/tenant-directory';
import { quoteIdentifier } from '../../src/tenancy/tenant-naming';
import type { BenchServer } from './bench-server';
import { graphql, VEHICLES_QUERY, type VehiclesPage } from './graphql-http';

/*
 * The bench's tenants, shared by every section of one run (one scratch database): created on
 * demand, in-process through the server's own TenantProvisioner (loading is not measured, and
 * createTenant's field limit of 60 a minute would stall 1,000 creations over HTTP); "hot"
 * tenants also get a huge rate-limit override (setTenantRateLimit, over HTTP), an access token
 * (in-process login: the per-IP login limit is 20 a minute) and their vehicles and drivers,
 * created over HTTP with the owner's token. Large tenants (the hot section's one tenant with
 * 1,000 vehicles) are kept apart from the list the other sections slice, so that a section
 * asking for the first N tenants always gets tenants of vehiclesPerTenant vehicles.
 */

export interface BenchTenant {
  id: string;
  slug: string;
  schemaName: string;
  dbRole: string;
  cluster: string;
  updatedAt: Date;
  ownerEmail: string;
  token: string | null;
  loaded: boolean;
}

const OWNER_PASSWORD = 'bench-owner-password';
/** armor's alias limit is 20 per document; stay under it. */
const ALIASES_PER_REQUEST = 10;
const HUGE_LIMIT = { tenant: { capacity: 1_000_000, refillPerSecond: 1_000_000 }, perCaller: { capacity: 1_000_000, refillPerSecond: 1_000_000 } };

export interface BulkProvisioning {
  tenants: number;
  ms: number;
  concurrency: number;
}

export class BenchFleet {
  /** The uniform fleet: vehiclesPerTenant vehicles each once loaded. */
  readonly tenants: BenchTenant[] = [];
  /** Large tenants by vehicle count, not in `tenants`. */
  private readonly large = new Map<number, BenchTenant & { token: string }>();
  /** In-process creations so far (a by-product figure: provisioning throughput at concurrency). */
  readonly bulk: BulkProvisioning;

  constructor(
    private readonly app: BenchServer,
    readonly adminToken: string,
    private readonly options: { vehiclesPerTenant: number; bulkConcurrency: number; progress: (message: string) => void },
  ) {
    this.bulk = { tenants: 0, ms: 0, concurrency: options.bulkConcurrency };
  }

  /** A tenant created elsewhere (the provisioning section, over HTTP) joins the fleet. */
  adopt(record: Pick<TenantRecord, 'id' | 'slug' | 'schemaName' | 'dbRole' | 'cluster' | 'updatedAt'>, ownerEmail: string): BenchTenant {
    const tenant = benchTenant(record, ownerEmail);
    this.tenants.push(tenant);
    return tenant;
  }

  static ownerFor(slug: string): { email: string; name: string; password: string } {
    return { email: `owner-${slug}@bench.example.com`, name: `Owner of ${slug}`, password: OWNER_PASSWORD };
  }

  /** Every tenant this run created or adopted, large ones included (all the database holds). */
  everyTenant(): BenchTenant[] {
    return [...this.tenants, ...this.large.values()];
  }

  /** At least `count` tenants exist; returns the first `count`. */
  async ensureTenants(count: number): Promise<BenchTenant[]> {
    const missing = count - this.tenants.length;
    if (missing > 0) {
      const first = this.tenants.length;
      const slugs = Array.from({ length: missing }, (_, index) => `bench-${String(first + index + 1).padStart(4, '0')}`);
      const startedAt = performance.now();
      let done = 0;
      this.options.progress(`creating ${missing} tenants in-process (concurrency ${this.options.bulkConcurrency})`);
      const created = await mapWithConcurrency(slugs, this.options.bulkConcurrency, async (slug) => {
        const tenant = await this.create(slug);
        done += 1;
        if (done % 100 === 0) this.options.progress(`  ${done}/${missing} tenants created`);
        return tenant;
      });
      const elapsed = performance.now() - startedAt;
      this.bulk.tenants += missing;
      this.bulk.ms += elapsed;
      for (const { record, email } of created) this.adopt(record, email);
      this.options.progress(`  ${missing} tenants in ${(elapsed / 1000).toFixed(1)} s`);
    }
    return this.tenants.slice(0, count);
  }

  /** The first `count` tenants, each with a rate-limit override, a token and its vehicles and drivers. */
  async ensureHot(count: number): Promise<(BenchTenant & { token: string })[]> {
    const tenants = await this.ensureTenants(count);
    const cold = tenants.filter((tenant) => !tenant.loaded);
    if (cold.length > 0) {
      this.options.progress(`loading ${cold.length} tenants with ${this.options.vehiclesPerTenant} vehicles and drivers each (over HTTP)`);
      await mapWithConcurrency(cold, 4, (tenant) => this.load(tenant, this.options.vehiclesPerTenant));
    }
    return tenants as (BenchTenant & { token: string })[];
  }

  /**
   * One tenant of its own holding `vehicles` vehicles, each with its own driver, loaded like a
   * hot tenant (rate-limit override, token); created once per run and size.
   */
  async ensureLargeTenant(vehicles: number): Promise<BenchTenant & { token: string }> {
    const existing = this.large.get(vehicles);
    if (existing) return existing;
    // ENTERPRISE: a STANDARD tenant may hold 500 vehicles and drivers (plan quotas).
    const { record, email } = await this.create(`bench-large-${vehicles}`, 'ENTERPRISE');
    const tenant = benchTenant(record, email);
    this.options.progress(`loading ${tenant.slug} with ${vehicles} vehicles and drivers (over HTTP)`);
    await this.load(tenant, vehicles);
    const loaded = tenant as BenchTenant & { token: string };
    this.large.set(vehicles, loaded);
    return loaded;
  }

  private async create(slug: string, plan: TenantRecord['plan'] = 'STANDARD'): Promise<{ record: TenantRecord; email: string }> {
    const owner = BenchFleet.ownerFor(slug);
    const record = await this.app.server.services.provisioner.createTenant({ slug, name: `Bench ${slug}`, plan, owner });
    return { record, email: owner.email };
  }

  private async load(tenant: BenchTenant, count: number): Promise<void> {
    await loadHotTenant(this.app, this.adminToken, tenant, count);
  }
}

/**
 * Makes `tenant` hot on `app`: the rate-limit override (over HTTP), the owner's token (in-process
 * login), `count` vehicles each with its own driver (over HTTP), planner statistics, and a check
 * that the request-path query answers a full page. Sets `token` and `loaded`.
 */
export async function loadHotTenant(app: BenchServer, adminToken: string, tenant: BenchTenant, count: number): Promise<void> {
  const url = app.url;
  await graphql(
    url,
    `mutation Limit($id: ID!, $limit: TenantRateLimitInput) { setTenantRateLimit(id: $id, limit: $limit) { tenant { id } } }`,
    { id: tenant.id, limit: HUGE_LIMIT },
    adminToken,
  );
  const login = await app.server.services.sessions.login({ tenant: tenant.slug, email: tenant.ownerEmail, password: OWNER_PASSWORD });
  const token = login.accessToken;
  await createVehiclesWithDrivers(url, token, tenant.slug, count);
  // What a bulk import is followed by (and autovacuum does within its naptime, a minute by
  // default): statistics for the planner. Without them, a fresh table's `deletedAt IS NULL`
  // is estimated at 0.5% of rows and a page is planned as scans and a sort (README, Performance).
  await analyzeTenant(app, tenant, ['Vehicle', 'Driver']);
  const page = await graphql<VehiclesPage>(url, VEHICLES_QUERY, {}, token);
  assertFullPage(page, count, tenant.slug);
  tenant.token = token;
  tenant.loaded = true;
}

/** ANALYZE of some of a tenant's tables, on the cluster that holds its schema (the server's own login there). */
export async function analyzeTenant(app: BenchServer, tenant: Pick<BenchTenant, 'schemaName' | 'cluster'>, tables: string[]): Promise<void> {
  const schema = quoteIdentifier(tenant.schemaName);
  await app.server.services.clusters.get(tenant.cluster).adminPool.query(`ANALYZE ${tables.map((table) => `${schema}."${table}"`).join(', ')}`);
}

function benchTenant(record: Pick<TenantRecord, 'id' | 'slug' | 'schemaName' | 'dbRole' | 'cluster' | 'updatedAt'>, ownerEmail: string): BenchTenant {
  return { id: record.id, slug: record.slug, schemaName: record.schemaName, dbRole: record.dbRole, cluster: record.cluster, updatedAt: record.updatedAt, ownerEmail, token: null, loaded: false };
}

/**
 * `count` vehicles, each with its own driver assigned, created over HTTP with a tenant token
 * (ALIASES_PER_REQUEST per mutation). Plates are BN0000, BN0001, ...; licences name the slug.
 */
export async function createVehiclesWithDrivers(url: string, token: string, slug: string, count: number): Promise<void> {
  const indexes = Array.from({ length: count }, (_, index) => index);
  const driverIds: string[] = [];
  const vehicleIds: string[] = [];
  for (const chunk of chunks(indexes, ALIASES_PER_REQUEST)) {
    const drivers = await graphql<Record<string, { driver: { id: string } }>>(
      url,
      `mutation Drivers { ${chunk
        .map((i) => `d${i}: createDriver(input: { name: "Driver ${i} of ${slug}", licenseNumber: "LIC-${slug}-${i}" }) { driver { id } }`)
        .join(' ')} }`,
      {},
      token,
    );
    const vehicles = await graphql<Record<string, { vehicle: { id: string } }>>(
      url,
      `mutation Vehicles { ${chunk
        .map((i) => `v${i}: createVehicle(input: { plate: "BN${String(i).padStart(4, '0')}", make: "Make ${i % 7}", model: "Model ${i % 5}", year: ${2010 + (i % 15)} }) { vehicle { id } }`)
        .join(' ')} }`,
      {},
      token,
    );
    for (const i of chunk) {
      driverIds[i] = (drivers[`d${i}`] as { driver: { id: string } }).driver.id;
      vehicleIds[i] = (vehicles[`v${i}`] as { vehicle: { id: string } }).vehicle.id;
    }
  }
  for (const chunk of chunks(indexes, ALIASES_PER_REQUEST)) {
    await graphql(
      url,
      `mutation Assign { ${chunk.map((i) => `a${i}: assignDriver(vehicleId: "${vehicleIds[i]}", driverId: "${driverIds[i]}") { vehicle { id } }`).join(' ')} }`,
      {},
      token,
    );
  }
}

/** The request-path answer must be a full page with every driver: otherwise the figures measure the wrong thing. */
export function assertFullPage(page: VehiclesPage, count: number, what: string): void {
  const edges = page.vehicles.edges;
  const expected = Math.min(count, 20);
  if (edges.length !== expected || edges.some((edge) => !edge.node.driver)) {
    throw new Error(`${what}: expected ${expected} vehicles with drivers, got ${edges.length} (${edges.filter((edge) => edge.node.driver).length} with drivers)`);
  }
}

function chunks<T>(items: T[], size: number): T[][] {
  const result: T[][] = [];
  for (let index = 0; index < items.length; index += size) result.push(items.slice(index, index + size));
  return result;
}
