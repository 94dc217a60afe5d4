import { forgetAllClients, type BenchContext, type SectionReport } from '../lib/context';
import { assertFullPage } from '../lib/fleet';
import { graphql, VEHICLES_QUERY, type VehiclesPage } from '../lib/graphql-http';
import { median, ms, percentile, sleep } from '../lib/stats';

/*
 * 3. Cold tenant: the first request to a tenant whose client is not cached (forgotten through
 * services.tenantClients.forget, so the request builds a Prisma client, a pg pool and a new
 * connection), against the same request warm. A third case also drops the tenant from the
 * tenant directory's cache (one more platform query). One request at a time, over HTTP.
 */

const WARM_SAMPLES = 3;

export async function coldSection(ctx: BenchContext): Promise<SectionReport> {
  const { counts } = ctx;
  const tenants = await ctx.fleet.ensureHot(counts.coldTenants);
  const { tenantClients, directory } = ctx.app.server.services;
  await forgetAllClients(ctx);

  const timed = async (token: string, slug: string): Promise<number> => {
    const startedAt = performance.now();
    const page = await graphql<VehiclesPage>(ctx.app.url, VEHICLES_QUERY, {}, token);
    const elapsed = performance.now() - startedAt;
    assertFullPage(page, counts.vehiclesPerTenant, slug);
    return elapsed;
  };

  const cold: number[] = [];
  const warm: number[] = [];
  const coldDirectory: number[] = [];
  const builtBefore = ctx.app.leases.cold;
  // One untimed request first: the HTTP connection and the server's code paths are warm.
  await timed((tenants[0] as { token: string }).token, 'warm-up');
  for (const tenant of tenants) {
    tenantClients.forget(tenant.id);
    await sleep(50); // the forgotten client's pool ends in the background
    cold.push(await timed(tenant.token, tenant.slug));
    for (let sample = 0; sample < WARM_SAMPLES; sample += 1) warm.push(await timed(tenant.token, tenant.slug));
  }
  for (const tenant of tenants) {
    tenantClients.forget(tenant.id);
    directory.invalidate(tenant.id);
    await sleep(50);
    coldDirectory.push(await timed(tenant.token, tenant.slug));
  }
  const built = ctx.app.leases.cold - builtBefore;
  const notes: string[] = [];
  if (built < tenants.length * 2) notes.push(`cold: expected ${tenants.length * 2} clients to be built, saw ${built}.`);
  const spread = (values: number[]) => `p90 ${ms(percentile(values, 90))} · min ${ms(Math.min(...values))} · max ${ms(Math.max(...values))}`;
  return {
    title: `Cold tenant — first request after the tenant's client left the cache; ${tenants.length} tenants, one request at a time`,
    rows: [
      { measurement: 'Cold client (new Prisma client + pg pool + connection)', result: ms(median(cold)), detail: `median of ${cold.length}; ${spread(cold)}` },
      { measurement: 'Cold client and tenant-directory miss', result: ms(median(coldDirectory)), detail: `median of ${coldDirectory.length}; ${spread(coldDirectory)}` },
      { measurement: 'Warm (same tenants, client cached, connection open)', result: ms(median(warm)), detail: `median of ${warm.length}; ${spread(warm)}` },
      { measurement: 'Cold penalty', result: ms(median(cold) - median(warm)), detail: `cold / warm ${(median(cold) / median(warm)).toFixed(1)}×` },
    ],
    notes,
  };
}
