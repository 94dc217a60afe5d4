import type { BenchContext, SectionReport } from '../lib/context';
import { BenchFleet } from '../lib/fleet';
import { graphql } from '../lib/graphql-http';
import { median, ms, percentile } from '../lib/stats';

/*
 * 4. Provisioning: createTenant over HTTP as a platform admin, one at a time (platform row,
 * role, schema, migrations through the WebAssembly schema engine, seed, owner with bcrypt).
 * createTenant allows 60 calls a minute per admin, so counts stay well under that.
 */

const CREATE_TENANT = `mutation Create($input: CreateTenantInput!) {
  createTenant(input: $input) { tenant { id slug schemaName status } }
}`;

export async function provisionSection(ctx: BenchContext): Promise<SectionReport> {
  const count = ctx.counts.provisionTenants;
  const durations: number[] = [];
  const { prisma } = ctx.app.server.services.platform;
  const run = Date.now().toString(36);
  ctx.progress(`createTenant × ${count} over HTTP`);
  for (let index = 1; index <= count; index += 1) {
    const slug = `prov-${run}-${index}`;
    const owner = BenchFleet.ownerFor(slug);
    const startedAt = performance.now();
    const result = await graphql<{ createTenant: { tenant: { id: string; slug: string; schemaName: string; status: string } } }>(
      ctx.app.url,
      CREATE_TENANT,
      { input: { slug, name: `Provisioned ${slug}`, plan: 'STANDARD', owner } },
      ctx.fleet.adminToken,
    );
    durations.push(performance.now() - startedAt);
    const { tenant } = result.createTenant;
    if (tenant.status !== 'ACTIVE') throw new Error(`createTenant left ${slug} ${tenant.status}`);
    const record = await prisma.tenant.findUniqueOrThrow({ where: { id: tenant.id } });
    ctx.fleet.adopt(record, owner.email);
  }
  const rows = [
    {
      measurement: 'createTenant over HTTP, one at a time',
      result: ms(median(durations)),
      detail: `median of ${count}; p90 ${ms(percentile(durations, 90))} · min ${ms(Math.min(...durations))} · max ${ms(Math.max(...durations))} → ≈ ${Math.round(60_000 / median(durations))} tenants/min serially`,
    },
  ];
  return { title: `Provisioning — ${count} × createTenant`, rows, notes: [] };
}
